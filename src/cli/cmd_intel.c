/*
 * cmd_intel.c - `coinhound intel`: the action table, and `intel load FILE...`, which stores STIX
 * bundles and block lists in the database.
 *
 * A file is a STIX bundle (or TAXII envelope) when its first bytes say so
 * (ch_stix_looks_like_bundle), never by its name; anything else is a block list, loaded into
 * the set named by --set or after the file. Each file is one transaction: a file that fails half
 * way leaves the database as it was before that file, and the next files still load. The exit
 * status is 1 when any file could not be loaded, 0 otherwise (bad entries are counted, not
 * fatal).
 *
 * `pull` and `serve` belong to the TAXII client and server (another module's files); their
 * table lines are compiled in when src/cli/cmd_intel_taxii.h exists.
 */
#include "cli/cmd_intel.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "store/retro.h"
#include "cli/cmd_refset.h"
#include "core/diag.h"
#include "ingest/input.h"
#include "intel/intel_store.h"
#include "intel/stix.h"
#include "offense/store.h"

#if defined(__has_include)
#if __has_include("cli/cmd_intel_taxii.h")
#include "cli/cmd_intel_taxii.h"
#define CH_HAVE_TAXII 1
#endif
#endif

typedef struct intel_action {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} intel_action;

static const intel_action actions[] = {
    {"load", "store STIX bundles and block lists (domains, hosts, Adblock, IP/CIDR)",
     ch_cmd_intel_load},
#ifdef CH_HAVE_TAXII
    {"pull", "poll TAXII 2.1 collections into the database", ch_cmd_intel_pull},
    {"serve", "publish shareable sets and offense observables over TAXII 2.1", ch_cmd_intel_serve},
#endif
    {NULL, NULL, NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: coinhound intel ACTION [ARGS...]\n\nActions:\n");
    for (const intel_action *a = actions; a->name != NULL; a++)
        fprintf(f, "  %-6s %s\n", a->name, a->summary);
    fprintf(f, "\nRun 'coinhound intel ACTION --help' for its options.\n");
}

int ch_cmd_intel(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CH_EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return CH_EXIT_OK;
    }
    for (const intel_action *a = actions; a->name != NULL; a++)
        if (strcmp(a->name, argv[1]) == 0)
            return a->run(argc - 1, argv + 1);
    fprintf(stderr, "coinhound intel: unknown action '%s'\n", argv[1]);
    usage(stderr);
    return CH_EXIT_USAGE;
}

/* ---- load ----------------------------------------------------------------------------------- */

static void load_usage(FILE *f)
{
    fprintf(f,
            "usage: coinhound intel load FILE... [--db FILE] [--set NAME] [--type T]\n"
            "                            [--feed NAME] [--ttl DUR]\n"
            "                            [--domain-set N] [--ip-set N] [--url-set N]\n"
            "                            [--allow-catch-all]\n\n"
            "STIX 2.1 (a bundle, or one object; recognised by content) goes to the sets\n"
            "intel_domains, intel_ips and intel_urls unless --domain-set/--ip-set/--url-set say\n"
            "otherwise; patterns that a set cannot hold exactly (AND, file hashes, MATCHES...)\n"
            "are counted, not loaded, and so are indicators and values that are not what they\n"
            "claim (no spec_version or valid_from, bad ids or times, an IPv6 address as\n"
            "ipv4-addr, a wildcard domain). A network matching every address (0.0.0.0/0, ::/0)\n"
            "is refused unless --allow-catch-all.\n"
            "Block lists (domains, hosts files, Adblock ||domain^, IP/CIDR) go to the set named\n"
            "by --set, else after the file (coinblocker.txt -> coinblocker), of the type given\n"
            "by --type (ip, domain, string, number) or detected. --feed names the source\n"
            "(default: the file name); --ttl makes list entries expire. Default database\n"
            "%s/%s.\n",
            ch_data_dir(), CH_STORE_DEFAULT_NAME);
}

typedef struct load_opts {
    const char *db, *set, *feed, *dset, *iset, *uset;
    ch_refset_type type;
    int64_t ttl_ms;
    bool allow_catch_all;
} load_opts;

static void print_stix(const char *path, const ch_stix_stats *s)
{
    printf("%s: stix: %llu objects, %llu indicators: %llu loaded (%llu replaced, %llu partial), "
           "%llu revoked, %llu unchanged or older, %llu unsupported, %llu other pattern types, "
           "%llu bad; elements +%llu -%llu\n",
           path, (unsigned long long)s->objects, (unsigned long long)s->indicators,
           (unsigned long long)s->loaded, (unsigned long long)s->replaced,
           (unsigned long long)s->partial, (unsigned long long)s->revoked,
           (unsigned long long)s->ignored_older, (unsigned long long)s->unsupported,
           (unsigned long long)s->other_patterns, (unsigned long long)s->bad,
           (unsigned long long)s->elements_added, (unsigned long long)s->elements_removed);
    for (int r = 0; r < CH_STIX_REFUSE__N; r++)
        if (s->refused[r] > 0)
            printf("%s:   refused: %s: %llu\n", path, ch_stix_refusal_name((ch_stix_refusal)r),
                   (unsigned long long)s->refused[r]);
    if (s->url_only > 0)
        printf("%s:   url:value held as URLs only, their hosts not matched against DNS or "
               "flows: %llu\n",
               path, (unsigned long long)s->url_only);
    for (uint32_t i = 0; i < s->nkinds; i++)
        printf("%s:   unsupported: %s: %llu\n", path, s->kinds[i].kind,
               (unsigned long long)s->kinds[i].count);
    if (s->kinds_other > 0)
        printf("%s:   unsupported: other kinds: %llu\n", path, (unsigned long long)s->kinds_other);
}

static int load_stix(ch_intel_store *st, const load_opts *o, const char *path, ch_error *err)
{
    ch_refsets *sets = NULL;
    ch_intel_catalog *cat = NULL;
    ch_stix_ctx *ctx = NULL;
    char feed[CH_REFSET_NAME_MAX + 1];
    ch_cli_set_name_from_path(path, feed, sizeof feed);
    ch_stix_opts so = {o->feed ? o->feed : feed, o->dset,           o->iset, o->uset,
                       ch_cli_now_ms(),          o->allow_catch_all};
    ch_diag diag;
    ch_diag_init(&diag, stderr);
    int rc;
    if (ch_refsets_new(&sets) < 0 || ch_intel_catalog_new(&cat) < 0) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto cleanup;
    }
    if ((rc = ch_stix_ctx_new(&ctx, sets, cat, st, &so, err)) < 0)
        goto cleanup;
    if ((rc = ch_stix_ingest_path(ctx, path, 0, &diag, err)) < 0)
        goto cleanup;
    print_stix(path, ch_stix_ctx_stats(ctx));
cleanup:
    ch_stix_ctx_free(ctx);
    ch_intel_catalog_free(cat);
    ch_refsets_free(sets);
    return rc;
}

static bool is_bundle_file(const char *path, ch_error *err, int *rc)
{
    ch_input *in = NULL;
    *rc = ch_input_open(&in, path, 0, err);
    if (*rc < 0)
        return false;
    long got = ch_input_fill(in, 8192, err);
    bool yes = false;
    if (got < 0) {
        *rc = (int)got;
    } else {
        size_t n;
        const char *d = ch_input_data(in, &n);
        yes = ch_stix_looks_like_bundle(d, n);
    }
    ch_input_close(in);
    return yes;
}

int ch_cmd_intel_load(int argc, char **argv)
{
    static const struct option lo[] = {
        {"db", required_argument, NULL, 'd'},
        {"set", required_argument, NULL, 's'},
        {"type", required_argument, NULL, 't'},
        {"feed", required_argument, NULL, 'f'},
        {"ttl", required_argument, NULL, 'T'},
        {"domain-set", required_argument, NULL, 'D'},
        {"ip-set", required_argument, NULL, 'I'},
        {"url-set", required_argument, NULL, 'U'},
        {"allow-catch-all", no_argument, NULL, 'A'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    load_opts o;
    memset(&o, 0, sizeof o);
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":d:s:t:f:T:D:I:U:Ah", lo, NULL)) != -1) {
        switch (c) {
        case 'd':
            o.db = optarg;
            break;
        case 's':
            o.set = optarg;
            break;
        case 'f':
            o.feed = optarg;
            break;
        case 'D':
            o.dset = optarg;
            break;
        case 'I':
            o.iset = optarg;
            break;
        case 'U':
            o.uset = optarg;
            break;
        case 'A':
            o.allow_catch_all = true;
            break;
        case 't':
            if (ch_refset_type_from_name(optarg, strlen(optarg), &o.type) < 0) {
                fprintf(stderr, "coinhound intel load: unknown type '%s'\n", optarg);
                return CH_EXIT_USAGE;
            }
            break;
        case 'T':
            if (!ch_cli_parse_duration(optarg, &o.ttl_ms) || o.ttl_ms == 0) {
                fprintf(stderr, "coinhound intel load: --ttl takes a duration like 24h\n");
                return CH_EXIT_USAGE;
            }
            break;
        case 'h':
            load_usage(stdout);
            return CH_EXIT_OK;
        case ':':
            fprintf(stderr, "coinhound intel load: option '%s' needs a value\n", argv[optind - 1]);
            return CH_EXIT_USAGE;
        default:
            fprintf(stderr, "coinhound intel load: unknown option '%s'\n", argv[optind - 1]);
            return CH_EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        load_usage(stderr);
        return CH_EXIT_USAGE;
    }
    ch_error err = {0};
    ch_intel_store *st = NULL;
    if (ch_intel_store_open(o.db, &st, &err) < 0) {
        fprintf(stderr, "coinhound intel load: %s\n", err.msg);
        return CH_EXIT_FAIL;
    }
    int status = CH_EXIT_OK;
    for (int i = optind; i < argc; i++) {
        const char *path = argv[i];
        int rc = 0;
        memset(&err, 0, sizeof err);
        bool bundle = is_bundle_file(path, &err, &rc);
        if (rc == 0) {
            if (bundle) {
                rc = load_stix(st, &o, path, &err);
            } else {
                char name[CH_REFSET_NAME_MAX + 1];
                if (o.set != NULL)
                    snprintf(name, sizeof name, "%s", o.set);
                else
                    ch_cli_set_name_from_path(path, name, sizeof name);
                char feed[CH_REFSET_NAME_MAX + 1];
                ch_cli_set_name_from_path(path, feed, sizeof feed);
                rc = ch_cli_import_list(st, path, name, o.type, o.feed ? o.feed : feed, o.ttl_ms,
                                        stdout, &err);
            }
        }
        if (rc < 0) {
            fprintf(stderr, "coinhound intel load: %s\n", err.msg[0] ? err.msg : ch_strerror(rc));
            status = CH_EXIT_FAIL;
        }
    }
    ch_intel_store_close(st);
    /* Indicators that arrive after the logs still find them (store/retro.h). */
    if (status == CH_EXIT_OK && ch_retro_after_intel(o.db, stdout, &err) < 0) {
        fprintf(stderr, "coinhound intel load: retro-hunt: %s\n", err.msg);
        status = CH_EXIT_FAIL;
    }
    return status;
}
