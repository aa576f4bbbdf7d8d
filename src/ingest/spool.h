/*
 * spool.h - spool directories watched by `coinhound serve`: logs as `aws s3 sync` (or any
 * copier) leaves them, picked up as they arrive and handed on in chunks, each chunk exactly
 * once across restarts and re-syncs.
 *
 * Discovery: inotify on every directory of the trees (new sub-directories are watched as they
 * appear, and walked, since files may land in them before the watch exists), plus a periodic
 * rescan of the whole trees as the fallback for what inotify cannot see (network file systems,
 * a watch cap reached, an event queue overflow). A change is handled within one poll.
 *
 * Reading: a file is known by its identity, device and inode plus a fingerprint (CRC-32 of its
 * first bytes, so that an inode reused by a new file is not mistaken for the old one), and by
 * the offset read so far. gzip files and whole JSON documents ({"Records":[...]}, arrays) are
 * read in one piece once complete (a gzip stream that ends, a document file that was closed
 * after writing or has not changed for the settle time); line files (JSON Lines, flow logs)
 * are read in chunks of whole lines as they grow, and a flow log chunk that starts past the
 * header line carries the header in front so it parses alone. A file that shrinks under the
 * same identity (copytruncate) is read again from its start, and said so.
 *
 * The ledger: every chunk handed on carries its origin text "spool:DEV:INO:FP:END:PATH", and
 * the journal keeps it with the chunk. The ledger file (ch_spool_ledger_save) holds the
 * identities and offsets together with the journal position they reflect; on start, the ledger
 * is loaded and every spool origin in the journal after that position is applied again
 * (ch_spool_ledger_note), which yields exactly what is in the journal: a restart never reads
 * a record twice, and never skips one that was not journaled. Entries of files that are gone
 * at a rescan are dropped; the ledger is capped at max_files (past it, new files are refused
 * and counted).
 *
 * Backpressure: the emit callback returns CH_ELIMIT when the journal is full; the chunk is not
 * recorded and the file is tried again later (the spool pauses, nothing is skipped).
 *
 * Threads: a spool is one thread's. Ownership: ch_spool_new allocates, ch_spool_free frees;
 * the chunk given to emit borrows from the spool during the call.
 */
#ifndef CH_INGEST_SPOOL_H
#define CH_INGEST_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define CH_SPOOL_MAX_DIRS 64
#define CH_SPOOL_DEFAULT_CHUNK (8u << 20)
#define CH_SPOOL_DEFAULT_MAX_FILES 1000000
#define CH_SPOOL_MAX_WATCHES 65536

typedef struct ch_spool_opts {
    const char *const *dirs;
    size_t ndirs;
    unsigned rescan_ms; /* full rescan period; 0 = 10 s */
    unsigned settle_ms; /* a document file unchanged this long is complete; 0 = 2 s */
    uint64_t max_chunk; /* bytes per chunk (and per whole file); 0 = CH_SPOOL_DEFAULT_CHUNK */
    size_t max_files;   /* ledger entries; 0 = CH_SPOOL_DEFAULT_MAX_FILES */
    bool no_inotify;    /* rescans only (tests; file systems without inotify) */
} ch_spool_opts;

typedef struct ch_spool_chunk {
    const char *path;
    const char *origin; /* the ledger text to journal with the chunk */
    const void *data;
    size_t len;
    uint64_t offset; /* where in the file the chunk starts (header excluded) */
} ch_spool_chunk;

/* 0 = journaled (the ledger advances); CH_ELIMIT = full, try later; other negative = stop. */
typedef int (*ch_spool_emit)(void *ud, const ch_spool_chunk *c);

/* Something worth a person's attention (a file too large, a truncation, a watch cap). */
typedef void (*ch_spool_log)(void *ud, const char *msg);

typedef struct ch_spool_stats {
    uint64_t chunks, bytes, files_done, rescans, truncated, too_large, ledger_full, paused;
    uint64_t watches, inotify_overflows;
    size_t ledger_entries;
} ch_spool_stats;

typedef struct ch_spool ch_spool;

int ch_spool_new(const ch_spool_opts *o, ch_spool **out, ch_error *err);
void ch_spool_free(ch_spool *s);
void ch_spool_set_log(ch_spool *s, ch_spool_log log, void *ud);

/* Apply one journaled origin to the ledger (replay after loading it). Origins that are not
 * spool origins are ignored. */
void ch_spool_ledger_note(ch_spool *s, const char *origin);
/* Load the ledger file; *pos_text receives the journal position it reflects ("" when the file
 * does not exist: an empty ledger). */
int ch_spool_ledger_load(ch_spool *s, const char *path, char *pos_text, size_t cap, ch_error *err);
/* Write the ledger atomically (temporary file, fsync, rename) with the journal position it
 * reflects (the end of the last chunk emitted, or later). */
int ch_spool_ledger_save(ch_spool *s, const char *path, const char *pos_text, ch_error *err);

/* Start watching (inotify) and make the first full scan due. */
int ch_spool_start(ch_spool *s, ch_error *err);
/* Wait up to timeout_ms for changes, then read what changed (and rescan when due), emitting
 * chunks. Returns the number of chunks emitted, or the negative code emit returned (other than
 * CH_ELIMIT) or a watch failure. */
int ch_spool_poll(ch_spool *s, int timeout_ms, ch_spool_emit emit, void *ud, ch_error *err);
/* Make the next poll rescan everything (e.g. after the journal had room again). */
void ch_spool_rescan_soon(ch_spool *s);
void ch_spool_stats_get(const ch_spool *s, ch_spool_stats *st);

#endif
