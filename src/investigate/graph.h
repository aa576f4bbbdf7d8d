/*
 * graph.h - the investigation graph of one offense, drawn from the facts the pipeline saved
 * (investigate/facts.h): principals (root, users, roles, access keys), source addresses with
 * country and AS, user agents, regions, instances (type, image, OS), interfaces and private
 * addresses, domains, remote (pool) addresses, indicators (feed, confidence) and the rules that
 * fired; edges with first and last event time and a count.
 *
 * Bounded, so that it can be drawn: instances of one launch burst (one principal's launches,
 * each within CH_GRAPH_BURST_GAP_MS of the one before, whatever their types and regions) become
 * one group node when there are group_min (default 5) or more of them, with the count, the
 * distinct types, images and regions, and the member ids (expand a group by its id to see its
 * members again); their
 * interfaces and private addresses are counted on the group instead of drawn; edges of members
 * merge (counts add up, times widen). Then a node with more than hub_max (default 25)
 * neighbours of one kind keeps the hub_max busiest and one summary node "N more" for the rest.
 *
 * Output: JSON in cytoscape.js's shape, {"offense":ID,"elements":{"nodes":[{"data":{...}}],
 * "edges":[{"data":{...}}]},"summary":{...}}, every attribute in `data` (id, label, kind, first,
 * last, count, and per kind: country, asn, type, image, feed, confidence, members...); or DOT
 * for Graphviz. docs/INVESTIGATION.md lists the node and edge kinds.
 *
 * Cost: O(nodes + edges) after loading the offense's rows (indexed by offense id).
 *
 * Ownership: ch_graph_load allocates a graph the caller frees with ch_graph_free; the output
 * functions append to a caller's buffer.
 */
#ifndef CH_INVESTIGATE_GRAPH_H
#define CH_INVESTIGATE_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"
#include "core/sqlite_util.h"

#define CH_GRAPH_DEFAULT_GROUP_MIN 5
#define CH_GRAPH_DEFAULT_HUB_MAX 25
#define CH_GRAPH_MAX_ROWS 200000 /* nodes or edges read for one offense at most (counted) */
#define CH_GRAPH_MAX_MEMBERS 500 /* member ids listed on a group node */
/* Launches by one principal at most this far apart are one burst (one group node). */
#define CH_GRAPH_BURST_GAP_MS (15LL * 60 * 1000)

typedef struct ch_graph ch_graph;

typedef struct ch_graph_opts {
    const char *expand; /* a group node's id whose members are drawn, or NULL */
    size_t group_min;   /* 0 = default; 1 = never group */
    size_t hub_max;     /* 0 = default */
} ch_graph_opts;

/* The graph of offense id from the store's connection. CH_ENOTFOUND when the store has no
 * offense of that id. An offense without facts gives an empty graph. */
int ch_graph_load(ch_sql *c, int64_t offense_id, const ch_graph_opts *o, ch_graph **out,
                  ch_error *err);
void ch_graph_free(ch_graph *g);

int ch_graph_json(const ch_graph *g, ch_buf *b);
int ch_graph_dot(const ch_graph *g, ch_buf *b);

/* Open nothing, load and write JSON in one call: what GET /api/v1/offenses/{id}/graph returns. */
int ch_offense_graph_json(ch_sql *c, int64_t offense_id, const ch_graph_opts *o, ch_buf *b,
                          ch_error *err);

#endif
