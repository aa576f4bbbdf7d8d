/*
 * cmd_respond.c - `coinhound respond`: response plans from stored offenses (plan, show) and the
 * network side for firewalls, IPS and resolvers (export). A thin layer over src/response/.
 *
 * `plan` stores every plan it prints (response_plans, with an id) and writes a "proposed"
 * entry to the audit log: a plan is the record of what was proposed, to whom and when, before
 * anyone approves it. `plan` calls nothing: plans are dry runs. `run` and `rollback` execute a
 * stored plan through response/run.h, refused (exit 3, audited) unless the configuration sets
 * respond.execute, --approve is given and the approver's API token is an admin's. The database
 * must exist (plans are made from what `analyze` stored); output is built in a buffer and
 * written at once.
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
#include "response/run.h"
#include "server/accounts.h"
#include "server/audit.h"
#include "server/config.h"
#include "core/readfile.h"

#define OUT_MAX (256u << 20)

static void usage(FILE *f)
{
    fprintf(f,
            "usage: coinhound respond plan   OFFENSE_ID [--db FILE] [--format text|json]\n"
            "                                [--terminate] [--quarantine-group NAME]\n"
            "       coinhound respond show   PLAN_ID [--db FILE]\n"
            "       coinhound respond export OFFENSE_ID --format nft|suricata|rpz|list\n"
            "                                [--db FILE] [--output FILE]\n"
            "       coinhound respond run      PLAN_ID --approve --config FILE [--db FILE]\n"
            "                                  [--steps ID,ID] [--token-file FILE]\n"
            "       coinhound respond rollback PLAN_ID --approve --config FILE [--db FILE]\n"
            "                                  [--steps ID,ID] [--token-file FILE]\n\n"
            "plan builds the containment plan for an offense from its evidence (the access keys,\n"
            "instances, pool domains and addresses it names), stores it with an id (printed;\n"
            "on stderr with --format json) and audits it as proposed. It calls nothing: a plan\n"
            "is a dry run. --terminate terminates instead of stopping (irreversible).\n"
            "show prints a stored plan's JSON. export writes the block lists for nftables,\n"
            "Suricata, an RPZ zone (BIND, Unbound) or a plain list.\n"
            "run makes a stored plan's AWS calls, in order (only --steps when given); rollback\n"
            "undoes the steps that ran, in reverse order. Both need respond.execute: true in\n"
            "the configuration (--config, the serve configuration), --approve, and an admin's\n"
            "API token (COINHOUND_TOKEN, or --token-file); they are refused (exit 3) and the\n"
            "refusal audited otherwise. Default database %s/%s.\n",
            ch_data_dir(), CH_STORE_DEFAULT_NAME);
}

typedef struct opts {
    const char *action, *db, *format, *output, *quarantine, *id_arg;
    const char *config, *steps, *token_file;
    bool terminate, approve;
} opts;

enum { EXIT_REFUSED = 3 };

static int parse(int argc, char **argv, opts *o)
{
    static const struct option lo[] = {
        {"db", required_argument, NULL, 'd'},
        {"format", required_argument, NULL, 'f'},
        {"output", required_argument, NULL, 'o'},
        {"terminate", no_argument, NULL, 't'},
        {"quarantine-group", required_argument, NULL, 'q'},
        {"approve", no_argument, NULL, 'A'},
        {"config", required_argument, NULL, 'c'},
        {"steps", required_argument, NULL, 's'},
        {"token-file", required_argument, NULL, 'T'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    int c = ch_cli_action_start(argc, argv, usage, &o->action);
    if (c != -1)
        return c;
    int ac = argc - 1;
    char **av = argv + 1;
    while ((c = getopt_long(ac, av, ":d:f:o:tq:Ac:s:T:h", lo, NULL)) != -1) {
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
        case 'A':
            o->approve = true;
            break;
        case 'c':
            o->config = optarg;
            break;
        case 's':
            o->steps = optarg;
            break;
        case 'T':
            o->token_file = optarg;
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
    ch_resp_plan *p = NULL;
    ch_buf b;
    ch_buf_init(&b, OUT_MAX);
    char actor[128];
    local_actor(actor, sizeof actor);
    ch_resp_propose_opts po = {.terminate = o->terminate,
                               .quarantine = o->quarantine,
                               .actor = actor,
                               .source = "cli",
                               .now_ms = ch_cli_now_ms()};
    int rc = ch_resp_propose(path, id, &po, &p, &err);
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
    ch_resp_plan_free(p);
    ch_buf_free(&b);
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

/* The approver's API token: --token-file, else COINHOUND_TOKEN. NULL when neither. */
static char *approver_token(const opts *o, ch_error *err)
{
    if (o->token_file == NULL) {
        const char *t = getenv("COINHOUND_TOKEN");
        return t != NULL && *t ? ch_strdup(t) : NULL;
    }
    char *text = NULL;
    size_t len = 0;
    if (ch_read_file(o->token_file, 4096, &text, &len, err) < 0)
        return NULL;
    while (len > 0 && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        text[--len] = '\0';
    return text;
}

static int refused(const char *path, int64_t id, const char *actor, const char *reason)
{
    ch_error err = {0};
    if (ch_resp_audit_refusal(path, id, actor, "cli", reason, &err) < 0 &&
        err.code != CH_RESP_REFUSED)
        fprintf(stderr, "coinhound respond: cannot audit the refusal: %s\n", err.msg);
    fprintf(stderr, "coinhound respond: refused: %s\n", reason);
    return EXIT_REFUSED;
}

static int do_run(const opts *o, const char *path, int64_t id, bool rollback)
{
    const char *cmd = rollback ? "rollback" : "run";
    char os_actor[128], actor[CH_ACCOUNT_NAME_MAX + 1];
    local_actor(os_actor, sizeof os_actor);
    ch_error err = {0};
    ch_serve_config cfg;
    memset(&cfg, 0, sizeof cfg);
    if (o->config == NULL)
        return refused(path, id, os_actor,
                       "execution is off: no --config (respond.execute: true in the serve "
                       "configuration turns it on)");
    if (ch_serve_config_load(o->config, &cfg, &err) < 0) {
        fprintf(stderr, "coinhound respond %s: %s\n", cmd, err.msg);
        return CH_EXIT_FAIL;
    }
    if (!o->approve) {
        ch_serve_config_free(&cfg);
        return refused(path, id, os_actor,
                       "not approved: running or rolling back a plan needs --approve");
    }
    /* The approver must be an admin: their API token says who they are. */
    int status = CH_EXIT_OK;
    char *tok = approver_token(o, &err);
    ch_accounts *acc = NULL;
    ch_token_info ti;
    if (tok == NULL && err.code != 0) {
        fprintf(stderr, "coinhound respond %s: %s\n", cmd, err.msg);
        status = CH_EXIT_FAIL;
    } else if (tok == NULL) {
        status = refused(path, id, os_actor,
                         "no approver: an admin's API token (COINHOUND_TOKEN or --token-file) "
                         "says who approves the run");
    } else if (ch_accounts_open(path, false, &acc, &err) < 0 ||
               ch_token_verify(acc, tok, strlen(tok), "cli", &ti, &err) < 0) {
        status = refused(path, id, os_actor, "the approver's API token is not valid");
    } else if (ti.role != CH_ROLE_ADMIN) {
        char why[256];
        snprintf(why, sizeof why, "token %s has the role %s; running a plan needs an admin",
                 ti.name, ch_role_name(ti.role));
        status = refused(path, id, ti.name, why);
    }
    ch_accounts_close(acc);
    if (tok != NULL) {
        memset(tok, 0, strlen(tok));
        ch_free(tok);
    }
    if (status != CH_EXIT_OK) {
        ch_serve_config_free(&cfg);
        return status;
    }
    snprintf(actor, sizeof actor, "%s", ti.name);
    /* --steps 1,4,7 */
    char *list = o->steps != NULL ? ch_strdup(o->steps) : NULL;
    const char *ids[CH_RESP_MAX_STEPS];
    size_t nids = 0;
    for (char *p = list, *save = NULL, *t; p != NULL && (t = strtok_r(p, ",", &save)) != NULL;
         p = NULL)
        do {
            if (nids < CH_RESP_MAX_STEPS)
                ids[nids++] = t;
        } while ((t = strtok_r(NULL, ",", &save)) != NULL);
    ch_resp_run_opts ro = {.db = path,
                           .plan_id = id,
                           .cfg = &cfg.respond,
                           .actor = actor,
                           .source = "cli",
                           .approved = o->approve,
                           .rollback = rollback,
                           .steps = list != NULL ? ids : NULL,
                           .nsteps = nids,
                           .progress = stderr};
    ch_resp_run_result res;
    int rc = ch_resp_run(&ro, &res, &err);
    if (rc == CH_RESP_REFUSED) {
        fprintf(stderr, "coinhound respond: refused: %s\n", err.msg);
        status = EXIT_REFUSED;
    } else if (rc < 0) {
        fprintf(stderr, "coinhound respond %s: %s\n", cmd, err.msg);
        status = CH_EXIT_FAIL;
    }
    if (rc >= 0 || rc == CH_EIO)
        printf("plan %lld: %zu step%s %s now (%zu already so), %zu done before, %zu failed; "
               "status %s\n",
               (long long)id, res.done, res.done == 1 ? "" : "s", rollback ? "rolled back" : "done",
               res.already, res.skipped, res.failed, res.status);
    ch_free(list);
    ch_serve_config_free(&cfg);
    return status;
}

int ch_cmd_respond(int argc, char **argv)
{
    opts o;
    int status = parse(argc, argv, &o);
    if (status >= 0)
        return status;
    bool is_plan = strcmp(o.action, "plan") == 0, is_show = strcmp(o.action, "show") == 0;
    bool is_export = strcmp(o.action, "export") == 0;
    bool is_run = strcmp(o.action, "run") == 0, is_rollback = strcmp(o.action, "rollback") == 0;
    if (!is_plan && !is_show && !is_export && !is_run && !is_rollback) {
        fprintf(stderr, "coinhound respond: unknown action '%s'\n", o.action);
        usage(stderr);
        return CH_EXIT_USAGE;
    }
    int64_t id = 0;
    if (!parse_id(o.id_arg, &id)) {
        fprintf(stderr, "coinhound respond %s: needs %s id (a positive integer)%s%s\n", o.action,
                is_show || is_run || is_rollback ? "a plan" : "an offense",
                o.id_arg ? ", not " : "", o.id_arg ? o.id_arg : "");
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
        fprintf(stderr, "coinhound respond %s: --format is for plan and export\n", o.action);
        return CH_EXIT_USAGE;
    }
    if (!is_plan && (o.terminate || o.quarantine != NULL)) {
        fprintf(stderr, "coinhound respond %s: --terminate and --quarantine-group go with plan\n",
                o.action);
        return CH_EXIT_USAGE;
    }
    if (!is_run && !is_rollback &&
        (o.approve || o.config != NULL || o.steps != NULL || o.token_file != NULL)) {
        fprintf(stderr,
                "coinhound respond %s: --approve, --config, --steps and --token-file go with run "
                "and rollback\n",
                o.action);
        return CH_EXIT_USAGE;
    }
    char def[4096];
    const char *path = NULL;
    if ((status = db_path(&o, def, sizeof def, &path)) != CH_EXIT_OK)
        return status;
    if (is_run || is_rollback)
        return do_run(&o, path, id, is_rollback);
    if (is_plan)
        return do_plan(&o, path, id, json);
    if (is_show)
        return do_show(&o, path, id);
    return do_export(&o, path, id);
}
