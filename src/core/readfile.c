/*
 * readfile.c - whole-file reads with a cap (see readfile.h).
 */
#include "core/readfile.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"

int ch_read_file(const char *path, size_t max, char **out, size_t *len, ch_error *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return ch_error_set(err, errno == ENOENT ? CH_ENOTFOUND : CH_EIO, "%s: %s", path,
                            strerror(errno));
    char *buf = ch_malloc(max + 2);
    size_t n = buf ? fread(buf, 1, max + 1, f) : 0;
    int rc = 0;
    if (buf == NULL) {
        ch_error_set(err, CH_ENOMEM, "out of memory");
        rc = CH_ENOMEM; /* spelled out, so the analyzer knows buf is not used below */
    } else if (ferror(f)) {
        rc = ch_error_set(err, CH_EIO, "%s: read failed", path);
    } else if (n > max) {
        rc = ch_error_set(err, CH_ELIMIT, "%s: larger than %zu bytes", path, max);
    }
    fclose(f);
    if (rc < 0) {
        ch_free(buf);
        return rc;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}
