/*
 * cmd_search.c - `coinhound search EXPR`, `coinhound store stats|verify|retention|compact|hot`.
 *
 * search runs a ch_search in place over the local event store of --db and prints the kept
 * matches (table, json, jsonl as `analyze --events` writes events, csv) or the aggregation
 * (--count-by, --top, --histogram). The reference sets stored in --db resolve `in $name`.
 * Summary lines (matches, segments read, damaged segments) go to stderr so stdout stays
 * machine-readable.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd_search.h"
#include "core/mem.h"
#include "core/timeparse.h"
#include "enrich/refset.h"
#include "intel/intel_store.h"
#include "offense/offense.h"
#include "offense/store.h"
#include "output/output.h"
#include "rules/rule.h"
#include "store/evstore.h"
#include "store/retro.h"
#include "store/offense_events.h"
#include "store/search.h"

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Open the SQLite store of path only if it exists: a search must not create a database. */
static int open_db(const char *path, ch_store **db, ch_error *err)
{
    char def[4096];
    if (path == NULL) {
        if (ch_store_default_path(def, sizeof def) < 0)
            return ch_error_set(err, CH_ELIMIT, "default database path too long");
        path = def;
    }
    if (access(path, F_OK) != 0)
        return ch_error_set(err, CH_ENOTFOUND, "%s: no such database", path);
    return ch_store_open(path, db, err);
}

static const char *const default_fields[] = {
    "@timestamp", "event.dataset",  "event.action",      "user.name",
    "source.ip",  "destination.ip", "cloud.instance.id", "dns.question.name"};

typedef struct cols {
    char *names[64];
    ch_field_ref *refs[64];
    size_t n;
} cols;

static void cols_free(cols *c)
{
    for (size_t i = 0; i < c->n; i++) {
        ch_free(c->names[i]);
        ch_field_ref_free(c->refs[i]);
    }
}

static int cols_add(cols *c, const char *p, size_t n, ch_error *err)
{
    if (c->n == 64)
        return ch_error_set(err, CH_ELIMIT, "at most 64 --fields");
    if ((c->names[c->n] = ch_malloc(n + 1)) == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    memcpy(c->names[c->n], p, n);
    c->names[c->n][n] = '\0';
    int rc = ch_field_resolve(p, n, &c->refs[c->n], err);
    if (rc < 0) {
        ch_free(c->names[c->n]);
        return rc;
    }
    c->n++;
    return 0;
}

static int cols_parse(cols *c, const char *list, ch_error *err)
{
    if (list == NULL) {
        for (size_t i = 0; i < sizeof default_fields / sizeof *default_fields; i++) {
            int rc = cols_add(c, default_fields[i], strlen(default_fields[i]), err);
            if (rc < 0)
                return rc;
        }
        return 0;
    }
    const char *p = list;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 0)
            return ch_error_set(err, CH_EUSAGE, "empty field name in --fields '%s'", list);
        int rc = cols_add(c, p, n, err);
        if (rc < 0)
            return rc;
        p += n;
        if (*p == ',')
            p++;
    }
    return 0;
}

/* The value of column i as text into buf (times in ISO 8601). */
static ch_sv col_text(const cols *c, size_t i, const ch_event *ev, char *buf, size_t cap)
{
    ch_value v;
    if (!ch_field_first(c->refs[i], ev, NULL, &v))
        return (ch_sv){"", 0};
    const ch_field_info *fi = ch_field_ref_info(c->refs[i]);
    if (fi && fi->is_time && v.type == CH_V_INT && cap >= 32) {
        size_t n = ch_time_format(v.u.i, buf);
        return (ch_sv){buf, (uint32_t)n};
    }
    char tb[CH_VALUE_TEXT_MAX];
    ch_sv t = ch_value_text(&v, tb);
    size_t n = t.n < cap - 1 ? t.n : cap - 1;
    memcpy(buf, t.p, n);
    buf[n] = '\0';
    return (ch_sv){buf, (uint32_t)n};
}

static void csv_field(FILE *f, ch_sv s)
{
    bool q = false;
    for (uint32_t i = 0; i < s.n; i++)
        if (s.p[i] == ',' || s.p[i] == '"' || s.p[i] == '\n' || s.p[i] == '\r')
            q = true;
    if (!q) {
        fwrite(s.p, 1, s.n, f);
        return;
    }
    fputc('"', f);
    for (uint32_t i = 0; i < s.n; i++) {
        if (s.p[i] == '"')
            fputc('"', f);
        fputc(s.p[i], f);
    }
    fputc('"', f);
}

static void json_str(FILE *f, const char *p, size_t n)
{
    ch_buf b;
    ch_buf_init(&b, (size_t)1 << 30);
    if (ch_buf_add_json_str(&b, p, n) == 0)
        fwrite(b.data, 1, b.len, f);
    ch_buf_free(&b);
}

static int print_events(ch_search *s, const char *format, const cols *c, FILE *f, ch_error *err)
{
    size_t n = ch_search_nresults(s);
    ch_buf b;
    ch_buf_init(&b, (size_t)1 << 30);
    int rc = 0;
    char buf[4096];
    if (strcmp(format, "json") == 0)
        fputs("{\"events\":[", f);
    if (strcmp(format, "csv") == 0 || strcmp(format, "table") == 0) {
        for (size_t i = 0; i < c->n; i++) {
            if (strcmp(format, "csv") == 0) {
                if (i)
                    fputc(',', f);
                csv_field(f, (ch_sv){c->names[i], (uint32_t)strlen(c->names[i])});
            } else {
                fprintf(f, i + 1 < c->n ? "%-24s " : "%s", c->names[i]);
            }
        }
        fputc('\n', f);
    }
    for (size_t i = 0; i < n && rc == 0; i++) {
        const ch_event *ev;
        if ((rc = ch_search_result(s, i, &ev, NULL, err)) < 0)
            break;
        if (strcmp(format, "jsonl") == 0 || strcmp(format, "json") == 0) {
            ch_buf_clear(&b);
            if (ch_event_to_json(ev, &b) < 0) {
                rc = ch_error_set(err, CH_ENOMEM, "out of memory");
                break;
            }
            if (strcmp(format, "json") == 0 && i)
                fputc(',', f);
            fwrite(b.data, 1, b.len, f);
            if (strcmp(format, "jsonl") == 0)
                fputc('\n', f);
            continue;
        }
        for (size_t k = 0; k < c->n; k++) {
            ch_sv t = col_text(c, k, ev, buf, sizeof buf);
            if (strcmp(format, "csv") == 0) {
                if (k)
                    fputc(',', f);
                csv_field(f, t);
            } else {
                if (t.n == 0)
                    t = (ch_sv){"-", 1};
                fprintf(f, k + 1 < c->n ? "%-24.*s " : "%.*s", (int)t.n, t.p);
            }
        }
        fputc('\n', f);
    }
    if (strcmp(format, "json") == 0) {
        ch_search_progress p;
        ch_search_progress_get(s, &p);
        fprintf(f, "],\"count\":%zu,\"matched\":%" PRIu64 ",\"state\":\"%s\"}\n", n,
                p.events_matched, ch_search_state_name(p.state));
    }
    ch_buf_free(&b);
    return rc;
}

static void print_groups(ch_search *s, const char *format, FILE *f)
{
    const char *const *names;
    size_t nf = ch_search_group_fields(s, &names);
    size_t ng = ch_search_ngroups(s);
    bool json = strcmp(format, "json") == 0 || strcmp(format, "jsonl") == 0;
    if (strcmp(format, "json") == 0)
        fputs("{\"groups\":[", f);
    else if (!json) {
        for (size_t i = 0; i < nf; i++) {
            if (strcmp(format, "csv") == 0)
                fprintf(f, "%s,", names[i]);
            else
                fprintf(f, "%-32s ", names[i]);
        }
        fputs("count\n", f);
    }
    for (size_t g = 0; g < ng; g++) {
        const char *key;
        uint64_t cnt;
        ch_search_group(s, g, &key, &cnt);
        const char *p = key;
        if (json && g && strcmp(format, "json") == 0)
            fputc(',', f);
        if (json)
            fputc('{', f);
        for (size_t i = 0; i < nf; i++) {
            const char *e = strchr(p, '\x1f');
            size_t n = e ? (size_t)(e - p) : strlen(p);
            if (json) {
                json_str(f, names[i], strlen(names[i]));
                fputc(':', f);
                json_str(f, p, n);
                fputc(',', f);
            } else if (strcmp(format, "csv") == 0) {
                csv_field(f, (ch_sv){p, (uint32_t)n});
                fputc(',', f);
            } else {
                fprintf(f, "%-32.*s ", (int)n, n ? p : "-");
            }
            p += n + (e ? 1 : 0);
        }
        if (json)
            fprintf(f, "\"count\":%" PRIu64 "}%s", cnt, strcmp(format, "jsonl") == 0 ? "\n" : "");
        else
            fprintf(f, "%" PRIu64 "\n", cnt);
    }
    if (strcmp(format, "json") == 0)
        fputs("]}\n", f);
}

static void print_histogram(ch_search *s, const char *format, FILE *f)
{
    size_t n = ch_search_nbuckets(s);
    bool json = strcmp(format, "json") == 0;
    if (json)
        fputs("{\"buckets\":[", f);
    else if (strcmp(format, "csv") == 0)
        fputs("start,count\n", f);
    else if (strcmp(format, "table") == 0)
        fputs("start                     count\n", f);
    for (size_t i = 0; i < n; i++) {
        int64_t st;
        uint64_t cnt;
        char ts[32];
        ch_search_bucket(s, i, &st, &cnt);
        ch_time_format(st, ts);
        if (json)
            fprintf(f, "%s{\"start\":\"%s\",\"count\":%" PRIu64 "}", i ? "," : "", ts, cnt);
        else if (strcmp(format, "jsonl") == 0)
            fprintf(f, "{\"start\":\"%s\",\"count\":%" PRIu64 "}\n", ts, cnt);
        else if (strcmp(format, "csv") == 0)
            fprintf(f, "%s,%" PRIu64 "\n", ts, cnt);
        else
            fprintf(f, "%-25s %" PRIu64 "\n", ts, cnt);
    }
    if (json)
        fputs("]}\n", f);
}

static void search_usage(FILE *f)
{
    fprintf(f,
            "usage: coinhound search 'EXPR' [--db FILE] [--from T] [--to T] [--fields a,b,...]\n"
            "         [--limit N] [--format table|json|jsonl|csv] [--count-by f[,g]] [--top f]\n"
            "         [--histogram 1h] [--sort asc] [--explain] [--threads N]\n\n"
            "Search the stored events (the event store beside --db) with an expression in the\n"
            "rules' language (docs/EXPRESSIONS.md), newest first. Tests on user.name, user.id,\n"
            "user.access_key_id, source.ip, destination.ip, dns.question.name,\n"
            "cloud.instance.id, network.interface.id and event.action use the segments'\n"
            "indexes; anything else is evaluated per event.\n\n"
            "Options:\n"
            "      --db FILE        the store (default: <data dir>/coinhound.db)\n"
            "      --from T, --to T time range: 2026-01-05T10:00:00Z, 2026-01-05, 7d (ago)\n"
            "      --fields LIST    columns of table and csv output\n"
            "      --limit N        matches printed (default %d); groups for --top (default 10)\n"
            "      --format FMT     table (default), json, jsonl (events as analyze --events\n"
            "                       writes them), csv\n"
            "      --count-by LIST  count matches per value (combination) instead of listing\n"
            "      --top FIELD      the most frequent values of FIELD\n"
            "      --histogram DUR  matches per time bucket (1h, 10m, 1d)\n"
            "      --sort asc       oldest first\n"
            "      --explain        say which segments were read and why (stderr)\n"
            "      --timeout DUR    stop after DUR with partial results (default none)\n"
            "      --threads N      segments read at once (default: one per CPU, at most %d)\n"
            "      --no-index       evaluate every event (checks the indexes; benchmarks)\n\n"
            "Exit status: 0 searched (damaged segments are reported and skipped); 1 the store\n"
            "could not be read; 2 usage error, including an expression error (line:column).\n",
            CH_SEARCH_DEFAULT_LIMIT, CH_SEARCH_MAX_THREADS);
}

int ch_cmd_search(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'D'},
        {"from", required_argument, NULL, 'F'},
        {"to", required_argument, NULL, 'T'},
        {"fields", required_argument, NULL, 'f'},
        {"limit", required_argument, NULL, 'l'},
        {"format", required_argument, NULL, 'o'},
        {"count-by", required_argument, NULL, 'c'},
        {"top", required_argument, NULL, 't'},
        {"histogram", required_argument, NULL, 'H'},
        {"sort", required_argument, NULL, 's'},
        {"explain", no_argument, NULL, 'x'},
        {"no-index", no_argument, NULL, 'N'},
        {"timeout", required_argument, NULL, 'O'},
        {"threads", required_argument, NULL, 'P'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db_path = NULL, *from = NULL, *to = NULL, *fields = NULL, *format = "table";
    ch_search_opts so = {0};
    bool limit_set = false;
    int c;
    ch_error err = {0};
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'D':
            db_path = optarg;
            break;
        case 'F':
            from = optarg;
            break;
        case 'T':
            to = optarg;
            break;
        case 'f':
            fields = optarg;
            break;
        case 'l': {
            char *e = NULL;
            unsigned long long v = strtoull(optarg, &e, 10);
            if (e == optarg || *e || v == 0 || v > 100000000ull) {
                fprintf(stderr, "coinhound search: --limit '%s': a number from 1\n", optarg);
                return CH_EXIT_USAGE;
            }
            so.limit = v;
            limit_set = true;
            break;
        }
        case 'o':
            format = optarg;
            break;
        case 'c':
            so.count_by = optarg;
            break;
        case 't':
            so.top = optarg;
            break;
        case 'H':
            if (!ch_duration_parse(optarg, strlen(optarg), &so.histogram_ms) ||
                so.histogram_ms <= 0) {
                fprintf(stderr, "coinhound search: --histogram '%s': a duration (1h, 10m)\n",
                        optarg);
                return CH_EXIT_USAGE;
            }
            break;
        case 's':
            if (strcmp(optarg, "asc") == 0)
                so.asc = true;
            else if (strcmp(optarg, "desc") != 0) {
                fprintf(stderr, "coinhound search: --sort '%s': asc or desc\n", optarg);
                return CH_EXIT_USAGE;
            }
            break;
        case 'x':
            so.explain = true;
            break;
        case 'N':
            so.no_index = true;
            break;
        case 'O':
            if (!ch_duration_parse(optarg, strlen(optarg), &so.max_ms) || so.max_ms <= 0) {
                fprintf(stderr, "coinhound search: --timeout '%s': a duration\n", optarg);
                return CH_EXIT_USAGE;
            }
            break;
        case 'P': {
            char *e = NULL;
            unsigned long v = strtoul(optarg, &e, 10);
            if (e == optarg || *e || v == 0 || v > CH_SEARCH_MAX_THREADS) {
                fprintf(stderr, "coinhound search: --threads '%s': a number from 1 to %d\n", optarg,
                        CH_SEARCH_MAX_THREADS);
                return CH_EXIT_USAGE;
            }
            so.threads = (unsigned)v;
            break;
        }
        case 'h':
            search_usage(stdout);
            return CH_EXIT_OK;
        case ':':
            fprintf(stderr, "coinhound search: %s needs a value\n", argv[optind - 1]);
            return CH_EXIT_USAGE;
        default:
            fprintf(stderr, "coinhound search: unknown option '%s'\n", argv[optind - 1]);
            search_usage(stderr);
            return CH_EXIT_USAGE;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "coinhound search: give one expression (quote it)\n");
        search_usage(stderr);
        return CH_EXIT_USAGE;
    }
    if (strcmp(format, "table") != 0 && strcmp(format, "json") != 0 &&
        strcmp(format, "jsonl") != 0 && strcmp(format, "csv") != 0) {
        fprintf(stderr, "coinhound search: --format '%s': table, json, jsonl or csv\n", format);
        return CH_EXIT_USAGE;
    }
    if (so.top && !limit_set)
        so.limit = 10;
    int64_t now = wall_ms();
    if ((from && ch_search_parse_time(from, now, &so.from_ms, &err) < 0) ||
        (to && ch_search_parse_time(to, now, &so.to_ms, &err) < 0)) {
        fprintf(stderr, "coinhound search: %s\n", err.msg);
        return CH_EXIT_USAGE;
    }
    if (from && !to)
        so.to_ms = INT64_MAX;
    if (to && !from)
        so.from_ms = INT64_MIN;
    so.expr = argv[optind];
    int status = CH_EXIT_OK;
    ch_store *db = NULL;
    ch_evstore *es = NULL;
    ch_refsets *sets = NULL;
    ch_intel_store *ist = NULL;
    ch_search *s = NULL;
    cols cl = {0};
    ch_expr_env env;
    if (open_db(db_path, &db, &err) < 0) {
        fprintf(stderr, "coinhound search: %s\n", err.msg);
        status = CH_EXIT_FAIL;
        goto cleanup;
    }
    /* Sets stored in the database (reference sets, threat intelligence) for `in $name`. */
    if (ch_refsets_new(&sets) < 0 ||
        ch_intel_store_open_existing(ch_store_path(db), &ist, &err) < 0 ||
        ch_intel_store_load_refsets(ist, sets, now, &err) < 0) {
        fprintf(stderr, "coinhound search: %s\n", err.msg[0] ? err.msg : "out of memory");
        status = CH_EXIT_FAIL;
        goto cleanup;
    }
    ch_rule_env_init(&env, sets);
    so.env = &env;
    if (ch_search_new(&so, &s, &err) < 0) {
        fprintf(stderr, "coinhound search: %s\n", err.msg);
        status = CH_EXIT_USAGE;
        goto cleanup;
    }
    if (cols_parse(&cl, fields, &err) < 0) {
        fprintf(stderr, "coinhound search: --fields: %s\n", err.msg);
        status = CH_EXIT_USAGE;
        goto cleanup;
    }
    if (ch_evstore_open_local(db, false, NULL, &es, &err) < 0 || ch_search_run(s, es, &err) < 0) {
        fprintf(stderr, "coinhound search: %s\n", err.msg);
        status = CH_EXIT_FAIL;
        goto cleanup;
    }
    if (so.explain)
        fputs(ch_search_explain(s), stderr);
    const char *dmg = ch_search_damaged(s);
    if (dmg[0])
        fprintf(stderr, "coinhound search: damaged segments skipped:\n%s", dmg);
    if (so.count_by || so.top)
        print_groups(s, format, stdout);
    else if (so.histogram_ms > 0)
        print_histogram(s, format, stdout);
    else if (print_events(s, format, &cl, stdout, &err) < 0) {
        fprintf(stderr, "coinhound search: %s\n", err.msg);
        status = CH_EXIT_FAIL;
        goto cleanup;
    }
    ch_search_progress p;
    ch_search_progress_get(s, &p);
    fprintf(stderr,
            "%" PRIu64 " events matched; %" PRIu64 " evaluated; segments: %" PRIu64
            " read, %" PRIu64 " skipped, %" PRIu64 " damaged; %.1f ms (%s)\n",
            p.events_matched, p.events_scanned,
            p.segments_done - p.segments_skipped - p.segments_damaged, p.segments_skipped,
            p.segments_damaged, p.elapsed_ms, ch_search_state_name(p.state));
cleanup:
    cols_free(&cl);
    ch_search_free(s);
    ch_evstore_close(es);
    ch_intel_store_close(ist);
    ch_refsets_free(sets);
    ch_store_close(db);
    return status;
}

/* ---- store ---- */

static void verify_line(void *ud, const char *path, uint64_t events, const char *problem)
{
    (void)ud;
    if (problem)
        printf("DAMAGED %s: %s\n", path, problem);
    else
        printf("ok      %s (%" PRIu64 " events)\n", path, events);
}

static void store_usage(FILE *f)
{
    fprintf(f, "usage: coinhound store stats [--db FILE] [--format table|json]\n"
               "       coinhound store verify [--db FILE]\n"
               "       coinhound store retention [--db FILE] [AGE,SIZE | none]\n"
               "       coinhound store compact [--db FILE] [--format table|json]\n"
               "       coinhound store hot [--db FILE] [auto | on | off | raw]\n\n"
               "stats: events, bytes, segments (hot ones among them) and time range per source\n"
               "type of the event store beside --db. verify: check every sealed segment's\n"
               "checksums and records; exit 1 when one is damaged. retention: show or set the\n"
               "retention that analyze and serve apply (30d, 10GB, 30d,10GB; none keeps\n"
               "everything). compact: rewrite every hot segment cold (full compression) and merge\n"
               "each source's hour into one segment; serve does it by itself once an hour has\n"
               "closed, analyze leaves it to this command. hot: show or set whether analyze and\n"
               "serve seal segments hot (cheap to write, larger) or cold (off); on: hot at\n"
               "zstd level 1; raw: hot with frames stored uncompressed (cheapest to write, about\n"
               "5x larger until compacted); auto (the default): raw while the store's hot bytes\n"
               "stay under 4 GiB, an eighth of the free disk and an eighth of a size retention,\n"
               "level 1 after.\n");
}

/* `store compact`: what it did, and the CPU it took (docs/BENCHMARKS.md rates compaction by
 * CPU per event). */
static int store_compact(ch_store *db, bool json)
{
    ch_evstore_compact_result r;
    ch_error err = {0};
    struct timespec t0, t1; /* the process's CPU, user and system, every thread */
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    if (ch_evstore_compact(db, &r, &err) < 0) {
        fprintf(stderr, "coinhound store: %s\n", err.msg);
        return err.code == CH_EUSAGE ? CH_EXIT_USAGE : CH_EXIT_FAIL;
    }
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    double cpu = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (json)
        printf("{\"merges\":%" PRIu64 ",\"inputs\":%" PRIu64 ",\"hot_inputs\":%" PRIu64
               ",\"events\":%" PRIu64 ",\"bytes_in\":%" PRIu64 ",\"bytes_out\":%" PRIu64
               ",\"removed\":%" PRIu64 ",\"failed\":%" PRIu64 ",\"cpu_s\":%.3f}\n",
               r.merges, r.inputs, r.hot_inputs, r.events, r.bytes_in, r.bytes_out, r.removed,
               r.failed, cpu);
    else
        printf("compacted %" PRIu64 " segments (%" PRIu64 " hot) into %" PRIu64 ": %" PRIu64
               " events, %" PRIu64 " -> %" PRIu64 " bytes, %.2f s CPU\n",
               r.inputs, r.hot_inputs, r.merges, r.events, r.bytes_in, r.bytes_out, cpu);
    if (r.failed) {
        fprintf(stderr,
                "coinhound store: %" PRIu64
                " merge%s failed (first: %s); run 'coinhound store verify'\n",
                r.failed, r.failed == 1 ? "" : "s", r.first_failure);
        return CH_EXIT_FAIL;
    }
    return CH_EXIT_OK;
}

int ch_cmd_store(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'D'},
        {"format", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    if (argc < 2) {
        store_usage(stderr);
        return CH_EXIT_USAGE;
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        store_usage(stdout);
        return CH_EXIT_OK;
    }
    const char *db_path = NULL, *format = "table";
    int c;
    optind = 2;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'D':
            db_path = optarg;
            break;
        case 'o':
            format = optarg;
            break;
        case 'h':
            store_usage(stdout);
            return CH_EXIT_OK;
        default:
            fprintf(stderr, "coinhound store: bad option '%s'\n", argv[optind - 1]);
            return CH_EXIT_USAGE;
        }
    }
    bool stats = strcmp(sub, "stats") == 0, verify = strcmp(sub, "verify") == 0,
         ret = strcmp(sub, "retention") == 0, compact = strcmp(sub, "compact") == 0,
         hot = strcmp(sub, "hot") == 0;
    if (!stats && !verify && !ret && !compact && !hot) {
        fprintf(stderr, "coinhound store: unknown subcommand '%s'\n", sub);
        store_usage(stderr);
        return CH_EXIT_USAGE;
    }
    bool setting = ret || hot; /* one optional value */
    if ((setting && optind + 1 < argc) || (!setting && optind != argc) ||
        (hot && optind < argc && !ch_evstore_hot_known(argv[optind])) ||
        (strcmp(format, "table") != 0 && strcmp(format, "json") != 0)) {
        store_usage(stderr);
        return CH_EXIT_USAGE;
    }
    ch_error err = {0};
    ch_store *db = NULL;
    ch_evstore *es = NULL;
    int status = CH_EXIT_OK;
    if (open_db(db_path, &db, &err) < 0) {
        fprintf(stderr, "coinhound store: %s\n", err.msg);
        return CH_EXIT_FAIL;
    }
    if (ret) {
        if (optind < argc) {
            const char *v = strcmp(argv[optind], "none") == 0 ? "" : argv[optind];
            if (ch_evstore_retention_save(db, v, &err) < 0) {
                fprintf(stderr, "coinhound store: %s\n", err.msg);
                status = err.code == CH_EPARSE ? CH_EXIT_USAGE : CH_EXIT_FAIL;
            }
        } else {
            void *v = NULL;
            size_t n = 0;
            int rc = ch_store_get_state(db, "evstore_retention", &v, &n, &err);
            printf("%s\n", rc == 0 && n ? (const char *)v : "none");
            ch_free(v);
        }
        goto cleanup;
    }
    if (hot) {
        const char *mode = "auto";
        if (optind < argc) {
            if (ch_evstore_hot_set(db, argv[optind], &err) < 0) {
                fprintf(stderr, "coinhound store: %s\n", err.msg);
                status = err.code == CH_EUSAGE ? CH_EXIT_USAGE : CH_EXIT_FAIL;
            }
        } else if (ch_evstore_hot_mode(db, &mode, &err) < 0) {
            fprintf(stderr, "coinhound store: %s\n", err.msg);
            status = CH_EXIT_FAIL;
        } else
            printf("%s\n", mode);
        goto cleanup;
    }
    if (compact) {
        status = store_compact(db, strcmp(format, "json") == 0);
        goto cleanup;
    }
    if (ch_evstore_open_local(db, false, NULL, &es, &err) < 0) {
        fprintf(stderr, "coinhound store: %s\n", err.msg);
        status = CH_EXIT_FAIL;
        goto cleanup;
    }
    if (verify) {
        long bad = es->ops->verify(es->impl, verify_line, NULL, &err);
        if (bad < 0) {
            fprintf(stderr, "coinhound store: %s\n", err.msg);
            status = CH_EXIT_FAIL;
        } else if (bad > 0) {
            fprintf(stderr, "coinhound store: %ld damaged segment%s\n", bad, bad == 1 ? "" : "s");
            status = CH_EXIT_FAIL;
        }
        goto cleanup;
    }
    ch_evstore_stats st;
    if (es->ops->stats(es->impl, &st, &err) < 0) {
        fprintf(stderr, "coinhound store: %s\n", err.msg);
        status = CH_EXIT_FAIL;
        goto cleanup;
    }
    bool json = strcmp(format, "json") == 0;
    if (json)
        printf("{\"sources\":[");
    else
        printf("%-18s %12s %9s %14s %14s %5s %14s %-24s %-24s\n", "source", "events", "segments",
               "bytes", "raw_bytes", "hot", "hot_bytes", "from", "to");
    int k = 0;
    for (int d = 0; d < CH_DS__COUNT; d++) {
        const ch_evstore_source_stats *s = &st.by_ds[d];
        if (s->segments == 0)
            continue;
        char a[32] = "-", b[32] = "-";
        if (s->events) {
            ch_time_format(s->min_ts, a);
            ch_time_format(s->max_ts, b);
        }
        if (json)
            printf("%s{\"source\":\"%s\",\"events\":%" PRIu64 ",\"segments\":%" PRIu64
                   ",\"bytes\":%" PRIu64 ",\"raw_bytes\":%" PRIu64 ",\"hot_segments\":%" PRIu64
                   ",\"hot_bytes\":%" PRIu64 ",\"from\":\"%s\",\"to\":\"%s\"}",
                   k++ ? "," : "", ch_dataset_name((ch_dataset)d), s->events, s->segments, s->bytes,
                   s->raw_bytes, s->hot_segments, s->hot_bytes, a, b);
        else
            printf("%-18s %12" PRIu64 " %9" PRIu64 " %14" PRIu64 " %14" PRIu64 " %5" PRIu64
                   " %14" PRIu64 " %-24s %-24s\n",
                   ch_dataset_name((ch_dataset)d), s->events, s->segments, s->bytes, s->raw_bytes,
                   s->hot_segments, s->hot_bytes, a, b);
    }
    if (json)
        printf("],\"damaged\":%" PRIu64 "}\n", st.damaged);
    else if (st.damaged)
        printf("damaged segments: %" PRIu64 " (run 'coinhound store verify')\n", st.damaged);
cleanup:
    ch_evstore_close(es);
    ch_store_close(db);
    return status;
}

/* ---- hunt ---- */

static void hunt_msg(void *ud, const char *msg)
{
    (void)ud;
    fprintf(stderr, "%s\n", msg);
}

static void hunt_usage(FILE *f)
{
    fprintf(f, "usage: coinhound hunt [--db FILE] [--since 30d] [--set NAME] [--pack DIR]\n\n"
               "Retro-hunt: match the stored events of the last --since (default 30d) against\n"
               "the threat intelligence stored in --db, at each event's own time, and raise\n"
               "CJ-MINE-03 (evidence 'retro: true') in the offense of the linked user for each\n"
               "match the event did not have when it was ingested. Running it again raises\n"
               "nothing new. --set limits it to the matches of one intel set.\n");
}

int ch_cmd_hunt(int argc, char **argv)
{
    static const struct option opts[] = {
        {"db", required_argument, NULL, 'D'},  {"since", required_argument, NULL, 's'},
        {"set", required_argument, NULL, 'S'}, {"pack", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},      {NULL, 0, NULL, 0},
    };
    const char *db_path = NULL, *pack = NULL;
    ch_retro_opts ro = {0};
    int64_t since = 30LL * 86400000;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case 'D':
            db_path = optarg;
            break;
        case 's':
            if (!ch_duration_parse(optarg, strlen(optarg), &since) || since <= 0) {
                fprintf(stderr, "coinhound hunt: --since '%s': a duration (30d)\n", optarg);
                return CH_EXIT_USAGE;
            }
            break;
        case 'S':
            ro.set = optarg;
            break;
        case 'k':
            pack = optarg;
            break;
        case 'h':
            hunt_usage(stdout);
            return CH_EXIT_OK;
        default:
            fprintf(stderr, "coinhound hunt: bad option '%s'\n", argv[optind - 1]);
            hunt_usage(stderr);
            return CH_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        hunt_usage(stderr);
        return CH_EXIT_USAGE;
    }
    ch_error err = {0};
    ch_retro_result r;
    int rc = ch_retro_run(db_path, pack, since, &ro, hunt_msg, NULL, &r, &err);
    if (rc < 0) {
        fprintf(stderr, "coinhound hunt: %s\n", err.msg);
        return rc == CH_ENOTFOUND ? CH_EXIT_FAIL : CH_EXIT_FAIL;
    }
    ch_retro_print(&r, stdout);
    return CH_EXIT_OK;
}

/* ---- offense drill-down ---- */

int ch_cli_offense_events(ch_store *db, const ch_offense *o, bool json, FILE *f, ch_error *err)
{
    if (o->nevent_ids == 0) {
        if (!json)
            fprintf(f, "\nEvents: none with an event id (flows and DNS queries carry none)\n");
        return 0;
    }
    ch_search *s = NULL;
    ch_evstore *es = NULL;
    cols cl = {0};
    int rc;
    if ((rc = ch_search_offense_events(o, 0, 0, 0, &s, err)) < 0 ||
        (rc = ch_evstore_open_local(db, false, NULL, &es, err)) < 0 ||
        (rc = ch_search_run(s, es, err)) < 0 || (rc = cols_parse(&cl, NULL, err)) < 0)
        goto cleanup;
    if (!json)
        fprintf(f, "\nEvents (%zu of %zu ids found in the event store):\n", ch_search_nresults(s),
                o->nevent_ids);
    rc = print_events(s, json ? "jsonl" : "table", &cl, f, err);
    const char *dmg = ch_search_damaged(s);
    if (dmg[0])
        fprintf(stderr, "damaged segments skipped:\n%s", dmg);
cleanup:
    cols_free(&cl);
    ch_search_free(s);
    ch_evstore_close(es);
    return rc;
}
