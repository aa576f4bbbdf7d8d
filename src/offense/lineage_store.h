/*
 * lineage_store.h - the principal lineage (enrich/lineage.h) in the store: one row per link,
 * written as links are made or change, instead of the whole table as one text blob at every
 * checkpoint. A store from before keeps its text form in the pipeline state "lineage"; it is
 * read when the table is empty and converted by the next save.
 */
#ifndef CH_OFFENSE_LINEAGE_STORE_H
#define CH_OFFENSE_LINEAGE_STORE_H

#include <stdbool.h>

#include "core/error.h"
#include "core/sqlite_util.h"
#include "enrich/lineage.h"
#include "offense/store.h"

/* The pipeline state that held the text form (ch_lineage_save) before the table. */
#define CH_LINEAGE_STATE "lineage"

/* Create or upgrade the table (component "lineage" in schema_versions). */
int ch_lineage_schema(ch_sql *c, ch_error *err);

/* The stored links into l, in learning order: the table's rows (l's changes cleared), or, when
 * the table is empty or absent (a store from before it, or one opened read-only by an older
 * build's file), the text form in CH_LINEAGE_STATE, then every link marked changed so that the
 * next ch_lineage_persist writes the table; *legacy (may be NULL) tells that the text form was
 * read. Returns the links read, or an error. */
int ch_lineage_read(ch_store *st, ch_lineage *l, bool *legacy, ch_error *err);

/* Upsert the links l made or changed since its last clear into the table, in the store's open
 * transaction; with legacy, also drop the text form. The caller clears l's changes once the
 * transaction commits. */
int ch_lineage_persist(ch_store *st, const ch_lineage *l, bool legacy, ch_error *err);

/* At most this many of a principal's children are handed out (a timeline shows them all). */
#define CH_LINEAGE_USER_CHILDREN 1000

/* own: k is the link that made the principal (its parent); else k is a link the principal
 * made. k's strings live until the callback returns. Non-zero stops the walk and is returned. */
typedef int (*ch_lineage_user_fn)(void *ud, const ch_lineage_link *k, bool own);

/* One principal's links without reading the whole table (by the child and parent indexes): the
 * link that made it, then up to CH_LINEAGE_USER_CHILDREN links it made, in learning order. A
 * store still in the text form is read whole, as ch_lineage_read does. 0, fn's value, or an
 * error. */
int ch_lineage_read_user(ch_store *st, const char *name, size_t n, ch_lineage_user_fn fn, void *ud,
                         ch_error *err);

#endif
