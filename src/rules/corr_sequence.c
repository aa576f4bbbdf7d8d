/*
 * corr_sequence.c - the sequence correlation type: `steps` in event-time order for one key,
 * first to last within `within`; a step is an expression or another rule's hit (engine.h,
 * rule.h).
 *
 * A key's progress (seqst, in eng_key.ext) is an NFA with one slot per state: for each count
 * i of completed steps, the latest start time of a partial match that got that far (a later
 * start can only be better), the time of its latest step, and the ids of the events that got it
 * there. An event that completes step j moves slot j into slot j + 1 (when it is better than
 * what is there) or, at the last step, fires and clears every slot. Cost per matching step:
 * O(steps) for the window check, plus copying at most `steps` ids. Memory per key is
 * O(steps^2) id pointers, allocated on the key's first step.
 *
 * Steps are taken in arrival order (each no earlier in event time than the one before it), so
 * inputs are merged by event time upstream. A key expires when the oldest start that can still
 * complete leaves the window, or, with nothing in progress, as soon as the watermark passes it.
 *
 * With `field` (a resource deleted by someone other than its creator: `field: user.name`), each
 * slot also keeps a 64-bit hash of the first step's value of field, and the last step completes
 * only when its own value differs; when it is the same (the creator tearing down its own
 * resource), the partial match is used up without a hit. An event without a value for field
 * cannot start or finish such a sequence.
 *
 * State file (after the key's entries, which a sequence never has): u32 nseq (0 = no progress;
 * bit 31 set when the hashes of `field` follow), then per slot i < nseq {i64 start, i64 last,
 * per j < nseq {u32 len, id}}, then, with bit 31, u64 hash[nseq].
 */
#include <stdio.h>
#include <string.h>

#include "core/hash.h"
#include "core/mem.h"
#include "rules/engine_int.h"

typedef struct seqst {
    uint32_t n;     /* steps */
    int64_t *start; /* [n]: start[i] for partial matches that completed i steps (i >= 1) */
    int64_t *last;  /* [n]: time of their latest step */
    char **ids;     /* [n * n]: ids[i * n + j], j < i */
    uint64_t *fh;   /* [n]: hash of the first step's value of the rule's field; NULL without */
} seqst;

#define SEQ_HAS_FIELD 0x80000000u

/* The hash of ev's first value of path (never 0), or 0 when it has none. */
static uint64_t field_hash(ch_engine *e, const ch_field_ref *path, const ch_event *ev)
{
    ch_value v;
    if (path == NULL || !ch_field_first(path, ev, &e->cache, &v))
        return 0;
    char buf[CH_VALUE_TEXT_MAX];
    ch_sv t = ch_value_text(&v, buf);
    return t.n == 0 ? 0 : ch_hash_bytes(t.p, t.n) | 1;
}

static seqst *seq_new(ch_engine *e, uint32_t n, bool with_field)
{
    seqst *s = ch_calloc(1, sizeof *s);
    if (s == NULL)
        return NULL;
    s->n = n;
    s->start = ch_malloc(n * sizeof *s->start);
    s->last = ch_malloc(n * sizeof *s->last);
    s->ids = ch_calloc((size_t)n * n, sizeof *s->ids);
    s->fh = with_field ? ch_calloc(n, sizeof *s->fh) : NULL;
    if (s->start == NULL || s->last == NULL || s->ids == NULL || (with_field && s->fh == NULL)) {
        ch_free(s->fh);
        ch_free(s->start);
        ch_free(s->last);
        ch_free(s->ids);
        ch_free(s);
        return NULL;
    }
    for (uint32_t i = 0; i < n; i++)
        s->start[i] = s->last[i] = ENG_NO_TIME;
    ch__eng_account(e, (int64_t)(sizeof *s + n * (2 * sizeof(int64_t) + n * sizeof(char *))));
    return s;
}

static void seq_free(ch_engine *e, eng_key *k)
{
    seqst *s = k->ext;
    if (s == NULL)
        return;
    for (uint32_t i = 0; i < s->n * s->n; i++)
        if (s->ids[i]) {
            ch__eng_account(e, -(int64_t)(strlen(s->ids[i]) + 1));
            ch_free(s->ids[i]);
        }
    ch__eng_account(e,
                    -(int64_t)(sizeof *s + s->n * (2 * sizeof(int64_t) + s->n * sizeof(char *))));
    ch_free(s->start);
    ch_free(s->last);
    ch_free(s->ids);
    ch_free(s->fh);
    ch_free(s);
    k->ext = NULL;
}

static void seq_clear_slot(ch_engine *e, seqst *s, uint32_t i)
{
    for (uint32_t j = 0; j < s->n; j++) {
        char **p = &s->ids[i * s->n + j];
        if (*p) {
            ch__eng_account(e, -(int64_t)(strlen(*p) + 1));
            ch_free(*p);
            *p = NULL;
        }
    }
    s->start[i] = s->last[i] = ENG_NO_TIME;
    if (s->fh)
        s->fh[i] = 0;
}

static char *dup_id(ch_engine *e, const char *p, size_t n)
{
    if (n == 0)
        return NULL;
    if (n > 128)
        n = 128;
    char *c = ch_strndup(p, n);
    if (c)
        ch__eng_account(e, (int64_t)n + 1);
    return c;
}

/* The event ev (at ts) completed step j for key (k). */
static int seq_advance(ch_engine *e, uint32_t ri, eng_key *k, uint32_t j, const ch_event *ev,
                       int64_t ts)
{
    const ch_rule *r = e->rs->rules[ri];
    uint32_t n = r->nsteps;
    if (k->ext == NULL && (k->ext = seq_new(e, n, r->field != NULL)) == NULL)
        return CH_ENOMEM;
    seqst *s = k->ext;
    int64_t wm = ch__eng_watermark(e);
    /* Partial matches whose start left the window can never complete. */
    for (uint32_t i = 1; i < n; i++)
        if (s->start[i] != ENG_NO_TIME && wm != ENG_NO_TIME && s->start[i] < wm - r->within_ms)
            seq_clear_slot(e, s, i);
    int fired = 0;
    uint64_t fh = s->fh ? field_hash(e, r->field, ev) : 0;
    if (j == 0) {
        if ((s->start[1] == ENG_NO_TIME || ts >= s->start[1]) && (s->fh == NULL || fh != 0)) {
            seq_clear_slot(e, s, 1);
            s->start[1] = s->last[1] = ts;
            s->ids[1 * n + 0] = dup_id(e, ev->id.p, ev->id.n);
            if (s->fh)
                s->fh[1] = fh;
        }
    } else if (s->start[j] != ENG_NO_TIME && ts >= s->last[j] && ts - s->start[j] <= r->within_ms) {
        if (j + 1 == n && s->fh != NULL && (fh == 0 || fh == s->fh[j])) {
            /* The one who started it finished it (a pipeline removing what it made): used up. */
            seq_clear_slot(e, s, j);
        } else if (j + 1 == n) {
            eng_hitctx hc;
            memset(&hc, 0, sizeof hc);
            hc.first = s->start[j];
            hc.count = n;
            for (uint32_t i = 0; i < j; i++)
                ch__eng_hit_add_id(&hc, s->ids[j * n + i]);
            char idbuf[129];
            snprintf(idbuf, sizeof idbuf, "%.*s", (int)(ev->id.n < 128 ? ev->id.n : 128),
                     ev->id.p ? ev->id.p : "");
            ch__eng_hit_add_id(&hc, idbuf);
            ch__eng_evidence_begin(e);
            ch_buf_printf(&e->evidence, "%u steps in order", n);
            ch__eng_evidence_key(e, r, k);
            ch_buf_adds(&e->evidence, " within ");
            ch__eng_evidence_dur(&e->evidence, ts - s->start[j]);
            ch_buf_adds(&e->evidence, " (limit ");
            ch__eng_evidence_dur(&e->evidence, r->within_ms);
            ch_buf_adds(&e->evidence, ")");
            /* Copy the ids out before the state is reset: the hit borrows them. */
            char ids[CH_RULE_MAX_STEPS][129];
            for (uint32_t i = 0; i < hc.nids; i++) {
                snprintf(ids[i], sizeof ids[i], "%.*s", (int)hc.ids[i].n, hc.ids[i].p);
                hc.ids[i] = (ch_sv){ids[i], (uint32_t)strlen(ids[i])};
            }
            for (uint32_t i = 1; i < n; i++)
                seq_clear_slot(e, s, i);
            ch__eng_expire_at(e, k, ts); /* nothing in progress: free once the watermark passes */
            fired = ch__eng_emit(e, ri, ev, ts, &hc);
            return fired;
        } else if (s->start[j + 1] == ENG_NO_TIME || s->start[j] >= s->start[j + 1]) {
            /* j + 1 < n here: the last step either fired or was used up above. */
            int64_t st0 = s->start[j];
            uint64_t fh0 = s->fh ? s->fh[j] : 0;
            char *moved[CH_RULE_MAX_STEPS] = {0};
            for (uint32_t i = 0; i < j; i++)
                moved[i] = s->ids[j * n + i]
                               ? dup_id(e, s->ids[j * n + i], strlen(s->ids[j * n + i]))
                               : NULL;
            seq_clear_slot(e, s, j + 1);
            s->start[j + 1] = st0;
            s->last[j + 1] = ts;
            for (uint32_t i = 0; i < j; i++)
                s->ids[(j + 1) * n + i] = moved[i];
            s->ids[(j + 1) * n + j] = dup_id(e, ev->id.p, ev->id.n);
            if (s->fh)
                s->fh[j + 1] = fh0;
        }
    }
    int64_t best = ENG_NO_TIME;
    for (uint32_t i = 1; i < n; i++)
        if (s->start[i] != ENG_NO_TIME && s->start[i] > best)
            best = s->start[i];
    ch__eng_expire_at(e, k, best == ENG_NO_TIME ? ENG_NO_TIME : best + r->within_ms);
    if (best == ENG_NO_TIME) /* nothing in progress: the key is free */
        ch__eng_expire_at(e, k, ts);
    return fired;
}

static int seq_step(ch_engine *e, uint32_t ri, uint32_t j, const ch_event *ev, int64_t ts)
{
    const ch_rule *r = e->rs->rules[ri];
    const ch_rule_step *st = &r->steps[j];
    char key[ENG_KEY_MAX];
    uint32_t klen = 0;
    bool ok = st->nby ? ch__eng_make_key(e, st->by, st->nby, ev, key, &klen)
                      : ch__eng_make_key(e, r->by, r->nby, ev, key, &klen);
    if (!ok) {
        e->st.no_key++;
        return 0;
    }
    eng_key *k = ch__eng_key_get(e, ri, key, klen, j == 0);
    if (k == NULL)
        return 0;
    return seq_advance(e, ri, k, j, ev, ts);
}

static int seq_process(ch_engine *e, uint32_t ri, const ch_event *ev, bool late)
{
    const ch_rule *r = e->rs->rules[ri];
    if (late) {
        e->st.late++;
        return 0;
    }
    if (r->where && !ch__eng_eval(e, ri, r->where, ev))
        return 0;
    int hits = 0;
    for (uint32_t j = r->nsteps; j-- > 0;)
        if (r->steps[j].where && ch__eng_eval(e, ri, r->steps[j].where, ev)) {
            int rc = seq_step(e, ri, j, ev, ev->ts_ms);
            if (rc > 0)
                hits += rc;
        }
    return hits;
}

/* ---- state file ------------------------------------------------------------------------------ */

static bool seq_save(FILE *f, const eng_key *k)
{
    const seqst *s = k->ext;
    uint32_t nseq = s ? s->n : 0;
    uint32_t head = nseq | (s && s->fh ? SEQ_HAS_FIELD : 0);
    bool ok = ch__eng_put(f, &head, sizeof head);
    for (uint32_t i = 0; ok && i < nseq; i++) {
        ok = ch__eng_put(f, &s->start[i], sizeof s->start[i]) &&
             ch__eng_put(f, &s->last[i], sizeof s->last[i]);
        for (uint32_t j = 0; ok && j < nseq; j++) {
            const char *id = s->ids[i * nseq + j];
            uint32_t l = id ? (uint32_t)strlen(id) : 0;
            ok = ch__eng_put(f, &l, sizeof l) && ch__eng_put(f, id, l);
        }
    }
    if (ok && s && s->fh)
        ok = ch__eng_put(f, s->fh, nseq * sizeof *s->fh);
    return ok;
}

/* Progress saved for a rule with another number of steps is read and dropped. */
static int seq_load(ch_engine *e, const ch_rule *r, eng_key *k, FILE *f)
{
    uint32_t nseq;
    if (!ch__eng_get(f, &nseq, sizeof nseq))
        return CH_EPARSE;
    bool has_field = (nseq & SEQ_HAS_FIELD) != 0;
    nseq &= ~SEQ_HAS_FIELD;
    if (nseq > CH_RULE_MAX_STEPS)
        return CH_EPARSE;
    seqst *s = NULL;
    /* Progress of a rule that gained or lost its field is dropped like that of another shape. */
    if (nseq && k && r->nsteps == nseq && has_field == (r->field != NULL) &&
        (s = k->ext = seq_new(e, nseq, has_field)) == NULL)
        return CH_ENOMEM;
    for (uint32_t i = 0; i < nseq; i++) {
        int64_t st0, last;
        if (!ch__eng_get(f, &st0, sizeof st0) || !ch__eng_get(f, &last, sizeof last))
            return CH_EPARSE;
        if (s) {
            s->start[i] = st0;
            s->last[i] = last;
        }
        for (uint32_t j = 0; j < nseq; j++) {
            uint32_t l;
            char idb[256];
            if (!ch__eng_get(f, &l, sizeof l) || l > 128 || !ch__eng_get(f, idb, l))
                return CH_EPARSE;
            if (s && l)
                s->ids[i * nseq + j] = dup_id(e, idb, l);
        }
    }
    for (uint32_t i = 0; has_field && i < nseq; i++) {
        uint64_t h;
        if (!ch__eng_get(f, &h, sizeof h))
            return CH_EPARSE;
        if (s)
            s->fh[i] = h;
    }
    return 0;
}

static int64_t seq_expiry(const ch_rule *r, const eng_key *k)
{
    const seqst *s = k->ext;
    int64_t exp = ENG_NO_TIME;
    for (uint32_t i = 1; s && i < s->n; i++)
        if (s->start[i] != ENG_NO_TIME && s->start[i] + r->within_ms > exp)
            exp = s->start[i] + r->within_ms;
    return exp;
}

const ch__corr_type ch__corr_sequence = {
    .type = CH_CORR_SEQUENCE,
    .process = seq_process,
    .on_rule_hit = seq_step,
    .save = seq_save,
    .load = seq_load,
    .free_ext = seq_free,
    .expiry = seq_expiry,
};
