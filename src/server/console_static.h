/*
 * console_static.h - the web console's files, as `coinhound serve` hands them to browsers.
 *
 * The console is a directory of static files (HTML, ES modules, CSS, fonts) that
 * scripts/install-web assembles from web/console and pinned npm packages; the server reads
 * them from there at request time, so a new console needs no new binary. Only what a console
 * can contain is served: names made of [A-Za-z0-9._-] segments, none starting with a dot, with
 * a known extension, no symbolic link leaving the directory. Everything else is "not found",
 * never an error that tells a prober what exists.
 */
#ifndef CH_SERVER_CONSOLE_STATIC_H
#define CH_SERVER_CONSOLE_STATIC_H

#include <stddef.h>

#include "core/buf.h"

#define CH_CONSOLE_FILE_MAX (8u << 20) /* the largest vendor bundle is ~1 MiB */

typedef struct ch_console_file {
    const char *content_type; /* static string */
    const char *cache_control;
} ch_console_file;

/* Map a request path ("/", "/app.js", "/vendor/cytoscape.esm.min.mjs") to a file under root
 * and append its bytes to body. "/" is index.html. Returns 0, CH_ENOTFOUND for a path that is
 * not a console file (bad name, unknown type, missing, outside root, too large), CH_EIO when
 * a file that exists cannot be read. */
int ch_console_file_get(const char *root, const char *path, ch_buf *body, ch_console_file *out);

/* The path's name is acceptable as a console file (exposed for the fuzz target and tests). */
int ch_console_path_ok(const char *path, size_t len);

#endif
