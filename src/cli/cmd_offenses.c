/*
 * cmd_offenses.c - `coinhound offenses`: list, show, close and hide stored offenses, and list
 * users by risk. A thin layer over src/offense/store.h and the renderers of offense.h and
 * risk.h; it never creates a database (a mistyped --db is an error, not a new empty file).
 * Output is built in a buffer and written at once, so a failure prints nothing half-done.
 */
#include "cli/cmd_offenses.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/cmd_offenses_graph.h"
#include "cli/cmd_search.h"
#include "cli/cmd_refset.h"
#include "offense/store.h"

#define OUT_MAX (256u << 20) /* output cap: far above any real listing */

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: coinhound offenses list  [--db FILE] [--format table|json]\n"
        "                                [--status open|closed|hidden|all] [--limit N]\n"
        "       coinhound offenses show  ID [--db FILE] [--format table|json] [--events]\n"
        "       coinhound offenses close ID [--db FILE] [--note TEXT]\n"
        "       coinhound offenses hide  ID [--db FILE] [--note TEXT]\n"
        "       coinhound offenses users [--db FILE] [--format table|json] [--limit N]\n"
        "       coinhound offenses graph ID [--db FILE] [--format json|dot] [--expand GROUP]\n\n"
        "Offenses are stored by 'coinhound analyze' (default database %s/%s).\n"
        "list shows open offenses by default, highest magnitude first. close is final: a\n"
        "later hit on the same index value opens a new offense. A hidden offense still\n"
        "collects hits but leaves the default listing.\n",
        ch_data_dir(), CH_STORE_DEFAULT_NAME);
}

typedef struct opts {
    const char *action;
    const char *db;
    const char *format;
    const char *note;
    unsigned status_mask;
    size_t limit;
    bool json;
    bool events; /* show: the contributing events from the event store */
    const char *id_arg;
} opts;

static int parse(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"db", required_argument, NULL, 'd'},     {"format", required_argument, NULL, 'f'},
        {"status", required_argument, NULL, 's'}, {"note", required_argument, NULL, 'n'},
        {"limit", required_argument, NULL, 'l'},  {"help", no_argument, NULL, 'h'},
        {"events", no_argument, NULL, 'E'},       {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->format = "table";
    o->status_mask = CH_OFFENSE_MASK_OPEN;
    /* getopt over the action's own arguments (ch_cli_action_start resets it). */
    int c = ch_cli_action_start(argc, argv, usage, &o->action);
    if (c != -1)
        return c;
    int ac = argc - 1;
    char **av = argv + 1;
    while ((c = getopt_long(ac, av, ":d:f:s:n:l:h", lo, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->db = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "table") != 0 && strcmp(optarg, "json") != 0) {
                fprintf(stderr, "coinhound offenses: --format must be table or json, not '%s'\n",
                        optarg);
                return CH_EXIT_USAGE;
            }
            o->format = optarg;
            break;
        case 's': {
            ch_offense_status st;
            if (strcmp(optarg, "all") == 0) {
                o->status_mask = CH_OFFENSE_MASK_ALL;
            } else if (ch_offense_status_parse(optarg, &st)) {
                o->status_mask = 1u << st;
            } else {
                fprintf(stderr,
                        "coinhound offenses: --status must be open, closed, hidden or all, not "
                        "'%s'\n",
                        optarg);
                return CH_EXIT_USAGE;
            }
            break;
        }
        case 'n':
            o->note = optarg;
            break;
        case 'E':
            o->events = true;
            break;
        case 'l': {
            unsigned long v;
            if (!ch_cli_parse_count(optarg, 1000000, &v)) {
                fprintf(stderr, "coinhound offenses: --limit takes 0..1000000, not '%s'\n", optarg);
                return CH_EXIT_USAGE;
            }
            o->limit = v;
            break;
        }
        case 'h':
            usage(stdout);
            return CH_EXIT_OK;
        default:
            return ch_cli_bad_option("coinhound offenses", c, av);
        }
    }
    o->json = strcmp(o->format, "json") == 0;
    if (optind < ac)
        o->id_arg = av[optind++];
    if (optind < ac) {
        fprintf(stderr, "coinhound offenses %s: unexpected argument '%s'\n", o->action, av[optind]);
        return CH_EXIT_USAGE;
    }
    return -1; /* go on */
}

static bool parse_id(const char *s, int64_t *id)
{
    if (s == NULL || *s == '\0')
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno || v <= 0)
        return false;
    *id = v;
    return true;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Open an existing database; never create one here. */
static int open_existing(const opts *o, ch_store **s)
{
    char def[4096];
    const char *path = o->db;
    if (path == NULL) {
        if (ch_store_default_path(def, sizeof def) < 0) {
            fprintf(stderr, "coinhound offenses: data directory path too long\n");
            return CH_EXIT_FAIL;
        }
        path = def;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr,
                "coinhound offenses: no database at %s (run 'coinhound analyze' first, or give "
                "--db)\n",
                path);
        return CH_EXIT_FAIL;
    }
    ch_error err = {0};
    if (ch_store_open(path, s, &err) < 0) {
        fprintf(stderr, "coinhound offenses: %s\n", err.msg);
        return CH_EXIT_FAIL;
    }
    return CH_EXIT_OK;
}

static int emit(ch_buf *b)
{
    if (fwrite(b->data, 1, b->len, stdout) != b->len || fflush(stdout) != 0) {
        fprintf(stderr, "coinhound offenses: cannot write output: %s\n", strerror(errno));
        return CH_EXIT_FAIL;
    }
    return CH_EXIT_OK;
}

static int do_list(ch_store *s, const opts *o, ch_buf *b)
{
    ch_error err = {0};
    ch_offenses *m = ch_offenses_new();
    int rc = m != NULL ? ch_store_load(s, o->status_mask, m, &err)
                       : ch_error_set(&err, CH_ENOMEM, "out of memory");
    if (rc >= 0) {
        if (o->json) {
            rc = ch_buf_addc(b, '{');
            if (rc >= 0)
                rc = ch_offenses_json(b, m, o->status_mask, 0);
            if (rc >= 0)
                rc = ch_buf_adds(b, "}\n");
        } else {
            rc = ch_offenses_table(b, m, o->status_mask, o->limit);
        }
        if (rc < 0)
            ch_error_set(&err, rc, "cannot render offenses (%s)", ch_strerror(rc));
    }
    ch_offenses_free(m);
    if (rc < 0) {
        fprintf(stderr, "coinhound offenses list: %s\n", err.msg);
        return CH_EXIT_FAIL;
    }
    return emit(b);
}

static int do_show(ch_store *s, const opts *o, int64_t id, ch_buf *b)
{
    ch_error err = {0};
    ch_offenses *m = ch_offenses_new();
    int rc = m != NULL ? ch_store_load_one(s, id, m, &err)
                       : ch_error_set(&err, CH_ENOMEM, "out of memory");
    if (rc >= 0) {
        const ch_offense *off = ch_offenses_at(m, 0);
        if (o->json) {
            rc = ch_offense_json(b, off, CH_OFFENSE_JSON_DETAIL);
            if (rc >= 0)
                rc = ch_buf_addc(b, '\n');
        } else {
            rc = ch_offense_detail_text(b, off);
        }
        if (rc < 0)
            ch_error_set(&err, rc, "cannot render offense (%s)", ch_strerror(rc));
    }
    int st = rc < 0 ? CH_EXIT_FAIL : emit(b);
    /* The events after the offense, as JSON Lines with --format json. */
    if (rc >= 0 && st == CH_EXIT_OK && o->events &&
        (rc = ch_cli_offense_events(s, ch_offenses_at(m, 0), o->json, stdout, &err)) < 0)
        st = CH_EXIT_FAIL;
    ch_offenses_free(m);
    if (rc < 0) {
        fprintf(stderr, "coinhound offenses show: %s\n", err.msg);
        return CH_EXIT_FAIL;
    }
    return st;
}

static int do_users(ch_store *s, const opts *o, ch_buf *b)
{
    ch_error err = {0};
    ch_risk *r = ch_risk_new(0);
    int rc = r != NULL ? ch_store_load_users(s, r, &err)
                       : ch_error_set(&err, CH_ENOMEM, "out of memory");
    if (rc >= 0) {
        if (o->json) {
            rc = ch_buf_addc(b, '{');
            if (rc >= 0)
                rc = ch_risk_json(b, r, false);
            if (rc >= 0)
                rc = ch_buf_adds(b, "}\n");
        } else {
            rc = ch_risk_table(b, r, o->limit);
        }
        if (rc < 0)
            ch_error_set(&err, rc, "cannot render users (%s)", ch_strerror(rc));
    }
    ch_risk_free(r);
    if (rc < 0) {
        fprintf(stderr, "coinhound offenses users: %s\n", err.msg);
        return CH_EXIT_FAIL;
    }
    return emit(b);
}

int ch_cmd_offenses(int argc, char **argv)
{
    /* The investigation graph has options of its own (src/cli/cmd_offenses_graph.c). */
    if (argc > 1 && strcmp(argv[1], "graph") == 0)
        return ch_cmd_offenses_graph(argc - 1, argv + 1);
    opts o;
    int status = parse(argc, argv, &o);
    if (status >= 0)
        return status;
    bool is_list = strcmp(o.action, "list") == 0, is_show = strcmp(o.action, "show") == 0;
    bool is_close = strcmp(o.action, "close") == 0, is_hide = strcmp(o.action, "hide") == 0;
    bool is_users = strcmp(o.action, "users") == 0;
    if (!is_list && !is_show && !is_close && !is_hide && !is_users) {
        fprintf(stderr, "coinhound offenses: unknown action '%s'\n", o.action);
        usage(stderr);
        return CH_EXIT_USAGE;
    }
    int64_t id = 0;
    if ((is_show || is_close || is_hide) && !parse_id(o.id_arg, &id)) {
        fprintf(stderr, "coinhound offenses %s: needs an offense id (a positive integer)%s%s\n",
                o.action, o.id_arg ? ", not " : "", o.id_arg ? o.id_arg : "");
        return CH_EXIT_USAGE;
    }
    if ((is_list || is_users) && o.id_arg != NULL) {
        fprintf(stderr, "coinhound offenses %s: unexpected argument '%s'\n", o.action, o.id_arg);
        return CH_EXIT_USAGE;
    }
    if (o.note != NULL && !is_close && !is_hide) {
        fprintf(stderr, "coinhound offenses %s: --note goes with close or hide\n", o.action);
        return CH_EXIT_USAGE;
    }
    ch_store *s = NULL;
    if ((status = open_existing(&o, &s)) != CH_EXIT_OK)
        return status;
    ch_buf b;
    ch_buf_init(&b, OUT_MAX);
    if (is_list) {
        status = do_list(s, &o, &b);
    } else if (is_show) {
        status = do_show(s, &o, id, &b);
    } else if (is_users) {
        status = do_users(s, &o, &b);
    } else {
        ch_error err = {0};
        ch_offense_status st = is_close ? CH_OFFENSE_CLOSED : CH_OFFENSE_HIDDEN;
        int rc = ch_store_set_status(s, id, st, o.note, wall_ms(), &err);
        if (rc < 0) {
            fprintf(stderr, "coinhound offenses %s: %s\n", o.action, err.msg);
            status = rc == CH_EUSAGE ? CH_EXIT_USAGE : CH_EXIT_FAIL;
        } else {
            printf("offense %lld %s\n", (long long)id, ch_offense_status_name(st));
            status = CH_EXIT_OK;
        }
    }
    ch_buf_free(&b);
    ch_store_close(s);
    return status;
}
