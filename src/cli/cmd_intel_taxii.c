/*
 * cmd_intel_taxii.c - `coinhound intel pull` (TAXII 2.1 client) and `coinhound intel serve`
 * (TAXII 2.1 server): the glue between the protocol (intel/taxii_client.h, taxii_server.h), STIX
 * ingestion (intel/stix.h) and the database (intel/intel_store.h, offense/store.h).
 *
 * pull: every page is one transaction holding the page's indicators and the collection's new
 * added_after, so an interrupted pull keeps what it stored and the next one resumes after it.
 * One STIX context per collection, so that the collection's title is the feed evidence names.
 *
 * serve: the catalog is built from the database at start and rebuilt every --refresh seconds
 * (a full read of the shareable sets and the offenses: cheap next to a subscriber's polling
 * interval, and it never holds the database open between rebuilds). Passwords are never taken
 * on the command line of serve (they would show in ps): --password-file or the environment.
 */
#include "cli/cmd_intel_taxii.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"
#include "store/retro.h"
#include "cli/cmd_intel.h"
#include "cli/cmd_refset.h"
#include "core/buf.h"
#include "core/diag.h"
#include "core/mem.h"
#include "intel/intel_store.h"
#include "intel/stix.h"
#include "intel/taxii_client.h"
#include "intel/taxii_publish.h"
#include "intel/taxii_server.h"
#include "offense/store.h"

#define SECRET_MAX 4096

/* Read a secret (password, token) from a file: the first line, without its newline. */
static int read_secret(const char *path, char *out, size_t cap, ch_error *err)
{
    /* Empty until read, so no path leaves the caller's buffer unset. */
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return ch_error_set(err, CH_EIO, "%s: %s", path, strerror(errno));
    if (fgets(out, (int)cap, f) == NULL) {
        fclose(f);
        return ch_error_set(err, CH_EIO, "%s: empty", path);
    }
    fclose(f);
    out[strcspn(out, "\r\n")] = '\0';
    if (out[0] == '\0')
        return ch_error_set(err, CH_EIO, "%s: empty first line", path);
    return 0;
}

static int exit_for(int rc) { return rc == CH_EUSAGE ? CH_EXIT_USAGE : CH_EXIT_FAIL; }

/* ---- pull --------------------------------------------------------------------------------- */

static void pull_usage(FILE *f)
{
    fprintf(
        f,
        "usage: coinhound intel pull --url URL [--collection ID|TITLE]\n"
        "                            [--user U (--password P | --password-file F) | --token T]\n"
        "                            [--db FILE] [--ca-file PEM] [--limit N] [--retries N]\n"
        "                            [--connect-timeout SEC] [--timeout SEC] [--feed NAME]\n"
        "                            [--domain-set N] [--ip-set N] [--url-set N]\n\n"
        "Polls TAXII 2.1 collections (every readable one, or the one named) into the\n"
        "database: URL is the server (discovery at /taxii2/), a discovery URL or an API root.\n"
        "Each collection resumes after the added_after stored by the previous pull; each page\n"
        "is committed with its added_after, so an interrupted pull keeps what it stored.\n"
        "TLS is always verified (--ca-file adds a CA); http:// only to loopback, with a\n"
        "warning. Credentials may also come from COINHOUND_TAXII_USER,\n"
        "COINHOUND_TAXII_PASSWORD and COINHOUND_TAXII_TOKEN. Indicators go to intel_domains,\n"
        "intel_ips and intel_urls unless --domain-set/--ip-set/--url-set say otherwise; the\n"
        "feed is the collection's title unless --feed. Default database %s/%s.\n"
        "Exit status: 0 pulled, 1 the server or the database failed, 2 usage.\n",
        ch_data_dir(), CH_STORE_DEFAULT_NAME);
}

typedef struct pull_ctx {
    const ch_intel_pull_summary *out; /* its say, when set, takes the pull's lines */
    ch_intel_store *store;
    ch_refsets *sets;
    ch_intel_catalog *catalog;
    ch_stix_ctx *stix;
    char stix_coll[512]; /* api_root + collection of the current stix ctx */
    const char *feed, *dset, *iset, *uset;
    ch_diag diag;
    ch_stix_stats total;
    size_t pages;
} pull_ctx;

static void add_stats(ch_stix_stats *t, const ch_stix_stats *s)
{
    t->objects += s->objects;
    t->indicators += s->indicators;
    t->loaded += s->loaded;
    t->replaced += s->replaced;
    t->revoked += s->revoked;
    t->ignored_older += s->ignored_older;
    t->unsupported += s->unsupported;
    t->other_patterns += s->other_patterns;
    t->bad += s->bad;
    t->url_only += s->url_only;
    for (int r = 0; r < CH_STIX_REFUSE__N; r++)
        t->refused[r] += s->refused[r];
    t->elements_added += s->elements_added;
    t->elements_removed += s->elements_removed;
}

static void close_stix(pull_ctx *p)
{
    if (p->stix == NULL)
        return;
    add_stats(&p->total, ch_stix_ctx_stats(p->stix));
    ch_stix_ctx_free(p->stix);
    p->stix = NULL;
    p->stix_coll[0] = '\0';
}

static int pull_get(void *ud, const ch_taxii_collection_ref *c, char *buf, size_t cap,
                    ch_error *err)
{
    pull_ctx *p = ud;
    int rc = ch_intel_store_taxii_get(p->store, c->api_root, c->id, buf, cap, err);
    if (rc == CH_ENOTFOUND)
        return 0;
    return rc < 0 ? rc : (int)strlen(buf);
}

static int pull_page(void *ud, const ch_taxii_collection_ref *c, const ch_json_val *objects,
                     size_t nobjects, const char *dal, ch_error *err)
{
    pull_ctx *p = ud;
    char key[512];
    snprintf(key, sizeof key, "%s\n%s", c->api_root, c->id);
    if (p->stix == NULL || strcmp(key, p->stix_coll) != 0) {
        close_stix(p);
        ch_stix_opts so = {p->feed ? p->feed : (c->title[0] ? c->title : c->id),
                           p->dset,
                           p->iset,
                           p->uset,
                           ch_cli_now_ms(),
                           false};
        int rc = ch_stix_ctx_new(&p->stix, p->sets, p->catalog, p->store, &so, err);
        if (rc < 0)
            return rc;
        snprintf(p->stix_coll, sizeof p->stix_coll, "%s", key);
    }
    int rc = ch_intel_store_begin(p->store, err);
    if (rc < 0)
        return rc;
    if (objects != NULL && nobjects > 0 &&
        (rc = ch_stix_ingest_objects(p->stix, *objects, c->title[0] ? c->title : c->id, &p->diag,
                                     err)) < 0)
        goto fail;
    if (dal != NULL && (rc = ch_intel_store_taxii_set(p->store, c->api_root, c->id, dal, err)) < 0)
        goto fail;
    if ((rc = ch_intel_store_commit(p->store, err)) < 0)
        goto fail;
    p->pages++;
    return 0;
fail:
    ch_intel_store_rollback(p->store);
    return rc;
}

/* One line of the pull's output: to the caller's say, else info to stdout and the rest to
 * stderr as the command always printed them. */
static void say(const ch_intel_pull_summary *out, const char *level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void say(const ch_intel_pull_summary *out, const char *level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (out != NULL && out->say != NULL)
        out->say(out->say_ud, level, msg);
    else if (strcmp(level, "info") == 0)
        printf("%s\n", msg);
    else
        fprintf(stderr, "coinhound intel pull: %s%s\n",
                strcmp(level, "warn") == 0 ? "warning: " : "", msg);
}

static void pull_warn(void *ud, const char *msg)
{
    const pull_ctx *p = ud;
    say(p->out, "warn", "%s", msg);
}

static bool parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*s < '0' || *s > '9' || *end != '\0' || errno != 0 || v > max)
        return false;
    *out = v;
    return true;
}

int ch_cmd_intel_pull(int argc, char **argv) { return ch_cmd_intel_pull_ex(argc, argv, NULL); }

int ch_cmd_intel_pull_ex(int argc, char **argv, ch_intel_pull_summary *out)
{
    static const struct option lo[] = {
        {"url", required_argument, NULL, 'u'},
        {"collection", required_argument, NULL, 'c'},
        {"user", required_argument, NULL, 'U'},
        {"password", required_argument, NULL, 'P'},
        {"password-file", required_argument, NULL, 'F'},
        {"token", required_argument, NULL, 'T'},
        {"db", required_argument, NULL, 'd'},
        {"ca-file", required_argument, NULL, 'A'},
        {"limit", required_argument, NULL, 'l'},
        {"retries", required_argument, NULL, 'r'},
        {"connect-timeout", required_argument, NULL, 'C'},
        {"timeout", required_argument, NULL, 't'},
        {"feed", required_argument, NULL, 'f'},
        {"domain-set", required_argument, NULL, 'D'},
        {"ip-set", required_argument, NULL, 'I'},
        {"url-set", required_argument, NULL, 'L'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    ch_taxii_client_opts o = {0};
    pull_ctx p = {.out = out};
    const char *db = NULL, *pwfile = NULL;
    char secret[SECRET_MAX];
    unsigned long v;
    ch_error err = {0};
    int ret = CH_EXIT_FAIL;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        switch (c) {
        case 'u':
            o.url = optarg;
            break;
        case 'c':
            o.collection = optarg;
            break;
        case 'U':
            o.user = optarg;
            break;
        case 'P':
            o.password = optarg;
            break;
        case 'F':
            pwfile = optarg;
            break;
        case 'T':
            o.token = optarg;
            break;
        case 'd':
            db = optarg;
            break;
        case 'A':
            o.ca_file = optarg;
            break;
        case 'f':
            p.feed = optarg;
            break;
        case 'D':
            p.dset = optarg;
            break;
        case 'I':
            p.iset = optarg;
            break;
        case 'L':
            p.uset = optarg;
            break;
        case 'l':
            if (!parse_uint(optarg, 100000, &v) || v == 0)
                goto bad_value;
            o.page_limit = (unsigned)v;
            break;
        case 'r':
            if (!parse_uint(optarg, 20, &v))
                goto bad_value;
            o.max_retries = (unsigned)v;
            o.no_retry = v == 0;
            break;
        case 'C':
            if (!parse_uint(optarg, 3600, &v) || v == 0)
                goto bad_value;
            o.connect_timeout_ms = (long)v * 1000;
            break;
        case 't':
            if (!parse_uint(optarg, 86400, &v) || v == 0)
                goto bad_value;
            o.timeout_ms = (long)v * 1000;
            break;
        case 'h':
            pull_usage(stdout);
            return CH_EXIT_OK;
        case ':':
            fprintf(stderr, "coinhound intel pull: %s needs a value\n", argv[optind - 1]);
            pull_usage(stderr);
            return CH_EXIT_USAGE;
        default:
            fprintf(stderr, "coinhound intel pull: unknown option '%s'\n", argv[optind - 1]);
            pull_usage(stderr);
            return CH_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "coinhound intel pull: unexpected argument '%s'\n", argv[optind]);
        return CH_EXIT_USAGE;
    }
    if (o.url == NULL) {
        fprintf(stderr, "coinhound intel pull: --url is required\n");
        pull_usage(stderr);
        return CH_EXIT_USAGE;
    }
    if (o.user == NULL && o.token == NULL)
        o.user = getenv("COINHOUND_TAXII_USER");
    if (o.token == NULL && o.user == NULL && getenv("COINHOUND_TAXII_TOKEN") != NULL)
        o.token = getenv("COINHOUND_TAXII_TOKEN");
    if (pwfile != NULL) {
        if (read_secret(pwfile, secret, sizeof secret, &err) < 0) {
            fprintf(stderr, "coinhound intel pull: %s\n", err.msg);
            return CH_EXIT_USAGE;
        }
        o.password = secret;
    }
    if (o.user != NULL && o.password == NULL)
        o.password = getenv("COINHOUND_TAXII_PASSWORD");
    if (o.user != NULL && o.password == NULL) {
        fprintf(stderr, "coinhound intel pull: --user needs --password, --password-file or "
                        "COINHOUND_TAXII_PASSWORD\n");
        return CH_EXIT_USAGE;
    }
    if (o.token != NULL && o.user != NULL) {
        fprintf(stderr, "coinhound intel pull: give either --token or --user, not both\n");
        return CH_EXIT_USAGE;
    }

    ch_diag_init(&p.diag, stderr);
    int rc = ch_intel_store_open(db, &p.store, &err);
    if (rc < 0)
        goto fail;
    if (ch_refsets_new(&p.sets) < 0 || ch_intel_catalog_new(&p.catalog) < 0) {
        rc = ch_error_set(&err, CH_ENOMEM, "out of memory");
        goto fail;
    }
    ch_taxii_sink sink = {pull_get, pull_page, pull_warn, &p};
    ch_taxii_pull_stats st;
    memset(&st, 0, sizeof st);
    rc = ch_taxii_pull(&o, &sink, &st, &err);
    close_stix(&p);
    if (rc == 0 || p.pages > 0)
        say(out, "info",
            "%s: %zu collections, %zu pages, %zu objects; %llu indicators: %llu loaded (%llu "
            "replaced), %llu revoked, %llu unchanged or older, %llu unsupported, %llu other "
            "pattern types, %llu bad; elements +%llu -%llu",
            o.url, st.collections, p.pages, st.objects, (unsigned long long)p.total.indicators,
            (unsigned long long)p.total.loaded, (unsigned long long)p.total.replaced,
            (unsigned long long)p.total.revoked, (unsigned long long)p.total.ignored_older,
            (unsigned long long)p.total.unsupported, (unsigned long long)p.total.other_patterns,
            (unsigned long long)p.total.bad, (unsigned long long)p.total.elements_added,
            (unsigned long long)p.total.elements_removed);
    for (int r = 0; (rc == 0 || p.pages > 0) && r < CH_STIX_REFUSE__N; r++)
        if (p.total.refused[r] > 0)
            say(out, "info", "%s: refused: %s: %llu", o.url,
                ch_stix_refusal_name((ch_stix_refusal)r), (unsigned long long)p.total.refused[r]);
    if ((rc == 0 || p.pages > 0) && p.total.url_only > 0)
        say(out, "info",
            "%s: %llu url:value held as URLs only, their hosts not matched against DNS or "
            "flows",
            o.url, (unsigned long long)p.total.url_only);
    if (out != NULL) {
        out->objects = st.objects;
        out->indicators = p.total.indicators;
        out->loaded = p.total.loaded;
        out->revoked = p.total.revoked;
        out->bad = p.total.bad;
        out->added = p.total.elements_added;
        out->removed = p.total.elements_removed;
        out->pages = p.pages;
    }
    if (rc < 0)
        goto fail;
    ret = CH_EXIT_OK;
    /* Indicators that arrive after the logs still find them (store/retro.h). */
    char *hunt = NULL;
    size_t hlen = 0;
    FILE *hf = out != NULL && out->say != NULL ? open_memstream(&hunt, &hlen) : NULL;
    if (ch_retro_after_intel(db, hf ? hf : stdout, &err) < 0) {
        say(out, "error", "retro-hunt: %s", err.msg);
        ret = CH_EXIT_FAIL;
    }
    if (hf != NULL) {
        fclose(hf);
        for (char *line = hunt, *nl; line != NULL && *line; line = nl ? nl + 1 : NULL) {
            nl = strchr(line, '\n');
            if (nl)
                *nl = '\0';
            say(out, "info", "%s", line);
        }
        free(hunt);
    }
    goto cleanup;
bad_value:
    fprintf(stderr, "coinhound intel pull: bad value '%s' for %s\n", optarg, argv[optind - 1]);
    return CH_EXIT_USAGE;
fail:
    if (out != NULL)
        snprintf(out->error, sizeof out->error, "%s", err.msg);
    say(out, "error", "%s%s", err.msg,
        p.pages ? " (the pages before it are stored; the next pull resumes after them)" : "");
    ret = exit_for(rc);
cleanup:
    close_stix(&p);
    ch_intel_catalog_free(p.catalog);
    ch_refsets_free(p.sets);
    ch_intel_store_close(p.store);
    memset(secret, 0, sizeof secret);
    return ret;
}

/* ---- serve -------------------------------------------------------------------------------- */

static void serve_usage(FILE *f)
{
    fprintf(f,
            "usage: coinhound intel serve [--listen ADDR] [--db FILE] [--user U]\n"
            "                             [--password-file F] [--tls-cert PEM --tls-key PEM]\n"
            "                             [--refresh SEC] [--page-size N] [--no-offenses]\n\n"
            "Publishes the reference sets marked shareable ('coinhound refset share') and the\n"
            "public addresses and domains of offenses as read-only TAXII 2.1 collections of STIX\n"
            "2.1 indicators: discovery /taxii2/, API root /coinhound/. Listens on 127.0.0.1:9443\n"
            "by default; another address needs --tls-cert/--tls-key. Basic authentication is\n"
            "required and has no default: --user (or COINHOUND_TAXII_USER) and --password-file\n"
            "(or COINHOUND_TAXII_PASSWORD). The catalog is re-read every --refresh seconds\n"
            "(default 60). Stops on SIGINT or SIGTERM. Default database %s/%s.\n",
            ch_data_dir(), CH_STORE_DEFAULT_NAME);
}

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static int build_catalog(const char *db, bool offenses, ch_taxii_catalog **out,
                         ch_taxii_publish_stats *st, ch_error *err)
{
    ch_intel_store *is = NULL;
    ch_store *os = NULL;
    ch_offenses *m = NULL;
    ch_taxii_catalog *cat = NULL;
    int64_t now = ch_cli_now_ms();
    memset(st, 0, sizeof *st);
    int rc = ch_intel_store_open_existing(db, &is, err);
    if (rc < 0)
        goto cleanup;
    if (ch_taxii_catalog_new(&cat) < 0) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto cleanup;
    }
    if ((rc = ch_taxii_publish_store_sets(cat, is, now, st, err)) < 0)
        goto cleanup;
    if (offenses) {
        if ((rc = ch_store_open(ch_intel_store_path(is), &os, err)) < 0)
            goto cleanup;
        if ((m = ch_offenses_new()) == NULL) {
            rc = ch_error_set(err, CH_ENOMEM, "out of memory");
            goto cleanup;
        }
        if ((rc = ch_store_load(os, CH_OFFENSE_MASK_OPEN | CH_OFFENSE_MASK_CLOSED, m, err)) < 0)
            goto cleanup;
        if ((rc = ch_taxii_publish_offenses(cat, m, is, now, st, err)) < 0)
            goto cleanup;
    }
    *out = cat;
    cat = NULL;
    rc = 0;
cleanup:
    ch_taxii_catalog_free(cat);
    ch_offenses_free(m);
    ch_store_close(os);
    ch_intel_store_close(is);
    return rc;
}

static char *read_file_text(const char *path, ch_error *err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        ch_error_set(err, CH_EIO, "%s: %s", path, strerror(errno));
        return NULL;
    }
    ch_buf b;
    ch_buf_init(&b, 1u << 20);
    char chunk[8192];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = ch_buf_add(&b, chunk, n);
    fclose(f);
    if (rc < 0 || b.data == NULL) {
        ch_error_set(err, CH_EIO, "%s: empty or larger than 1 MiB", path);
        ch_buf_free(&b);
        return NULL;
    }
    return b.data;
}

int ch_cmd_intel_serve(int argc, char **argv)
{
    static const struct option lo[] = {
        {"listen", required_argument, NULL, 'l'},
        {"db", required_argument, NULL, 'd'},
        {"user", required_argument, NULL, 'U'},
        {"password-file", required_argument, NULL, 'F'},
        {"tls-cert", required_argument, NULL, 'c'},
        {"tls-key", required_argument, NULL, 'k'},
        {"refresh", required_argument, NULL, 'r'},
        {"page-size", required_argument, NULL, 'p'},
        {"no-offenses", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    ch_taxii_server_opts so = {0};
    const char *db = NULL, *pwfile = NULL, *cert = NULL, *key = NULL;
    char secret[SECRET_MAX];
    char *cert_pem = NULL, *key_pem = NULL;
    unsigned long refresh_s = 60, v;
    bool offenses = true;
    ch_taxii_server *srv = NULL;
    ch_taxii_catalog *cat = NULL;
    ch_error err = {0};
    int ret = CH_EXIT_FAIL, rc;
    so.listen = "127.0.0.1:9443";
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        switch (c) {
        case 'l':
            so.listen = optarg;
            break;
        case 'd':
            db = optarg;
            break;
        case 'U':
            so.user = optarg;
            break;
        case 'F':
            pwfile = optarg;
            break;
        case 'c':
            cert = optarg;
            break;
        case 'k':
            key = optarg;
            break;
        case 'n':
            offenses = false;
            break;
        case 'r':
            if (!parse_uint(optarg, 86400, &refresh_s) || refresh_s == 0)
                goto bad_value;
            break;
        case 'p':
            if (!parse_uint(optarg, 100000, &v) || v == 0)
                goto bad_value;
            so.max_page = (unsigned)v;
            break;
        case 'h':
            serve_usage(stdout);
            return CH_EXIT_OK;
        case ':':
            fprintf(stderr, "coinhound intel serve: %s needs a value\n", argv[optind - 1]);
            return CH_EXIT_USAGE;
        default:
            fprintf(stderr, "coinhound intel serve: unknown option '%s'\n", argv[optind - 1]);
            serve_usage(stderr);
            return CH_EXIT_USAGE;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "coinhound intel serve: unexpected argument '%s'\n", argv[optind]);
        return CH_EXIT_USAGE;
    }
    if (so.user == NULL)
        so.user = getenv("COINHOUND_TAXII_USER");
    if (pwfile != NULL) {
        if (read_secret(pwfile, secret, sizeof secret, &err) < 0) {
            fprintf(stderr, "coinhound intel serve: %s\n", err.msg);
            return CH_EXIT_USAGE;
        }
        so.password = secret;
    } else {
        so.password = getenv("COINHOUND_TAXII_PASSWORD");
    }
    if (so.user == NULL || *so.user == '\0' || so.password == NULL || *so.password == '\0') {
        fprintf(stderr, "coinhound intel serve: refusing to start without credentials: give "
                        "--user (or COINHOUND_TAXII_USER) and --password-file (or "
                        "COINHOUND_TAXII_PASSWORD); there are no default credentials\n");
        return CH_EXIT_USAGE;
    }
    if ((cert == NULL) != (key == NULL)) {
        fprintf(stderr, "coinhound intel serve: --tls-cert and --tls-key go together\n");
        return CH_EXIT_USAGE;
    }
    if (cert != NULL) {
        if ((cert_pem = read_file_text(cert, &err)) == NULL ||
            (key_pem = read_file_text(key, &err)) == NULL) {
            rc = CH_EIO;
            goto fail;
        }
        so.tls_cert_pem = cert_pem;
        so.tls_key_pem = key_pem;
    }
    ch_taxii_publish_stats st;
    if ((rc = build_catalog(db, offenses, &cat, &st, &err)) < 0)
        goto fail;
    rc = ch_taxii_server_start(&so, cat, &srv, &err);
    cat = NULL;
    if (rc < 0)
        goto fail;
    fprintf(stderr,
            "coinhound intel serve: TAXII 2.1 on %s://%s/taxii2/ (port %u): %zu collections, "
            "%zu objects served (%zu newly revoked; %zu expired, %zu not expressible, %zu "
            "internal addresses left out)\n",
            cert ? "https" : "http", so.listen, (unsigned)ch_taxii_server_port(srv), st.collections,
            st.objects, st.revoked, st.expired, st.unsupported, st.internal);
    fflush(stderr);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    stop_flag = 0;
    /* Sleep in short ticks so that a signal stops the server promptly; rebuild the catalog
     * every refresh_s seconds. A failed rebuild keeps the catalog being served. */
    unsigned long ticks = 0, per_refresh = refresh_s * 5;
    while (!stop_flag) {
        struct timespec ts = {0, 200 * 1000000L};
        nanosleep(&ts, NULL);
        if (++ticks < per_refresh)
            continue;
        ticks = 0;
        ch_taxii_catalog *nc = NULL;
        ch_error re = {0};
        if (build_catalog(db, offenses, &nc, &st, &re) < 0)
            fprintf(stderr,
                    "coinhound intel serve: refresh failed, serving the previous "
                    "catalog: %s\n",
                    re.msg);
        else
            ch_taxii_server_publish(srv, nc);
    }
    fprintf(stderr, "coinhound intel serve: stopping (%llu requests served)\n",
            (unsigned long long)ch_taxii_server_requests(srv));
    ret = CH_EXIT_OK;
    goto cleanup;
bad_value:
    fprintf(stderr, "coinhound intel serve: bad value '%s' for %s\n", optarg, argv[optind - 1]);
    return CH_EXIT_USAGE;
fail:
    fprintf(stderr, "coinhound intel serve: %s\n", err.msg);
    ret = exit_for(rc);
cleanup:
    ch_taxii_server_stop(srv);
    ch_taxii_catalog_free(cat);
    if (key_pem != NULL)
        memset(key_pem, 0, strlen(key_pem));
    ch_free(cert_pem);
    ch_free(key_pem);
    memset(secret, 0, sizeof secret);
    return ret;
}
