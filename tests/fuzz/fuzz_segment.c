/*
 * fuzz_segment.c - libFuzzer target for reading event-store segments (store/segment.c) the
 * way a search and `store verify` do: open arbitrary bytes as a segment, verify it, walk every
 * term dictionary and posting list, decode every record, and run a search (an indexed test, a
 * raw-path test and an aggregation) over it through a one-segment store. A damaged segment
 * must give an error, never a crash or an unbounded allocation. Seeds: sealed segments of the
 * content pack's CJ-MINE-03 cases (CloudTrail, Route 53, VPC flows), and 298 generated flow
 * records in two blocks written by format 1 (vpcflow-2blocks-v1.seg), by format 2, whose
 * second block is compressed with the first as its dictionary (vpcflow-2blocks.seg), and by
 * format 3, each block as a typed-part stream and an original-record stream
 * (vpcflow-2blocks-v3.seg; cloudtrail-v3.seg holds cloudtrail.seg's record), and by format 4,
 * the typed parts as columns (vpcflow-2blocks-v4.seg, cloudtrail-v4.seg,
 * route53resolver-v4.seg: the same records resealed), and by format 5, format 4 with a table of
 * the index field frames' sizes and checksums (the same three, -v5.seg), and by format 6, each
 * field as a directory, a dictionary, posting chunks and a record -> term column (the same
 * three, -v6.seg, made by bench/seg_format6.c), and hot segments as `analyze` seals them (format 3
 * without block-0 dictionaries at zstd level 1: vpcflow-2blocks-hot.seg, 295 generated flows,
 * and cloudtrail-hot.seg, 40 generated CloudTrail records). The searches read the typed stream
 * alone (a count by normalized fields), both for kept matches, and the original records for a raw
 * path; a count of equality tests by indexed fields is taken from the index alone (format 6: the
 * grouping fields' columns).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "store/search.h"
#include "store/search_int.h"
#include "store/store_int.h"

typedef struct one {
    const uint8_t *buf;
    size_t n;
} one;

static int one_search(void *impl, ch_search *s, ch_error *err)
{
    one *o = impl;
    ch_seg *seg = NULL;
    ch_error e = {0};
    ch__search_add_total(s, 1);
    if (ch__seg_open_mem(o->buf, o->n, &seg, &e) < 0) {
        ch__search_damaged(s, "fuzz", e.msg);
        return 0;
    }
    int rc = ch__search_segment(s, seg, "fuzz", err);
    ch__seg_close(seg);
    return rc;
}

static const ch_evstore_ops one_ops = {.name = "fuzz", .search = one_search};

static void search(one *o, const char *expr, const char *count_by)
{
    ch_search_opts so = {.expr = expr, .count_by = count_by, .limit = 5, .explain = true};
    ch_search *s = NULL;
    ch_error err = {0};
    if (ch_search_new(&so, &s, &err) < 0)
        return;
    ch_evstore st = {&one_ops, o};
    if (ch_search_run(s, &st, &err) == 0) {
        for (size_t i = 0; i < ch_search_nresults(s); i++) {
            const ch_event *ev;
            (void)ch_search_result(s, i, &ev, NULL, &err);
        }
    }
    ch_search_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The reader may look at any byte of its input: give it an exact-size copy so that ASan
     * catches a read past the end. */
    uint8_t *buf = malloc(size ? size : 1);
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    ch_seg *seg = NULL;
    ch_error err = {0};
    if (ch__seg_open_mem(buf, size, &seg, &err) == 0) {
        (void)ch__seg_verify(seg, &err);
        ch__seg_close(seg);
        seg = NULL;
        if (ch__seg_open_mem(buf, size, &seg, &err) == 0) {
            const ch_seg_meta *m = ch__seg_meta(seg);
            uint32_t *post = malloc(((size_t)m->nrec + 1) * sizeof *post);
            for (int f = 0; f < CH_IX_NFIELDS && post; f++) {
                const ch_seg_term *t;
                size_t nt;
                if (ch__seg_terms(seg, f, &t, &nt, &err) < 0)
                    break;
                for (size_t i = 0; i < nt; i++)
                    (void)ch__seg_postings(&t[i], post, m->nrec);
            }
            free(post);
            ch_ev_decoded *d = malloc(sizeof *d);
            for (uint32_t i = 0; i < m->nrec && d; i++) {
                const uint8_t *p;
                size_t n;
                if (ch__seg_record(seg, i, &p, &n, &err) < 0)
                    break;
                (void)ch__ev_decode(p, n, d);
            }
            free(d);
            ch__seg_close(seg);
        }
    }
    one o = {buf, size};
    search(&o, "user.name == \"bob\" or dns.question.name endswith \"pool.example\"", NULL);
    search(&o, "requestParameters.instanceType exists or source.ip in 10.0.0.0/8",
           "event.dataset,user.name");
    search(&o, "destination.port > 100 or event.action exists", "event.action");
    search(&o, "user.name == \"bob\" or event.action == \"RunInstances\"",
           "event.action,user.name");
    free(buf);
    return 0;
}
