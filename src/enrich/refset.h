/*
 * refset.h - reference sets: named, typed, in-memory sets of indicators that rules test with
 * `in $name` and that threat intelligence fills (block lists, STIX indicators, rule responses).
 *
 * Four types:
 *   ip      single addresses and CIDRs, IPv4 and IPv6 in one set. A lookup returns the longest
 *           prefix that holds the address and is valid at the event's time. IPv4 and IPv6 live
 *           in separate tables, so an IPv4 CIDR never meets an IPv6 address and ::/0 never
 *           meets an IPv4 address (ch_ip stores IPv4 as ::ffff:a.b.c.d; IPv6 text written in
 *           that mapped form with a prefix of 96 or more is read as the IPv4 network it is).
 *   domain  suffix match on label boundaries: `supportxmr.com` is hit by `a.pool.supportxmr.com`
 *           and by itself, never by `notsupportxmr.com`. Entries are lower-cased, one trailing
 *           dot is dropped, and a leading "*." or "." means the same as the bare domain. The most
 *           specific listed suffix that is valid wins. CH_REFSET_EXACT turns suffix matching off.
 *   string  exact bytes; CH_REFSET_NOCASE folds ASCII case on both sides.
 *   number  int64 (ports, account ids).
 *
 * Every element carries where it came from (source: feed name; indicator: the feed's id for it,
 * both interned per set) and its time: first_seen, last_seen, and a validity window
 * [valid_from, expiry) in ms since the epoch. Lookups take the event's own time and only return
 * elements valid at that time, so replaying last year's logs gives last year's verdicts.
 * One key may hold several elements (one per source and indicator): the same key added again by
 * the same source and indicator refreshes that element (seen times widen, the validity window is
 * replaced by the newer one); another source or indicator adds a second element for the key.
 *
 * Speed: no allocation per lookup, and the work does not grow with the set; a big set is slower
 * than a small one only because it does not fit in the cache. Keys live in open-addressing hash
 * tables of 8-byte slots (a 32-bit hash tag and an element index; the home slot is the tag's top
 * bits, so growing and deleting never rehash a key). A domain query hashes each label-boundary
 * suffix once, right to left, and probes only the suffix lengths (label counts) present in the
 * set: usually 2 to 4 probes. IP sets keep one table per prefix length and a map from each
 * address bucket to the lengths present there, probed longest first: at most 33 (IPv4) or 129
 * (IPv6) probes, in practice one to three. Big tables answer most absent keys from a Bloom filter
 * an eighth of their size, IPv4 tags are exact, and a key whose single element is valid always
 * is answered from its slot (IPv4) or its slot and inline key (domains). Batched lookups
 * (ch_refset_contains_*_batch) overlap the cache misses of many queries. One core, 1M elements,
 * CPU time on a shared 2-core VM (bench/refset_bench.c, docs/BENCHMARKS.md): domains 11-12 M
 * lookups/s batched with half the queries hitting and 16 M/s with 1% hitting; one by one 5-6 M/s
 * and 11-13 M/s (a hit one by one waits for two dependent DRAM reads, its slot then its element:
 * batch where throughput matters); block-list CIDRs 13-15 M/s one by one, 16-17 M/s batched with
 * 60% hitting.
 * A prepared domain query (ch_refset_dq) can be probed against many sets without rehashing.
 *
 * Memory: an element is 80 bytes (128 in domain and string sets, whose keys up to 47 bytes are
 * stored inline; longer keys take one more allocation), plus 8 to 16 bytes of table slots and 1
 * to 2 of filter. Measured: ~151 bytes per domain and ~107 per CIDR in a 1M set (huge pages can
 * add resident slack). ch_refset_memory reports the total.
 *
 * Ownership: ch_refset_new allocates a set, ch_refset_free releases it with every element and
 * string in it. A ch_refsets registry owns the sets put into it. Element pointers returned by
 * lookups and iteration are borrowed: they stay valid until that element is removed or expired
 * or the set is freed (elements never move when the set grows), and their strings likewise.
 *
 * Threads: lookups only read; any number of threads may look up a set that nobody modifies.
 * Modifying a set while another thread looks it up needs outside locking, or (better, as for
 * compiled rules) build a new set and swap the pointer.
 */
#ifndef CH_ENRICH_REFSET_H
#define CH_ENRICH_REFSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/diag.h"
#include "core/error.h"
#include "core/ip.h"

typedef enum ch_refset_type {
    CH_REFSET_IP = 1,
    CH_REFSET_DOMAIN = 2,
    CH_REFSET_STRING = 3,
    CH_REFSET_NUMBER = 4,
} ch_refset_type;

/* "ip", "domain", "string", "number". */
const char *ch_refset_type_name(ch_refset_type t);
/* Also accepts "cidr" and "address" for ip, "str" for string, "num" and "port" for number.
 * CH_EPARSE when the name means nothing. */
int ch_refset_type_from_name(const char *s, size_t n, ch_refset_type *out);

#define CH_REFSET_ALWAYS INT64_MIN /* valid_from: no lower bound */
#define CH_REFSET_NEVER INT64_MAX  /* expiry: never expires */

#define CH_REFSET_NAME_MAX 128           /* set names: [A-Za-z0-9_.:-]{1,128} */
#define CH_REFSET_DOMAIN_MAX 253         /* longest domain entry, without a trailing dot */
#define CH_REFSET_STRING_MAX 4096        /* hard ceiling for max_entry_len */
#define CH_REFSET_DEFAULT_MAX_ENTRY 1024 /* string entries, unless opts say otherwise */
#define CH_REFSET_DEFAULT_MAX_ELEMS (16u << 20)
#define CH_REFSET_HARD_MAX_ELEMS (1u << 30)

enum {
    CH_REFSET_NOCASE = 1u << 0, /* string sets: ASCII case-insensitive */
    CH_REFSET_EXACT = 1u << 1,  /* domain sets: whole names only, no suffix matching */
};

typedef struct ch_refset_opts {
    uint32_t flags;       /* CH_REFSET_NOCASE, CH_REFSET_EXACT */
    size_t max_elems;     /* 0 = CH_REFSET_DEFAULT_MAX_ELEMS; past it adds fail and are counted */
    size_t max_entry_len; /* string sets: 0 = CH_REFSET_DEFAULT_MAX_ENTRY, at most
                             CH_REFSET_STRING_MAX; domains are always capped at 253 */
} ch_refset_opts;

/* Where an element came from and when it holds. Strings are copied (interned) by the set.
 * The fields are literal: zero expiry means "expired at the epoch", so start from
 * ch_refset_meta_make or CH_REFSET_META_INIT. */
typedef struct ch_refset_meta {
    const char *source;    /* feed name; NULL = "" */
    const char *indicator; /* the feed's id for this indicator (STIX id, ...); NULL = "" */
    int64_t first_seen;    /* ms; for a new element (a refresh keeps the earliest) */
    int64_t last_seen;     /* ms; a refresh keeps the latest */
    int64_t valid_from;    /* ms, inclusive; CH_REFSET_ALWAYS = no lower bound */
    int64_t expiry;        /* ms, exclusive; CH_REFSET_NEVER = never */
} ch_refset_meta;

#define CH_REFSET_META_INIT                                                                        \
    {                                                                                              \
        NULL, NULL, 0, 0, CH_REFSET_ALWAYS, CH_REFSET_NEVER                                        \
    }

/* Metadata seen now, valid always and forever. */
static inline ch_refset_meta ch_refset_meta_make(const char *source, int64_t now_ms)
{
    ch_refset_meta m = {source, NULL, now_ms, now_ms, CH_REFSET_ALWAYS, CH_REFSET_NEVER};
    return m;
}

/* One element. Read-only for callers; fields starting with '_' are the set's own. */
typedef struct ch_refset_elem {
    int64_t valid_from;
    int64_t expiry;
    int64_t first_seen;
    int64_t last_seen;
    const char *source;    /* interned, NUL-terminated, "" when none */
    const char *indicator; /* interned, NUL-terminated, "" when none */
    union {
        const char *str; /* domain (lower-cased) and string sets: NUL-terminated, len bytes */
        uint8_t ip[16];  /* ip sets: the network address, IPv4 as ::ffff:a.b.c.d, host bits 0 */
        int64_t num;     /* number sets */
    } key;
    uint32_t len;   /* domain/string: key bytes; ip: prefix length in the family's own bits */
    uint8_t family; /* ip sets: 4 or 6 */
    uint8_t _flags;
    uint16_t _labels; /* domain sets: label count of the key */
    uint32_t _next;   /* next element of the same key (index + 1), or of the free list */
    uint32_t _pad;
} ch_refset_elem;

typedef struct ch_refset ch_refset;

/* Create an empty set. name is copied; CH_EUSAGE for a bad name, type or flag combination. */
int ch_refset_new(ch_refset **out, const char *name, ch_refset_type type,
                  const ch_refset_opts *opts, ch_error *err);
void ch_refset_free(ch_refset *s);

const char *ch_refset_name(const ch_refset *s);
ch_refset_type ch_refset_type_of(const ch_refset *s);
uint32_t ch_refset_flags(const ch_refset *s);
size_t ch_refset_count(const ch_refset *s);     /* live elements */
size_t ch_refset_keys(const ch_refset *s);      /* distinct keys */
uint64_t ch_refset_dropped(const ch_refset *s); /* adds refused by the max_elems cap */
size_t ch_refset_memory(const ch_refset *s);    /* heap bytes held by the set */

/* Add one entry written as text and parsed by the set's type: an address or CIDR for ip sets
 * ("10.0.0.0/8", "2001:db8::/32", host bits are masked off), a domain, a string, a decimal
 * integer. meta NULL = no source, seen at 0, valid always. Returns 1 when a new element was
 * made, 0 when an element of the same key, source and indicator was refreshed; CH_EPARSE (with
 * the reason in err) for text that is not an entry of this type; CH_ELIMIT past max_elems or
 * max_entry_len (counted in ch_refset_dropped when it is the element cap); CH_EUSAGE for an
 * empty validity window (valid_from >= expiry); CH_ENOMEM. */
int ch_refset_add(ch_refset *s, const char *text, size_t len, const ch_refset_meta *meta,
                  ch_error *err);
/* Typed adds, same returns. prefix is in the family's own bits (0..32 or 0..128). */
int ch_refset_add_ip(ch_refset *s, const ch_ip *net, unsigned prefix, const ch_refset_meta *meta,
                     ch_error *err);
int ch_refset_add_num(ch_refset *s, int64_t v, const ch_refset_meta *meta, ch_error *err);

/* Remove the elements of one key (text parsed as for ch_refset_add) that came from source and
 * indicator (NULL = any). Returns how many were removed (> 0), CH_ENOTFOUND when none,
 * CH_EPARSE for bad text. */
int ch_refset_remove(ch_refset *s, const char *text, size_t len, const char *source,
                     const char *indicator, ch_error *err);
/* Remove one element found by a lookup or by iteration; e is invalid afterwards. */
void ch_refset_remove_elem(ch_refset *s, const ch_refset_elem *e);
/* Drop every element whose expiry <= now_ms; returns how many. A scan of the set, but free when
 * nothing can have expired yet (the set tracks a lower bound of its expiries). Lookups already
 * ignore expired elements at the event's time: this only gives the memory back. */
size_t ch_refset_expire(ch_refset *s, int64_t now_ms);

/* Lookups at event time at_ms. True on a hit, with *hit (if hit is not NULL) the matching
 * element; false on a miss or a set of another type. */
bool ch_refset_contains_ip(const ch_refset *s, const ch_ip *ip, int64_t at_ms,
                           const ch_refset_elem **hit);
bool ch_refset_contains_domain(const ch_refset *s, const char *name, size_t len, int64_t at_ms,
                               const ch_refset_elem **hit);
bool ch_refset_contains_str(const ch_refset *s, const char *str, size_t len, int64_t at_ms,
                            const ch_refset_elem **hit);
bool ch_refset_contains_num(const ch_refset *s, int64_t v, int64_t at_ms,
                            const ch_refset_elem **hit);
/* A value as text, parsed by the set's type (an address for ip sets, a domain, a string, an
 * integer); text that cannot be a value of the type is a miss. */
bool ch_refset_contains(const ch_refset *s, const char *text, size_t len, int64_t at_ms,
                        const ch_refset_elem **hit);

/* A domain query prepared once and probed against any number of domain sets: lower-cased,
 * trailing dot dropped, split into labels, every label-boundary suffix hashed. Names longer than
 * 253 bytes keep their rightmost labels that fit (no entry can be longer). */
#define CH_REFSET_DQ_MAX_LABELS 128
typedef struct ch_refset_dq {
    uint32_t nlabels;
    uint32_t len;
    uint8_t start[CH_REFSET_DQ_MAX_LABELS]; /* start[k]: where the suffix of k + 1 labels starts */
    char name[CH_REFSET_DOMAIN_MAX + 51];   /* lower-cased, zero-padded for 48 bytes */
    uint64_t hash[CH_REFSET_DQ_MAX_LABELS]; /* hash[k]: that suffix's hash */
} ch_refset_dq;

void ch_refset_dq_prepare(ch_refset_dq *q, const char *name, size_t len);
bool ch_refset_contains_dq(const ch_refset *s, const ch_refset_dq *q, int64_t at_ms,
                           const ch_refset_elem **hit);

/* Batched lookups: n queries, each at its own event time, answered together. Every query's
 * table slots are prefetched before any is read, then every candidate element before any is
 * compared (domains also prefetch their Bloom filter words first), so the cache misses of a
 * batch overlap instead of queueing one after another: on sets far larger than the cache (a
 * million entries) this is about twice the throughput of lookups one by one when half the
 * queries hit (bench/refset_bench.c). hits[i] gets the element or NULL; returns the number of
 * hits. Answers are exactly those of the single lookups. */
size_t ch_refset_contains_ip_batch(const ch_refset *s, const ch_ip *ips, const int64_t *at_ms,
                                   size_t n, const ch_refset_elem **hits);
size_t ch_refset_contains_dq_batch(const ch_refset *s, const ch_refset_dq *const *qs,
                                   const int64_t *at_ms, size_t n, const ch_refset_elem **hits);

/* Iteration for export: start with *cursor = 0; returns the next live element or NULL at the
 * end. Removing the element just returned (and only it) is allowed during iteration. */
const ch_refset_elem *ch_refset_next(const ch_refset *s, size_t *cursor);
/* The element as entry text ("10.0.0.0/8", "1.2.3.4", "supportxmr.com", "3333"), NUL-terminated
 * and truncated to cap; returns the untruncated length. */
size_t ch_refset_elem_text(const ch_refset *s, const ch_refset_elem *e, char *buf, size_t cap);

/* ---- block lists ------------------------------------------------------------------------- */

/* Plain lists, one entry a line: '#' and '!' comment lines and "[Adblock Plus 2.0]" headers,
 * inline " # comments", hosts-file lines ("0.0.0.0 a.example b.example", localhost and friends
 * skipped), Adblock "||domain^" rules with any "$options", addresses and CIDRs. Adblock rules
 * narrower than a whole domain (paths, wildcards, exceptions, cosmetic filters) cannot be held
 * exactly by a set and are counted as unsupported_entry rather than widened into a domain.
 * After an "[Adblock ...]" header a plain line is a URL substring rule (Adblock Plus syntax),
 * also unsupported; without the header a plain host line is a host (as uBlock reads it). Lines that
 * are no entry at all are counted as bad_entry, with their line number, and skipped; lines over
 * max_line as line_too_long. For string sets a line is the entry (only comment and blank lines are
 * skipped); for number sets one integer a line. */
typedef struct ch_refset_load_opts {
    ch_refset_meta meta; /* applied to every entry (source names the feed) */
    ch_refset *ip_set;   /* optional: addresses and CIDRs found in a domain list go here;
                            without it they are counted as wrong_type */
    size_t max_line;     /* 0 = 4096 */
} ch_refset_load_opts;

typedef struct ch_refset_load_stats {
    uint64_t lines;       /* lines read */
    uint64_t added;       /* new elements (in either set) */
    uint64_t refreshed;   /* entries already present from the same source */
    uint64_t skipped;     /* blank, comment and header lines; localhost names of hosts files */
    uint64_t bad;         /* bad_entry and line_too_long */
    uint64_t unsupported; /* unsupported_entry */
    uint64_t wrong_type;  /* entries of another type than the set, with nowhere to go */
    uint64_t dropped;     /* refused by a set's max_elems */
} ch_refset_load_stats;

typedef struct ch_input ch_input;

/* Load the lines of an open input (see ingest/input.h; gzip is read transparently). Bad lines
 * go to diag (dataset CH_DS_UNKNOWN, file = the input's name) and stats; diag and stats may be
 * NULL. Returns 0, or CH_EIO/CH_EPARSE/CH_ENOMEM when reading itself failed (what was read
 * before stays loaded). */
int ch_refset_load_list(ch_refset *s, ch_input *in, const ch_refset_load_opts *o, ch_diag *diag,
                        ch_refset_load_stats *stats, ch_error *err);
/* Same, opening path ("-" = stdin). */
int ch_refset_load_path(ch_refset *s, const char *path, const ch_refset_load_opts *o, ch_diag *diag,
                        ch_refset_load_stats *stats, ch_error *err);
/* Same, over bytes in memory; name is what messages call them. */
int ch_refset_load_mem(ch_refset *s, const char *data, size_t len, const char *name,
                       const ch_refset_load_opts *o, ch_diag *diag, ch_refset_load_stats *stats,
                       ch_error *err);

/* ---- registry: name -> set, for the `$name` resolver of the expression compiler ---------- */

typedef struct ch_refsets ch_refsets;

#define CH_REFSETS_MAX 4096

int ch_refsets_new(ch_refsets **out);
void ch_refsets_free(ch_refsets *r); /* frees every set it holds */
/* Take ownership of set; CH_EUSAGE when a set of that name is already there, CH_ELIMIT past
 * CH_REFSETS_MAX (set stays the caller's on failure). */
int ch_refsets_put(ch_refsets *r, ch_refset *set, ch_error *err);
/* The set of that name, made if absent; CH_EUSAGE if it exists with another type. */
int ch_refsets_ensure(ch_refsets *r, const char *name, ch_refset_type type,
                      const ch_refset_opts *opts, ch_refset **out, ch_error *err);
ch_refset *ch_refsets_get(const ch_refsets *r, const char *name, size_t len);
/* Remove a set from the registry without freeing it (NULL when absent); the caller owns it. */
ch_refset *ch_refsets_take(ch_refsets *r, const char *name, size_t len);
size_t ch_refsets_count(const ch_refsets *r);
ch_refset *ch_refsets_at(const ch_refsets *r, size_t i); /* in the order put */

#endif
