/*
 * config.c - the serve configuration (see config.h): a walk over libyaml's document tree, one
 * `want_*` per value shape, the same way the context and rule loaders walk theirs. Small files
 * (capped at CH_SERVE_MAX_FILE), read once at start and at --check-config: nothing here is on a
 * hot path.
 */
#include "server/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "core/listen.h"
#include "core/mem.h"
#include "core/readfile.h"
#include "core/yaml_util.h"
#include "store/evstore.h"
#include "response/run.h"

#define TEXT_MAX 4096
#define TOKEN_MIN 16

typedef struct reader {
    const char *file;
    yaml_document_t doc;
    ch_error *err;
    ch_serve_config *c;
} reader;

static int rfail(reader *R, const yaml_node_t *n, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int rfail(reader *R, const yaml_node_t *n, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = ch_yaml_vfail(R->err, R->file, NULL, n, code, fmt, ap);
    va_end(ap);
    return rc;
}

static yaml_node_t *node(reader *R, int i) { return yaml_document_get_node(&R->doc, i); }

int64_t ch_parse_duration_ms(const char *s)
{
    if (s == NULL || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno != 0 || v < 0)
        return -1;
    double mul;
    if (*end == '\0' || strcmp(end, "s") == 0)
        mul = 1000;
    else if (strcmp(end, "ms") == 0)
        mul = 1;
    else if (strcmp(end, "m") == 0)
        mul = 60e3;
    else if (strcmp(end, "h") == 0)
        mul = 3600e3;
    else if (strcmp(end, "d") == 0)
        mul = 86400e3;
    else
        return -1;
    double ms = v * mul;
    return ms > 1e15 ? -1 : (int64_t)ms;
}

uint64_t ch_parse_size(const char *s)
{
    if (s == NULL || !isdigit((unsigned char)*s))
        return 0;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno != 0 || v <= 0)
        return 0;
    static const struct {
        const char *suffix;
        double mul;
    } units[] = {{"", 1},
                 {"B", 1},
                 {"KiB", 1024.0},
                 {"MiB", 1048576.0},
                 {"GiB", 1073741824.0},
                 {"TiB", 1099511627776.0},
                 {"KB", 1e3},
                 {"MB", 1e6},
                 {"GB", 1e9},
                 {"TB", 1e12}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strcmp(end, units[i].suffix) == 0) {
            double b = v * units[i].mul;
            return b >= 1.8e19 ? 0 : (uint64_t)b;
        }
    return 0;
}

/* A non-empty scalar without NUL bytes, copied. */
static int want_text(reader *R, const yaml_node_t *n, const char *what, char **out)
{
    size_t len;
    const char *s = ch_yaml_scalar(n, &len);
    if (s == NULL || len == 0)
        return rfail(R, n, CH_EPARSE, "%s: expected a non-empty string", what);
    if (len > TEXT_MAX || memchr(s, '\0', len) != NULL)
        return rfail(R, n, CH_ELIMIT, "%s is longer than %d bytes or holds a NUL byte", what,
                     TEXT_MAX);
    ch_free(*out);
    *out = ch_strndup(s, len);
    return *out ? 0 : rfail(R, n, CH_ENOMEM, "out of memory");
}

static int want_duration(reader *R, const yaml_node_t *n, const char *what, int64_t min_ms,
                         int64_t *out)
{
    const char *s = ch_yaml_scalar(n, NULL);
    int64_t v = ch_parse_duration_ms(s);
    if (v < 0)
        return rfail(R, n, CH_EPARSE, "%s: expected a duration such as 100ms, 15s, 20m or 1h",
                     what);
    if (v < min_ms)
        return rfail(R, n, CH_EPARSE, "%s: at least %lld ms", what, (long long)min_ms);
    *out = v;
    return 0;
}

static int want_size(reader *R, const yaml_node_t *n, const char *what, uint64_t min, uint64_t *out)
{
    uint64_t v = ch_parse_size(ch_yaml_scalar(n, NULL));
    if (v == 0)
        return rfail(R, n, CH_EPARSE, "%s: expected a size such as 10GiB, 512MiB or 65536", what);
    if (v < min)
        return rfail(R, n, CH_EPARSE, "%s: at least %llu bytes", what, (unsigned long long)min);
    *out = v;
    return 0;
}

/* YAML 1.1's booleans as a config author writes them; false when s is none of them. */
static bool bool_word(const char *s, bool *out)
{
    if (s && (strcmp(s, "true") == 0 || strcmp(s, "yes") == 0 || strcmp(s, "on") == 0))
        *out = true;
    else if (s && (strcmp(s, "false") == 0 || strcmp(s, "no") == 0 || strcmp(s, "off") == 0))
        *out = false;
    else
        return false;
    return true;
}

static int want_bool(reader *R, const yaml_node_t *n, const char *what, bool *out)
{
    if (!bool_word(ch_yaml_scalar(n, NULL), out))
        return rfail(R, n, CH_EPARSE, "%s: expected true or false", what);
    return 0;
}

static int want_map(reader *R, const yaml_node_t *n, const char *what)
{
    if (n == NULL || n->type != YAML_MAPPING_NODE)
        return rfail(R, n, CH_EPARSE, "%s: expected a mapping", what);
    return 0;
}

/* A list of paths (a single string is a list of one). */
static int want_paths(reader *R, const yaml_node_t *n, const char *what, char **out, size_t cap,
                      size_t *count)
{
    if (n->type == YAML_SCALAR_NODE) {
        *count = 1;
        return want_text(R, n, what, &out[0]);
    }
    if (n->type != YAML_SEQUENCE_NODE)
        return rfail(R, n, CH_EPARSE, "%s: expected a list of paths", what);
    if (ch_yaml_seq_len(n) > cap)
        return rfail(R, n, CH_ELIMIT, "%s: more than %zu entries", what, cap);
    size_t i = 0;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++, i++) {
        int rc = want_text(R, node(R, *it), what, &out[i]);
        if (rc < 0)
            return rc;
    }
    *count = i;
    return 0;
}

#define EACH_PAIR(n, p)                                                                            \
    for (yaml_node_pair_t *p = (n)->data.mapping.pairs.start; p < (n)->data.mapping.pairs.top; p++)

static int read_tls(reader *R, const yaml_node_t *n)
{
    int rc = want_map(R, n, "tls");
    EACH_PAIR(n, p)
    {
        if (rc < 0)
            break;
        yaml_node_t *k = node(R, p->key), *v = node(R, p->value);
        if (ch_yaml_key_is(k, "cert"))
            rc = want_text(R, v, "tls.cert", &R->c->tls_cert);
        else if (ch_yaml_key_is(k, "key"))
            rc = want_text(R, v, "tls.key", &R->c->tls_key);
        else
            rc = rfail(R, k, CH_EPARSE, "tls: unknown key (cert, key)");
    }
    return rc;
}

static int read_journal(reader *R, const yaml_node_t *n)
{
    int rc = want_map(R, n, "journal");
    EACH_PAIR(n, p)
    {
        if (rc < 0)
            break;
        yaml_node_t *k = node(R, p->key), *v = node(R, p->value);
        if (ch_yaml_key_is(k, "dir")) {
            rc = want_text(R, v, "journal.dir", &R->c->journal_dir);
        } else if (ch_yaml_key_is(k, "max_bytes")) {
            rc = want_size(R, v, "journal.max_bytes", 64u << 10, &R->c->journal_max_bytes);
        } else if (ch_yaml_key_is(k, "segment_bytes")) {
            rc = want_size(R, v, "journal.segment_bytes", 4096, &R->c->journal_segment_bytes);
        } else if (ch_yaml_key_is(k, "fsync")) {
            const char *s = ch_yaml_scalar(v, NULL);
            int64_t ms;
            if (s && strcmp(s, "batch") == 0) {
                R->c->fsync = CH_JOURNAL_FSYNC_BATCH;
            } else if (s && strcmp(s, "none") == 0) {
                R->c->fsync = CH_JOURNAL_FSYNC_NONE;
            } else if (s && strncmp(s, "interval:", 9) == 0 &&
                       (ms = ch_parse_duration_ms(s + 9)) >= 1 && ms <= 60000) {
                R->c->fsync = CH_JOURNAL_FSYNC_INTERVAL;
                R->c->fsync_interval_ms = (unsigned)ms;
            } else {
                rc = rfail(R, v, CH_EPARSE,
                           "journal.fsync: expected batch, interval:DURATION (1ms..60s) or none");
            }
        } else {
            rc = rfail(R, k, CH_EPARSE,
                       "journal: unknown key (dir, max_bytes, segment_bytes, fsync)");
        }
    }
    return rc;
}

static int read_tokens(reader *R, const yaml_node_t *n)
{
    int rc = want_map(R, n, "tokens");
    EACH_PAIR(n, p)
    {
        if (rc < 0)
            break;
        yaml_node_t *k = node(R, p->key), *v = node(R, p->value);
        if (ch_yaml_key_is(k, "ingest"))
            rc = want_text(R, v, "tokens.ingest", &R->c->ingest_token_file);
        else if (ch_yaml_key_is(k, "read"))
            rc = want_text(R, v, "tokens.read", &R->c->read_token_file);
        else
            rc = rfail(R, k, CH_EPARSE, "tokens: unknown role (ingest, read)");
    }
    return rc;
}

static int read_intel(reader *R, const yaml_node_t *n)
{
    int rc = want_map(R, n, "intel");
    EACH_PAIR(n, p)
    {
        if (rc < 0)
            break;
        yaml_node_t *k = node(R, p->key), *v = node(R, p->value);
        if (!ch_yaml_key_is(k, "pull"))
            return rfail(R, k, CH_EPARSE, "intel: unknown key (pull)");
        if (v->type != YAML_SEQUENCE_NODE)
            return rfail(R, v, CH_EPARSE, "intel.pull: expected a list of feeds");
        if (ch_yaml_seq_len(v) > CH_SERVE_MAX_PULL)
            return rfail(R, v, CH_ELIMIT, "intel.pull: more than %d feeds", CH_SERVE_MAX_PULL);
        for (yaml_node_item_t *it = v->data.sequence.items.start;
             rc == 0 && it < v->data.sequence.items.top; it++) {
            yaml_node_t *f = node(R, *it);
            ch_serve_pull *pl = &R->c->pull[R->c->npull++];
            pl->every_ms = 15 * 60000;
            if ((rc = want_map(R, f, "intel.pull[]")) < 0)
                break;
            EACH_PAIR(f, q)
            {
                if (rc < 0)
                    break;
                yaml_node_t *fk = node(R, q->key), *fv = node(R, q->value);
                if (ch_yaml_key_is(fk, "url"))
                    rc = want_text(R, fv, "intel.pull[].url", &pl->url);
                else if (ch_yaml_key_is(fk, "collection"))
                    rc = want_text(R, fv, "intel.pull[].collection", &pl->collection);
                else if (ch_yaml_key_is(fk, "token_file"))
                    rc = want_text(R, fv, "intel.pull[].token_file", &pl->token_file);
                else if (ch_yaml_key_is(fk, "user"))
                    rc = want_text(R, fv, "intel.pull[].user", &pl->user);
                else if (ch_yaml_key_is(fk, "password_file"))
                    rc = want_text(R, fv, "intel.pull[].password_file", &pl->password_file);
                else if (ch_yaml_key_is(fk, "every"))
                    rc = want_duration(R, fv, "intel.pull[].every", 10000, &pl->every_ms);
                else
                    rc = rfail(R, fk, CH_EPARSE,
                               "intel.pull[]: unknown key (url, collection, every, token_file, "
                               "user, password_file)");
            }
            if (rc == 0 && pl->url == NULL)
                rc = rfail(R, f, CH_EPARSE, "intel.pull[]: url is required");
            /* Basic (a TAXII server such as `coinhound intel serve`) or bearer, never both,
             * and a user is nothing without the password. */
            if (rc == 0 && pl->token_file != NULL && pl->user != NULL)
                rc = rfail(R, f, CH_EPARSE, "intel.pull[]: give token_file or user, not both");
            if (rc == 0 && (pl->user == NULL) != (pl->password_file == NULL))
                rc = rfail(R, f, CH_EPARSE, "intel.pull[]: user and password_file go together");
        }
    }
    return rc;
}

/* respond: the response section (response/respond_config.h, docs/RESPONSE.md). */
static bool loopback_url(const char *u)
{
    static const char *const ok[] = {"http://127.0.0.1:", "http://127.0.0.1/",
                                     "http://[::1]:", "http://localhost:"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strncmp(u, ok[i], strlen(ok[i])) == 0)
            return true;
    return false;
}

static int read_auto(reader *R, const yaml_node_t *v)
{
    ch_resp_config *rc_ = &R->c->respond;
    if (v->type != YAML_SEQUENCE_NODE)
        return rfail(R, v, CH_EPARSE, "respond.auto: expected a list");
    if (ch_yaml_seq_len(v) > CH_RESP_MAX_AUTO)
        return rfail(R, v, CH_ELIMIT, "respond.auto: more than %d entries", CH_RESP_MAX_AUTO);
    int rc = 0;
    for (yaml_node_item_t *it = v->data.sequence.items.start;
         rc == 0 && it < v->data.sequence.items.top; it++) {
        yaml_node_t *f = node(R, *it);
        ch_resp_auto *a = &rc_->autos[rc_->nauto++];
        a->min_magnitude = 1;
        if ((rc = want_map(R, f, "respond.auto[]")) < 0)
            break;
        EACH_PAIR(f, q)
        {
            if (rc < 0)
                break;
            yaml_node_t *fk = node(R, q->key), *fv = node(R, q->value);
            if (ch_yaml_key_is(fk, "rule")) {
                rc = want_text(R, fv, "respond.auto[].rule", &a->rule);
            } else if (ch_yaml_key_is(fk, "min_magnitude")) {
                const char *m = ch_yaml_scalar(fv, NULL);
                char *end = NULL;
                long n = m != NULL ? strtol(m, &end, 10) : 0;
                if (m == NULL || *end || n < 1 || n > 10)
                    rc = rfail(R, fv, CH_EPARSE, "respond.auto[].min_magnitude: 1 to 10");
                a->min_magnitude = (int)n;
            } else if (ch_yaml_key_is(fk, "steps")) {
                if (fv->type != YAML_SEQUENCE_NODE || ch_yaml_seq_len(fv) > CH_RESP_MAX_KINDS)
                    return rfail(R, fv, CH_EPARSE,
                                 "respond.auto[].steps: a list of at most %d step kinds",
                                 CH_RESP_MAX_KINDS);
                for (yaml_node_item_t *k = fv->data.sequence.items.start;
                     rc == 0 && k < fv->data.sequence.items.top; k++) {
                    yaml_node_t *kn = node(R, *k);
                    char **dst = &a->kinds[a->nkinds++];
                    rc = want_text(R, kn, "respond.auto[].steps[]", dst);
                    if (rc == 0 && !ch_resp_step_kind_ok(*dst))
                        rc = rfail(R, kn, CH_EPARSE,
                                   "respond.auto[].steps: unknown step kind '%s' (deactivate_keys, "
                                   "delete_login_profile, revoke_sessions, snapshot_instances, "
                                   "isolate_instances, stop_instances, block_domains, "
                                   "block_addresses)",
                                   *dst);
                }
            } else {
                rc = rfail(R, fk, CH_EPARSE,
                           "respond.auto[]: unknown key (rule, min_magnitude, steps)");
            }
        }
        if (rc == 0 && a->rule == NULL)
            rc = rfail(R, f, CH_EPARSE, "respond.auto[]: rule is required");
    }
    return rc;
}

static int read_respond(reader *R, const yaml_node_t *n)
{
    ch_resp_config *c = &R->c->respond;
    int rc = want_map(R, n, "respond");
    EACH_PAIR(n, p)
    {
        if (rc < 0)
            break;
        yaml_node_t *k = node(R, p->key), *v = node(R, p->value);
        if (ch_yaml_key_is(k, "execute")) {
            rc = want_bool(R, v, "respond.execute", &c->execute);
        } else if (ch_yaml_key_is(k, "endpoint")) {
            rc = want_text(R, v, "respond.endpoint", &c->endpoint);
            /* Signed calls carry session tokens: plain HTTP only to this machine. */
            if (rc == 0 && strncmp(c->endpoint, "https://", 8) != 0 && !loopback_url(c->endpoint))
                rc = rfail(R, v, CH_EPARSE,
                           "respond.endpoint: https://..., or http:// on 127.0.0.1, [::1] or "
                           "localhost");
            size_t el = rc == 0 ? strlen(c->endpoint) : 0;
            if (el > 0 && c->endpoint[el - 1] == '/')
                c->endpoint[el - 1] = '\0';
        } else if (ch_yaml_key_is(k, "assume_role")) {
            rc = want_text(R, v, "respond.assume_role", &c->assume_role);
            for (const char *q = rc == 0 ? c->assume_role : ""; *q && rc == 0; q++)
                if (!isalnum((unsigned char)*q) && strchr("+=,.@_-/", *q) == NULL)
                    rc = rfail(R, v, CH_EPARSE, "respond.assume_role: an IAM role name");
        } else if (ch_yaml_key_is(k, "auto")) {
            rc = read_auto(R, v);
        } else if (ch_yaml_key_is(k, "auto_rate")) {
            const char *s = ch_yaml_scalar(v, NULL);
            const char *slash = s != NULL ? strchr(s, '/') : NULL;
            char *end = NULL;
            long n = s != NULL ? strtol(s, &end, 10) : 0;
            int64_t per = -1;
            if (slash != NULL && end == slash) {
                const char *u = slash + 1;
                char one[16];
                if (isdigit((unsigned char)*u)) {
                    per = ch_parse_duration_ms(u);
                } else {
                    snprintf(one, sizeof one, "1%s", u);
                    per = ch_parse_duration_ms(one);
                }
            }
            if (n < 1 || n > 10000 || per < 1000)
                rc = rfail(R, v, CH_EPARSE,
                           "respond.auto_rate: N/PERIOD such as 5/h or 20/1d (N 1..10000, "
                           "PERIOD at least 1s)");
            c->auto_rate = (int)n;
            c->auto_rate_ms = per;
        } else if (ch_yaml_key_is(k, "auto_every")) {
            rc = want_duration(R, v, "respond.auto_every", 100, &c->auto_every_ms);
        } else if (ch_yaml_key_is(k, "dns_wait")) {
            rc = want_duration(R, v, "respond.dns_wait", 100, &c->dns_wait_ms);
        } else if (ch_yaml_key_is(k, "kill_switch")) {
            rc = want_text(R, v, "respond.kill_switch", &c->kill_switch);
        } else if (ch_yaml_key_is(k, "auto_enabled")) {
            bool on = true;
            rc = want_bool(R, v, "respond.auto_enabled", &on);
            c->auto_disabled = !on;
        } else {
            rc = rfail(R, k, CH_EPARSE,
                       "respond: unknown key (execute, endpoint, assume_role, auto, auto_rate, "
                       "auto_every, kill_switch, auto_enabled, dns_wait)");
        }
    }
    return rc;
}

static int read_root(reader *R)
{
    yaml_node_t *root = yaml_document_get_root_node(&R->doc);
    if (root == NULL)
        return rfail(R, NULL, CH_EPARSE, "the file is empty");
    int rc = want_map(R, root, "the configuration");
    ch_serve_config *c = R->c;
    EACH_PAIR(root, p)
    {
        if (rc < 0)
            break;
        yaml_node_t *k = node(R, p->key), *v = node(R, p->value);
        if (ch_yaml_key_is(k, "listen"))
            rc = want_text(R, v, "listen", &c->listen);
        else if (ch_yaml_key_is(k, "tls"))
            rc = read_tls(R, v);
        else if (ch_yaml_key_is(k, "db"))
            rc = want_text(R, v, "db", &c->db);
        else if (ch_yaml_key_is(k, "pack"))
            rc = want_text(R, v, "pack", &c->pack);
        else if (ch_yaml_key_is(k, "context"))
            rc = want_text(R, v, "context", &c->context);
        else if (ch_yaml_key_is(k, "console"))
            rc = want_text(R, v, "console", &c->console);
        else if (ch_yaml_key_is(k, "geoip"))
            rc = want_paths(R, v, "geoip", c->geoip, CH_SERVE_MAX_GEOIP, &c->ngeoip);
        else if (ch_yaml_key_is(k, "no_geoip"))
            rc = want_bool(R, v, "no_geoip", &c->no_geoip);
        else if (ch_yaml_key_is(k, "spool"))
            rc = want_paths(R, v, "spool", c->spool, CH_SERVE_MAX_SPOOL, &c->nspool);
        else if (ch_yaml_key_is(k, "spool_rescan"))
            rc = want_duration(R, v, "spool_rescan", 100, &c->spool_rescan_ms);
        else if (ch_yaml_key_is(k, "spool_max_files"))
            rc = want_size(R, v, "spool_max_files", 1, &c->spool_max_files);
        else if (ch_yaml_key_is(k, "spool_max_chunk"))
            rc = want_size(R, v, "spool_max_chunk", 64u << 10, &c->spool_max_chunk);
        else if (ch_yaml_key_is(k, "journal"))
            rc = read_journal(R, v);
        else if (ch_yaml_key_is(k, "lateness"))
            rc = want_duration(R, v, "lateness", 0, &c->lateness_ms);
        else if (ch_yaml_key_is(k, "checkpoint"))
            rc = want_duration(R, v, "checkpoint", 100, &c->checkpoint_ms);
        else if (ch_yaml_key_is(k, "tokens"))
            rc = read_tokens(R, v);
        else if (ch_yaml_key_is(k, "max_body"))
            rc = want_size(R, v, "max_body", 1024, &c->max_body);
        else if (ch_yaml_key_is(k, "max_connections")) {
            uint64_t n = 0;
            rc = want_size(R, v, "max_connections", 1, &n);
            if (rc == 0 && n > 4096)
                rc = rfail(R, v, CH_ELIMIT, "max_connections: at most 4096");
            c->max_connections = (unsigned)n;
        } else if (ch_yaml_key_is(k, "intel"))
            rc = read_intel(R, v);
        else if (ch_yaml_key_is(k, "retention")) {
            rc = want_text(R, v, "retention", &c->retention);
            ch_evstore_retention ret;
            ch_error e = {0};
            if (rc == 0 && ch_evstore_retention_parse(c->retention, &ret, &e) < 0)
                rc = rfail(R, v, CH_EPARSE, "retention: %s", e.msg);
        } else if (ch_yaml_key_is(k, "no_store"))
            rc = want_bool(R, v, "no_store", &c->no_store);
        else if (ch_yaml_key_is(k, "store_hot")) {
            /* A boolean as before, raw (hot segments whose frames are stored uncompressed) or
             * auto (raw within a budget, level 1 after: the default). */
            const char *s = ch_yaml_scalar(v, NULL);
            bool on = false;
            if (s != NULL && strcmp(s, "raw") == 0)
                c->store_hot = "raw";
            else if (s != NULL && strcmp(s, "auto") == 0)
                c->store_hot = "auto";
            else if (bool_word(s, &on))
                c->store_hot = on ? "on" : "off";
            else
                rc = rfail(R, v, CH_EPARSE, "store_hot: expected true, false, raw or auto");
        } else if (ch_yaml_key_is(k, "threads")) {
            uint64_t n = 0;
            rc = want_size(R, v, "threads", 1, &n);
            if (rc == 0 && n > 256)
                rc = rfail(R, v, CH_ELIMIT, "threads: at most 256");
            c->threads = (unsigned)n;
        } else if (ch_yaml_key_is(k, "respond"))
            rc = read_respond(R, v);
        else
            rc = rfail(
                R, k, CH_EPARSE,
                "unknown key (listen, tls, db, pack, context, console, geoip, no_geoip, spool, "
                "spool_rescan, spool_max_files, spool_max_chunk, journal, lateness, "
                "checkpoint, tokens, "
                "max_body, max_connections, intel, retention, no_store, store_hot, threads, "
                "respond)");
    }
    if (rc == 0 && c->journal_dir == NULL)
        rc = rfail(R, root, CH_EPARSE, "journal.dir is required (where accepted records wait)");
    return rc;
}

static void defaults(ch_serve_config *c)
{
    memset(c, 0, sizeof *c);
    c->journal_max_bytes = 10ull << 30;
    c->fsync = CH_JOURNAL_FSYNC_BATCH;
    c->lateness_ms = 20 * 60000;
    c->checkpoint_ms = 5000;
    c->spool_rescan_ms = 10000;
    c->max_body = 64u << 20;
    c->max_connections = 64;
    c->respond.auto_rate = 5;
    c->respond.auto_rate_ms = 3600000;
    c->respond.auto_every_ms = 5000;
}

int ch_serve_config_load_mem(const char *name, const char *text, size_t len, ch_serve_config *c,
                             ch_error *err)
{
    defaults(c);
    c->file = ch_strdup(name);
    reader R;
    memset(&R, 0, sizeof R);
    R.file = name;
    R.err = err;
    R.c = c;
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int rc;
    if (!yaml_parser_load(&parser, &R.doc)) {
        rc = ch_yaml_load_error(err, name, &parser);
        yaml_parser_delete(&parser);
        ch_serve_config_free(c);
        return rc;
    }
    rc = read_root(&R);
    yaml_document_delete(&R.doc);
    yaml_parser_delete(&parser);
    if (rc == 0 && c->listen == NULL && (c->listen = ch_strdup(CH_SERVE_DEFAULT_LISTEN)) == NULL)
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
    if (rc < 0)
        ch_serve_config_free(c);
    return rc;
}

int ch_serve_config_load(const char *path, ch_serve_config *c, ch_error *err)
{
    char *text = NULL;
    size_t len = 0;
    defaults(c);
    int rc = ch_read_file(path, CH_SERVE_MAX_FILE, &text, &len, err);
    if (rc == 0)
        rc = ch_serve_config_load_mem(path, text, len, c, err);
    ch_free(text);
    return rc;
}

void ch_serve_config_free(ch_serve_config *c)
{
    ch_resp_config_free(&c->respond);
    ch_free(c->file);
    ch_free(c->listen);
    ch_free(c->tls_cert);
    ch_free(c->tls_key);
    ch_free(c->db);
    ch_free(c->pack);
    ch_free(c->context);
    ch_free(c->console);
    ch_free(c->retention);
    for (size_t i = 0; i < c->ngeoip; i++)
        ch_free(c->geoip[i]);
    for (size_t i = 0; i < c->nspool; i++)
        ch_free(c->spool[i]);
    ch_free(c->journal_dir);
    ch_free(c->ingest_token_file);
    ch_free(c->read_token_file);
    for (size_t i = 0; i < c->npull; i++) {
        ch_free(c->pull[i].url);
        ch_free(c->pull[i].collection);
        ch_free(c->pull[i].token_file);
        ch_free(c->pull[i].user);
        ch_free(c->pull[i].password_file);
    }
    memset(c, 0, sizeof *c);
}

/* ---- checks against the world ---------------------------------------------------------------- */

int ch_listen_parse(const char *listen, struct sockaddr_storage *ss, socklen_t *sl, bool *loopback,
                    ch_error *err)
{
    return ch_listen_resolve(listen, true, ss, sl, loopback, NULL, 0, err);
}

int ch_token_file_load(const char *path, char **out, size_t *len, size_t *n, ch_error *err)
{
    char *text = NULL;
    size_t tlen = 0;
    *out = NULL;
    *n = 0;
    struct stat st;
    if (stat(path, &st) == 0 && (st.st_mode & 0077) != 0 && (st.st_mode & 0004) != 0)
        return ch_error_set(err, CH_EUSAGE, "token file %s is readable by everyone: chmod 600 it",
                            path);
    int rc = ch_read_file(path, 1u << 20, &text, &tlen, err);
    if (rc < 0)
        return rc;
    /* Lines become NUL-terminated tokens, packed at the front. */
    size_t w = 0, count = 0;
    unsigned lineno = 0;
    for (char *line = text, *next; line != NULL && line < text + tlen; line = next) {
        lineno++;
        next = memchr(line, '\n', (size_t)(text + tlen - line));
        size_t l = next ? (size_t)(next - line) : (size_t)(text + tlen - line);
        if (next)
            next++;
        while (l > 0 && (line[l - 1] == '\r' || line[l - 1] == ' ' || line[l - 1] == '\t'))
            l--;
        while (l > 0 && (*line == ' ' || *line == '\t')) {
            line++;
            l--;
        }
        if (l == 0 || *line == '#')
            continue;
        if (l < TOKEN_MIN) {
            ch_free(text);
            return ch_error_set(err, CH_EUSAGE, "%s:%u: a token must be at least %d bytes", path,
                                lineno, TOKEN_MIN);
        }
        memmove(text + w, line, l);
        text[w + l] = '\0';
        w += l + 1;
        count++;
    }
    if (count == 0) {
        ch_free(text);
        return ch_error_set(err, CH_EUSAGE, "%s holds no token", path);
    }
    *out = text;
    *len = w;
    *n = count;
    return 0;
}

static int need_file(const char *what, const char *path, ch_error *err)
{
    if (access(path, R_OK) != 0)
        return ch_error_set(err, CH_EIO, "%s %s: %s", what, path, strerror(errno));
    return 0;
}

static int need_dir(const char *what, const char *path, ch_error *err)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return ch_error_set(err, CH_EIO, "%s %s: %s", what, path, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return ch_error_set(err, CH_EIO, "%s %s: not a directory", what, path);
    return 0;
}

/* Is `inner` the same as or below `outer` (textually, after realpath)? */
static bool path_within(const char *inner, const char *outer)
{
    char a[PATH_MAX], b[PATH_MAX];
    if (realpath(inner, a) == NULL || realpath(outer, b) == NULL)
        return false;
    size_t n = strlen(b);
    return strncmp(a, b, n) == 0 && (a[n] == '\0' || a[n] == '/');
}

int ch_serve_config_check(const ch_serve_config *c, ch_error *err)
{
    struct sockaddr_storage ss;
    socklen_t sl;
    bool loopback;
    int rc = ch_listen_parse(c->listen, &ss, &sl, &loopback, err);
    if (rc < 0)
        return rc;
    if ((c->tls_cert == NULL) != (c->tls_key == NULL))
        return ch_error_set(err, CH_EUSAGE, "tls needs both cert and key");
    if (!loopback && c->tls_cert == NULL)
        return ch_error_set(err, CH_EUSAGE,
                            "listen %s is not loopback: set tls (cert and key), since ingest "
                            "tokens and logs would otherwise cross the network in clear",
                            c->listen);
    if (c->tls_cert && ((rc = need_file("tls.cert", c->tls_cert, err)) < 0 ||
                        (rc = need_file("tls.key", c->tls_key, err)) < 0))
        return rc;
    if (c->pack && (rc = need_dir("pack", c->pack, err)) < 0)
        return rc;
    if (c->context && (rc = need_file("context", c->context, err)) < 0)
        return rc;
    if (c->console && (rc = need_dir("console", c->console, err)) < 0)
        return rc;
    for (size_t i = 0; i < c->ngeoip; i++)
        if ((rc = need_file("geoip", c->geoip[i], err)) < 0)
            return rc;
    for (size_t i = 0; i < c->nspool; i++) {
        if ((rc = need_dir("spool", c->spool[i], err)) < 0)
            return rc;
        if (path_within(c->journal_dir, c->spool[i]))
            return ch_error_set(err, CH_EUSAGE,
                                "journal.dir %s is inside spool directory %s: the server would "
                                "read its own journal",
                                c->journal_dir, c->spool[i]);
    }
    struct stat st;
    if (stat(c->journal_dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode) || access(c->journal_dir, W_OK | X_OK) != 0)
            return ch_error_set(err, CH_EIO, "journal.dir %s is not a writable directory",
                                c->journal_dir);
    } else {
        char parent[PATH_MAX];
        snprintf(parent, sizeof parent, "%s", c->journal_dir);
        char *slash = strrchr(parent, '/');
        const char *pd = slash ? (slash == parent ? "/" : (*slash = '\0', parent)) : ".";
        if (access(pd, W_OK | X_OK) != 0)
            return ch_error_set(err, CH_EIO, "journal.dir %s cannot be created (%s: %s)",
                                c->journal_dir, pd, strerror(errno));
    }
    if (c->spool_max_chunk > c->max_body)
        return ch_error_set(err, CH_EUSAGE,
                            "spool_max_chunk is larger than max_body (a chunk is one journal "
                            "entry)");
    if (c->journal_segment_bytes > c->journal_max_bytes)
        return ch_error_set(err, CH_EUSAGE, "journal.segment_bytes is larger than max_bytes");
    char *toks = NULL;
    size_t tlen = 0, nt = 0;
    if (c->ingest_token_file) {
        if ((rc = ch_token_file_load(c->ingest_token_file, &toks, &tlen, &nt, err)) < 0)
            return rc;
        ch_free(toks);
    }
    if (c->read_token_file) {
        if ((rc = ch_token_file_load(c->read_token_file, &toks, &tlen, &nt, err)) < 0)
            return rc;
        ch_free(toks);
    }
    for (size_t i = 0; i < c->npull; i++) {
        if (c->pull[i].token_file &&
            (rc = need_file("intel.pull[].token_file", c->pull[i].token_file, err)) < 0)
            return rc;
        if (c->pull[i].password_file &&
            (rc = need_file("intel.pull[].password_file", c->pull[i].password_file, err)) < 0)
            return rc;
    }
    return 0;
}
