/*
 * cmd_user.c - `coinhound user`, `coinhound token` and `coinhound audit` (see cmd_user.h): a
 * thin layer over src/server/accounts.h and src/server/audit.h, which do the work and write
 * the audit entries.
 *
 * The command line is where the first administrator comes from (there is no default account),
 * so `user add` and `token create` create the database when it is missing; every other action
 * needs an existing one (a mistyped --db is an error, not a new empty file).
 *
 * Secrets go to stdout alone, one line, so that scripts can take them
 * (`TOKEN=$(coinhound token create ci --role ingest)`); what to do with them goes to stderr.
 * Listings are built in a buffer and written at once, so a failure prints nothing half-done.
 */
#include "cli/cmd_user.h"

#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "cli/cli.h"
#include "cli/cmd_refset.h"
#include "core/mem.h"
#include "core/timeparse.h"
#include "offense/store.h"
#include "server/accounts.h"
#include "server/audit.h"

#define OUT_MAX (64u << 20) /* output cap: far above any real listing */

typedef struct opts {
    const char *cmd; /* "coinhound user", ... for messages */
    const char *action;
    const char *db;
    const char *arg;
    ch_role role;
    bool has_role, json, all, pw_stdin, must_change;
    bool has_since;
    int64_t since;
    size_t limit;
} opts;

static void user_usage(FILE *f)
{
    fprintf(f,
            "usage: coinhound user add NAME --role admin|analyst|viewer [--db FILE]\n"
            "       coinhound user list [--db FILE] [--format table|json]\n"
            "       coinhound user disable|enable NAME [--db FILE]\n"
            "       coinhound user passwd NAME [--password-stdin [--must-change]] [--db FILE]\n"
            "       coinhound user role NAME --role admin|analyst|viewer [--db FILE]\n"
            "       coinhound user lockouts [--db FILE] [--format table|json]\n"
            "       coinhound user unlock NAME|ADDRESS [--db FILE]\n\n"
            "Console accounts (default database %s/%s). add prints a one-time password, alone\n"
            "on stdout; it must be changed at first login. passwd prints a new one-time\n"
            "password, or sets the one read from stdin. disable ends the account's sessions.\n"
            "lockouts lists accounts and addresses with recent failed logins; unlock clears one.\n"
            "Every change is audited (coinhound audit).\n",
            ch_data_dir(), CH_STORE_DEFAULT_NAME);
}

static void token_usage(FILE *f)
{
    fprintf(f,
            "usage: coinhound token create NAME --role admin|analyst|viewer|ingest [--db FILE]\n"
            "       coinhound token list [--all] [--db FILE] [--format table|json]\n"
            "       coinhound token revoke NAME|chk_PREFIX [--db FILE]\n\n"
            "API tokens (default database %s/%s), sent as 'Authorization: Bearer TOKEN'.\n"
            "create prints the new token as the only line on stdout: it is shown once, only\n"
            "its hash is kept. list shows active tokens (--all: revoked ones too) by the\n"
            "non-secret start of the token. Every change is audited (coinhound audit).\n",
            ch_data_dir(), CH_STORE_DEFAULT_NAME);
}

static void audit_usage(FILE *f)
{
    fprintf(f,
            "usage: coinhound audit [--since 24h|ISO-TIME] [--limit N] [--db FILE]\n"
            "                       [--format table|json]\n\n"
            "The append-only audit log, oldest first: who changed what, when, from where, with\n"
            "the state before and after. --since takes a duration back from now (90s, 30m, 24h,\n"
            "7d, 2w) or a time (2024-08-02T08:53:24Z).\n");
}

static int parse(int argc, char **argv, opts *o, bool has_action, void (*usage)(FILE *))
{
    static const struct option lo[] = {
        {"db", required_argument, NULL, 'd'},       {"format", required_argument, NULL, 'f'},
        {"role", required_argument, NULL, 'r'},     {"since", required_argument, NULL, 's'},
        {"limit", required_argument, NULL, 'l'},    {"all", no_argument, NULL, 'a'},
        {"password-stdin", no_argument, NULL, 'p'}, {"must-change", no_argument, NULL, 'm'},
        {"help", no_argument, NULL, 'h'},           {NULL, 0, NULL, 0},
    };
    int ac = argc;
    char **av = argv;
    int c;
    if (has_action) {
        if ((c = ch_cli_action_start(argc, argv, usage, &o->action)) != -1)
            return c;
        ac = argc - 1;
        av = argv + 1;
    } else {
        optind = 0;
        opterr = 0;
    }
    while ((c = getopt_long(ac, av, ":d:f:r:s:l:apmh", lo, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->db = optarg;
            break;
        case 'f':
            if (strcmp(optarg, "table") != 0 && strcmp(optarg, "json") != 0) {
                fprintf(stderr, "%s: --format must be table or json, not '%s'\n", o->cmd, optarg);
                return CH_EXIT_USAGE;
            }
            o->json = strcmp(optarg, "json") == 0;
            break;
        case 'r':
            if (!ch_role_parse(optarg, &o->role)) {
                fprintf(stderr, "%s: --role must be admin, analyst, viewer or ingest, not '%s'\n",
                        o->cmd, optarg);
                return CH_EXIT_USAGE;
            }
            o->has_role = true;
            break;
        case 's': {
            int64_t d;
            if (ch_cli_parse_duration(optarg, &d)) {
                o->since = ch_cli_now_ms() - d;
            } else if (!ch_time_parse_iso8601(optarg, strlen(optarg), &o->since)) {
                fprintf(stderr,
                        "%s: --since takes a duration (24h, 7d) or a time"
                        " (2024-08-02T08:53:24Z), not '%s'\n",
                        o->cmd, optarg);
                return CH_EXIT_USAGE;
            }
            o->has_since = true;
            break;
        }
        case 'l': {
            unsigned long v;
            if (!ch_cli_parse_count(optarg, 10000000, &v)) {
                fprintf(stderr, "%s: --limit takes 0..10000000, not '%s'\n", o->cmd, optarg);
                return CH_EXIT_USAGE;
            }
            o->limit = v;
            break;
        }
        case 'a':
            o->all = true;
            break;
        case 'p':
            o->pw_stdin = true;
            break;
        case 'm':
            o->must_change = true;
            break;
        case 'h':
            usage(stdout);
            return CH_EXIT_OK;
        default:
            return ch_cli_bad_option(o->cmd, c, av);
        }
    }
    if (optind < ac)
        o->arg = av[optind++];
    if (optind < ac) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", o->cmd, av[optind]);
        return CH_EXIT_USAGE;
    }
    return -1;
}

/* Who runs this command: the local OS user, as the audit's actor. */
static void local_actor(ch_actor *who, char *buf, size_t cap)
{
    const struct passwd *pw = getpwuid(geteuid());
    if (pw != NULL && pw->pw_name != NULL && *pw->pw_name)
        snprintf(buf, cap, "%s", pw->pw_name);
    else
        snprintf(buf, cap, "uid:%u", (unsigned)geteuid());
    who->name = buf;
    who->source = "cli";
}

static int open_db(const opts *o, bool create, ch_accounts **a)
{
    char def[4096];
    const char *path = o->db;
    if (path == NULL) {
        if (ch_store_default_path(def, sizeof def) < 0) {
            fprintf(stderr, "%s: data directory path too long\n", o->cmd);
            return CH_EXIT_FAIL;
        }
        path = def;
    }
    struct stat st;
    if (!create && stat(path, &st) != 0) {
        fprintf(stderr, "%s: no database at %s (give --db; 'coinhound user add' makes one)\n",
                o->cmd, path);
        return CH_EXIT_FAIL;
    }
    ch_error err = {0};
    if (ch_accounts_open(path, create, a, &err) < 0) {
        fprintf(stderr, "%s: %s\n", o->cmd, err.msg);
        return CH_EXIT_FAIL;
    }
    return CH_EXIT_OK;
}

static int emit(const opts *o, const ch_buf *b)
{
    if (fwrite(b->data, 1, b->len, stdout) != b->len || fflush(stdout) != 0) {
        fprintf(stderr, "%s: cannot write output: %s\n", o->cmd, strerror(errno));
        return CH_EXIT_FAIL;
    }
    return CH_EXIT_OK;
}

/* A failed library call: exit 2 for what the user asked wrongly, else 1. */
static int fail(const opts *o, int rc, const ch_error *err)
{
    fprintf(stderr, "%s %s: %s\n", o->cmd, o->action ? o->action : "", err->msg);
    return rc == CH_EUSAGE ? CH_EXIT_USAGE : CH_EXIT_FAIL;
}

static void fmt_time(int64_t ms, char *buf)
{
    if (ms == 0)
        snprintf(buf, 32, "-");
    else
        ch_time_format(ms - ms % 1000, buf);
}

/* A secret alone on stdout; false (and a message) when it cannot be written. */
static bool print_secret(const opts *o, const char *s)
{
    if (printf("%s\n", s) < 0 || fflush(stdout) != 0) {
        fprintf(stderr, "%s: cannot write output: %s\n", o->cmd, strerror(errno));
        return false;
    }
    return true;
}

/* ---- user ---------------------------------------------------------------------------------- */

static int user_list(ch_accounts *a, const opts *o, ch_buf *b)
{
    ch_error err = {0};
    ch_account_info *v = NULL;
    size_t n = 0;
    int rc = ch_account_list(a, &v, &n, &err);
    if (rc < 0)
        return fail(o, rc, &err);
    if (o->json) {
        rc = ch_buf_adds(b, "{\"accounts\":[");
        for (size_t i = 0; i < n && rc >= 0; i++)
            if ((rc = i ? ch_buf_addc(b, ',') : 0) >= 0)
                rc = ch_account_info_json(b, &v[i]);
        if (rc >= 0)
            rc = ch_buf_adds(b, "]}\n");
    } else {
        rc = ch_buf_printf(b, "%-24s %-8s %-9s %-11s %-20s %-20s\n", "NAME", "ROLE", "STATE",
                           "MUST-CHANGE", "LAST-LOGIN", "LOCKED-UNTIL");
        for (size_t i = 0; i < n && rc >= 0; i++) {
            char last[40], lock[40];
            fmt_time(v[i].last_login, last);
            fmt_time(v[i].locked_until, lock);
            rc = ch_buf_printf(b, "%-24s %-8s %-9s %-11s %-20s %-20s\n", v[i].name,
                               ch_role_name(v[i].role), v[i].disabled ? "disabled" : "enabled",
                               v[i].must_change ? "yes" : "no", last, lock);
        }
    }
    ch_free(v);
    if (rc < 0) {
        fprintf(stderr, "%s list: cannot render accounts (%s)\n", o->cmd, ch_strerror(rc));
        return CH_EXIT_FAIL;
    }
    return emit(o, b);
}

static int user_lockouts(ch_accounts *a, const opts *o, ch_buf *b)
{
    ch_error err = {0};
    ch_lockout_info *v = NULL;
    size_t n = 0;
    int rc = ch_accounts_lockouts(a, &v, &n, &err);
    if (rc < 0)
        return fail(o, rc, &err);
    if (o->json) {
        rc = ch_buf_adds(b, "{\"lockouts\":[");
        for (size_t i = 0; i < n && rc >= 0; i++)
            if ((rc = i ? ch_buf_addc(b, ',') : 0) >= 0)
                rc = ch_lockout_info_json(b, &v[i]);
        if (rc >= 0)
            rc = ch_buf_adds(b, "]}\n");
    } else {
        rc = ch_buf_printf(b, "%-8s %-40s %8s %8s %-20s %-20s\n", "KIND", "KEY", "FAILURES",
                           "REFUSED", "LAST-FAILURE", "LOCKED-UNTIL");
        for (size_t i = 0; i < n && rc >= 0; i++) {
            char last[40], lock[40];
            fmt_time(v[i].last_failure, last);
            fmt_time(v[i].locked_until, lock);
            rc = ch_buf_printf(b, "%-8s %-40s %8u %8llu %-20s %-20s\n",
                               v[i].is_account ? "account" : "address", v[i].key, v[i].failures,
                               (unsigned long long)v[i].refused, last, lock);
        }
    }
    ch_free(v);
    if (rc < 0) {
        fprintf(stderr, "%s lockouts: cannot render (%s)\n", o->cmd, ch_strerror(rc));
        return CH_EXIT_FAIL;
    }
    return emit(o, b);
}

/* One line of stdin, without its newline, into buf; false at EOF, error or past cap. */
static bool read_password(char *buf, size_t cap)
{
    if (fgets(buf, (int)cap, stdin) == NULL)
        return false;
    size_t n = strlen(buf);
    if (n > 0 && buf[n - 1] == '\n')
        buf[--n] = '\0';
    else if (!feof(stdin))
        return false; /* longer than cap */
    if (n > 0 && buf[n - 1] == '\r')
        buf[--n] = '\0';
    return true;
}

static int user_passwd(ch_accounts *a, const opts *o, const ch_actor *who)
{
    ch_error err = {0};
    char pw[CH_PASSWORD_MAX + 2], otp[64];
    int rc, status = CH_EXIT_OK;
    if (o->pw_stdin) {
        if (!read_password(pw, sizeof pw)) {
            fprintf(stderr, "%s passwd: cannot read a password line (at most %d bytes) on stdin\n",
                    o->cmd, CH_PASSWORD_MAX);
            status = CH_EXIT_USAGE;
        } else if ((rc = ch_account_reset_password(a, who, o->arg, pw, o->must_change, NULL, 0,
                                                   &err)) < 0) {
            status = fail(o, rc, &err);
        } else {
            fprintf(stderr, "%s passwd: password of '%s' set%s; its sessions ended\n", o->cmd,
                    o->arg, o->must_change ? " (to be changed at next login)" : "");
        }
    } else if ((rc = ch_account_reset_password(a, who, o->arg, NULL, true, otp, sizeof otp, &err)) <
               0) {
        status = fail(o, rc, &err);
    } else if (print_secret(o, otp)) {
        fprintf(stderr,
                "%s passwd: new one-time password of '%s' above (to be changed at next login);"
                " its sessions ended\n",
                o->cmd, o->arg);
    } else {
        status = CH_EXIT_FAIL;
    }
    sodium_memzero(pw, sizeof pw);
    sodium_memzero(otp, sizeof otp);
    return status;
}

int ch_cmd_user(int argc, char **argv)
{
    opts o = {.cmd = "coinhound user"};
    int status = parse(argc, argv, &o, true, user_usage);
    if (status >= 0)
        return status;
    static const char *const with_name[] = {"add",  "disable", "enable", "passwd",
                                            "role", "unlock",  NULL};
    bool needs_name = false,
         known = strcmp(o.action, "list") == 0 || strcmp(o.action, "lockouts") == 0;
    for (const char *const *w = with_name; *w != NULL; w++)
        if (strcmp(o.action, *w) == 0)
            needs_name = known = true;
    if (!known) {
        fprintf(stderr, "coinhound user: unknown action '%s'\n", o.action);
        user_usage(stderr);
        return CH_EXIT_USAGE;
    }
    if (needs_name != (o.arg != NULL)) {
        if (needs_name)
            fprintf(stderr, "coinhound user %s: needs an account name\n", o.action);
        else
            fprintf(stderr, "coinhound user %s: unexpected argument '%s'\n", o.action, o.arg);
        return CH_EXIT_USAGE;
    }
    bool is_add = strcmp(o.action, "add") == 0, is_role = strcmp(o.action, "role") == 0;
    if ((is_add || is_role) && !o.has_role) {
        fprintf(stderr, "coinhound user %s: needs --role admin|analyst|viewer\n", o.action);
        return CH_EXIT_USAGE;
    }
    if (o.has_role && !is_add && !is_role) {
        fprintf(stderr, "coinhound user %s: --role goes with add or role\n", o.action);
        return CH_EXIT_USAGE;
    }
    if ((o.pw_stdin || o.must_change) && strcmp(o.action, "passwd") != 0) {
        fprintf(stderr, "coinhound user %s: --password-stdin goes with passwd\n", o.action);
        return CH_EXIT_USAGE;
    }
    if (o.must_change && !o.pw_stdin) {
        fprintf(stderr, "coinhound user passwd: --must-change goes with --password-stdin (a"
                        " generated password must always be changed)\n");
        return CH_EXIT_USAGE;
    }
    if (o.all || o.has_since || o.limit) {
        fprintf(stderr, "coinhound user %s: --all, --since and --limit are not for users\n",
                o.action);
        return CH_EXIT_USAGE;
    }
    ch_accounts *a = NULL;
    if ((status = open_db(&o, is_add, &a)) != CH_EXIT_OK)
        return status;
    char actor[128];
    ch_actor who;
    local_actor(&who, actor, sizeof actor);
    ch_error err = {0};
    ch_buf b;
    ch_buf_init(&b, OUT_MAX);
    int rc;
    if (strcmp(o.action, "list") == 0) {
        status = user_list(a, &o, &b);
    } else if (strcmp(o.action, "lockouts") == 0) {
        status = user_lockouts(a, &o, &b);
    } else if (is_add) {
        char pw[64];
        if ((rc = ch_account_add(a, &who, o.arg, o.role, pw, sizeof pw, &err)) < 0) {
            status = fail(&o, rc, &err);
        } else if (print_secret(&o, pw)) {
            fprintf(stderr,
                    "coinhound user add: account '%s' (%s) created; its one-time password is"
                    " above and must be changed at first login\n",
                    o.arg, ch_role_name(o.role));
        } else {
            status = CH_EXIT_FAIL;
        }
        sodium_memzero(pw, sizeof pw);
    } else if (strcmp(o.action, "disable") == 0 || strcmp(o.action, "enable") == 0) {
        bool dis = o.action[0] == 'd';
        if ((rc = ch_account_set_disabled(a, &who, o.arg, dis, &err)) < 0)
            status = fail(&o, rc, &err);
        else
            printf("account %s %s\n", o.arg, dis ? "disabled" : "enabled");
    } else if (is_role) {
        if ((rc = ch_account_set_role(a, &who, o.arg, o.role, &err)) < 0)
            status = fail(&o, rc, &err);
        else
            printf("account %s role %s\n", o.arg, ch_role_name(o.role));
    } else if (strcmp(o.action, "unlock") == 0) {
        if ((rc = ch_accounts_unlock(a, &who, o.arg, &err)) < 0)
            status = fail(&o, rc, &err);
        else
            printf("%s unlocked\n", o.arg);
    } else {
        status = user_passwd(a, &o, &who);
    }
    ch_buf_free(&b);
    ch_accounts_close(a);
    return status;
}

/* ---- token --------------------------------------------------------------------------------- */

static int token_list(ch_accounts *a, const opts *o, ch_buf *b)
{
    ch_error err = {0};
    ch_token_info *v = NULL;
    size_t n = 0;
    int rc = ch_token_list(a, o->all, &v, &n, &err);
    if (rc < 0)
        return fail(o, rc, &err);
    if (o->json) {
        rc = ch_buf_adds(b, "{\"tokens\":[");
        for (size_t i = 0; i < n && rc >= 0; i++)
            if ((rc = i ? ch_buf_addc(b, ',') : 0) >= 0)
                rc = ch_token_info_json(b, &v[i]);
        if (rc >= 0)
            rc = ch_buf_adds(b, "]}\n");
    } else {
        rc = ch_buf_printf(b, "%-24s %-8s %-14s %-20s %-20s %-20s %s\n", "NAME", "ROLE", "TOKEN",
                           "CREATED", "LAST-USED", "REVOKED", "CREATED-BY");
        for (size_t i = 0; i < n && rc >= 0; i++) {
            char created[40], used[40], revoked[40];
            fmt_time(v[i].created, created);
            fmt_time(v[i].last_used, used);
            fmt_time(v[i].revoked, revoked);
            rc = ch_buf_printf(b, "%-24s %-8s %-14s %-20s %-20s %-20s %s\n", v[i].name,
                               ch_role_name(v[i].role), v[i].shown, created, used, revoked,
                               v[i].created_by);
        }
    }
    ch_free(v);
    if (rc < 0) {
        fprintf(stderr, "%s list: cannot render tokens (%s)\n", o->cmd, ch_strerror(rc));
        return CH_EXIT_FAIL;
    }
    return emit(o, b);
}

int ch_cmd_token(int argc, char **argv)
{
    opts o = {.cmd = "coinhound token"};
    int status = parse(argc, argv, &o, true, token_usage);
    if (status >= 0)
        return status;
    bool is_create = strcmp(o.action, "create") == 0, is_list = strcmp(o.action, "list") == 0;
    bool is_revoke = strcmp(o.action, "revoke") == 0;
    if (!is_create && !is_list && !is_revoke) {
        fprintf(stderr, "coinhound token: unknown action '%s'\n", o.action);
        token_usage(stderr);
        return CH_EXIT_USAGE;
    }
    if (is_list == (o.arg != NULL)) {
        if (is_list)
            fprintf(stderr, "coinhound token list: unexpected argument '%s'\n", o.arg);
        else
            fprintf(stderr, "coinhound token %s: needs a token name\n", o.action);
        return CH_EXIT_USAGE;
    }
    if (is_create != o.has_role) {
        fprintf(stderr,
                is_create ? "coinhound token create: needs --role"
                            " admin|analyst|viewer|ingest\n"
                          : "coinhound token %s: --role goes with create\n",
                o.action);
        return CH_EXIT_USAGE;
    }
    if ((o.all && !is_list) || o.has_since || o.limit || o.pw_stdin || o.must_change) {
        fprintf(stderr, "coinhound token %s: option not for this action\n", o.action);
        return CH_EXIT_USAGE;
    }
    ch_accounts *a = NULL;
    if ((status = open_db(&o, is_create, &a)) != CH_EXIT_OK)
        return status;
    char actor[128];
    ch_actor who;
    local_actor(&who, actor, sizeof actor);
    ch_error err = {0};
    ch_buf b;
    ch_buf_init(&b, OUT_MAX);
    int rc;
    if (is_list) {
        status = token_list(a, &o, &b);
    } else if (is_create) {
        char tok[CH_TOKEN_LEN + 1];
        if ((rc = ch_token_create(a, &who, o.arg, o.role, tok, sizeof tok, &err)) < 0)
            status = fail(&o, rc, &err);
        else if (print_secret(&o, tok))
            fprintf(stderr,
                    "coinhound token create: token '%s' (%s) above; it is shown only now. Send it"
                    " as 'Authorization: Bearer TOKEN'.\n",
                    o.arg, ch_role_name(o.role));
        else
            status = CH_EXIT_FAIL;
        sodium_memzero(tok, sizeof tok);
    } else if ((rc = ch_token_revoke(a, &who, o.arg, &err)) < 0) {
        status = fail(&o, rc, &err);
    } else {
        printf("token %.*s revoked\n", CH_ACCOUNT_NAME_MAX, o.arg);
    }
    ch_buf_free(&b);
    ch_accounts_close(a);
    return status;
}

/* ---- audit --------------------------------------------------------------------------------- */

typedef struct audit_out {
    ch_buf *b;
    bool json;
    size_t n;
} audit_out;

static int audit_row(void *ud, const ch_audit_entry *e)
{
    audit_out *out = ud;
    int rc;
    if (out->json) {
        if (out->n++ > 0 && (rc = ch_buf_addc(out->b, ',')) < 0)
            return rc;
        return ch_audit_entry_json(out->b, e);
    }
    char t[40];
    fmt_time(e->ts, t);
    if ((rc = ch_buf_printf(out->b, "%-20s %-16s %-16s %-22s %-24s", t, e->actor, e->source,
                            e->action, e->object)) < 0)
        return rc;
    if (e->before != NULL || e->after != NULL)
        rc = ch_buf_printf(out->b, " %s -> %s", e->before ? e->before : "-",
                           e->after ? e->after : "-");
    return rc < 0 ? rc : ch_buf_addc(out->b, '\n');
}

int ch_cmd_audit(int argc, char **argv)
{
    opts o = {.cmd = "coinhound audit"};
    int status = parse(argc, argv, &o, false, audit_usage);
    if (status >= 0)
        return status;
    if (o.arg != NULL) {
        fprintf(stderr, "coinhound audit: unexpected argument '%s'\n", o.arg);
        return CH_EXIT_USAGE;
    }
    if (o.has_role || o.all || o.pw_stdin || o.must_change) {
        fprintf(stderr, "coinhound audit: takes --since, --limit, --format and --db\n");
        return CH_EXIT_USAGE;
    }
    char def[4096];
    const char *path = o.db;
    if (path == NULL) {
        if (ch_store_default_path(def, sizeof def) < 0) {
            fprintf(stderr, "coinhound audit: data directory path too long\n");
            return CH_EXIT_FAIL;
        }
        path = def;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "coinhound audit: no database at %s (give --db)\n", path);
        return CH_EXIT_FAIL;
    }
    ch_audit *a = NULL;
    ch_error err = {0};
    if (ch_audit_open(path, false, &a, &err) < 0) {
        fprintf(stderr, "coinhound audit: %s\n", err.msg);
        return CH_EXIT_FAIL;
    }
    ch_buf b;
    ch_buf_init(&b, OUT_MAX);
    audit_out out = {&b, o.json, 0};
    int rc = o.json ? ch_buf_adds(&b, "{\"audit\":[")
                    : ch_buf_printf(&b, "%-20s %-16s %-16s %-22s %-24s %s\n", "TIME", "ACTOR",
                                    "SOURCE", "ACTION", "OBJECT", "BEFORE -> AFTER");
    if (rc >= 0)
        rc = ch_audit_list(a, o.has_since ? o.since : INT64_MIN, o.limit, audit_row, &out, &err);
    if (rc >= 0 && o.json)
        rc = ch_buf_adds(&b, "]}\n");
    if (rc < 0) {
        fprintf(stderr, "coinhound audit: %s\n", err.msg[0] ? err.msg : ch_strerror(rc));
        status = CH_EXIT_FAIL;
    } else {
        status = emit(&o, &b);
    }
    ch_buf_free(&b);
    ch_audit_close(a);
    return status;
}
