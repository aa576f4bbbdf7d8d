/*
 * evstore.h - the event store: every normalized event with its original record, kept in
 * time-partitioned, zstd-compressed, indexed segments (store/segment.c), searched in the
 * rules' own expression language (store/search.h).
 *
 * One interface, an ops table, so that a search can later fan out over several nodes' stores
 * (as QRadar's console does over its event processors): the local store (a directory of
 * segments beside the SQLite file, `<db>.events/`) is one implementation; a remote one would
 * forward `search` and merge.
 *
 * Writing, and why nothing is lost or doubled: events are added to an open segment per source
 * type and hour in memory; a full one is sealed into a file at once, and every checkpoint seals
 * the rest. Every file carries a generation number; the checkpoint's SQLite transaction (the
 * one that records the processed record identities) also records the generation it makes
 * durable. On open, files of a generation no checkpoint committed are deleted: their records
 * were not committed as processed either, so the inputs (or the journal of `serve`) deliver
 * them again. Duplicates the pipeline detects are never added.
 *
 * Ownership: ch_evstore_open returns a store the caller closes; it borrows nothing after open
 * except the ch_store handed to flush during a checkpoint. One thread at a time.
 */
#ifndef CH_STORE_EVSTORE_H
#define CH_STORE_EVSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/event.h"

typedef struct ch_store ch_store;
typedef struct ch_search ch_search;

typedef struct ch_evstore_retention {
    int64_t max_age_ms; /* 0 = no limit: segments whose newest event is older go */
    uint64_t max_bytes; /* 0 = no limit: the oldest segments go past it */
} ch_evstore_retention;

/* "30d", "500MB", "30d,2GB" (age and/or size, either order). CH_EPARSE with the reason. */
int ch_evstore_retention_parse(const char *s, ch_evstore_retention *out, ch_error *err);

typedef struct ch_evstore_source_stats {
    uint64_t events, bytes, raw_bytes, segments;
    uint64_t hot_segments, hot_bytes; /* of segments, bytes: sealed hot, not compacted yet */
    int64_t min_ts, max_ts;           /* INT64_MAX / INT64_MIN when no events */
} ch_evstore_source_stats;

typedef struct ch_evstore_stats {
    ch_evstore_source_stats by_ds[CH_DS__COUNT];
    uint64_t damaged;     /* segments that could not be read */
    uint64_t open_events; /* events not sealed yet (this process) */
    uint64_t retired;     /* segments removed by retention (this process) */
    uint64_t uncommitted; /* segment files of an uncommitted generation removed at open */
} ch_evstore_stats;

/* Called per segment by verify: path, and NULL or the reason it is damaged. */
typedef void (*ch_evstore_verify_fn)(void *ud, const char *path, uint64_t events,
                                     const char *problem);

typedef struct ch_evstore_ops {
    const char *name;
    int (*add)(void *impl, const ch_event *ev, uint64_t rid, ch_error *err);
    /* Seal the open segments: their files are written while the caller goes on, and the
     * next flush waits for them. Nothing is acknowledged until that flush commits. */
    int (*seal)(void *impl, ch_error *err);
    /* Seal what is still open, wait until every sealed segment is on disk, and record the
     * generation in db's open transaction. */
    int (*flush)(void *impl, ch_store *db, int64_t now_ms, ch_error *err);
    /* The transaction that flush joined committed. */
    void (*committed)(void *impl);
    int (*stats)(void *impl, ch_evstore_stats *out, ch_error *err);
    /* Returns the number of damaged segments. */
    long (*verify)(void *impl, ch_evstore_verify_fn fn, void *ud, ch_error *err);
    /* Run s (store/search.h) over the committed segments that overlap its time range. */
    int (*search)(void *impl, ch_search *s, ch_error *err);
    void (*close)(void *impl);
} ch_evstore_ops;

typedef struct ch_evstore {
    const ch_evstore_ops *ops;
    void *impl;
} ch_evstore;

/* The local store of the SQLite database db (borrowed for the call: it reads the committed
 * generation). Creates `<path>.events/` when writable. With writable, files of uncommitted
 * generations are removed. */
int ch_evstore_open_local(ch_store *db, bool writable, const ch_evstore_retention *ret,
                          ch_evstore **out, ch_error *err);
void ch_evstore_close(ch_evstore *s);

static inline int ch_evstore_add(ch_evstore *s, const ch_event *ev, uint64_t rid, ch_error *err)
{
    return s->ops->add(s->impl, ev, rid, err);
}

static inline int ch_evstore_seal(ch_evstore *s, ch_error *err)
{
    return s->ops->seal(s->impl, err);
}
static inline int ch_evstore_flush(ch_evstore *s, ch_store *db, int64_t now_ms, ch_error *err)
{
    return s->ops->flush(s->impl, db, now_ms, err);
}
static inline void ch_evstore_committed(ch_evstore *s) { s->ops->committed(s->impl); }

/* The pipeline's writer on db: the local store, locked for this process (a second writer,
 * e.g. `analyze` while `serve` runs, gets *out == NULL and a warning in warn: its events are
 * not kept rather than interleaved). retention NULL = the one saved in db by an earlier
 * --retention or `store retention` (none: keep everything); a given one is saved. */
int ch_evstore_attach(ch_store *db, const char *retention, ch_evstore **out, char *warn,
                      size_t wcap, ch_error *err);
/* Save / read the retention of db's event store ("" = keep everything). */
int ch_evstore_retention_save(ch_store *db, const char *retention, ch_error *err);

/* Hot ingest: `analyze --db` and `serve` seal segments cheaply and compaction rewrites them
 * cold (format 6, full compression): `serve` once their hour has closed, `coinhound store
 * compact` on demand. "on": hot at zstd level 1 (an older readable format). "raw": hot segments
 * whose frames are stored, not compressed (the cheapest seal, about 5.7x a level-1 hot
 * segment's bytes until compaction; docs/BENCHMARKS.md section 57). "auto" (the default): raw
 * while the store's hot bytes stay within a budget fixed at open (local.c, raw_budget), level 1
 * after (section 65). "off": segments are sealed cold at once. Saved in db (`coinhound store
 * hot auto|on|off|raw`, serve's store_hot); set refuses another value (CH_EUSAGE); mode gives
 * one of the four as a static string, COINHOUND_STORE_HOT=0|1|raw|auto overriding the saved one
 * (benchmarks), and without it a benchmark knob of segment.c (COINHOUND_STORE_FORMAT, _LEVEL,
 * _ORIG_LEVEL, _DICT) makes it "off". */
int ch_evstore_hot_set(ch_store *db, const char *mode, ch_error *err);
/* Whether mode is one of the four ch_evstore_hot_set takes. */
bool ch_evstore_hot_known(const char *mode);
int ch_evstore_hot_mode(ch_store *db, const char **mode, ch_error *err);

/* What ch_evstore_compact did: merges written, their input segments (hot ones among them),
 * events and bytes in and out, segments removed (inputs of merges, also of earlier ones that a
 * crash or a writer's exit left), and merges that failed (the first one's reason). */
typedef struct ch_evstore_compact_result {
    uint64_t merges, inputs, hot_inputs, events, bytes_in, bytes_out, removed, failed;
    char first_failure[512];
} ch_evstore_compact_result;

/* Rewrite every hot segment of db's event store cold and merge each source and hour into as
 * few segments as COMPACT_MAX_BYTES allows, under the store's writer lock (CH_EUSAGE when
 * another process writes the store: `serve` compacts its own). Crash-safe as `serve`'s
 * compaction is: a merge becomes visible by one rename and hides its inputs, which are removed
 * after it. A merge that fails (a damaged input) leaves its hour as it was and is counted. */
int ch_evstore_compact(ch_store *db, ch_evstore_compact_result *out, ch_error *err);

/* The directory of a database's segments into buf ("<db>.events"). */
int ch_evstore_dir(const char *db_path, char *buf, size_t cap);

#endif
