/*
 * fuzz_merge.c - the k-way merge of inputs by event time (parse/merge.h), over several inputs
 * made of arbitrary bytes: every source type's detection, the peek at each input's first
 * events, the sorting of inputs that are not nearly sorted (in memory and as runs in temporary
 * files), the open cap and the heap.
 *
 * The first byte sets the cap on open streams (1 to 4, bits 0-1), the sort memory (bits
 * 2-3: the default, 64 KiB, 1 KiB or 1 byte, so that runs spill to disk) and, bit 4, a worker
 * that reads the streams ahead and opens gzip'd inputs itself, the next one before it is due
 * (the same properties must hold); the rest is cut into
 * up to 6 inputs at each "\n%%\n", each given to the merge as a file (a memfd, named
 * /proc/self/fd/N). The reference is the slow obvious reading: every input opened alone, start
 * to end. Properties, checked with __builtin_trap:
 *  - the merge yields exactly each input's events (never drops or duplicates one), either in
 *    the input's own order or, for an input it sorted, in time order with ties in file order;
 *  - out_of_order counts exactly the times an event is older than the one before it;
 *  - when every input is in time order and none was opened late, the output is in time order;
 *  - the merge's diag counts the same events, records and errors as reading each input alone
 *    (whole-input problems are reported once, even for inputs peeked before they are opened,
 *    and a sorted input is counted once though it is read twice).
 * Run with ASAN_OPTIONS=detect_stack_use_after_return=1 (run_fuzzer and scripts/fuzz do): a
 * stream that keeps a pointer to a dead stack frame is one of the ways this can go wrong.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/diag.h"
#include "ingest/input.h"
#include "parse/merge.h"

#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c))                                                                                  \
            __builtin_trap();                                                                      \
    } while (0)

#define MAX_INPUTS 6
#define MAX_EVENTS 4096 /* per input; a 64 KiB input holds fewer */

typedef struct seq {
    uint64_t fp[MAX_EVENTS], sfp[MAX_EVENTS]; /* in file order, and stable-sorted by time */
    int64_t ts[MAX_EVENTS], sts[MAX_EVENTS];
    uint64_t got[MAX_EVENTS]; /* what the merge yielded for this input */
    size_t n, at;
} seq;

static seq ref[MAX_INPUTS];

static uint64_t mix(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* What identifies an event: time, dataset and normalized fields. Not raw_json: a sorted
 * input's records are read back from a copy with each record on one line. */
static uint64_t fingerprint(const ch_event *ev)
{
    uint64_t h = 0xcbf29ce484222325ull;
    h = mix(h, &ev->ts_ms, sizeof ev->ts_ms);
    h = mix(h, &ev->dataset, sizeof ev->dataset);
    h = mix(h, ev->action.p, ev->action.n);
    h = mix(h, ev->id.p, ev->id.n);
    h = mix(h, ev->user_name.p, ev->user_name.n);
    h = mix(h, ev->src_ip.b, sizeof ev->src_ip.b);
    h = mix(h, ev->dst_ip.b, sizeof ev->dst_ip.b);
    h = mix(h, &ev->src_port, sizeof ev->src_port);
    h = mix(h, &ev->bytes, sizeof ev->bytes);
    h = mix(h, ev->dns_qname.p, ev->dns_qname.n);
    return h;
}

static void read_alone(const char *path, ch_diag *diag, seq *s)
{
    ch_input *in = NULL;
    const ch_source_type *type = NULL;
    ch_stream *st = NULL;
    s->n = s->at = 0;
    if (!ch_source_open_path(path, NULL, diag, true, CH_INPUT_DEFAULT_MAX_WINDOW, &in, &type, &st))
        return;
    ch_event ev;
    while (type->next(st, &ev) == 1) {
        CHECK(s->n < MAX_EVENTS);
        s->ts[s->n] = ev.ts_ms;
        s->fp[s->n++] = fingerprint(&ev);
    }
    diag->by_ds[type->dataset].bytes += ch_input_bytes(in);
    type->close(st);
    ch_input_close(in);
}

/* Stable sort of the reference by time (insertion sort: a few thousand events at most). */
static void sort_ref(seq *s)
{
    for (size_t i = 0; i < s->n; i++) {
        size_t k = i;
        while (k > 0 && s->sts[k - 1] > s->ts[i]) {
            s->sts[k] = s->sts[k - 1];
            s->sfp[k] = s->sfp[k - 1];
            k--;
        }
        s->sts[k] = s->ts[i];
        s->sfp[k] = s->fp[i];
    }
}

static bool same_counts(const ch_diag *a, const ch_diag *b)
{
    for (int d = 0; d < CH_DS__COUNT; d++) {
        const ch_ds_stats *x = &a->by_ds[d], *y = &b->by_ds[d];
        if (x->records != y->records || x->events != y->events || x->skipped != y->skipped ||
            x->errors != y->errors || x->files != y->files || x->bytes != y->bytes)
            return false;
    }
    return a->errors_total == b->errors_total && a->unreadable_inputs == b->unreadable_inputs;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t max_open = 1 + (data[0] & 3);
    static const size_t sort_mem[] = {0, 64u << 10, 1u << 10, 1};
    const uint8_t *p = data + 1, *end = data + size;
    int fds[MAX_INPUTS];
    char paths[MAX_INPUTS][32];
    size_t n = 0;
    while (n < MAX_INPUTS) {
        const uint8_t *cut = n + 1 < MAX_INPUTS ? memmem(p, (size_t)(end - p), "\n%%\n", 4) : NULL;
        size_t len = cut ? (size_t)(cut - p) : (size_t)(end - p);
        int fd = memfd_create("fuzz_merge", 0);
        if (fd < 0)
            abort();
        if (len > 0 && write(fd, p, len) != (ssize_t)len)
            abort();
        fds[n] = fd;
        snprintf(paths[n], sizeof paths[n], "/proc/self/fd/%d", fd);
        n++;
        if (cut == NULL)
            break;
        p = cut + 4;
    }

    ch_diag alone;
    ch_diag_init(&alone, NULL);
    bool all_sorted = true;
    for (size_t i = 0; i < n; i++) {
        read_alone(paths[i], &alone, &ref[i]);
        for (size_t k = 1; k < ref[i].n; k++)
            all_sorted &= ref[i].ts[k] >= ref[i].ts[k - 1];
        sort_ref(&ref[i]);
    }

    ch_diag diag;
    ch_diag_init(&diag, NULL);
    ch_merge *m = ch_merge_new(&diag, NULL, max_open);
    if (m == NULL)
        abort();
    if (sort_mem[(data[0] >> 2) & 3])
        ch_merge_set_sort_memory(m, sort_mem[(data[0] >> 2) & 3]);
    if (data[0] & 16)
        ch_merge_set_threads(m, 2);
    for (size_t i = 0; i < n; i++)
        if (ch_merge_add(m, paths[i]) != 0)
            abort();
    ch_event *ev;
    const char *path;
    uint64_t yielded = 0, decreasing = 0;
    int64_t last = 0;
    int rc;
    while ((rc = ch_merge_next(m, &ev, &path)) == 1) {
        size_t i = 0;
        while (i < n && strcmp(path, paths[i]) != 0)
            i++;
        CHECK(i < n);
        seq *s = &ref[i];
        CHECK(s->at < s->n);
        s->got[s->at++] = fingerprint(ev);
        if (yielded > 0 && ev->ts_ms < last)
            decreasing++;
        last = ev->ts_ms;
        yielded++;
    }
    CHECK(rc == 0);
    for (size_t i = 0; i < n; i++) {
        const seq *s = &ref[i];
        CHECK(s->at == s->n);
        size_t bytes = s->n * sizeof s->got[0];
        CHECK(memcmp(s->got, s->fp, bytes) == 0 || memcmp(s->got, s->sfp, bytes) == 0);
    }
    ch_merge_stats st;
    ch_merge_stats_get(m, &st);
    CHECK(st.files == n && st.out_of_order == decreasing && st.max_open_seen <= max_open);
    if (all_sorted && st.late_opens == 0)
        CHECK(decreasing == 0);
    ch_merge_free(m);
    CHECK(same_counts(&diag, &alone));
    for (size_t i = 0; i < n; i++)
        close(fds[i]);
    return 0;
}
