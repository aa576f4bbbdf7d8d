/*
 * lineage.c - the link table of lineage.h.
 *
 * Links live in an array in learning order (so saving and listing are stable) with an
 * open-addressing index of child names over it (indices + 1, load factor <= 0.5, doubled when
 * full). A link's four strings share one allocation. Nothing is ever removed: the table is
 * bounded by its cap instead, and a removed link could let an attacker's user drift out of his
 * offense. Links made or changed since the last save are listed, so that a checkpoint writes
 * only their rows: every record of a known session changes its link's count and last time, and
 * rewriting the whole table at each checkpoint cost `serve` as much as the table is large.
 * Child names (role session ARNs, instance ids: 20 to 100 bytes) are hashed eight
 * bytes a step (ch_hash_words), as every event of a role session or an instance looks its name
 * up: byte-at-a-time FNV-1a was four fifths of a lookup (docs/BENCHMARKS.md section 44). The
 * hash lives in memory only; a saved table is rehashed as it is loaded.
 */
#include "enrich/lineage.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/json.h"
#include "core/mem.h"

typedef struct entry {
    char *mem; /* child \0 parent \0 relation \0 account \0 */
    uint32_t nchild, nparent, nrel, nacct;
    uint64_t hash;
    int64_t first_ms, last_ms;
    uint64_t count;
    bool dirty; /* made or changed since the last save (in the dirty list) */
} entry;

struct ch_lineage {
    entry *e;
    size_t n, cap_e, cap;
    uint32_t *idx; /* entry + 1, 0 = empty */
    size_t nidx;   /* power of two */
    /* The links made or changed since the last save, so that a checkpoint writes those rows
     * and not the whole table (offense/lineage_store.c); all_dirty when the list could not
     * grow or every link is to be written. */
    uint32_t *dl;
    size_t ndl, capdl;
    bool all_dirty;
    ch_lineage_stats st;
};

int ch_lineage_new(size_t cap, ch_lineage **out, ch_error *err)
{
    *out = NULL;
    ch_lineage *l = ch_calloc(1, sizeof *l);
    if (l == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    l->cap = cap ? cap : CH_LINEAGE_DEFAULT_CAP;
    l->nidx = 64;
    l->idx = ch_calloc(l->nidx, sizeof *l->idx);
    if (l->idx == NULL) {
        ch_free(l);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    *out = l;
    return 0;
}

void ch_lineage_free(ch_lineage *l)
{
    if (l == NULL)
        return;
    for (size_t i = 0; i < l->n; i++)
        ch_free(l->e[i].mem);
    ch_free(l->e);
    ch_free(l->idx);
    ch_free(l->dl);
    ch_free(l);
}

static void mark(ch_lineage *l, entry *e)
{
    if (e->dirty || l->all_dirty)
        return;
    if (l->ndl == l->capdl) {
        uint32_t *nd = ch_grow(l->dl, &l->capdl, 64, sizeof *nd);
        if (nd == NULL) {
            l->all_dirty = true; /* the next save writes every link */
            return;
        }
        l->dl = nd;
    }
    e->dirty = true;
    l->dl[l->ndl++] = (uint32_t)(e - l->e);
}

static ch_sv child_of(const entry *e) { return (ch_sv){e->mem, e->nchild}; }
static ch_sv parent_of(const entry *e) { return (ch_sv){e->mem + e->nchild + 1, e->nparent}; }

static uint64_t name_hash(const char *name, size_t n)
{
    return ch_hash_words(CH_HASH_SEED, name, n);
}

static entry *find(const ch_lineage *l, const char *name, size_t n)
{
    uint64_t h = name_hash(name, n);
    for (size_t j = (size_t)h & (l->nidx - 1);; j = (j + 1) & (l->nidx - 1)) {
        uint32_t k = l->idx[j];
        if (k == 0)
            return NULL;
        entry *e = &l->e[k - 1];
        if (e->hash == h && e->nchild == n && memcmp(e->mem, name, n) == 0)
            return e;
    }
}

static void index_put(uint32_t *idx, size_t nidx, uint64_t h, uint32_t v)
{
    size_t j = (size_t)h & (nidx - 1);
    while (idx[j] != 0)
        j = (j + 1) & (nidx - 1);
    idx[j] = v;
}

static int grow_index(ch_lineage *l)
{
    size_t nn = l->nidx * 2;
    uint32_t *ni = ch_calloc(nn, sizeof *ni);
    if (ni == NULL)
        return CH_ENOMEM;
    for (size_t i = 0; i < l->n; i++)
        index_put(ni, nn, l->e[i].hash, (uint32_t)(i + 1));
    ch_free(l->idx);
    l->idx = ni;
    l->nidx = nn;
    return 0;
}

/* Would parent's chain of ancestors reach child? */
static bool makes_cycle(const ch_lineage *l, ch_sv child, ch_sv parent)
{
    ch_sv cur = parent;
    for (int d = 0; d <= CH_LINEAGE_MAX_DEPTH * 4; d++) {
        if (cur.n == child.n && memcmp(cur.p, child.p, cur.n) == 0)
            return true;
        const entry *e = find(l, cur.p, cur.n);
        if (e == NULL)
            return false;
        cur = parent_of(e);
    }
    return true; /* deeper than anything real: treat as a cycle rather than trust it */
}

/* Add or widen a link. 1 made, 0 widened or refused, CH_ENOMEM. */
static int put(ch_lineage *l, ch_sv child, ch_sv parent, ch_sv rel, ch_sv acct, int64_t first,
               int64_t last, uint64_t count)
{
    if (child.n == 0 || parent.n == 0 || child.n > CH_LINEAGE_MAX_STR ||
        parent.n > CH_LINEAGE_MAX_STR || rel.n > CH_LINEAGE_MAX_STR ||
        acct.n > CH_LINEAGE_MAX_STR) {
        l->st.bad++;
        return 0;
    }
    if (child.n == parent.n && memcmp(child.p, parent.p, child.n) == 0)
        return 0;
    entry *e = find(l, child.p, child.n);
    if (e != NULL) {
        /* The first creator stays the parent; another principal's later action is not a
         * change of owner (see lineage.h). */
        if (e->nparent != parent.n || memcmp(parent_of(e).p, parent.p, parent.n) != 0)
            return 0;
        if (first < e->first_ms)
            e->first_ms = first;
        if (last > e->last_ms)
            e->last_ms = last;
        e->count += count;
        l->st.refreshed++;
        mark(l, e);
        return 0;
    }
    if (makes_cycle(l, child, parent)) {
        l->st.cycles++;
        return 0;
    }
    if (l->n >= l->cap) {
        l->st.dropped++;
        return 0;
    }
    if ((l->n + 1) * 2 > l->nidx && grow_index(l) < 0)
        return CH_ENOMEM;
    if (l->n == l->cap_e) {
        entry *ne = ch_grow(l->e, &l->cap_e, 64, sizeof *ne);
        if (ne == NULL)
            return CH_ENOMEM;
        l->e = ne;
    }
    size_t total = (size_t)child.n + parent.n + rel.n + acct.n + 4;
    char *mem = ch_malloc(total);
    if (mem == NULL)
        return CH_ENOMEM;
    char *w = mem;
    const ch_sv parts[4] = {child, parent, rel, acct};
    for (int i = 0; i < 4; i++) {
        if (parts[i].n)
            memcpy(w, parts[i].p, parts[i].n);
        w[parts[i].n] = '\0';
        w += parts[i].n + 1;
    }
    e = &l->e[l->n];
    *e = (entry){.mem = mem,
                 .nchild = child.n,
                 .nparent = parent.n,
                 .nrel = rel.n,
                 .nacct = acct.n,
                 .hash = name_hash(child.p, child.n),
                 .first_ms = first,
                 .last_ms = last,
                 .count = count};
    l->n++;
    index_put(l->idx, l->nidx, e->hash, (uint32_t)l->n);
    l->st.learned++;
    mark(l, e);
    return 1;
}

int ch_lineage_put(ch_lineage *l, const ch_lineage_link *k)
{
    return put(l, k->child, k->parent, k->relation, k->account, k->first_ms, k->last_ms, k->count);
}

static bool str_at(ch_json_val obj, const char *k, ch_sv *out)
{
    ch_json_val v;
    const char *s;
    size_t n;
    if (!ch_json_obj_get(obj, k, strlen(k), &v) || !ch_json_get_str(v, &s, &n) || n == 0 ||
        n > CH_LINEAGE_MAX_STR)
        return false;
    *out = (ch_sv){s, (uint32_t)n};
    return true;
}

/* Actions that give requestParameters.userName credentials or rights, with their lengths: every
 * successful CloudTrail event is compared with them, so no strlen per name per event. */
#define UA(s)                                                                                      \
    {                                                                                              \
        s, sizeof(s) - 1                                                                           \
    }
static const struct {
    const char *s;
    size_t n;
} user_actions[] = {
    UA("CreateUser"),      UA("CreateLoginProfile"), UA("UpdateLoginProfile"),
    UA("CreateAccessKey"), UA("AttachUserPolicy"),   UA("PutUserPolicy"),
    UA("AddUserToGroup"),
};
#undef UA

/* "a/b" into out (room for both plus 2), each part as printf's "%.*s" takes it (up to a NUL:
 * keys stored by earlier runs keep matching). Copies: snprintf cost about a thousand
 * instructions, and every CloudTrail event of a role session asks for its principal. */
static size_t join(char *out, ch_sv a, ch_sv b)
{
    const char *z = a.n ? memchr(a.p, '\0', a.n) : NULL;
    size_t an = z ? (size_t)(z - a.p) : a.n;
    z = b.n ? memchr(b.p, '\0', b.n) : NULL;
    size_t bn = z ? (size_t)(z - b.p) : b.n;
    if (an)
        memcpy(out, a.p, an);
    out[an] = '/';
    if (bn)
        memcpy(out + an + 1, b.p, bn);
    out[an + 1 + bn] = '\0';
    return an + 1 + bn;
}

int ch_lineage_observe(ch_lineage *l, const ch_event *ev)
{
    if (ev->dataset != CH_DS_CLOUDTRAIL || ev->outcome != CH_OUTCOME_SUCCESS || !ev->has_raw_doc ||
        ev->user_name.n == 0 || ev->action.n == 0)
        return 0;
    ch_json_val req;
    bool user_action = false;
    for (size_t i = 0; i < sizeof user_actions / sizeof *user_actions && !user_action; i++)
        user_action = ch_sv_eq(ev->action, user_actions[i].s, user_actions[i].n);
    bool assume = ch_sv_eq(ev->action, "AssumeRole", 10);
    if ((!user_action && !assume) || !ch_json_obj_get(ev->raw_doc, "requestParameters", 17, &req))
        return 0;
    /* The creator is the acting principal: a role session that creates a user passes the user
     * on to the session's own creator through the session's link. */
    char who[CH_LINEAGE_MAX_STR * 2 + 2];
    size_t wn = ch_lineage_principal(l, ev, who, sizeof who);
    ch_sv parent = {who, (uint32_t)wn};
    if (user_action) {
        ch_sv target;
        if (!str_at(req, "userName", &target))
            return 0; /* no userName: the caller acts on itself */
        return put(l, target, parent, ev->action, ev->account_id, ev->ts_ms, ev->ts_ms, 1);
    }
    ch_sv arn, session;
    if (!str_at(req, "roleArn", &arn) || !str_at(req, "roleSessionName", &session)) {
        l->st.bad++;
        return 0;
    }
    const char *slash = memrchr(arn.p, '/', arn.n);
    if (slash == NULL || (size_t)(slash - arn.p) + 1 >= arn.n) {
        l->st.bad++;
        return 0;
    }
    ch_sv role = {slash + 1, (uint32_t)(arn.n - (size_t)(slash + 1 - arn.p))};
    char key[CH_LINEAGE_MAX_STR * 2 + 2];
    size_t kn = join(key, role, session);
    return put(l, (ch_sv){key, (uint32_t)kn}, parent, ev->action, ev->account_id, ev->ts_ms,
               ev->ts_ms, 1);
}

size_t ch_lineage_principal(const ch_lineage *l, const ch_event *ev, char *buf, size_t cap)
{
    if (cap == 0)
        return 0;
    buf[0] = '\0';
    if (ev->user_name.n == 0)
        return 0;
    if (ev->session_name.n > 0 && ev->user_name.n + ev->session_name.n + 2 <= cap) {
        size_t n = join(buf, ev->user_name, ev->session_name);
        if (find(l, buf, n) != NULL)
            return n;
    }
    if (ev->user_name.n + 1 > cap)
        return 0;
    memcpy(buf, ev->user_name.p, ev->user_name.n);
    buf[ev->user_name.n] = '\0';
    return ev->user_name.n;
}

static void to_link(const entry *e, ch_lineage_link *out)
{
    out->child = child_of(e);
    out->parent = parent_of(e);
    out->relation = (ch_sv){e->mem + e->nchild + e->nparent + 2, e->nrel};
    out->account = (ch_sv){e->mem + e->nchild + e->nparent + e->nrel + 3, e->nacct};
    out->first_ms = e->first_ms;
    out->last_ms = e->last_ms;
    out->count = e->count;
}

bool ch_lineage_get(const ch_lineage *l, const char *name, size_t n, ch_lineage_link *out)
{
    const entry *e = find(l, name, n);
    if (e == NULL)
        return false;
    to_link(e, out);
    return true;
}

bool ch_lineage_resolve(ch_lineage *l, const char *name, size_t n, ch_lineage_pred pred, void *ud,
                        ch_sv *out)
{
    const entry *e = find(l, name, n);
    bool found = false;
    for (int d = 0; e != NULL && d < CH_LINEAGE_MAX_DEPTH; d++) {
        ch_sv p = parent_of(e);
        if (pred == NULL) {
            *out = p;
            found = true;
        } else if (pred(ud, p.p, p.n)) {
            *out = p;
            found = true;
            break;
        }
        e = find(l, p.p, p.n);
    }
    if (found)
        l->st.resolved++;
    return found;
}

int ch_lineage_each(const ch_lineage *l, ch_lineage_fn fn, void *ud)
{
    for (size_t i = 0; i < l->n; i++) {
        ch_lineage_link k;
        to_link(&l->e[i], &k);
        int rc = fn(ud, &k);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int ch_lineage_each_dirty(const ch_lineage *l, ch_lineage_fn fn, void *ud)
{
    size_t n = l->all_dirty ? l->n : l->ndl;
    for (size_t i = 0; i < n; i++) {
        ch_lineage_link k;
        to_link(&l->e[l->all_dirty ? i : l->dl[i]], &k);
        int rc = fn(ud, &k);
        if (rc != 0)
            return rc;
    }
    return 0;
}

size_t ch_lineage_count(const ch_lineage *l) { return l->n; }
bool ch_lineage_dirty(const ch_lineage *l) { return l->ndl > 0 || (l->all_dirty && l->n > 0); }

void ch_lineage_clear_dirty(ch_lineage *l)
{
    if (l->all_dirty)
        for (size_t i = 0; i < l->n; i++)
            l->e[i].dirty = false;
    for (size_t i = 0; i < l->ndl; i++)
        l->e[l->dl[i]].dirty = false;
    l->ndl = 0;
    l->all_dirty = false;
}

void ch_lineage_mark_all_dirty(ch_lineage *l) { l->all_dirty = true; }
void ch_lineage_stats_get(const ch_lineage *l, ch_lineage_stats *out) { *out = l->st; }

/* ---- text form: "child parent relation account first last count\n", strings hex ---------- */

/* Straight into the reserved room: one ch_buf_add per byte was most of a checkpoint's lineage
 * cost (tens of thousands of role sessions in a day of logs). */
static int add_hex(ch_buf *b, ch_sv s)
{
    static const char hx[] = "0123456789abcdef";
    int rc = ch_buf_reserve(b, (size_t)s.n * 2 + 2);
    if (rc < 0)
        return rc;
    char *w = b->data + b->len;
    for (uint32_t i = 0; i < s.n; i++) {
        unsigned char c = (unsigned char)s.p[i];
        w[2 * i] = hx[c >> 4];
        w[2 * i + 1] = hx[c & 15];
    }
    w[2 * (size_t)s.n] = ' ';
    b->len += 2 * (size_t)s.n + 1;
    b->data[b->len] = '\0';
    return 0;
}

int ch_lineage_save(const ch_lineage *l, ch_buf *b)
{
    int rc = 0;
    for (size_t i = 0; i < l->n && rc >= 0; i++) {
        ch_lineage_link k;
        to_link(&l->e[i], &k);
        if ((rc = add_hex(b, k.child)) < 0 || (rc = add_hex(b, k.parent)) < 0 ||
            (rc = add_hex(b, k.relation)) < 0 || (rc = add_hex(b, k.account)) < 0)
            break;
        if ((rc = ch_buf_add_i64(b, k.first_ms)) < 0 || (rc = ch_buf_addc(b, ' ')) < 0 ||
            (rc = ch_buf_add_i64(b, k.last_ms)) < 0 || (rc = ch_buf_addc(b, ' ')) < 0 ||
            (rc = ch_buf_add_u64(b, k.count)) < 0)
            break;
        rc = ch_buf_addc(b, '\n');
    }
    return rc < 0 ? rc : 0;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decode one hex field ending at a space into out (cap bytes); the length or -1. */
static long unhex(const char **pp, const char *end, char *out, size_t cap)
{
    const char *p = *pp;
    size_t n = 0;
    while (p < end && *p != ' ') {
        if (p + 1 >= end || n >= cap)
            return -1;
        int hi = hexval(p[0]), lo = hexval(p[1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[n++] = (char)(hi * 16 + lo);
        p += 2;
    }
    if (p >= end)
        return -1;
    *pp = p + 1;
    return (long)n;
}

int ch_lineage_load(ch_lineage *l, const char *text, size_t n)
{
    if (n == 0)
        return 0; /* text may be NULL then: no pointer arithmetic on it */
    const char *p = text, *end = text + n;
    int loaded = 0;
    char f[4][CH_LINEAGE_MAX_STR * 2 + 2];
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        const char *q = p;
        long len[4];
        bool ok = true;
        for (int i = 0; i < 4 && ok; i++)
            ok = (len[i] = unhex(&q, le, f[i], sizeof f[i])) >= 0;
        long long first = 0, last = 0;
        unsigned long long count = 0;
        char tail[96];
        size_t tl = (size_t)(le - q);
        if (ok && tl > 0 && tl < sizeof tail) {
            memcpy(tail, q, tl);
            tail[tl] = '\0';
            ok = sscanf(tail, "%lld %lld %llu", &first, &last, &count) == 3;
        } else {
            ok = false;
        }
        if (!ok) {
            l->st.bad++;
        } else {
            int rc = put(l, (ch_sv){f[0], (uint32_t)len[0]}, (ch_sv){f[1], (uint32_t)len[1]},
                         (ch_sv){f[2], (uint32_t)len[2]}, (ch_sv){f[3], (uint32_t)len[3]}, first,
                         last, count);
            if (rc < 0)
                return rc;
            loaded++;
        }
        p = nl ? nl + 1 : end;
    }
    return loaded;
}
