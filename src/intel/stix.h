/*
 * stix.h - STIX 2.1 ingestion: indicators from bundles (files) and from TAXII envelopes become
 * elements of reference sets (enrich/refset.h), with their metadata kept in a catalog so that a
 * hit can name the indicator, its feed, its confidence and its creator.
 *
 * Only what a reference set can hold exactly is loaded. A `pattern_type: stix` pattern is
 * compiled (stix_pattern.c) into a disjunction of equality comparisons on domain-name:value,
 * ipv4-addr:value, ipv6-addr:value (CIDR allowed, also with ISSUBSET) and url:value (the URL goes
 * into the url set only: its host is never put into the domain or ip set, which would widen the
 * indicator to every resource of that host; stats.url_only counts them, as no event source
 * carries URLs to match yet); `IN ('a', 'b')` is read as an OR of
 * equalities. Observation expressions joined by OR are flattened the same way. Everything else -
 * AND, FOLLOWEDBY, qualifiers (WITHIN, REPEATS, START/STOP), != and NOT, LIKE, MATCHES, ordering
 * operators, and comparisons on objects other than those four (file hashes, x509, email,
 * process...) - is counted by kind ("AND", "file:hashes", "MATCHES", ...) and never loaded: a
 * disjunct that cannot be held is dropped (the indicator then matches less than it says, never
 * more), and an AND drops its whole subtree (loading one side would widen the match).
 *
 * Versions: an indicator id is held once. A version whose `modified` is newer than the one held
 * (compared to the microsecond) replaces it (its elements removed, the new ones added); the same or
 * an older `modified` is ignored; `revoked: true` removes every element the indicator contributed,
 * and a revoked indicator stays revoked. `valid_from` / `valid_until` become each element's
 * validity window, so lookups at an event's own time honour them.
 *
 * Cost: a bundle is parsed whole with simdjson (a 100 MB bundle is fine in memory); objects are
 * visited twice (identities first, so created_by_ref resolves whatever the order); each
 * indicator costs one pattern compile (linear in the pattern, capped) and one hash lookup in the
 * catalog, plus, with a store attached, a few prepared-statement steps in one transaction per
 * ingest call.
 *
 * Ownership:
 *   - ch_intel_catalog: made by ch_intel_catalog_new, freed by ch_intel_catalog_free; owns every
 *     ch_intel_indicator in it and their strings. Pointers returned by lookups borrow from it and
 *     stay valid until the catalog is freed or that id is put again (a newer version).
 *   - ch_stix_ctx: made by ch_stix_ctx_new, freed by ch_stix_ctx_free. It BORROWS the registry,
 *     the catalog and the store given to it (all must outlive it) and copies the option strings.
 *   - JSON values passed in borrow from the caller's ch_json_parser; nothing is kept from them.
 *
 * Threads: a ctx, its registry, catalog and store are used by one thread at a time.
 */
#ifndef CH_INTEL_STIX_H
#define CH_INTEL_STIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/diag.h"
#include "core/error.h"
#include "core/json.h"
#include "core/mem.h"
#include "enrich/refset.h"

typedef struct ch_intel_store ch_intel_store; /* intel/intel_store.h */

/* ---- the indicator catalog: id -> what evidence needs to say about it --------------------- */

/* One indicator. Strings are NUL-terminated, "" when absent; lists are joined with ",". */
typedef struct ch_intel_indicator {
    const char *id;             /* "indicator--<uuid>" */
    const char *name;           /* name */
    const char *types;          /* indicator_types ("malicious-activity,..."), "" when none */
    const char *labels;         /* labels */
    const char *created_by_ref; /* "identity--<uuid>" */
    const char *created_by;     /* that identity's name when known, else "" */
    const char *feed;           /* the feed it came from (ch_stix_opts.feed) */
    const char *pattern;        /* the pattern as given */
    int confidence;             /* 0..100; -1 when absent */
    bool revoked;
    int64_t created;      /* ms */
    int64_t modified;     /* ms; versions are ordered by it, then by modified_sub */
    int32_t modified_sub; /* microseconds past modified's millisecond (0..999): versions that
                             differ below the millisecond are still told apart */
    int64_t valid_from;   /* ms; CH_REFSET_ALWAYS when absent */
    int64_t valid_until;  /* ms, exclusive; CH_REFSET_NEVER when absent */
    uint32_t elements;    /* set elements it contributed */
    uint32_t unsupported; /* comparisons or operators of its pattern that were not loaded */
} ch_intel_indicator;

typedef struct ch_intel_catalog ch_intel_catalog;

#define CH_INTEL_CATALOG_MAX (16u << 20) /* indicators; past it puts fail with CH_ELIMIT */

int ch_intel_catalog_new(ch_intel_catalog **out);
void ch_intel_catalog_free(ch_intel_catalog *c);
size_t ch_intel_catalog_count(const ch_intel_catalog *c);
/* Copy ind (and its strings) in, replacing any entry of the same id. */
int ch_intel_catalog_put(ch_intel_catalog *c, const ch_intel_indicator *ind, ch_error *err);
/* The indicator of that id, or NULL. This is how a hit is traced back: a set element's
 * `indicator` field is the STIX id. */
const ch_intel_indicator *ch_intel_indicator_lookup(const ch_intel_catalog *c, const char *id,
                                                    size_t len);
/* Identity names, so that created_by_ref resolves across bundles and TAXII pages. */
int ch_intel_catalog_put_identity(ch_intel_catalog *c, const char *id, const char *name,
                                  ch_error *err);
const char *ch_intel_catalog_identity(const ch_intel_catalog *c, const char *id, size_t len);
/* Iteration: start with *cursor = 0; NULL at the end. */
const ch_intel_indicator *ch_intel_catalog_next(const ch_intel_catalog *c, size_t *cursor);

/* ---- patterns ----------------------------------------------------------------------------- */

typedef enum ch_stix_obs {
    CH_STIX_DOMAIN = 1, /* domain-name:value */
    CH_STIX_IPV4 = 2,   /* ipv4-addr:value, address or CIDR */
    CH_STIX_IPV6 = 3,   /* ipv6-addr:value, address or CIDR */
    CH_STIX_URL = 4,    /* url:value */
} ch_stix_obs;

/* One loadable comparison: the object's value, unescaped. */
typedef struct ch_stix_cmp {
    ch_stix_obs obs;
    const char *value; /* NUL-terminated, from the arena given to the compiler */
    size_t len;
} ch_stix_cmp;

#define CH_STIX_KIND_MAX 48     /* bytes of a kind name, NUL included ("file:hashes") */
#define CH_STIX_PATTERN_KINDS 8 /* distinct unsupported kinds kept per pattern */

typedef struct ch_stix_pattern {
    ch_stix_cmp *cmps; /* the loadable disjuncts, from the arena */
    size_t ncmps;
    uint32_t unsupported; /* comparisons and operators dropped */
    uint32_t nkinds;
    char kinds[CH_STIX_PATTERN_KINDS][CH_STIX_KIND_MAX]; /* distinct kinds, first seen first */
} ch_stix_pattern;

#define CH_STIX_PATTERN_MAX (64u << 10) /* bytes of one pattern */
#define CH_STIX_CMPS_MAX 4096           /* comparisons in one pattern */
#define CH_STIX_DEPTH_MAX 64            /* parenthesis and bracket nesting */

/* Compile a STIX 2.1 pattern. Syntax errors give CH_EPARSE with the byte offset in err;
 * CH_ELIMIT past the caps above. A valid pattern with nothing loadable gives 0 and ncmps 0. */
int ch_stix_pattern_compile(const char *pat, size_t len, ch_arena *a, ch_stix_pattern *out,
                            ch_error *err);

/* ---- ingestion ---------------------------------------------------------------------------- */

#define CH_STIX_DEFAULT_DOMAIN_SET "intel_domains"
#define CH_STIX_DEFAULT_IP_SET "intel_ips"
#define CH_STIX_DEFAULT_URL_SET "intel_urls"
#define CH_STIX_DEFAULT_FEED "stix"

typedef struct ch_stix_opts {
    const char *feed;       /* every element's source; NULL = "stix". A file's base name, or
                               the TAXII collection. */
    const char *domain_set; /* NULL = CH_STIX_DEFAULT_DOMAIN_SET (type domain) */
    const char *ip_set;     /* NULL = CH_STIX_DEFAULT_IP_SET (type ip) */
    const char *url_set;    /* NULL = CH_STIX_DEFAULT_URL_SET (type string) */
    int64_t now_ms;         /* first_seen / last_seen of the elements added */
    bool allow_catch_all;   /* load 0.0.0.0/0 and ::/0 (every address); refused otherwise */
} ch_stix_opts;

#define CH_STIX_STAT_KINDS 32 /* distinct unsupported kinds counted; the rest go to other */

/* Why an indicator, or one value of its pattern, was refused (counted in ch_stix_stats.refused
 * and reported to diag under reason stix_refused). An indicator refused whole loads nothing; a
 * refused value is dropped like an unsupported comparison (the indicator matches less, never
 * more). */
typedef enum ch_stix_refusal {
    CH_STIX_REFUSE_NO_SPEC_VERSION, /* no spec_version: not STIX 2.1 */
    CH_STIX_REFUSE_BAD_ID,          /* id is not indicator--<UUID> */
    CH_STIX_REFUSE_BAD_TIME,        /* created missing, or created/modified/valid_* no timestamp */
    CH_STIX_REFUSE_NO_VALID_FROM,   /* valid_from is required */
    CH_STIX_REFUSE_ADDR_FAMILY,     /* an IPv6 value for ipv4-addr, or the reverse */
    CH_STIX_REFUSE_ADDR_AS_DOMAIN,  /* an address as a domain-name value */
    CH_STIX_REFUSE_WILDCARD,        /* '*' in a domain-name value (it would match the apex) */
    CH_STIX_REFUSE_CATCH_ALL,       /* a /0 network (every address) without allow_catch_all */
    CH_STIX_REFUSE__N
} ch_stix_refusal;

/* "no spec_version", "bad id", ... */
const char *ch_stix_refusal_name(ch_stix_refusal r);

/* Counts, cumulative over a ctx's ingest calls. */
typedef struct ch_stix_stats {
    uint64_t objects;        /* objects seen */
    uint64_t indicators;     /* indicator objects seen */
    uint64_t loaded;         /* indicators now held (new, or newer than the version held) */
    uint64_t replaced;       /* of those, ones that replaced an older version */
    uint64_t ignored_older;  /* versions not newer than the one held */
    uint64_t revoked;        /* revocations applied */
    uint64_t partial;        /* loaded indicators with some comparisons dropped */
    uint64_t unsupported;    /* indicators with nothing loadable (counted by kind below) */
    uint64_t other_patterns; /* pattern_type not "stix" (snort, yara, sigma...) */
    uint64_t bad;            /* malformed objects, patterns and values */
    uint64_t url_only;       /* url:value comparisons held in the url set only (never their
                                host in the domain or ip set) */
    uint64_t identities;
    uint64_t elements_added;
    uint64_t elements_refreshed;
    uint64_t elements_removed;
    uint64_t elements_dropped;           /* refused by a set's cap */
    uint64_t refused[CH_STIX_REFUSE__N]; /* indicators or values refused, by reason */
    struct {
        char kind[CH_STIX_KIND_MAX];
        uint64_t count;
    } kinds[CH_STIX_STAT_KINDS];
    uint32_t nkinds;
    uint64_t kinds_other;
} ch_stix_stats;

typedef struct ch_stix_ctx ch_stix_ctx;

/* sets: the registry the target sets are made in (ch_refsets_ensure; CH_EUSAGE when a set of
 * that name exists with another type). catalog: where indicator metadata goes. store: NULL for
 * memory only; otherwise every change is also written to the store (intel_store.h), one
 * transaction per ingest call unless the caller already opened one with
 * ch_intel_store_begin (then the caller commits: a TAXII page and its added_after together).
 * Versions not in the catalog are looked up in the store, so loading the same feed twice, or an
 * older version after a newer one, changes nothing. */
int ch_stix_ctx_new(ch_stix_ctx **out, ch_refsets *sets, ch_intel_catalog *catalog,
                    ch_intel_store *store, const ch_stix_opts *opts, ch_error *err);
void ch_stix_ctx_free(ch_stix_ctx *ctx);
const ch_stix_stats *ch_stix_ctx_stats(const ch_stix_ctx *ctx);

/* Ingest an array of STIX objects (a bundle's "objects", a TAXII envelope's "objects").
 * Bad objects are counted and reported to diag (may be NULL) under reasons stix_bad_object,
 * stix_bad_pattern, stix_bad_value, and skipped. Returns 0, or CH_EPARSE when objects is not
 * an array, CH_EIO from the store (its transaction is rolled back), CH_ENOMEM. */
int ch_stix_ingest_objects(ch_stix_ctx *ctx, ch_json_val objects, const char *name, ch_diag *diag,
                           ch_error *err);
/* A bundle object ({"type": "bundle", "objects": [...]}), an envelope ({"objects": [...]}) or
 * one STIX object (a "type" and an "id" "<type>--..."). CH_EPARSE when it is none of these. */
int ch_stix_ingest_bundle(ch_stix_ctx *ctx, ch_json_val bundle, const char *name, ch_diag *diag,
                          ch_error *err);
/* A bundle as JSON text (name is what messages call it), or read from a file (gzip allowed,
 * "-" = stdin). CH_EPARSE for text that is not JSON or not a bundle, CH_ELIMIT past max_doc
 * (0 = 1 GiB), CH_EIO when the file cannot be read. */
int ch_stix_ingest_mem(ch_stix_ctx *ctx, const char *data, size_t len, const char *name,
                       ch_diag *diag, ch_error *err);
int ch_stix_ingest_path(ch_stix_ctx *ctx, const char *path, size_t max_doc, ch_diag *diag,
                        ch_error *err);

/* True when the text starts (after whitespace and a BOM) like STIX: a JSON object - a bundle,
 * an envelope or one STIX object (ch_stix_ingest_bundle takes all three). A block list never
 * starts with '{'. Used to tell STIX from block lists by content. */
bool ch_stix_looks_like_bundle(const char *data, size_t len);

/* ---- writing STIX ------------------------------------------------------------------------- */

/* Append one STIX 2.1 indicator object (JSON) for a set element: pattern
 * [domain-name:value = '...'], [ipv4-addr:value = '...'] / ipv6-addr (CIDR kept), or, for
 * string sets, [url:value = '...'] when the value is a URL. The id is a UUIDv5 of set name and
 * value (stable across runs, so TAXII clients see one object per element); created/modified are
 * first_seen/last_seen, valid_from/valid_until the element's window; the element's source and
 * indicator go into external_references (with a description, as STIX requires more than a
 * source_name). Timestamps always carry milliseconds. CH_EUSAGE for an element STIX cannot express
 * (numbers, strings that are not URLs): callers count and skip it. */
int ch_stix_write_element(ch_buf *out, const char *set_name, ch_refset_type type, const char *value,
                          const ch_refset_meta *meta, int64_t now_ms);
/* The same with the indicator's confidence (0..100; -1 = none). */
int ch_stix_write_element_ex(ch_buf *out, const char *set_name, ch_refset_type type,
                             const char *value, const ch_refset_meta *meta, int64_t now_ms,
                             int confidence);

#define CH_STIX_TIME_MAX 32
/* A STIX timestamp to the millisecond, "2024-08-02T08:53:24.000Z" (never without the fraction:
 * created and modified must carry milliseconds). Returns its length. */
size_t ch_stix_format_time(int64_t ms, char out[CH_STIX_TIME_MAX]);

/* "indicator--" + UUIDv5(coinhound namespace, set_name "\n" value): 48 bytes with NUL. */
void ch_stix_element_id(const char *set_name, const char *value, char out[48]);

#endif
