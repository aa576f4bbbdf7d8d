/*
 * cmd_offenses_graph.c - `coinhound offenses graph`: a thin layer over investigate/graph.h. It
 * never creates a database (a mistyped --db is an error); output is built in a buffer and
 * written at once.
 */
#include "cli/cmd_offenses_graph.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/cmd_refset.h"
#include "investigate/facts.h"
#include "investigate/graph.h"
#include "offense/store.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: coinhound offenses graph ID [--db FILE] [--format json|dot]\n"
            "                                   [--expand GROUP] [--group-min N] [--hub-max N]\n\n"
            "The offense's investigation graph: principals, addresses, user agents, regions,\n"
            "instances, interfaces, domains, pool addresses, indicators and rules, with edges\n"
            "carrying first/last time and counts. json is cytoscape.js's elements shape, dot is\n"
            "for Graphviz (dot -Tsvg). Instances of one launch burst (one principal's launches\n"
            "at most 15 minutes apart) become a group node when there are --group-min (5) or\n"
            "more; --expand names\n"
            "a group node to draw its members. A node with more than --hub-max (25) neighbours\n"
            "of one kind keeps the busiest and summarises the rest. Default database %s/%s.\n",
            ch_data_dir(), CH_STORE_DEFAULT_NAME);
}

int ch_cmd_offenses_graph(int argc, char **argv)
{
    static const struct option lo[] = {
        {"db", required_argument, NULL, 'd'},
        {"format", required_argument, NULL, 'f'},
        {"expand", required_argument, NULL, 'e'},
        {"group-min", required_argument, NULL, 'g'},
        {"hub-max", required_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL, *format = "json", *id_arg = NULL;
    ch_graph_opts go = {0};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":d:f:e:g:m:h", lo, NULL)) != -1) {
        unsigned long v;
        switch (c) {
        case 'd':
            db = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "json") != 0 && strcmp(optarg, "dot") != 0) {
                fprintf(stderr,
                        "coinhound offenses graph: --format must be json or dot, not '%s'\n",
                        optarg);
                return CH_EXIT_USAGE;
            }
            format = optarg;
            break;
        case 'e':
            go.expand = optarg;
            break;
        case 'g':
        case 'm':
            if (!ch_cli_parse_count(optarg, 100000, &v) || v == 0) {
                fprintf(stderr, "coinhound offenses graph: --%s takes 1..100000, not '%s'\n",
                        c == 'g' ? "group-min" : "hub-max", optarg);
                return CH_EXIT_USAGE;
            }
            if (c == 'g')
                go.group_min = v;
            else
                go.hub_max = v;
            break;
        case 'h':
            usage(stdout);
            return CH_EXIT_OK;
        default:
            return ch_cli_bad_option("coinhound offenses graph", c, argv);
        }
    }
    if (optind < argc)
        id_arg = argv[optind++];
    char *end = NULL;
    errno = 0;
    long long id = id_arg ? strtoll(id_arg, &end, 10) : 0;
    if (id_arg == NULL || *end || errno || id <= 0) {
        fprintf(stderr, "coinhound offenses graph: needs an offense id (a positive integer)%s%s\n",
                id_arg ? ", not " : "", id_arg ? id_arg : "");
        return CH_EXIT_USAGE;
    }
    if (optind < argc) {
        fprintf(stderr, "coinhound offenses graph: unexpected argument '%s'\n", argv[optind]);
        return CH_EXIT_USAGE;
    }
    char def[4096];
    if (db == NULL) {
        if (ch_store_default_path(def, sizeof def) < 0) {
            fprintf(stderr, "coinhound offenses graph: data directory path too long\n");
            return CH_EXIT_FAIL;
        }
        db = def;
    }
    struct stat st;
    if (stat(db, &st) != 0) {
        fprintf(stderr,
                "coinhound offenses graph: no database at %s (run 'coinhound analyze' first, or "
                "give --db)\n",
                db);
        return CH_EXIT_FAIL;
    }
    ch_error err = {0};
    ch_store *s = NULL;
    ch_graph *g = NULL;
    ch_buf b;
    ch_buf_init(&b, (size_t)256 << 20);
    int status = CH_EXIT_FAIL, rc;
    if (ch_store_open(db, &s, &err) < 0 || ch_facts_schema(ch_store_sql(s), &err) < 0 ||
        ch_graph_load(ch_store_sql(s), id, &go, &g, &err) < 0) {
        fprintf(stderr, "coinhound offenses graph: %s\n", err.msg);
        goto done;
    }
    rc = strcmp(format, "dot") == 0 ? ch_graph_dot(g, &b) : ch_graph_json(g, &b);
    if (rc >= 0 && strcmp(format, "json") == 0)
        rc = ch_buf_addc(&b, '\n');
    if (rc < 0) {
        fprintf(stderr, "coinhound offenses graph: cannot render the graph (%s)\n",
                ch_strerror(rc));
        goto done;
    }
    if (fwrite(b.data, 1, b.len, stdout) != b.len || fflush(stdout) != 0) {
        fprintf(stderr, "coinhound offenses graph: cannot write output: %s\n", strerror(errno));
        goto done;
    }
    status = CH_EXIT_OK;
done:
    ch_graph_free(g);
    ch_buf_free(&b);
    ch_store_close(s);
    return status;
}
