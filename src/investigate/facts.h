/*
 * facts.h - what the investigation views are drawn from: the entities and relations seen around
 * each offense (its graph) and each user's firsts (first login from a country, first use of a
 * region, an instance type, an API), gathered by the pipeline as events pass and saved in the
 * checkpoint's transaction.
 *
 * Graph facts. For every event whose acting principal has an active offense (directly, or
 * through identity lineage to its creator's), and for every rule hit, the relations the event
 * shows are added to that offense: principal -> access key, source address (country, ASN),
 * user agent, region, created principal, launched instance (type, image) -> interface ->
 * private address; instance -> queried domain, remote address (port); value -> indicator (feed,
 * confidence); rule -> principal or instance. An edge is (offense, kind, from, to) with first
 * and last event time and a count; a node is (offense, id) with its kind, label and attributes.
 * Nodes are ids like "user:root", "ip:5.255.255.5", "instance:i-0abc", so the same entity is one
 * node whatever event shows it.
 *
 * User facts: (user, kind, value) with the earliest event time and that event's id, kinds
 * "login_country", "country", "region", "instance_type", "api".
 *
 * Memory: only what changed since the last save is held (the store sums counts and widens times
 * on save), at most CH_FACTS_MAX_PENDING graph facts and as many users' firsts; past it new facts
 * are counted as dropped, and an offense takes at most CH_FACTS_MAX_EDGES_PER_OFFENSE new edges per
 * checkpoint interval (a port scan of an instance would otherwise make every address a node). Each
 * event costs a few hash probes.
 *
 * Store: tables graph_nodes, graph_edges and user_firsts, the "investigate" component of the
 * store's file (its own schema version, core/sqlite_util.h). Saving is an upsert per changed
 * fact with bound parameters (in primary-key order, 32 rows to a statement), inside the caller's
 * transaction.
 *
 * Ownership: ch_facts_new allocates, ch_facts_free releases; events and offenses are borrowed
 * for the call only (offense pointers are kept until the next save: offenses never move during a
 * run). One thread at a time (the writer's thread is the module's own).
 */
#ifndef CH_INVESTIGATE_FACTS_H
#define CH_INVESTIGATE_FACTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/event.h"
#include "core/sqlite_util.h"
#include "offense/offense.h"
#include "rules/hit.h"

#define CH_FACTS_MAX_PENDING (1u << 20)
#define CH_FACTS_MAX_EDGES_PER_OFFENSE 20000
#define CH_FACTS_MAX_STR 512

typedef struct ch_facts ch_facts;

typedef struct ch_facts_stats {
    uint64_t edges, nodes, firsts; /* facts added (or widened) since the start */
    uint64_t dropped;              /* refused at a cap */
    uint64_t saved;                /* rows written by saves */
} ch_facts_stats;

/* CH_ENOMEM. */
int ch_facts_new(ch_facts **out, ch_error *err);
void ch_facts_free(ch_facts *f);

/* What an image runs, for instance nodes' `os`: the caller's lookup (the image catalogue's
 * verdict on what the logs taught, enrich/images.h, then the business context's image map),
 * returning a string valid until the next call or NULL when unknown. Without it (or when it knows
 * nothing) the RunInstances response's `platform` ("windows") is all there is. */
typedef const char *(*ch_facts_image_os_fn)(void *ud, const char *ami, size_t n);
void ch_facts_set_image_os(ch_facts *f, ch_facts_image_os_fn fn, void *ud);

/* The facts of ev for offense o (may be NULL: only the user's firsts are kept). A record that
 * creates or empowers another user (enrich/lineage.h) adds the edge creator -> created. */
int ch_facts_event(ch_facts *f, const ch_event *ev, ch_offense *o);
/* A rule that fired on hit->event joined offense o: the rule node and its edge. */
int ch_facts_hit(ch_facts *f, const ch_rule_hit *hit, ch_offense *o);

/* Create or upgrade the tables (outside a transaction; idempotent). */
int ch_facts_schema(ch_sql *c, ch_error *err);
/* Write what changed (offense ids must be final: call after ch_store_save in the same
 * transaction) and forget it. */
int ch_facts_save(ch_facts *f, ch_sql *c, ch_error *err);
/* Start putting the graph facts in order on a thread of their own, while the caller saves the
 * rest of its checkpoint (the offenses, which give the ids, among it); ch_facts_save waits for
 * it. Optional: without it (or when the thread cannot start) ch_facts_save sorts them itself.
 * Between the two calls nothing may add facts; a checkpoint that fails before ch_facts_save
 * calls ch_facts_save_abandon (waits for the thread, keeps the facts for the next save). */
void ch_facts_save_prepare(ch_facts *f);
void ch_facts_save_abandon(ch_facts *f);

/* The users' firsts on a thread of their own (facts.c): ch_facts_event hands each event's firsts
 * to it; it keeps them, sorts the ones that are new or moved back as they come and writes them
 * when it stops, on its own connection to the store's file at path, in one transaction that it
 * commits before ch_facts_writer_stop returns (its frames are then copied from the WAL into the
 * database file on that thread, beside the checkpoint); ch_facts_save then writes the graph
 * facts and the rest. A first written ahead of its
 * checkpoint is one the rerun after a crash writes again unchanged (the earlier time wins, a tie
 * keeps the row). Call ch_facts_writer_stop before a checkpoint's transaction begins (the
 * thread holds the file's write lock) and before ch_facts_free (which stops it too). stop
 * returns the thread's failure, after which the firsts it had are written by the next
 * ch_facts_save instead. */
int ch_facts_writer_start(ch_facts *f, const char *path, ch_error *err);
int ch_facts_writer_stop(ch_facts *f, ch_error *err);

void ch_facts_stats_get(const ch_facts *f, ch_facts_stats *out);

#endif
