/*
 * cmd_refset.c - `coinhound refset`: list, show, add, remove, import, export, share and drop the
 * reference sets stored in the database (src/intel/intel_store.h).
 *
 * Values typed by the analyst are normalized exactly as the in-memory sets normalize them
 * (ch_intel_normalize_value), so `refset remove bl Example.COM.` removes what `refset add bl
 * example.com` stored. Read-only actions never create a database. Output goes to stdout as it
 * is produced (listings can be large); errors to stderr.
 */
#include "cli/cmd_refset.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "core/ip.h"
#include "core/mem.h"
#include "core/timeparse.h"
#include "intel/intel_match.h"
#include "ingest/input.h"
#include "intel/intel_store.h"
#include "intel/stix.h"
#include "offense/store.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: coinhound refset list   [--db FILE]\n"
            "       coinhound refset show   NAME [--limit N] [--db FILE]\n"
            "       coinhound refset add    NAME VALUE [--type T] [--ttl DUR] [--source S]\n"
            "       coinhound refset remove NAME VALUE\n"
            "       coinhound refset import NAME FILE [--type T] [--ttl DUR] [--source S]\n"
            "       coinhound refset export NAME [--format text|json|stix]\n"
            "       coinhound refset share|unshare|drop NAME\n\n"
            "Types: ip (addresses and CIDRs), domain (suffix match), string, number. A new set\n"
            "takes --type, else the type of its first value. DUR is like 90s, 30m, 24h, 7d.\n"
            "Shared sets are published by 'coinhound intel serve'. Every action takes --db FILE\n"
            "(default %s/%s).\n",
            ch_data_dir(), CH_STORE_DEFAULT_NAME);
}

bool ch_cli_parse_duration(const char *s, int64_t *ms)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || errno || v < 0)
        return false;
    int64_t unit = 1000;
    if (*end != '\0') {
        switch (*end) {
        case 's':
            unit = 1000;
            break;
        case 'm':
            unit = 60000;
            break;
        case 'h':
            unit = 3600000;
            break;
        case 'd':
            unit = 86400000;
            break;
        case 'w':
            unit = 7 * 86400000LL;
            break;
        default:
            return false;
        }
        if (end[1] != '\0')
            return false;
    }
    if (v > INT64_MAX / unit / 2)
        return false;
    *ms = v * unit;
    return true;
}

int ch_cli_action_start(int argc, char **argv, void (*usage)(FILE *), const char **action)
{
    if (argc < 2) {
        usage(stderr);
        return CH_EXIT_USAGE;
    }
    *action = argv[1];
    if (strcmp(*action, "--help") == 0 || strcmp(*action, "-h") == 0 ||
        strcmp(*action, "help") == 0) {
        usage(stdout);
        return CH_EXIT_OK;
    }
    optind = 0;
    opterr = 0;
    return -1;
}

int ch_cli_bad_option(const char *cmd, int c, char **av)
{
    if (c == ':')
        fprintf(stderr, "%s: option '%s' needs a value\n", cmd, av[optind - 1]);
    else
        fprintf(stderr, "%s: unknown option '%s'\n", cmd, av[optind - 1]);
    return CH_EXIT_USAGE;
}

bool ch_cli_parse_count(const char *s, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (*s == '\0' || *end || errno || v > max)
        return false;
    *out = v;
    return true;
}

int64_t ch_cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ch_cli_set_name_from_path(const char *path, char *out, size_t cap)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strcspn(b, ".");
    if (n == 0) /* a dot-file is named by all of its name */
        n = strlen(b);
    if (n > CH_REFSET_NAME_MAX)
        n = CH_REFSET_NAME_MAX;
    ch_intel_set_name(b, n, out, cap);
}

static bool is_ip_or_cidr(const char *s, size_t n)
{
    const char *slash = memchr(s, '/', n);
    ch_ip ip;
    return ch_ip_parse(s, slash ? (size_t)(slash - s) : n, &ip);
}

int ch_cli_import_list(ch_intel_store *st, const char *path, const char *set, ch_refset_type type,
                       const char *source, int64_t ttl_ms, FILE *out, ch_error *err)
{
    ch_refset *mem = NULL;
    ch_input *in = NULL;
    int rc;
    int64_t now = ch_cli_now_ms();
    if (type == 0) {
        ch_intel_set_info info;
        if (ch_intel_store_set_get(st, set, &info, NULL) == 0) {
            type = info.type;
        } else {
            if ((rc = ch_input_open(&in, path, 0, err)) < 0)
                return rc;
            long got = ch_input_fill(in, 65536, err);
            if (got < 0) {
                rc = (int)got;
                goto cleanup;
            }
            size_t n;
            const char *d = ch_input_data(in, &n);
            type = ch_intel_sniff_list_type(d, n);
            ch_input_close(in);
            in = NULL;
        }
    }
    if ((rc = ch_refset_new(&mem, set, type, NULL, err)) < 0)
        goto cleanup;
    ch_refset_load_opts lo;
    memset(&lo, 0, sizeof lo);
    lo.meta = ch_refset_meta_make(source, now);
    if (ttl_ms > 0)
        lo.meta.expiry = now + ttl_ms;
    ch_refset_load_stats ls;
    memset(&ls, 0, sizeof ls);
    ch_diag diag;
    ch_diag_init(&diag, stderr);
    if ((rc = ch_refset_load_path(mem, path, &lo, &diag, &ls, err)) < 0)
        goto cleanup;
    if ((rc = ch_intel_store_begin(st, err)) < 0)
        goto cleanup;
    if ((rc = ch_intel_store_set_ensure(st, set, type, 0, err)) < 0) {
        ch_intel_store_rollback(st);
        goto cleanup;
    }
    size_t cur = 0;
    const ch_refset_elem *e;
    int written = 0;
    char text[CH_REFSET_STRING_MAX + 1];
    while ((e = ch_refset_next(mem, &cur)) != NULL) {
        ch_refset_elem_text(mem, e, text, sizeof text);
        ch_refset_meta m = {e->source,    e->indicator,  e->first_seen,
                            e->last_seen, e->valid_from, e->expiry};
        if ((rc = ch_intel_store_elem_put(st, set, text, &m, now, err)) < 0) {
            ch_intel_store_rollback(st);
            goto cleanup;
        }
        written++;
    }
    if ((rc = ch_intel_store_commit(st, err)) < 0)
        goto cleanup;
    if (out != NULL)
        fprintf(out,
                "%s: set %s (%s): %d stored; lines %llu, bad %llu, unsupported %llu, wrong type "
                "%llu, dropped %llu\n",
                path, set, ch_refset_type_name(type), written, (unsigned long long)ls.lines,
                (unsigned long long)ls.bad, (unsigned long long)ls.unsupported,
                (unsigned long long)ls.wrong_type, (unsigned long long)ls.dropped);
    rc = written;
cleanup:
    ch_input_close(in);
    ch_refset_free(mem);
    return rc;
}

/* ---- the command ---------------------------------------------------------------------------- */

typedef struct opts {
    const char *action;
    const char *db;
    const char *format;
    const char *source;
    ch_refset_type type;
    int64_t ttl_ms;
    size_t limit;
    const char *pos[3];
    int npos;
} opts;

static int parse(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"db", required_argument, NULL, 'd'},     {"format", required_argument, NULL, 'f'},
        {"type", required_argument, NULL, 't'},   {"ttl", required_argument, NULL, 'T'},
        {"source", required_argument, NULL, 's'}, {"limit", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->format = "text";
    int c = ch_cli_action_start(argc, argv, usage, &o->action);
    if (c != -1)
        return c;
    int ac = argc - 1;
    char **av = argv + 1;
    while ((c = getopt_long(ac, av, ":d:f:t:T:s:l:h", lo, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->db = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "text") != 0 && strcmp(optarg, "json") != 0 &&
                strcmp(optarg, "stix") != 0) {
                fprintf(stderr, "coinhound refset: --format must be text, json or stix\n");
                return CH_EXIT_USAGE;
            }
            o->format = optarg;
            break;
        case 't':
            if (ch_refset_type_from_name(optarg, strlen(optarg), &o->type) < 0) {
                fprintf(stderr, "coinhound refset: unknown type '%s'\n", optarg);
                return CH_EXIT_USAGE;
            }
            break;
        case 'T':
            if (!ch_cli_parse_duration(optarg, &o->ttl_ms) || o->ttl_ms == 0) {
                fprintf(stderr, "coinhound refset: --ttl takes a duration like 24h, not '%s'\n",
                        optarg);
                return CH_EXIT_USAGE;
            }
            break;
        case 's':
            o->source = optarg;
            break;
        case 'l': {
            unsigned long v;
            if (!ch_cli_parse_count(optarg, ULONG_MAX, &v)) {
                fprintf(stderr, "coinhound refset: --limit takes a number, not '%s'\n", optarg);
                return CH_EXIT_USAGE;
            }
            o->limit = v;
            break;
        }
        case 'h':
            usage(stdout);
            return CH_EXIT_OK;
        default:
            return ch_cli_bad_option("coinhound refset", c, av);
        }
    }
    while (optind < ac) {
        if (o->npos == 3) {
            fprintf(stderr, "coinhound refset %s: unexpected argument '%s'\n", o->action,
                    av[optind]);
            return CH_EXIT_USAGE;
        }
        o->pos[o->npos++] = av[optind++];
    }
    return -1;
}

static int need(const opts *o, int n, const char *what)
{
    if (o->npos != n) {
        fprintf(stderr, "coinhound refset %s: expected %s\n", o->action, what);
        return CH_EXIT_USAGE;
    }
    return -1;
}

static void fmt_time(int64_t ms, int64_t none, char *buf)
{
    if (ms == none)
        strcpy(buf, "-");
    else
        ch_time_format(ms, buf);
}

typedef struct show_arg {
    const opts *o;
    ch_buf *b; /* for stix */
    size_t n, skipped;
    int64_t now;
} show_arg;

static int show_cb(void *arg, const ch_intel_elem_row *r)
{
    show_arg *a = arg;
    char f[40], l[40], vf[40], ex[40];
    if (strcmp(a->o->format, "stix") == 0) {
        size_t mark = a->b->len;
        if (a->n > 0 && ch_buf_addc(a->b, ',') < 0)
            return CH_ELIMIT;
        int rc = ch_stix_write_element(a->b, r->set, r->type, r->value, &r->meta, a->now);
        if (rc == CH_EUSAGE) {
            a->b->len = mark;
            a->b->data[mark] = '\0';
            a->skipped++;
            return 0;
        }
        if (rc < 0)
            return rc;
        a->n++;
        return 0;
    }
    fmt_time(r->meta.first_seen, INT64_MIN, f);
    fmt_time(r->meta.last_seen, INT64_MIN, l);
    fmt_time(r->meta.valid_from, CH_REFSET_ALWAYS, vf);
    fmt_time(r->meta.expiry, CH_REFSET_NEVER, ex);
    if (strcmp(a->o->format, "json") == 0) {
        ch_buf b;
        ch_buf_init(&b, 1 << 20);
        ch_buf_adds(&b, "{\"value\":");
        ch_buf_add_json_str(&b, r->value, strlen(r->value));
        ch_buf_adds(&b, ",\"source\":");
        ch_buf_add_json_str(&b, r->meta.source, strlen(r->meta.source));
        ch_buf_adds(&b, ",\"indicator\":");
        ch_buf_add_json_str(&b, r->meta.indicator, strlen(r->meta.indicator));
        ch_buf_printf(&b, ",\"first_seen\":\"%s\",\"last_seen\":\"%s\"", f, l);
        if (r->meta.valid_from != CH_REFSET_ALWAYS)
            ch_buf_printf(&b, ",\"valid_from\":\"%s\"", vf);
        if (r->meta.expiry != CH_REFSET_NEVER)
            ch_buf_printf(&b, ",\"expiry\":\"%s\"", ex);
        ch_buf_adds(&b, "}");
        printf("%s%s\n", a->n > 0 ? "," : "", b.data);
        ch_buf_free(&b);
    } else if (strcmp(a->o->action, "export") == 0) {
        printf("%s\n", r->value);
    } else {
        printf("%-40s %-20s %-50s %s .. %s\n", r->value, r->meta.source[0] ? r->meta.source : "-",
               r->meta.indicator[0] ? r->meta.indicator : "-", vf, ex);
    }
    a->n++;
    return 0;
}

static int open_db(const opts *o, bool create, ch_intel_store **st)
{
    ch_error err = {0};
    int rc = create ? ch_intel_store_open(o->db, st, &err)
                    : ch_intel_store_open_existing(o->db, st, &err);
    if (rc < 0) {
        fprintf(stderr, "coinhound refset: %s\n", err.msg);
        return CH_EXIT_FAIL;
    }
    return -1;
}

static int run(const opts *o, ch_intel_store *st)
{
    ch_error err = {0};
    int rc = 0;
    const char *a = o->action;
    if (strcmp(a, "list") == 0) {
        ch_intel_set_info *v = NULL;
        size_t n = 0;
        if ((rc = ch_intel_store_set_list(st, &v, &n, &err)) < 0)
            goto fail;
        printf("%-32s %-7s %10s %s\n", "NAME", "TYPE", "COUNT", "SHAREABLE");
        for (size_t i = 0; i < n; i++)
            printf("%-32s %-7s %10lld %s\n", v[i].name, ch_refset_type_name(v[i].type),
                   (long long)v[i].count, v[i].shareable ? "yes" : "no");
        ch_free(v);
        return CH_EXIT_OK;
    }
    if (strcmp(a, "show") == 0 || strcmp(a, "export") == 0) {
        ch_intel_set_info info;
        if ((rc = ch_intel_store_set_get(st, o->pos[0], &info, &err)) < 0)
            goto fail;
        ch_buf b;
        ch_buf_init(&b, (size_t)1 << 31);
        show_arg sa = {o, &b, 0, 0, ch_cli_now_ms()};
        ch_intel_elem_query q = {o->pos[0], false, false, INT64_MIN,
                                 strcmp(a, "show") == 0 ? (o->limit ? o->limit : 100) : 0};
        bool json = strcmp(o->format, "json") == 0, stix = strcmp(o->format, "stix") == 0;
        if (strcmp(a, "show") == 0)
            printf("%s (%s, %lld elements%s)\n", info.name, ch_refset_type_name(info.type),
                   (long long)info.count, info.shareable ? ", shareable" : "");
        if (json)
            printf("[\n");
        rc = ch_intel_store_each_elem(st, &q, show_cb, &sa, &err);
        if (json)
            printf("]\n");
        if (stix && rc >= 0) {
            char id[48];
            char stamp[32];
            snprintf(stamp, sizeof stamp, "%lld", (long long)sa.now);
            ch_stix_element_id(info.name, stamp, id);
            printf("{\"type\":\"bundle\",\"id\":\"bundle--%s\",\"objects\":[%s]}\n", id + 11,
                   b.data ? b.data : "");
            if (sa.skipped > 0)
                fprintf(stderr, "coinhound refset: %zu elements have no STIX form (skipped)\n",
                        sa.skipped);
        }
        ch_buf_free(&b);
        if (rc < 0) {
            if (err.msg[0] == '\0')
                ch_error_set(&err, rc, "export failed: %s", ch_strerror(rc));
            goto fail;
        }
        return CH_EXIT_OK;
    }
    if (strcmp(a, "add") == 0 || strcmp(a, "remove") == 0) {
        ch_intel_set_info info;
        ch_refset_type type = o->type;
        bool exists = ch_intel_store_set_get(st, o->pos[0], &info, NULL) == 0;
        if (exists)
            type = info.type;
        else if (strcmp(a, "remove") == 0) {
            rc = ch_error_set(&err, CH_ENOTFOUND, "no reference set '%s'", o->pos[0]);
            goto fail;
        } else if (type == 0)
            type = is_ip_or_cidr(o->pos[1], strlen(o->pos[1])) ? CH_REFSET_IP : CH_REFSET_DOMAIN;
        char norm[CH_REFSET_STRING_MAX + 1];
        if (ch_intel_normalize_value(type, o->pos[1], strlen(o->pos[1]), norm, sizeof norm, &err) <
            0) {
            fprintf(stderr, "coinhound refset: '%s' is not a %s value: %s\n", o->pos[1],
                    ch_refset_type_name(type), err.msg);
            return CH_EXIT_USAGE;
        }
        if (strcmp(a, "remove") == 0) {
            if ((rc = ch_intel_store_elem_remove(st, o->pos[0], norm, NULL, NULL, &err)) < 0)
                goto fail;
            printf("removed %s from %s (%d element%s)\n", norm, o->pos[0], rc, rc == 1 ? "" : "s");
            return CH_EXIT_OK;
        }
        int64_t now = ch_cli_now_ms();
        ch_refset_meta m = ch_refset_meta_make(o->source ? o->source : "cli", now);
        if (o->ttl_ms > 0)
            m.expiry = now + o->ttl_ms;
        if ((rc = ch_intel_store_begin(st, &err)) < 0)
            goto fail;
        if ((rc = ch_intel_store_set_ensure(st, o->pos[0], type, 0, &err)) < 0 ||
            (rc = ch_intel_store_elem_put(st, o->pos[0], norm, &m, now, &err)) < 0) {
            ch_intel_store_rollback(st);
            goto fail;
        }
        if ((rc = ch_intel_store_commit(st, &err)) < 0)
            goto fail;
        printf("added %s to %s (%s)\n", norm, o->pos[0], ch_refset_type_name(type));
        return CH_EXIT_OK;
    }
    if (strcmp(a, "import") == 0) {
        rc = ch_cli_import_list(st, o->pos[1], o->pos[0], o->type,
                                o->source ? o->source : o->pos[1], o->ttl_ms, stdout, &err);
        if (rc < 0)
            goto fail;
        return CH_EXIT_OK;
    }
    if (strcmp(a, "share") == 0 || strcmp(a, "unshare") == 0) {
        if ((rc = ch_intel_store_set_share(st, o->pos[0], strcmp(a, "share") == 0, &err)) < 0)
            goto fail;
        printf("%s is %s\n", o->pos[0], strcmp(a, "share") == 0 ? "shareable" : "not shareable");
        return CH_EXIT_OK;
    }
    if (strcmp(a, "drop") == 0) {
        if ((rc = ch_intel_store_set_drop(st, o->pos[0], &err)) < 0)
            goto fail;
        printf("dropped %s\n", o->pos[0]);
        return CH_EXIT_OK;
    }
    return CH_EXIT_USAGE;
fail:
    fprintf(stderr, "coinhound refset: %s\n", err.msg[0] ? err.msg : ch_strerror(rc));
    return CH_EXIT_FAIL;
}

int ch_cmd_refset(int argc, char **argv)
{
    opts o;
    int rc = parse(argc, argv, &o);
    if (rc >= 0)
        return rc;
    static const struct {
        const char *name;
        int npos;
        const char *what;
        bool writes;
    } actions[] = {
        {"list", 0, "no arguments", false}, {"show", 1, "NAME", false},
        {"export", 1, "NAME", false},       {"add", 2, "NAME VALUE", true},
        {"remove", 2, "NAME VALUE", true},  {"import", 2, "NAME FILE", true},
        {"share", 1, "NAME", true},         {"unshare", 1, "NAME", true},
        {"drop", 1, "NAME", true},
    };
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++) {
        if (strcmp(actions[i].name, o.action) != 0)
            continue;
        if ((rc = need(&o, actions[i].npos, actions[i].what)) >= 0)
            return rc;
        ch_intel_store *st = NULL;
        if ((rc = open_db(&o, actions[i].writes, &st)) >= 0)
            return rc;
        rc = run(&o, st);
        ch_intel_store_close(st);
        return rc;
    }
    fprintf(stderr, "coinhound refset: unknown action '%s'\n", o.action);
    usage(stderr);
    return CH_EXIT_USAGE;
}
