/*
 * geoip.c - MaxMind DB lookups merged across databases, behind a set-associative cache.
 *
 * A miss costs one MMDB_lookup_sockaddr per database (a walk of up to 128 tree nodes in a
 * memory-mapped file, a page fault on a cold file) plus a few MMDB_aget_value calls that scan
 * the record's top-level map by key; that is microseconds, while an event stream repeats the
 * same few thousand addresses millions of times. So a fixed cache sits in front: 64K entries of
 * one cache line each (4 MiB), 4-way set-associative with LRU inside the set (a hit moves its
 * entry to the front of the set, a miss evicts the last). The set is chosen by a
 * multiply-fold hash of the 16 address bytes. Memory never grows with the input; the cost of a
 * hit is one hash and at most four 16-byte compares over 256 contiguous bytes.
 *
 * Negative answers (no database knows the address) are cached like positive ones, or unknown
 * addresses would go to the databases every time.
 *
 * Strings (city, AS organisation, country name) are not copied: libmaxminddb hands out
 * pointers into the mapped data section, valid until MMDB_close, so a cache entry stores those
 * pointers and a ch_geo borrows them for as long as the handle is open. Moving or evicting an
 * entry therefore never invalidates a ch_geo that was filled from it.
 *
 * Behind the address cache, a second memo keyed by database and record: a miss still walks the
 * database's tree (a few hundred instructions), but what the record says (its country, names,
 * city, AS) is read with MMDB_aget_value only the first time that record is met. A country
 * database has a record per country, not per network, so an input of many distinct addresses
 * (section 11's hard corpus: 88% of its lookups miss the address cache) reads a few hundred
 * records in all; the map scans were 30M of the 39M instructions of its misses per 20k records
 * (docs/BENCHMARKS.md section 44). The memo keeps each field's answer and whether reading it
 * failed apart, so merging the memo into an entry fills the same fields and counts the same
 * errors as reading the record into it (merge_record). It is part of the cache: off with it.
 *
 * IPv4 is looked up as AF_INET: libmaxminddb then walks the IPv4 subtree of an IPv6 database
 * (::a.b.c.d, where MaxMind and ip-location-db store IPv4) and the root of an IPv4 database.
 * An IPv4-mapped lookup (::ffff:a.b.c.d) would miss in both, hence the conversion.
 */
#include "enrich/geoip.h"

#include <errno.h>
#include <maxminddb.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "core/mem.h"

#define WAYS 4

enum { ENT_USED = 1u << 0, ENT_UNKNOWN = 1u << 1 };
enum { STR_CITY = 0, STR_ORG, STR_CNAME, STR__COUNT };

/* One cache line: the key, the merged answer and pointers into the databases' mappings. */
typedef struct geo_entry {
    uint64_t k0, k1;
    const char *str[STR__COUNT];
    uint32_t len[STR__COUNT];
    uint32_t asn;
    char country[2];
    uint8_t flags;
} geo_entry;

_Static_assert(sizeof(geo_entry) <= 64, "a cache entry must fit one cache line");

/* What one database record says, read into an empty entry once (rec_read). set: which of
 * the fields merge_record would have written; bad: which reads found corrupt data. */
enum { F_COUNTRY = 1u << 0, F_CITY = 1u << 1, F_ASN = 1u << 2, F_ORG = 1u << 3 };
typedef struct geo_rec {
    uint32_t off1; /* the record's offset + 1 in its database's data; 0: empty slot */
    uint8_t db, set, bad;
    char country[2];
    const char *str[STR__COUNT];
    uint32_t len[STR__COUNT];
    uint32_t asn;
} geo_rec;

#define REC_MEMO 1024 /* slots, direct-mapped: about 60 KB per handle */

typedef struct geo_db {
    MMDB_s mmdb;
    bool v4only; /* ip_version 4: IPv6 lookups are clean misses */
} geo_db;

struct ch_geoip {
    const geo_db *dbs; /* owned when `owned` is set; a clone borrows its original's */
    geo_db *owned;
    size_t ndbs;
    geo_entry *cache; /* NULL when disabled */
    size_t entries;
    uint64_t set_mask; /* number of sets - 1 */
    geo_rec *recs;     /* REC_MEMO slots, with the cache (NULL without) */
    ch_geoip_stats st;
};

static const uint8_t v4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* Multiply-fold (as wyhash's mum): the high half of a 64x64 product depends on every input
 * bit, folding it into the low half makes the low bits used for the set index well mixed even
 * though IPv4 keys differ only in four bytes of k1. */
static inline uint64_t hash_key(uint64_t k0, uint64_t k1)
{
    __uint128_t m = (__uint128_t)(k0 ^ 0x9E3779B97F4A7C15ull) * (k1 ^ 0xD6E8FEB86659FD93ull);
    m = (__uint128_t)((uint64_t)m ^ (uint64_t)(m >> 64)) * 0xBF58476D1CE4E5B9ull;
    return (uint64_t)m ^ (uint64_t)(m >> 64);
}

static size_t round_cache_size(size_t n)
{
    if (n == 0)
        return 0;
    if (n > CH_GEOIP_CACHE_MAX)
        n = CH_GEOIP_CACHE_MAX;
    size_t p = WAYS;
    while (p < n)
        p <<= 1;
    return p;
}

/* The cache's pages are faulted in writable at open, in one call. Left to calloc, they were the
 * shared zero page until the first write, which then faulted again to copy it: two faults a
 * page, and with a second thread running, the copy's TLB flush interrupted the other CPU
 * (perf, `analyze --threads 2`: 5% of a 50k-record run in those faults). The allocation stays
 * ch_calloc's (tests make it fail); a kernel without MADV_POPULATE_WRITE (5.14) faults lazily
 * as before. */
static geo_entry *cache_alloc(size_t entries)
{
    geo_entry *c = ch_calloc(entries, sizeof(geo_entry));
    ch_mem_populate(c, entries * sizeof(geo_entry));
    return c;
}

static int alloc_handle(ch_geoip **out, size_t cache_entries, ch_error *err)
{
    /* The failures return CH_ENOMEM spelled out, not ch_error_set's result: the static
     * analyzer cannot see across files that ch_error_set returns its code, and would take a
     * "success" with *out unset. */
    ch_geoip *g = ch_calloc(1, sizeof *g);
    if (g == NULL) {
        ch_error_set(err, CH_ENOMEM, "geoip: out of memory");
        return CH_ENOMEM;
    }
    g->entries = round_cache_size(cache_entries);
    if (g->entries) {
        g->cache = cache_alloc(g->entries);
        if (g->cache == NULL) {
            size_t entries = g->entries;
            ch_free(g);
            ch_error_set(err, CH_ENOMEM, "geoip: out of memory for a cache of %zu entries",
                         entries);
            return CH_ENOMEM;
        }
        g->set_mask = g->entries / WAYS - 1;
        g->recs = ch_calloc(REC_MEMO, sizeof *g->recs);
        if (g->recs == NULL) {
            ch_free(g->cache);
            ch_free(g);
            ch_error_set(err, CH_ENOMEM, "geoip: out of memory");
            return CH_ENOMEM;
        }
    }
    *out = g;
    return CH_OK;
}

static int open_error(const char *path, int status, int saved_errno, ch_error *err)
{
    if (status == MMDB_FILE_OPEN_ERROR || status == MMDB_IO_ERROR)
        return ch_error_set(err, CH_EIO, "geoip database %s: %s%s%s", path, MMDB_strerror(status),
                            saved_errno ? ": " : "", saved_errno ? strerror(saved_errno) : "");
    if (status == MMDB_OUT_OF_MEMORY_ERROR)
        return ch_error_set(err, CH_ENOMEM, "geoip database %s: %s", path, MMDB_strerror(status));
    return ch_error_set(err, CH_EPARSE, "geoip database %s: not a valid MaxMind DB: %s", path,
                        MMDB_strerror(status));
}

int ch_geoip_open_ex(ch_geoip **out, const char *const *paths, size_t npaths,
                     const ch_geoip_opts *opts, ch_error *err)
{
    ch_geoip *g = NULL;
    int rc;

    if (out == NULL)
        return ch_error_set(err, CH_EUSAGE, "geoip: no output handle");
    *out = NULL;
    if (paths == NULL || npaths == 0 || npaths > CH_GEOIP_MAX_DBS)
        return ch_error_set(err, CH_EUSAGE, "geoip: between 1 and %d databases, not %zu",
                            CH_GEOIP_MAX_DBS, npaths);
    rc = alloc_handle(&g, opts ? opts->cache_entries : CH_GEOIP_CACHE_DEFAULT, err);
    if (rc < 0)
        return rc;
    g->owned = ch_calloc(npaths, sizeof *g->owned);
    if (g->owned == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "geoip: out of memory");
        goto cleanup;
    }
    g->dbs = g->owned;
    for (size_t i = 0; i < npaths; i++) {
        if (paths[i] == NULL || paths[i][0] == '\0') {
            rc = ch_error_set(err, CH_EUSAGE, "geoip: database path %zu is empty", i + 1);
            goto cleanup;
        }
        errno = 0;
        int status = MMDB_open(paths[i], MMDB_MODE_MMAP, &g->owned[i].mmdb);
        if (status != MMDB_SUCCESS) {
            rc = open_error(paths[i], status, errno, err);
            goto cleanup;
        }
        g->ndbs = i + 1; /* from here on, cleanup closes it */
        g->owned[i].v4only = g->owned[i].mmdb.metadata.ip_version == 4;
    }
    *out = g;
    g = NULL;
    rc = CH_OK;
cleanup:
    ch_geoip_close(g);
    return rc;
}

int ch_geoip_open(ch_geoip **out, const char *const *paths, size_t npaths, ch_error *err)
{
    ch_geoip_opts opts = {.cache_entries = CH_GEOIP_CACHE_DEFAULT};
    return ch_geoip_open_ex(out, paths, npaths, &opts, err);
}

int ch_geoip_clone(const ch_geoip *g, ch_geoip **out, ch_error *err)
{
    ch_geoip *c = NULL;
    if (g == NULL || out == NULL)
        return ch_error_set(err, CH_EUSAGE, "geoip: nothing to clone");
    *out = NULL;
    int rc = alloc_handle(&c, g->entries, err);
    if (rc < 0)
        return rc;
    c->dbs = g->dbs;
    c->ndbs = g->ndbs;
    *out = c;
    return CH_OK;
}

void ch_geoip_close(ch_geoip *g)
{
    if (g == NULL)
        return;
    if (g->owned) {
        for (size_t i = 0; i < g->ndbs; i++)
            MMDB_close(&g->owned[i].mmdb);
        ch_free(g->owned);
    }
    ch_free(g->cache);
    ch_free(g->recs);
    ch_free(g);
}

/* Look a path up in an entry. Returns 1 with *d filled, 0 when the path is absent (the normal
 * case for a database without that field), -1 when the data is corrupt. */
static int get_value(MMDB_entry_s *entry, const char *const *path, MMDB_entry_data_s *d)
{
    int status = MMDB_aget_value(entry, d, path);
    if (status == MMDB_SUCCESS)
        return d->has_data ? 1 : 0;
    if (status == MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR)
        return 0;
    return -1;
}

static int get_string(MMDB_entry_s *entry, const char *const *path, const char **s, uint32_t *n)
{
    MMDB_entry_data_s d;
    int r = get_value(entry, path, &d);
    if (r <= 0)
        return r;
    if (d.type != MMDB_DATA_TYPE_UTF8_STRING || d.data_size == 0)
        return 0;
    uint32_t len = d.data_size;
    if (len > CH_GEOIP_MAX_STR) {
        len = CH_GEOIP_MAX_STR;
        while (len > 0 && ((unsigned char)d.utf8_string[len] & 0xC0) == 0x80)
            len--; /* do not cut a UTF-8 sequence in half */
    }
    *s = d.utf8_string;
    *n = len;
    return 1;
}

static int get_uint(MMDB_entry_s *entry, const char *const *path, uint32_t *v)
{
    MMDB_entry_data_s d;
    int r = get_value(entry, path, &d);
    if (r <= 0)
        return r;
    switch (d.type) {
    case MMDB_DATA_TYPE_UINT16:
        *v = d.uint16;
        return 1;
    case MMDB_DATA_TYPE_UINT32:
        *v = d.uint32;
        return 1;
    case MMDB_DATA_TYPE_UINT64:
        if (d.uint64 > UINT32_MAX)
            return 0;
        *v = (uint32_t)d.uint64;
        return 1;
    default:
        return 0;
    }
}

static bool is_alpha2(const char *s, uint32_t n)
{
    return n == 2 && ((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z')) &&
           ((s[1] >= 'A' && s[1] <= 'Z') || (s[1] >= 'a' && s[1] <= 'z'));
}

static const char *const p_country_iso[] = {"country", "iso_code", NULL};
static const char *const p_country_code[] = {"country_code", NULL}; /* ip-location-db */
static const char *const p_country_name[] = {"country", "names", "en", NULL};
static const char *const p_city[] = {"city", "names", "en", NULL};
static const char *const p_asn[] = {"autonomous_system_number", NULL};
static const char *const p_org[] = {"autonomous_system_organization", NULL};
static const char *const p_tr_asn[] = {"traits", "autonomous_system_number", NULL};
static const char *const p_tr_org[] = {"traits", "autonomous_system_organization", NULL};

/* Read what one database record says into r, as merge_record reads it into an empty entry:
 * the country (and its name, from the same record), the city, the AS number (and its
 * organisation), each field's reads flagged in r->bad when they found corrupt data. */
static void rec_read(MMDB_entry_s *entry, geo_rec *r)
{
    int r1;
    const char *s = NULL;
    uint32_t n = 0;
    r1 = get_string(entry, p_country_iso, &s, &n);
    r->bad |= r1 < 0 ? F_COUNTRY : 0;
    if (r1 <= 0 || !is_alpha2(s, n)) {
        r1 = get_string(entry, p_country_code, &s, &n);
        r->bad |= r1 < 0 ? F_COUNTRY : 0;
    }
    if (r1 > 0 && is_alpha2(s, n)) {
        r->set |= F_COUNTRY;
        r->country[0] = (char)(s[0] & ~0x20); /* upper case, ASCII only */
        r->country[1] = (char)(s[1] & ~0x20);
        /* The name comes from the database that gave the country, so they agree. */
        r->bad |= get_string(entry, p_country_name, &r->str[STR_CNAME], &r->len[STR_CNAME]) < 0
                      ? F_COUNTRY
                      : 0;
    }
    r1 = get_string(entry, p_city, &r->str[STR_CITY], &r->len[STR_CITY]);
    r->bad |= r1 < 0 ? F_CITY : 0;
    r->set |= r1 > 0 ? F_CITY : 0;
    const char *const *org = p_org;
    r1 = get_uint(entry, p_asn, &r->asn);
    r->bad |= r1 < 0 ? F_ASN : 0;
    if (r1 <= 0) {
        r1 = get_uint(entry, p_tr_asn, &r->asn);
        r->bad |= r1 < 0 ? F_ASN : 0;
        org = p_tr_org;
    }
    r->set |= r1 > 0 ? F_ASN : 0;
    if (r1 > 0 && r->asn != 0) {
        r1 = get_string(entry, org, &r->str[STR_ORG], &r->len[STR_ORG]);
        r->bad |= r1 < 0 ? F_ASN : 0;
        r->set |= r1 > 0 ? F_ORG : 0;
    }
}

/* Merge what one database record says into e, filling only what is still empty; the record
 * is read once per handle (the memo of the file's opening comment) when g has a cache.
 * Returns -1 if the record's data needed for an empty field is corrupt somewhere. */
static int merge_record(ch_geoip *g, size_t dbi, MMDB_entry_s *entry, geo_entry *e)
{
    geo_rec fresh, *r = &fresh;
    uint32_t off1 = entry->offset + 1;
    if (g->recs != NULL && off1 != 0) {
        r = &g->recs[(off1 * 0x9E3779B1u >> 22) & (REC_MEMO - 1)];
        if (r->off1 != off1 || r->db != dbi) {
            memset(r, 0, sizeof *r);
            rec_read(entry, r);
            r->off1 = off1;
            r->db = (uint8_t)dbi;
        }
    } else {
        memset(r, 0, sizeof *r);
        rec_read(entry, r);
    }
    int bad = 0;
    if (e->country[0] == '\0') {
        bad |= r->bad & F_COUNTRY;
        if (r->set & F_COUNTRY) {
            e->country[0] = r->country[0];
            e->country[1] = r->country[1];
            e->str[STR_CNAME] = r->str[STR_CNAME];
            e->len[STR_CNAME] = r->len[STR_CNAME];
        }
    }
    if (e->len[STR_CITY] == 0) {
        bad |= r->bad & F_CITY;
        if (r->set & F_CITY) {
            e->str[STR_CITY] = r->str[STR_CITY];
            e->len[STR_CITY] = r->len[STR_CITY];
        }
    }
    if (e->asn == 0) {
        bad |= r->bad & F_ASN;
        if (r->set & F_ASN)
            e->asn = r->asn;
        if (r->set & F_ORG) {
            e->str[STR_ORG] = r->str[STR_ORG];
            e->len[STR_ORG] = r->len[STR_ORG];
        }
    }
    return bad ? -1 : 0;
}

static bool entry_complete(const geo_entry *e)
{
    return e->country[0] && e->len[STR_CITY] && e->asn;
}

/* Ask every database, in order, until all fields are known. */
static void resolve(ch_geoip *g, const ch_ip *ip, geo_entry *e)
{
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    const struct sockaddr *sa;
    bool v4 = ip->family == 4;
    bool failed = false;

    if (v4) {
        memset(&sin, 0, sizeof sin);
        sin.sin_family = AF_INET;
        memcpy(&sin.sin_addr, ip->b + 12, 4);
        sa = (const struct sockaddr *)&sin;
    } else {
        memset(&sin6, 0, sizeof sin6);
        sin6.sin6_family = AF_INET6;
        memcpy(&sin6.sin6_addr, ip->b, 16);
        sa = (const struct sockaddr *)&sin6;
    }
    for (size_t i = 0; i < g->ndbs && !entry_complete(e); i++) {
        const geo_db *db = &g->dbs[i];
        if (!v4 && db->v4only)
            continue;
        int mmdb_error = MMDB_SUCCESS;
        MMDB_lookup_result_s res = MMDB_lookup_sockaddr(&db->mmdb, sa, &mmdb_error);
        if (mmdb_error != MMDB_SUCCESS) {
            failed |= mmdb_error != MMDB_IPV6_LOOKUP_IN_IPV4_DATABASE_ERROR;
            continue;
        }
        if (!res.found_entry)
            continue;
        failed |= merge_record(g, i, &res.entry, e) < 0;
    }
    if (failed)
        g->st.errors++;
    if (e->country[0] == '\0' && e->asn == 0 && e->len[STR_CITY] == 0)
        e->flags |= ENT_UNKNOWN;
}

static void fill(const geo_entry *e, ch_geo *out)
{
    out->country[0] = e->country[0];
    out->country[1] = e->country[1];
    out->country[2] = '\0';
    out->asn = e->asn;
    out->city = (ch_sv){e->str[STR_CITY], e->len[STR_CITY]};
    out->as_org = (ch_sv){e->str[STR_ORG], e->len[STR_ORG]};
    out->country_name = (ch_sv){e->str[STR_CNAME], e->len[STR_CNAME]};
}

void ch_geoip_lookup(ch_geoip *g, const ch_ip *ip, ch_geo *out)
{
    ch_ip a;
    memset(out, 0, sizeof *out);
    if (ip == NULL || ip->family == 0)
        return;
    a = *ip;
    /* An IPv4-mapped address is IPv4 whatever family the producer wrote. */
    if (a.family == 6 && memcmp(a.b, v4_mapped_prefix, 12) == 0)
        a.family = 4;
    g->st.lookups++;
    if (ch_ip_is_internal(&a)) {
        out->internal = true;
        g->st.internal++;
        return;
    }
    out->looked_up = true;

    uint64_t k0, k1;
    memcpy(&k0, a.b, 8);
    memcpy(&k1, a.b + 8, 8);
    geo_entry fresh;
    memset(&fresh, 0, sizeof fresh);
    if (g->cache == NULL) {
        g->st.cache_misses++;
        resolve(g, &a, &fresh);
        g->st.unknown += (fresh.flags & ENT_UNKNOWN) != 0;
        fill(&fresh, out);
        return;
    }

    geo_entry *set = &g->cache[(hash_key(k0, k1) & g->set_mask) * WAYS];
    for (int w = 0; w < WAYS; w++) {
        if ((set[w].flags & ENT_USED) && set[w].k0 == k0 && set[w].k1 == k1) {
            g->st.cache_hits++;
            if (w > 0) { /* move to front: LRU order within the set */
                geo_entry hit = set[w];
                memmove(&set[1], &set[0], (size_t)w * sizeof *set);
                set[0] = hit;
            }
            g->st.unknown += (set[0].flags & ENT_UNKNOWN) != 0;
            fill(&set[0], out);
            return;
        }
    }
    g->st.cache_misses++;
    fresh.k0 = k0;
    fresh.k1 = k1;
    fresh.flags = ENT_USED;
    resolve(g, &a, &fresh);
    memmove(&set[1], &set[0], (WAYS - 1) * sizeof *set); /* the last way is evicted */
    set[0] = fresh;
    g->st.unknown += (fresh.flags & ENT_UNKNOWN) != 0;
    fill(&fresh, out);
}

void ch_geoip_enrich(ch_geoip *g, ch_event *ev)
{
    ch_geoip_lookup(g, &ev->src_ip, &ev->src_geo);
    ch_geoip_lookup(g, &ev->dst_ip, &ev->dst_geo);
}

void ch_geoip_note(ch_geoip *g, const ch_ip *ip, const ch_geo *geo)
{
    /* ch_geoip_lookup's steps and counters, with geo standing in for the databases' answer. */
    if (ip == NULL || ip->family == 0)
        return;
    g->st.lookups++;
    if (geo->internal) {
        g->st.internal++;
        return;
    }
    ch_ip a = *ip;
    if (a.family == 6 && memcmp(a.b, v4_mapped_prefix, 12) == 0)
        a.family = 4;
    bool unknown = geo->country[0] == '\0' && geo->asn == 0 && geo->city.n == 0;
    g->st.unknown += unknown;
    if (g->cache == NULL) {
        g->st.cache_misses++;
        return;
    }
    uint64_t k0, k1;
    memcpy(&k0, a.b, 8);
    memcpy(&k1, a.b + 8, 8);
    geo_entry *set = &g->cache[(hash_key(k0, k1) & g->set_mask) * WAYS];
    for (int w = 0; w < WAYS; w++) {
        if ((set[w].flags & ENT_USED) && set[w].k0 == k0 && set[w].k1 == k1) {
            g->st.cache_hits++;
            if (w > 0) {
                geo_entry hit = set[w];
                memmove(&set[1], &set[0], (size_t)w * sizeof *set);
                set[0] = hit;
            }
            return;
        }
    }
    g->st.cache_misses++;
    geo_entry fresh;
    memset(&fresh, 0, sizeof fresh);
    fresh.k0 = k0;
    fresh.k1 = k1;
    fresh.flags = (uint8_t)(ENT_USED | (unknown ? ENT_UNKNOWN : 0));
    fresh.country[0] = geo->country[0];
    fresh.country[1] = geo->country[1];
    fresh.asn = geo->asn;
    fresh.str[STR_CITY] = geo->city.p;
    fresh.len[STR_CITY] = geo->city.n;
    fresh.str[STR_ORG] = geo->as_org.p;
    fresh.len[STR_ORG] = geo->as_org.n;
    fresh.str[STR_CNAME] = geo->country_name.p;
    fresh.len[STR_CNAME] = geo->country_name.n;
    memmove(&set[1], &set[0], (WAYS - 1) * sizeof *set);
    set[0] = fresh;
}

void ch_geoip_note_event(ch_geoip *g, const ch_event *ev)
{
    ch_geoip_note(g, &ev->src_ip, &ev->src_geo);
    ch_geoip_note(g, &ev->dst_ip, &ev->dst_geo);
}

void ch_geoip_stats_get(const ch_geoip *g, ch_geoip_stats *out) { *out = g->st; }

size_t ch_geoip_db_count(const ch_geoip *g) { return g->ndbs; }

const char *ch_geoip_db_type(const ch_geoip *g, size_t i)
{
    if (i >= g->ndbs || g->dbs[i].mmdb.metadata.database_type == NULL)
        return "";
    return g->dbs[i].mmdb.metadata.database_type;
}
