/*
 * lineage.h - identity lineage: which principal created or empowered which.
 *
 * A cryptojacker who holds root rarely mines as root: he creates a user, gives it a key or a
 * console password (or attaches a policy, adds it to a group) and launches from that user, or
 * assumes a role and works from the session. Without lineage the analyst sees two unrelated
 * offenses, one for root and one for the new user. ch_lineage_observe learns from successful
 * CloudTrail records:
 *     CreateUser, CreateLoginProfile, UpdateLoginProfile, CreateAccessKey,
 *     AttachUserPolicy, PutUserPolicy, AddUserToGroup   requestParameters.userName -> caller
 *     AssumeRole                                         "ROLE/SESSION" -> caller
 * A record whose target is the caller itself (a user making its own key) teaches nothing. The
 * first creator of a principal stays its parent (a later admin who resets a password does not
 * take over an attacker's user); later records of the same link only widen its times and count.
 * A link that would close a cycle is refused.
 *
 * The pipeline asks ch_lineage_resolve for the nearest ancestor that satisfies a predicate
 * (one with an active offense), so that the created principal's hits, and those of the
 * instances it launched (entity linking names it on their DNS and flows), join the creator's
 * offense. Keys are user names (offenses are indexed by user.name, which carries no account);
 * a role session is "ROLE/SESSION" (IAM user and role names cannot contain '/').
 *
 * Memory: at most `cap` links (default CH_LINEAGE_DEFAULT_CAP); past it new links are counted
 * as dropped, never evicting old ones: an attacker cannot flush his own trail by creating
 * thousands of users. Each link costs its strings plus ~80 bytes. Lookups are O(1) expected
 * (open addressing); resolve walks at most CH_LINEAGE_MAX_DEPTH parents.
 *
 * Persistence: ch_lineage_save writes the links as text (one per line, fields hex-encoded since
 * names come from logs) for the pipeline's checkpoint; ch_lineage_load reads it back, skipping
 * and counting lines it cannot read.
 *
 * Ownership: the table owns its strings; views it hands out borrow from it until the next
 * observe/load or ch_lineage_free. One thread at a time.
 */
#ifndef CH_ENRICH_LINEAGE_H
#define CH_ENRICH_LINEAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/event.h"

#define CH_LINEAGE_DEFAULT_CAP (1u << 16)
#define CH_LINEAGE_MAX_DEPTH 8
#define CH_LINEAGE_MAX_STR 512

typedef struct ch_lineage ch_lineage;

typedef struct ch_lineage_link {
    ch_sv child;    /* the created principal: a user name or "ROLE/SESSION" */
    ch_sv parent;   /* the creator's user.name */
    ch_sv relation; /* the first CloudTrail action that made the link */
    ch_sv account;
    int64_t first_ms, last_ms;
    uint64_t count; /* records that confirmed the link */
} ch_lineage_link;

typedef struct ch_lineage_stats {
    uint64_t learned;   /* links made */
    uint64_t refreshed; /* records confirming an existing link */
    uint64_t dropped;   /* links refused at the cap */
    uint64_t cycles;    /* links refused because they would close a cycle */
    uint64_t bad;       /* malformed records or stored lines */
    uint64_t resolved;  /* ch_lineage_resolve calls that found an ancestor */
} ch_lineage_stats;

/* cap 0 = CH_LINEAGE_DEFAULT_CAP. CH_ENOMEM. */
int ch_lineage_new(size_t cap, ch_lineage **out, ch_error *err);
void ch_lineage_free(ch_lineage *l);

/* Learn from ev (see the top). Returns 1 when a link was made, 0 otherwise, CH_ENOMEM. */
int ch_lineage_observe(ch_lineage *l, const ch_event *ev);

/* Add a link as stored (offense/lineage_store.c reads its rows through this), or widen the
 * known link of the same child and parent. 1 made, 0 widened or refused (counted as
 * ch_lineage_observe's would be), CH_ENOMEM. */
int ch_lineage_put(ch_lineage *l, const ch_lineage_link *k);

/* The link whose child is name, or false. */
bool ch_lineage_get(const ch_lineage *l, const char *name, size_t n, ch_lineage_link *out);

/* The key of the principal acting in an event: "ROLE/SESSION" for an assumed-role session that
 * has a link, else user.name. Written into buf (cap bytes); returns its length (0: none). */
size_t ch_lineage_principal(const ch_lineage *l, const ch_event *ev, char *buf, size_t cap);

typedef bool (*ch_lineage_pred)(void *ud, const char *name, size_t n);

/* Walk up from the principal `name` (its parent, the parent's parent...) and return in *out
 * (borrowed) the first ancestor for which pred is true (pred NULL: the topmost ancestor).
 * Returns true when one was found. */
bool ch_lineage_resolve(ch_lineage *l, const char *name, size_t n, ch_lineage_pred pred, void *ud,
                        ch_sv *out);

typedef int (*ch_lineage_fn)(void *ud, const ch_lineage_link *link);
/* Every link in learning order; stops at fn's first non-zero result and returns it. */
int ch_lineage_each(const ch_lineage *l, ch_lineage_fn fn, void *ud);

size_t ch_lineage_count(const ch_lineage *l);
/* True when links were made or refreshed since the last ch_lineage_clear_dirty. */
bool ch_lineage_dirty(const ch_lineage *l);
/* Every link made or refreshed since the last ch_lineage_clear_dirty (each once); stops at fn's
 * first non-zero result and returns it. */
int ch_lineage_each_dirty(const ch_lineage *l, ch_lineage_fn fn, void *ud);
void ch_lineage_clear_dirty(ch_lineage *l);
/* Count every link as changed (a table converted from the text form is written whole). */
void ch_lineage_mark_all_dirty(ch_lineage *l);

/* Append every link as text to b (the form stores kept before offense/lineage_store.c). */
int ch_lineage_save(const ch_lineage *l, ch_buf *b);
/* Links from text written by ch_lineage_save (into an empty or filled table; links already
 * known are widened). Bad lines are skipped and counted in stats.bad. Returns the links read,
 * or CH_ENOMEM. */
int ch_lineage_load(ch_lineage *l, const char *text, size_t n);

void ch_lineage_stats_get(const ch_lineage *l, ch_lineage_stats *out);

#endif
