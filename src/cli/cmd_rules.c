/*
 * cmd_rules.c - `coinhound rules check|test DIR` (see cmd_rules.h).
 *
 * Each test case loads the pack afresh (its own reference-set registry and engine): rule
 * responses add to reference sets, and one case must never see what another added. Packs are
 * small, so reloading costs milliseconds per case; correctness of isolation wins. A case that
 * names `intel:` files gets them loaded as threat-intelligence sets (enrich/intel_match.h) into
 * its own registry, matched against its events as `analyze --intel` does.
 */
#include "cli/cmd_rules.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/diag.h"
#include "enrich/context.h"
#include "enrich/entity.h"
#include "enrich/geoip.h"
#include "enrich/intel_match.h"
#include "enrich/refset.h"
#include "intel/stix.h"
#include "rules/engine.h"
#include "rules/rule.h"

static void print_msg(void *ud, const char *msg)
{
    (void)ud;
    fprintf(stderr, "%s\n", msg);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: coinhound rules check DIR\n"
               "       coinhound rules test [--geoip FILE | --no-geoip] [--lateness DUR] DIR\n"
               "       [-v]\n\n"
               "check  validate a content pack's rules and reference sets (exit 1 if any is bad)\n"
               "test   run every rule's test cases (exit 1 on any failure)\n"
               "  --geoip FILE   GeoIP database for the test events (default: <data dir>/geoip/"
               "country.mmdb when present)\n"
               "  --no-geoip     no GeoIP enrichment\n"
               "  -v             print every hit of every case\n");
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
    uint32_t ntests = 0;
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
        }
    }
    if (!bad)
        printf("%s: %u rules, %u test cases, %zu reference sets: OK\n", dir, rs->n, ntests,
               ch_refsets_count(sets));
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

typedef struct enrichers {
    ch_geoip *geo;
    ch_entity *entity;
    ch_intel_matcher *intel; /* NULL when the case names no intel files */
} enrichers;

/* As `analyze` does: GeoIP, then entity linking (launches teach it, DNS and flows from the
 * launched instances get their user), then threat-intelligence matching. */
static void enrich(void *ud, ch_event *ev)
{
    enrichers *en = ud;
    if (en->geo != NULL)
        ch_geoip_enrich(en->geo, ev);
    if (en->entity != NULL)
        ch_entity_process(en->entity, ev);
    ch_intel_match(en->intel, ev);
}

/* The case's intel files into its own registry (after the pack: the files may add to a pack
 * set such as mining_pool_ips, and rules already hold handles to the sets they name). */
static int load_case_intel(const ch_rule_test *tc, ch_refsets *sets, ch_intel_catalog **cat,
                           ch_intel_matcher **m, ch_diag *diag, ch_error *err)
{
    if (tc->nintel == 0)
        return 0;
    int rc = ch_intel_catalog_new(cat);
    if (rc < 0)
        return ch_error_set(err, rc, "out of memory");
    if ((rc = ch_intel_matcher_new(m, sets, *cat, err)) < 0)
        return rc;
    return ch_intel_matcher_load(*m, sets, *cat, (const char *const *)tc->intel, tc->nintel, NULL,
                                 diag, err);
}

static int cmd_test(const char *dir, ch_geoip *geo, const ch_engine_opts *eo, bool verbose)
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
            ch_refsets *csets = NULL;
            ch_ruleset *crs = NULL;
            ch_engine *eng = NULL;
            ch_error err = {0};
            casectx c = {r->info.id, 0, verbose};
            const char *why = NULL;
            char whybuf[600];
            ch_engine_opts o = *eo;
            int64_t learning = 0;
            enrichers en = {geo, NULL, NULL};
            ch_intel_catalog *cat = NULL;
            ch_diag diag;
            ch_diag_init(&diag, stderr);
            if (load_pack(dir, true, &csets, &crs, &learning) < 0 ||
                ch_engine_new(crs, (o.learning_ms = o.learning_ms ? o.learning_ms : learning, &o),
                              on_hit, &c, &eng, &err) < 0 ||
                ch_entity_new(0, 0, &en.entity, &err) < 0) {
                why = "cannot load the pack again";
            } else if (load_case_intel(tc, csets, &cat, &en.intel, &diag, &err) < 0) {
                snprintf(whybuf, sizeof whybuf, "intel: %s", err.msg);
                why = whybuf;
            } else if (diag.errors_total > 0) {
                why = "bad entries in the intel files";
            } else {
                long n = ch_engine_feed_paths(eng, (const char *const *)tc->events, tc->nevents,
                                              enrich, &en, &diag, &err);
                if (n < 0) {
                    snprintf(whybuf, sizeof whybuf, "%s", err.msg);
                    why = whybuf;
                } else if (n == 0) {
                    why = "no events in the file";
                } else if (diag.errors_total > 0) {
                    why = "bad records in the events file";
                }
            }
            bool ok = why == NULL && (tc->expect_fire ? c.fired > 0 : c.fired == 0);
            printf("%s %s: %s (expect %s, fired %llu)%s%s\n", ok ? "PASS" : "FAIL", r->info.id,
                   tc->name, tc->expect_fire ? "fire" : "silent", (unsigned long long)c.fired,
                   why ? ": " : "", why ? why : "");
            ok ? pass++ : fail++;
            ch_engine_free(eng);
            ch_entity_free(en.entity);
            ch_intel_matcher_free(en.intel);
            ch_intel_catalog_free(cat);
            ch_ruleset_free(crs);
            ch_refsets_free(csets);
        }
    }
    printf("%u passed, %u failed, %u rules without tests (%u rules)\n", pass, fail, untested,
           rs->n);
    ch_ruleset_free(rs);
    ch_refsets_free(sets);
    return fail ? CH_EXIT_FAIL : CH_EXIT_OK;
}

/* "5m" -> ms; false when not a duration. */
static bool parse_dur(const char *s, int64_t *ms)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || v < 0)
        return false;
    int64_t mul = strcmp(end, "ms") == 0  ? 1
                  : strcmp(end, "s") == 0 ? 1000
                  : strcmp(end, "m") == 0 ? 60000
                  : strcmp(end, "h") == 0 ? 3600000
                                          : 0;
    if (mul == 0)
        return false;
    *ms = v * mul;
    return true;
}

int ch_cmd_rules(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CH_EXIT_USAGE : CH_EXIT_OK;
    }
    const char *sub = argv[1];
    bool is_check = strcmp(sub, "check") == 0, is_test = strcmp(sub, "test") == 0;
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
    ch_engine_opts eo = {0};
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
            if (!parse_dur(optarg, &eo.lateness_ms)) {
                fprintf(stderr, "coinhound rules: --lateness wants a duration such as 5m\n");
                return CH_EXIT_USAGE;
            }
            if (eo.lateness_ms == 0)
                eo.lateness_ms = -1;
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
    ch_geoip *geo = NULL;
    if (!no_geo) {
        char def[4096];
        snprintf(def, sizeof def, "%s/geoip/country.mmdb", ch_data_dir());
        const char *p = geo_path ? geo_path : def;
        ch_error err = {0};
        if ((geo_path || access(p, R_OK) == 0) && ch_geoip_open(&geo, &p, 1, &err) < 0) {
            fprintf(stderr, "coinhound rules: %s\n", err.msg);
            if (geo_path)
                return CH_EXIT_FAIL;
        }
    }
    int rc = cmd_test(dir, geo, &eo, verbose);
    ch_geoip_close(geo);
    return rc;
}
