/*
 * analyze.c - `coinhound analyze`: options in, a report out; the pipeline does the work.
 *
 * The pipeline (pipeline/pipeline.h) expands the inputs (directories recursively, in a stable
 * order), merges them by event time, and runs every event through its chain (duplicates
 * skipped, enrichment, the events writer, correlation, offenses and risk); this file opens it
 * from the options, draws the progress bar, checkpoints at the end (so the next run over that
 * store continues where this one stopped) and prints the report. Memory does not grow with file
 * size. Bad records are counted by reason and reported with their location; only an input that
 * cannot be read at all changes the exit status (1).
 */
#include <getopt.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/analyze_int.h"
#include "cli/cli.h"
#include "core/diag.h"
#include "core/mem.h"
#include "core/timeparse.h"
#include "enrich/geoip.h"
#include "ingest/input.h"
#include "ingest/prefetch.h"
#include "output/output.h"
#include "parse/source.h"
#include "store/evstore.h"
#include "store/retro_values.h"

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
        "      --max-open N      inputs open at once while merging by event time (default 512)\n"
        "      --threads N       read, inflate, parse, normalize and GeoIP-enrich the inputs\n"
        "                        (and format --events lines) on N-1 worker threads beside\n"
        "                        the one that merges and correlates (default:\n"
        "                        the number of CPUs; 1 = one thread). With N >= 3 a plain JSON\n"
        "                        Lines file of 4 MiB or more is parsed in chunks by several\n"
        "                        workers (gzip'd files: one worker per file). The results are\n"
        "                        the same for every N\n"
        "      --lateness DUR    how far behind the newest event (of this run or an earlier run\n"
        "                        on the same --db) an event may arrive and still be correlated\n"
        "                        (default 2h: deliveries span up to an hour)\n"
        "      --sort-memory MIB a file that is not in time order is sorted first: in memory\n"
        "                        up to MIB mebibytes, beyond that on disk (default 256)\n"
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
        "      --no-store        do not keep the events in the event store (<db>.events/)\n"
        "      --retention R     event store retention: an age (30d), a size (10GB) or both\n"
        "                        (30d,10GB); saved in --db for later runs and serve\n"
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

static void progress_draw(void *ud, const char *path, uint64_t opened, uint64_t files)
{
    ch_analyze *a = ud;
    double t = now_s();
    bool final = path == NULL;
    if (!final && t - a->progress_last < 0.1)
        return;
    a->progress_last = t;
    uint64_t ev = 0;
    for (int i = 0; i < CH_DS__COUNT; i++)
        ev += a->diag.by_ds[i].events;
    double el = t - a->t0;
    double rate = el > 0 ? (double)ev / el : 0;
    int width = 24;
    int filled = files ? (int)((double)opened * width / (double)files) : 0;
    char bar[32];
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
    const char *base = path ? strrchr(path, '/') : NULL;
    base = base ? base + 1 : (path ? path : "");
    fprintf(stderr, "\r\033[K[%s] %llu/%llu files  %llu events  %.0f ev/s  %.40s", bar,
            (unsigned long long)opened, (unsigned long long)files, (unsigned long long)ev, rate,
            base);
    if (final)
        fputc('\n', stderr);
    fflush(stderr);
}

/* Inputs open at once need file descriptors: raise the soft limit toward the hard one and keep
 * the merge below it (with room for the store, GeoIP and outputs), rather than fail mid-run. */
static size_t fd_budget(size_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return want < 64 ? want : 64;
    rlim_t need = (rlim_t)want + 64;
    if (rl.rlim_cur < need && rl.rlim_cur != RLIM_INFINITY) {
        rlim_t to = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > need ? need : rl.rlim_max;
        struct rlimit nl = {to, rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &nl) == 0)
            rl.rlim_cur = to;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
        return rl.rlim_cur > 96 ? (size_t)(rl.rlim_cur - 64) : 32;
    return want;
}

static void pipeline_msg(void *ud, const char *msg)
{
    (void)ud;
    fprintf(stderr, "coinhound analyze: %s\n", msg);
}

/* Addresses and domains that rules added to reference sets during the run are indicators
 * learned from the logs: the events stored before each was learned are hunted for it, as
 * `serve` does, so the offense does not depend on the order in which the logs arrived. */
static int hunt_rule_adds(ch_pipeline *p)
{
    if (!ch_pipeline_hunt_pending(p) || ch_pipeline_evstore(p) == NULL)
        return 0;
    ch_error err = {0};
    ch_retro_result r;
    size_t n = 0;
    int rc = ch_retro_hunt_rule_adds(p, NULL, 0, &r, &n, &err);
    if (rc < 0) {
        fprintf(stderr, "coinhound analyze: retro-hunt for values rules added: %s\n", err.msg);
        return rc;
    }
    if (n > 0 && r.raised > 0) {
        fprintf(stderr, "coinhound analyze: %zu values rules added to address or domain sets: ", n);
        ch_retro_print(&r, stderr);
    }
    return 0;
}

int ch_cmd_analyze(int argc, char **argv)
{
    static const struct option opts[] = {
        {"type", required_argument, NULL, 't'},
        {"events", required_argument, NULL, 'e'},
        {"format", required_argument, NULL, 'f'},
        {"geoip", required_argument, NULL, 'g'},
        {"no-geoip", no_argument, NULL, 'G'},
        {"progress", no_argument, NULL, 'p'},
        {"no-progress", no_argument, NULL, 'P'},
        {"quiet", no_argument, NULL, 'q'},
        {"max-open", required_argument, NULL, 'M'},
        {"help", no_argument, NULL, 'h'},
        {"db", required_argument, NULL, 'D'},
        {"pack", required_argument, NULL, 'k'},
        {"no-rules", no_argument, NULL, 'R'},
        {"context", required_argument, NULL, 'C'},
        {"intel", required_argument, NULL, 'I'},
        {"sort-memory", required_argument, NULL, 'S'},
        {"lateness", required_argument, NULL, 'L'},
        {"retention", required_argument, NULL, 'T'},
        {"no-store", no_argument, NULL, 'N'},
        {"threads", required_argument, NULL, 'J'},
        {NULL, 0, NULL, 0},
    };
    ch_analyze a;
    memset(&a, 0, sizeof a);
    ch_diag_init(&a.diag, stderr);
    const char *events_path = NULL, *format = "table";
    const char *geo_paths[CH_GEOIP_MAX_DBS];
    size_t ngeo = 0;
    bool no_geoip = false;
    int progress = -1, c, status = CH_EXIT_OK;
    size_t max_open = 512;
    size_t sort_mib = 256;
    unsigned threads = ch_prefetch_cpus();
    /* Logs are delivered in files that span up to an hour (flow logs, DNS query logs) and
     * CloudTrail arrives up to ~15 minutes late, so the next run over the next delivery holds
     * events up to about an hour older than the newest of the last run: they must still join
     * the windows. Costs only memory (keys expire that much later). */
    int64_t lateness_ms = 2 * 3600 * 1000LL;
    const char *db_path = NULL, *pack = NULL, *context_path = NULL;
    const char *intel_files[64];
    size_t nintel = 0;
    bool no_rules = false, no_event_store = false;
    const char *retention = NULL;
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
        case 'N':
            no_event_store = true;
            break;
        case 'T':
            retention = optarg;
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
        case 'J': {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || v < 1 || v > 256) {
                fprintf(stderr, "coinhound analyze: --threads takes 1..256, not '%s'\n", optarg);
                return CH_EXIT_USAGE;
            }
            threads = (unsigned)v;
            break;
        }
        case 'L':
            if (!ch_duration_parse(optarg, strlen(optarg), &lateness_ms)) {
                fprintf(stderr,
                        "coinhound analyze: --lateness takes a duration such as 20m or 2h, "
                        "not '%s'\n",
                        optarg);
                return CH_EXIT_USAGE;
            }
            break;
        case 'S': {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (*end || v < 1 || v > (1ul << 20)) {
                fprintf(stderr,
                        "coinhound analyze: --sort-memory takes 1..1048576 (MiB), not '%s'\n",
                        optarg);
                return CH_EXIT_USAGE;
            }
            sort_mib = v;
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

    if (events_path != NULL && ch_output_open(&a.out, "jsonl", events_path, &err) < 0) {
        fprintf(stderr, "coinhound analyze: %s\n", err.msg);
        status = CH_EXIT_FAIL;
        goto cleanup;
    }
    ch_pipeline_config pc = {
        .db = db_path,
        .pack = pack,
        .context = context_path,
        .intel = (const char *const *)intel_files,
        .nintel = nintel,
        .geoip = geo_paths,
        .ngeoip = ngeo,
        .no_geoip = no_geoip,
        .no_rules = no_rules,
        .lateness_ms = lateness_ms,
        .no_event_store = no_event_store,
        .event_retention = retention,
        .diag = &a.diag,
        .out = a.out,
        .msg = pipeline_msg,
    };
    if (ch_pipeline_open(&pc, &a.pipeline, &err) < 0) {
        fprintf(stderr, "coinhound analyze: %s\n", err.msg);
        status = CH_EXIT_FAIL;
        goto cleanup;
    }
    a.geoip = ch_pipeline_geoip(a.pipeline);
    a.rules = ch_pipeline_rules(a.pipeline);
    a.engine = ch_pipeline_engine(a.pipeline);
    a.entity = ch_pipeline_entity(a.pipeline);
    a.offenses = ch_pipeline_offenses(a.pipeline);
    a.risk = ch_pipeline_risk(a.pipeline);
    a.progress = progress == 1 || (progress == -1 && isatty(STDERR_FILENO));
    ch_pipeline_run_opts ro = {
        .forced = a.forced,
        .max_open = fd_budget(max_open),
        .sort_memory = sort_mib << 20,
        .threads = threads,
        .walk = true,
        .progress = a.progress ? progress_draw : NULL,
        .progress_ud = &a,
    };
    a.t0 = now_s();
    if (ch_pipeline_run_paths(a.pipeline, (const char *const *)argv + optind,
                              (size_t)(argc - optind), &ro, &a.merge_stats, &err) < 0) {
        fprintf(stderr, "coinhound analyze: %s\n", err.msg);
        status = CH_EXIT_FAIL;
    }
    a.elapsed = now_s() - a.t0;
    a.files_done = a.merge_stats.files;
    if (a.out != NULL && ch_output_close(a.out, &err) < 0) {
        fprintf(stderr, "coinhound analyze: %s\n", err.msg);
        status = CH_EXIT_FAIL;
    }
    a.out = NULL;
    if (ch_pipeline_checkpoint(a.pipeline, NULL, NULL, &err) < 0) {
        fprintf(stderr, "coinhound analyze: saving the run to the store: %s\n", err.msg);
        status = CH_EXIT_FAIL;
    } else if (hunt_rule_adds(a.pipeline) < 0) {
        status = CH_EXIT_FAIL;
    }
    ch_pipeline_stats_get(a.pipeline, &a.pstats);
    if (a.pstats.write_errors > 0) {
        fprintf(stderr, "coinhound analyze: %llu events could not be written to %s\n",
                (unsigned long long)a.pstats.write_errors, events_path);
        status = CH_EXIT_FAIL;
    }
    if (a.pstats.engine_errors || ch_pipeline_sink_errors(a.pipeline)) {
        fprintf(stderr,
                "coinhound analyze: correlation ran out of memory; results are incomplete\n");
        status = CH_EXIT_FAIL;
    }
    if (a.pstats.late > 0)
        fprintf(stderr,
                "coinhound analyze: warning: %llu events arrived later than the allowed "
                "lateness (up to %lld s behind): too late for correlation rules\n",
                (unsigned long long)a.pstats.late, (long long)(a.pstats.late_max_ms / 1000));
    ch_analyze_report(&a, stdout);
    if (a.diag.unreadable_inputs > 0)
        status = CH_EXIT_FAIL;
cleanup:
    ch_pipeline_close(a.pipeline);
    ch_output_close(a.out, NULL);
    return status;
}
