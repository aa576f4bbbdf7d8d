/*
 * cmd_rules.c - `coinhound rules check|test DIR` and `coinhound rules enable|disable ID`
 * (see cmd_rules.h).
 *
 * enable/disable write the rule's row of rule_state (rules/rule_state.h) and its audit entry in
 * one transaction on the database every run reads: `analyze --db` and `serve` (at start and at
 * each reload, SIGHUP) skip a disabled rule. The id must name a rule of the pack (--pack, default
 * the shipped one), so that a typo is not stored as a rule that never matches anything.
 *
 * Each test case runs through a pipeline of its own (pipeline/pipeline.h, the one `analyze`
 * runs, without a store): rule responses add to reference sets and correlation learns, and one
 * case must never see what another added. Packs are small, so reloading costs milliseconds per
 * case; correctness of isolation wins. A case that names `intel:` files gets them loaded as
 * threat-intelligence sets, matched against its events as `analyze --intel` does.
 */
#include "cli/cmd_rules.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/diag.h"
#include "core/timeparse.h"
#include "enrich/context.h"
#include "enrich/mmdb_write.h"
#include "enrich/refset.h"
#include "pipeline/pipeline.h"
#include "core/paths.h"
#include "core/sqlite_util.h"
#include "rules/rule.h"
#include "rules/rule_state.h"
#include "server/audit.h"

static void print_msg(void *ud, const char *msg)
{
    (void)ud;
    fprintf(stderr, "%s\n", msg);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: coinhound rules check DIR\n"
               "       coinhound rules test [--geoip FILE | --no-geoip] [--lateness DUR] DIR\n"
               "       [-v]\n"
               "       coinhound rules enable|disable ID [--db FILE] [--pack DIR]\n"
               "       coinhound rules state [--db FILE]\n\n"
               "check  validate a content pack's rules and reference sets (exit 1 if any is bad)\n"
               "test   run every rule's test cases (exit 1 on any failure)\n"
               "  --geoip FILE   GeoIP database for the test events (default: the pack's\n"
               "                 DIR/tests/geoip.csv fixture when it has one, else\n"
               "                 <data dir>/geoip/country.mmdb when present)\n"
               "  --no-geoip     no GeoIP enrichment\n"
               "  -v             print every hit of every case\n"
               "enable, disable  turn rule ID on or off in the database (durable, audited):\n"
               "                 analyze --db and serve (at start and on SIGHUP) honour it\n"
               "  --db FILE      the database (default <data dir>/coinhound.db)\n"
               "  --pack DIR     the pack ID must belong to (default the shipped pack)\n"
               "state            the rules turned on or off, when and by whom\n");
}

/* The pack's business context (PACK/context.yaml) becomes the sets rules name
 * ($business_countries...), then the pack's own sets and rules load beside them. *learning gets
 * the context's first-seen learning period. */
static int load_pack(const char *dir, bool quiet, ch_refsets **sets, ch_ruleset **rs,
                     int64_t *learning)
{
    ch_error err = {0};
    ch_context *ctx = NULL;
    *rs = NULL;
    if (ch_refsets_new(sets) < 0 || ch_context_new(&ctx) < 0) {
        fprintf(stderr, "coinhound rules: out of memory\n");
        ch_refsets_free(*sets);
        *sets = NULL;
        return -1;
    }
    int rc = ch_context_load_pack(ctx, dir, &err);
    if (rc == 0)
        rc = ch_context_apply(ctx, *sets, &err);
    if (learning)
        *learning = ch_context_learning_ms(ctx);
    ch_context_free(ctx);
    if (rc < 0) {
        if (!quiet)
            fprintf(stderr, "coinhound rules: %s\n", err.msg);
        ch_refsets_free(*sets);
        *sets = NULL;
        return -1;
    }
    if (ch_ruleset_load(dir, *sets, quiet ? NULL : print_msg, NULL, rs, &err) < 0) {
        if (!quiet)
            fprintf(stderr, "coinhound rules: %s\n", err.msg);
        ch_refsets_free(*sets);
        *sets = NULL;
        return -1;
    }
    return 0;
}

static int cmd_check(const char *dir)
{
    ch_refsets *sets = NULL;
    ch_ruleset *rs = NULL;
    if (load_pack(dir, false, &sets, &rs, NULL) < 0)
        return CH_EXIT_FAIL;
    int bad = 0;
    uint32_t ntests = 0, nomitre = 0;
    for (uint32_t i = 0; i < rs->n; i++) {
        const ch_rule *r = rs->rules[i];
        bool fire = false, silent = false;
        for (uint32_t t = 0; t < r->ntests; t++)
            r->tests[t].expect_fire ? (fire = true) : (silent = true);
        if (!fire || !silent)
            fprintf(stderr, "%s: %s: warning: no test case that must %s%s%s\n", r->file, r->info.id,
                    fire ? "" : "fire", !fire && !silent ? " and none that must " : "",
                    silent ? "" : "stay silent");
        for (uint32_t t = 0; t < r->ntests; t++) {
            ntests++;
            for (uint32_t f = 0; f < r->tests[t].nevents; f++)
                if (access(r->tests[t].events[f], R_OK) != 0) {
                    fprintf(stderr, "%s:%u: %s: test '%s': events file %s cannot be read\n",
                            r->file, r->tests[t].line, r->info.id, r->tests[t].name,
                            r->tests[t].events[f]);
                    bad++;
                }
            for (uint32_t f = 0; f < r->tests[t].nintel; f++)
                if (access(r->tests[t].intel[f], R_OK) != 0) {
                    fprintf(stderr, "%s:%u: %s: test '%s': intel file %s cannot be read\n", r->file,
                            r->tests[t].line, r->info.id, r->tests[t].name, r->tests[t].intel[f]);
                    bad++;
                }
            if (r->tests[t].context != NULL && access(r->tests[t].context, R_OK) != 0) {
                fprintf(stderr, "%s:%u: %s: test '%s': context file %s cannot be read\n", r->file,
                        r->tests[t].line, r->info.id, r->tests[t].name, r->tests[t].context);
                bad++;
            }
        }
        if (r->nmitre == 0)
            nomitre++;
    }
    if (!bad)
        printf("%s: %u rules (%u without an ATT&CK technique tag), %u test cases, %zu reference "
               "sets: OK\n",
               dir, rs->n, nomitre, ntests, ch_refsets_count(sets));
    ch_ruleset_free(rs);
    ch_refsets_free(sets);
    return bad ? CH_EXIT_FAIL : CH_EXIT_OK;
}

typedef struct casectx {
    const char *rule_id;
    uint64_t fired;
    bool verbose;
} casectx;

static void on_hit(const ch_rule_hit *h, void *ud)
{
    casectx *c = ud;
    if (strcmp(h->rule->id, c->rule_id) == 0)
        c->fired++;
    if (c->verbose)
        printf("    hit %s: %s\n", h->rule->id, h->evidence);
}

static void pipeline_msg(void *ud, const char *msg)
{
    (void)ud;
    fprintf(stderr, "%s\n", msg);
}

/* One case through the same pipeline `analyze` runs (GeoIP, entity linking, the case's threat
 * intelligence, the rules), with no store: a case never sees what another learned. Returns
 * NULL when it ran, else why it could not (into whybuf). */
static const char *run_case(const char *dir, const ch_rule_test *tc, const char *geo,
                            int64_t lateness_ms, casectx *c, char *whybuf, size_t whycap)
{
    ch_diag diag;
    ch_diag_init(&diag, stderr);
    ch_pipeline_config pc = {
        .no_store = true,
        .pack = dir,
        .context = tc->context, /* the case's own context over the pack's, or NULL */
        .intel = (const char *const *)tc->intel,
        .nintel = tc->nintel,
        .geoip = geo ? &geo : NULL,
        .ngeoip = geo ? 1 : 0,
        .no_geoip = geo == NULL,
        .lateness_ms = lateness_ms,
        .diag = &diag,
        .msg = pipeline_msg,
        .on_hit = on_hit,
        .hit_ud = c,
    };
    ch_pipeline *p = NULL;
    ch_error err = {0};
    const char *why = NULL;
    if (ch_pipeline_open(&pc, &p, &err) < 0) {
        snprintf(whybuf, whycap, "%s", err.msg);
        why = whybuf;
    } else if (diag.errors_total > 0) {
        why = "bad entries in the intel files";
    } else {
        long n = ch_pipeline_push_paths(p, (const char *const *)tc->events, tc->nevents, &err);
        if (n < 0) {
            snprintf(whybuf, whycap, "%s", err.msg);
            why = whybuf;
        } else if (n == 0) {
            why = "no events in the file";
        } else if (diag.errors_total > 0) {
            why = "bad records in the events file";
        }
    }
    ch_pipeline_close(p);
    return why;
}

static int cmd_test(const char *dir, const char *geo, int64_t lateness_ms, bool verbose)
{
    ch_refsets *sets = NULL;
    ch_ruleset *rs = NULL;
    if (load_pack(dir, false, &sets, &rs, NULL) < 0)
        return CH_EXIT_FAIL;
    uint32_t pass = 0, fail = 0, untested = 0;
    for (uint32_t i = 0; i < rs->n; i++) {
        const ch_rule *r = rs->rules[i];
        if (r->ntests == 0) {
            printf("NONE %s: no test cases\n", r->info.id);
            untested++;
        }
        for (uint32_t t = 0; t < r->ntests; t++) {
            const ch_rule_test *tc = &r->tests[t];
            casectx c = {r->info.id, 0, verbose};
            char whybuf[600];
            const char *why = run_case(dir, tc, geo, lateness_ms, &c, whybuf, sizeof whybuf);
            bool ok = why == NULL && (tc->expect_fire ? c.fired > 0 : c.fired == 0);
            printf("%s %s: %s (expect %s, fired %llu)%s%s\n", ok ? "PASS" : "FAIL", r->info.id,
                   tc->name, tc->expect_fire ? "fire" : "silent", (unsigned long long)c.fired,
                   why ? ": " : "", why ? why : "");
            ok ? pass++ : fail++;
        }
    }
    printf("%u passed, %u failed, %u rules without tests (%u rules)\n", pass, fail, untested,
           rs->n);
    ch_ruleset_free(rs);
    ch_refsets_free(sets);
    return fail ? CH_EXIT_FAIL : CH_EXIT_OK;
}

/* ---- GeoIP for the test cases ----
 *
 * A pack's country rules can only be tested against known countries. With --no-geoip there
 * are none; with --geoip FILE, that file. Otherwise the pack's own fixture DIR/tests/geoip.csv
 * (network,country lines) when it has one, so that its verdicts are the same on every machine
 * whatever database is installed, or none is: the fixture is written once to a temporary
 * MaxMind DB (enrich/mmdb_write.h), which every case opens with the ordinary enricher as
 * analyze opens the real one, and which is removed after the run. Without a fixture, the
 * installed database when present. */

typedef struct test_geoip {
    const char *path; /* what every case opens; NULL: no GeoIP */
    char buf[4096];   /* the installed database's path, or the fixture's temporary database */
    bool temporary;   /* buf is a file this run wrote: test_geoip_release removes it */
} test_geoip;

/* The fixture csv into a temporary database named in tg; -1 after saying why. */
static int test_geoip_write_fixture(const char *csv, test_geoip *tg)
{
    const char *tmpdir = getenv("TMPDIR");
    snprintf(tg->buf, sizeof tg->buf, "%s/coinhound-geoip-XXXXXX.mmdb",
             tmpdir != NULL && *tmpdir ? tmpdir : "/tmp");
    int fd = mkstemps(tg->buf, 5);
    if (fd < 0) {
        fprintf(stderr, "coinhound rules: cannot create %s: %s\n", tg->buf, strerror(errno));
        return -1;
    }
    close(fd);
    tg->temporary = true;
    ch_error err = {0};
    if (ch_mmdb_write_csv(csv, tg->buf, &err) < 0) {
        fprintf(stderr, "coinhound rules: GeoIP fixture: %s\n", err.msg);
        return -1;
    }
    tg->path = tg->buf;
    fprintf(stderr, "coinhound rules: GeoIP from the pack's fixture %s\n", csv);
    return 0;
}

/* Fill tg for the cases; -1 after saying why (a bad fixture fails the run rather than testing
 * without countries). test_geoip_release afterwards, either way. */
static int test_geoip_select(const char *dir, const char *geo_path, bool no_geo, test_geoip *tg)
{
    tg->path = NULL;
    tg->temporary = false;
    if (no_geo)
        return 0;
    if (geo_path != NULL) {
        tg->path = geo_path;
        return 0;
    }
    char fixture[4096];
    snprintf(fixture, sizeof fixture, "%s/tests/geoip.csv", dir);
    if (access(fixture, F_OK) == 0)
        return test_geoip_write_fixture(fixture, tg);
    snprintf(tg->buf, sizeof tg->buf, "%s/geoip/country.mmdb", ch_data_dir());
    if (access(tg->buf, R_OK) == 0)
        tg->path = tg->buf;
    return 0;
}

static void test_geoip_release(test_geoip *tg)
{
    if (tg->temporary)
        unlink(tg->buf);
    tg->temporary = false;
    tg->path = NULL;
}

/* ---- enable / disable / state ---- */

static int state_row(void *ud, const char *id, bool enabled, int64_t when_ms, const char *who)
{
    (void)ud;
    time_t t = (time_t)(when_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    printf("%-24s %-8s %s %s\n", id, enabled ? "enabled" : "disabled", when, who);
    return 0;
}

static int cmd_toggle(int argc, char **argv, const char *sub)
{
    static const struct option opts[] = {{"db", required_argument, NULL, 'd'},
                                         {"pack", required_argument, NULL, 'p'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *db = NULL, *pack = NULL;
    bool is_state = strcmp(sub, "state") == 0, enable = strcmp(sub, "enable") == 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            db = optarg;
            break;
        case 'p':
            pack = optarg;
            break;
        case 'h':
            usage(stdout);
            return CH_EXIT_OK;
        default:
            usage(stderr);
            return CH_EXIT_USAGE;
        }
    }
    if (optind + (is_state ? 0 : 1) != argc) {
        fprintf(stderr, "coinhound rules %s: %s\n", sub,
                is_state ? "takes no argument" : "expected one rule id");
        return CH_EXIT_USAGE;
    }
    const char *id = is_state ? NULL : argv[optind];
    char pack_def[4096];
    if (!is_state) {
        if (pack == NULL) {
            snprintf(pack_def, sizeof pack_def, "%s/cryptojacking-aws", ch_content_dir());
            pack = pack_def;
        }
        ch_refsets *sets = NULL;
        ch_ruleset *rs = NULL;
        if (load_pack(pack, false, &sets, &rs, NULL) < 0)
            return CH_EXIT_FAIL;
        bool known = ch_ruleset_find(rs, id) >= 0;
        ch_ruleset_free(rs);
        ch_refsets_free(sets);
        if (!known) {
            fprintf(stderr, "coinhound rules %s: the pack %s has no rule %s\n", sub, pack, id);
            return CH_EXIT_FAIL;
        }
    }
    ch_sql q;
    ch_error err = {0};
    int rc = ch_sql_connect(&q, db, !is_state, NULL, &err);
    if (rc >= 0)
        rc = ch_rule_state_schema(&q, &err);
    if (rc >= 0 && is_state) {
        rc = ch_rule_state_each(&q, state_row, NULL, &err);
        if (rc == 0)
            printf("every rule is enabled (no rule was turned off or on)\n");
    } else if (rc >= 0) {
        /* The row and its audit entry in one transaction. */
        char actor[128], before[32], after[32];
        const struct passwd *pw = getpwuid(geteuid());
        if (pw != NULL && pw->pw_name != NULL && *pw->pw_name)
            snprintf(actor, sizeof actor, "%s", pw->pw_name);
        else
            snprintf(actor, sizeof actor, "uid:%u", (unsigned)geteuid());
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        bool was = true;
        if ((rc = ch_audit_schema_db(q.db, q.path, &err)) >= 0 &&
            (rc = ch_sql_begin(&q, &err)) >= 0) {
            rc = ch_rule_state_set(&q, id, enable, now, actor, &was, &err);
            snprintf(before, sizeof before, "{\"enabled\":%s}", was ? "true" : "false");
            snprintf(after, sizeof after, "{\"enabled\":%s}", enable ? "true" : "false");
            ch_audit_entry e = {0,  now,    actor, "cli", enable ? "rule.enable" : "rule.disable",
                                id, before, after};
            if (rc >= 0)
                rc = ch_audit_append_db(q.db, q.path, &e, &err);
            if (rc >= 0)
                rc = ch_sql_commit(&q, &err);
            else
                ch_sql_rollback(&q);
        }
        if (rc >= 0)
            printf("%s: %s (was %s); a running server applies it at its next reload (SIGHUP) or "
                   "at once through POST /api/v1/rules/%s\n",
                   id, enable ? "enabled" : "disabled", was ? "enabled" : "disabled", id);
    }
    ch_sql_close(&q);
    if (rc < 0) {
        fprintf(stderr, "coinhound rules %s: %s\n", sub, err.msg);
        return CH_EXIT_FAIL;
    }
    return CH_EXIT_OK;
}

int ch_cmd_rules(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CH_EXIT_USAGE : CH_EXIT_OK;
    }
    const char *sub = argv[1];
    bool is_check = strcmp(sub, "check") == 0, is_test = strcmp(sub, "test") == 0;
    if (strcmp(sub, "enable") == 0 || strcmp(sub, "disable") == 0 || strcmp(sub, "state") == 0)
        return cmd_toggle(argc - 1, argv + 1, sub);
    if (!is_check && !is_test) {
        fprintf(stderr, "coinhound rules: unknown subcommand '%s'\n", sub);
        usage(stderr);
        return CH_EXIT_USAGE;
    }
    static const struct option opts[] = {{"geoip", required_argument, NULL, 'g'},
                                         {"no-geoip", no_argument, NULL, 'G'},
                                         {"lateness", required_argument, NULL, 'l'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *geo_path = NULL;
    bool no_geo = false, verbose = false;
    int64_t lateness_ms = 0;
    int c;
    optind = 1;
    argc--;
    argv++;
    while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
        switch (c) {
        case 'g':
            geo_path = optarg;
            break;
        case 'G':
            no_geo = true;
            break;
        case 'v':
            verbose = true;
            break;
        case 'l':
            if (!ch_duration_parse(optarg, strlen(optarg), &lateness_ms)) {
                fprintf(stderr, "coinhound rules: --lateness wants a duration such as 5m\n");
                return CH_EXIT_USAGE;
            }
            if (lateness_ms == 0)
                lateness_ms = -1;
            break;
        case 'h':
            usage(stdout);
            return CH_EXIT_OK;
        default:
            usage(stderr);
            return CH_EXIT_USAGE;
        }
    }
    if (optind + 1 != argc) {
        fprintf(stderr, "coinhound rules %s: expected one pack folder\n", sub);
        return CH_EXIT_USAGE;
    }
    const char *dir = argv[optind];
    if (is_check)
        return cmd_check(dir);
    test_geoip tg;
    int rc = CH_EXIT_FAIL;
    if (test_geoip_select(dir, geo_path, no_geo, &tg) == 0)
        rc = cmd_test(dir, tg.path, lateness_ms, verbose);
    test_geoip_release(&tg);
    return rc;
}
