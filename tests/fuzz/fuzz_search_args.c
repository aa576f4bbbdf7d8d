/*
 * fuzz_search_args.c - libFuzzer target for the arguments of `coinhound search` and of the
 * store's retention: the input is split at NUL bytes into an expression, a --count-by list, a
 * --top field, a time (--from) and a retention, each handed to the parser the CLI uses
 * (ch_search_new compiles and plans, ch_search_parse_time, ch_evstore_retention_parse). Bad
 * arguments must be refused with a message, never crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/evstore.h"
#include "store/search.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    const char *part[5] = {"", NULL, NULL, "", ""};
    size_t k = 0;
    part[0] = buf;
    for (size_t i = 0; i < size && k < 4; i++)
        if (buf[i] == '\0')
            part[++k] = buf + i + 1;
    ch_error err = {0};
    ch_search_opts so = {.expr = part[0], .count_by = part[1] && part[1][0] ? part[1] : NULL};
    if (so.count_by == NULL && part[2] && part[2][0])
        so.top = part[2];
    ch_search *s = NULL;
    if (ch_search_new(&so, &s, &err) == 0)
        ch_search_free(s);
    int64_t t;
    if (part[3])
        (void)ch_search_parse_time(part[3], 1700000000000LL, &t, &err);
    ch_evstore_retention r;
    if (part[4])
        (void)ch_evstore_retention_parse(part[4], &r, &err);
    free(buf);
    return 0;
}
