/*
 * taxii_server.c - read-only TAXII 2.1 over libmicrohttpd (see taxii_server.h for the contract).
 *
 * libmicrohttpd runs one internal polling thread; every request is answered from memory in
 * that thread, so there is no locking on the request path beyond taking a reference to the
 * current catalog. A catalog is sealed once before it is served: its objects sorted by
 * (date_added, id) for paging and an index sorted by id for object lookups, O(n log n) once
 * instead of per request. A page is a binary search to the cursor plus the page, with filters
 * (match[...]) scanning only as far as needed to fill the page and tell whether there is more.
 *
 * Responses are built in a capped ch_buf and handed to libmicrohttpd, which frees them.
 */
#include "intel/taxii_server.h"

#include <arpa/inet.h>
#include "server/mhd_lazy.h"
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/buf.h"
#include "core/listen.h"
#include "core/mem.h"
#include "core/timeparse.h"
#include "intel/taxii_client.h"

#define RESP_MAX (256u << 20) /* one response; a page of max_page objects stays far below */
#define COLL_ID_MAX 64
#define AUTH_MAX 1024
#define LIST_MAX 64 /* values in one match[...] */

/* ---- catalog ------------------------------------------------------------------------------ */

typedef struct tobj {
    char *id;
    char *json;
    size_t len;
    int64_t version;
    int64_t added;
    char spec[8]; /* its spec_version ("2.1"); "2.0" when it has none, as TAXII says */
} tobj;

typedef struct tcoll {
    char *id, *title, *desc;
    tobj *o;
    size_t n, cap;
    uint32_t *by_id;   /* indices into o, sorted by id (after sealing) */
    size_t ncollapsed; /* o[0..ncollapsed) sorted by id (ch_taxii_catalog_collapse) */
} tcoll;

struct ch_taxii_catalog {
    tcoll *c;
    size_t n, cap;
    size_t nobjects;
    bool sealed;
    int refs; /* under the server's mutex once published */
};

int ch_taxii_catalog_new(ch_taxii_catalog **out)
{
    *out = ch_calloc(1, sizeof **out);
    return *out ? 0 : CH_ENOMEM;
}

void ch_taxii_catalog_free(ch_taxii_catalog *c)
{
    if (c == NULL)
        return;
    for (size_t i = 0; i < c->n; i++) {
        tcoll *t = &c->c[i];
        for (size_t j = 0; j < t->n; j++) {
            ch_free(t->o[j].id);
            ch_free(t->o[j].json);
        }
        ch_free(t->o);
        ch_free(t->by_id);
        ch_free(t->id);
        ch_free(t->title);
        ch_free(t->desc);
    }
    ch_free(c->c);
    ch_free(c);
}

static bool coll_id_ok(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > COLL_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.'))
            return false;
    }
    return true;
}

int ch_taxii_catalog_add_collection(ch_taxii_catalog *c, const char *id, const char *title,
                                    const char *description, ch_error *err)
{
    if (c->sealed)
        return ch_error_set(err, CH_EUSAGE, "catalog already published");
    if (id == NULL || !coll_id_ok(id))
        return ch_error_set(err, CH_EUSAGE, "bad collection id '%s'", id ? id : "(null)");
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->c[i].id, id) == 0)
            return ch_error_set(err, CH_EUSAGE, "duplicate collection id '%s'", id);
    if (c->n >= CH_TAXII_SRV_MAX_COLLECTIONS)
        return ch_error_set(err, CH_ELIMIT, "more than %d collections",
                            CH_TAXII_SRV_MAX_COLLECTIONS);
    if (c->n == c->cap) {
        tcoll *nc = ch_grow(c->c, &c->cap, 8, sizeof *nc);
        if (nc == NULL)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        c->c = nc;
    }
    tcoll *t = &c->c[c->n];
    memset(t, 0, sizeof *t);
    t->id = ch_strdup(id);
    t->title = ch_strdup(title ? title : id);
    t->desc = ch_strdup(description ? description : "");
    if (t->id == NULL || t->title == NULL || t->desc == NULL) {
        ch_free(t->id);
        ch_free(t->title);
        ch_free(t->desc);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    return (int)c->n++;
}

/* The object's top-level "spec_version" value, found by a scan of its text: objects are JSON
 * objects whose members the publisher wrote, and a nested "spec_version" would be read only if
 * it came first, which a STIX object's own does. */
static void spec_of(const char *json, size_t len, char out[8])
{
    static const char key[] = "\"spec_version\"";
    strcpy(out, "2.0");
    const char *end = json + len;
    const char *p = memmem(json, len, key, sizeof key - 1);
    if (p == NULL)
        return;
    p += sizeof key - 1;
    while (p < end && (*p == ' ' || *p == ':' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    if (p >= end || *p != '"')
        return;
    const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
    if (q != NULL && q - p - 1 > 0 && q - p - 1 < 8) {
        memcpy(out, p + 1, (size_t)(q - p - 1));
        out[q - p - 1] = '\0';
    }
}

int ch_taxii_catalog_add_object(ch_taxii_catalog *c, int coll, const char *stix_id,
                                int64_t version_ms, int64_t date_added_ms, const char *json,
                                size_t len, ch_error *err)
{
    if (c->sealed)
        return ch_error_set(err, CH_EUSAGE, "catalog already published");
    if (coll < 0 || (size_t)coll >= c->n || stix_id == NULL || *stix_id == '\0' || json == NULL ||
        len == 0)
        return ch_error_set(err, CH_EUSAGE, "bad object for the catalog");
    if (c->nobjects >= CH_TAXII_SRV_MAX_OBJECTS)
        return ch_error_set(err, CH_ELIMIT, "more than %u objects to publish",
                            CH_TAXII_SRV_MAX_OBJECTS);
    tcoll *t = &c->c[coll];
    if (t->n == t->cap) {
        tobj *no = ch_grow(t->o, &t->cap, 64, sizeof *no);
        if (no == NULL)
            return ch_error_set(err, CH_ENOMEM, "out of memory");
        t->o = no;
    }
    tobj *o = &t->o[t->n];
    o->id = ch_strdup(stix_id);
    o->json = ch_strndup(json, len);
    if (o->id == NULL || o->json == NULL) {
        ch_free(o->id);
        ch_free(o->json);
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    }
    o->len = len;
    o->version = version_ms;
    o->added = date_added_ms;
    spec_of(json, len, o->spec);
    t->n++;
    c->nobjects++;
    return 0;
}

size_t ch_taxii_catalog_collections(const ch_taxii_catalog *c) { return c->n; }
size_t ch_taxii_catalog_objects(const ch_taxii_catalog *c, int coll)
{
    return coll >= 0 && (size_t)coll < c->n ? c->c[coll].n : 0;
}

static int cmp_id_version(const void *a, const void *b)
{
    const tobj *x = a, *y = b;
    int r = strcmp(x->id, y->id);
    if (r != 0)
        return r;
    return x->version > y->version ? -1 : x->version < y->version; /* newest first */
}

static int cmp_added_id(const void *a, const void *b)
{
    const tobj *x = a, *y = b;
    if (x->added != y->added)
        return x->added < y->added ? -1 : 1;
    return strcmp(x->id, y->id);
}

static const tcoll *sort_coll; /* qsort has no context argument; sealing is single-threaded */
static pthread_mutex_t seal_lock = PTHREAD_MUTEX_INITIALIZER;
static int cmp_by_id(const void *a, const void *b)
{
    return strcmp(sort_coll->o[*(const uint32_t *)a].id, sort_coll->o[*(const uint32_t *)b].id);
}

/* Order a collection by id, keeping the newest version of each. */
static void collapse(ch_taxii_catalog *c, tcoll *t)
{
    if (t->n == 0)
        return;
    qsort(t->o, t->n, sizeof *t->o, cmp_id_version);
    size_t w = 0;
    for (size_t r = 0; r < t->n; r++) {
        if (w > 0 && strcmp(t->o[w - 1].id, t->o[r].id) == 0) {
            ch_free(t->o[r].id);
            ch_free(t->o[r].json);
            c->nobjects--;
            continue;
        }
        t->o[w++] = t->o[r];
    }
    t->n = w;
}

int ch_taxii_catalog_collapse(ch_taxii_catalog *c, int coll)
{
    if (c->sealed || coll < 0 || (size_t)coll >= c->n)
        return CH_EUSAGE;
    collapse(c, &c->c[coll]);
    c->c[coll].ncollapsed = c->c[coll].n;
    return 0;
}

bool ch_taxii_catalog_object(const ch_taxii_catalog *c, int coll, size_t i, ch_taxii_object *out)
{
    if (coll < 0 || (size_t)coll >= c->n || i >= c->c[coll].n)
        return false;
    const tobj *o = &c->c[coll].o[i];
    *out = (ch_taxii_object){o->id, o->version, o->added, o->json, o->len};
    return true;
}

void ch_taxii_catalog_set_added(ch_taxii_catalog *c, int coll, size_t i, int64_t date_added_ms)
{
    if (!c->sealed && coll >= 0 && (size_t)coll < c->n && i < c->c[coll].n)
        c->c[coll].o[i].added = date_added_ms;
}

bool ch_taxii_catalog_has(const ch_taxii_catalog *c, int coll, const char *id)
{
    if (coll < 0 || (size_t)coll >= c->n)
        return false;
    const tcoll *t = &c->c[coll];
    size_t lo = 0, hi = t->ncollapsed;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(t->o[mid].id, id);
        if (r == 0)
            return true;
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return false;
}

/* Sort for paging, keep one version per id, index by id. */
static int catalog_seal(ch_taxii_catalog *c)
{
    if (c->sealed)
        return 0;
    for (size_t i = 0; i < c->n; i++) {
        tcoll *t = &c->c[i];
        if (t->n == 0)
            continue;
        collapse(c, t);
        qsort(t->o, t->n, sizeof *t->o, cmp_added_id);
        t->by_id = ch_malloc(t->n * sizeof *t->by_id);
        if (t->by_id == NULL)
            return CH_ENOMEM;
        for (size_t k = 0; k < t->n; k++)
            t->by_id[k] = (uint32_t)k;
        pthread_mutex_lock(&seal_lock);
        sort_coll = t;
        qsort(t->by_id, t->n, sizeof *t->by_id, cmp_by_id);
        sort_coll = NULL;
        pthread_mutex_unlock(&seal_lock);
    }
    c->sealed = true;
    return 0;
}

/* ---- timestamps --------------------------------------------------------------------------- */

size_t ch_taxii_format_timestamp(int64_t ms, char *buf)
{
    char t[40];
    size_t n = ch_time_format(ms, t); /* "...:SS.mmmZ" or "...:SSZ" */
    const char *dot = strchr(t, '.');
    size_t head = dot ? (size_t)(dot - t) : n - 1;
    const char *frac = dot ? dot + 1 : "";
    size_t fl = dot ? (size_t)(t + n - 1 - (dot + 1)) : 0;
    memcpy(buf, t, head);
    buf[head] = '.';
    size_t k = 0;
    for (; k < 6; k++)
        buf[head + 1 + k] = k < fl ? frac[k] : '0';
    buf[head + 7] = 'Z';
    buf[head + 8] = '\0';
    return head + 8;
}

/* ---- server ------------------------------------------------------------------------------- */

struct ch_taxii_server {
    struct MHD_Daemon *d;
    pthread_mutex_t lock;
    ch_taxii_catalog *cat;
    char *user, *password, *title;
    char *cert, *key;
    bool tls;
    unsigned max_page;
    uint16_t port;
    char listen_host[128];
    _Atomic uint64_t requests;
};

static ch_taxii_catalog *cat_acquire(ch_taxii_server *s)
{
    pthread_mutex_lock(&s->lock);
    ch_taxii_catalog *c = s->cat;
    c->refs++;
    pthread_mutex_unlock(&s->lock);
    return c;
}

static void cat_release(ch_taxii_server *s, ch_taxii_catalog *c)
{
    pthread_mutex_lock(&s->lock);
    bool last = --c->refs == 0;
    pthread_mutex_unlock(&s->lock);
    if (last)
        ch_taxii_catalog_free(c);
}

void ch_taxii_server_publish(ch_taxii_server *s, ch_taxii_catalog *cat)
{
    if (catalog_seal(cat) < 0) {
        ch_taxii_catalog_free(cat); /* out of memory: keep serving the old one */
        return;
    }
    cat->refs = 1;
    pthread_mutex_lock(&s->lock);
    ch_taxii_catalog *old = s->cat;
    s->cat = cat;
    pthread_mutex_unlock(&s->lock);
    if (old != NULL)
        cat_release(s, old);
}

typedef struct reply {
    unsigned status;
    ch_buf body;
    char first[40], last[40]; /* X-TAXII-Date-Added-First/Last, "" when none */
    bool challenge;           /* WWW-Authenticate */
    bool allow;               /* Allow: GET, HEAD */
} reply;

static void set_error(reply *r, unsigned status, const char *title, const char *desc)
{
    ch_buf_clear(&r->body);
    r->status = status;
    r->first[0] = r->last[0] = '\0';
    ch_buf_adds(&r->body, "{\"title\":");
    ch_buf_add_json_str(&r->body, title, strlen(title));
    if (desc != NULL) {
        ch_buf_adds(&r->body, ",\"description\":");
        ch_buf_add_json_str(&r->body, desc, strlen(desc));
    }
    ch_buf_printf(&r->body, ",\"http_status\":\"%u\"}", status);
}

static enum MHD_Result send_reply(struct MHD_Connection *conn, reply *r)
{
    size_t len = r->body.len;
    char *data = r->body.data;
    if (data == NULL) {
        data = ch_strdup("");
        len = 0;
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(len, data, ch_free);
    if (resp == NULL) {
        ch_free(data);
        return MHD_NO;
    }
    r->body.data = NULL; /* the response owns it now */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, CH_TAXII_MEDIA_TYPE);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    if (r->first[0])
        MHD_add_response_header(resp, "X-TAXII-Date-Added-First", r->first);
    if (r->last[0])
        MHD_add_response_header(resp, "X-TAXII-Date-Added-Last", r->last);
    if (r->challenge)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Basic realm=\"coinhound TAXII\", charset=\"UTF-8\"");
    if (r->allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(conn, r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Constant time in the length of the expected text, whatever the given one. */
static bool ct_equal(const char *given, size_t gn, const char *want, size_t wn)
{
    unsigned char d = gn != wn;
    for (size_t i = 0; i < wn; i++)
        d |= (unsigned char)(want[i] ^ (i < gn ? given[i] : 0));
    return d == 0;
}

static int b64val(char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

/* Decode base64 (padding optional); -1 when invalid or too long. */
static long b64_decode(const char *in, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        if (in[i] == '=')
            break;
        int v = b64val(in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return -1;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    return (long)o;
}

static bool authorized(ch_taxii_server *s, struct MHD_Connection *conn)
{
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (h == NULL || strncasecmp(h, "Basic ", 6) != 0)
        return false;
    h += 6;
    while (*h == ' ')
        h++;
    size_t hn = strlen(h);
    while (hn > 0 && h[hn - 1] == ' ')
        hn--;
    char dec[AUTH_MAX] = {0}; /* zeroed only so the analyzer need not prove colon < dn */
    long dn = b64_decode(h, hn, dec, sizeof dec);
    if (dn < 0)
        return false;
    const char *colon = memchr(dec, ':', (size_t)dn);
    if (colon == NULL)
        return false;
    size_t un = (size_t)(colon - dec), pn = (size_t)dn - un - 1;
    bool u = ct_equal(dec, un, s->user, strlen(s->user));
    bool p = ct_equal(colon + 1, pn, s->password, strlen(s->password));
    return u & p;
}

/* Accept must admit application/taxii+json, with no version or version 2.1 (RFC 7231 lists,
 * parameters in any order, case-insensitive names). */
static bool accept_ok(const char *h)
{
    if (h == NULL)
        return false;
    const char *p = h;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        char item[256];
        size_t k = 0;
        for (size_t i = 0; i < n && k + 1 < sizeof item; i++)
            if (p[i] != ' ' && p[i] != '\t')
                item[k++] = p[i];
        item[k] = '\0';
        char *semi = strchr(item, ';');
        size_t tl = semi ? (size_t)(semi - item) : k;
        bool taxii = tl == 22 && strncasecmp(item, "application/taxii+json", 22) == 0;
        /* Wildcards admit our media type too (RFC 7231 5.3.2); q=0 means "not this". */
        bool wild = (tl == 3 && memcmp(item, "*/*", 3) == 0) ||
                    (tl == 13 && strncasecmp(item, "application/*", 13) == 0);
        if (taxii || wild) {
            bool ok = true;
            for (char *q = semi; q != NULL && ok;) {
                char *nx = strchr(q + 1, ';');
                if (nx)
                    *nx = '\0';
                if (taxii && strncasecmp(q + 1, "version=", 8) == 0)
                    ok = strcmp(q + 9, "2.1") == 0;
                else if (q[1] == 'q' && q[2] == '=')
                    ok = strtod(q + 3, NULL) > 0.0;
                q = nx;
            }
            if (ok)
                return true;
        }
        if (end == NULL)
            break;
        p = end + 1;
    }
    return false;
}

static bool host_ok(const char *h)
{
    if (h == NULL || *h == '\0' || strlen(h) > 255)
        return false;
    for (const char *p = h; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '.' || *p == '-' || *p == ':' || *p == '[' || *p == ']'))
            return false;
    return true;
}

static void root_url(ch_taxii_server *s, struct MHD_Connection *conn, ch_buf *b)
{
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
    char hb[300];
    if (!host_ok(host)) {
        snprintf(hb, sizeof hb, "%s:%u", s->listen_host, (unsigned)s->port);
        host = hb;
    }
    char url[400];
    snprintf(url, sizeof url, "%s://%s/" CH_TAXII_SRV_ROOT "/", s->tls ? "https" : "http", host);
    ch_buf_add_json_str(b, url, strlen(url));
}

static void do_discovery(ch_taxii_server *s, struct MHD_Connection *conn, reply *r)
{
    ch_buf *b = &r->body;
    ch_buf_adds(b, "{\"title\":");
    ch_buf_add_json_str(b, s->title, strlen(s->title));
    ch_buf_adds(b, ",\"description\":\"coinhound: observables from offenses and shared reference "
                   "sets, as STIX 2.1 indicators\",\"default\":");
    root_url(s, conn, b);
    ch_buf_adds(b, ",\"api_roots\":[");
    root_url(s, conn, b);
    ch_buf_adds(b, "]}");
    r->status = MHD_HTTP_OK;
}

static void do_api_root(reply *r)
{
    ch_buf_adds(&r->body,
                "{\"title\":\"coinhound\",\"description\":\"Read-only collections of coinhound's "
                "observables\",\"versions\":[\"" CH_TAXII_MEDIA_TYPE "\"],"
                "\"max_content_length\":0}");
    r->status = MHD_HTTP_OK;
}

static void coll_json(ch_buf *b, const tcoll *t)
{
    ch_buf_adds(b, "{\"id\":");
    ch_buf_add_json_str(b, t->id, strlen(t->id));
    ch_buf_adds(b, ",\"title\":");
    ch_buf_add_json_str(b, t->title, strlen(t->title));
    if (t->desc[0]) {
        ch_buf_adds(b, ",\"description\":");
        ch_buf_add_json_str(b, t->desc, strlen(t->desc));
    }
    ch_buf_adds(
        b, ",\"can_read\":true,\"can_write\":false,\"media_types\":[\"" CH_TAXII_STIX_MEDIA_TYPE
           "\"]}");
}

static const tcoll *find_coll(const ch_taxii_catalog *c, const char *id)
{
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->c[i].id, id) == 0)
            return &c->c[i];
    return NULL;
}

/* Parsed filters of an objects/manifest request. */
typedef struct query {
    int64_t added_after; /* INT64_MIN = none */
    size_t limit;
    bool has_next;
    int64_t next_added;
    char next_id[256];
    const char *ids[LIST_MAX];
    size_t ids_len[LIST_MAX];
    size_t nids;
    const char *types[LIST_MAX];
    size_t types_len[LIST_MAX];
    size_t ntypes;
    int64_t versions[LIST_MAX];
    size_t nversions; /* 0 = any (last, first and all all mean the one version held) */
    const char *specs[LIST_MAX];
    size_t specs_len[LIST_MAX];
    size_t nspecs;       /* match[spec_version]; 0 = any (each object is held in one version) */
    const char *only_id; /* objects/{id}/ */
} query;

static bool split_list(const char *v, const char **items, size_t *lens, size_t *n)
{
    *n = 0;
    while (*v) {
        const char *e = strchr(v, ',');
        size_t len = e ? (size_t)(e - v) : strlen(v);
        if (len > 0) {
            if (*n >= LIST_MAX)
                return false;
            items[*n] = v;
            lens[*n] = len;
            (*n)++;
        }
        if (e == NULL)
            break;
        v = e + 1;
    }
    return true;
}

static bool parse_query(ch_taxii_server *s, struct MHD_Connection *conn, query *q, reply *r)
{
    const char *v;
    q->added_after = INT64_MIN;
    q->limit = s->max_page;
    if ((v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "added_after")) != NULL) {
        if (!ch_time_parse_iso8601(v, strlen(v), &q->added_after)) {
            set_error(r, MHD_HTTP_BAD_REQUEST, "bad added_after",
                      "added_after must be a timestamp like 2024-08-02T08:53:24.000000Z");
            return false;
        }
    }
    if ((v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit")) != NULL) {
        char *end;
        unsigned long long l = strtoull(v, &end, 10);
        if (*v < '0' || *v > '9' || *end != '\0' || l == 0) {
            set_error(r, MHD_HTTP_BAD_REQUEST, "bad limit", "limit must be a positive integer");
            return false;
        }
        if (l < q->limit)
            q->limit = (size_t)l;
    }
    if ((v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "next")) != NULL) {
        char *end;
        long long ms = strtoll(v, &end, 10);
        if (end == v || *end != '_' || strlen(end + 1) == 0 ||
            strlen(end + 1) >= sizeof q->next_id) {
            set_error(r, MHD_HTTP_BAD_REQUEST, "bad next", "next is not a cursor of this server");
            return false;
        }
        q->has_next = true;
        q->next_added = ms;
        snprintf(q->next_id, sizeof q->next_id, "%s", end + 1);
    }
    if ((v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "match[id]")) != NULL &&
        !split_list(v, q->ids, q->ids_len, &q->nids))
        goto too_many;
    if ((v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "match[type]")) != NULL &&
        !split_list(v, q->types, q->types_len, &q->ntypes))
        goto too_many;
    if ((v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "match[spec_version]")) !=
            NULL &&
        !split_list(v, q->specs, q->specs_len, &q->nspecs))
        goto too_many;
    if ((v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "match[version]")) != NULL) {
        const char *items[LIST_MAX];
        size_t lens[LIST_MAX], n;
        if (!split_list(v, items, lens, &n))
            goto too_many;
        for (size_t i = 0; i < n; i++) {
            if ((lens[i] == 3 && memcmp(items[i], "all", 3) == 0) ||
                (lens[i] == 4 && memcmp(items[i], "last", 4) == 0) ||
                (lens[i] == 5 && memcmp(items[i], "first", 5) == 0)) {
                q->nversions = 0; /* one version held: any keyword selects it */
                break;
            }
            if (!ch_time_parse_iso8601(items[i], lens[i], &q->versions[q->nversions++])) {
                set_error(r, MHD_HTTP_BAD_REQUEST, "bad match[version]",
                          "match[version] takes last, first, all or timestamps");
                return false;
            }
        }
    }
    return true;
too_many:
    set_error(r, MHD_HTTP_BAD_REQUEST, "too many values",
              "a match[...] parameter takes at most 64 values");
    return false;
}

static bool obj_matches(const tobj *o, const query *q)
{
    if (o->added <= q->added_after)
        return false;
    if (q->only_id != NULL && strcmp(o->id, q->only_id) != 0)
        return false;
    if (q->nids > 0) {
        size_t il = strlen(o->id);
        bool hit = false;
        for (size_t i = 0; i < q->nids && !hit; i++)
            hit = q->ids_len[i] == il && memcmp(q->ids[i], o->id, il) == 0;
        if (!hit)
            return false;
    }
    if (q->ntypes > 0) {
        const char *dd = strstr(o->id, "--");
        size_t tl = dd ? (size_t)(dd - o->id) : strlen(o->id);
        bool hit = false;
        for (size_t i = 0; i < q->ntypes && !hit; i++)
            hit = q->types_len[i] == tl && memcmp(q->types[i], o->id, tl) == 0;
        if (!hit)
            return false;
    }
    if (q->nspecs > 0) {
        size_t sl = strlen(o->spec);
        bool hit = false;
        for (size_t i = 0; i < q->nspecs && !hit; i++)
            hit = q->specs_len[i] == sl && memcmp(q->specs[i], o->spec, sl) == 0;
        if (!hit)
            return false;
    }
    if (q->nversions > 0) {
        bool hit = false;
        for (size_t i = 0; i < q->nversions && !hit; i++)
            hit = q->versions[i] == o->version;
        if (!hit)
            return false;
    }
    return true;
}

/* First index whose (added, id) is after the cursor. */
static size_t lower_bound_after(const tcoll *t, int64_t added, const char *id)
{
    size_t lo = 0, hi = t->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const tobj *o = &t->o[mid];
        bool after = o->added > added || (o->added == added && id != NULL && strcmp(o->id, id) > 0);
        if (after)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

typedef enum page_kind { PAGE_OBJECTS, PAGE_MANIFEST, PAGE_VERSIONS } page_kind;

static void do_page(ch_taxii_server *s, struct MHD_Connection *conn, const tcoll *t, page_kind kind,
                    const char *only_id, reply *r)
{
    bool manifest = kind == PAGE_MANIFEST;
    query q;
    memset(&q, 0, sizeof q);
    if (!parse_query(s, conn, &q, r))
        return;
    q.only_id = only_id;
    size_t start = 0;
    if (q.added_after != INT64_MIN)
        start = lower_bound_after(t, q.added_after, NULL);
    if (q.has_next) {
        size_t c = lower_bound_after(t, q.next_added, q.next_id);
        if (c > start)
            start = c;
    }
    if (only_id != NULL) {
        /* objects/{id}/: one binary search in the id index. */
        size_t lo = 0, hi = t->n;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            int c = strcmp(t->o[t->by_id[mid]].id, only_id);
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == t->n || strcmp(t->o[t->by_id[lo]].id, only_id) != 0) {
            set_error(r, MHD_HTTP_NOT_FOUND, "no such object", NULL);
            return;
        }
        size_t idx = t->by_id[lo];
        start = idx >= start ? idx : t->n;
    }
    ch_buf *b = &r->body;
    ch_buf_adds(b, kind == PAGE_VERSIONS ? "{\"versions\":[" : "{\"objects\":[");
    size_t taken = 0, i = start;
    const tobj *last = NULL;
    for (; i < t->n && taken < q.limit; i++) {
        const tobj *o = &t->o[i];
        if (!obj_matches(o, &q))
            continue;
        if (taken++)
            ch_buf_addc(b, ',');
        if (kind == PAGE_VERSIONS) {
            /* One version per object is held: the list has that one. */
            char ts[40];
            ch_taxii_format_timestamp(o->version, ts);
            ch_buf_printf(b, "\"%s\"", ts);
        } else if (manifest) {
            char ts[40];
            ch_buf_adds(b, "{\"id\":");
            ch_buf_add_json_str(b, o->id, strlen(o->id));
            ch_taxii_format_timestamp(o->added, ts);
            ch_buf_printf(b, ",\"date_added\":\"%s\"", ts);
            ch_taxii_format_timestamp(o->version, ts);
            ch_buf_printf(b, ",\"version\":\"%s\",\"media_type\":\"" CH_TAXII_STIX_MEDIA_TYPE "\"}",
                          ts);
        } else {
            ch_buf_add(b, o->json, o->len);
        }
        if (taken == 1)
            ch_taxii_format_timestamp(o->added, r->first);
        last = o;
        if (only_id != NULL)
            break;
    }
    bool more = false;
    if (only_id == NULL)
        for (; i < t->n && !more; i++)
            more = obj_matches(&t->o[i], &q);
    ch_buf_printf(b, "],\"more\":%s", more ? "true" : "false");
    if (more && last != NULL) {
        char cur[300];
        snprintf(cur, sizeof cur, "%lld_%s", (long long)last->added, last->id);
        ch_buf_adds(b, ",\"next\":");
        ch_buf_add_json_str(b, cur, strlen(cur));
    }
    ch_buf_addc(b, '}');
    if (last != NULL)
        ch_taxii_format_timestamp(last->added, r->last);
    if (only_id != NULL && taken == 0) {
        set_error(r, MHD_HTTP_NOT_FOUND, "no such object",
                  "the object exists but not under these filters");
        return;
    }
    r->status = MHD_HTTP_OK;
}

#define MAX_SEGS 8

static void route(ch_taxii_server *s, struct MHD_Connection *conn, const char *url, reply *r)
{
    char path[2048];
    char *segs[MAX_SEGS];
    size_t n = 0;
    if (strlen(url) >= sizeof path) {
        set_error(r, MHD_HTTP_NOT_FOUND, "not found", NULL);
        return;
    }
    strcpy(path, url);
    for (char *save = NULL, *tok = strtok_r(path, "/", &save); tok != NULL;
         tok = strtok_r(NULL, "/", &save)) {
        if (n == MAX_SEGS) {
            set_error(r, MHD_HTTP_NOT_FOUND, "not found", NULL);
            return;
        }
        segs[n++] = tok;
    }
    if (n == 1 && strcmp(segs[0], "taxii2") == 0) {
        do_discovery(s, conn, r);
        return;
    }
    if (n == 0 || strcmp(segs[0], CH_TAXII_SRV_ROOT) != 0) {
        set_error(r, MHD_HTTP_NOT_FOUND, "unknown API root",
                  "this server has one API root, /" CH_TAXII_SRV_ROOT "/ (discovery: /taxii2/)");
        return;
    }
    if (n == 1) {
        do_api_root(r);
        return;
    }
    if (strcmp(segs[1], "collections") != 0) {
        set_error(r, MHD_HTTP_NOT_FOUND, "not found", "no such endpoint (read-only server)");
        return;
    }
    ch_taxii_catalog *cat = cat_acquire(s);
    if (n == 2) {
        ch_buf_adds(&r->body, "{\"collections\":[");
        for (size_t i = 0; i < cat->n; i++) {
            if (i)
                ch_buf_addc(&r->body, ',');
            coll_json(&r->body, &cat->c[i]);
        }
        ch_buf_adds(&r->body, "]}");
        r->status = MHD_HTTP_OK;
        goto done;
    }
    const tcoll *t = find_coll(cat, segs[2]);
    if (t == NULL) {
        set_error(r, MHD_HTTP_NOT_FOUND, "unknown collection", NULL);
        goto done;
    }
    if (n == 3)
        coll_json(&r->body, t), r->status = MHD_HTTP_OK;
    else if (n == 4 && strcmp(segs[3], "objects") == 0)
        do_page(s, conn, t, PAGE_OBJECTS, NULL, r);
    else if (n == 4 && strcmp(segs[3], "manifest") == 0)
        do_page(s, conn, t, PAGE_MANIFEST, NULL, r);
    else if (n == 5 && strcmp(segs[3], "objects") == 0)
        do_page(s, conn, t, PAGE_OBJECTS, segs[4], r);
    else if (n == 6 && strcmp(segs[3], "objects") == 0 && strcmp(segs[5], "versions") == 0)
        do_page(s, conn, t, PAGE_VERSIONS, segs[4], r);
    else
        set_error(r, MHD_HTTP_NOT_FOUND, "not found", "no such endpoint (read-only server)");
done:
    cat_release(s, cat);
}

/* "/{root}/collections/{id}/objects/": where TAXII adds objects. */
static bool is_objects_url(const char *url)
{
    char path[512];
    if (strlen(url) >= sizeof path)
        return false;
    strcpy(path, url);
    char *segs[5];
    size_t n = 0;
    for (char *save = NULL, *tok = strtok_r(path, "/", &save); tok != NULL;
         tok = strtok_r(NULL, "/", &save)) {
        if (n == 5)
            return false;
        segs[n++] = tok;
    }
    return n == 4 && strcmp(segs[1], "collections") == 0 && strcmp(segs[3], "objects") == 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    (void)upload_data;
    (void)upload_data_size;
    (void)con_cls;
    ch_taxii_server *s = cls;
    atomic_fetch_add(&s->requests, 1);
    reply r = {0};
    ch_buf_init(&r.body, RESP_MAX);
    if (!authorized(s, conn)) {
        set_error(&r, MHD_HTTP_UNAUTHORIZED, "authentication required",
                  "this TAXII server needs HTTP basic authentication");
        r.challenge = true;
    } else if (strcmp(method, "POST") == 0 && is_objects_url(url)) {
        /* TAXII 2.1 Add Objects: a collection the client may not write to answers 403. */
        set_error(&r, MHD_HTTP_FORBIDDEN, "forbidden",
                  "this collection is read-only (can_write is false)");
    } else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        set_error(&r, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed",
                  "this TAXII server is read-only");
        r.allow = true;
    } else if (!accept_ok(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Accept"))) {
        set_error(&r, MHD_HTTP_NOT_ACCEPTABLE, "not acceptable",
                  "send Accept: " CH_TAXII_MEDIA_TYPE);
    } else {
        route(s, conn, url, &r);
    }
    if (r.status == 0 || (r.body.len == 0 && r.status == MHD_HTTP_OK))
        set_error(&r, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error", "response too large");
    enum MHD_Result ret = send_reply(conn, &r);
    ch_buf_free(&r.body);
    return ret;
}

int ch_taxii_server_start(const ch_taxii_server_opts *o, ch_taxii_catalog *cat,
                          ch_taxii_server **out, ch_error *err)
{
    int rc = 0;
    ch_taxii_server *s = NULL;
    *out = NULL;
    if (o->user == NULL || *o->user == '\0' || o->password == NULL || *o->password == '\0') {
        rc = ch_error_set(err, CH_EUSAGE,
                          "the TAXII server needs a user and a password (there are no default "
                          "credentials)");
        goto fail;
    }
    if (strchr(o->user, ':') != NULL) {
        rc = ch_error_set(err, CH_EUSAGE, "a basic-auth user name cannot contain ':'");
        goto fail;
    }
    if ((o->tls_cert_pem == NULL) != (o->tls_key_pem == NULL)) {
        rc = ch_error_set(err, CH_EUSAGE, "TLS needs both a certificate and a key");
        goto fail;
    }
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    bool loopback = false;
    s = ch_calloc(1, sizeof *s);
    if (s == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto fail;
    }
    pthread_mutex_init(&s->lock, NULL);
    rc = ch_listen_resolve(o->listen ? o->listen : "127.0.0.1:9443", false, &ss, &sl, &loopback,
                           s->listen_host, sizeof s->listen_host, err);
    if (rc < 0)
        goto fail;
    s->tls = o->tls_cert_pem != NULL;
    if (!loopback && !s->tls && !o->allow_insecure_remote) {
        rc = ch_error_set(err, CH_EUSAGE,
                          "listen address '%s' is not loopback: serve it with TLS (certificate "
                          "and key), since basic credentials would cross the network in clear",
                          o->listen);
        goto fail;
    }
    s->user = ch_strdup(o->user);
    s->password = ch_strdup(o->password);
    s->title = ch_strdup(o->title ? o->title : "coinhound");
    if (s->tls) {
        s->cert = ch_strdup(o->tls_cert_pem);
        s->key = ch_strdup(o->tls_key_pem);
    }
    if (s->user == NULL || s->password == NULL || s->title == NULL ||
        (s->tls && (s->cert == NULL || s->key == NULL)) || catalog_seal(cat) < 0) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = ch_mhd_load(err)) < 0)
        goto fail;
    s->max_page = o->max_page ? o->max_page : CH_TAXII_SRV_DEFAULT_PAGE;
    cat->refs = 1;
    s->cat = cat;
    cat = NULL;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (s->tls)
        flags |= MHD_USE_TLS;
    unsigned maxc = o->max_connections ? o->max_connections : 64;
    unsigned tmo = o->connection_timeout_s ? o->connection_timeout_s : 30;
    if (s->tls)
        s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
                                (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, maxc,
                                MHD_OPTION_PER_IP_CONNECTION_LIMIT, maxc < 16 ? maxc : 16u,
                                MHD_OPTION_CONNECTION_TIMEOUT, tmo, MHD_OPTION_HTTPS_MEM_KEY,
                                s->key, MHD_OPTION_HTTPS_MEM_CERT, s->cert, MHD_OPTION_END);
    else
        s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
                                (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, maxc,
                                MHD_OPTION_PER_IP_CONNECTION_LIMIT, maxc < 16 ? maxc : 16u,
                                MHD_OPTION_CONNECTION_TIMEOUT, tmo, MHD_OPTION_END);
    if (s->d == NULL) {
        rc = ch_error_set(err, CH_EIO,
                          "cannot serve TAXII on %s (address in use, not local, or bad TLS "
                          "certificate/key)",
                          o->listen ? o->listen : "127.0.0.1:9443");
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : 0;
    *out = s;
    return 0;
fail:
    ch_taxii_catalog_free(cat);
    ch_taxii_server_stop(s);
    return rc;
}

uint16_t ch_taxii_server_port(const ch_taxii_server *s) { return s->port; }

uint64_t ch_taxii_server_requests(const ch_taxii_server *s)
{
    return atomic_load(&((ch_taxii_server *)s)->requests);
}

void ch_taxii_server_stop(ch_taxii_server *s)
{
    if (s == NULL)
        return;
    if (s->d != NULL)
        MHD_stop_daemon(s->d);
    if (s->cat != NULL)
        cat_release(s, s->cat);
    pthread_mutex_destroy(&s->lock);
    ch_free(s->user);
    if (s->password != NULL) {
        volatile char *p = s->password;
        while (*p)
            *p++ = 0;
    }
    ch_free(s->password);
    ch_free(s->title);
    ch_free(s->cert);
    ch_free(s->key);
    ch_free(s);
}
