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

#endif
