/*
 * timeline.c - gathering a user's story from the store (timeline.h) into one list of items,
 * sorted by event time, then writing it as JSON or text. Strings are copied out of SQLite's rows
 * into the items, so that rendering holds no statement open.
 */
#include "uba/timeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/mem.h"
#include "core/sqlite_util.h"
#include "core/timeparse.h"
#include "enrich/lineage.h"
#include "offense/lineage_store.h"
#include "investigate/facts.h"
#include "uba/risk.h"

enum { I_FIRST, I_RULE, I_OFFENSE };

typedef struct item {
    int64_t ts;
    int type;
    char *a, *b, *c; /* first: kind, value, event id; rule: rule id; offense: status, index */
    double delta, raw, score;
    int64_t id;
    int magnitude;
    bool via_graph; /* offense: holds the user through lineage (not indexed by it) */
} item;

typedef struct story {
    item *v;
    size_t n, cap;
    bool known;
    double raw, score, threshold;
    bool stands_out, fixed, has_risk;
    int64_t updated;
    char parent[CH_LINEAGE_MAX_STR * 2 + 2], relation[64];
    int64_t parent_ms;
    char **children;
    size_t nchildren;
} story;

static void story_free(story *s)
{
    for (size_t i = 0; i < s->n; i++) {
        ch_free(s->v[i].a);
        ch_free(s->v[i].b);
        ch_free(s->v[i].c);
    }
    ch_free(s->v);
    for (size_t i = 0; i < s->nchildren; i++)
        ch_free(s->children[i]);
    ch_free(s->children);
}

static item *push(story *s)
{
    if (s->n == s->cap) {
        item *nv = ch_grow(s->v, &s->cap, 64, sizeof *nv);
        if (nv == NULL)
            return NULL;
        s->v = nv;
    }
    item *it = &s->v[s->n++];
    memset(it, 0, sizeof *it);
    return it;
}

static int risk_part(ch_store *st, const char *name, size_t n, story *s, ch_error *err)
{
    ch_risk *all = ch_risk_new(0), *one = ch_risk_new(0);
    int rc = 0;
    if (all == NULL || one == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = ch_store_load_users(st, all, err)) < 0)
        goto done;
    rc = ch_store_load_user(st, name, n, one, err);
    if (rc == CH_ENOTFOUND) {
        rc = 0;
        goto done;
    }
    if (rc < 0)
        goto done;
    s->known = s->has_risk = true;
    ch_risk_population pop;
    if ((rc = ch_risk_population_get(all, &pop)) < 0)
        goto done;
    const ch_risk_user *u = ch_risk_find(one, name, n);
    s->raw = ch_risk_user_at(all, u, ch_risk_now(all));
    s->score = ch_risk_score(all, s->raw);
    s->threshold = pop.threshold;
    s->fixed = pop.fixed;
    s->stands_out = s->score > pop.threshold;
    s->updated = u->updated_ms;
    for (size_t i = 0; i < u->ntimeline; i++) {
        const ch_risk_entry *e = &u->timeline[i];
        item *it = push(s);
        if (it == NULL || (it->a = ch_strdup(e->rule_id)) == NULL) {
            rc = ch_error_set(err, CH_ENOMEM, "out of memory");
            goto done;
        }
        it->type = I_RULE;
        it->ts = e->ts_ms;
        it->delta = e->delta;
        it->raw = e->risk_after;
        it->score = ch_risk_score(all, e->risk_after);
    }
done:
    ch_risk_free(all);
    ch_risk_free(one);
    return rc;
}

static int firsts_part(ch_sql *c, const char *name, size_t n, story *s, ch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = ch_sql_prepare(c->db, c->path,
                            "SELECT kind, value, ts, event_id FROM user_firsts WHERE user = ?1"
                            " ORDER BY ts, kind, value LIMIT ?2",
                            &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, name, (int)n, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, CH_TIMELINE_MAX_FIRSTS);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        item *it = push(s);
        if (it == NULL || (it->a = ch_strdup(ch_sql_col_text(st, 0))) == NULL ||
            (it->b = ch_strdup(ch_sql_col_text(st, 1))) == NULL ||
            (it->c = ch_strdup(ch_sql_col_text(st, 3))) == NULL) {
            sqlite3_finalize(st);
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        }
        it->type = I_FIRST;
        it->ts = sqlite3_column_int64(st, 2);
        s->known = true;
    }
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? 0 : ch_sql_error(c->db, c->path, err, "reading user firsts");
}

/* Offenses indexed by the user, and offenses whose graph holds the user (lineage). */
static int offenses_part(ch_sql *c, const char *name, size_t n, story *s, ch_error *err)
{
    char ids[3][CH_LINEAGE_MAX_STR + 16];
    snprintf(ids[0], sizeof ids[0], "user:%.*s", (int)n, name);
    snprintf(ids[1], sizeof ids[1], "root:%.*s", (int)n, name);
    snprintf(ids[2], sizeof ids[2], "role:%.*s", (int)n, name);
    sqlite3_stmt *st = NULL;
    int rc = ch_sql_prepare(
        c->db, c->path,
        "SELECT id, status, magnitude, first_seen, index_value, index_field = 'user.name' AND"
        " index_value = ?1 FROM offenses WHERE (index_field = 'user.name' AND index_value = ?1)"
        " OR id IN (SELECT offense_id FROM graph_nodes WHERE id IN (?2, ?3, ?4)) ORDER BY id"
        " LIMIT 1000",
        &st, err);
    if (rc < 0)
        return rc;
    sqlite3_bind_text(st, 1, name, (int)n, SQLITE_STATIC);
    for (int i = 0; i < 3; i++)
        sqlite3_bind_text(st, 2 + i, ids[i], -1, SQLITE_STATIC);
    int step;
    while ((step = sqlite3_step(st)) == SQLITE_ROW) {
        item *it = push(s);
        if (it == NULL || (it->a = ch_strdup(ch_sql_col_text(st, 1))) == NULL ||
            (it->b = ch_strdup(ch_sql_col_text(st, 4))) == NULL) {
            sqlite3_finalize(st);
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        }
        it->type = I_OFFENSE;
        it->id = sqlite3_column_int64(st, 0);
        it->magnitude = sqlite3_column_int(st, 2);
        it->ts = ch_sql_col_time(st, 3, 0);
        it->via_graph = sqlite3_column_int(st, 5) == 0;
        s->known = true;
    }
    sqlite3_finalize(st);
    return step == SQLITE_DONE ? 0 : ch_sql_error(c->db, c->path, err, "reading offenses");
}

/* The link that made the user (its parent) and the links the user made (its children). */
static int lineage_link(void *ud, const ch_lineage_link *k, bool own)
{
    story *s = ud;
    if (own) {
        snprintf(s->parent, sizeof s->parent, "%.*s", (int)k->parent.n, k->parent.p);
        snprintf(s->relation, sizeof s->relation, "%.*s", (int)k->relation.n, k->relation.p);
        s->parent_ms = k->first_ms;
        s->known = true;
        return 0;
    }
    char **nv = ch_realloc(s->children, (s->nchildren + 1) * sizeof *nv);
    if (nv == NULL)
        return CH_ENOMEM;
    s->children = nv;
    size_t len = (size_t)k->child.n + k->relation.n + 2;
    if ((nv[s->nchildren] = ch_malloc(len)) == NULL)
        return CH_ENOMEM;
    snprintf(nv[s->nchildren], len, "%.*s\t%.*s", (int)k->child.n, k->child.p, (int)k->relation.n,
             k->relation.p);
    s->nchildren++;
    return 0;
}

static int lineage_part(ch_store *st, const char *name, size_t n, story *s, ch_error *err)
{
    int rc = ch_lineage_read_user(st, name, n, lineage_link, s, err);
    return rc == CH_ENOMEM ? ch_error_set(err, CH_ENOMEM, "out of memory") : rc;
}

static int cmp_item(const void *a, const void *b)
{
    const item *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    if (x->type != y->type)
        return x->type < y->type ? -1 : 1;
    return strcmp(x->a ? x->a : "", y->a ? y->a : "");
}

static int gather(ch_store *st, const char *name, size_t n, story *s, ch_error *err)
{
    memset(s, 0, sizeof *s);
    ch_sql *c = ch_store_sql(st);
    int rc;
    if ((rc = ch_facts_schema(c, err)) < 0 || (rc = risk_part(st, name, n, s, err)) < 0 ||
        (rc = firsts_part(c, name, n, s, err)) < 0 ||
        (rc = offenses_part(c, name, n, s, err)) < 0 ||
        (rc = lineage_part(st, name, n, s, err)) < 0)
        return rc;
    if (!s->known)
        return ch_error_set(err, CH_ENOTFOUND, "nothing is known of user '%.*s'", (int)n, name);
    if (s->n > 1)
        qsort(s->v, s->n, sizeof *s->v, cmp_item);
    return 0;
}

static int add_time(ch_buf *b, int64_t ms)
{
    char t[40];
    size_t n = ch_time_format(ms, t);
    return ch_buf_add_json_str(b, t, n);
}

static int kv(ch_buf *b, const char *k, const char *v)
{
    int rc = ch_buf_printf(b, ",\"%s\":", k);
    return rc < 0 ? rc : ch_buf_add_json_str(b, v, strlen(v));
}

int ch_user_timeline_json(ch_store *st, const char *name, size_t n, unsigned flags, ch_buf *b,
                          ch_error *err)
{
    story s;
    int rc = gather(st, name, n, &s, err);
    if (rc < 0)
        goto done;
    if ((rc = ch_buf_adds(b, "{\"user\":")) < 0 || (rc = ch_buf_add_json_str(b, name, n)) < 0)
        goto out;
    if (s.has_risk) {
        if ((rc = ch_buf_printf(b,
                                ",\"risk\":{\"score\":%.1f,\"raw\":%.1f,\"stands_out\":%s,"
                                "\"threshold\":%.1f,\"fixed_threshold\":%s,\"updated\":",
                                s.score, s.raw, s.stands_out ? "true" : "false", s.threshold,
                                s.fixed ? "true" : "false")) < 0 ||
            (rc = add_time(b, s.updated)) < 0 || (rc = ch_buf_addc(b, '}')) < 0)
            goto out;
    } else if ((rc = ch_buf_adds(b, ",\"risk\":null")) < 0) {
        goto out;
    }
    if ((rc = ch_buf_adds(b, ",\"lineage\":{\"parent\":")) < 0)
        goto out;
    if (s.parent[0]) {
        if ((rc = ch_buf_adds(b, "{\"name\":")) < 0 ||
            (rc = ch_buf_add_json_str(b, s.parent, strlen(s.parent))) < 0 ||
            (rc = kv(b, "relation", s.relation)) < 0 || (rc = ch_buf_adds(b, ",\"time\":")) < 0 ||
            (rc = add_time(b, s.parent_ms)) < 0 || (rc = ch_buf_addc(b, '}')) < 0)
            goto out;
    } else if ((rc = ch_buf_adds(b, "null")) < 0) {
        goto out;
    }
    if ((rc = ch_buf_adds(b, ",\"children\":[")) < 0)
        goto out;
    for (size_t i = 0; i < s.nchildren && rc >= 0; i++) {
        const char *tab = strchr(s.children[i], '\t');
        rc = (i ? ch_buf_addc(b, ',') : 0) < 0 ? -1 : ch_buf_adds(b, "{\"name\":");
        if (rc >= 0)
            rc = ch_buf_add_json_str(b, s.children[i], (size_t)(tab - s.children[i]));
        if (rc >= 0)
            rc = kv(b, "relation", tab + 1);
        if (rc >= 0)
            rc = ch_buf_addc(b, '}');
    }
    if (rc < 0 || (rc = ch_buf_adds(b, "]},\"offenses\":[")) < 0)
        goto out;
    size_t k = 0;
    for (size_t i = 0; i < s.n && rc >= 0; i++) {
        const item *it = &s.v[i];
        if (it->type != I_OFFENSE)
            continue;
        if ((k++ && (rc = ch_buf_addc(b, ',')) < 0) ||
            (rc = ch_buf_printf(b, "{\"id\":%lld,\"magnitude\":%d", (long long)it->id,
                                it->magnitude)) < 0 ||
            (rc = kv(b, "status", it->a)) < 0 || (rc = kv(b, "index", it->b)) < 0 ||
            (rc = kv(b, "via", it->via_graph ? "lineage" : "index")) < 0 ||
            (rc = ch_buf_adds(b, ",\"first\":")) < 0 || (rc = add_time(b, it->ts)) < 0 ||
            (rc = ch_buf_addc(b, '}')) < 0)
            goto out;
    }
    if ((rc = ch_buf_addc(b, ']')) < 0)
        goto out;
    if (flags & CH_USER_TIMELINE) {
        if ((rc = ch_buf_adds(b, ",\"timeline\":[")) < 0)
            goto out;
        for (size_t i = 0; i < s.n && rc >= 0; i++) {
            const item *it = &s.v[i];
            if ((i && (rc = ch_buf_addc(b, ',')) < 0) || (rc = ch_buf_adds(b, "{\"time\":")) < 0 ||
                (rc = add_time(b, it->ts)) < 0)
                goto out;
            if (it->type == I_FIRST)
                rc = kv(b, "type", "first_seen") < 0 || kv(b, "kind", it->a) < 0 ||
                             kv(b, "value", it->b) < 0 || kv(b, "event_id", it->c) < 0
                         ? CH_ENOMEM
                         : 0;
            else if (it->type == I_RULE)
                rc = kv(b, "type", "rule") < 0 || kv(b, "rule", it->a) < 0 ||
                             ch_buf_printf(b, ",\"delta\":%.1f,\"risk_raw\":%.1f,\"risk\":%.1f",
                                           it->delta, it->raw, it->score) < 0
                         ? CH_ENOMEM
                         : 0;
            else
                rc = kv(b, "type", "offense") < 0 ||
                             ch_buf_printf(b, ",\"offense\":%lld,\"magnitude\":%d",
                                           (long long)it->id, it->magnitude) < 0 ||
                             kv(b, "status", it->a) < 0 ||
                             kv(b, "via", it->via_graph ? "lineage" : "index") < 0
                         ? CH_ENOMEM
                         : 0;
            if (rc >= 0)
                rc = ch_buf_addc(b, '}');
        }
        if (rc >= 0)
            rc = ch_buf_addc(b, ']');
    }
    if (rc >= 0)
        rc = ch_buf_addc(b, '}');
out:
    if (rc < 0 && rc != CH_ENOTFOUND)
        rc = ch_error_set(err, rc, "cannot render the user (%s)", ch_strerror(rc));
done:
    story_free(&s);
    return rc < 0 ? rc : 0;
}

/* Text for a terminal: control bytes become '?'. */
static int safe(ch_buf *b, const char *s)
{
    int rc = 0;
    for (size_t i = 0; i < 200 && s[i] && rc >= 0; i++) {
        unsigned char c = (unsigned char)s[i];
        rc = ch_buf_addc(b, c < 0x20 || c == 0x7f ? '?' : (char)c);
    }
    return rc;
}

int ch_user_timeline_text(ch_store *st, const char *name, size_t n, unsigned flags, ch_buf *b,
                          ch_error *err)
{
    story s;
    int rc = gather(st, name, n, &s, err);
    if (rc < 0)
        goto done;
    char nm[CH_RISK_MAX_NAME_LEN + 1];
    snprintf(nm, sizeof nm, "%.*s", (int)n, name);
    rc = ch_buf_adds(b, "User ");
    if (rc >= 0)
        rc = safe(b, nm);
    if (rc >= 0 && s.has_risk)
        rc = ch_buf_printf(b, "\n  risk %.1f of 100 (raw %.1f)%s; threshold %.1f%s\n", s.score,
                           s.raw, s.stands_out ? ", STANDS OUT" : "", s.threshold,
                           s.fixed ? " (fixed: too few users at risk)" : " (population)");
    else if (rc >= 0)
        rc = ch_buf_adds(b, "\n  no risk recorded\n");
    if (rc >= 0 && s.parent[0]) {
        rc = ch_buf_adds(b, "  created or empowered by ");
        if (rc >= 0)
            rc = safe(b, s.parent);
        if (rc >= 0)
            rc = ch_buf_adds(b, " (");
        if (rc >= 0)
            rc = safe(b, s.relation);
        if (rc >= 0)
            rc = ch_buf_adds(b, ")\n");
    }
    for (size_t i = 0; i < s.nchildren && rc >= 0; i++) {
        rc = ch_buf_adds(b, "  created or empowered ");
        if (rc >= 0)
            rc = safe(b, s.children[i]);
        if (rc >= 0)
            rc = ch_buf_addc(b, '\n');
    }
    for (size_t i = 0; i < s.n && rc >= 0; i++)
        if (s.v[i].type == I_OFFENSE) {
            rc = ch_buf_printf(b, "  offense %lld, magnitude %d, %s%s", (long long)s.v[i].id,
                               s.v[i].magnitude, s.v[i].a,
                               s.v[i].via_graph ? ", through lineage: indexed by " : "\n");
            if (rc >= 0 && s.v[i].via_graph && (rc = safe(b, s.v[i].b)) >= 0)
                rc = ch_buf_addc(b, '\n');
        }
    if (rc >= 0 && (flags & CH_USER_TIMELINE)) {
        rc = ch_buf_printf(b, "\n%-20s  %-10s  %s\n", "TIME", "TYPE", "WHAT");
        for (size_t i = 0; i < s.n && rc >= 0; i++) {
            const item *it = &s.v[i];
            char t[40];
            ch_time_format(it->ts, t);
            rc = ch_buf_printf(b, "%-20s  %-10s  ", t,
                               it->type == I_FIRST  ? "first"
                               : it->type == I_RULE ? "rule"
                                                    : "offense");
            if (rc < 0)
                break;
            if (it->type == I_FIRST) {
                rc = ch_buf_printf(b, "%s ", it->a);
                if (rc >= 0)
                    rc = safe(b, it->b);
            } else if (it->type == I_RULE) {
                rc = safe(b, it->a);
                if (rc >= 0)
                    rc = ch_buf_printf(b, " +%.1f -> risk %.1f (raw %.1f)", it->delta, it->score,
                                       it->raw);
            } else {
                rc = ch_buf_printf(b, "offense %lld opened (%s)", (long long)it->id, it->a);
            }
            if (rc >= 0)
                rc = ch_buf_addc(b, '\n');
        }
    }
    if (rc < 0)
        rc = ch_error_set(err, rc, "cannot render the user (%s)", ch_strerror(rc));
done:
    story_free(&s);
    return rc < 0 ? rc : 0;
}
