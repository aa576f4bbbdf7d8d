/*
 * taxii_server.h - a read-only TAXII 2.1 server (libmicrohttpd) behind `coinhound intel serve`,
 * publishing coinhound's own observables so that QRadar, OpenCTI or MISP can subscribe.
 *
 * What it serves is a catalog: collections of STIX objects already written as JSON, each with
 * its id, version (its `modified`) and date_added. The server knows nothing about where they
 * come from (taxii_publish.h builds catalogs from shareable reference sets and offenses), which
 * keeps the protocol testable with any content. A catalog is immutable once published; a newer
 * one replaces it atomically (ch_taxii_server_publish) while requests in flight finish on the
 * old one, which is freed by the last of them (a reference count under a mutex).
 *
 * Endpoints (GET and HEAD only; a POST to .../objects/ is 403, as every collection is
 * read-only, anything else 405): /taxii2/ (discovery), /{root}/ (API root),
 * /{root}/collections/, /{root}/collections/{id}/, .../objects/, .../objects/{object}/,
 * .../objects/{object}/versions/ and .../manifest/, with added_after, limit, next, match[id],
 * match[type], match[spec_version] and match[version] (last/first/all; one version of each
 * object is held, so each names that one). Objects are ordered by (date_added, id); `next` is an
 * opaque cursor naming the last (date_added, id) returned, so paging is stable even while a newer
 * catalog replaces the old one, and every page costs a binary search plus the page itself.
 * X-TAXII-Date-Added-First/Last carry the page's first and last date_added.
 *
 * Security: every request needs basic auth (there are no default credentials: starting without
 * a user and password is refused), compared in constant time; a failure is 401 with a
 * WWW-Authenticate challenge. The Accept header must admit application/taxii+json (version
 * 2.1 or none; the wildcards "any" and "application/any" admit it too; q=0 refuses), else 406.
 * Unknown roots, collections and objects are 404; errors are TAXII error messages. The listen
 * address defaults to loopback; anything else must come with TLS (cert and key) or the caller's
 * explicit allow_insecure_remote. Connections are capped in number, per address and in time;
 * responses are bounded by the page size cap.
 *
 * Ownership: a catalog is made by ch_taxii_catalog_new and filled by the caller; publishing
 * (or starting a server with it) hands it over, and the server frees it. The server is made by
 * ch_taxii_server_start and freed by ch_taxii_server_stop, which waits for its thread.
 */
#ifndef CH_INTEL_TAXII_SERVER_H
#define CH_INTEL_TAXII_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define CH_TAXII_SRV_MAX_COLLECTIONS 4096
#define CH_TAXII_SRV_MAX_OBJECTS (8u << 20) /* per catalog */
#define CH_TAXII_SRV_DEFAULT_PAGE 1000      /* objects per page without `limit`, and its cap */
#define CH_TAXII_SRV_ROOT "coinhound"       /* the one API root: /coinhound/ */

typedef struct ch_taxii_catalog ch_taxii_catalog;

int ch_taxii_catalog_new(ch_taxii_catalog **out);
void ch_taxii_catalog_free(ch_taxii_catalog *c);

/* Add a collection (strings copied). id: what URLs name it by (a UUID, by TAXII's rules; any
 * [A-Za-z0-9._-] text up to 64 bytes is accepted). Returns its index (>= 0), CH_EUSAGE for a bad
 * or duplicate id, CH_ELIMIT past CH_TAXII_SRV_MAX_COLLECTIONS. */
int ch_taxii_catalog_add_collection(ch_taxii_catalog *c, const char *id, const char *title,
                                    const char *description, ch_error *err);
/* Add one object to collection coll: json is its full text (copied; a JSON object), stix_id its
 * "id", version_ms its `modified`, date_added_ms when it entered the collection. An id already
 * in the collection keeps the newest version only (a TAXII collection holds versions, but a
 * reference set has one at a time). CH_ELIMIT past CH_TAXII_SRV_MAX_OBJECTS. */
int ch_taxii_catalog_add_object(ch_taxii_catalog *c, int coll, const char *stix_id,
                                int64_t version_ms, int64_t date_added_ms, const char *json,
                                size_t len, ch_error *err);
/* Before publishing, a publisher may settle each object's date_added from what it served
 * before (taxii_publish.c keeps a ledger): collapse orders collection coll by id with one
 * version per id (the newest), after which objects are read by index, their date_added set,
 * and ids looked up (among the collapsed ones: objects added afterwards are not found).
 * CH_EUSAGE for a bad index or a published catalog. Strings borrow from the catalog. */
typedef struct ch_taxii_object {
    const char *id;
    int64_t version, date_added;
    const char *json;
    size_t len;
} ch_taxii_object;
int ch_taxii_catalog_collapse(ch_taxii_catalog *c, int coll);
bool ch_taxii_catalog_object(const ch_taxii_catalog *c, int coll, size_t i, ch_taxii_object *out);
void ch_taxii_catalog_set_added(ch_taxii_catalog *c, int coll, size_t i, int64_t date_added_ms);
bool ch_taxii_catalog_has(const ch_taxii_catalog *c, int coll, const char *id);
size_t ch_taxii_catalog_collections(const ch_taxii_catalog *c);
size_t ch_taxii_catalog_objects(const ch_taxii_catalog *c, int coll);

typedef struct ch_taxii_server_opts {
    const char *listen;       /* "127.0.0.1:9443", "[::1]:0", "9443"; NULL = "127.0.0.1:9443";
                                 port 0 = an ephemeral port (ch_taxii_server_port says which) */
    const char *user;         /* required */
    const char *password;     /* required, non-empty */
    const char *tls_cert_pem; /* PEM text (not a path); with tls_key_pem, serve HTTPS */
    const char *tls_key_pem;
    bool allow_insecure_remote;    /* plain HTTP on a non-loopback address */
    const char *title;             /* discovery title; NULL = "coinhound" */
    unsigned max_page;             /* objects per page cap; 0 = CH_TAXII_SRV_DEFAULT_PAGE */
    unsigned max_connections;      /* 0 = 64 */
    unsigned connection_timeout_s; /* idle connections are closed after it; 0 = 30 */
} ch_taxii_server_opts;

typedef struct ch_taxii_server ch_taxii_server;

/* Start serving cat (ownership passes to the server, also on failure) on a thread of its own.
 * CH_EUSAGE for missing credentials, a bad listen address, or a non-loopback address without
 * TLS (unless allowed); CH_EIO when the address cannot be bound (err names it). */
int ch_taxii_server_start(const ch_taxii_server_opts *o, ch_taxii_catalog *cat,
                          ch_taxii_server **out, ch_error *err);
/* The port bound (useful with port 0). */
uint16_t ch_taxii_server_port(const ch_taxii_server *s);
/* Replace the catalog; ownership of cat passes to the server. */
void ch_taxii_server_publish(ch_taxii_server *s, ch_taxii_catalog *cat);
/* Requests answered so far (for logs and tests). */
uint64_t ch_taxii_server_requests(const ch_taxii_server *s);
/* Stop listening, wait for the thread, free everything. NULL is fine. */
void ch_taxii_server_stop(ch_taxii_server *s);

/* TAXII timestamp with microseconds, "2024-08-02T08:53:24.123000Z", into buf (>= 32 bytes). */
size_t ch_taxii_format_timestamp(int64_t ms, char *buf);

#endif
