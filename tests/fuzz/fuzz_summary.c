/*
 * fuzz_summary.c - libFuzzer target for the event store's per-day term summaries
 * (store/summary.c) read the way a search and `store verify` read them: open arbitrary bytes
 * as a summary, look up covered segment names, walk every field's dictionary and posting
 * list, verify it, and plan a search (equality, suffix, CIDR, and/or/not) over it. A damaged
 * summary must give an error, never a crash, an out-of-range segment number or an unbounded
 * allocation. Seeds: the summaries of the content pack's CJ-MINE-03 cases.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/search.h"
#include "store/search_int.h"
#include "store/store_int.h"

static void plan(ch_sum *sum, const char *expr)
{
    ch_search_opts so = {.expr = expr, .limit = 5, .explain = true};
    ch_search *s = NULL;
    ch_error err = {0};
    if (ch_search_new(&so, &s, &err) < 0)
        return;
    uint32_t n = ch__sum_nseg(sum);
    uint8_t *maybe = malloc((size_t)n + 1);
    if (maybe && ch__search_summary(s, sum, maybe, &err) == 0) {
        for (uint32_t i = 0; i < n; i++)
            if (maybe[i] > 1)
                abort(); /* a flag, nothing else */
    }
    free(maybe);
    ch_search_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so that ASan catches a read past the end. */
    uint8_t *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    ch_sum *sum = NULL;
    ch_error err = {0};
    if (ch__sum_open_mem(buf, size, &sum, &err) == 0) {
        uint32_t n = ch__sum_nseg(sum);
        for (uint32_t i = 0; i < n; i++) {
            const ch_sum_seg *sg = ch__sum_seg(sum, i);
            if (ch__sum_find(sum, sg->name) != (long)i)
                abort(); /* names are distinct: each finds itself */
        }
        (void)ch__sum_find(sum, "cloudtrail-1-0000000000000001-00000000.seg");
        uint32_t *post = malloc(((size_t)n + 1) * sizeof *post);
        for (int f = 0; f < CH_IX_NFIELDS && post; f++) {
            const ch_seg_term *t;
            size_t nt;
            if (ch__sum_terms(sum, f, &t, &nt, &err) < 0)
                continue;
            for (size_t i = 0; i < nt; i++)
                if (ch__seg_postings(&t[i], post, n) == 0)
                    for (uint32_t q = 0; q < t[i].npost; q++)
                        if (post[q] >= n)
                            abort();
        }
        free(post);
        (void)ch__sum_verify(sum, NULL, 0, &err);
        plan(sum, "user.name == \"bob\" or dns.question.name endswith \"pool.example\"");
        plan(sum, "source.ip in 10.0.0.0/8 and not event.action == \"RunInstances\"");
        ch__sum_close(sum);
    }
    free(buf);
    return 0;
}
