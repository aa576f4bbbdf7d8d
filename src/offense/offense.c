/*
 * offense.c - the offense manager: chaining rule hits into offenses by index value, keeping
 * the contributing rules and events, scoring magnitude, and rendering offenses as JSON and as
 * a table.
 *
 * Active offenses (open or hidden) are found by (index field, index value) through an open-
 * addressing index of offense pointers (core/hindex.h) keyed by core/hash.h's hash, so a hit costs
 * one probe plus a linear scan of the offense's rules (a handful, CH_OFFENSE_MAX_RULES at most) and
 * of the hit's event ids. Closing an offense rebuilds that table (O(offenses)): closing is an
 * analyst's action, rare next to hits. Lookup by id is a linear scan for the same reason.
 *
 * Distinct events are counted through a per-offense set of 64-bit event-id hashes, capped at
 * CH_OFFENSE_MAX_SEEN (8 bytes an id); past the cap every id counts as new, so event_count can
 * only overcount on offenses already that large. Only the first CH_OFFENSE_MAX_EVENT_IDS ids are
 * kept as strings, for the analyst and the store.
 */
#include "offense/offense_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "core/hash.h"
#include "core/hindex.h"
#include "core/mem.h"
#include "core/timeparse.h"
#include "offense/observables.h"

struct ch__offense_seen {
    uint64_t *slots; /* 0 = empty */
    size_t n, cap;   /* cap: power of two */
    bool saturated;  /* hit CH_OFFENSE_MAX_SEEN: stop remembering */
};

struct ch_offenses {
    ch_offense **all;
    size_t n, cap;
    ch_hindex index; /* active offenses by (index field, index value) */
    int64_t next_id;
    ch_offenses_stats stats;
};

/* The field's terminating NUL goes into the hash, so ("ab", "c") and ("a", "bc") differ. Eight
 * bytes a step (ch_hash_words): every event looks its user up here to find an active offense,
 * and FNV-1a a byte at a time cost 260 instructions a lookup (docs/BENCHMARKS.md section 55).
 * The hash only places keys in the in-memory index (never saved, never iterated). */
static uint64_t key_hash(const char *field, const char *value, size_t value_len)
{
    uint64_t h = ch_hash_words(CH_HASH_SEED, field, strlen(field) + 1);
    return ch_hash_mix64(ch_hash_words(h, value, value_len));
}

const char *ch_offense_status_name(ch_offense_status st)
{
    switch (st) {
    case CH_OFFENSE_OPEN:
        return "open";
    case CH_OFFENSE_CLOSED:
        return "closed";
    case CH_OFFENSE_HIDDEN:
        return "hidden";
    }
    return "open";
}

bool ch_offense_status_parse(const char *s, ch_offense_status *out)
{
    static const ch_offense_status all[] = {CH_OFFENSE_OPEN, CH_OFFENSE_CLOSED, CH_OFFENSE_HIDDEN};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (s != NULL && strcmp(s, ch_offense_status_name(all[i])) == 0) {
            *out = all[i];
            return true;
        }
    return false;
}

/* ---- the offense itself --------------------------------------------------------------------- */

static void offense_free(ch_offense *o)
{
    if (o == NULL)
        return;
    ch_free(o->index_field);
    ch_free(o->index_value);
    for (size_t i = 0; i < o->nrules; i++) {
        ch_free(o->rules[i].id);
        ch_free(o->rules[i].title);
        ch_free(o->rules[i].evidence);
    }
    ch_free(o->rules);
    for (size_t i = 0; i < o->nevent_ids; i++)
        ch_free(o->event_ids[i]);
    ch_free(o->event_ids);
    for (size_t i = 0; i < o->nnotes; i++)
        ch_free(o->notes[i].text);
    ch_free(o->notes);
    ch_obs_free(o->obs);
    if (o->seen != NULL)
        ch_free(o->seen->slots);
    ch_free(o->seen);
    ch_free(o);
}

static ch_offense *offense_new(int64_t id, const char *field, const char *value, size_t len)
{
    ch_offense *o = ch_calloc(1, sizeof *o);
    if (o == NULL)
        return NULL;
    if (len > CH_OFFENSE_MAX_VALUE_LEN)
        len = CH_OFFENSE_MAX_VALUE_LEN;
    o->id = id;
    o->index_field = ch_strdup(field);
    o->index_value = ch_strndup(value != NULL ? value : "", value != NULL ? len : 0);
    o->index_value_len = value != NULL ? len : 0;
    o->seen = ch_calloc(1, sizeof *o->seen);
    if (o->index_field == NULL || o->index_value == NULL || o->seen == NULL) {
        offense_free(o);
        return NULL;
    }
    o->first_ms = INT64_MAX;
    o->last_ms = INT64_MIN;
    o->dirty = true;
    return o;
}

/* 1 new, 0 already seen (or the set is saturated and cannot tell: counted new), CH_ENOMEM. */
static int seen_put(ch__offense_seen *s, uint64_t h)
{
    if (h == 0)
        h = 1;
    if (s->saturated)
        return 1;
    if ((s->n + 1) * 4 > s->cap * 3) {
        if (s->n >= CH_OFFENSE_MAX_SEEN) {
            s->saturated = true;
            return 1;
        }
        size_t nc = s->cap ? s->cap * 2 : 16;
        uint64_t *ns = ch_calloc(nc, sizeof *ns);
        if (ns == NULL)
            return CH_ENOMEM;
        for (size_t i = 0; i < s->cap; i++) {
            if (s->slots[i] == 0)
                continue;
            size_t j = s->slots[i] & (nc - 1);
            while (ns[j] != 0)
                j = (j + 1) & (nc - 1);
            ns[j] = s->slots[i];
        }
        ch_free(s->slots);
        s->slots = ns;
        s->cap = nc;
    }
    size_t j = h & (s->cap - 1);
    while (s->slots[j] != 0) {
        if (s->slots[j] == h)
            return 0;
        j = (j + 1) & (s->cap - 1);
    }
    s->slots[j] = h;
    s->n++;
    return 1;
}

ch_offense_obs *ch__offense_obs(ch_offense *o)
{
    if (o->obs == NULL)
        o->obs = ch_obs_new();
    return o->obs;
}

int ch__offense_put_event_id(ch_offense *o, const char *id, size_t n)
{
    int r = seen_put(o->seen, ch_hash_bytes(id, n));
    if (r != 1)
        return r;
    if (o->nevent_ids < CH_OFFENSE_MAX_EVENT_IDS) {
        /* Grown on demand: most offenses of a big run have a few events. */
        if (o->nevent_ids == o->event_ids_cap) {
            size_t nc = o->event_ids_cap ? o->event_ids_cap * 2 : 4;
            if (nc > CH_OFFENSE_MAX_EVENT_IDS)
                nc = CH_OFFENSE_MAX_EVENT_IDS;
            char **na = ch_realloc(o->event_ids, nc * sizeof *na);
            if (na == NULL)
                return CH_ENOMEM;
            o->event_ids = na;
            o->event_ids_cap = nc;
        }
        char *copy = ch_strndup(id, n);
        if (copy == NULL)
            return CH_ENOMEM;
        o->event_ids[o->nevent_ids++] = copy;
    }
    o->dirty = true;
    return 1;
}

static char *dup_capped(const char *s, size_t cap)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s);
    return ch_strndup(s, n < cap ? n : cap);
}

static ch_offense_rule *rule_find(ch_offense *o, const char *id)
{
    for (size_t i = 0; i < o->nrules; i++)
        if (strcmp(o->rules[i].id, id) == 0)
            return &o->rules[i];
    return NULL;
}

int ch__offense_put_rule(ch_offense *o, const char *id, const char *title, const char *evidence,
                         int severity, int credibility, int relevance, uint64_t count,
                         int64_t first_ms, int64_t last_ms)
{
    if (id == NULL)
        id = "";
    ch_offense_rule *r = rule_find(o, id);
    if (r == NULL) {
        if (o->nrules >= CH_OFFENSE_MAX_RULES) {
            o->dropped_rules += count;
            return CH_ELIMIT;
        }
        if (o->nrules == o->rules_cap) {
            ch_offense_rule *nr = ch_grow(o->rules, &o->rules_cap, 4, sizeof *nr);
            if (nr == NULL)
                return CH_ENOMEM;
            o->rules = nr;
        }
        r = &o->rules[o->nrules];
        memset(r, 0, sizeof *r);
        r->id = ch_strdup(id);
        r->title = ch_strdup(title != NULL ? title : "");
        if (r->id == NULL || r->title == NULL) {
            ch_free(r->id);
            ch_free(r->title);
            return CH_ENOMEM;
        }
        r->first_ms = first_ms;
        r->last_ms = last_ms;
        o->nrules++;
    }
    /* The rule's weights are those of its latest version: a pack update re-rates it. */
    r->severity = severity;
    r->credibility = credibility;
    r->relevance = relevance;
    r->count += count;
    if (first_ms < r->first_ms)
        r->first_ms = first_ms;
    if (last_ms > r->last_ms)
        r->last_ms = last_ms;
    if (evidence != NULL && *evidence) {
        char *e = dup_capped(evidence, CH_OFFENSE_MAX_EVIDENCE_LEN);
        if (e == NULL)
            return CH_ENOMEM;
        ch_free(r->evidence);
        r->evidence = e;
    }
    if (first_ms < o->first_ms)
        o->first_ms = first_ms;
    if (last_ms > o->last_ms)
        o->last_ms = last_ms;
    o->dirty = true;
    return 0;
}

int ch__offense_put_note(ch_offense *o, int64_t ts_ms, ch_offense_status st, const char *text,
                         bool stored)
{
    if (o->nnotes >= CH_OFFENSE_MAX_NOTES)
        return CH_ELIMIT;
    if (o->nnotes == o->notes_cap) {
        ch_offense_note *nn = ch_grow(o->notes, &o->notes_cap, 2, sizeof *nn);
        if (nn == NULL)
            return CH_ENOMEM;
        o->notes = nn;
    }
    char *t = dup_capped(text != NULL ? text : "", CH_OFFENSE_MAX_NOTE_LEN);
    if (t == NULL)
        return CH_ENOMEM;
    o->notes[o->nnotes++] =
        (ch_offense_note){.ts_ms = ts_ms, .status = st, .text = t, .stored = stored};
    if (!stored)
        o->dirty = true;
    return 0;
}

static int clamp10(int v) { return v < 0 ? 0 : v > 10 ? 10 : v; }

/*
 * Magnitude (docs/OFFENSES.md says why):
 *   severity    S = max over rules          (the worst thing seen is how bad it is)
 *   relevance   R = max over rules
 *   credibility C = 10 * (1 - prod(1 - c_i/10)) over distinct rules (independent corroboration)
 *   base        = 0.5 S + 0.3 C + 0.2 R                                   (0..10)
 *   breadth     = 0.5 + 0.4 (1 - e^-((rules - 1)/3)) + 0.1 min(1, log10(events)/3)
 *   magnitude   = clamp(round(base * breadth), 1, 10)
 */
void ch_offense_score(ch_offense *o)
{
    int s = 0, r = 0;
    double doubt = 1.0;
    for (size_t i = 0; i < o->nrules; i++) {
        const ch_offense_rule *ru = &o->rules[i];
        int rs = clamp10(ru->severity), rr = clamp10(ru->relevance), rc = clamp10(ru->credibility);
        if (rs > s)
            s = rs;
        if (rr > r)
            r = rr;
        doubt *= 1.0 - rc / 10.0;
    }
    double c = o->nrules ? 10.0 * (1.0 - doubt) : 0.0;
    double base = 0.5 * s + 0.3 * c + 0.2 * r;
    double nr = o->nrules ? (double)o->nrules : 1.0;
    double ev = o->event_count > 1 ? log10((double)o->event_count) / 3.0 : 0.0;
    if (ev > 1.0)
        ev = 1.0;
    double breadth = 0.5 + 0.4 * (1.0 - exp(-(nr - 1.0) / 3.0)) + 0.1 * ev;
    double score = base * breadth;
    int mag = (int)lround(score);
    o->score = score;
    o->magnitude = mag < 1 ? 1 : mag > 10 ? 10 : mag;
    o->severity = s;
    o->relevance = r;
    o->credibility = clamp10((int)lround(c));
}

/* ---- the manager ---------------------------------------------------------------------------- */

ch_offenses *ch_offenses_new(void)
{
    ch_offenses *m = ch_calloc(1, sizeof *m);
    if (m == NULL)
        return NULL;
    m->next_id = 1;
    return m;
}

void ch_offenses_free(ch_offenses *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->n; i++)
        offense_free(m->all[i]);
    ch_free(m->all);
    ch_hindex_free(&m->index);
    ch_free(m);
}

size_t ch_offenses_count(const ch_offenses *m) { return m->n; }
ch_offense *ch_offenses_at(const ch_offenses *m, size_t i) { return i < m->n ? m->all[i] : NULL; }
const ch_offenses_stats *ch_offenses_stats_get(const ch_offenses *m) { return &m->stats; }
int64_t ch_offenses_next_id(const ch_offenses *m) { return m->next_id; }

void ch_offenses_set_next_id(ch_offenses *m, int64_t next_id)
{
    if (next_id > m->next_id)
        m->next_id = next_id;
}

ch_offense *ch_offenses_find(const ch_offenses *m, int64_t id)
{
    for (size_t i = 0; i < m->n; i++)
        if (m->all[i]->id == id)
            return m->all[i];
    return NULL;
}

static bool is_active(const ch_offense *o) { return o->status != CH_OFFENSE_CLOSED; }

/* An offense's index key, as ch_hindex compares it. */
typedef struct index_key {
    const char *field, *value;
    size_t len;
} index_key;

static bool index_eq(const void *item, const void *key)
{
    const ch_offense *o = item;
    const index_key *k = key;
    return o->index_value_len == k->len && strcmp(o->index_field, k->field) == 0 &&
           memcmp(o->index_value, k->value, k->len) == 0;
}

/* Put o into the index, which has room for it. */
static void index_put(ch_offenses *m, ch_offense *o)
{
    index_key k = {o->index_field, o->index_value, o->index_value_len};
    uint64_t h = key_hash(k.field, k.value, k.len);
    ch_hindex_set(&m->index, ch_hindex_probe(&m->index, h, index_eq, &k), h, o);
}

ch_offense *ch_offenses_find_active(const ch_offenses *m, const char *field, const char *value,
                                    size_t value_len)
{
    if (value_len > CH_OFFENSE_MAX_VALUE_LEN)
        value_len = CH_OFFENSE_MAX_VALUE_LEN;
    index_key k = {field, value, value_len};
    return ch_hindex_find(&m->index, key_hash(field, value, value_len), index_eq, &k);
}

/* Rebuild the index from the active offenses, after one left it (the index has no removal). */
static void index_rebuild(ch_offenses *m)
{
    ch_hindex_clear(&m->index);
    for (size_t i = 0; i < m->n; i++) {
        ch_offense *o = m->all[i];
        if (is_active(o))
            index_put(m, o);
    }
}

/* Append o to the manager (and the index when active). Takes o on success only. */
static int adopt(ch_offenses *m, ch_offense *o)
{
    if (m->n >= CH_OFFENSES_MAX)
        return CH_ELIMIT;
    if (m->n == m->cap) {
        ch_offense **na = ch_grow(m->all, &m->cap, 16, sizeof *na);
        if (na == NULL)
            return CH_ENOMEM;
        m->all = na;
    }
    if (is_active(o)) {
        int rc = ch_hindex_reserve(&m->index, m->index.n + 1, 16);
        if (rc < 0)
            return rc;
    }
    m->all[m->n++] = o;
    if (is_active(o))
        index_put(m, o);
    if (o->id >= m->next_id)
        m->next_id = o->id + 1;
    return 0;
}

int ch__offenses_create(ch_offenses *m, int64_t id, const char *field, const char *value,
                        size_t value_len, ch_offense_status st, ch_offense **out)
{
    if (id <= 0 || field == NULL || ch_offenses_find(m, id) != NULL)
        return CH_EUSAGE;
    if (st != CH_OFFENSE_CLOSED &&
        ch_offenses_find_active(m, field, value != NULL ? value : "", value_len) != NULL)
        return CH_EUSAGE;
    ch_offense *o = offense_new(id, field, value, value_len);
    if (o == NULL)
        return CH_ENOMEM;
    o->status = st;
    int rc = adopt(m, o);
    if (rc < 0) {
        offense_free(o);
        return rc;
    }
    *out = o;
    return 0;
}

/* Event ids of a hit into o; returns how many events the hit adds to event_count. */
static int64_t add_hit_events(ch_offense *o, const ch_rule_hit *hit)
{
    uint64_t added = 0, listed = 0;
    for (uint32_t i = 0; i < hit->nevent_ids && hit->event_ids != NULL; i++) {
        ch_sv id = hit->event_ids[i];
        if (id.p == NULL || id.n == 0)
            continue;
        listed++;
        int r = ch__offense_put_event_id(o, id.p, id.n);
        if (r < 0)
            return r;
        added += (uint64_t)r;
    }
    if (listed == 0 && hit->event != NULL && hit->event->id.n > 0) {
        listed = 1;
        int r = ch__offense_put_event_id(o, hit->event->id.p, hit->event->id.n);
        if (r < 0)
            return r;
        added += (uint64_t)r;
    }
    /* Events the engine counted but did not list cannot be told apart: count them once. */
    if (hit->event_count > listed)
        added += hit->event_count - listed;
    else if (listed == 0)
        added += 1; /* a hit stands for at least one event */
    return (int64_t)added;
}

int ch_offenses_add_hit(ch_offenses *m, const ch_rule_hit *hit, ch_offense **out)
{
    m->stats.hits++;
    if (out != NULL)
        *out = NULL;
    if (hit == NULL || hit->rule == NULL || hit->index_field == NULL || !*hit->index_field ||
        hit->index_value.p == NULL) {
        m->stats.hits_no_index++;
        return 0;
    }
    size_t vlen = hit->index_value.n;
    if (vlen > CH_OFFENSE_MAX_VALUE_LEN)
        vlen = CH_OFFENSE_MAX_VALUE_LEN;
    ch_offense *o = ch_offenses_find_active(m, hit->index_field, hit->index_value.p, vlen);
    if (o != NULL) {
        m->stats.hits_chained++;
    } else {
        if (m->n >= CH_OFFENSES_MAX) {
            m->stats.dropped_limit++;
            return CH_ELIMIT;
        }
        o = offense_new(m->next_id, hit->index_field, hit->index_value.p, vlen);
        if (o == NULL)
            return CH_ENOMEM;
        int rc = adopt(m, o);
        if (rc < 0) {
            offense_free(o);
            if (rc == CH_ELIMIT)
                m->stats.dropped_limit++;
            return rc;
        }
        m->stats.created++;
    }
    const ch_rule_info *ri = hit->rule;
    int64_t first = hit->first_ms != 0 && hit->first_ms < hit->ts_ms ? hit->first_ms : hit->ts_ms;
    int rc = ch__offense_put_rule(o, ri->id, ri->title, hit->evidence, ri->severity,
                                  ri->credibility, ri->relevance, 1, first, hit->ts_ms);
    if (rc < 0 && rc != CH_ELIMIT)
        return rc;
    int64_t added = add_hit_events(o, hit);
    if (added < 0)
        return (int)added;
    o->event_count += (uint64_t)added;
    if (hit->event != NULL) {
        ch_offense_obs *obs = ch__offense_obs(o);
        if (obs == NULL || ch_obs_add_event(obs, hit->event, ri->severity) < 0)
            return CH_ENOMEM;
    }
    o->dirty = true;
    ch_offense_score(o);
    if (out != NULL)
        *out = o;
    return 1;
}

int ch_offense_set_status(ch_offenses *m, ch_offense *o, ch_offense_status st, const char *note,
                          int64_t now_ms)
{
    if (o->status == CH_OFFENSE_CLOSED && st != CH_OFFENSE_CLOSED)
        return CH_EUSAGE; /* closing is final: a new hit opens a new offense instead */
    if (note != NULL && *note) {
        int rc = ch__offense_put_note(o, now_ms, st, note, false);
        if (rc < 0)
            return rc;
    }
    bool was_active = is_active(o);
    o->status = st;
    o->dirty = true;
    if (was_active && !is_active(o))
        index_rebuild(m);
    return 0;
}

static int cmp_offense(const void *a, const void *b)
{
    const ch_offense *x = *(ch_offense *const *)a, *y = *(ch_offense *const *)b;
    if (x->magnitude != y->magnitude)
        return x->magnitude > y->magnitude ? -1 : 1;
    if (x->last_ms != y->last_ms)
        return x->last_ms > y->last_ms ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int ch_offenses_sorted(const ch_offenses *m, unsigned status_mask, ch_offense ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    ch_offense **v = ch_malloc((m->n ? m->n : 1) * sizeof *v);
    if (v == NULL)
        return CH_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < m->n; i++)
        if (status_mask & (1u << m->all[i]->status))
            v[k++] = m->all[i];
    qsort(v, k, sizeof *v, cmp_offense);
    *out = v;
    *n = k;
    return 0;
}

/* ---- rendering ------------------------------------------------------------------------------ */

static int add_time(ch_buf *b, int64_t ms)
{
    if (ms == INT64_MAX || ms == INT64_MIN)
        return ch_buf_adds(b, "null");
    char t[40];
    size_t n = ch_time_format(ms, t);
    return ch_buf_add_json_str(b, t, n);
}

static int add_key(ch_buf *b, const char *key)
{
    int rc = ch_buf_add_json_str(b, key, strlen(key));
    return rc < 0 ? rc : ch_buf_addc(b, ':');
}

static int add_str(ch_buf *b, const char *s) { return ch_buf_add_json_str(b, s, strlen(s)); }

static int rule_json(ch_buf *b, const ch_offense_rule *r, unsigned flags)
{
    int rc = 0;
    if ((rc = ch_buf_adds(b, "{\"id\":")) < 0 || (rc = add_str(b, r->id)) < 0 ||
        (rc = ch_buf_adds(b, ",\"title\":")) < 0 || (rc = add_str(b, r->title)) < 0 ||
        (rc = ch_buf_printf(b, ",\"count\":%llu,\"first_seen\":", (unsigned long long)r->count)) <
            0 ||
        (rc = add_time(b, r->first_ms)) < 0 || (rc = ch_buf_adds(b, ",\"last_seen\":")) < 0 ||
        (rc = add_time(b, r->last_ms)) < 0 ||
        (rc = ch_buf_printf(b, ",\"severity\":%d,\"credibility\":%d,\"relevance\":%d", r->severity,
                            r->credibility, r->relevance)) < 0)
        return rc;
    if ((flags & CH_OFFENSE_JSON_DETAIL) && r->evidence != NULL) {
        if ((rc = ch_buf_adds(b, ",\"evidence\":")) < 0 || (rc = add_str(b, r->evidence)) < 0)
            return rc;
    }
    return ch_buf_addc(b, '}');
}

int ch_offense_json(ch_buf *b, const ch_offense *o, unsigned flags)
{
    int rc;
    if ((rc = ch_buf_printf(b, "{\"id\":%lld,\"index\":{\"field\":", (long long)o->id)) < 0 ||
        (rc = add_str(b, o->index_field)) < 0 || (rc = ch_buf_adds(b, ",\"value\":")) < 0 ||
        (rc = ch_buf_add_json_str(b, o->index_value, o->index_value_len)) < 0 ||
        (rc = ch_buf_printf(b,
                            "},\"magnitude\":%d,\"severity\":%d,\"credibility\":%d,"
                            "\"relevance\":%d,\"rules\":[",
                            o->magnitude, o->severity, o->credibility, o->relevance)) < 0)
        return rc;
    for (size_t i = 0; i < o->nrules; i++) {
        if (i > 0 && (rc = ch_buf_addc(b, ',')) < 0)
            return rc;
        if ((rc = rule_json(b, &o->rules[i], flags)) < 0)
            return rc;
    }
    if ((rc = ch_buf_printf(b, "],\"event_count\":%llu,\"first_seen\":",
                            (unsigned long long)o->event_count)) < 0 ||
        (rc = add_time(b, o->first_ms)) < 0 || (rc = ch_buf_adds(b, ",\"last_seen\":")) < 0 ||
        (rc = add_time(b, o->last_ms)) < 0 || (rc = ch_buf_adds(b, ",\"status\":")) < 0 ||
        (rc = add_str(b, ch_offense_status_name(o->status))) < 0)
        return rc;
    if (flags & CH_OFFENSE_JSON_DETAIL) {
        if ((rc = ch_buf_printf(b, ",\"score\":%.2f,\"event_ids\":[", o->score)) < 0)
            return rc;
        for (size_t i = 0; i < o->nevent_ids; i++) {
            if ((i > 0 && (rc = ch_buf_addc(b, ',')) < 0) || (rc = add_str(b, o->event_ids[i])) < 0)
                return rc;
        }
        if ((rc = ch_buf_adds(b, "],\"notes\":[")) < 0)
            return rc;
        for (size_t i = 0; i < o->nnotes; i++) {
            const ch_offense_note *nt = &o->notes[i];
            if ((i > 0 && (rc = ch_buf_addc(b, ',')) < 0) || (rc = ch_buf_adds(b, "{")) < 0 ||
                (rc = add_key(b, "time")) < 0 || (rc = add_time(b, nt->ts_ms)) < 0 ||
                (rc = ch_buf_adds(b, ",\"status\":")) < 0 ||
                (rc = add_str(b, ch_offense_status_name(nt->status))) < 0 ||
                (rc = ch_buf_adds(b, ",\"text\":")) < 0 || (rc = add_str(b, nt->text)) < 0 ||
                (rc = ch_buf_addc(b, '}')) < 0)
                return rc;
        }
        if ((rc = ch_buf_addc(b, ']')) < 0)
            return rc;
        if (o->dropped_rules > 0 && (rc = ch_buf_printf(b, ",\"dropped_rule_hits\":%llu",
                                                        (unsigned long long)o->dropped_rules)) < 0)
            return rc;
        if ((rc = ch_buf_adds(b, ",\"observables\":")) < 0 || (rc = ch_obs_json(b, o->obs)) < 0)
            return rc;
    }
    return ch_buf_addc(b, '}');
}

int ch_offenses_json(ch_buf *b, const ch_offenses *m, unsigned status_mask, unsigned flags)
{
    ch_offense **v = NULL;
    size_t n = 0;
    int rc = ch_offenses_sorted(m, status_mask, &v, &n);
    if (rc < 0)
        return rc;
    if ((rc = ch_buf_adds(b, "\"offenses\":[")) < 0)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && (rc = ch_buf_addc(b, ',')) < 0)
            goto cleanup;
        if ((rc = ch_offense_json(b, v[i], flags)) < 0)
            goto cleanup;
    }
    rc = ch_buf_addc(b, ']');
cleanup:
    ch_free(v);
    return rc < 0 ? rc : 0;
}

/* Text for a terminal: control bytes become '?', so that a crafted index value cannot move the
 * cursor or rewrite the analyst's screen; cut at `max` bytes with "...". */
static int add_plain(ch_buf *b, const char *s, size_t n, size_t max)
{
    int rc = 0;
    size_t lim = n > max ? max : n;
    for (size_t i = 0; i < lim && rc >= 0; i++) {
        unsigned char c = (unsigned char)s[i];
        rc = ch_buf_addc(b, (c < 0x20 || c == 0x7f) ? '?' : (char)c);
    }
    if (rc >= 0 && n > max)
        rc = ch_buf_adds(b, "...");
    return rc;
}

static void fmt_time(int64_t ms, char *t)
{
    if (ms == INT64_MAX || ms == INT64_MIN)
        strcpy(t, "-");
    else
        ch_time_format(ms, t);
}

int ch_offenses_table(ch_buf *b, const ch_offenses *m, unsigned status_mask, size_t limit)
{
    ch_offense **v = NULL;
    size_t n = 0;
    int rc = ch_offenses_sorted(m, status_mask, &v, &n);
    if (rc < 0)
        return rc;
    if (n == 0) {
        rc = ch_buf_adds(b, "no offenses\n");
        goto cleanup;
    }
    rc = ch_buf_printf(b, "%6s %3s %3s %3s %3s %-6s %8s %5s  %-24s %s\n", "ID", "MAG", "SEV", "CRE",
                       "REL", "STATUS", "EVENTS", "RULES", "LAST SEEN", "INDEX");
    for (size_t i = 0; i < n && rc >= 0 && (limit == 0 || i < limit); i++) {
        const ch_offense *o = v[i];
        char t[40];
        fmt_time(o->last_ms, t);
        rc = ch_buf_printf(b, "%6lld %3d %3d %3d %3d %-6s %8llu %5zu  %-24s ", (long long)o->id,
                           o->magnitude, o->severity, o->credibility, o->relevance,
                           ch_offense_status_name(o->status), (unsigned long long)o->event_count,
                           o->nrules, t);
        if (rc >= 0)
            rc = add_plain(b, o->index_field, strlen(o->index_field), 64);
        if (rc >= 0)
            rc = ch_buf_addc(b, '=');
        if (rc >= 0)
            rc = add_plain(b, o->index_value, o->index_value_len, 64);
        if (rc >= 0)
            rc = ch_buf_adds(b, "\n       rules:");
        for (size_t k = 0; k < o->nrules && rc >= 0; k++) {
            if (k == 12) {
                rc = ch_buf_printf(b, " (+%zu more)", o->nrules - k);
                break;
            }
            rc = ch_buf_addc(b, ' ');
            if (rc >= 0)
                rc = add_plain(b, o->rules[k].id, strlen(o->rules[k].id), 64);
            if (rc >= 0 && o->rules[k].count > 1)
                rc = ch_buf_printf(b, "x%llu", (unsigned long long)o->rules[k].count);
        }
        if (rc >= 0)
            rc = ch_buf_addc(b, '\n');
    }
    if (rc >= 0 && limit != 0 && n > limit)
        rc = ch_buf_printf(b, "(%zu more offenses)\n", n - limit);
cleanup:
    ch_free(v);
    return rc < 0 ? rc : 0;
}

int ch_offense_detail_text(ch_buf *b, const ch_offense *o)
{
    char t1[40], t2[40];
    fmt_time(o->first_ms, t1);
    fmt_time(o->last_ms, t2);
    int rc = ch_buf_printf(b, "offense %lld  [%s]\n  index:       ", (long long)o->id,
                           ch_offense_status_name(o->status));
    if (rc >= 0)
        rc = add_plain(b, o->index_field, strlen(o->index_field), 256);
    if (rc >= 0)
        rc = ch_buf_addc(b, '=');
    if (rc >= 0)
        rc = add_plain(b, o->index_value, o->index_value_len, CH_OFFENSE_MAX_VALUE_LEN);
    if (rc >= 0)
        rc = ch_buf_printf(b,
                           "\n  magnitude:   %d (score %.2f; severity %d, credibility %d, "
                           "relevance %d)\n  events:      %llu\n  first seen:  %s\n"
                           "  last seen:   %s\n  rules (%zu):\n",
                           o->magnitude, o->score, o->severity, o->credibility, o->relevance,
                           (unsigned long long)o->event_count, t1, t2, o->nrules);
    for (size_t i = 0; i < o->nrules && rc >= 0; i++) {
        const ch_offense_rule *r = &o->rules[i];
        fmt_time(r->first_ms, t1);
        fmt_time(r->last_ms, t2);
        rc = ch_buf_adds(b, "    ");
        if (rc >= 0)
            rc = add_plain(b, r->id, strlen(r->id), 64);
        if (rc >= 0)
            rc = ch_buf_printf(b, "  x%llu  sev %d cre %d rel %d  %s .. %s\n      ",
                               (unsigned long long)r->count, r->severity, r->credibility,
                               r->relevance, t1, t2);
        if (rc >= 0)
            rc = add_plain(b, r->title, strlen(r->title), 200);
        if (rc >= 0 && r->evidence != NULL) {
            rc = ch_buf_adds(b, "\n      evidence: ");
            if (rc >= 0)
                rc = add_plain(b, r->evidence, strlen(r->evidence), CH_OFFENSE_MAX_EVIDENCE_LEN);
        }
        if (rc >= 0)
            rc = ch_buf_addc(b, '\n');
    }
    if (rc >= 0)
        rc = ch_buf_printf(b, "  event ids (%zu of %llu):\n", o->nevent_ids,
                           (unsigned long long)o->event_count);
    for (size_t i = 0; i < o->nevent_ids && rc >= 0; i++) {
        rc = ch_buf_adds(b, "    ");
        if (rc >= 0)
            rc = add_plain(b, o->event_ids[i], strlen(o->event_ids[i]), 256);
        if (rc >= 0)
            rc = ch_buf_addc(b, '\n');
    }
    if (rc >= 0 && o->nnotes > 0)
        rc = ch_buf_printf(b, "  notes (%zu):\n", o->nnotes);
    for (size_t i = 0; i < o->nnotes && rc >= 0; i++) {
        fmt_time(o->notes[i].ts_ms, t1);
        rc = ch_buf_printf(b, "    %s  [%s]  ", t1, ch_offense_status_name(o->notes[i].status));
        if (rc >= 0)
            rc = add_plain(b, o->notes[i].text, strlen(o->notes[i].text), CH_OFFENSE_MAX_NOTE_LEN);
        if (rc >= 0)
            rc = ch_buf_addc(b, '\n');
    }
    return rc < 0 ? rc : 0;
}
