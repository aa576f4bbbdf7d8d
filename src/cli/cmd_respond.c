/*
 * cmd_respond.c - `coinhound respond`: response plans from stored offenses (plan, show) and the
 * network side for firewalls, IPS and resolvers (export). A thin layer over src/response/.
 *
 * `plan` stores every plan it prints (response_plans, with an id) and writes a "proposed"
 * entry to the audit log: a plan is the record of what was proposed, to whom and when, before
 * anyone approves it. Nothing here calls AWS: plans are dry runs. The database must exist
 * (plans are made from what `analyze` stored); output is built in a buffer and written at once.
 */
#include "cli/cmd_respond.h"

#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd_refset.h"
#include "core/mem.h"
#include "offense/store.h"
#include "response/export.h"
#include "response/plan.h"
#include "response/resp_store.h"
#include "server/audit.h"

#define OUT_MAX (256u << 20)

static void usage(FILE *f)
{
    fprintf(f,
            "usage: coinhound respond plan   OFFENSE_ID [--db FILE] [--format text|json]\n"
            "                                [--terminate] [--quarantine-group NAME]\n"
            "       coinhound respond show   PLAN_ID [--db FILE]\n"
            "       coinhound respond export OFFENSE_ID --format nft|suricata|rpz|list\n"
            "                                [--db FILE] [--output FILE]\n\n"
            "plan builds the containment plan for an offense from its evidence (the access keys,\n"
            "instances, pool domains and addresses it names), stores it with an id (printed;\n"
            "on stderr with --format json) and audits it as proposed. It calls nothing: a plan\n"
            "is a dry run. --terminate terminates instead of stopping (irreversible).\n"
            "show prints a stored plan's JSON. export writes the block lists for nftables,\n"
            "Suricata, an RPZ zone (BIND, Unbound) or a plain list. Default database %s/%s.\n",
            ch_data_dir(), CH_STORE_DEFAULT_NAME);
}

typedef struct opts {
    const char *action, *db, *format, *output, *quarantine, *id_arg;
    bool terminate;
} opts;

static int parse(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"db", required_argument, NULL, 'd'},
        {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'},
        {"terminate", no_argument, NULL, 't'},
        {"quarantine-group", required_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    int c = ch_cli_action_start(argc, argv, usage, &o->action);
    if (c != -1)
        return c;
    int ac = argc - 1;
    char **av = argv + 1;
    while ((c = getopt_long(ac, av, ":d:f:o:tq:h", lo, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->db = optarg;
            break;
        case 'f':
            o->format = optarg;
            break;
        case 'o':
            o->output = optarg;
            break;
        case 't':
            o->terminate = true;
            break;
        case 'q':
            o->quarantine = optarg;
            break;
        case 'h':
            usage(stdout);
            return CH_EXIT_OK;
        default:
            return ch_cli_bad_option("coinhound respond", c, av);
        }
    }
    if (optind < ac)
        o->id_arg = av[optind++];
    if (optind < ac) {
        fprintf(stderr, "coinhound respond %s: unexpected argument '%s'\n", o->action, av[optind]);
        return CH_EXIT_USAGE;
    }
    return -1;
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

static int db_path(const opts *o, char *def, size_t n, const char **path)
{
    *path = o->db;
    if (*path == NULL) {
        if (ch_store_default_path(def, n) < 0) {
            fprintf(stderr, "coinhound respond: data directory path too long\n");
            return CH_EXIT_FAIL;
        }
        *path = def;
    }
    struct stat st;
    if (stat(*path, &st) != 0) {
        fprintf(stderr,
                "coinhound respond: no database at %s (run 'coinhound analyze' first, or give "
                "--db)\n",
                *path);
        return CH_EXIT_FAIL;
    }
    return CH_EXIT_OK;
}

static int emit(const ch_buf *b, const char *output)
{
    FILE *f = output != NULL ? fopen(output, "w") : stdout;
    if (f == NULL) {
        fprintf(stderr, "coinhound respond: cannot write %s: %s\n", output, strerror(errno));
        return CH_EXIT_FAIL;
    }
    bool ok = fwrite(b->data, 1, b->len, f) == b->len && fflush(f) == 0;
    if (output != NULL)
        ok = fclose(f) == 0 && ok;
    if (!ok) {
        fprintf(stderr, "coinhound respond: cannot write %s: %s\n",
                output != NULL ? output : "the output", strerror(errno));
        return CH_EXIT_FAIL;
    }
    return CH_EXIT_OK;
}

/* Load one offense (with its observables) into a new manager. */
static int load_offense(const char *path, int64_t id, ch_offenses **m, ch_error *err)
{
    ch_store *s = NULL;
    *m = ch_offenses_new();
    if (*m == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    int rc = ch_store_open(path, &s, err);
    if (rc >= 0)
        rc = ch_store_load_one(s, id, *m, err);
    ch_store_close(s);
    return rc < 0 ? rc : 0;
}

static void local_actor(char *buf, size_t cap)
{
    const struct passwd *pw = getpwuid(geteuid());
    if (pw != NULL && pw->pw_name != NULL && *pw->pw_name)
        snprintf(buf, cap, "%s", pw->pw_name);
    else
        snprintf(buf, cap, "uid:%u", (unsigned)geteuid());
}

static int do_plan(const opts *o, const char *path, int64_t id, bool json)
{
    ch_error err = {0};
    ch_offenses *m = NULL;
    ch_resp_store *rs = NULL;
    ch_resp_plan *p = NULL;
    ch_resp_linked *linked = NULL;
    ch_audit *au = NULL;
    size_t nlinked = 0;
    ch_buf b, after;
    ch_buf_init(&b, OUT_MAX);
    ch_buf_init(&after, CH_AUDIT_JSON_MAX);
    int64_t now = ch_cli_now_ms();
    char actor[128], object[64];
    local_actor(actor, sizeof actor);
    int rc = load_offense(path, id, &m, &err);
    if (rc >= 0)
        rc = ch_resp_store_open(path, &rs, &err);
    const ch_offense *off = rc >= 0 ? ch_offenses_at(m, 0) : NULL;
    if (rc >= 0)
        rc = ch_resp_store_linked(rs, off, &linked, &nlinked, &err);
    if (rc >= 0) {
        ch_resp_opts ro = {o->terminate, o->quarantine, now, linked, nlinked};
        rc = ch_resp_plan_build(off, &ro, &p, &err);
    }
    if (rc >= 0)
        rc = ch_resp_store_put(rs, p, actor, now, &err);
    /* The audit entry names the plan and its offense; the steps are in the plan's row. */
    if (rc >= 0)
        rc = ch_audit_open(path, false, &au, &err);
    if (rc >= 0) {
        snprintf(object, sizeof object, "response_plan:%lld", (long long)p->id);
        ch_buf_printf(&after, "{\"offense\":%lld,\"status\":\"proposed\",\"steps\":%zu}",
                      (long long)p->offense_id, p->nsteps);
        ch_buf_addc(&after, '\0');
        ch_audit_entry e = {.ts = now,
                            .actor = actor,
                            .source = "cli",
                            .action = "response.plan.proposed",
                            .object = object,
                            .after = after.data};
        rc = ch_audit_append(au, &e, &err);
    }
    if (rc >= 0) {
        rc = json ? ch_resp_plan_json(&b, p) : ch_resp_plan_text(&b, p);
        if (rc >= 0)
            rc = ch_buf_addc(&b, '\n');
        if (rc < 0)
            ch_error_set(&err, rc, "cannot render the plan (%s)", ch_strerror(rc));
    }
    int status = CH_EXIT_OK;
    if (rc < 0) {
        fprintf(stderr, "coinhound respond plan: %s\n", err.msg);
        status = CH_EXIT_FAIL;
    } else {
        if (json)
            fprintf(stderr, "coinhound respond: plan %lld stored (offense %lld, %zu steps)\n",
                    (long long)p->id, (long long)id, p->nsteps);
        status = emit(&b, o->output);
    }
    ch_audit_close(au);
    ch_free(linked);
    ch_resp_plan_free(p);
    ch_resp_store_close(rs);
    ch_offenses_free(m);
    ch_buf_free(&b);
    ch_buf_free(&after);
    return status;
}

static int do_show(const opts *o, const char *path, int64_t id)
{
    ch_error err = {0};
    ch_resp_store *rs = NULL;
    char *json = NULL, status[32];
    int64_t off = 0;
    int rc = ch_resp_store_open(path, &rs, &err);
    if (rc >= 0)
        rc = ch_resp_store_get(rs, id, &json, &off, status, &err);
    ch_resp_store_close(rs);
    if (rc < 0) {
        fprintf(stderr, "coinhound respond show: %s\n", err.msg);
        return CH_EXIT_FAIL;
    }
    ch_buf b;
    ch_buf_init(&b, OUT_MAX);
    ch_buf_adds(&b, json);
    ch_buf_addc(&b, '\n');
    fprintf(stderr, "coinhound respond: plan %lld, offense %lld, %s\n", (long long)id,
            (long long)off, status);
    int st = emit(&b, o->output);
    ch_buf_free(&b);
    ch_free(json);
    return st;
}

static int do_export(const opts *o, const char *path, int64_t id)
{
    ch_error err = {0};
    ch_offenses *m = NULL;
    ch_buf b;
    ch_buf_init(&b, OUT_MAX);
    int rc = load_offense(path, id, &m, &err);
    if (rc >= 0)
        rc = ch_resp_export(&b, o->format, ch_offenses_at(m, 0), ch_cli_now_ms(), &err);
    ch_offenses_free(m);
    int st = rc < 0 ? CH_EXIT_FAIL : emit(&b, o->output);
    if (rc < 0)
        fprintf(stderr, "coinhound respond export: %s\n", err.msg);
    ch_buf_free(&b);
    return st;
}

int ch_cmd_respond(int argc, char **argv)
{
    opts o;
    int status = parse(argc, argv, &o);
    if (status >= 0)
        return status;
    bool is_plan = strcmp(o.action, "plan") == 0, is_show = strcmp(o.action, "show") == 0;
    bool is_export = strcmp(o.action, "export") == 0;
    if (!is_plan && !is_show && !is_export) {
        fprintf(stderr, "coinhound respond: unknown action '%s'\n", o.action);
        usage(stderr);
        return CH_EXIT_USAGE;
    }
    int64_t id = 0;
    if (!parse_id(o.id_arg, &id)) {
        fprintf(stderr, "coinhound respond %s: needs %s id (a positive integer)%s%s\n", o.action,
                is_show ? "a plan" : "an offense", o.id_arg ? ", not " : "",
                o.id_arg ? o.id_arg : "");
        return CH_EXIT_USAGE;
    }
    bool json = false;
    if (is_plan) {
        if (o.format != NULL && strcmp(o.format, "text") != 0 && strcmp(o.format, "json") != 0) {
            fprintf(stderr, "coinhound respond plan: --format must be text or json, not '%s'\n",
                    o.format);
            return CH_EXIT_USAGE;
        }
        json = o.format != NULL && strcmp(o.format, "json") == 0;
    } else if (is_export) {
        bool known = false;
        for (const char *const *f = ch_resp_export_formats(); *f != NULL && o.format; f++)
            known = known || strcmp(*f, o.format) == 0;
        if (!known) {
            fprintf(stderr,
                    "coinhound respond export: --format must be nft, suricata, rpz or list%s%s\n",
                    o.format ? ", not " : "", o.format ? o.format : "");
            return CH_EXIT_USAGE;
        }
    } else if (o.format != NULL) {
        fprintf(stderr, "coinhound respond show: --format is for plan and export\n");
        return CH_EXIT_USAGE;
    }
    if (!is_plan && (o.terminate || o.quarantine != NULL)) {
        fprintf(stderr, "coinhound respond %s: --terminate and --quarantine-group go with plan\n",
                o.action);
        return CH_EXIT_USAGE;
    }
    char def[4096];
    const char *path = NULL;
    if ((status = db_path(&o, def, sizeof def, &path)) != CH_EXIT_OK)
        return status;
    if (is_plan)
        return do_plan(&o, path, id, json);
    if (is_show)
        return do_show(&o, path, id);
    return do_export(&o, path, id);
}
