/*
 * fuzz_console_path.c - the name check of the console's file server (server/console_static.h),
 * the one boundary between a request path from any client and the file system.
 *
 * Invariants whatever the bytes: an accepted path starts with "/", has no empty segment, no
 * segment starting with a dot (so neither ".." nor a dot file), no byte outside the name
 * characters, and a known extension; the check never reads past len (the input is copied to a
 * buffer of exactly its size).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "server/console_static.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    char *p = malloc(n ? n : 1);
    if (p == NULL)
        return 0;
    memcpy(p, data, n);
    if (ch_console_path_ok(p, n)) {
        if (n == 0 || p[0] != '/')
            abort();
        if (n > 1) {
            for (size_t i = 0; i < n; i++) {
                char c = p[i];
                bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' || c == '/';
                if (!ok)
                    abort();
                if (c == '/' && (i + 1 == n || p[i + 1] == '/' || p[i + 1] == '.'))
                    abort();
            }
        }
    }
    free(p);
    return 0;
}
