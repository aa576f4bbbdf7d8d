/*
 * search_int.h - what a store implementation calls while it runs a search (store/search.c).
 */
#ifndef CH_STORE_SEARCH_INT_H
#define CH_STORE_SEARCH_INT_H

#include "store/search.h"
#include "store/store_int.h"

/* The search's time range and order. */
void ch__search_range(const ch_search *s, int64_t *from, int64_t *to, bool *desc);
/* Segments the store will offer (for progress). */
void ch__search_add_total(ch_search *s, size_t n);
/* Should the store stop before a segment spanning [seg_from, seg_to]? (cancelled, a bound
 * hit, or the kept matches cannot improve.) */
bool ch__search_done(ch_search *s, int64_t seg_from, int64_t seg_to);
/* Can no event of [seg_from, seg_to] enter the kept matches (the limit is reached and they are
 * all newer, or older with --sort asc)? For a segment whose own time bounds are narrower than
 * its hour's: skipped, not a reason to stop (the next one of the hour may be newer). */
bool ch__search_cannot_improve(ch_search *s, int64_t seg_from, int64_t seg_to);
/* Run over one segment. A damaged block is reported (ch__search_damaged) and the segment
 * skipped; a damaged index (a field's frame) is reported and the segment's records evaluated
 * instead. The return is negative only for failures that end the search (out of memory). */
int ch__search_segment(ch_search *s, ch_seg *seg, const char *path, ch_error *err);
void ch__search_damaged(ch_search *s, const char *path, const char *why);
/* Can the search's indexed tests rule segments out (not --no-index, and some test narrows)? */
bool ch__search_indexable(const ch_search *s);
/* The summary's segments that may hold a match: maybe[i] (0/1) for each of its segments. A
 * damaged field frame gives CH_EPARSE with the reason. */
int ch__search_summary(ch_search *s, ch_sum *sum, uint8_t *maybe, ch_error *err);
/* A segment the store did not open (--explain says why). */
void ch__search_skip(ch_search *s, const char *path, const char *why);
/* A line for --explain; damaged ones also go to the damaged report. */
void ch__search_note(ch_search *s, const char *what, bool damaged);

/* ---- reading segments on several threads ----
 * The store hands segments out in its reading order; each thread reads its share into a shard
 * (a search of its own whose state, counters and cancel flag are the root's), the shards are
 * merged into the root at the end, and --explain's text is put back in the reading order. */

/* --explain's and the damaged report's text of one segment (or of the store's own decisions
 * between two segments), kept apart until the order is known. */
typedef struct ch_search_text {
    ch_buf explain, damaged;
} ch_search_text;

/* How many threads should read segments: 1 for an on_match search. */
unsigned ch__search_threads(const ch_search *s);
int ch__search_shard_new(ch_search *s, unsigned nshards, ch_search **out, ch_error *err);
/* Before each segment a shard (or a root that reads alone) reads: its place in reading order. */
void ch__search_shard_begin(ch_search *w, size_t pos);
/* The shard's kept matches into the root, after each segment, under the caller's lock (the
 * root's kept matches are shared): the root cuts them to the limit and so bounds every shard,
 * as one thread's kept matches bound the segments after them. */
int ch__search_shard_give(ch_search *s, ch_search *w, ch_error *err);
/* The shard's kept matches, groups and buckets into the root; the shard is then freed by the
 * caller (ch_search_free). */
int ch__search_shard_merge(ch_search *s, ch_search *w, ch_error *err);
void ch__search_text_init(ch_search_text *t);
/* Exchange s's text buffers with t's: what s writes next goes to t's. */
void ch__search_text_swap(ch_search *s, ch_search_text *t);
/* Append t's text to s's, and free t's. */
void ch__search_text_take(ch_search *s, ch_search_text *t);

#endif
