/*
 * engine_state.c - saving an engine's state and loading it into a fresh engine
 * (ch_engine_save / ch_engine_load, engine.h): the pipeline's checkpoints and a reload of the
 * rules keep their windows, sequences and first-seen values through it.
 *
 * Format, version 1 (host byte order: the state moves between restarts of one server, not
 * between machines):
 *   "CHENGST\0" u32 version(1) i64 max_ts i64 t0 u64 nkeys
 *   per key: u16 idlen, id, u8 type, u32 klen, key, i64 quiet_until, i64 consumed_until,
 *            u32 nent, per entry {i64 ts, f64 w, u64 vh, u32 tlen, text},
 *            the correlation type's own state (ch__corr_type.save; a u32 0 for the types that
 *            keep none; a sequence's progress, corr_sequence.c)
 *   "CHEND\0\0\0"
 * Rules are named by id, so a reload with rules added, removed or reordered keeps what it can;
 * a key whose rule is gone or changed type is read (by the saved type's hooks) and dropped.
 *
 * Cost: one pass over the key table to save, one read per key to load, O(state bytes) both.
 */
#include <string.h>

#include "core/mem.h"
#include "rules/engine_int.h"

#define ST_MAGIC "CHENGST"
#define ST_END "CHEND\0\0"
#define ST_VERSION 1u

#define W(f, v) ch__eng_put(f, &(v), sizeof(v))
#define R(f, v) ch__eng_get(f, &(v), sizeof(v))

int ch_engine_save(const ch_engine *e, FILE *f, ch_error *err)
{
    bool ok = ch__eng_put(f, ST_MAGIC, 8);
    uint32_t ver = ST_VERSION;
    ok = ok && W(f, ver) && W(f, e->max_ts) && W(f, e->t0) && W(f, e->st.keys);
    for (size_t b = 0; ok && b < e->tab_cap; b++)
        for (const eng_key *k = e->tab[b]; ok && k; k = k->hnext) {
            const ch_rule *r = e->rs->rules[k->rule];
            const ch__corr_type *ct = e->corr[k->rule];
            uint16_t idlen = (uint16_t)strlen(r->info.id);
            uint8_t type = (uint8_t)r->type;
            ok = W(f, idlen) && ch__eng_put(f, r->info.id, idlen) && W(f, type) && W(f, k->klen) &&
                 ch__eng_put(f, k->key, k->klen) && W(f, k->quiet_until) &&
                 W(f, k->consumed_until) && W(f, k->nent);
            for (uint32_t i = 0; ok && i < k->nent; i++) {
                const eng_entry *en = &k->ent[i];
                uint32_t tl = en->text ? en->tlen : 0;
                ok = W(f, en->ts) && W(f, en->w) && W(f, en->vh) && W(f, tl) &&
                     ch__eng_put(f, en->text, tl);
            }
            if (ct->save != NULL) {
                ok = ok && ct->save(f, k);
            } else {
                uint32_t none = 0;
                ok = ok && W(f, none);
            }
        }
    ok = ok && ch__eng_put(f, ST_END, 8) && fflush(f) == 0;
    return ok ? 0 : ch_error_set(err, CH_EIO, "cannot write the engine state");
}

/* The entries of one key: into k, or read and dropped when k is NULL (or refuses more). */
static int load_entries(ch_engine *e, eng_key *k, uint32_t nent, FILE *f)
{
    for (uint32_t i = 0; i < nent; i++) {
        eng_entry en = {0, 0, 0, NULL, 0};
        uint32_t tl;
        if (!R(f, en.ts) || !R(f, en.w) || !R(f, en.vh) || !R(f, tl) || tl > 4096)
            return CH_EPARSE;
        if (tl) {
            en.text = ch_malloc(tl);
            if (en.text == NULL)
                return CH_ENOMEM;
            if (!ch__eng_get(f, en.text, tl)) {
                ch_free(en.text);
                return CH_EPARSE;
            }
            en.text[tl - 1] = '\0';
            en.tlen = tl;
            ch__eng_account(e, tl);
        }
        if (k == NULL || ch__eng_ent_reserve(e, k) < 0) {
            ch__eng_entry_free(e, &en);
            continue;
        }
        k->ent[k->nent++] = en; /* saved in order (time, or hash for first_seen) */
    }
    return 0;
}

int ch_engine_load(ch_engine *e, FILE *f, ch_error *err)
{
    char magic[8];
    uint32_t ver;
    int64_t max_ts, t0;
    uint64_t nkeys;
    char key[ENG_KEY_MAX];
    int rc;
    if (!ch__eng_get(f, magic, 8) || memcmp(magic, ST_MAGIC, 8) != 0 || !R(f, ver))
        return ch_error_set(err, CH_EPARSE, "not a coinhound engine state");
    if (ver != ST_VERSION)
        return ch_error_set(err, CH_EPARSE, "engine state version %u (expected %u)", ver,
                            ST_VERSION);
    if (!R(f, max_ts) || !R(f, t0) || !R(f, nkeys))
        goto trunc;
    if (e->max_ts == ENG_NO_TIME || max_ts > e->max_ts)
        e->max_ts = max_ts;
    if (e->t0 == ENG_NO_TIME || (t0 != ENG_NO_TIME && t0 < e->t0))
        e->t0 = t0;
    e->st.watermark_ms = ch__eng_watermark(e);
    for (uint64_t n = 0; n < nkeys; n++) {
        uint16_t idlen;
        uint8_t type;
        uint32_t klen, nent;
        char id[65537];
        int64_t quiet, consumed;
        if (!R(f, idlen) || !ch__eng_get(f, id, idlen) || !R(f, type) || !R(f, klen) ||
            klen > ENG_KEY_MAX || !ch__eng_get(f, key, klen) || !R(f, quiet) || !R(f, consumed) ||
            !R(f, nent))
            goto trunc;
        id[idlen] = '\0';
        /* The saved type reads the key's own state, whatever the rule is now. */
        const ch__corr_type *saved = ch__corr_type_of((ch_corr_type)type);
        if (saved == NULL)
            goto trunc;
        int ri = ch_ruleset_find(e->rs, id);
        const ch_rule *r = ri >= 0 ? e->rs->rules[ri] : NULL;
        eng_key *k = NULL;
        if (r != NULL && (uint8_t)r->type == type)
            k = ch__eng_key_get(e, (uint32_t)ri, key, klen, true);
        if (k) {
            k->quiet_until = quiet;
            k->consumed_until = consumed;
        }
        if ((rc = load_entries(e, k, nent, f)) < 0)
            goto fail;
        if (saved->load != NULL) {
            rc = saved->load(e, r, k, f);
        } else {
            uint32_t none;
            rc = R(f, none) && none == 0 ? 0 : CH_EPARSE;
        }
        if (rc < 0)
            goto fail;
        /* Expiry as the processing paths would have set it. */
        if (k != NULL)
            ch__eng_expire_at(e, k, saved->expiry ? saved->expiry(r, k) : ENG_NO_TIME);
    }
    if (!ch__eng_get(f, magic, 8) || memcmp(magic, ST_END, 8) != 0)
        goto trunc;
    return 0;
fail:
    if (rc == CH_ENOMEM)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
trunc:
    return ch_error_set(err, CH_EPARSE, "engine state is truncated or damaged");
}
