/*
 * taxii_publish.c - catalogs for the TAXII server from shareable sets and offenses (see
 * taxii_publish.h). Building a catalog reads every published element once and writes its STIX
 * JSON once: O(elements) time and memory for the JSON text, paid at each (re)publication rather
 * than per request, which keeps requests cheap and the store free of the server's reads.
 *
 * The ledger (intel_store.h, taxii_published) adds one lookup per object and a write per new
 * version or revocation, in one transaction per catalog: a rebuild that changes nothing reads
 * the ledger and writes nothing. It is what makes date_added the time the server first served
 * a version (not an event time from the logs, which an added_after poll made since would never
 * see) and what lets an object that left its collection be served as revoked rather than
 * vanish (subscribers would keep it for good).
 */
#include "intel/taxii_publish.h"

#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/ip.h"
#include "core/json.h"
#include "core/mem.h"
#include "intel/stix.h"
#include "offense/observables.h"

#define OBJ_MAX (64u << 10) /* one indicator's JSON */
#define VALUE_MAX 1100      /* a normalized entry */
#define EVIDENCE_PAIRS 32   /* field=value pairs read from one evidence line */
/* Revocations are served this long, then forgotten. */
#define REVOKED_KEEP_MS (90LL * 24 * 3600 * 1000)

void ch_taxii_publish_collection_id(const char *set_name, char out[37])
{
    char id[48];
    ch_stix_element_id("\x01taxii-collection", set_name, id);
    memcpy(out, id + 11, 36); /* drop "indicator--" */
    out[36] = '\0';
}

/* Same times ch_stix_write_element puts in the object, so that the manifest's version is the
 * object's `modified`. */
static int64_t modified_of(const ch_refset_meta *m, int64_t now_ms)
{
    int64_t created = m->first_seen > 0 ? m->first_seen : now_ms;
    return m->last_seen > created ? m->last_seen : created;
}

typedef struct pub {
    ch_taxii_catalog *cat;
    int coll;
    int64_t now_ms;
    ch_buf json;
    ch_taxii_publish_stats *st;
    ch_error *err;
    ch_intel_store *ledger; /* NULL: no memory of earlier catalogs */
    int confidence;         /* of the objects written; -1 = none */
} pub;

static int publish_one(pub *p, const char *set, ch_refset_type type, const char *value,
                       const ch_refset_meta *meta, int64_t date_added)
{
    if (meta->expiry <= p->now_ms) {
        p->st->expired++;
        return 0;
    }
    ch_buf_clear(&p->json);
    int rc = ch_stix_write_element_ex(&p->json, set, type, value, meta, p->now_ms, p->confidence);
    if (rc == CH_EUSAGE) {
        p->st->unsupported++;
        return 0;
    }
    if (rc < 0)
        return ch_error_set(p->err, rc, "writing the indicator for %s in %s", value, set);
    char id[48];
    ch_stix_element_id(set, value, id);
    rc = ch_taxii_catalog_add_object(p->cat, p->coll, id, modified_of(meta, p->now_ms), date_added,
                                     p->json.data, p->json.len, p->err);
    return rc < 0 ? rc : 0;
}

/* The revoked version of a published object: its members but modified and revoked, then
 * modified = the given time and revoked = true. */
static int revoked_json(ch_json_parser *jp, const char *json, size_t len, int64_t modified,
                        ch_buf *out, ch_error *err)
{
    ch_json_val root, v;
    ch_json_iter it;
    const char *k;
    size_t kl;
    ch_error e2 = {0};
    int rc = ch_json_parse(jp, json, len, len, &root, &e2);
    if (rc < 0 || !ch_json_obj_iter(root, &it))
        return ch_error_set(err, CH_EPARSE, "a published object in the ledger is no JSON object");
    ch_buf_clear(out);
    ch_buf_addc(out, '{');
    bool first = true;
    while (ch_json_obj_next(&it, &k, &kl, &v)) {
        if ((kl == 8 && memcmp(k, "modified", 8) == 0) || (kl == 7 && memcmp(k, "revoked", 7) == 0))
            continue;
        if (!first)
            ch_buf_addc(out, ',');
        first = false;
        ch_buf_add_json_str(out, k, kl);
        ch_buf_addc(out, ':');
        ch_json_write(v, out);
    }
    char ts[CH_STIX_TIME_MAX];
    ch_stix_format_time(modified, ts);
    rc = ch_buf_printf(out, "%s\"modified\":\"%s\",\"revoked\":true}", first ? "" : ",", ts);
    return rc < 0 ? ch_error_set(err, rc, "revoked object too large") : 0;
}

typedef struct gone {
    ch_buf ids; /* NUL-terminated ids of unrevoked rows no longer in the collection */
    pub *p;
} gone;

static int gone_cb(void *arg, const ch_intel_pub_row *row)
{
    gone *g = arg;
    if (ch_taxii_catalog_has(g->p->cat, g->p->coll, row->id))
        return 0;
    if (!row->revoked)
        return ch_buf_add(&g->ids, row->id, strlen(row->id) + 1) < 0 ? CH_ENOMEM : 0;
    /* Already revoked: keep serving that version, so late subscribers learn of it too. */
    return ch_taxii_catalog_add_object(g->p->cat, g->p->coll, row->id, row->version,
                                       row->date_added, row->json, row->json_len, g->p->err);
}

/* Settle the collection against the ledger: a version served before keeps its date_added; a
 * new version gets now; an object served before but gone now is served as revoked. */
static int reconcile(pub *p, const char *cid)
{
    int rc = ch_taxii_catalog_collapse(p->cat, p->coll);
    if (rc < 0)
        return rc;
    if (p->ledger == NULL) {
        p->st->objects += ch_taxii_catalog_objects(p->cat, p->coll);
        return 0;
    }
    /* Every new version gets a date_added of its own, after every earlier one of the
     * collection: a subscriber that resumes after a page's last date_added (exclusive, as
     * TAXII allows) then skips nothing, even when a whole load is published at once. The
     * stamps run ahead of now by one millisecond per new object, at most. */
    int64_t next = p->now_ms, last = INT64_MIN;
    if ((rc = ch_intel_store_pub_last_added(p->ledger, cid, &last, p->err)) < 0)
        return rc;
    if (last != INT64_MIN && last >= next)
        next = last + 1;
    ch_taxii_object o;
    for (size_t i = 0; ch_taxii_catalog_object(p->cat, p->coll, i, &o); i++) {
        ch_intel_pub_row row;
        rc = ch_intel_store_pub_get(p->ledger, cid, o.id, &row, NULL, p->err);
        if (rc < 0 && rc != CH_ENOTFOUND)
            return rc;
        if (rc == 0 && row.version == o.version && !row.revoked) {
            ch_taxii_catalog_set_added(p->cat, p->coll, i, row.date_added);
            continue;
        }
        /* A revoked object cannot come back under its id (STIX revocation is final): the new
         * version is served, but subscribers that honour revocation will ignore it. */
        if (rc == 0 && row.revoked)
            p->st->revived++;
        int64_t added = next++;
        ch_taxii_catalog_set_added(p->cat, p->coll, i, added);
        ch_intel_pub_row nr = {cid, o.id, o.version, added, false, o.json, o.len};
        if ((rc = ch_intel_store_pub_put(p->ledger, &nr, p->err)) < 0)
            return rc;
    }
    gone g = {.p = p};
    ch_buf_init(&g.ids, 1u << 30);
    ch_buf src, out;
    ch_buf_init(&src, OBJ_MAX);
    ch_buf_init(&out, OBJ_MAX + 128);
    ch_json_parser *jp = NULL;
    rc = ch_intel_store_pub_each(p->ledger, cid, gone_cb, &g, p->err);
    if (rc == CH_ENOMEM)
        rc = ch_error_set(p->err, rc, "out of memory");
    if (rc < 0 || g.ids.len == 0)
        goto cleanup;
    if ((jp = ch_json_parser_new(OBJ_MAX + 64, 64)) == NULL) {
        rc = ch_error_set(p->err, CH_ENOMEM, "out of memory");
        goto cleanup;
    }
    for (size_t k = 0; k < g.ids.len; k += strlen(g.ids.data + k) + 1) {
        const char *id = g.ids.data + k;
        ch_intel_pub_row row;
        ch_buf_clear(&src);
        if ((rc = ch_intel_store_pub_get(p->ledger, cid, id, &row, &src, p->err)) < 0)
            goto cleanup;
        int64_t mod = p->now_ms > row.version ? p->now_ms : row.version + 1;
        if ((rc = revoked_json(jp, src.data, src.len, mod, &out, p->err)) < 0)
            goto cleanup;
        int64_t added = next++;
        ch_intel_pub_row nr = {cid, id, mod, added, true, out.data, out.len};
        if ((rc = ch_intel_store_pub_put(p->ledger, &nr, p->err)) < 0 ||
            (rc = ch_taxii_catalog_add_object(p->cat, p->coll, id, mod, added, out.data, out.len,
                                              p->err)) < 0)
            goto cleanup;
        p->st->revoked++;
    }
    rc = 0;
cleanup:
    if (rc == 0)
        p->st->objects += ch_taxii_catalog_objects(p->cat, p->coll);
    ch_json_parser_free(jp);
    ch_buf_free(&src);
    ch_buf_free(&out);
    ch_buf_free(&g.ids);
    return rc;
}

static int add_set_collection(ch_taxii_catalog *cat, const char *name, ch_refset_type type,
                              ch_error *err)
{
    char cid[37], desc[256];
    ch_taxii_publish_collection_id(name, cid);
    snprintf(desc, sizeof desc, "coinhound reference set '%s' (%s), as STIX 2.1 indicators", name,
             ch_refset_type_name(type));
    return ch_taxii_catalog_add_collection(cat, cid, name, desc, err);
}

typedef struct store_arg {
    pub p;
} store_arg;

static int store_cb(void *arg, const ch_intel_elem_row *row)
{
    store_arg *a = arg;
    return publish_one(&a->p, row->set, row->type, row->value, &row->meta, row->added);
}

int ch_taxii_publish_store_sets(ch_taxii_catalog *cat, ch_intel_store *store, int64_t now_ms,
                                ch_taxii_publish_stats *stats, ch_error *err)
{
    ch_taxii_publish_stats local = {0};
    ch_intel_set_info *sets = NULL;
    size_t n = 0;
    store_arg a = {0};
    if (stats == NULL)
        stats = &local;
    bool own = false;
    ch_buf_init(&a.p.json, OBJ_MAX);
    int rc = 0;
    if (!ch_intel_store_in_transaction(store)) {
        if ((rc = ch_intel_store_begin(store, err)) < 0)
            goto cleanup;
        own = true;
    }
    if ((rc = ch_intel_store_pub_purge(store, now_ms - REVOKED_KEEP_MS, err)) < 0 ||
        (rc = ch_intel_store_set_list(store, &sets, &n, err)) < 0)
        goto cleanup;
    for (size_t i = 0; i < n; i++) {
        if (!sets[i].shareable)
            continue;
        int coll = add_set_collection(cat, sets[i].name, sets[i].type, err);
        if (coll < 0) {
            rc = coll;
            goto cleanup;
        }
        stats->collections++;
        a.p = (pub){cat, coll, now_ms, a.p.json, stats, err, store, -1};
        ch_intel_elem_query q = {sets[i].name, true, false, INT64_MIN, 0};
        rc = ch_intel_store_each_elem(store, &q, store_cb, &a, err);
        char cid[37];
        ch_taxii_publish_collection_id(sets[i].name, cid);
        if (rc < 0 || (rc = reconcile(&a.p, cid)) < 0)
            goto cleanup;
    }
    rc = 0;
cleanup:
    if (own) {
        if (rc < 0)
            ch_intel_store_rollback(store);
        else
            rc = ch_intel_store_commit(store, err);
    }
    ch_buf_free(&a.p.json);
    ch_free(sets);
    return rc;
}

int ch_taxii_publish_refset(ch_taxii_catalog *cat, const ch_refset *set, int64_t now_ms,
                            ch_taxii_publish_stats *stats, ch_error *err)
{
    ch_taxii_publish_stats local = {0};
    if (stats == NULL)
        stats = &local;
    const char *name = ch_refset_name(set);
    ch_refset_type type = ch_refset_type_of(set);
    int coll = add_set_collection(cat, name, type, err);
    if (coll < 0)
        return coll;
    stats->collections++;
    pub p = {cat, coll, now_ms, {0}, stats, err, NULL, -1};
    ch_buf_init(&p.json, OBJ_MAX);
    size_t cursor = 0;
    const ch_refset_elem *e;
    int rc = 0;
    char text[VALUE_MAX];
    while (rc == 0 && (e = ch_refset_next(set, &cursor)) != NULL) {
        if (ch_refset_elem_text(set, e, text, sizeof text) >= sizeof text) {
            stats->unsupported++;
            continue;
        }
        ch_refset_meta m = {e->source,    e->indicator,  e->first_seen,
                            e->last_seen, e->valid_from, e->expiry};
        rc = publish_one(&p, name, type, text, &m, e->last_seen);
    }
    if (rc == 0)
        rc = reconcile(&p, NULL);
    ch_buf_free(&p.json);
    return rc;
}

/* ---- offenses ----------------------------------------------------------------------------- */

static bool field_is_ip(const char *f, size_t n)
{
    return (n >= 3 && memcmp(f + n - 3, ".ip", 3) == 0) || (n == 2 && memcmp(f, "ip", 2) == 0) ||
           (n >= 9 && memcmp(f + n - 9, "IPAddress", 9) == 0) ||
           (n >= 5 && memcmp(f + n - 5, ".addr", 5) == 0);
}

static bool field_is_domain(const char *f, size_t n)
{
    static const char *const exact[] = {"dns.question.name", "query_name", "dns.query",
                                        "url.domain", "host.name.fqdn"};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (strlen(exact[i]) == n && memcmp(f, exact[i], n) == 0)
            return true;
    return n >= 7 && memcmp(f + n - 7, ".domain", 7) == 0;
}

/* Publish one candidate value of field f if it is a public address or a domain. */
static int offense_value(pub *p, const ch_offense *o, const char *f, size_t fn, const char *v,
                         size_t vn)
{
    char norm[VALUE_MAX];
    ch_refset_type type;
    if (vn == 0 || vn >= 300)
        return 0;
    if (field_is_ip(f, fn)) {
        ch_ip ip;
        if (!ch_ip_parse(v, vn, &ip))
            return 0;
        if (ch_ip_is_internal(&ip)) {
            p->st->internal++;
            return 0;
        }
        type = CH_REFSET_IP;
    } else if (field_is_domain(f, fn)) {
        type = CH_REFSET_DOMAIN;
        /* A domain needs a dot: single labels are host names of the local network. */
        if (memchr(v, '.', vn) == NULL)
            return 0;
    } else {
        return 0;
    }
    ch_error ignore = {0};
    if (ch_intel_normalize_value(type, v, vn, norm, sizeof norm, &ignore) < 0)
        return 0;
    char src[64];
    snprintf(src, sizeof src, "coinhound offense %lld", (long long)o->id);
    ch_refset_meta m = {src, "", o->first_ms, o->last_ms, o->first_ms, CH_REFSET_NEVER};
    /* date_added is when the server adds it (the ledger keeps the first time a version was
     * served), never the offense's event time: logs replayed late would carry dates before a
     * subscriber's last poll and never reach it. */
    return publish_one(p, CH_TAXII_OFFENSES_COLLECTION, type, norm, &m, p->now_ms);
}

static bool field_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_';
}

/* Evidence lines carry the correlation key as "field=value" pairs ("... for
 * network.interface.id=eni-1, destination.ip=203.0.113.9 ..."): read each pair. */
static int offense_evidence(pub *p, const ch_offense *o, const char *ev)
{
    size_t n = strlen(ev), pairs = 0;
    for (size_t i = 1; i < n && pairs < EVIDENCE_PAIRS; i++) {
        if (ev[i] != '=' || !field_char(ev[i - 1]))
            continue;
        size_t fs = i;
        while (fs > 0 && field_char(ev[fs - 1]))
            fs--;
        size_t ve = i + 1;
        while (ve < n && ev[ve] != ',' && ev[ve] != ' ' && ev[ve] != ';' && ev[ve] != ')')
            ve++;
        pairs++;
        int rc = offense_value(p, o, ev + fs, i - fs, ev + i + 1, ve - i - 1);
        if (rc < 0)
            return rc;
        i = ve;
    }
    return 0;
}

/* The offense's recorded observables (offense/observables.h) that STIX can carry as an
 * indicator: the attacker's addresses and the pools' domains and addresses, when a rule of
 * CH_OBS_ATTRIBUTED_SEVERITY or more named them. Access keys and
 * instance ids name the victim's own resources: they are evidence, not intelligence to share. */
static int offense_observables(pub *p, const ch_offense *o)
{
    static const struct {
        ch_obs_kind kind;
        const char *field; /* classifies the value as offense_value expects */
    } shared[] = {{CH_OBS_SOURCE_IP, "source.ip"},
                  {CH_OBS_POOL_DOMAIN, "dns.question.name"},
                  {CH_OBS_POOL_IP, "destination.ip"}};
    if (o->obs == NULL)
        return 0;
    for (size_t s = 0; s < sizeof shared / sizeof shared[0]; s++) {
        const char *f = shared[s].field;
        for (size_t i = 0; i < o->obs->n[shared[s].kind]; i++) {
            const ch_obs *e = &o->obs->items[shared[s].kind][i];
            if (e->severity < CH_OBS_ATTRIBUTED_SEVERITY)
                continue; /* the user's own context, not the attacker's */
            const char *v = e->value;
            int rc = offense_value(p, o, f, strlen(f), v, strlen(v));
            if (rc < 0)
                return rc;
        }
    }
    return 0;
}

int ch_taxii_publish_offenses(ch_taxii_catalog *cat, const ch_offenses *m, ch_intel_store *ledger,
                              int64_t now_ms, ch_taxii_publish_stats *stats, ch_error *err)
{
    ch_taxii_publish_stats local = {0};
    if (stats == NULL)
        stats = &local;
    char cid[37];
    ch_taxii_publish_collection_id(CH_TAXII_OFFENSES_COLLECTION, cid);
    int coll = ch_taxii_catalog_add_collection(
        cat, cid, CH_TAXII_OFFENSES_COLLECTION,
        "Public addresses and domains seen in coinhound offenses (cryptojacking evidence)", err);
    if (coll < 0)
        return coll;
    stats->collections++;
    pub p = {cat, coll, now_ms, {0}, stats, err, ledger, -1};
    ch_buf_init(&p.json, OBJ_MAX);
    int rc = 0;
    bool own = false;
    if (ledger != NULL && !ch_intel_store_in_transaction(ledger)) {
        if ((rc = ch_intel_store_begin(ledger, err)) < 0)
            goto cleanup;
        own = true;
    }
    for (size_t i = 0; rc == 0 && i < ch_offenses_count(m); i++) {
        const ch_offense *o = ch_offenses_at(m, i);
        if (o->status == CH_OFFENSE_HIDDEN)
            continue;
        /* The offense's credibility (0..10) is how far its evidence is trusted: STIX
         * confidence on 0..100. */
        p.confidence = o->credibility < 0 ? -1 : o->credibility > 10 ? 100 : o->credibility * 10;
        rc = offense_value(&p, o, o->index_field, strlen(o->index_field), o->index_value,
                           o->index_value_len);
        for (size_t r = 0; rc == 0 && r < o->nrules; r++)
            if (o->rules[r].evidence != NULL)
                rc = offense_evidence(&p, o, o->rules[r].evidence);
        rc = rc == 0 ? offense_observables(&p, o) : rc;
    }
    if (rc == 0)
        rc = reconcile(&p, cid);
cleanup:
    if (own) {
        if (rc < 0)
            ch_intel_store_rollback(ledger);
        else
            rc = ch_intel_store_commit(ledger, err);
    }
    ch_buf_free(&p.json);
    return rc;
}
