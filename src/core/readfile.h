/*
 * readfile.h - read a small file whole (a rule, a context file, a list), with a size cap.
 *
 * The loaders that parse a file in one go (libyaml wants the whole text) all read it the same
 * way: one buffer of max + 2 bytes, one fread of max + 1 to tell "exactly max" from "more",
 * a NUL after the bytes. Cost: max + 2 bytes for the duration of the load, whatever the file's
 * size; callers cap max at a few MiB.
 */
#ifndef CH_CORE_READFILE_H
#define CH_CORE_READFILE_H

#include <stddef.h>

#include "core/error.h"

/* The bytes of the file at path into *out (ch_malloc'd, NUL-terminated, the caller frees it
 * with ch_free) and their count into *len. Fails with CH_ENOTFOUND (no such file) or CH_EIO
 * ("PATH: strerror"), CH_EIO ("PATH: read failed"), CH_ELIMIT ("PATH: larger than MAX bytes":
 * callers may say it their way), or CH_ENOMEM; *out is untouched on failure. */
int ch_read_file(const char *path, size_t max, char **out, size_t *len, ch_error *err);

#endif
