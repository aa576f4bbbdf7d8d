/*
 * analyze.c - `coinhound analyze`: sources -> parsers -> enrichers -> outputs and a report.
 *
 * Inputs are expanded (directories recursively, in a stable order), each one opened, its type
 * detected from its first bytes (or forced with --type), and its events streamed through
 * GeoIP enrichment into the event writer. Memory does not grow with file size: every stage
 * holds at most one record window. Bad records are counted by reason and reported with their
 * location; only an input that cannot be read at all changes the exit status (1).
 */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/analyze_int.h"
#include "cli/cli.h"
#include "core/diag.h"
#include "core/mem.h"
#include "enrich/context.h"
#include "enrich/entity.h"
#include "enrich/geoip.h"
#include "enrich/intel_match.h"
#include "intel/intel_store.h"
#include "intel/stix.h"
#include "ingest/input.h"
#include "ingest/walk.h"
#include "output/output.h"
#include "parse/merge.h"
#include "parse/source.h"

static void analyze_usage(FILE *f)
{
    fprintf(
        f,
        "usage: coinhound analyze [OPTIONS] PATH...\n\n"
        "Read log files and directories (recursively, in name order; '-' is stdin), detect each\n"
        "file's type from its content, normalize every record to an ECS-named event, enrich it\n"
        "with GeoIP, and report records, events and errors by reason and by source type.\n"
        "Inputs are merged by event time (a k-way merge of the per-file streams), so events\n"
        "are written in time order whatever order the files were delivered in.\n\n"
        "Options:\n"
        "  -t, --type TYPE       force the source type: cloudtrail, vpcflow, route53resolver\n"
        "  -e, --events FILE     write normalized events as JSON Lines to FILE ('-' = stdout)\n"
        "  -f, --format FMT      report format: table (default) or json (one object on stdout)\n"
        "      --geoip FILE      a MaxMind DB (.mmdb) to use; repeat for City/ASN databases.\n"
        "                        Default: $COINHOUND_GEOIP (':'-separated) or\n"
        "                        <data dir>/geoip/country.mmdb, installed by "
        "scripts/install-geoip\n"
        "      --no-geoip        skip GeoIP enrichment\n"
        "      --progress        force the progress bar (default: only when stderr is a terminal)\n"
        "      --no-progress     never draw it\n"
        "      --max-open N      inputs open at once while merging by event time (default 64)\n"
        "      --pack DIR        content pack of rules (default: <content dir>/cryptojacking-aws)\n"
        "      --db FILE         offense store, SQLite (default: <data dir>/coinhound.db); a "
        "later\n"
        "                        run extends the open offenses instead of duplicating them\n"
        "      --context FILE    business context (YAML): business_countries, networks, images\n"
        "                        (AMI -> OS), learning; the pack's defaults apply where it is "
        "silent\n"
        "      --intel FILE      threat intelligence for this run: a STIX 2.1 bundle or a block\n"
        "                        list (repeatable); every set stored in --db is matched too\n"
        "      --no-rules        only normalize and enrich: no correlation, offenses or store\n"
        "  -q, --quiet           do not print per-record error messages (they are still counted)\n"
        "  -h, --help            this help\n\n"
        "Exit status: 0 the run completed (bad records are reported, not fatal); 1 an input\n"
        "could not be read at all; 2 usage error.\n");
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void progress_draw(ch_analyze *a, const char *path, bool final)
{
    double t = now_s();
    if (!final && t - a->progress_last < 0.1)
        return;
    a->progress_last = t;
    uint64_t ev = 0;
    for (int i = 0; i < CH_DS__COUNT; i++)
        ev += a->diag.by_ds[i].events;
    double el = t - a->t0;
    double rate = el > 0 ? (double)ev / el : 0;
    ch_merge_stats ms;
    ch_merge_stats_get(a->merge, &ms);
    int width = 24;
    int filled = a->files_total ? (int)((double)ms.opened * width / (double)a->files_total) : 0;
    char bar[32];
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
    const char *base = path ? strrchr(path, '/') : NULL;
    base = base ? base + 1 : (path ? path : "");
    fprintf(stderr, "\r\033[K[%s] %zu/%zu files  %llu events  %.0f ev/s  %.40s", bar,
            (size_t)ms.opened, a->files_total, (unsigned long long)ev, rate, final ? "" : base);
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
}

/* Every event, in event-time order, goes through the enrichers and the outputs. */
static void run_events(ch_analyze *a)
{
    ch_event *ev;
    const char *path = NULL;
    uint64_t n = 0;
    while (ch_merge_next(a->merge, &ev, &path) == 1) {
        if (a->geoip != NULL)
            ch_geoip_enrich(a->geoip, ev);
        /* Launches teach the linker; DNS queries and flows of launched instances get their
         * launching user, so rules keyed by user see the mining stage. */
        if (a->entity != NULL)
            ch_entity_process(a->entity, ev);
        if (a->intel != NULL)
            ch_intel_match(a->intel, ev);
        if (a->out != NULL && ch_output_write(a->out, ev) < 0)
            a->write_failed = true;
        if (a->engine != NULL && ch_engine_process(a->engine, ev) < 0)
            a->engine_failed = true;
        if (a->progress && (++n & 4095) == 0)
            progress_draw(a, path, false);
    }
}

static int visit_file(const char *path, void *ud)
{
    ch_analyze *a = ud;
    a->files_total++;
    return ch_merge_add(a->merge, path);
}

static int visit_missing(const char *path, const char *reason, void *ud)
{
    ch_analyze *a = ud;
    ch_diag_report(&a->diag, CH_DS_UNKNOWN, path, 0, UINT64_MAX, "unreadable", "%s", reason);
    a->diag.unreadable_inputs++;
    return 0;
}

static void rule_msg(void *ud, const char *msg)
{
    (void)ud;
    fprintf(stderr, "coinhound analyze: %s\n", msg);
}

/* Rules, engine, offenses, risk and the store. Returns 0, or -1 after printing why. */
static int open_intel(ch_analyze *a, const char *db, const char *const *files, size_t nfiles)
{
    ch_error err = {0};
    ch_intel_store *ist = NULL;
    char defpath[4096];
    if (ch_intel_catalog_new(&a->catalog) < 0 ||
        ch_intel_matcher_new(&a->intel, a->refsets, a->catalog, &err) < 0) {
        fprintf(stderr, "coinhound analyze: out of memory\n");
        return -1;
    }
    if (db == NULL && ch_store_default_path(defpath, sizeof defpath) == 0)
        db = defpath;
    if (db != NULL && ch_intel_store_open(db, &ist, &err) < 0) {
        fprintf(stderr, "coinhound analyze: intel store %s: %s\n", db, err.msg);
        return -1;
    }
    int rc =
        ch_intel_matcher_load(a->intel, a->refsets, a->catalog, files, nfiles, ist, &a->diag, &err);
    ch_intel_store_close(ist);
    if (rc < 0) {
        fprintf(stderr, "coinhound analyze: threat intelligence: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int open_correlation(ch_analyze *a, const char *pack, const char *db, const char *context,
                            const char *const *intel, size_t nintel)
{
    ch_error err = {0};
    ch_context *ctx = NULL;
    if (ch_refsets_new(&a->refsets) < 0 || ch_context_new(&ctx) < 0)
        goto nomem;
    /* The pack's context, then the user's file over it: they become the sets rules name
     * ($business_countries, ...), so they must exist before the rules compile. */
    int rc = ch_context_load_pack(ctx, pack, &err);
    if (rc == 0 && context != NULL)
        rc = ch_context_load_path(ctx, context, &err);
    if (rc == 0)
        rc = ch_context_apply(ctx, a->refsets, &err);
    int64_t learning = ch_context_learning_ms(ctx);
    ch_context_free(ctx);
    if (rc < 0) {
        fprintf(stderr, "coinhound analyze: business context: %s\n", err.msg);
        return -1;
    }
    if (ch_entity_new(0, 0, &a->entity, &err) < 0) {
        fprintf(stderr, "coinhound analyze: %s\n", err.msg);
        return -1;
    }
    /* Threat intelligence: files given with --intel for this run, and every set stored in the
     * database; loaded before the rules so that rules may also name them ($intel_domains). */
    if (open_intel(a, db, intel, nintel) < 0)
        return -1;
    if (ch_ruleset_load(pack, a->refsets, rule_msg, NULL, &a->rules, &err) < 0) {
        fprintf(stderr, "coinhound analyze: content pack %s: %s\n", pack, err.msg);
        return -1;
    }
    a->offenses = ch_offenses_new();
    a->risk = ch_risk_new(0);
    if (a->offenses == NULL || a->risk == NULL)
        goto nomem;
    a->sink.offenses = a->offenses;
    a->sink.risk = a->risk;
    ch_engine_opts eo = {.learning_ms = learning};
    if (ch_engine_new(a->rules, &eo, ch_offense_sink_hit, &a->sink, &a->engine, &err) < 0) {
        fprintf(stderr, "coinhound analyze: %s\n", err.msg);
        return -1;
    }
    if (ch_store_open(db, &a->store, &err) < 0 ||
        ch_store_load_active(a->store, a->offenses, &err) < 0 ||
        ch_store_load_users(a->store, a->risk, &err) < 0 ||
        /* Launches seen by earlier runs: this run's DNS queries and flows of those instances
         * still get their launching user. */
        ch_store_load_links(a->store, a->entity, 0, &err) < 0) {
        fprintf(stderr, "coinhound analyze: offense store: %s\n", err.msg);
        return -1;
    }
    return 0;
nomem:
    fprintf(stderr, "coinhound analyze: out of memory\n");
    return -1;
}

static int open_geoip(ch_analyze *a, const char **paths, size_t n, bool explicit_paths)
{
    ch_error err = {0};
    if (n == 0)
        return 0;
    if (ch_geoip_open(&a->geoip, paths, n, &err) < 0) {
        if (explicit_paths) {
            fprintf(stderr, "coinhound: GeoIP: %s\n", err.msg);
            return -1;
        }
        fprintf(stderr, "coinhound: warning: GeoIP disabled: %s (run scripts/install-geoip)\n",
                err.msg);
    }
    return 0;
}

int ch_cmd_analyze(int argc, char **argv)
{
    static const struct option opts[] = {
        {"type", required_argument, NULL, 't'},     {"events", required_argument, NULL, 'e'},
        {"format", required_argument, NULL, 'f'},   {"geoip", required_argument, NULL, 'g'},
        {"no-geoip", no_argument, NULL, 'G'},       {"progress", no_argument, NULL, 'p'},
        {"no-progress", no_argument, NULL, 'P'},    {"quiet", no_argument, NULL, 'q'},
        {"max-open", required_argument, NULL, 'M'}, {"help", no_argument, NULL, 'h'},
        {"db", required_argument, NULL, 'D'},       {"pack", required_argument, NULL, 'k'},
        {"no-rules", no_argument, NULL, 'R'},       {"context", required_argument, NULL, 'C'},
        {"intel", required_argument, NULL, 'I'},    {NULL, 0, NULL, 0},
    };
    ch_analyze a;
    memset(&a, 0, sizeof a);
    ch_diag_init(&a.diag, stderr);
    const char *events_path = NULL, *format = "table";
    const char *geo_paths[CH_GEOIP_MAX_DBS];
    size_t ngeo = 0;
    bool no_geoip = false;
    int progress = -1, c, status = CH_EXIT_OK;
    size_t max_open = 64;
    const char *db_path = NULL, *pack = NULL, *context_path = NULL;
    const char *intel_files[64];
    size_t nintel = 0;
    bool no_rules = false;
    char pack_def[4200];
    char *env_geo = NULL;
    ch_error err = {0};

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":t:e:f:qh", opts, NULL)) != -1) {
        switch (c) {
        case 't':
            a.forced = ch_source_type_by_name(optarg);
            if (a.forced == NULL) {
                fprintf(stderr,
                        "coinhound analyze: unknown --type '%s' (cloudtrail, vpcflow, "
                        "route53resolver)\n",
                        optarg);
                return CH_EXIT_USAGE;
            }
            break;
        case 'e':
            events_path = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "table") != 0 && strcmp(optarg, "json") != 0) {
                fprintf(stderr, "coinhound analyze: --format must be table or json, not '%s'\n",
                        optarg);
                return CH_EXIT_USAGE;
            }
            format = optarg;
            break;
        case 'g':
            if (ngeo == CH_GEOIP_MAX_DBS) {
                fprintf(stderr, "coinhound analyze: at most %d --geoip databases\n",
                        CH_GEOIP_MAX_DBS);
                return CH_EXIT_USAGE;
            }
            geo_paths[ngeo++] = optarg;
            break;
        case 'G':
            no_geoip = true;
            break;
        case 'p':
            progress = 1;
            break;
        case 'P':
            progress = 0;
            break;
        case 'q':
            a.diag.quiet = 1;
            break;
        case 'D':
            db_path = optarg;
            break;
        case 'k':
            pack = optarg;
            break;
        case 'R':
            no_rules = true;
            break;
        case 'C':
            context_path = optarg;
            break;
        case 'I':
            if (nintel == sizeof intel_files / sizeof intel_files[0]) {
                fprintf(stderr, "coinhound analyze: at most %zu --intel files\n", nintel);
                return CH_EXIT_USAGE;
            }
            intel_files[nintel++] = optarg;
            break;
        case 'M': {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || v < 1 || v > 65536) {
                fprintf(stderr, "coinhound analyze: --max-open takes 1..65536, not '%s'\n", optarg);
                return CH_EXIT_USAGE;
            }
            max_open = v;
            break;
        }
        case 'h':
            analyze_usage(stdout);
            return CH_EXIT_OK;
        case ':':
            fprintf(stderr, "coinhound analyze: option '%s' needs a value\n", argv[optind - 1]);
            return CH_EXIT_USAGE;
        default:
            fprintf(stderr, "coinhound analyze: unknown option '%s'\n", argv[optind - 1]);
            analyze_usage(stderr);
            return CH_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "coinhound analyze: no input (give files, directories or '-')\n");
        analyze_usage(stderr);
        return CH_EXIT_USAGE;
    }
    a.json = strcmp(format, "json") == 0;
    if (events_path != NULL && a.json && strcmp(events_path, "-") == 0) {
        fprintf(stderr, "coinhound analyze: --events - and --format json both want stdout\n");
        return CH_EXIT_USAGE;
    }

    if (!no_geoip) {
        bool explicit_paths = ngeo > 0;
        char def[4200];
        const char *env = getenv("COINHOUND_GEOIP");
        if (ngeo == 0 && env != NULL && *env) {
            env_geo = ch_strdup(env);
            for (char *s = env_geo, *tok;
                 ngeo < CH_GEOIP_MAX_DBS && (tok = strsep(&s, ":")) != NULL;)
                if (*tok)
                    geo_paths[ngeo++] = tok;
            explicit_paths = true;
        }
        if (ngeo == 0) {
            snprintf(def, sizeof def, "%s/geoip/country.mmdb", ch_data_dir());
            geo_paths[ngeo++] = def;
        }
        if (open_geoip(&a, geo_paths, ngeo, explicit_paths) < 0) {
            status = CH_EXIT_FAIL;
            goto cleanup;
        }
    }
    if (!no_rules) {
        if (pack == NULL) {
            snprintf(pack_def, sizeof pack_def, "%s/cryptojacking-aws", ch_content_dir());
            pack = pack_def;
        }
        if (open_correlation(&a, pack, db_path, context_path, (const char *const *)intel_files,
                             nintel) < 0) {
            status = CH_EXIT_FAIL;
            goto cleanup;
        }
    }
    if (events_path != NULL && ch_output_open(&a.out, "jsonl", events_path, &err) < 0) {
        fprintf(stderr, "coinhound analyze: %s\n", err.msg);
        status = CH_EXIT_FAIL;
        goto cleanup;
    }
    a.progress = progress == 1 || (progress == -1 && isatty(STDERR_FILENO));
    const char *const *paths = (const char *const *)argv + optind;
    size_t npaths = (size_t)(argc - optind);
    a.merge = ch_merge_new(&a.diag, a.forced, max_open);
    if (a.merge == NULL ||
        ch_walk_paths(paths, npaths, visit_file, visit_missing, &a) == CH_ENOMEM) {
        fprintf(stderr, "coinhound analyze: out of memory\n");
        status = CH_EXIT_FAIL;
        goto cleanup;
    }
    a.t0 = now_s();
    run_events(&a);
    a.elapsed = now_s() - a.t0;
    ch_merge_stats_get(a.merge, &a.merge_stats);
    a.files_done = a.files_total;
    if (a.progress)
        progress_draw(&a, NULL, true);
    if (a.out != NULL && ch_output_close(a.out, &err) < 0) {
        fprintf(stderr, "coinhound analyze: %s\n", err.msg);
        status = CH_EXIT_FAIL;
    }
    a.out = NULL;
    if (a.store != NULL) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        if (ch_store_save(a.store, a.offenses, a.risk, (int64_t)now.tv_sec * 1000, &err) < 0) {
            fprintf(stderr, "coinhound analyze: saving offenses to %s: %s\n",
                    ch_store_path(a.store), err.msg);
            status = CH_EXIT_FAIL;
        }
        if (a.entity != NULL && ch_store_save_links(a.store, a.entity, 0, &err) < 0) {
            fprintf(stderr, "coinhound analyze: saving entity links to %s: %s\n",
                    ch_store_path(a.store), err.msg);
            status = CH_EXIT_FAIL;
        }
    }
    if (a.engine_failed || a.sink.errors) {
        fprintf(stderr,
                "coinhound analyze: correlation ran out of memory; results are incomplete\n");
        status = CH_EXIT_FAIL;
    }
    ch_analyze_report(&a, stdout);
    if (a.diag.unreadable_inputs > 0)
        status = CH_EXIT_FAIL;
cleanup:
    ch_merge_free(a.merge);
    ch_engine_free(a.engine);
    ch_entity_free(a.entity);
    ch_intel_matcher_free(a.intel);
    ch_intel_catalog_free(a.catalog);
    ch_store_close(a.store);
    ch_offenses_free(a.offenses);
    ch_risk_free(a.risk);
    ch_ruleset_free(a.rules);
    ch_refsets_free(a.refsets);
    ch_output_close(a.out, NULL);
    ch_geoip_close(a.geoip);
    ch_free(env_geo);
    return status;
}
