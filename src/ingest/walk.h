/*
 * walk.h - expand the paths given on the command line into the files to read, in a stable
 * order.
 *
 * Each path is taken in the order given. "-" (stdin) and anything named explicitly that is not
 * a directory (a regular file, a FIFO, /dev/stdin, a process substitution) go to on_file as
 * they are. A directory is read recursively: its entries are sorted by name with strcmp (byte
 * order, independent of the locale), names starting with '.' are skipped, regular files (and
 * symlinks to them) go to on_file, sub-directories (and symlinks to them) are descended in
 * their turn, and other entries (sockets, devices, FIFOs inside a directory) are ignored.
 * A directory is descended at most once per walk (keyed by device and inode), which guards
 * against symlink loops and against reading the same logs twice through two links.
 *
 * Whatever cannot be read (a path that does not exist, a directory that cannot be listed, a
 * dangling symlink, a tree deeper than CH_WALK_MAX_DEPTH, a path longer than PATH_MAX) goes
 * to on_missing with the reason as text (strerror), so the CLI can count it as unreadable.
 */
#ifndef CH_INGEST_WALK_H
#define CH_INGEST_WALK_H

#include <stddef.h>

#define CH_WALK_MAX_DEPTH 64

/* Return 0 to go on; any other value stops the walk and is returned by ch_walk_paths. The
 * path is valid only during the call. */
typedef int (*ch_walk_file_cb)(const char *path, void *ud);
typedef int (*ch_walk_missing_cb)(const char *path, const char *reason, void *ud);

/* Calls on_file for every file to read and on_missing (may be NULL: then unreadable paths are
 * silently skipped) for every path that cannot be read. Returns 0, the first non-zero value a
 * callback returned, or CH_ENOMEM (after telling on_missing about the directory it was
 * listing). */
int ch_walk_paths(const char *const *paths, size_t n, ch_walk_file_cb on_file,
                  ch_walk_missing_cb on_missing, void *ud);

#endif
