/*
 * plan.c - building response plans from an offense's observables (see plan.h), and rendering
 * them as JSON and text.
 *
 * One builder per kind of step, registered in `builders` below and run in that order: the
 * principal first (cut the attacker's access before anything else, so that the attacker cannot
 * undo the rest), then the instances (evidence first: snapshots before stopping), then the
 * pools. Each builder reads the attributed observables and appends steps. Cost: O(observables)
 * plus O(instances x linked) for merging the entity links, both bounded by their caps.
 *
 * Every value in a step comes from logs an attacker can write to: JSON strings go through the
 * JSON writer, and command lines quote each value as one shell word.
 */
#include "response/plan.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/mem.h"
#include "core/timeparse.h"
#include "offense/observables.h"

#define SG_DEFAULT "coinhound-quarantine"

void ch_resp_plan_free(ch_resp_plan *p)
{
    if (p == NULL)
        return;
    for (size_t i = 0; i < p->nsteps; i++) {
        ch_resp_step *s = &p->steps[i];
        ch_free(s->id);
        ch_free(s->kind);
        ch_free(s->service);
        ch_free(s->action);
        ch_free(s->region);
        ch_free(s->account);
        ch_free(s->parameters);
        ch_free(s->cli);
        ch_free(s->rollback);
        ch_free(s->why);
    }
    ch_free(p->steps);
    ch_free(p);
}

int ch_resp_shell_word(ch_buf *b, const char *s)
{
    int rc = ch_buf_addc(b, '\'');
    for (; *s && rc >= 0; s++)
        rc = *s == '\'' ? ch_buf_adds(b, "'\\''") : ch_buf_addc(b, *s);
    return rc < 0 ? rc : ch_buf_addc(b, '\'');
}

/* ---- building ---------------------------------------------------------------------------------
 */

typedef struct builder_ctx {
    const ch_offense *o;
    const ch_resp_opts *opt;
    ch_resp_plan *p;
    ch_error *err;
    /* scratch for one step */
    ch_buf params, cli, rollback, why;
    /* the attacker's instances: observables plus entity links, (account, region) known */
    const ch_obs **inst;
    size_t ninst;
    ch_obs *extra; /* linked instances the observables did not name */
    size_t nextra;
} builder_ctx;

/* Only values of the expected shape reach a step: ids, names and regions come from logs, and a
 * region like "x' ; rm -rf" must never get near a command line or an AWS parameter. */
static bool shaped(const char *s, const char *extra, size_t max)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char ch = s[n];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr(extra, ch) != NULL))
            return false;
    }
    return n > 0 && n <= max;
}

static bool attributed(const ch_obs *e)
{
    return e->severity >= CH_OBS_ATTRIBUTED_SEVERITY && shaped(e->value, "-_.:", 253) &&
           (e->account[0] == '\0' || shaped(e->account, "", 12)) &&
           (e->region[0] == '\0' || shaped(e->region, "-", 32));
}

static char *take(ch_buf *b) { return ch_strndup(b->data != NULL ? b->data : "", b->len); }

/* Append the step made of the scratch buffers; rollback empty = none. */
static int add_step(builder_ctx *c, const char *kind, const char *service, const char *action,
                    const char *region, const char *account, bool reversible)
{
    ch_resp_plan *p = c->p;
    if (p->nsteps >= CH_RESP_MAX_STEPS)
        return ch_error_set(c->err, CH_ELIMIT, "a plan holds at most %d steps", CH_RESP_MAX_STEPS);
    if (p->nsteps == p->cap) {
        ch_resp_step *ns = ch_grow(p->steps, &p->cap, 16, sizeof *ns);
        if (ns == NULL)
            return ch_error_set(c->err, CH_ENOMEM, "out of memory");
        p->steps = ns;
    }
    char idt[24];
    snprintf(idt, sizeof idt, "%zu", p->nsteps + 1);
    ch_resp_step s = {
        .id = ch_strdup(idt),
        .kind = ch_strdup(kind),
        .service = ch_strdup(service),
        .action = ch_strdup(action),
        .region = ch_strdup(region != NULL ? region : ""),
        .account = ch_strdup(account != NULL ? account : ""),
        .parameters = take(&c->params),
        .cli = take(&c->cli),
        .reversible = reversible,
        .rollback = c->rollback.len > 0 ? take(&c->rollback) : NULL,
        .why = take(&c->why),
    };
    p->steps[p->nsteps++] = s; /* freed with the plan even when a copy failed */
    if (s.id == NULL || s.kind == NULL || s.service == NULL || s.action == NULL ||
        s.region == NULL || s.account == NULL || s.parameters == NULL || s.cli == NULL ||
        s.why == NULL || (c->rollback.len > 0 && s.rollback == NULL))
        return ch_error_set(c->err, CH_ENOMEM, "out of memory");
    ch_buf_clear(&c->params);
    ch_buf_clear(&c->cli);
    ch_buf_clear(&c->rollback);
    ch_buf_clear(&c->why);
    return 0;
}

/* Small writers: JSON members and command-line options. Errors stick in the buffer's result
 * and are checked once per step through `rc |=`-free chaining below (each returns < 0). */
static int jstr(ch_buf *b, const char *k, const char *v)
{
    int rc = ch_buf_add_json_str(b, k, strlen(k));
    if (rc >= 0)
        rc = ch_buf_addc(b, ':');
    return rc < 0 ? rc : ch_buf_add_json_str(b, v, strlen(v));
}

static int opt(ch_buf *b, const char *flag, const char *v)
{
    int rc = ch_buf_printf(b, " %s ", flag);
    return rc < 0 ? rc : ch_resp_shell_word(b, v);
}

static int whyf(builder_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int whyf(builder_ctx *c, const char *fmt, ...)
{
    char t[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t, sizeof t, fmt, ap);
    va_end(ap);
    return ch_buf_adds(&c->why, t);
}

static bool is_iam_user(const ch_offense *o)
{
    const char *u = o->index_value;
    return strcmp(o->index_field, "user.name") == 0 && u[0] != '\0' && strcmp(u, "root") != 0 &&
           strncmp(u, "AWSReservedSSO_", 15) != 0 && shaped(u, "+=,.@-_", 64) &&
           strlen(u) == o->index_value_len;
}

static const char *first_account(const ch_offense *o)
{
    for (int k = 0; k < CH_OBS__COUNT && o->obs != NULL; k++)
        for (size_t i = 0; i < o->obs->n[k]; i++)
            if (attributed(&o->obs->items[k][i]) && o->obs->items[k][i].account[0])
                return o->obs->items[k][i].account;
    return "";
}

static int build_principal(builder_ctx *c)
{
    const ch_offense *o = c->o;
    if (!is_iam_user(o))
        return 0; /* keys of root or of a role session are not deactivated by user name */
    const char *user = o->index_value;
    int rc = 0;
    size_t nkeys = 0;
    for (size_t i = 0; o->obs != NULL && i < o->obs->n[CH_OBS_ACCESS_KEY]; i++) {
        const ch_obs *k = &o->obs->items[CH_OBS_ACCESS_KEY][i];
        /* Temporary (ASIA) keys die with their session: the session revocation below ends them. */
        if (!attributed(k) || strncmp(k->value, "AKIA", 4) != 0)
            continue;
        nkeys++;
        char t[40];
        ch_time_format(k->first_ms, t);
        if ((rc = ch_buf_addc(&c->params, '{')) < 0 ||
            (rc = jstr(&c->params, "UserName", user)) < 0 ||
            (rc = ch_buf_addc(&c->params, ',')) < 0 ||
            (rc = jstr(&c->params, "AccessKeyId", k->value)) < 0 ||
            (rc = ch_buf_adds(&c->params, ",\"Status\":\"Inactive\"}")) < 0 ||
            (rc = ch_buf_adds(&c->cli, "aws iam update-access-key")) < 0 ||
            (rc = opt(&c->cli, "--user-name", user)) < 0 ||
            (rc = opt(&c->cli, "--access-key-id", k->value)) < 0 ||
            (rc = ch_buf_adds(&c->cli, " --status Inactive")) < 0 ||
            (rc = ch_buf_adds(&c->rollback, "{\"action\":\"UpdateAccessKey\",\"parameters\":{")) <
                0 ||
            (rc = jstr(&c->rollback, "UserName", user)) < 0 ||
            (rc = ch_buf_addc(&c->rollback, ',')) < 0 ||
            (rc = jstr(&c->rollback, "AccessKeyId", k->value)) < 0 ||
            (rc = ch_buf_adds(&c->rollback, ",\"Status\":\"Active\"},\"cli\":")) < 0)
            goto nomem;
        ch_buf cl;
        ch_buf_init(&cl, 4096);
        rc = ch_buf_adds(&cl, "aws iam update-access-key");
        if (rc >= 0)
            rc = opt(&cl, "--user-name", user);
        if (rc >= 0)
            rc = opt(&cl, "--access-key-id", k->value);
        if (rc >= 0)
            rc = ch_buf_adds(&cl, " --status Active");
        if (rc >= 0)
            rc = ch_buf_add_json_str(&c->rollback, cl.data, cl.len);
        ch_buf_free(&cl);
        if (rc < 0 || (rc = ch_buf_addc(&c->rollback, '}')) < 0 ||
            (rc = whyf(c, "the attacker used access key %s (%llu event%s from %s)", k->value,
                       (unsigned long long)k->count, k->count == 1 ? "" : "s", t)) < 0)
            goto nomem;
        if ((rc = add_step(c, "principal", "iam", "UpdateAccessKey", "us-east-1", k->account,
                           true)) < 0)
            return rc;
    }
    const char *acct = first_account(o);
    /* The console password: the attacker who phished it can sign in again. Deleting it cannot be
     * undone (a new password must be set), so it is irreversible. */
    if ((rc = ch_buf_addc(&c->params, '{')) < 0 || (rc = jstr(&c->params, "UserName", user)) < 0 ||
        (rc = ch_buf_addc(&c->params, '}')) < 0 ||
        (rc = ch_buf_adds(&c->cli, "aws iam delete-login-profile")) < 0 ||
        (rc = opt(&c->cli, "--user-name", user)) < 0 ||
        (rc = whyf(c,
                   "offense %lld is %s's: a phished console password lets the attacker back in "
                   "(set a new one with CreateLoginProfile after the investigation)",
                   (long long)o->id, user)) < 0)
        goto nomem;
    if ((rc = add_step(c, "principal", "iam", "DeleteLoginProfile", "us-east-1", acct, false)) < 0)
        return rc;
    /* Revoke active sessions: what the IAM console's "Revoke active sessions" does, an inline
     * policy denying everything to credentials issued before now. */
    char now[40];
    ch_time_format(c->opt->now_ms, now);
    char doc[512];
    snprintf(doc, sizeof doc,
             "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Deny\",\"Action\":\"*\","
             "\"Resource\":\"*\",\"Condition\":{\"DateLessThan\":{\"aws:TokenIssueTime\":\"%s\"}}}"
             "]}",
             now);
    if ((rc = ch_buf_addc(&c->params, '{')) < 0 || (rc = jstr(&c->params, "UserName", user)) < 0 ||
        (rc = ch_buf_adds(&c->params, ",\"PolicyName\":\"coinhound-revoke-sessions\",")) < 0 ||
        (rc = jstr(&c->params, "PolicyDocument", doc)) < 0 ||
        (rc = ch_buf_addc(&c->params, '}')) < 0 ||
        (rc = ch_buf_adds(&c->cli, "aws iam put-user-policy")) < 0 ||
        (rc = opt(&c->cli, "--user-name", user)) < 0 ||
        (rc = ch_buf_adds(&c->cli, " --policy-name coinhound-revoke-sessions")) < 0 ||
        (rc = opt(&c->cli, "--policy-document", doc)) < 0 ||
        (rc = ch_buf_adds(&c->rollback, "{\"action\":\"DeleteUserPolicy\",\"parameters\":{")) < 0 ||
        (rc = jstr(&c->rollback, "UserName", user)) < 0 ||
        (rc = ch_buf_adds(&c->rollback, ",\"PolicyName\":\"coinhound-revoke-sessions\"},")) < 0)
        goto nomem;
    {
        ch_buf cl;
        ch_buf_init(&cl, 4096);
        rc = ch_buf_adds(&cl, "aws iam delete-user-policy");
        if (rc >= 0)
            rc = opt(&cl, "--user-name", user);
        if (rc >= 0)
            rc = ch_buf_adds(&cl, " --policy-name coinhound-revoke-sessions");
        if (rc >= 0)
            rc = ch_buf_adds(&c->rollback, "\"cli\":");
        if (rc >= 0)
            rc = ch_buf_add_json_str(&c->rollback, cl.data, cl.len);
        ch_buf_free(&cl);
    }
    if (rc < 0 || (rc = ch_buf_addc(&c->rollback, '}')) < 0 ||
        (rc = whyf(c,
                   "sessions the attacker opened with %s's credentials outlive key deactivation "
                   "(%zu key%s seen)",
                   user, nkeys, nkeys == 1 ? "" : "s")) < 0)
        goto nomem;
    return add_step(c, "principal", "iam", "PutUserPolicy", "us-east-1", acct, true);
nomem:
    return ch_error_set(c->err, rc, "building the principal steps (%s)", ch_strerror(rc));
}

/* ---- instances --------------------------------------------------------------------------------
 */

static bool same(const char *a, const char *b) { return strcmp(a, b) == 0; }

/* The attacker's instances: attributed observables, then linked instances launched with an
 * attributed key no earlier than that key's first attributed use (the user's own launches with
 * the same key before the attack are not the attacker's). */
static int gather_instances(builder_ctx *c)
{
    const ch_offense_obs *x = c->o->obs;
    size_t n = x != NULL ? x->n[CH_OBS_INSTANCE] : 0;
    c->inst = ch_calloc(n + c->opt->nlinked + 1, sizeof *c->inst);
    c->extra = ch_calloc(c->opt->nlinked + 1, sizeof *c->extra);
    if (c->inst == NULL || c->extra == NULL)
        return ch_error_set(c->err, CH_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++)
        if (attributed(&x->items[CH_OBS_INSTANCE][i]))
            c->inst[c->ninst++] = &x->items[CH_OBS_INSTANCE][i];
    for (size_t l = 0; l < c->opt->nlinked && x != NULL; l++) {
        const ch_resp_linked *li = &c->opt->linked[l];
        const ch_obs *key = NULL;
        for (size_t k = 0; k < x->n[CH_OBS_ACCESS_KEY]; k++)
            if (same(x->items[CH_OBS_ACCESS_KEY][k].value, li->access_key) &&
                attributed(&x->items[CH_OBS_ACCESS_KEY][k]))
                key = &x->items[CH_OBS_ACCESS_KEY][k];
        if (key == NULL || li->launch_ms < key->first_ms || !shaped(li->instance, "-", 64) ||
            !shaped(li->account, "", 12) || !shaped(li->region, "-", 32))
            continue;
        bool known = false;
        for (size_t i = 0; i < c->ninst && !known; i++)
            known = same(c->inst[i]->value, li->instance);
        if (known)
            continue;
        ch_obs *e = &c->extra[c->nextra++];
        *e = (ch_obs){.value = (char *)li->instance,
                      .account = (char *)li->account,
                      .region = (char *)li->region,
                      .count = 0,
                      .first_ms = li->launch_ms,
                      .last_ms = li->launch_ms,
                      .severity = key->severity};
        c->inst[c->ninst++] = e;
    }
    return 0;
}

static int ids_json(ch_buf *b, const char *key, builder_ctx *c, const char *acct,
                    const char *region)
{
    int rc = ch_buf_printf(b, "\"%s\":[", key);
    bool first = true;
    for (size_t i = 0; i < c->ninst && rc >= 0; i++) {
        if (!same(c->inst[i]->account, acct) || !same(c->inst[i]->region, region))
            continue;
        if (!first)
            rc = ch_buf_addc(b, ',');
        first = false;
        if (rc >= 0)
            rc = ch_buf_add_json_str(b, c->inst[i]->value, strlen(c->inst[i]->value));
    }
    return rc < 0 ? rc : ch_buf_addc(b, ']');
}

static int ids_cli(ch_buf *b, builder_ctx *c, const char *acct, const char *region)
{
    int rc = 0;
    for (size_t i = 0; i < c->ninst && rc >= 0; i++)
        if (same(c->inst[i]->account, acct) && same(c->inst[i]->region, region)) {
            rc = ch_buf_addc(b, ' ');
            if (rc >= 0)
                rc = ch_resp_shell_word(b, c->inst[i]->value);
        }
    return rc;
}

/* Each (account, region) of the attacker's instances once, in first-seen order. */
typedef int (*place_fn)(builder_ctx *c, const char *acct, const char *region, size_t count);

static int each_place(builder_ctx *c, place_fn fn)
{
    for (size_t i = 0; i < c->ninst; i++) {
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = same(c->inst[j]->account, c->inst[i]->account) &&
                   same(c->inst[j]->region, c->inst[i]->region);
        if (seen)
            continue;
        size_t count = 0;
        for (size_t j = i; j < c->ninst; j++)
            count += same(c->inst[j]->account, c->inst[i]->account) &&
                     same(c->inst[j]->region, c->inst[i]->region);
        int rc = fn(c, c->inst[i]->account, c->inst[i]->region, count);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int instance_steps(builder_ctx *c, const char *acct, const char *region, size_t count)
{
    int rc;
    const char *sg = c->opt->quarantine != NULL ? c->opt->quarantine : SG_DEFAULT;
    /* Evidence first: a stopped or terminated instance loses its memory, a terminated one its
     * volumes; snapshots keep the disks for forensics. */
    for (size_t i = 0; i < c->ninst; i++) {
        const ch_obs *e = c->inst[i];
        if (!same(e->account, acct) || !same(e->region, region))
            continue;
        if ((rc = ch_buf_adds(&c->params, "{\"InstanceSpecification\":{")) < 0 ||
            (rc = jstr(&c->params, "InstanceId", e->value)) < 0 ||
            (rc = ch_buf_adds(&c->params, ",\"ExcludeBootVolume\":false},")) < 0 ||
            (rc = ch_buf_printf(&c->params,
                                "\"Description\":\"coinhound offense %lld: forensic copy\","
                                "\"CopyTagsFromSource\":\"volume\"}",
                                (long long)c->o->id)) < 0 ||
            (rc = ch_buf_adds(&c->cli, "aws ec2 create-snapshots")) < 0 ||
            (rc = opt(&c->cli, "--region", region)) < 0 ||
            (rc = ch_buf_adds(&c->cli, " --instance-specification InstanceId=")) < 0 ||
            (rc = ch_resp_shell_word(&c->cli, e->value)) < 0 ||
            (rc = ch_buf_printf(&c->cli,
                                " --description 'coinhound offense %lld: forensic copy'"
                                " --copy-tags-from-source volume",
                                (long long)c->o->id)) < 0 ||
            (rc = whyf(c, "%s %s; its disks are the evidence of what ran on it", e->value,
                       e->count > 0 ? "is named by the offense's events"
                                    : "was launched with the attacker's key (entity linking)")) < 0)
            goto nomem;
        if ((rc = add_step(c, "instance", "ec2", "CreateSnapshots", region, acct, false)) < 0)
            return rc;
    }
    /* Isolation: a security group without rules, made per VPC by the runner. */
    if ((rc = ch_buf_adds(&c->params, "{")) < 0 || (rc = jstr(&c->params, "GroupName", sg)) < 0 ||
        (rc = ch_buf_printf(&c->params,
                            ",\"Description\":\"coinhound quarantine (offense %lld): no traffic\","
                            "\"VpcId\":\"${vpc-of-instances}\"}",
                            (long long)c->o->id)) < 0 ||
        (rc = ch_buf_adds(&c->cli, "aws ec2 create-security-group")) < 0 ||
        (rc = opt(&c->cli, "--region", region)) < 0 ||
        (rc = opt(&c->cli, "--group-name", sg)) < 0 ||
        (rc = ch_buf_printf(&c->cli,
                            " --description 'coinhound quarantine (offense %lld): no traffic'"
                            " --vpc-id '${vpc-of-instances}'",
                            (long long)c->o->id)) < 0 ||
        (rc = ch_buf_adds(&c->rollback, "{\"action\":\"DeleteSecurityGroup\",\"parameters\":"
                                        "{\"GroupId\":\"${quarantine-group}\"},\"cli\":")) < 0)
        goto nomem;
    {
        ch_buf cl;
        ch_buf_init(&cl, 1024);
        rc = ch_buf_adds(&cl, "aws ec2 delete-security-group");
        if (rc >= 0)
            rc = opt(&cl, "--region", region);
        if (rc >= 0)
            rc = ch_buf_adds(&cl, " --group-id '${quarantine-group}'");
        if (rc >= 0)
            rc = ch_buf_add_json_str(&c->rollback, cl.data, cl.len);
        ch_buf_free(&cl);
    }
    if (rc < 0 || (rc = ch_buf_addc(&c->rollback, '}')) < 0 ||
        (rc = whyf(c, "a group with no rules isolates the %zu instance%s in %s", count,
                   count == 1 ? "" : "s", region)) < 0)
        goto nomem;
    if ((rc = add_step(c, "instance", "ec2", "CreateSecurityGroup", region, acct, true)) < 0)
        return rc;
    for (size_t i = 0; i < c->ninst; i++) {
        const ch_obs *e = c->inst[i];
        if (!same(e->account, acct) || !same(e->region, region))
            continue;
        if ((rc = ch_buf_addc(&c->params, '{')) < 0 ||
            (rc = jstr(&c->params, "InstanceId", e->value)) < 0 ||
            (rc = ch_buf_adds(&c->params, ",\"Groups\":[\"${quarantine-group}\"]}")) < 0 ||
            (rc = ch_buf_adds(&c->cli, "aws ec2 modify-instance-attribute")) < 0 ||
            (rc = opt(&c->cli, "--region", region)) < 0 ||
            (rc = opt(&c->cli, "--instance-id", e->value)) < 0 ||
            (rc = ch_buf_adds(&c->cli, " --groups '${quarantine-group}'")) < 0 ||
            (rc = ch_buf_adds(&c->rollback, "{\"action\":\"ModifyInstanceAttribute\","
                                            "\"parameters\":{")) < 0 ||
            (rc = jstr(&c->rollback, "InstanceId", e->value)) < 0 ||
            (rc = ch_buf_adds(&c->rollback, ",\"Groups\":[\"${groups-before}\"]},\"cli\":")) < 0)
            goto nomem;
        ch_buf cl;
        ch_buf_init(&cl, 1024);
        rc = ch_buf_adds(&cl, "aws ec2 modify-instance-attribute");
        if (rc >= 0)
            rc = opt(&cl, "--region", region);
        if (rc >= 0)
            rc = opt(&cl, "--instance-id", e->value);
        if (rc >= 0)
            rc = ch_buf_adds(&cl, " --groups '${groups-before}'");
        if (rc >= 0)
            rc = ch_buf_add_json_str(&c->rollback, cl.data, cl.len);
        ch_buf_free(&cl);
        if (rc < 0 || (rc = ch_buf_addc(&c->rollback, '}')) < 0 ||
            (rc = whyf(c, "cut %s off the network (its groups are recorded for the rollback)",
                       e->value)) < 0)
            goto nomem;
        if ((rc = add_step(c, "instance", "ec2", "ModifyInstanceAttribute", region, acct, true)) <
            0)
            return rc;
    }
    const char *act = c->opt->terminate ? "TerminateInstances" : "StopInstances";
    if ((rc = ch_buf_addc(&c->params, '{')) < 0 ||
        (rc = ids_json(&c->params, "InstanceIds", c, acct, region)) < 0 ||
        (rc = ch_buf_addc(&c->params, '}')) < 0 ||
        (rc = ch_buf_printf(&c->cli, "aws ec2 %s",
                            c->opt->terminate ? "terminate-instances" : "stop-instances")) < 0 ||
        (rc = opt(&c->cli, "--region", region)) < 0 ||
        (rc = ch_buf_adds(&c->cli, " --instance-ids")) < 0 ||
        (rc = ids_cli(&c->cli, c, acct, region)) < 0 ||
        (rc = whyf(c, "the attacker's %zu instance%s in %s mine at the account's expense", count,
                   count == 1 ? "" : "s", region)) < 0)
        goto nomem;
    if (!c->opt->terminate) {
        if ((rc = ch_buf_adds(&c->rollback, "{\"action\":\"StartInstances\",\"parameters\":{")) <
                0 ||
            (rc = ids_json(&c->rollback, "InstanceIds", c, acct, region)) < 0 ||
            (rc = ch_buf_adds(&c->rollback, "},\"cli\":")) < 0)
            goto nomem;
        ch_buf cl;
        ch_buf_init(&cl, 1 << 20);
        rc = ch_buf_adds(&cl, "aws ec2 start-instances");
        if (rc >= 0)
            rc = opt(&cl, "--region", region);
        if (rc >= 0)
            rc = ch_buf_adds(&cl, " --instance-ids");
        if (rc >= 0)
            rc = ids_cli(&cl, c, acct, region);
        if (rc >= 0)
            rc = ch_buf_add_json_str(&c->rollback, cl.data, cl.len);
        ch_buf_free(&cl);
        if (rc < 0 || (rc = ch_buf_addc(&c->rollback, '}')) < 0)
            goto nomem;
    }
    return add_step(c, "instance", "ec2", act, region, acct, !c->opt->terminate);
nomem:
    return ch_error_set(c->err, rc, "building the instance steps (%s)", ch_strerror(rc));
}

static int build_instances(builder_ctx *c) { return each_place(c, instance_steps); }

/* ---- pools ------------------------------------------------------------------------------------
 */

static size_t count_attr(const ch_offense *o, ch_obs_kind k)
{
    size_t n = 0;
    for (size_t i = 0; o->obs != NULL && i < o->obs->n[k]; i++)
        n += attributed(&o->obs->items[k][i]);
    return n;
}

/* One DNS Firewall call with its rollback; params and cli are the caller's, written before. */
static int dns_step(builder_ctx *c, const char *acct, const char *region, const char *action,
                    const char *undo_action, const char *undo_params, const char *undo_cli,
                    const char *why)
{
    int rc = 0;
    if (undo_action != NULL) {
        if ((rc = ch_buf_printf(&c->rollback, "{\"action\":\"%s\",\"parameters\":%s,\"cli\":",
                                undo_action, undo_params)) < 0 ||
            (rc = ch_buf_add_json_str(&c->rollback, undo_cli, strlen(undo_cli))) < 0 ||
            (rc = ch_buf_addc(&c->rollback, '}')) < 0)
            return ch_error_set(c->err, rc, "out of memory");
    }
    if ((rc = ch_buf_adds(&c->why, why)) < 0)
        return ch_error_set(c->err, rc, "out of memory");
    return add_step(c, "dns", "route53resolver", action, region, acct, undo_action != NULL);
}

static int dns_place(builder_ctx *c, const char *acct, const char *region, size_t count)
{
    (void)count;
    const ch_offense *o = c->o;
    char name[64], undo_cli[512], why[256];
    snprintf(name, sizeof name, "coinhound-offense-%lld", (long long)o->id);
    int rc;
    /* 1. the domain list */
    if ((rc = ch_buf_printf(&c->params, "{\"Name\":\"%s\",\"CreatorRequestId\":\"%s-%s-list\"}",
                            name, name, region)) < 0 ||
        (rc = ch_buf_printf(&c->cli,
                            "aws route53resolver create-firewall-domain-list --region '%s'"
                            " --name %s --creator-request-id %s-%s-list",
                            region, name, name, region)) < 0)
        goto nomem;
    snprintf(undo_cli, sizeof undo_cli,
             "aws route53resolver delete-firewall-domain-list --region '%s'"
             " --firewall-domain-list-id '${domain-list}'",
             region);
    if ((rc = dns_step(c, acct, region, "CreateFirewallDomainList", "DeleteFirewallDomainList",
                       "{\"FirewallDomainListId\":\"${domain-list}\"}", undo_cli,
                       "a DNS Firewall list holds the pool domains the offense names")) < 0)
        return rc;
    /* 2. the domains */
    if ((rc = ch_buf_adds(&c->params, "{\"FirewallDomainListId\":\"${domain-list}\","
                                      "\"Operation\":\"ADD\",\"Domains\":[")) < 0 ||
        (rc = ch_buf_printf(&c->cli,
                            "aws route53resolver update-firewall-domains --region '%s'"
                            " --firewall-domain-list-id '${domain-list}' --operation ADD"
                            " --domains",
                            region)) < 0)
        goto nomem;
    size_t nd = 0;
    for (size_t i = 0; i < o->obs->n[CH_OBS_POOL_DOMAIN]; i++) {
        const ch_obs *d = &o->obs->items[CH_OBS_POOL_DOMAIN][i];
        if (!attributed(d))
            continue;
        if ((nd++ > 0 && (rc = ch_buf_addc(&c->params, ',')) < 0) ||
            (rc = ch_buf_add_json_str(&c->params, d->value, strlen(d->value))) < 0 ||
            (rc = ch_buf_addc(&c->cli, ' ')) < 0 ||
            (rc = ch_resp_shell_word(&c->cli, d->value)) < 0)
            goto nomem;
    }
    if ((rc = ch_buf_adds(&c->params, "]}")) < 0)
        goto nomem;
    snprintf(why, sizeof why, "the attacker's instances queried %zu pool domain%s", nd,
             nd == 1 ? "" : "s");
    if ((rc = dns_step(c, acct, region, "UpdateFirewallDomains", NULL, NULL, NULL, why)) < 0)
        return rc;
    /* 3. the rule group and 4. its blocking rule */
    if ((rc = ch_buf_printf(&c->params, "{\"Name\":\"%s\",\"CreatorRequestId\":\"%s-%s-group\"}",
                            name, name, region)) < 0 ||
        (rc = ch_buf_printf(&c->cli,
                            "aws route53resolver create-firewall-rule-group --region '%s'"
                            " --name %s --creator-request-id %s-%s-group",
                            region, name, name, region)) < 0)
        goto nomem;
    snprintf(undo_cli, sizeof undo_cli,
             "aws route53resolver delete-firewall-rule-group --region '%s'"
             " --firewall-rule-group-id '${rule-group}'",
             region);
    if ((rc = dns_step(c, acct, region, "CreateFirewallRuleGroup", "DeleteFirewallRuleGroup",
                       "{\"FirewallRuleGroupId\":\"${rule-group}\"}", undo_cli,
                       "a rule group carries the blocking rule to the VPCs")) < 0)
        return rc;
    if ((rc = ch_buf_printf(&c->params,
                            "{\"FirewallRuleGroupId\":\"${rule-group}\","
                            "\"FirewallDomainListId\":\"${domain-list}\",\"Priority\":100,"
                            "\"Action\":\"BLOCK\",\"BlockResponse\":\"NXDOMAIN\",\"Name\":\"%s\","
                            "\"CreatorRequestId\":\"%s-%s-rule\"}",
                            name, name, region)) < 0 ||
        (rc = ch_buf_printf(&c->cli,
                            "aws route53resolver create-firewall-rule --region '%s'"
                            " --firewall-rule-group-id '${rule-group}'"
                            " --firewall-domain-list-id '${domain-list}' --priority 100"
                            " --action BLOCK --block-response NXDOMAIN --name %s"
                            " --creator-request-id %s-%s-rule",
                            region, name, name, region)) < 0)
        goto nomem;
    snprintf(undo_cli, sizeof undo_cli,
             "aws route53resolver delete-firewall-rule --region '%s'"
             " --firewall-rule-group-id '${rule-group}' --firewall-domain-list-id '${domain-list}'",
             region);
    if ((rc = dns_step(c, acct, region, "CreateFirewallRule", "DeleteFirewallRule",
                       "{\"FirewallRuleGroupId\":\"${rule-group}\","
                       "\"FirewallDomainListId\":\"${domain-list}\"}",
                       undo_cli, "answer NXDOMAIN for the pool domains")) < 0)
        return rc;
    /* 5. the association to each VPC of the attacker's instances there */
    if ((rc = ch_buf_printf(&c->params,
                            "{\"FirewallRuleGroupId\":\"${rule-group}\","
                            "\"VpcId\":\"${vpc-of-instances}\",\"Priority\":1000,\"Name\":\"%s\","
                            "\"CreatorRequestId\":\"%s-%s-assoc-${vpc-of-instances}\"}",
                            name, name, region)) < 0 ||
        (rc = ch_buf_printf(&c->cli,
                            "aws route53resolver associate-firewall-rule-group --region '%s'"
                            " --firewall-rule-group-id '${rule-group}'"
                            " --vpc-id '${vpc-of-instances}' --priority 1000 --name %s"
                            " --creator-request-id '%s-%s-assoc-${vpc-of-instances}'",
                            region, name, name, region)) < 0)
        goto nomem;
    snprintf(undo_cli, sizeof undo_cli,
             "aws route53resolver disassociate-firewall-rule-group --region '%s'"
             " --firewall-rule-group-association-id '${association}'",
             region);
    return dns_step(c, acct, region, "AssociateFirewallRuleGroup", "DisassociateFirewallRuleGroup",
                    "{\"FirewallRuleGroupAssociationId\":\"${association}\"}", undo_cli,
                    "the VPCs where the attacker's instances run resolve through the rule group");
nomem:
    return ch_error_set(c->err, rc, "building the DNS Firewall steps (%s)", ch_strerror(rc));
}

static int build_dns(builder_ctx *c)
{
    if (count_attr(c->o, CH_OBS_POOL_DOMAIN) == 0)
        return 0;
    if (c->ninst > 0)
        return each_place(c, dns_place);
    /* No instance known: the account and region of the queries themselves. */
    const ch_obs *d = &c->o->obs->items[CH_OBS_POOL_DOMAIN][0];
    return dns_place(c, d->account, d->region, 0);
}

static int nacl_place(builder_ctx *c, const char *acct, const char *region, size_t count)
{
    (void)count;
    const ch_offense_obs *x = c->o->obs;
    int rc;
    for (size_t i = 0; i < x->n[CH_OBS_POOL_IP]; i++) {
        const ch_obs *a = &x->items[CH_OBS_POOL_IP][i];
        if (!attributed(a))
            continue;
        bool v6 = strchr(a->value, ':') != NULL;
        char cidr[80];
        snprintf(cidr, sizeof cidr, "%s/%s", a->value, v6 ? "128" : "32");
        const char *cidr_key = v6 ? "Ipv6CidrBlock" : "CidrBlock";
        const char *cidr_opt = v6 ? "--ipv6-cidr-block" : "--cidr-block";
        if ((rc = ch_buf_printf(&c->params, "{\"NetworkAclId\":\"${network-acl-of-instances}\","
                                            "\"RuleNumber\":\"${rule-number}\",\"Protocol\":\"-1\","
                                            "\"RuleAction\":\"deny\",\"Egress\":true,")) < 0 ||
            (rc = jstr(&c->params, cidr_key, cidr)) < 0 ||
            (rc = ch_buf_addc(&c->params, '}')) < 0 ||
            (rc = ch_buf_adds(&c->cli, "aws ec2 create-network-acl-entry")) < 0 ||
            (rc = opt(&c->cli, "--region", region)) < 0 ||
            (rc = ch_buf_adds(&c->cli, " --network-acl-id '${network-acl-of-instances}'"
                                       " --rule-number '${rule-number}' --protocol -1"
                                       " --rule-action deny --egress")) < 0 ||
            (rc = opt(&c->cli, cidr_opt, cidr)) < 0 ||
            (rc = ch_buf_adds(&c->rollback,
                              "{\"action\":\"DeleteNetworkAclEntry\",\"parameters\":"
                              "{\"NetworkAclId\":\"${network-acl-of-instances}\","
                              "\"RuleNumber\":\"${rule-number}\",\"Egress\":true},\"cli\":")) < 0)
            goto nomem;
        char undo[256];
        snprintf(undo, sizeof undo,
                 "aws ec2 delete-network-acl-entry --region '%s' --network-acl-id"
                 " '${network-acl-of-instances}' --rule-number '${rule-number}' --egress",
                 region);
        if ((rc = ch_buf_add_json_str(&c->rollback, undo, strlen(undo))) < 0 ||
            (rc = ch_buf_addc(&c->rollback, '}')) < 0 ||
            (rc = whyf(c, "the attacker's instances sent %llu flow records to pool address %s",
                       (unsigned long long)a->count, a->value)) < 0)
            goto nomem;
        if ((rc = add_step(c, "network", "ec2", "CreateNetworkAclEntry", region, acct, true)) < 0)
            return rc;
    }
    return 0;
nomem:
    return ch_error_set(c->err, rc, "building the network ACL steps (%s)", ch_strerror(rc));
}

static int build_network(builder_ctx *c)
{
    if (count_attr(c->o, CH_OBS_POOL_IP) == 0)
        return 0;
    if (c->ninst > 0)
        return each_place(c, nacl_place);
    const ch_obs *a = &c->o->obs->items[CH_OBS_POOL_IP][0];
    return nacl_place(c, a->account, a->region, 0);
}

/* The registry: one builder per kind of step, in the order the steps must run. */
static const struct {
    const char *kind;
    int (*build)(builder_ctx *c);
} builders[] = {
    {"principal", build_principal},
    {"instance", build_instances},
    {"dns", build_dns},
    {"network", build_network},
};

int ch_resp_plan_build(const ch_offense *o, const ch_resp_opts *opt, ch_resp_plan **out,
                       ch_error *err)
{
    *out = NULL;
    ch_resp_plan *p = ch_calloc(1, sizeof *p);
    if (p == NULL)
        return ch_error_set(err, CH_ENOMEM, "out of memory");
    p->offense_id = o->id;
    builder_ctx c = {.o = o, .opt = opt, .p = p, .err = err};
    ch_buf_init(&c.params, 1 << 20);
    ch_buf_init(&c.cli, 1 << 20);
    ch_buf_init(&c.rollback, 1 << 20);
    ch_buf_init(&c.why, 4096);
    int rc = gather_instances(&c);
    for (size_t i = 0; rc >= 0 && i < sizeof builders / sizeof builders[0]; i++)
        rc = builders[i].build(&c);
    ch_buf_free(&c.params);
    ch_buf_free(&c.cli);
    ch_buf_free(&c.rollback);
    ch_buf_free(&c.why);
    ch_free(c.inst);
    ch_free(c.extra);
    if (rc < 0) {
        ch_resp_plan_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

/* ---- rendering --------------------------------------------------------------------------------
 */

int ch_resp_plan_json(ch_buf *b, const ch_resp_plan *p)
{
    int rc = ch_buf_printf(b, "{\"offense\":%lld,\"steps\":[", (long long)p->offense_id);
    for (size_t i = 0; i < p->nsteps && rc >= 0; i++) {
        const ch_resp_step *s = &p->steps[i];
        if ((i > 0 && (rc = ch_buf_addc(b, ',')) < 0) || (rc = ch_buf_addc(b, '{')) < 0 ||
            (rc = jstr(b, "id", s->id)) < 0 || (rc = ch_buf_addc(b, ',')) < 0 ||
            (rc = jstr(b, "kind", s->kind)) < 0 || (rc = ch_buf_addc(b, ',')) < 0 ||
            (rc = jstr(b, "service", s->service)) < 0 || (rc = ch_buf_addc(b, ',')) < 0 ||
            (rc = jstr(b, "action", s->action)) < 0 || (rc = ch_buf_addc(b, ',')) < 0 ||
            (rc = jstr(b, "region", s->region)) < 0 || (rc = ch_buf_addc(b, ',')) < 0 ||
            (rc = jstr(b, "account", s->account)) < 0 ||
            (rc = ch_buf_printf(b, ",\"parameters\":%s,", s->parameters)) < 0 ||
            (rc = jstr(b, "cli", s->cli)) < 0 ||
            (rc = ch_buf_printf(b, ",\"reversible\":%s,\"rollback\":%s,",
                                s->reversible ? "true" : "false",
                                s->rollback != NULL ? s->rollback : "null")) < 0 ||
            (rc = jstr(b, "why", s->why)) < 0 || (rc = ch_buf_addc(b, '}')) < 0)
            break;
    }
    if (rc >= 0)
        rc = ch_buf_adds(b, "]}");
    return rc < 0 ? rc : 0;
}

/* Text for a terminal: control bytes become '?' (a crafted value cannot move the cursor). */
static int plain(ch_buf *b, const char *s)
{
    int rc = 0;
    for (; *s && rc >= 0; s++) {
        unsigned char ch = (unsigned char)*s;
        rc = ch_buf_addc(b, ch < 0x20 || ch == 0x7f ? '?' : (char)ch);
    }
    return rc;
}

int ch_resp_plan_text(ch_buf *b, const ch_resp_plan *p)
{
    int rc = ch_buf_printf(b, "response plan %lld for offense %lld: %zu step%s (dry run)\n",
                           (long long)p->id, (long long)p->offense_id, p->nsteps,
                           p->nsteps == 1 ? "" : "s");
    for (size_t i = 0; i < p->nsteps && rc >= 0; i++) {
        const ch_resp_step *s = &p->steps[i];
        rc = ch_buf_printf(b, "\n%3s. [%s] %s:%s  account %s  region %s%s\n     why: ", s->id,
                           s->kind, s->service, s->action, s->account[0] ? s->account : "?",
                           s->region, s->reversible ? "" : "  (irreversible)");
        if (rc >= 0)
            rc = plain(b, s->why);
        if (rc >= 0)
            rc = ch_buf_adds(b, "\n     $ ");
        if (rc >= 0)
            rc = plain(b, s->cli);
        if (rc >= 0)
            rc = ch_buf_addc(b, '\n');
    }
    return rc < 0 ? rc : 0;
}
