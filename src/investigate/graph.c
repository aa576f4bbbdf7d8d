/*
 * graph.c - loading an offense's facts, grouping and summarising them (graph.h), and writing
 * cytoscape.js JSON or DOT.
 *
 * Nodes are an array with a hash index by id; edges refer to nodes by index. Grouping sorts the
 * instance nodes by their group key (launching principal, type, image, region) and makes a group
 * node per run of group_min or more; edges are then rewritten onto the groups and merged through
 * a second index by (source, target, kind). Hub summarising sorts the (node, neighbour kind,
 * edge) incidences once. Everything is O(n log n) in the rows of one offense, bounded by
 * CH_GRAPH_MAX_ROWS.
 */
#include "investigate/graph.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/hindex.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/timeparse.h"

typedef struct gnode {
    char *id, *kind, *label, *attrs; /* attrs: a JSON object's text */
    int64_t first, last;
    uint64_t count;
    long group;        /* the group node it was folded into, or -1 */
    bool hidden;       /* not drawn (folded into a group, or summarised away) */
    bool summarised;   /* one of its edges went into a summary node */
    char *gkey;        /* instances: launcher|type|image|region */
    int64_t launch_ms; /* instances: launch time (INT64_MIN unknown) */
} gnode;

typedef struct gedge {
    size_t s, d;
    char *kind;
    int64_t first, last;
    uint64_t count;
    bool hidden;
} gedge;

struct ch_graph {
    int64_t offense;
    gnode *n;
    size_t nn, capn;
    gedge *e;
    size_t ne, cape;
    ch_hindex ix;
    uint64_t truncated;
    size_t groups, grouped, summaries, summarised;
};

void ch_graph_free(ch_graph *g)
{
    if (g == NULL)
        return;
    for (size_t i = 0; i < g->nn; i++) {
        ch_free(g->n[i].id);
        ch_free(g->n[i].kind);
        ch_free(g->n[i].label);
        ch_free(g->n[i].attrs);
        ch_free(g->n[i].gkey);
    }
    for (size_t i = 0; i < g->ne; i++)
        ch_free(g->e[i].kind);
    ch_free(g->n);
    ch_free(g->e);
    ch_hindex_free(&g->ix);
    ch_free(g);
}

typedef struct idkey {
    const ch_graph *g;
    const char *id;
} idkey;

/* Index items are node indices + 1 carried as pointers (0 is the empty slot). */
static bool node_eq(const void *item, const void *key)
{
    const idkey *k = key;
    size_t i = (size_t)(uintptr_t)item - 1;
    return strcmp(k->g->n[i].id, k->id) == 0;
}

static long find_node(const ch_graph *g, const char *id)
{
    idkey k = {g, id};
    void *it = ch_hindex_find(&g->ix, ch_hash_bytes(id, strlen(id)), node_eq, &k);
    return it ? (long)((uintptr_t)it - 1) : -1;
}

static long add_node(ch_graph *g, const char *id, const char *kind, const char *label,
                     const char *attrs, int64_t first, int64_t last, uint64_t count)
{
    long at = find_node(g, id);
    if (at >= 0)
        return at;
    if (ch_hindex_reserve(&g->ix, g->nn + 1, 64) < 0)
        return CH_ENOMEM;
    if (g->nn == g->capn) {
        gnode *nv = ch_grow(g->n, &g->capn, 64, sizeof *nv);
        if (nv == NULL)
            return CH_ENOMEM;
        g->n = nv;
    }
    gnode *x = &g->n[g->nn];
    *x = (gnode){.id = ch_strdup(id),
                 .kind = ch_strdup(kind),
                 .label = ch_strdup(label),
                 .attrs = ch_strdup(attrs && *attrs == '{' ? attrs : "{}"),
                 .first = first,
                 .last = last,
                 .count = count,
                 .group = -1};
    if (!x->id || !x->kind || !x->label || !x->attrs) {
        ch_free(x->id);
        ch_free(x->kind);
        ch_free(x->label);
        ch_free(x->attrs);
        return CH_ENOMEM;
    }
    g->nn++;
    idkey k = {g, id};
    uint64_t h = ch_hash_bytes(id, strlen(id));
    ch_hindex_set(&g->ix, ch_hindex_probe(&g->ix, h, node_eq, &k), h, (void *)(uintptr_t)g->nn);
    return (long)(g->nn - 1);
}

static int add_edge(ch_graph *g, size_t s, size_t d, const char *kind, int64_t first, int64_t last,
                    uint64_t count)
{
    if (g->ne == g->cape) {
        gedge *nv = ch_grow(g->e, &g->cape, 64, sizeof *nv);
        if (nv == NULL)
            return CH_ENOMEM;
        g->e = nv;
    }
    char *k = ch_strdup(kind);
    if (k == NULL)
        return CH_ENOMEM;
    g->e[g->ne++] = (gedge){s, d, k, first, last, count, false};
    return 0;
}

/* ---- loading ----------------------------------------------------------------------------- */

/* A string member of a JSON object text into out (cap bytes), "" when absent. */
static void attr_get(const char *attrs, const char *name, char *out, size_t cap)
{
    out[0] = '\0';
    ch_json_parser *p = ch_json_parser_new(1 << 20, 16);
    if (p == NULL)
        return;
    ch_json_val root, v;
    ch_error err = {0};
    const char *s;
    size_t n;
    size_t len = strlen(attrs);
    if (ch_json_parse(p, attrs, len, len, &root, &err) == 0 &&
        ch_json_obj_get(root, name, strlen(name), &v) && ch_json_get_str(v, &s, &n))
        snprintf(out, cap, "%.*s", (int)n, s);
    ch_json_parser_free(p);
}

static int load_rows(ch_graph *g, ch_sql *c, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = ch_sql_prepare(c->db, c->path,
                            "SELECT id, kind, label, attrs, first_seen, last_seen, count FROM"
                            " graph_nodes WHERE offense_id = ?1 ORDER BY id",
                            &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, g->offense);
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (g->nn >= CH_GRAPH_MAX_ROWS) {
            g->truncated++;
            continue;
        }
        long at =
            add_node(g, ch_sql_col_text(st, 0), ch_sql_col_text(st, 1), ch_sql_col_text(st, 2),
                     ch_sql_col_text(st, 3), sqlite3_column_int64(st, 4),
                     sqlite3_column_int64(st, 5), (uint64_t)sqlite3_column_int64(st, 6));
        if (at < 0) {
            sqlite3_finalize(st);
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        }
    }
    sqlite3_finalize(st);
    if (s != SQLITE_DONE)
        return ch_sql_error(c->db, c->path, err, "reading graph nodes");
    if ((rc = ch_sql_prepare(c->db, c->path,
                             "SELECT kind, src, dst, first_seen, last_seen, count FROM"
                             " graph_edges WHERE offense_id = ?1 ORDER BY src, dst, kind",
                             &st, err)) < 0)
        return rc;
    sqlite3_bind_int64(st, 1, g->offense);
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        if (g->ne >= CH_GRAPH_MAX_ROWS) {
            g->truncated++;
            continue;
        }
        const char *src = ch_sql_col_text(st, 1), *dst = ch_sql_col_text(st, 2);
        long a = find_node(g, src), b = find_node(g, dst);
        if (a < 0 || b < 0) {
            g->truncated++; /* an end past the node cap */
            continue;
        }
        if (add_edge(g, (size_t)a, (size_t)b, ch_sql_col_text(st, 0), sqlite3_column_int64(st, 3),
                     sqlite3_column_int64(st, 4), (uint64_t)sqlite3_column_int64(st, 5)) < 0) {
            sqlite3_finalize(st);
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        }
    }
    sqlite3_finalize(st);
    if (s != SQLITE_DONE)
        return ch_sql_error(c->db, c->path, err, "reading graph edges");
    return 0;
}

/* An instance seen only in DNS or flows has no launch attributes: the entity links (who
 * launched it, from which image, where) fill the group key. */
static void instance_key(ch_graph *g, ch_sql *c, gnode *x)
{
    char by[256], type[128], image[128], region[64];
    /* A node made from its launch was first seen at the launch. */
    x->launch_ms = x->first;
    attr_get(x->attrs, "launched_by", by, sizeof by);
    attr_get(x->attrs, "type", type, sizeof type);
    attr_get(x->attrs, "image", image, sizeof image);
    attr_get(x->attrs, "region", region, sizeof region);
    if (by[0] == '\0') {
        sqlite3_stmt *st = NULL;
        ch_error e2 = {0};
        if (ch_sql_prepare(c->db, c->path,
                           "SELECT user, image, region, launched_ms FROM entity_links WHERE"
                           " kind = 'i' AND key = ?1",
                           &st, &e2) == 0) {
            sqlite3_bind_text(st, 1, x->label, -1, SQLITE_STATIC);
            if (sqlite3_step(st) == SQLITE_ROW) {
                snprintf(by, sizeof by, "%s", ch_sql_col_text(st, 0));
                snprintf(image, sizeof image, "%s", ch_sql_col_text(st, 1));
                snprintf(region, sizeof region, "%s", ch_sql_col_text(st, 2));
                x->launch_ms = sqlite3_column_int64(st, 3);
            }
            sqlite3_finalize(st);
        }
    }
    (void)g;
    size_t n = strlen(by) + strlen(type) + strlen(image) + strlen(region) + 4;
    x->gkey = ch_malloc(n);
    if (x->gkey != NULL)
        snprintf(x->gkey, n, "%s|%s|%s|%s", by, type, image, region);
}

/* ---- grouping ---------------------------------------------------------------------------- */

static const ch_graph *sort_graph; /* qsort has no context argument; one graph at a time */

/* The launcher: the group key up to its first '|'. */
static size_t launcher_len(const gnode *x)
{
    const char *k = x->gkey ? x->gkey : "";
    const char *bar = strchr(k, '|');
    return bar ? (size_t)(bar - k) : strlen(k);
}

static bool same_launcher(const gnode *x, const gnode *y)
{
    size_t a = launcher_len(x), b = launcher_len(y);
    return a == b && (a == 0 || memcmp(x->gkey, y->gkey, a) == 0);
}

/* By launcher, then launch time: a burst is a run of one launcher's launches. */
static int cmp_gkey(const void *a, const void *b)
{
    const gnode *x = &sort_graph->n[*(const size_t *)a], *y = &sort_graph->n[*(const size_t *)b];
    size_t la = launcher_len(x), lb = launcher_len(y);
    int c = memcmp(x->gkey ? x->gkey : "", y->gkey ? y->gkey : "", la < lb ? la : lb);
    if (c == 0 && la != lb)
        c = la < lb ? -1 : 1;
    if (c == 0 && x->launch_ms != y->launch_ms)
        c = x->launch_ms < y->launch_ms ? -1 : 1;
    return c ? c : strcmp(x->id, y->id);
}

/* Distinct values of group-key field i (1 type, 2 image, 3 region) of the members, as a JSON
 * array of at most 20. */
static int distinct_field(ch_buf *b, const ch_graph *g, const size_t *mem, size_t cnt, int fi)
{
    char seen[20][128];
    size_t ns = 0;
    int rc = ch_buf_addc(b, '[');
    for (size_t i = 0; i < cnt && rc >= 0 && ns < 20; i++) {
        const char *p = g->n[mem[i]].gkey ? g->n[mem[i]].gkey : "";
        for (int k = 0; k < fi && p; k++) {
            p = strchr(p, '|');
            p = p ? p + 1 : NULL;
        }
        if (p == NULL)
            continue;
        const char *bar = strchr(p, '|');
        size_t len = bar ? (size_t)(bar - p) : strlen(p);
        if (len == 0 || len >= sizeof seen[0])
            continue;
        bool dup = false;
        for (size_t k = 0; k < ns && !dup; k++)
            dup = strlen(seen[k]) == len && memcmp(seen[k], p, len) == 0;
        if (dup)
            continue;
        memcpy(seen[ns], p, len);
        seen[ns][len] = '\0';
        rc = (ns ? ch_buf_addc(b, ',') : 0) < 0 ? -1 : ch_buf_add_json_str(b, p, len);
        ns++;
    }
    return rc < 0 ? rc : ch_buf_addc(b, ']');
}

static int add_json_kv(ch_buf *b, const char *k, const char *v)
{
    int rc = ch_buf_addc(b, ',');
    if (rc >= 0)
        rc = ch_buf_add_json_str(b, k, strlen(k));
    if (rc >= 0)
        rc = ch_buf_addc(b, ':');
    return rc < 0 ? rc : ch_buf_add_json_str(b, v, strlen(v));
}

static void group_id(const ch_graph *g, const size_t *mem, char *id, size_t cap)
{
    const gnode *first = &g->n[mem[0]];
    uint64_t h = ch_hash_bytes(first->gkey ? first->gkey : "", launcher_len(first));
    h = ch_hash_mix64(h ^ (uint64_t)first->launch_ms);
    snprintf(id, cap, "group:instances:%016llx", (unsigned long long)h);
}

static int make_group(ch_graph *g, const size_t *mem, size_t cnt)
{
    const gnode *first = &g->n[mem[0]];
    char id[64], by[256];
    group_id(g, mem, id, sizeof id);
    snprintf(by, sizeof by, "%.*s", (int)launcher_len(first), first->gkey ? first->gkey : "");
    ch_buf a;
    ch_buf_init(&a, 1 << 20);
    int rc = ch_buf_printf(&a, "{\"members_count\":%zu", cnt);
    if (rc >= 0)
        rc = add_json_kv(&a, "launched_by", by);
    if (rc >= 0 && (rc = ch_buf_adds(&a, ",\"types\":")) >= 0)
        rc = distinct_field(&a, g, mem, cnt, 1);
    if (rc >= 0 && (rc = ch_buf_adds(&a, ",\"images\":")) >= 0)
        rc = distinct_field(&a, g, mem, cnt, 2);
    if (rc >= 0 && (rc = ch_buf_adds(&a, ",\"regions\":")) >= 0)
        rc = distinct_field(&a, g, mem, cnt, 3);
    if (rc >= 0)
        rc = ch_buf_adds(&a, ",\"members\":[");
    int64_t f = INT64_MAX, l = INT64_MIN;
    uint64_t total = 0;
    for (size_t i = 0; i < cnt && rc >= 0; i++) {
        const gnode *m = &g->n[mem[i]];
        if (i < CH_GRAPH_MAX_MEMBERS)
            rc = (i ? ch_buf_addc(&a, ',') : 0) < 0
                     ? -1
                     : ch_buf_add_json_str(&a, m->label, strlen(m->label));
        f = m->first < f ? m->first : f;
        l = m->last > l ? m->last : l;
        total += m->count;
    }
    if (rc >= 0)
        rc = ch_buf_addc(&a, ']');
    if (rc >= 0)
        rc = ch_buf_addc(&a, '}');
    char label[320];
    snprintf(label, sizeof label, "%zu instances launched by %.200s", cnt, by[0] ? by : "?");
    long gi = rc >= 0 ? add_node(g, id, "instance_group", label, a.data, f, l, total) : rc;
    ch_buf_free(&a);
    if (gi < 0)
        return (int)gi;
    g->groups++;
    for (size_t i = 0; i < cnt; i++) {
        g->n[mem[i]].group = gi;
        g->n[mem[i]].hidden = true;
        g->grouped++;
    }
    return 0;
}

/* Interfaces and private addresses of grouped instances fold into the group too. */
static void fold_attachments(ch_graph *g)
{
    for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < g->ne; i++) {
            gedge *e = &g->e[i];
            const char *want = pass == 0 ? "interface" : "private_ip";
            gnode *s = &g->n[e->s], *d = &g->n[e->d];
            if (strcmp(e->kind, want) != 0 || s->group < 0 || d->group >= 0)
                continue;
            d->group = s->group;
            d->hidden = true;
            e->hidden = true;
        }
}

typedef struct ekey {
    const ch_graph *g;
    size_t s, d;
    const char *kind;
} ekey;

static bool edge_eq(const void *item, const void *key)
{
    const ekey *k = key;
    const gedge *e = &k->g->e[(size_t)(uintptr_t)item - 1];
    return e->s == k->s && e->d == k->d && strcmp(e->kind, k->kind) == 0;
}

/* Rewrite edges onto group nodes and merge the ones that become the same. */
static int merge_edges(ch_graph *g)
{
    ch_hindex ix = {0};
    int rc = 0;
    size_t n0 = g->ne;
    for (size_t i = 0; i < n0 && rc == 0; i++) {
        gedge *e = &g->e[i];
        if (e->hidden)
            continue;
        size_t s = g->n[e->s].group >= 0 ? (size_t)g->n[e->s].group : e->s;
        size_t d = g->n[e->d].group >= 0 ? (size_t)g->n[e->d].group : e->d;
        if (s == e->s && d == e->d)
            continue;
        e->hidden = true;
        if (s == d)
            continue;
        ekey k = {g, s, d, e->kind};
        uint64_t h = ch_hash_bytes(e->kind, strlen(e->kind)) ^ ch_hash_mix64(s * 31 + d);
        if (ch_hindex_reserve(&ix, g->ne + 1, 64) < 0) {
            rc = CH_ENOMEM;
            break;
        }
        size_t slot = ch_hindex_probe(&ix, h, edge_eq, &k);
        if (ix.slots[slot].item != NULL) {
            gedge *m = &g->e[(size_t)(uintptr_t)ix.slots[slot].item - 1];
            m->first = e->first < m->first ? e->first : m->first;
            m->last = e->last > m->last ? e->last : m->last;
            m->count += e->count;
            continue;
        }
        int64_t f = e->first, l = e->last;
        uint64_t c = e->count;
        char *kind = e->kind; /* add_edge may move g->e */
        char kcopy[128];
        snprintf(kcopy, sizeof kcopy, "%s", kind);
        if ((rc = add_edge(g, s, d, kcopy, f, l, c)) < 0)
            break;
        k.kind = g->e[g->ne - 1].kind;
        ch_hindex_set(&ix, slot, h, (void *)(uintptr_t)g->ne);
    }
    ch_hindex_free(&ix);
    return rc;
}

/* ---- hubs -------------------------------------------------------------------------------- */

typedef struct incid {
    size_t node;
    const char *okind; /* the neighbour's kind */
    size_t edge;
    size_t other;
} incid;

static int cmp_incid(const void *a, const void *b)
{
    const incid *x = a, *y = b;
    if (x->node != y->node)
        return x->node < y->node ? -1 : 1;
    int c = strcmp(x->okind, y->okind);
    if (c)
        return c;
    uint64_t cx = sort_graph->e[x->edge].count, cy = sort_graph->e[y->edge].count;
    if (cx != cy)
        return cx > cy ? -1 : 1;
    return x->edge < y->edge ? -1 : x->edge > y->edge;
}

static int summarise_hubs(ch_graph *g, size_t hub_max)
{
    incid *v = ch_malloc((g->ne * 2 + 1) * sizeof *v);
    if (v == NULL)
        return CH_ENOMEM;
    size_t n = 0;
    for (size_t i = 0; i < g->ne; i++) {
        const gedge *e = &g->e[i];
        if (e->hidden)
            continue;
        v[n++] = (incid){e->s, g->n[e->d].kind, i, e->d};
        v[n++] = (incid){e->d, g->n[e->s].kind, i, e->s};
    }
    sort_graph = g;
    qsort(v, n, sizeof *v, cmp_incid);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0;) {
        size_t j = i;
        while (j < n && v[j].node == v[i].node && strcmp(v[j].okind, v[i].okind) == 0)
            j++;
        /* A hub is only judged from the side of a node that stays: an edge already hidden by
         * the other end's summary is skipped. */
        size_t live = 0;
        for (size_t k = i; k < j; k++)
            live += !g->e[v[k].edge].hidden;
        if (live > hub_max) {
            size_t kept = 0, more = 0;
            int64_t f = INT64_MAX, l = INT64_MIN;
            uint64_t cnt = 0;
            for (size_t k = i; k < j; k++) {
                gedge *e = &g->e[v[k].edge];
                if (e->hidden)
                    continue;
                if (kept < hub_max) {
                    kept++;
                    continue;
                }
                e->hidden = true;
                g->n[v[k].other].summarised = true;
                more++;
                f = e->first < f ? e->first : f;
                l = e->last > l ? e->last : l;
                cnt += e->count;
            }
            char id[512], label[128], attrs[160];
            snprintf(id, sizeof id, "more:%s:%s", g->n[v[i].node].id, v[i].okind);
            snprintf(label, sizeof label, "%zu more %s", more, v[i].okind);
            snprintf(attrs, sizeof attrs, "{\"summarised\":%zu,\"of_kind\":\"%s\"}", more,
                     v[i].okind);
            size_t hub = v[i].node;
            long si = add_node(g, id, "summary", label, attrs, f, l, cnt);
            if (si < 0 || (rc = add_edge(g, hub, (size_t)si, "more", f, l, cnt)) < 0) {
                rc = CH_ENOMEM;
                break;
            }
            g->summaries++;
            g->summarised += more;
        }
        i = j;
    }
    ch_free(v);
    if (rc < 0)
        return rc;
    /* Nodes summarised away that no visible edge reaches any more are not drawn. */
    size_t *deg = ch_calloc(g->nn + 1, sizeof *deg);
    if (deg == NULL)
        return CH_ENOMEM;
    for (size_t i = 0; i < g->ne; i++)
        if (!g->e[i].hidden) {
            deg[g->e[i].s]++;
            deg[g->e[i].d]++;
        }
    for (size_t i = 0; i < g->nn; i++)
        if (g->n[i].summarised && deg[i] == 0)
            g->n[i].hidden = true;
    ch_free(deg);
    return 0;
}

int ch_graph_load(ch_sql *c, int64_t offense_id, const ch_graph_opts *o, ch_graph **out,
                  ch_error *err)
{
    *out = NULL;
    ch_graph_opts d = {0};
    if (o == NULL)
        o = &d;
    size_t group_min = o->group_min ? o->group_min : CH_GRAPH_DEFAULT_GROUP_MIN;
    size_t hub_max = o->hub_max ? o->hub_max : CH_GRAPH_DEFAULT_HUB_MAX;
    sqlite3_stmt *st = NULL;
    int rc = ch_sql_prepare(c->db, c->path, "SELECT 1 FROM offenses WHERE id = ?1", &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_int64(st, 1, offense_id);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    if (s == SQLITE_DONE)
        return ch_error_set(err, CH_ENOTFOUND, "no offense %lld", (long long)offense_id);
    if (s != SQLITE_ROW)
        return ch_sql_error(c->db, c->path, err, "reading the offense");
    ch_graph *g = ch_calloc(1, sizeof *g);
    if (g == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    g->offense = offense_id;
    if ((rc = load_rows(g, c, err)) < 0)
        goto fail;
    size_t *inst = ch_malloc((g->nn + 1) * sizeof *inst);
    if (inst == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto fail;
    }
    size_t ni = 0;
    for (size_t i = 0; i < g->nn; i++)
        if (strcmp(g->n[i].kind, "instance") == 0) {
            instance_key(g, c, &g->n[i]);
            inst[ni++] = i;
        }
    sort_graph = g;
    qsort(inst, ni, sizeof *inst, cmp_gkey);
    /* A burst: one launcher's launches, each within CH_GRAPH_BURST_GAP_MS of the one before. */
    for (size_t i = 0; i < ni && rc == 0;) {
        size_t j = i + 1;
        while (j < ni && same_launcher(&g->n[inst[i]], &g->n[inst[j]]) &&
               launcher_len(&g->n[inst[i]]) > 0 &&
               g->n[inst[j]].launch_ms - g->n[inst[j - 1]].launch_ms <= CH_GRAPH_BURST_GAP_MS)
            j++;
        if (j - i >= group_min && group_min > 1) {
            char id[64];
            group_id(g, inst + i, id, sizeof id);
            if (o->expand == NULL || strcmp(o->expand, id) != 0)
                rc = make_group(g, inst + i, j - i);
        }
        i = j;
    }
    ch_free(inst);
    if (rc < 0) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto fail;
    }
    fold_attachments(g);
    if (merge_edges(g) < 0 || summarise_hubs(g, hub_max) < 0) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto fail;
    }
    *out = g;
    return 0;
fail:
    ch_graph_free(g);
    return rc;
}

/* ---- output ------------------------------------------------------------------------------ */

static int add_time(ch_buf *b, int64_t ms)
{
    char t[40];
    size_t n = ch_time_format(ms, t);
    return ch_buf_add_json_str(b, t, n);
}

int ch_graph_json(const ch_graph *g, ch_buf *b)
{
    size_t vn = 0, ve = 0;
    int rc = ch_buf_printf(b, "{\"offense\":%lld,\"elements\":{\"nodes\":[", (long long)g->offense);
    for (size_t i = 0; i < g->nn && rc >= 0; i++) {
        const gnode *x = &g->n[i];
        if (x->hidden)
            continue;
        if ((vn++ && (rc = ch_buf_addc(b, ',')) < 0) ||
            (rc = ch_buf_adds(b, "{\"data\":{\"id\":")) < 0 ||
            (rc = ch_buf_add_json_str(b, x->id, strlen(x->id))) < 0 ||
            (rc = add_json_kv(b, "label", x->label)) < 0 ||
            (rc = add_json_kv(b, "kind", x->kind)) < 0 ||
            (rc = ch_buf_adds(b, ",\"first\":")) < 0 || (rc = add_time(b, x->first)) < 0 ||
            (rc = ch_buf_adds(b, ",\"last\":")) < 0 || (rc = add_time(b, x->last)) < 0 ||
            (rc = ch_buf_printf(b, ",\"count\":%llu", (unsigned long long)x->count)) < 0)
            break;
        size_t al = strlen(x->attrs);
        if (al > 2 && (rc = ch_buf_addc(b, ',')) >= 0)
            rc = ch_buf_add(b, x->attrs + 1, al - 2);
        if (rc >= 0)
            rc = ch_buf_adds(b, "}}");
    }
    if (rc >= 0)
        rc = ch_buf_adds(b, "],\"edges\":[");
    for (size_t i = 0; i < g->ne && rc >= 0; i++) {
        const gedge *e = &g->e[i];
        if (e->hidden || g->n[e->s].hidden || g->n[e->d].hidden)
            continue;
        if ((ve++ && (rc = ch_buf_addc(b, ',')) < 0) ||
            (rc = ch_buf_printf(b, "{\"data\":{\"id\":\"e%zu\",\"source\":", i)) < 0 ||
            (rc = ch_buf_add_json_str(b, g->n[e->s].id, strlen(g->n[e->s].id))) < 0 ||
            (rc = ch_buf_adds(b, ",\"target\":")) < 0 ||
            (rc = ch_buf_add_json_str(b, g->n[e->d].id, strlen(g->n[e->d].id))) < 0 ||
            (rc = add_json_kv(b, "kind", e->kind)) < 0 ||
            (rc = ch_buf_adds(b, ",\"first\":")) < 0 || (rc = add_time(b, e->first)) < 0 ||
            (rc = ch_buf_adds(b, ",\"last\":")) < 0 || (rc = add_time(b, e->last)) < 0 ||
            (rc = ch_buf_printf(b, ",\"count\":%llu}}", (unsigned long long)e->count)) < 0)
            break;
    }
    if (rc >= 0)
        rc = ch_buf_printf(b,
                           "]},\"summary\":{\"nodes\":%zu,\"edges\":%zu,\"groups\":%zu,"
                           "\"grouped\":%zu,\"summaries\":%zu,\"summarised\":%zu,"
                           "\"truncated\":%llu}}",
                           vn, ve, g->groups, g->grouped, g->summaries, g->summarised,
                           (unsigned long long)g->truncated);
    return rc < 0 ? rc : 0;
}

/* A DOT string: quotes and backslashes escaped, control and non-ASCII bytes as '?' (names come
 * from logs, and Graphviz refuses invalid UTF-8). */
static int dot_str(ch_buf *b, const char *s, size_t max)
{
    int rc = ch_buf_addc(b, '"');
    for (size_t i = 0; i < max && s[i] && rc >= 0; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            rc = ch_buf_addc(b, '\\') < 0 ? -1 : ch_buf_addc(b, (char)c);
        else
            rc = ch_buf_addc(b, c < 0x20 || c >= 0x7f ? '?' : (char)c);
    }
    return rc < 0 ? rc : ch_buf_addc(b, '"');
}

static const char *shape_of(const char *kind)
{
    static const char *const map[][2] = {
        {"root", "doubleoctagon"},
        {"user", "octagon"},
        {"role", "octagon"},
        {"access_key", "note"},
        {"address", "ellipse"},
        {"user_agent", "plaintext"},
        {"region", "folder"},
        {"instance", "box3d"},
        {"instance_group", "box3d"},
        {"interface", "cds"},
        {"private_address", "ellipse"},
        {"domain", "component"},
        {"indicator", "hexagon"},
        {"rule", "diamond"},
        {"summary", "underline"},
    };
    for (size_t i = 0; i < sizeof map / sizeof *map; i++)
        if (strcmp(map[i][0], kind) == 0)
            return map[i][1];
    return "box";
}

int ch_graph_dot(const ch_graph *g, ch_buf *b)
{
    int rc = ch_buf_printf(b,
                           "digraph offense_%lld {\n  rankdir=LR;\n"
                           "  node [fontname=\"Helvetica\", fontsize=10];\n"
                           "  edge [fontname=\"Helvetica\", fontsize=8];\n",
                           (long long)g->offense);
    char lab[700];
    for (size_t i = 0; i < g->nn && rc >= 0; i++) {
        const gnode *x = &g->n[i];
        if (x->hidden)
            continue;
        snprintf(lab, sizeof lab, "%s: %.200s", x->kind, x->label);
        if ((rc = ch_buf_adds(b, "  ")) < 0 || (rc = dot_str(b, x->id, 600)) < 0 ||
            (rc = ch_buf_adds(b, " [label=")) < 0 || (rc = dot_str(b, lab, sizeof lab)) < 0 ||
            (rc = ch_buf_printf(b, ", shape=%s];\n", shape_of(x->kind))) < 0)
            break;
    }
    for (size_t i = 0; i < g->ne && rc >= 0; i++) {
        const gedge *e = &g->e[i];
        if (e->hidden || g->n[e->s].hidden || g->n[e->d].hidden)
            continue;
        snprintf(lab, sizeof lab, "%s x%llu", e->kind, (unsigned long long)e->count);
        if ((rc = ch_buf_adds(b, "  ")) < 0 || (rc = dot_str(b, g->n[e->s].id, 600)) < 0 ||
            (rc = ch_buf_adds(b, " -> ")) < 0 || (rc = dot_str(b, g->n[e->d].id, 600)) < 0 ||
            (rc = ch_buf_adds(b, " [label=")) < 0 || (rc = dot_str(b, lab, sizeof lab)) < 0 ||
            (rc = ch_buf_adds(b, "];\n")) < 0)
            break;
    }
    if (rc >= 0)
        rc = ch_buf_adds(b, "}\n");
    return rc < 0 ? rc : 0;
}

int ch_offense_graph_json(ch_sql *c, int64_t offense_id, const ch_graph_opts *o, ch_buf *b,
                          ch_error *err)
{
    ch_graph *g = NULL;
    int rc = ch_graph_load(c, offense_id, o, &g, err);
    if (rc < 0 || g == NULL)
        return rc < 0 ? rc : ch_error_set(err, CH_ENOMEM, "out of memory");
    rc = ch_graph_json(g, b);
    ch_graph_free(g);
    return rc < 0 ? ch_error_set(err, rc, "graph too large for the output buffer") : 0;
}
