/*
 * cmd_users.c - `coinhound users show`: a thin layer over uba/timeline.h. It never creates a
 * database (a mistyped --db is an error); output is built in a buffer and written at once.
 */
#include "cli/cmd_users.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "cli/cmd_refset.h"
#include "offense/store.h"
#include "uba/timeline.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: coinhound users show NAME [--timeline] [--format table|json] [--db FILE]\n\n"
            "A user (an IAM user name, root, or a role) as the analyses stored it: the risk\n"
            "score (0-100, with the raw sum) against the population's threshold, who created\n"
            "or empowered the user and whom the user did, the offenses the user is in, and\n"
            "with --timeline every first (login from a country, region, instance type, API),\n"
            "rule hit and offense in event-time order. Default database %s/%s.\n",
            ch_data_dir(), CH_STORE_DEFAULT_NAME);
}

int ch_cmd_users(int argc, char **argv)
{
    static const struct option lo[] = {
        {"db", required_argument, NULL, 'd'},
        {"format", required_argument, NULL, 'f'},
        {"timeline", no_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *action = NULL;
    int c = ch_cli_action_start(argc, argv, usage, &action);
    if (c != -1)
        return c;
    if (strcmp(action, "show") != 0) {
        fprintf(stderr, "coinhound users: unknown action '%s'\n", action);
        usage(stderr);
        return CH_EXIT_USAGE;
    }
    const char *db = NULL, *name = NULL;
    bool json = false;
    unsigned flags = 0;
    int ac = argc - 1;
    char **av = argv + 1;
    while ((c = getopt_long(ac, av, ":d:f:th", lo, NULL)) != -1) {
        switch (c) {
        case 'd':
            db = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "table") != 0 && strcmp(optarg, "json") != 0) {
                fprintf(stderr, "coinhound users: --format must be table or json, not '%s'\n",
                        optarg);
                return CH_EXIT_USAGE;
            }
            json = strcmp(optarg, "json") == 0;
            break;
        case 't':
            flags |= CH_USER_TIMELINE;
            break;
        case 'h':
            usage(stdout);
            return CH_EXIT_OK;
        default:
            return ch_cli_bad_option("coinhound users", c, av);
        }
    }
    if (optind < ac)
        name = av[optind++];
    if (name == NULL || *name == '\0') {
        fprintf(stderr, "coinhound users show: needs a user name\n");
        return CH_EXIT_USAGE;
    }
    if (optind < ac) {
        fprintf(stderr, "coinhound users show: unexpected argument '%s'\n", av[optind]);
        return CH_EXIT_USAGE;
    }
    char def[4096];
    if (db == NULL) {
        if (ch_store_default_path(def, sizeof def) < 0) {
            fprintf(stderr, "coinhound users: data directory path too long\n");
            return CH_EXIT_FAIL;
        }
        db = def;
    }
    struct stat st;
    if (stat(db, &st) != 0) {
        fprintf(stderr,
                "coinhound users: no database at %s (run 'coinhound analyze' first, or give "
                "--db)\n",
                db);
        return CH_EXIT_FAIL;
    }
    ch_error err = {0};
    ch_store *s = NULL;
    ch_buf b;
    ch_buf_init(&b, (size_t)64 << 20);
    int status = CH_EXIT_FAIL;
    int rc = ch_store_open(db, &s, &err);
    if (rc == 0)
        rc = json ? ch_user_timeline_json(s, name, strlen(name), flags, &b, &err)
                  : ch_user_timeline_text(s, name, strlen(name), flags, &b, &err);
    if (rc == 0 && json)
        rc = ch_buf_addc(&b, '\n');
    if (rc < 0) {
        fprintf(stderr, "coinhound users show: %s\n", err.msg);
    } else if (fwrite(b.data, 1, b.len, stdout) != b.len || fflush(stdout) != 0) {
        fprintf(stderr, "coinhound users: cannot write output: %s\n", strerror(errno));
    } else {
        status = CH_EXIT_OK;
    }
    ch_buf_free(&b);
    ch_store_close(s);
    return status;
}
