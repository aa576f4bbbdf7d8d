/*
 * taxii_client.h - the TAXII 2.1 client behind `coinhound intel pull`, and the parsers of the
 * TAXII JSON resources (discovery, API root, collections, envelope) that the server's tests and
 * the fuzz target share.
 *
 * A pull walks the protocol as a subscriber must: discovery (or the API root the URL names),
 * the collections of each API root, then the objects of each readable collection, page by page
 * through `next`/`more`, starting after the `added_after` remembered for that collection. Every
 * page goes to a sink callback which ingests the objects and remembers where to resume in one
 * transaction, so a pull that dies half way keeps what it stored and the next pull resumes from
 * there. The resume point is one microsecond before the page's X-TAXII-Date-Added-Last, which
 * makes the stored added_after an inclusive bound: servers give many objects one date_added (a
 * whole load in one millisecond), and an exclusive bound at a page's last date_added skips, for
 * good, the objects of that instant that did not fit in the page. Objects of that instant are
 * fetched again by the next pull and de-duplicated by the sink (same id and version). The client
 * knows nothing of STIX or SQLite: the sink does (src/cli/cmd_intel_taxii.c glues it to stix.h and
 * intel_store.h), which keeps the protocol testable on its own.
 *
 * Transport: libcurl, TLS verification always on (there is no switch to turn it off: a private
 * CA goes in ca_file). Plain http:// is accepted only for loopback hosts, with a warning,
 * because basic credentials and tokens would otherwise cross the network in clear. Redirects are
 * not followed (credentials must not wander to another host); a 3xx is an error naming the new
 * location. Transient failures (5xx, 429, timeouts, refused connections) are retried with
 * exponential backoff, a bounded number of times; 429 and 503 honour Retry-After up to the cap.
 * Every response body is capped (max_response), every loop bounded (max_pages, API roots and
 * collections per response).
 *
 * Ownership: options and sink are borrowed for the duration of the call. Parsed resources borrow
 * from the ch_json_parser that parsed them and live until its next parse.
 */
#ifndef CH_INTEL_TAXII_CLIENT_H
#define CH_INTEL_TAXII_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "core/json.h"

#define CH_TAXII_MEDIA_TYPE "application/taxii+json;version=2.1"
#define CH_TAXII_STIX_MEDIA_TYPE "application/stix+json;version=2.1"
#define CH_TAXII_MAX_ROOTS 64         /* API roots read from one discovery response */
#define CH_TAXII_MAX_COLLECTIONS 1024 /* collections read from one API root */
#define CH_TAXII_TIMESTAMP_MAX 40     /* "2016-11-01T03:04:05.123456Z" and then some */
#define CH_TAXII_NEXT_MAX 1024        /* longest `next` token accepted */

/* ---- resource parsing (pure, no I/O) ----------------------------------------------------- */

/* An envelope (objects endpoint). objects is the array value when has_objects (an empty page
 * may omit the member; a zeroed ch_json_val must never be read). next borrows from the parser;
 * NULL when absent. */
typedef struct ch_taxii_envelope {
    bool more;
    bool has_objects;
    const char *next;
    size_t next_len;
    ch_json_val objects;
    size_t nobjects;
} ch_taxii_envelope;

/* Parse an envelope. CH_EPARSE (reason in err) when it is not JSON, not an object, when "more"
 * is not a boolean, "next" not a string (or longer than CH_TAXII_NEXT_MAX), "objects" not an
 * array or one of its elements not an object with a string "type" and "id". */
int ch_taxii_parse_envelope(ch_json_parser *p, const char *buf, size_t len, ch_taxii_envelope *out,
                            ch_error *err);

/* Discovery: the API roots (borrowed strings), the default one first when it is listed (or
 * when it is the only thing listed). Returns the number of roots (at most
 * CH_TAXII_MAX_ROOTS, beyond are ignored), CH_EPARSE when it is no discovery resource.
 * A resource that is an API root ("versions" member) instead returns 0 and sets *is_api_root. */
typedef struct ch_taxii_str {
    const char *s;
    size_t n;
} ch_taxii_str;

int ch_taxii_parse_discovery(ch_json_parser *p, const char *buf, size_t len, ch_taxii_str *roots,
                             size_t cap, bool *is_api_root, ch_error *err);

/* One collection of a collections resource; strings borrowed. */
typedef struct ch_taxii_collection_info {
    ch_taxii_str id, title;
    bool can_read;
} ch_taxii_collection_info;

/* Collections resource: fills up to cap entries, returns how many (0 for none: an API root may
 * have no collections, and the member may be omitted). CH_EPARSE when malformed. */
int ch_taxii_parse_collections(ch_json_parser *p, const char *buf, size_t len,
                               ch_taxii_collection_info *out, size_t cap, ch_error *err);

/* ---- the pull ---------------------------------------------------------------------------- */

/* What the sink learns about the collection being pulled. Strings are NUL-terminated and live
 * for the duration of the collection's pull. */
typedef struct ch_taxii_collection_ref {
    const char *api_root; /* absolute URL, ending in '/' */
    const char *id;
    const char *title;
} ch_taxii_collection_ref;

typedef struct ch_taxii_sink {
    /* Where to resume: copy the collection's stored added_after (a TAXII timestamp) into buf
     * and return its length, 0 when none (first pull), or a negative code. */
    int (*get_added_after)(void *ud, const ch_taxii_collection_ref *c, char *buf, size_t cap,
                           ch_error *err);
    /* One page: ingest the envelope's objects (an array value, NULL when the page has none)
     * and, in the same transaction, remember date_added_last as the collection's new
     * added_after: one microsecond before the page's X-TAXII-Date-Added-Last (the header as
     * sent when it is no plain timestamp), NULL when the server did not send one. A negative
     * return aborts the pull with that code and err. */
    int (*page)(void *ud, const ch_taxii_collection_ref *c, const ch_json_val *objects,
                size_t nobjects, const char *date_added_last, ch_error *err);
    /* Warnings for the user (plain http, skipped collections, retries); may be NULL. */
    void (*warn)(void *ud, const char *msg);
    void *ud;
} ch_taxii_sink;

typedef struct ch_taxii_client_opts {
    const char *url;        /* server, discovery URL or API root URL (http(s)://...) */
    const char *collection; /* collection id or title; NULL = every readable collection */
    const char *user;       /* basic auth (with password) */
    const char *password;
    const char *token;       /* bearer token; exclusive with user/password */
    const char *ca_file;     /* extra CA bundle (PEM); NULL = the system's */
    long connect_timeout_ms; /* 0 = 10 s */
    long timeout_ms;         /* whole request, 0 = 120 s */
    unsigned max_retries;    /* per request, after the first try; 0 = default 4 ... */
    bool no_retry;           /* ... unless this is set */
    long backoff_ms;         /* first wait, doubled each retry; 0 = 500 ms */
    long backoff_max_ms;     /* cap of one wait (and of Retry-After); 0 = 30 s */
    unsigned page_limit;     /* `limit` sent with each objects request; 0 = server default */
    size_t max_pages;        /* per collection; 0 = 100000 */
    size_t max_response;     /* bytes of one response body; 0 = 64 MiB */
} ch_taxii_client_opts;

typedef struct ch_taxii_pull_stats {
    size_t api_roots;   /* API roots visited */
    size_t collections; /* collections pulled */
    size_t pages;       /* object pages received */
    size_t objects;     /* objects handed to the sink */
    size_t requests;    /* HTTP requests made, retries included */
    size_t retries;
    long last_status; /* HTTP status of the last response (0 when none) */
} ch_taxii_pull_stats;

/* Run one pull. Returns 0 when every selected collection was pulled to its end. Errors name the
 * URL and the reason: CH_EUSAGE for bad options (no URL, plain http to a non-loopback host,
 * both token and user), CH_ENOTFOUND when the named collection is on no API root, CH_EIO for
 * transport failures and HTTP errors (401, 403, 404, 406 each with its own explanation; last_status
 * says which), CH_EPARSE for malformed resources, or whatever the sink returned. Pages accepted
 * before a failure stay accepted. stats may be NULL. */
int ch_taxii_pull(const ch_taxii_client_opts *o, const ch_taxii_sink *sink,
                  ch_taxii_pull_stats *stats, ch_error *err);

/* True when url (http or https) names a loopback host: localhost, 127.0.0.0/8, ::1. */
bool ch_taxii_url_is_loopback(const char *url);

#endif
