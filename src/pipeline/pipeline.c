/*
 * pipeline.c - the assembly and the per-event chain (see pipeline.h for what and why).
 *
 * Costs on the hot path, per event: one 64-bit hash of the record's identity (a CloudTrail
 * record hashes its ~60-byte eventID/account/region, not its text) and one probe of an
 * open-addressing set of those hashes for the event's hour (load factor <= 0.8: the current
 * hour's table stays in cache since events come in time order); then the enrichers and the
 * engine as before. The sets cost 8 to 20 bytes per remembered record; new identities are
 * appended to the ledger as they come (below), so a checkpoint only syncs it.
 *
 * A checkpoint's engine state is the engine's own versioned binary format (rules/engine.h),
 * written through a memory stream into one blob; refset response values are kept as a small
 * log (set, value, meta) that is replayed into the registry at open, so that a reference set a
 * rule filled survives a restart without mutating the pack.
 */
#include "pipeline/pipeline.h"
#include "store/evstore.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sys/mman.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "core/hash.h"
#include "core/mem.h"
#include "core/paths.h"
#include "enrich/context.h"
#include "enrich/entity.h"
#include "enrich/geoip.h"
#include "enrich/lineage.h"
#include "enrich/images.h"
#include "intel/intel_match.h"
#include "enrich/refset.h"
#include "ingest/input.h"
#include "ingest/prefetch.h"
#include "ingest/walk.h"
#include "intel/intel_store.h"
#include "intel/stix.h"
#include "investigate/facts.h"
#include "offense/lineage_store.h"
#include "offense/offense.h"
#include "offense/report.h"
#include "offense/store.h"
#include "output/output.h"
#include "parse/merge.h"
#include "rules/engine.h"
#include "rules/rule.h"
#include "rules/rule_state.h"
#include "uba/risk.h"

#define LATE_NAMED_MAX 10         /* late events named one by one; the rest are counted */
#define REFSET_LOG_MAX (1u << 20) /* rule-made reference-set values kept durable */
#define STATE_ENGINE "engine"
#define STATE_REFSETS "refset_responses"
#define STATE_POS_PREFIX "position:"

/* Identities are kept per hour of event time: events come in time order, so the hour being
 * read is a small table that stays in cache (one table for all records cost a cache miss per
 * event: 10% of a run with the pack), and old hours can be dropped as a whole. */
typedef struct seenset {
    int64_t hour;
    uint64_t *slots; /* 0 = empty */
    size_t n, cap;   /* cap: power of two, n <= 0.8 cap */
} seenset;

typedef struct seenhours {
    seenset *b; /* sorted by hour */
    size_t n, cap;
    size_t last; /* the bucket used last: the next event is almost always in it */
    uint64_t total;
} seenhours;

/* The ledger of processed records: a file beside the store (STORE.seen) of chunks
 * "CHSEEN1\0" hour:i64 n:u32 crc:u32 ids:u64[n], appended while records are processed and
 * fsynced before the checkpoint transaction that records its new length commits. What lies past the
 * committed length (a crash between the two) is cut off at the next open. A sequential append of 8
 * bytes per record costs a tenth of putting the same bytes through SQLite's WAL and its checkpoint.
 * Host byte order: the ledger stays with the machine's store. */
#define LEDGER_MAGIC "CHSEEN1"
#define STATE_LEDGER "seen_ledger_bytes"

/* hunt: whether the stored events have been searched for the value (rules that add addresses or
 * domains teach the pipeline an indicator; the events before the addition must be hunted). */
enum { HUNT_DONE, HUNT_PENDING, HUNT_RUNNING };
typedef struct refset_add {
    char *set, *value, *source;
    size_t len;
    int64_t first_seen, valid_from, expiry;
    int hunt;
} refset_add;

struct ch_pipeline {
    ch_pipeline_config cfg;
    /* event.id of the record being pushed when its source has none (flows, DNS queries): the
     * record identity in hex, so offenses can name them and the store find them again. */
    char synth_id[24];
    ch_context *ctx; /* the business context of the last (re)load: its image map */
    ch_diag *diag;
    ch_geoip *geoip;
    ch_refsets *refsets;
    ch_ruleset *rules;
    ch_engine *engine;
    ch_engine_opts eopts;
    ch_entity *entity;
    ch_lineage *lineage;
    ch_facts *facts;   /* investigation facts (graphs, user firsts); NULL without a store */
    ch_images *images; /* what each AMI runs (enrich/images.h) */
    ch_intel_matcher *intel;
    ch_intel_catalog *catalog;
    ch_offenses *offenses;
    ch_risk *risk;
    ch_offense_sink sink;
    ch_store *store;
    ch_evstore *evstore; /* events kept for search (store/evstore.h), or NULL */
    seenhours seen;
    char *ledger_path;
    uint64_t ledger_len; /* bytes of the ledger the store's last checkpoint committed */
    int ledger_fd;       /* open for appending, or -1 */
    uint64_t ledger_end; /* bytes written (committed or not) */
    int64_t buf_hour;    /* identities of one hour waiting to be written as a chunk */
    uint64_t *buf;
    size_t nbuf;
    refset_add *radds;
    size_t nradds, radds_cap;
    size_t nhunt_pending; /* radds waiting for a retro-hunt (HUNT_PENDING) */
    bool radds_dirty;
    bool lineage_legacy; /* the lineage came from its text form: the next save drops it */
    bool threaded;       /* a run used worker threads: the checkpoint may use a second core */
    bool dedupe_warned;
    char pack_def[4200];
    ch_pipeline_stats st;
};

static void say(ch_pipeline *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(ch_pipeline *p, const char *fmt, ...)
{
    if (p->cfg.msg == NULL)
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    p->cfg.msg(p->cfg.msg_ud, buf);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- record identity and the set of processed records --------------------------------------- */

/* 8 bytes at a time through the project's mixer (core/hash.h): a byte-at-a-time FNV-1a over
 * the ~60 bytes of a CloudTrail identity was 3% of a run; this is a third of that. */
static uint64_t id_mix(uint64_t h, const char *p, size_t n)
{
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = ch_hash_mix64(h ^ w) + 0x9e3779b97f4a7c15ULL;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    if (n > 0)
        memcpy(&w, p, n);
    return ch_hash_mix64(h ^ w ^ ((uint64_t)n << 56)) + 0x9e3779b97f4a7c15ULL;
}

uint64_t ch_pipeline_record_id(const ch_event *ev)
{
    uint64_t h = CH_HASH_SEED ^ (uint64_t)ev->dataset;
    if (ev->dataset == CH_DS_CLOUDTRAIL && ev->id.n > 0) {
        /* eventID is unique per account and region; the same record delivered through S3,
         * EventBridge or CloudWatch Logs carries the same one. */
        /* Each part's length is mixed in with it: ("ab","c") and ("a","bc") differ. */
        h = id_mix(h, ev->id.p, ev->id.n);
        h = id_mix(h, ev->account_id.p, ev->account_id.n);
        h = id_mix(h, ev->region.p, ev->region.n);
    } else if (ev->raw_json.n > 0) {
        h = id_mix(h, ev->raw_json.p, ev->raw_json.n);
    } else if (ev->raw_count > 0) {
        /* Columns, not the line: the same flow record under another header order or spacing
         * is the same record. */
        for (uint32_t i = 0; i < ev->raw_count; i++) {
            h = id_mix(h, ev->raw_names[i].p, ev->raw_names[i].n);
            h = id_mix(h, ev->raw_values[i].p, ev->raw_values[i].n);
        }
    } else {
        h = ch_hash_mix64(h ^ (uint64_t)ev->ts_ms);
        h = id_mix(h, ev->id.p, ev->id.n);
        h = id_mix(h, ev->action.p, ev->action.n);
    }
    h = ch_hash_mix64(h);
    return h ? h : 1;
}

/* event.id of a record without one: "r-" and the identity as 16 lower-case hex digits, as
 * snprintf's "r-%016" PRIx64 wrote it (offenses and the store name events by it). */
#define SYNTH_ID_LEN 18
static void synth_id(char out[SYNTH_ID_LEN], uint64_t id)
{
    static const char hex[] = "0123456789abcdef";
    out[0] = 'r';
    out[1] = '-';
    for (int i = 0; i < 16; i++)
        out[2 + i] = hex[(id >> (60 - 4 * i)) & 15];
}

static int64_t hour_of(int64_t ts_ms)
{
    return ts_ms >= 0 ? ts_ms / 3600000 : -((-ts_ms + 3599999) / 3600000);
}

/* Tables of a hundred KiB and more are mapped with their pages populated in one call: touched
 * one by one, each page is a fault, and under virtualisation a fault costs tens of
 * microseconds (perf: 14% of a run in pvm_irq_enable). Smaller ones come from the allocator. */
#define SLOTS_MAP_MIN ((size_t)128 << 10)

static uint64_t *slots_alloc(size_t n)
{
    size_t bytes = n * sizeof(uint64_t);
    if (bytes < SLOTS_MAP_MIN)
        return ch_calloc(n, sizeof(uint64_t));
    void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE,
                   -1, 0);
    return m == MAP_FAILED ? NULL : m;
}

static void slots_free(uint64_t *s, size_t n)
{
    if (s == NULL)
        return;
    if (n * sizeof(uint64_t) < SLOTS_MAP_MIN)
        ch_free(s);
    else
        munmap(s, n * sizeof(uint64_t));
}

static int seen_grow(seenset *s)
{
    size_t nc = s->cap ? s->cap * 2 : 256;
    uint64_t *ns = slots_alloc(nc);
    if (ns == NULL)
        return CH_ENOMEM;
    for (size_t i = 0; i < s->cap; i++) {
        uint64_t v = s->slots[i];
        if (v == 0)
            continue;
        size_t j = (size_t)v & (nc - 1);
        while (ns[j] != 0)
            j = (j + 1) & (nc - 1);
        ns[j] = v;
    }
    slots_free(s->slots, s->cap);
    s->slots = ns;
    s->cap = nc;
    return 0;
}

/* The bucket of an hour, made when missing (NULL when out of memory). */
static seenset *hour_bucket(seenhours *h, int64_t hour)
{
    if (h->n > 0 && h->b[h->last].hour == hour)
        return &h->b[h->last];
    size_t lo = 0, hi = h->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (h->b[mid].hour < hour)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < h->n && h->b[lo].hour == hour) {
        h->last = lo;
        return &h->b[lo];
    }
    if (h->n == h->cap) {
        seenset *nb = ch_grow(h->b, &h->cap, 64, sizeof *nb);
        if (nb == NULL)
            return NULL;
        h->b = nb;
    }
    memmove(h->b + lo + 1, h->b + lo, (h->n - lo) * sizeof *h->b);
    h->b[lo] = (seenset){.hour = hour};
    /* An hour holds about as many records as the last one: start at its size, so the table
     * is not grown (and its pages touched) five times over. */
    size_t want = h->n > 0 ? h->b[lo > 0 ? lo - 1 : lo + 1].cap : 0;
    if (want >= 256) {
        uint64_t *sl = slots_alloc(want);
        if (sl != NULL) {
            h->b[lo].slots = sl;
            h->b[lo].cap = want;
        }
    }
    h->n++;
    h->last = lo;
    return &h->b[lo];
}

/* 1 when id was added, 0 when it was there, CH_ELIMIT at the cap, CH_ENOMEM. */
static int seen_add(seenhours *h, int64_t hour, uint64_t id)
{
    seenset *s = hour_bucket(h, hour);
    if (s == NULL)
        return CH_ENOMEM;
    /* Load factor 0.8: linear probing over random 64-bit keys stays at ~3 probes, and every
     * page this table touches is a page fault (expensive under virtualisation). */
    if ((s->n + 1) * 5 > s->cap * 4) {
        if (h->total >= CH_PIPELINE_MAX_SEEN) {
            for (size_t k = s->cap ? (size_t)id & (s->cap - 1) : 0; s->cap;
                 k = (k + 1) & (s->cap - 1)) {
                if (s->slots[k] == id)
                    return 0;
                if (s->slots[k] == 0)
                    break;
            }
            return CH_ELIMIT;
        }
        int rc = seen_grow(s);
        if (rc < 0)
            return rc;
    }
    size_t j = (size_t)id & (s->cap - 1);
    while (s->slots[j] != 0) {
        if (s->slots[j] == id)
            return 0;
        j = (j + 1) & (s->cap - 1);
    }
    s->slots[j] = id;
    s->n++;
    h->total++;
    return 1;
}

static void seen_free(seenhours *h)
{
    for (size_t i = 0; i < h->n; i++)
        slots_free(h->b[i].slots, h->b[i].cap);
    ch_free(h->b);
}

typedef struct chunk_head {
    char magic[8];
    int64_t hour;
    uint32_t n, crc;
} chunk_head;

static uint32_t ids_crc(const uint64_t *ids, size_t n)
{
    return (uint32_t)crc32(0L, (const Bytef *)ids, (uInt)(n * sizeof *ids));
}

/* Load the committed part of the ledger; cut what lies beyond it. */
static int ledger_load(ch_pipeline *p, ch_error *err)
{
    void *v = NULL;
    size_t vn = 0;
    int rc = ch_store_get_state(p->store, STATE_LEDGER, &v, &vn, err);
    if (rc == CH_ENOTFOUND)
        rc = 0;
    else if (rc == 0)
        p->ledger_len = strtoull(v, NULL, 10);
    ch_free(v);
    if (rc < 0)
        return rc;
    FILE *f = fopen(p->ledger_path, "rb");
    if (f == NULL) {
        if (p->ledger_len > 0)
            say(p, "warning: %s is missing: records read before may be read again", p->ledger_path);
        p->ledger_len = p->ledger_end = 0;
        return 0;
    }
    uint64_t off = 0;
    uint64_t *ids = NULL;
    size_t cap = 0;
    while (off < p->ledger_len) {
        chunk_head h;
        if (fread(&h, sizeof h, 1, f) != 1 || memcmp(h.magic, LEDGER_MAGIC, 8) != 0)
            goto damaged;
        if (h.n > cap) {
            uint64_t *ni = ch_realloc(ids, (size_t)h.n * sizeof *ni);
            if (ni == NULL) {
                fclose(f);
                ch_free(ids);
                return ch_error_set(err, CH_ENOMEM, "out of memory");
            }
            ids = ni;
            cap = h.n;
        }
        if (fread(ids, sizeof *ids, h.n, f) != h.n || ids_crc(ids, h.n) != h.crc)
            goto damaged;
        for (uint32_t i = 0; i < h.n; i++) {
            rc = seen_add(&p->seen, h.hour, ids[i]);
            if (rc == CH_ENOMEM) {
                fclose(f);
                ch_free(ids);
                return ch_error_set(err, rc, "out of memory");
            }
            if (rc == 1)
                p->st.restored_seen++;
        }
        off += sizeof h + (uint64_t)h.n * sizeof *ids;
    }
    fclose(f);
    ch_free(ids);
    /* A tail past the committed length: written by a run that did not checkpoint. */
    if (truncate(p->ledger_path, (off_t)p->ledger_len) != 0)
        say(p, "warning: %s: cannot cut the uncommitted tail", p->ledger_path);
    p->ledger_end = p->ledger_len;
    return 0;
damaged:
    fclose(f);
    ch_free(ids);
    say(p,
        "warning: %s is damaged at byte %llu: records read before that point may be read "
        "again",
        p->ledger_path, (unsigned long long)off);
    p->ledger_len = p->ledger_end = off;
    if (truncate(p->ledger_path, (off_t)off) != 0)
        say(p, "warning: %s: cannot cut the damaged tail", p->ledger_path);
    return 0;
}

#define LEDGER_BUF 8192 /* identities per chunk at most: 64 KiB */

/* Write the buffered identities as one chunk (not synced: the checkpoint syncs). */
static int ledger_flush(ch_pipeline *p, ch_error *err)
{
    if (p->nbuf == 0)
        return 0;
    if (p->ledger_fd < 0) {
        p->ledger_fd = open(p->ledger_path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (p->ledger_fd < 0)
            return ch_error_set(err, CH_EIO, "%s: %s", p->ledger_path, strerror(errno));
    }
    chunk_head h = {.hour = p->buf_hour, .n = (uint32_t)p->nbuf};
    memcpy(h.magic, LEDGER_MAGIC, 8);
    h.crc = ids_crc(p->buf, p->nbuf);
    size_t bytes = p->nbuf * sizeof *p->buf;
    if (pwrite(p->ledger_fd, &h, sizeof h, (off_t)p->ledger_end) != (ssize_t)sizeof h ||
        pwrite(p->ledger_fd, p->buf, bytes, (off_t)(p->ledger_end + sizeof h)) != (ssize_t)bytes)
        return ch_error_set(err, CH_EIO, "%s: %s", p->ledger_path, strerror(errno));
    p->ledger_end += sizeof h + bytes;
    p->nbuf = 0;
    return 0;
}

/* A new identity goes to the ledger as it comes (in chunks of one hour): memory stays flat
 * whatever the number of records, and the checkpoint only syncs. */
static int ledger_add(ch_pipeline *p, int64_t hour, uint64_t id)
{
    ch_error err = {0};
    if ((p->nbuf > 0 && hour != p->buf_hour) || p->nbuf == LEDGER_BUF) {
        int rc = ledger_flush(p, &err);
        if (rc < 0)
            return rc;
    }
    if (p->buf == NULL && (p->buf = ch_malloc(LEDGER_BUF * sizeof *p->buf)) == NULL)
        return CH_ENOMEM;
    p->buf_hour = hour;
    p->buf[p->nbuf++] = id;
    return 0;
}

/* Flush and fsync; *new_len is the ledger's length to commit. */
static int ledger_sync(ch_pipeline *p, uint64_t *new_len, ch_error *err)
{
    *new_len = p->ledger_len;
    int rc = ledger_flush(p, err);
    if (rc < 0)
        return rc;
    if (p->ledger_fd >= 0 && p->ledger_end != p->ledger_len && fdatasync(p->ledger_fd) != 0)
        return ch_error_set(err, CH_EIO, "%s: %s", p->ledger_path, strerror(errno));
    *new_len = p->ledger_end;
    return 0;
}

/* ---- rule responses into reference sets ------------------------------------------------------ */

static void radd_free(refset_add *a)
{
    ch_free(a->set);
    ch_free(a->value);
    ch_free(a->source);
}

static void on_refset_add(void *ud, const char *set, const char *value, size_t len,
                          const ch_refset_meta *m)
{
    ch_pipeline *p = ud;
    p->st.refset_adds++;
    if (p->nradds == REFSET_LOG_MAX) {
        /* Keep the newest: the oldest values are the likeliest to have expired. */
        p->nhunt_pending -= p->radds[0].hunt == HUNT_PENDING;
        radd_free(&p->radds[0]);
        memmove(p->radds, p->radds + 1, (p->nradds - 1) * sizeof *p->radds);
        p->nradds--;
    }
    if (p->nradds == p->radds_cap) {
        refset_add *na = ch_grow(p->radds, &p->radds_cap, 64, sizeof *na);
        if (na == NULL)
            return;
        p->radds = na;
    }
    refset_add a = {.set = ch_strdup(set),
                    .value = ch_malloc(len + 1),
                    .source = ch_strdup(m->source ? m->source : ""),
                    .len = len,
                    .first_seen = m->first_seen,
                    .valid_from = m->valid_from,
                    .expiry = m->expiry};
    if (a.set == NULL || a.value == NULL || a.source == NULL) {
        radd_free(&a);
        return;
    }
    memcpy(a.value, value, len);
    a.value[len] = '\0';
    const ch_refset *rs = ch_refsets_get(p->refsets, set, strlen(set));
    ch_refset_type t = rs != NULL ? ch_refset_type_of(rs) : CH_REFSET_STRING;
    a.hunt = t == CH_REFSET_IP || t == CH_REFSET_DOMAIN ? HUNT_PENDING : HUNT_DONE;
    p->nhunt_pending += a.hunt == HUNT_PENDING;
    p->radds[p->nradds++] = a;
    p->radds_dirty = true;
}

/* Serialized as lines "set\tsource\tfirst\tfrom\texpiry\tvalue-hex\thunted\n": values come from
 * logs and may hold any byte. hunted is 1 once a retro-hunt searched the stored events for the
 * value (a running hunt saves 1: its checkpoint is the one that commits its hits); lines of
 * older states have no such column and count as hunted, so an upgrade starts no hunt. */
static int radds_save(ch_pipeline *p, ch_buf *b)
{
    int rc = 0;
    for (size_t i = 0; i < p->nradds && rc >= 0; i++) {
        const refset_add *a = &p->radds[i];
        rc =
            ch_buf_printf(b, "%s\t%s\t%lld\t%lld\t%lld\t", a->set, a->source,
                          (long long)a->first_seen, (long long)a->valid_from, (long long)a->expiry);
        for (size_t k = 0; k < a->len && rc >= 0; k++)
            rc = ch_buf_printf(b, "%02x", (unsigned char)a->value[k]);
        if (rc >= 0)
            rc = ch_buf_printf(b, "\t%d\n", a->hunt != HUNT_PENDING);
    }
    return rc < 0 ? rc : 0;
}

static int hexval(int c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void radds_restore(ch_pipeline *p, char *text)
{
    for (char *line = text, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *f[7];
        int nf = 0;
        for (char *s = line, *tok; nf < 7 && (tok = strsep(&s, "\t")) != NULL;)
            f[nf++] = tok;
        if (nf != 6 && nf != 7)
            continue;
        size_t hl = strlen(f[5]);
        char val[2048];
        if (hl % 2 || hl / 2 >= sizeof val)
            continue;
        bool ok = true;
        for (size_t k = 0; k < hl / 2 && ok; k++) {
            int hi = hexval(f[5][2 * k]), lo = hexval(f[5][2 * k + 1]);
            ok = hi >= 0 && lo >= 0;
            val[k] = (char)(hi * 16 + lo);
        }
        ch_refset *set = ok ? ch_refsets_get(p->refsets, f[0], strlen(f[0])) : NULL;
        if (set == NULL)
            continue;
        ch_refset_meta m = ch_refset_meta_make(f[1], strtoll(f[2], NULL, 10));
        m.valid_from = strtoll(f[3], NULL, 10);
        m.expiry = strtoll(f[4], NULL, 10);
        ch_error err;
        /* 1 (new) or 0 (refreshed): either way the value is the pipeline's to keep. */
        if (ch_refset_add(set, val, hl / 2, &m, &err) >= 0) {
            on_refset_add(p, f[0], val, hl / 2, &m);
            refset_add *a = &p->radds[p->nradds - 1];
            if (a->hunt == HUNT_PENDING && (nf == 6 || strcmp(f[6], "0") != 0)) {
                a->hunt = HUNT_DONE;
                p->nhunt_pending--;
            }
        }
    }
    p->radds_dirty = false;
}

/* ---- assembly ------------------------------------------------------------------------------- */

static void rule_msg(void *ud, const char *msg) { say(ud, "%s", msg); }

static bool has_active_offense(void *ud, const char *name, size_t n)
{
    const ch_pipeline *p = ud;
    return ch_offenses_find_active(p->offenses, "user.name", name, n) != NULL;
}

/* The offense an event's facts belong to: its creator's (lineage), else its principal's own. */
static ch_offense *event_offense(ch_pipeline *p, const ch_event *ev)
{
    if (ev->user_name.n == 0 || p->offenses == NULL)
        return NULL;
    char who[CH_LINEAGE_MAX_STR * 2 + 2];
    size_t wn = ch_lineage_principal(p->lineage, ev, who, sizeof who);
    ch_sv anc;
    if (wn > 0 && ch_lineage_resolve(p->lineage, who, wn, has_active_offense, p, &anc))
        return ch_offenses_find_active(p->offenses, "user.name", anc.p, anc.n);
    return ch_offenses_find_active(p->offenses, "user.name", ev->user_name.p, ev->user_name.n);
}

/* Identity lineage (enrich/lineage.h): a hit on a principal that another created or empowered
 * joins the nearest creator's active offense instead of opening one of its own. The hit keeps
 * its user, so risk stays with the principal that acted. */
static void on_hit(const ch_rule_hit *hit, void *ud)
{
    ch_pipeline *p = ud;
    ch_rule_hit h = *hit;
    if (p->lineage != NULL && hit->index_field != NULL && hit->event != NULL &&
        strcmp(hit->index_field, "user.name") == 0 && hit->index_value.n > 0 &&
        ch_sv_eq(hit->index_value, hit->event->user_name.p, hit->event->user_name.n)) {
        char who[CH_LINEAGE_MAX_STR * 2 + 2];
        size_t wn = ch_lineage_principal(p->lineage, hit->event, who, sizeof who);
        ch_sv anc;
        if (wn > 0 && ch_lineage_resolve(p->lineage, who, wn, has_active_offense, p, &anc))
            h.index_value = anc;
    }
    ch_offense_sink_hit(&h, &p->sink);
    if (p->facts != NULL && h.index_field != NULL && h.index_value.n > 0 &&
        ch_facts_hit(p->facts, &h,
                     ch_offenses_find_active(p->offenses, h.index_field, h.index_value.p,
                                             h.index_value.n)) < 0)
        p->st.engine_errors++;
    if (p->cfg.on_hit != NULL)
        p->cfg.on_hit(hit, p->cfg.hit_ud);
}

static int open_geoip(ch_pipeline *p, ch_error *err)
{
    const ch_pipeline_config *c = &p->cfg;
    if (c->no_geoip)
        return 0;
    const char *paths[CH_PIPELINE_MAX_GEOIP];
    size_t n = 0;
    bool explicit_paths = c->ngeoip > 0;
    char def[4200];
    char *env_copy = NULL;
    for (size_t i = 0; i < c->ngeoip && n < CH_PIPELINE_MAX_GEOIP; i++)
        paths[n++] = c->geoip[i];
    const char *env = getenv("COINHOUND_GEOIP");
    if (n == 0 && env != NULL && *env) {
        env_copy = ch_strdup(env);
        if (env_copy == NULL)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        for (char *s = env_copy, *tok; n < CH_PIPELINE_MAX_GEOIP && (tok = strsep(&s, ":"));)
            if (*tok)
                paths[n++] = tok;
        explicit_paths = true;
    }
    if (n == 0) {
        snprintf(def, sizeof def, "%s/geoip/country.mmdb", ch_data_dir());
        paths[n++] = def;
    }
    ch_error gerr = {0};
    int rc = 0;
    if (ch_geoip_open(&p->geoip, paths, n, &gerr) < 0) {
        if (explicit_paths)
            rc = ch_error_set(err, CH_EIO, "GeoIP: %s", gerr.msg);
        else
            say(p, "warning: GeoIP disabled: %s (run scripts/install-geoip)", gerr.msg);
        p->geoip = NULL;
    }
    ch_free(env_copy);
    return rc;
}

static int open_intel(ch_pipeline *p, ch_error *err)
{
    ch_intel_store *ist = NULL;
    int rc;
    if (ch_intel_catalog_new(&p->catalog) < 0 ||
        ch_intel_matcher_new(&p->intel, p->refsets, p->catalog, err) < 0)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    if (!p->cfg.no_store && (rc = ch_intel_store_open(ch_store_path(p->store), &ist, err)) < 0)
        return rc;
    rc = ch_intel_matcher_load(p->intel, p->refsets, p->catalog, p->cfg.intel, p->cfg.nintel, ist,
                               p->diag, err);
    ch_intel_store_close(ist);
    return rc;
}

/* The context's risk model onto the tracker. A reload adds watched names; it does not unwatch. */
static int apply_risk(const ch_context *ctx, ch_risk *r, ch_error *err)
{
    ch_risk_config rc = {0};
    ch_context_risk(ctx, &rc.decay_per_hour, &rc.watch_multiplier, &rc.scale);
    if (ch_risk_configure(r, &rc) < 0)
        return ch_error_set(err, CH_EUSAGE, "risk: a value is out of range");
    for (size_t i = 0; i < ch_context_watchlist_count(ctx); i++) {
        const char *u = ch_context_watchlist(ctx, i);
        if (ch_risk_watch(r, u, strlen(u)) < 0)
            return ch_error_set(err, CH_ENOMEM, "risk: cannot watch %s", u);
    }
    return 0;
}

/* An image's OS for the investigation graph: the image catalogue's verdict on what the logs
 * described (Kali by its Marketplace product code: evidence, and what the rules judged), else
 * what the business context says the image runs. */
static const char *image_os(void *ud, const char *ami, size_t n)
{
    ch_pipeline *p = ud;
    ch_image_info ii;
    if (p->images != NULL && ch_images_get(p->images, ami, n, &ii) && ii.os != NULL && ii.os[0])
        return ii.os;
    return p->ctx ? ch_context_image_os(p->ctx, ami, n) : NULL;
}

/* Context, registry, intel and rules: everything a reload replaces. */
static int open_content(ch_pipeline *p, ch_refsets **sets, int64_t *learning, ch_context **keep,
                        ch_error *err)
{
    ch_context *ctx = NULL;
    if (ch_refsets_new(sets) < 0 || ch_context_new(&ctx) < 0)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    int rc;
    /* The pack's context, then the user's over it: they become the sets rules name
     * ($business_countries, ...), so they must exist before the rules compile. */
    rc = ch_context_load_pack(ctx, p->cfg.pack, err);
    if (rc == 0 && p->cfg.context != NULL)
        rc = ch_context_load_path(ctx, p->cfg.context, err);
    if (rc == 0)
        rc = ch_context_apply(ctx, *sets, err);
    if (rc == 0 && p->risk != NULL)
        rc = apply_risk(ctx, p->risk, err);
    *learning = ch_context_learning_ms(ctx);
    if (rc == 0 && keep != NULL)
        *keep = ctx; /* its image map names instances' OS in the graph */
    else
        ch_context_free(ctx);
    if (rc < 0) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        return ch_error_set(err, rc, "business context: %s", msg);
    }
    return 0;
}

static int open_rules(ch_pipeline *p, ch_refsets *sets, ch_ruleset **rules, ch_error *err)
{
    int rc = ch_ruleset_load(p->cfg.pack, sets, rule_msg, p, rules, err);
    if (rc < 0) {
        char msg[sizeof err->msg];
        snprintf(msg, sizeof msg, "%s", err->msg);
        return ch_error_set(err, rc, "content pack %s: %s", p->cfg.pack, msg);
    }
    return 0;
}

static int restore_state(ch_pipeline *p, ch_error *err)
{
    void *blob = NULL;
    size_t n = 0;
    int rc = ch_store_get_state(p->store, STATE_ENGINE, &blob, &n, err);
    if (rc == 0) {
        FILE *f = fmemopen(blob, n, "rb");
        if (f == NULL) {
            rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        } else {
            rc = ch_engine_load(p->engine, f, err);
            fclose(f);
            if (rc < 0) {
                /* A damaged or foreign state must not stop the service: start clean, say so. */
                say(p, "warning: %s: correlation state not restored: %s", ch_store_path(p->store),
                    err->msg);
                rc = 0;
            } else {
                ch_engine_stats est;
                ch_engine_stats_get(p->engine, &est);
                p->st.restored_keys = est.keys;
            }
        }
    } else if (rc == CH_ENOTFOUND) {
        rc = 0;
    }
    ch_free(blob);
    blob = NULL;
    if (rc < 0)
        return rc;
    rc = ch_store_get_state(p->store, STATE_REFSETS, &blob, &n, err);
    if (rc == 0)
        radds_restore(p, blob);
    ch_free(blob);
    blob = NULL;
    if (rc == CH_ENOTFOUND)
        rc = 0;
    if (rc < 0)
        return rc;
    if (p->lineage != NULL &&
        (rc = ch_lineage_read(p->store, p->lineage, &p->lineage_legacy, err)) < 0)
        return rc;
    return ledger_load(p, err);
}

static int new_engine(ch_pipeline *p, const ch_ruleset *rs, int64_t learning, ch_engine **out,
                      ch_error *err)
{
    ch_engine_opts eo = {0};
    eo.lateness_ms = p->cfg.lateness_ms;
    eo.learning_ms = p->cfg.learning_ms ? p->cfg.learning_ms : learning;
    eo.refsets = p->refsets;
    eo.on_refset_add = on_refset_add;
    eo.refset_ud = p;
    p->eopts = eo;
    return ch_engine_new(rs, &eo, on_hit, p, out, err);
}

int ch_pipeline_open(const ch_pipeline_config *cfg, ch_pipeline **out, ch_error *err)
{
    *out = NULL;
    if (cfg == NULL || cfg->diag == NULL)
        return ch_error_set(err, CH_EUSAGE, "a pipeline needs a configuration with a diag");
    ch_pipeline *p = ch_calloc(1, sizeof *p);
    if (p == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    p->cfg = *cfg;
    p->diag = cfg->diag;
    p->ledger_fd = -1;
    int rc = open_geoip(p, err);
    if (rc < 0 || cfg->no_rules)
        goto done;
    if (p->cfg.pack == NULL) {
        snprintf(p->pack_def, sizeof p->pack_def, "%s/cryptojacking-aws", ch_content_dir());
        p->cfg.pack = p->pack_def;
    }
    int64_t learning = 0;
    if ((p->risk = ch_risk_new(0)) == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto done;
    }
    if ((rc = open_content(p, &p->refsets, &learning, &p->ctx, err)) < 0)
        goto done;
    if ((rc = ch_entity_new(0, 0, &p->entity, err)) < 0 ||
        (rc = ch_lineage_new(0, &p->lineage, err)) < 0)
        goto done;
    if (!cfg->no_store) {
        /* One thread at a time uses the store's connection: the thread that drives the
         * pipeline (analyze's; serve's pipeline thread, which gets it at its start and gives it
         * back at its join). Nothing else reaches it: the read-ahead workers prepare events
         * without it, the firsts' writer (investigate/facts.h) has its own connection, serve's
         * API its own (api.h) and, under pl_mu, reads only the pipeline's memory
         * (docs/BENCHMARKS.md section 63 lists the check). So no connection mutex: it was 9% of
         * the checkpoint's instructions (section 58). */
        if ((rc = ch_store_open_one_thread(cfg->db, &p->store, err)) < 0)
            goto done;
        size_t pl = strlen(ch_store_path(p->store)) + 6;
        if ((p->ledger_path = ch_malloc(pl)) == NULL) {
            rc = ch_error_set(err, CH_ENOMEM, "out of memory");
            goto done;
        }
        snprintf(p->ledger_path, pl, "%s.seen", ch_store_path(p->store));
        if ((rc = ch_facts_schema(ch_store_sql(p->store), err)) < 0 ||
            (rc = ch_lineage_schema(ch_store_sql(p->store), err)) < 0 ||
            (rc = ch_facts_new(&p->facts, err)) < 0)
            goto done;
        ch_facts_set_image_os(p->facts, image_os, p);
    }
    if ((rc = ch_images_open(p->cfg.pack, p->store ? ch_store_path(p->store) : NULL, p->refsets,
                             &p->images, err)) < 0)
        goto done;
    /* Threat intelligence before the rules: rules may name its sets ($intel_domains). */
    if ((rc = open_intel(p, err)) < 0)
        goto done;
    if ((rc = open_rules(p, p->refsets, &p->rules, err)) < 0)
        goto done;
    p->offenses = ch_offenses_new();
    if (p->offenses == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto done;
    }
    p->sink.offenses = p->offenses;
    p->sink.risk = p->risk;
    if ((rc = new_engine(p, p->rules, learning, &p->engine, err)) < 0)
        goto done;
    if (p->store != NULL) {
        if ((rc = ch_store_load_active(p->store, p->offenses, err)) < 0 ||
            (rc = ch_store_load_users(p->store, p->risk, err)) < 0 ||
            /* Launches seen by earlier runs: this run's DNS queries and flows of those
             * instances still get their launching user. */
            (rc = ch_store_load_links(p->store, p->entity, 0, err)) < 0 ||
            (rc = restore_state(p, err)) < 0 ||
            /* Rules an operator disabled (rules/rule_state.h) stay off in every run. */
            (rc = ch_rule_state_apply(ch_store_sql(p->store), p->rules, p->engine, err)) < 0)
            goto done;
        char warn[600];
        if (!cfg->no_event_store && cfg->event_hot != NULL &&
            (rc = ch_evstore_hot_set(p->store, cfg->event_hot, err)) < 0)
            goto done;
        if (!cfg->no_event_store &&
            (rc = ch_evstore_attach(p->store, cfg->event_retention, &p->evstore, warn, sizeof warn,
                                    err)) < 0)
            goto done;
        if (!cfg->no_event_store && warn[0])
            say(p, "%s", warn);
        rc = 0;
    }
done:
    if (rc < 0) {
        ch_pipeline_close(p);
        return rc;
    }
    *out = p;
    return 0;
}

void ch_pipeline_close(ch_pipeline *p)
{
    if (p == NULL)
        return;
    ch_engine_free(p->engine);
    ch_entity_free(p->entity);
    ch_lineage_free(p->lineage);
    ch_facts_free(p->facts);
    ch_context_free(p->ctx);
    ch_images_free(p->images);
    ch_intel_matcher_free(p->intel);
    ch_intel_catalog_free(p->catalog);
    ch_evstore_close(p->evstore);
    ch_store_close(p->store);
    ch_offenses_free(p->offenses);
    ch_risk_free(p->risk);
    ch_ruleset_free(p->rules);
    ch_refsets_free(p->refsets);
    ch_geoip_close(p->geoip);
    seen_free(&p->seen);
    ch_free(p->ledger_path);
    ch_free(p->buf);
    if (p->ledger_fd >= 0)
        close(p->ledger_fd);
    for (size_t i = 0; i < p->nradds; i++)
        radd_free(&p->radds[i]);
    ch_free(p->radds);
    ch_free(p);
}

/* ---- the chain ------------------------------------------------------------------------------- */

static void late_event(ch_pipeline *p, const ch_event *ev, int64_t wm, const char *origin)
{
    p->st.late++;
    int64_t behind = wm - ev->ts_ms;
    if (behind > p->st.late_max_ms)
        p->st.late_max_ms = behind;
    if (p->st.late <= LATE_NAMED_MAX) {
        char when[40];
        time_t t = (time_t)(ev->ts_ms / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
        say(p,
            "warning: %s: event %.*s at %s is %lld s behind the watermark (allowed lateness "
            "exceeded): enriched and seen by single-event rules, too late for correlation%s",
            origin ? origin : "<input>", (int)(ev->id.n < 80 ? ev->id.n : 80),
            ev->id.n ? ev->id.p : "-", when, (long long)(behind / 1000),
            p->st.late == LATE_NAMED_MAX ? " (further late events are only counted)" : "");
    }
}

int ch_pipeline_push_event(ch_pipeline *p, ch_event *ev, const char *origin)
{
    p->st.events++;
    uint64_t id = 0;
    if (p->store != NULL) {
        /* A worker made the identity (and the synthesized event.id) already: ch_pipeline_prep. */
        id = (ev->prep.done & CH_PREP_ID) ? ev->prep.record_id : ch_pipeline_record_id(ev);
        if (ev->id.n == 0) {
            synth_id(p->synth_id, id);
            ev->id = (ch_sv){p->synth_id, SYNTH_ID_LEN};
        }
        int64_t hour = hour_of(ev->ts_ms);
        int rc = seen_add(&p->seen, hour, id);
        if (rc == 0) {
            p->st.duplicates++;
            return 0;
        }
        if (rc == 1) {
            if (ledger_add(p, hour, id) < 0)
                p->st.engine_errors++; /* counted as a failure: the run exits 1 */
        } else {
            p->st.dedupe_cap++;
            if (!p->dedupe_warned) {
                p->dedupe_warned = true;
                say(p,
                    "warning: %u record identities remembered: later records are not "
                    "checked for duplicates",
                    CH_PIPELINE_MAX_SEEN);
            }
        }
    }
    p->st.processed++;
    if (p->geoip != NULL) {
        if (ev->prep.done & CH_PREP_GEO)
            ch_geoip_note_event(p->geoip, ev); /* looked up on a worker: counted as here */
        else
            ch_geoip_enrich(p->geoip, ev);
    }
    /* Launches teach the linker; DNS queries and flows of launched instances get their
     * launching user, so rules keyed by user see the mining stage. */
    if (p->lineage != NULL && ch_lineage_observe(p->lineage, ev) < 0)
        p->st.engine_errors++;
    if (p->entity != NULL)
        ch_entity_process(p->entity, ev);
    ch_images_observe(p->images, ev); /* before the rules: a Kali launch is judged on itself */
    if (p->intel != NULL)
        ch_intel_match(p->intel, ev);
    if (p->cfg.out != NULL && ch_output_write(p->cfg.out, ev) < 0)
        p->st.write_errors++;
    ch_error serr;
    if (p->evstore != NULL && ch_evstore_add(p->evstore, ev, id, &serr) < 0)
        p->st.write_errors++;
    if (p->engine == NULL)
        return 1;
    int64_t wm = ch_engine_watermark(p->engine);
    if (wm != INT64_MIN && ev->ts_ms < wm)
        late_event(p, ev, wm, origin);
    if (ch_engine_process(p->engine, ev) < 0) {
        p->st.engine_errors++;
        return CH_ENOMEM;
    }
    if (p->facts != NULL && ch_facts_event(p->facts, ev, event_offense(p, ev)) < 0)
        p->st.engine_errors++;
    return 1;
}

long ch_pipeline_push_buffer(ch_pipeline *p, const ch_source_type *type, const void *buf,
                             size_t len, const char *origin, ch_error *err)
{
    ch_input *in = NULL;
    ch_stream *st = NULL;
    const ch_source_type *t = NULL;
    if (origin == NULL)
        origin = "<memory>";
    int rc = ch_input_open_mem(&in, origin, buf, len, CH_INPUT_DEFAULT_MAX_WINDOW, err);
    if (rc < 0)
        return rc;
    uint64_t unrecognized = ch_diag_count(p->diag, "unrecognized_format");
    if (!ch_source_open_input(in, origin, type, p->diag, true, &t, &st)) {
        ch_input_close(in);
        if (ch_diag_count(p->diag, "unrecognized_format") > unrecognized)
            return ch_error_set(err, CH_EPARSE,
                                "%s: not a CloudTrail, VPC Flow Logs or Route 53 Resolver log",
                                origin);
        return 0;
    }
    long n = 0;
    ch_event ev;
    while (t->next(st, &ev) == 1) {
        if (ch_pipeline_push_event(p, &ev, origin) == CH_ENOMEM) {
            n = ch_error_set(err, CH_ENOMEM, "correlation ran out of memory");
            break;
        }
        n++;
    }
    t->close(st);
    ch_input_close(in);
    return n;
}

typedef struct walkctx {
    ch_merge *m;
    ch_diag *diag;
    uint64_t files;
} walkctx;

static int visit_file(const char *path, void *ud)
{
    walkctx *w = ud;
    w->files++;
    return ch_merge_add(w->m, path);
}

static int visit_missing(const char *path, const char *reason, void *ud)
{
    walkctx *w = ud;
    ch_diag_report(w->diag, CH_DS_UNKNOWN, path, 0, UINT64_MAX, "unreadable", "%s", reason);
    w->diag->unreadable_inputs++;
    return 0;
}

/* ---- work done ahead on the read-ahead workers ------------------------------------------------
 *
 * What of the chain depends on the event alone, or on parts of the pipeline that do not change
 * while it runs (the GeoIP databases, whether there is a store, the writer's format), is done on
 * the workers as they read: the record identity, the GeoIP lookups (each worker with a clone:
 * its own cache over the shared, read-only databases) and the events writer's line. The chain
 * then counts the lookups on its own handle (ch_geoip_note: the report's counters are those of
 * one thread) and copies the line unless entity linking or intelligence changed what it shows.
 * Measured in docs/BENCHMARKS.md section 31. */

typedef struct prep_thread {
    const ch_pipeline *p;
    ch_geoip *geoip; /* the worker's clone, or NULL */
    ch_buf line;
} prep_thread;

static void *prep_thread_new(void *ud)
{
    const ch_pipeline *p = ud;
    prep_thread *t = ch_calloc(1, sizeof *t);
    if (t == NULL)
        return NULL;
    t->p = p;
    ch_buf_init(&t->line, 0);
    ch_error err;
    if (p->geoip != NULL && ch_geoip_clone(p->geoip, &t->geoip, &err) < 0) {
        ch_free(t);
        return NULL; /* the events go unprepared: the chain does it all, as with one thread */
    }
    return t;
}

static void prep_thread_free(void *ud, void *tctx)
{
    (void)ud;
    prep_thread *t = tctx;
    ch_geoip_close(t->geoip);
    ch_buf_free(&t->line);
    ch_free(t);
}

/* The identity: what a worker behind the merge thread still does. false when out of memory
 * (the rest is then left to the chain). */
static bool prep_id(prep_thread *t, ch_event *ev, ch_arena *arena)
{
    if (t->p->store != NULL) {
        uint64_t id = ch_pipeline_record_id(ev);
        if (ev->id.n == 0) {
            char *s = ch_arena_alloc(arena, SYNTH_ID_LEN + 1);
            if (s == NULL)
                return false;
            synth_id(s, id);
            s[SYNTH_ID_LEN] = '\0';
            ev->id = (ch_sv){s, SYNTH_ID_LEN};
        }
        ev->prep.record_id = id;
        ev->prep.done |= CH_PREP_ID;
    }
    return true;
}

/* GeoIP is left to the merge thread with the line: there the lookup costs about what counting
 * the worker's lookup costs (ch_geoip_note probes the same cache, so that the report's
 * counters are those of one thread), while on the worker it was a twentieth of its time
 * (docs/BENCHMARKS.md section 54). */
static void prep_event_light(void *tctx, ch_event *ev, ch_arena *arena)
{
    (void)prep_id(tctx, ev, arena);
}

static void prep_event(void *tctx, ch_event *ev, ch_arena *arena)
{
    prep_thread *t = tctx;
    if (!prep_id(t, ev, arena))
        return;
    if (t->geoip != NULL) {
        ch_geoip_enrich(t->geoip, ev);
        ev->prep.done |= CH_PREP_GEO;
    }
    /* The line shows the synthesized id and the GeoIP fields: made after both. */
    if (t->p->cfg.out != NULL)
        (void)ch_output_prepare(t->p->cfg.out, ev, &t->line, arena);
}

void ch_pipeline_prep(const ch_pipeline *p, ch_prefetch_prep *out)
{
    *out = (ch_prefetch_prep){.thread_new = prep_thread_new,
                              .thread_free = prep_thread_free,
                              .event = prep_event,
                              /* A worker behind the merge thread leaves the events line (about
                               * 3,000 instructions of its 18,000 per CloudTrail event) and GeoIP
                               * to it. */
                              .event_light = prep_event_light,
                              .ud = (void *)p};
}

long ch_pipeline_run_paths(ch_pipeline *p, const char *const *paths, size_t n,
                           const ch_pipeline_run_opts *o, ch_merge_stats *ms, ch_error *err)
{
    ch_pipeline_run_opts d = {0};
    if (o == NULL)
        o = &d;
    ch_merge *m = ch_merge_new(p->diag, o->forced, o->max_open ? o->max_open : 512);
    if (m == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    if (o->sort_memory)
        ch_merge_set_sort_memory(m, o->sort_memory);
    if (o->threads > 1) {
        p->threaded = true;
        ch_merge_set_threads(m, o->threads);
        ch_prefetch_prep prep;
        ch_pipeline_prep(p, &prep);
        ch_merge_set_prep(m, &prep);
        /* The users' firsts are written ahead on a thread of their own (investigate/facts.h);
         * without it (it could not start) the checkpoint writes them, with the same rows. */
        ch_error werr;
        if (p->facts != NULL && p->store != NULL)
            (void)ch_facts_writer_start(p->facts, ch_store_path(p->store), &werr);
    }
    walkctx w = {m, p->diag, 0};
    long count = 0;
    if (o->walk) {
        if (ch_walk_paths(paths, n, visit_file, visit_missing, &w) == CH_ENOMEM)
            count = ch_error_set(err, CH_ENOMEM, "out of memory");
    } else {
        for (size_t i = 0; i < n && count == 0; i++)
            if (visit_file(paths[i], &w) < 0)
                count = ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    ch_event *ev;
    const char *origin = NULL;
    while (count >= 0 && ch_merge_next(m, &ev, &origin) == 1) {
        if (ch_pipeline_push_event(p, ev, origin) == CH_ENOMEM) {
            count = ch_error_set(err, CH_ENOMEM, "correlation ran out of memory");
            break;
        }
        count++;
        if (o->progress != NULL && (count & 4095) == 0) {
            ch_merge_stats st;
            ch_merge_stats_get(m, &st);
            o->progress(o->progress_ud, origin, st.opened, w.files);
        }
    }
    if (p->facts != NULL) {
        /* Before any checkpoint: the writer's transaction would hold the file's write lock. */
        ch_error werr;
        if (ch_facts_writer_stop(p->facts, &werr) < 0)
            say(p, "warning: investigation facts written ahead: %s (the checkpoint writes them)",
                werr.msg);
    }
    if (ms != NULL)
        ch_merge_stats_get(m, ms);
    if (o->progress != NULL) {
        ch_merge_stats st;
        ch_merge_stats_get(m, &st);
        o->progress(o->progress_ud, NULL, st.opened, w.files);
    }
    ch_merge_free(m);
    return count;
}

long ch_pipeline_push_paths(ch_pipeline *p, const char *const *paths, size_t n, ch_error *err)
{
    uint64_t unreadable = p->diag->unreadable_inputs;
    uint64_t unrecognized = ch_diag_count(p->diag, "unrecognized_format");
    ch_pipeline_run_opts o = {.max_open = n ? n : 1};
    long count = ch_pipeline_run_paths(p, paths, n, &o, NULL, err);
    if (count >= 0 && p->diag->unreadable_inputs > unreadable)
        count = ch_error_set(err, CH_EIO, "%s: cannot be read", n ? paths[0] : "");
    else if (count >= 0 && ch_diag_count(p->diag, "unrecognized_format") > unrecognized)
        count = ch_error_set(err, CH_EPARSE,
                             "not a recognised log (CloudTrail, VPC flow, Route 53): %s%s",
                             n ? paths[0] : "", n > 1 ? " (or another of the files)" : "");
    return count;
}

void ch_pipeline_advance(ch_pipeline *p, int64_t now_ms)
{
    if (p->engine != NULL)
        ch_engine_advance(p->engine, now_ms);
}

/* ---- durable state --------------------------------------------------------------------------- */

int ch_pipeline_checkpoint(ch_pipeline *p, const char *input, const char *position, ch_error *err)
{
    if (p->store == NULL)
        return 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int64_t now = wall_ms();
    char *blob = NULL;
    size_t blen = 0;
    uint64_t ledger_len = p->ledger_len;
    /* The graph facts are put in order on another core while the engine, the offenses (their
     * ids), the links and the lineage are saved; they are written last (docs/BENCHMARKS.md
     * section 50). */
    if (p->facts != NULL && p->threaded)
        ch_facts_save_prepare(p->facts);
    ch_buf rb;
    ch_buf_init(&rb, (size_t)1 << 30);
    int rc = 0;
    /* The event store's last segments are written and fsynced by its threads while this one
     * saves the engine, the offenses and the lineage; its flush below then mostly waits for
     * nothing (at the end of a 300k-record analyze it waited 27 ms, section 74). */
    if (p->evstore && (rc = ch_evstore_seal(p->evstore, err)) < 0)
        goto cleanup;
    FILE *f = open_memstream(&blob, &blen);
    if (f == NULL)
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
    else {
        rc = ch_engine_save(p->engine, f, err);
        if (fclose(f) != 0 && rc == 0)
            rc = ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    if (rc == 0 && p->radds_dirty)
        rc = radds_save(p, &rb) < 0 ? ch_error_set(err, CH_ENOMEM, "out of memory") : 0;
    if (rc < 0 || (rc = ch_images_save(p->images, err)) < 0)
        goto cleanup;
    ch_error werr;
    if (p->facts != NULL && ch_facts_writer_stop(p->facts, &werr) < 0)
        say(p, "warning: investigation facts written ahead: %s (the checkpoint writes them)",
            werr.msg);
    if ((rc = ch_store_begin(p->store, err)) < 0)
        goto cleanup;
    if ((rc = ch_store_save(p->store, p->offenses, p->risk, now, err)) < 0 ||
        (rc = ch_store_save_links(p->store, p->entity, 0, err)) < 0 ||
        (rc = ch_store_put_state(p->store, STATE_ENGINE, blob, blen, now, err)) < 0 ||
        (p->radds_dirty &&
         (rc = ch_store_put_state(p->store, STATE_REFSETS, rb.data, rb.len, now, err)) < 0) ||
        (p->lineage != NULL &&
         (rc = ch_lineage_persist(p->store, p->lineage, p->lineage_legacy, err)) < 0) ||
        (p->facts != NULL && (rc = ch_facts_save(p->facts, ch_store_sql(p->store), err)) < 0) ||
        (rc = ledger_sync(p, &ledger_len, err)) < 0 ||
        (p->evstore && (rc = ch_evstore_flush(p->evstore, p->store, now, err)) < 0))
        goto fail;
    char lenbuf[32];
    snprintf(lenbuf, sizeof lenbuf, "%llu", (unsigned long long)ledger_len);
    if ((rc = ch_store_put_state(p->store, STATE_LEDGER, lenbuf, strlen(lenbuf), now, err)) < 0)
        goto fail;
    if (input != NULL) {
        char name[512];
        snprintf(name, sizeof name, "%s%s", STATE_POS_PREFIX, input);
        const char *pos = position ? position : "";
        if ((rc = ch_store_put_state(p->store, name, pos, strlen(pos), now, err)) < 0)
            goto fail;
    }
    if ((rc = ch_store_commit(p->store, err)) < 0)
        goto cleanup;
    p->ledger_len = ledger_len;
    if (p->evstore)
        ch_evstore_committed(p->evstore);
    p->radds_dirty = false;
    if (p->lineage != NULL)
        ch_lineage_clear_dirty(p->lineage);
    p->lineage_legacy = false;
    p->st.checkpoints++;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    p->st.checkpoint_ms =
        (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
    rc = 0;
    goto cleanup;
fail:
    ch_store_rollback(p->store);
cleanup:
    if (p->facts != NULL)
        ch_facts_save_abandon(p->facts); /* a failure before the facts' save: their sort */
    free(blob);                          /* open_memstream's buffer comes from malloc */
    ch_buf_free(&rb);
    return rc;
}

int ch_pipeline_position(ch_pipeline *p, const char *input, char *buf, size_t cap, ch_error *err)
{
    if (cap)
        buf[0] = '\0';
    if (p->store == NULL)
        return 0;
    char name[512];
    snprintf(name, sizeof name, "%s%s", STATE_POS_PREFIX, input);
    void *v = NULL;
    size_t n = 0;
    int rc = ch_store_get_state(p->store, name, &v, &n, err);
    if (rc == 0 && cap)
        snprintf(buf, cap, "%.*s", (int)n, (const char *)v);
    ch_free(v);
    return rc == CH_ENOTFOUND ? 0 : rc;
}

int ch_pipeline_reload(ch_pipeline *p, ch_error *err)
{
    if (p->engine == NULL)
        return 0;
    ch_refsets *sets = NULL;
    ch_ruleset *rules = NULL;
    ch_engine *eng = NULL;
    ch_intel_matcher *intel = p->intel;
    ch_intel_catalog *cat = p->catalog;
    ch_refsets *old_sets = p->refsets;
    char *blob = NULL;
    size_t blen = 0;
    int64_t learning = 0;
    ch_context *ctx = NULL;
    int rc = open_content(p, &sets, &learning, &ctx, err);
    if (rc < 0)
        goto fail;
    p->refsets = sets;
    p->intel = NULL;
    p->catalog = NULL;
    if ((rc = open_intel(p, err)) < 0 || (rc = open_rules(p, sets, &rules, err)) < 0 ||
        (rc = new_engine(p, rules, learning, &eng, err)) < 0 ||
        (p->store != NULL &&
         (rc = ch_rule_state_apply(ch_store_sql(p->store), rules, eng, err)) < 0))
        goto fail;
    /* The state moves through the engine's own format: rules kept by id keep their windows. */
    FILE *f = open_memstream(&blob, &blen);
    if (f == NULL || ch_engine_save(p->engine, f, err) < 0) {
        if (f)
            fclose(f);
        rc = ch_error_set(err, CH_ENOMEM, "cannot save the correlation state");
        goto fail;
    }
    fclose(f);
    f = fmemopen(blob, blen, "rb");
    if (f == NULL || ch_engine_load(eng, f, err) < 0) {
        if (f)
            fclose(f);
        rc = CH_EPARSE;
        goto fail;
    }
    fclose(f);
    free(blob);
    blob = NULL;
    /* Values rules added survive the reload. */
    for (size_t i = 0; i < p->nradds; i++) {
        refset_add *a = &p->radds[i];
        ch_refset *set = ch_refsets_get(sets, a->set, strlen(a->set));
        ch_refset_meta m = ch_refset_meta_make(a->source, a->first_seen);
        m.valid_from = a->valid_from;
        m.expiry = a->expiry;
        ch_error e2;
        if (set != NULL)
            ch_refset_add(set, a->value, a->len, &m, &e2);
    }
    (void)ch_images_rebind(p->images, sets, err);
    ch_context_free(p->ctx);
    p->ctx = ctx;
    ctx = NULL;
    ch_engine_free(p->engine);
    ch_ruleset_free(p->rules);
    ch_intel_matcher_free(intel);
    ch_intel_catalog_free(cat);
    ch_refsets_free(old_sets);
    p->engine = eng;
    p->rules = rules;
    return 0;
fail:
    free(blob);
    ch_context_free(ctx);
    ch_engine_free(eng);
    ch_ruleset_free(rules);
    ch_intel_matcher_free(p->intel);
    ch_intel_catalog_free(p->catalog);
    ch_refsets_free(sets);
    p->refsets = old_sets;
    p->intel = intel;
    p->catalog = cat;
    p->eopts.refsets = old_sets;
    return rc;
}

void ch_pipeline_stats_get(const ch_pipeline *p, ch_pipeline_stats *out) { *out = p->st; }

int ch_pipeline_report_json(const ch_pipeline *p, ch_buf *b, unsigned flags)
{
    if (p->offenses == NULL)
        return 0;
    return ch_offense_report_json(b, p->offenses, p->risk, flags);
}

ch_geoip *ch_pipeline_geoip(const ch_pipeline *p) { return p->geoip; }
ch_engine *ch_pipeline_engine(const ch_pipeline *p) { return p->engine; }
const ch_ruleset *ch_pipeline_rules(const ch_pipeline *p) { return p->rules; }

int ch_pipeline_set_rule_enabled(ch_pipeline *p, const char *id, bool enabled, ch_error *err)
{
    int i = p->rules != NULL ? ch_ruleset_find(p->rules, id) : -1;
    if (i < 0)
        return ch_error_set(err, CH_ENOTFOUND, "no loaded rule has the id %s", id);
    ch_engine_set_enabled(p->engine, (uint32_t)i, enabled);
    return 0;
}

bool ch_pipeline_rule_enabled(const ch_pipeline *p, uint32_t i)
{
    return p->engine != NULL && ch_engine_enabled(p->engine, i);
}
ch_offenses *ch_pipeline_offenses(const ch_pipeline *p) { return p->offenses; }
ch_risk *ch_pipeline_risk(const ch_pipeline *p) { return p->risk; }
ch_entity *ch_pipeline_entity(const ch_pipeline *p) { return p->entity; }
ch_lineage *ch_pipeline_lineage(const ch_pipeline *p) { return p->lineage; }
ch_intel_matcher *ch_pipeline_intel(const ch_pipeline *p) { return p->intel; }
ch_store *ch_pipeline_store(const ch_pipeline *p) { return p->store; }
ch_evstore *ch_pipeline_evstore(const ch_pipeline *p) { return p->evstore; }
ch_refsets *ch_pipeline_refsets(const ch_pipeline *p) { return p->refsets; }

size_t ch_pipeline_hunt_take(ch_pipeline *p, ch_pipeline_add *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < p->nradds && n < cap; i++) {
        refset_add *a = &p->radds[i];
        if (a->hunt != HUNT_PENDING)
            continue;
        a->hunt = HUNT_RUNNING;
        p->nhunt_pending--;
        out[n++] = (ch_pipeline_add){a->set,        a->value,      a->source, a->len,
                                     a->first_seen, a->valid_from, a->expiry};
    }
    if (n > 0)
        p->radds_dirty = true;
    return n;
}

void ch_pipeline_hunt_done(ch_pipeline *p, bool ok)
{
    for (size_t i = 0; i < p->nradds; i++)
        if (p->radds[i].hunt == HUNT_RUNNING) {
            p->radds[i].hunt = ok ? HUNT_DONE : HUNT_PENDING;
            p->nhunt_pending += !ok;
        }
}

bool ch_pipeline_hunt_pending(const ch_pipeline *p) { return p->nhunt_pending > 0; }
uint64_t ch_pipeline_sink_errors(const ch_pipeline *p) { return p->sink.errors; }
