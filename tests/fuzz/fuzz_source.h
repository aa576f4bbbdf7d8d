/*
 * fuzz_source.h - what the fuzz targets of the source types share: detection, then the whole
 * stream over arbitrary bytes through a small input window (64 KiB, so that records cross
 * window refills and reach the window and line caps), every event handed to the target's own
 * check. The check reads every byte of every view an event holds, so a view that outlives its
 * buffer or runs past it is caught by ASan.
 */
#ifndef CH_FUZZ_SOURCE_H
#define CH_FUZZ_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "core/diag.h"
#include "core/event.h"
#include "ingest/input.h"
#include "parse/source.h"

/* Where the targets fold what they read, so that no read is optimised away. */
static volatile uint64_t ch_fuzz_sink;

static inline void ch_fuzz_touch(ch_sv v)
{
    uint64_t h = v.n;
    for (uint32_t i = 0; i < v.n; i++)
        h = h * 31 + (uint8_t)v.p[i];
    ch_fuzz_sink += h;
}

/* Run source type t over data; check sees each event (at most 100,000). diag holds the
 * stream's counters afterwards, for the target's own accounting checks. */
static inline void ch_fuzz_source(const ch_source_type *t, const uint8_t *data, size_t size,
                                  ch_diag *diag, void (*check)(const ch_event *ev))
{
    ch_error err = {0};
    ch_input *in = NULL;
    ch_diag_init(diag, NULL);
    ch_fuzz_sink += (uint64_t)t->detect((const char *)data, size);
    if (ch_input_open_mem(&in, "fuzz", data, size, 1u << 16, &err) != 0)
        return;
    ch_stream *st = t->open(in, diag, &err);
    if (st != NULL) {
        ch_event ev;
        for (int i = 0; i < 100000 && t->next(st, &ev) == 1; i++)
            check(&ev);
        t->close(st);
    }
    ch_input_close(in);
}

#endif
