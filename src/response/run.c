/*
 * run.c - executing and rolling back stored response plans (see run.h).
 *
 * Each AWS action a plan can hold is a row of `actions` below: its API version and protocol,
 * how the plan's parameter names map to the Query protocol's (EC2's StopInstances takes
 * InstanceId.N where the plan, like the CLI, says InstanceIds), the error codes that mean "it is
 * already so" (counted as done: a rerun after a crash must not fail on its own earlier work),
 * and the id its answer carries for later steps. Adding an action is a row, not a switch.
 *
 * Placeholders are resolved per (account, region) and recorded in response_values before the
 * call that needs them, so a rerun and a rollback see what the first run saw. Cost per step: one
 * or two HTTP calls (plus a DescribeInstances and a DescribeNetworkAcls once per place) and
 * three small commits; plans are short, AWS is the slow part.
 */
#include "response/run.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/json.h"
#include "core/mem.h"
#include "core/timeparse.h"
#include "response/aws_call.h"
#include "response/aws_int.h"
#include "response/creds.h"
#include "response/resp_store.h"
#include "server/audit.h"

#define VALUE_MAX 4096
#define RESP_MAX (4u << 20)
#define MAX_ASSUMED 32
#define MAX_DESCRIBE 1000

/* ---- the action table ------------------------------------------------------------------------ */

typedef struct action_def {
    const char *service, *action;
    const char *renames;         /* "From=To,From=To": the plan's names -> the Query protocol's */
    const char *already;         /* codes that mean the state is already reached, space-separated */
    const char *out_name;        /* the value its answer makes, for later steps */
    const char *out_k1, *out_k2; /* JSON path, or (k2 NULL) the XML tag */
} action_def;

static const action_def actions[] = {
    {"iam", "UpdateAccessKey", "", "", NULL, NULL, NULL},
    {"iam", "DeleteLoginProfile", "", "NoSuchEntity", NULL, NULL, NULL},
    {"iam", "PutUserPolicy", "", "", NULL, NULL, NULL},
    {"iam", "DeleteUserPolicy", "", "NoSuchEntity", NULL, NULL, NULL},
    {"ec2", "CreateSnapshots", "", "", NULL, NULL, NULL},
    {"ec2", "CreateSecurityGroup", "Description=GroupDescription", "InvalidGroup.Duplicate",
     "quarantine-group", "groupId", NULL},
    {"ec2", "DeleteSecurityGroup", "", "InvalidGroup.NotFound", NULL, NULL, NULL},
    {"ec2", "ModifyInstanceAttribute", "Groups=GroupId", "", NULL, NULL, NULL},
    {"ec2", "StopInstances", "InstanceIds=InstanceId", "", NULL, NULL, NULL},
    {"ec2", "StartInstances", "InstanceIds=InstanceId", "", NULL, NULL, NULL},
    {"ec2", "TerminateInstances", "InstanceIds=InstanceId", "", NULL, NULL, NULL},
    {"ec2", "CreateNetworkAclEntry", "", "NetworkAclEntryAlreadyExists", NULL, NULL, NULL},
    {"ec2", "DeleteNetworkAclEntry", "", "InvalidNetworkAclEntry.NotFound", NULL, NULL, NULL},
    {"route53resolver", "CreateFirewallDomainList", "", "", "domain-list", "FirewallDomainList",
     "Id"},
    {"route53resolver", "UpdateFirewallDomains", "", "", NULL, NULL, NULL},
    {"route53resolver", "CreateFirewallRuleGroup", "", "", "rule-group", "FirewallRuleGroup", "Id"},
    {"route53resolver", "CreateFirewallRule", "", "", NULL, NULL, NULL},
    {"route53resolver", "AssociateFirewallRuleGroup", "", "", "association",
     "FirewallRuleGroupAssociation", "Id"},
    {"route53resolver", "DisassociateFirewallRuleGroup", "", "ResourceNotFoundException", NULL,
     NULL, NULL},
    {"route53resolver", "DeleteFirewallRule", "", "ResourceNotFoundException", NULL, NULL, NULL},
    {"route53resolver", "DeleteFirewallRuleGroup", "", "ResourceNotFoundException", NULL, NULL,
     NULL},
    {"route53resolver", "DeleteFirewallDomainList", "", "ResourceNotFoundException", NULL, NULL,
     NULL},
};

static const action_def *action_find(const char *service, const char *action)
{
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        if (strcmp(actions[i].service, service) == 0 && strcmp(actions[i].action, action) == 0)
            return &actions[i];
    return NULL;
}

static const char *version_of(const char *service)
{
    return strcmp(service, "iam") == 0   ? "2010-05-08"
           : strcmp(service, "sts") == 0 ? "2011-06-15"
                                         : "2016-11-15";
}

/* Step kinds, for automatic response and --kinds: a name and the actions it selects. */
static const struct {
    const char *name, *actions;
} kinds[] = {
    {"deactivate_keys", " UpdateAccessKey "},
    {"delete_login_profile", " DeleteLoginProfile "},
    {"revoke_sessions", " PutUserPolicy "},
    {"snapshot_instances", " CreateSnapshots "},
    {"isolate_instances", " CreateSecurityGroup ModifyInstanceAttribute "},
    {"stop_instances", " StopInstances TerminateInstances "},
    {"block_domains", " CreateFirewallDomainList UpdateFirewallDomains CreateFirewallRuleGroup"
                      " CreateFirewallRule AssociateFirewallRuleGroup "},
    {"block_addresses", " CreateNetworkAclEntry "},
};

const char *const *ch_resp_step_kinds(void)
{
    static const char *names[sizeof kinds / sizeof kinds[0] + 1];
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        names[i] = kinds[i].name;
    return names;
}

bool ch_resp_step_kind_ok(const char *name)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i].name, name) == 0)
            return true;
    return false;
}

static bool in_words(const char *words, const char *w)
{
    size_t n = strlen(w);
    for (const char *p = strstr(words, w); p != NULL; p = strstr(p + 1, w))
        if ((p == words || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\0'))
            return true;
    return false;
}

/* ---- answers --------------------------------------------------------------------------------- */

const char *ch__aws_xml_find(const char *p, const char *end, const char *tag, const char **vend)
{
    char open[64], close[64];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    size_t ol = strlen(open), cl = strlen(close);
    for (; p + ol <= end; p++) {
        if (memcmp(p, open, ol) != 0)
            continue;
        const char *v = p + ol;
        for (const char *q = v; q + cl <= end; q++)
            if (memcmp(q, close, cl) == 0) {
                *vend = q;
                return v;
            }
        return NULL;
    }
    return NULL;
}

bool ch__aws_id_shaped(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
            return false;
    return true;
}

int ch_resp_parse_instances(const char *xml, size_t n, ch_resp_instance_fn fn, void *ud)
{
    const char *end = xml + n, *ve;
    const char *set = ch__aws_xml_find(xml, end, "reservationSet", &ve);
    if (set == NULL)
        return CH_EPARSE;
    /* Each reservation has its instancesSet; an instance's item runs from its <instanceId> to
     * the next one: its vpcId, subnetId and first groupSet are inside (the network interfaces'
     * own groupSets come later, and their attachments name no instance). */
    const char *p = set, *setend = ve;
    int count = 0;
    static const size_t open_len = sizeof "<instanceId>" - 1;
    while (p < setend) {
        const char *ie, *id = ch__aws_xml_find(p, setend, "instanceId", &ie);
        if (id == NULL)
            break;
        const char *ne, *next = ch__aws_xml_find(ie, setend, "instanceId", &ne);
        const char *stop = next != NULL ? next - open_len : setend;
        char iid[72] = "", vpc[72] = "", subnet[72] = "", groups[1024] = "";
        if (!ch__aws_id_shaped(id, (size_t)(ie - id)))
            return CH_EPARSE;
        snprintf(iid, sizeof iid, "%.*s", (int)(ie - id), id);
        const char *te, *t = ch__aws_xml_find(ie, stop, "vpcId", &te);
        if (t != NULL && ch__aws_id_shaped(t, (size_t)(te - t)))
            snprintf(vpc, sizeof vpc, "%.*s", (int)(te - t), t);
        t = ch__aws_xml_find(ie, stop, "subnetId", &te);
        if (t != NULL && ch__aws_id_shaped(t, (size_t)(te - t)))
            snprintf(subnet, sizeof subnet, "%.*s", (int)(te - t), t);
        const char *ge = NULL, *g = ch__aws_xml_find(ie, stop, "groupSet", &ge);
        while (g != NULL && ge != NULL) {
            const char *ke = NULL, *k = ch__aws_xml_find(g, ge, "groupId", &ke);
            if (k == NULL || ke == NULL)
                break;
            size_t used = strlen(groups), kl = (size_t)(ke - k);
            if (ch__aws_id_shaped(k, kl) && used + kl + 2 < sizeof groups)
                snprintf(groups + used, sizeof groups - used, "%s%.*s", used ? "," : "", (int)kl,
                         k);
            g = ke;
        }
        if (++count > MAX_DESCRIBE)
            return CH_ELIMIT;
        int rc = fn(ud, iid, vpc, subnet, groups);
        if (rc < 0)
            return rc;
        p = stop;
    }
    return count;
}

int ch_resp_json_path(const char *json, size_t n, const char *k1, const char *k2, char *out,
                      size_t cap)
{
    out[0] = '\0';
    ch_json_parser *jp = ch_json_parser_new(n + 64, 32);
    if (jp == NULL)
        return CH_ENOMEM;
    ch_json_val root, a, b;
    ch_error e = {0};
    const char *s;
    size_t sl;
    int rc = ch_json_parse(jp, json, n, n, &root, &e);
    if (rc >= 0) {
        rc = 0;
        if (ch_json_obj_get(root, k1, strlen(k1), &a) && ch_json_obj_get(a, k2, strlen(k2), &b) &&
            ch_json_get_str(b, &s, &sl) && sl < cap && ch__aws_id_shaped(s, sl)) {
            memcpy(out, s, sl);
            out[sl] = '\0';
            rc = 1;
        }
    }
    ch_json_parser_free(jp);
    return rc;
}

/* ---- the run --------------------------------------------------------------------------------- */

typedef struct step_view {
    const char *id, *kind, *service, *action, *region, *account;
    ch_json_val params, rollback; /* rollback: {"action","parameters","cli"} or null */
    bool reversible, has_rollback, selected;
} step_view;

typedef struct assumed {
    char account[16];
    ch_aws_creds creds;
} assumed;

typedef struct run_ctx {
    const ch_resp_run_opts *o;
    ch_error *err;
    ch_resp_store *rs;
    ch_audit *au;
    ch_json_parser *jp;
    step_view *steps;
    size_t nsteps;
    const char *phase;
    bool have_base;
    ch_aws_creds base;
    char caller[16];
    assumed *assumed;
    size_t nassumed;
    ch_buf body, resp;
    bool locked;
} run_ctx;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int audit(run_ctx *c, const char *action, const char *step, const char *after)
{
    char object[96];
    if (step != NULL)
        snprintf(object, sizeof object, "response_plan:%lld/step:%s", (long long)c->o->plan_id,
                 step);
    else
        snprintf(object, sizeof object, "response_plan:%lld", (long long)c->o->plan_id);
    ch_audit_entry e = {.ts = now_ms(),
                        .actor = c->o->actor,
                        .source = c->o->source,
                        .action = action,
                        .object = object,
                        .after = after};
    return ch_audit_append(c->au, &e, c->err);
}

static const char *str_of(ch_json_val obj, const char *key, ch_buf *scratch)
{
    ch_json_val v;
    const char *s;
    size_t n;
    if (!ch_json_obj_get(obj, key, strlen(key), &v) || !ch_json_get_str(v, &s, &n))
        return NULL;
    /* Plan strings are not NUL-terminated in the tape: copy into the scratch arena. */
    size_t off = scratch->len;
    if (ch_buf_add(scratch, s, n) < 0 || ch_buf_addc(scratch, '\0') < 0)
        return NULL;
    return (const char *)(uintptr_t)off; /* resolved to pointers once the arena stops moving */
}

/* Load the plan's steps into c->steps (strings copied into one arena). */
static int load_steps(run_ctx *c, const char *json, ch_buf *arena)
{
    size_t n = strlen(json);
    c->jp = ch_json_parser_new(n + 64, 64);
    if (c->jp == NULL)
        return ch_error_set(c->err, CH_ENOMEM, "out of memory");
    ch_json_val root, arr, v;
    int rc = ch_json_parse(c->jp, json, n, n, &root, c->err);
    if (rc < 0)
        return rc;
    if (!ch_json_obj_get(root, "steps", 5, &arr) || ch_json_typeof(arr) != CH_JSON_ARRAY)
        return ch_error_set(c->err, CH_EPARSE, "plan %lld: no steps array",
                            (long long)c->o->plan_id);
    ch_json_iter it;
    size_t count = 0;
    ch_json_arr_iter(arr, &it);
    while (ch_json_arr_next(&it, &v))
        count++;
    c->steps = ch_calloc(count + 1, sizeof *c->steps);
    if (c->steps == NULL)
        return ch_error_set(c->err, CH_ENOMEM, "out of memory");
    ch_json_arr_iter(arr, &it);
    static const char *const keys[] = {"id", "kind", "service", "action", "region", "account"};
    while (ch_json_arr_next(&it, &v)) {
        step_view *s = &c->steps[c->nsteps++];
        const char **fields[] = {&s->id,     &s->kind,   &s->service,
                                 &s->action, &s->region, &s->account};
        for (size_t k = 0; k < 6; k++)
            if ((*fields[k] = str_of(v, keys[k], arena)) == NULL)
                return ch_error_set(c->err, CH_EPARSE, "plan %lld: step %zu has no %s",
                                    (long long)c->o->plan_id, c->nsteps, keys[k]);
        ch_json_val r;
        if (!ch_json_obj_get(v, "parameters", 10, &s->params) ||
            ch_json_typeof(s->params) != CH_JSON_OBJECT)
            return ch_error_set(c->err, CH_EPARSE, "plan %lld: step %zu has no parameters",
                                (long long)c->o->plan_id, c->nsteps);
        if (ch_json_obj_get(v, "reversible", 10, &r))
            ch_json_get_bool(r, &s->reversible);
        s->has_rollback = ch_json_obj_get(v, "rollback", 8, &s->rollback) &&
                          ch_json_typeof(s->rollback) == CH_JSON_OBJECT;
    }
    /* The arena is complete: offsets become pointers. */
    for (size_t i = 0; i < c->nsteps; i++) {
        step_view *s = &c->steps[i];
        const char **fields[] = {&s->id,     &s->kind,   &s->service,
                                 &s->action, &s->region, &s->account};
        for (size_t k = 0; k < 6; k++)
            *fields[k] = arena->data + (uintptr_t)*fields[k];
    }
    return 0;
}

/* ---- credentials and endpoints --------------------------------------------------------------- */

static void endpoint_for(const run_ctx *c, const char *service, const char *region, char *out,
                         size_t cap)
{
    if (c->o->cfg->endpoint != NULL)
        snprintf(out, cap, "%s", c->o->cfg->endpoint);
    else if (strcmp(service, "iam") == 0)
        snprintf(out, cap, "https://iam.amazonaws.com");
    else
        snprintf(out, cap, "https://%s.%s.amazonaws.com", service, region);
}

static int call(run_ctx *c, const ch_aws_creds *cr, const char *service, const char *region,
                const char *action, bool json, ch_aws_result *res)
{
    char ep[1024], target[128];
    endpoint_for(c, service, region, ep, sizeof ep);
    snprintf(target, sizeof target, "Route53Resolver.%s", action);
    ch_aws_request r = {.service = service,
                        .region = region,
                        .action = action,
                        .endpoint = ep,
                        .target = json ? target : NULL,
                        .body = c->body.data != NULL ? c->body.data : "",
                        .base_delay_ms = c->o->base_delay_ms};
    return ch_aws_call(cr, &r, &c->resp, res, c->err);
}

static int form(ch_buf *b, const char *k, const char *v)
{
    int rc = ch_buf_printf(b, "%s%s=", b->len ? "&" : "", k);
    for (const unsigned char *p = (const unsigned char *)v; *p && rc >= 0; p++)
        rc = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
                     strchr("-._~", *p) != NULL
                 ? ch_buf_addc(b, (char)*p)
                 : ch_buf_printf(b, "%%%02X", *p);
    return rc;
}

static int base_creds(run_ctx *c)
{
    if (c->have_base)
        return 0;
    int rc = ch_aws_creds_chain(&c->base, c->err);
    if (rc < 0)
        return rc;
    c->have_base = true;
    if (c->o->cfg->assume_role == NULL)
        return 0;
    /* Whose credentials are these? Steps in that account need no role. */
    ch_buf_clear(&c->body);
    ch_aws_result res;
    if ((rc = form(&c->body, "Action", "GetCallerIdentity")) < 0 ||
        (rc = form(&c->body, "Version", version_of("sts"))) < 0)
        return ch_error_set(c->err, rc, "out of memory");
    char ep[1024];
    const char *sts_env = getenv("AWS_ENDPOINT_URL_STS");
    if (c->o->cfg->endpoint != NULL)
        snprintf(ep, sizeof ep, "%s", c->o->cfg->endpoint);
    else if (sts_env != NULL && *sts_env)
        snprintf(ep, sizeof ep, "%s", sts_env);
    else
        snprintf(ep, sizeof ep, "https://sts.us-east-1.amazonaws.com");
    ch_aws_request r = {.service = "sts",
                        .region = "us-east-1",
                        .action = "GetCallerIdentity",
                        .endpoint = ep,
                        .body = c->body.data,
                        .base_delay_ms = c->o->base_delay_ms};
    if ((rc = ch_aws_call(&c->base, &r, &c->resp, &res, c->err)) < 0)
        return rc;
    if (!ch__aws_xml_text(c->resp.data, c->resp.len, "Account", c->caller, sizeof c->caller) ||
        !ch__aws_id_shaped(c->caller, strlen(c->caller)))
        return ch_error_set(c->err, CH_EPARSE, "STS GetCallerIdentity: no Account in the answer");
    return 0;
}

static int creds_for(run_ctx *c, const char *account, const ch_aws_creds **out)
{
    int rc = base_creds(c);
    if (rc < 0)
        return rc;
    *out = &c->base;
    if (c->o->cfg->assume_role == NULL || account[0] == '\0' || strcmp(account, c->caller) == 0)
        return 0;
    for (size_t i = 0; i < c->nassumed; i++)
        if (strcmp(c->assumed[i].account, account) == 0) {
            *out = &c->assumed[i].creds;
            return 0;
        }
    if (c->nassumed == MAX_ASSUMED)
        return ch_error_set(c->err, CH_ELIMIT, "a plan may span at most %d accounts", MAX_ASSUMED);
    assumed *a = &c->assumed[c->nassumed];
    char arn[512];
    snprintf(arn, sizeof arn, "arn:aws:iam::%s:role/%s", account, c->o->cfg->assume_role);
    if ((rc = ch_aws_assume_role_at(&c->base, arn, "us-east-1", c->o->cfg->endpoint, &a->creds,
                                    c->err)) < 0)
        return rc;
    snprintf(a->account, sizeof a->account, "%s", account);
    *out = &c->assumed[c->nassumed++].creds;
    return 0;
}

/* ---- placeholders ------------------------------------------------------------------------------
 */

typedef struct describe_acc {
    run_ctx *c;
    const char *account, *region;
    char vpcs[2048], subnets[2048];
    int nvpcs;
    char missing[80]; /* an instance without a VPC */
} describe_acc;

/* Append word to a comma-separated list unless it is there; false when full. */
static bool list_add(char *list, size_t cap, const char *word)
{
    size_t n = strlen(word), used = strlen(list);
    for (const char *p = list; (p = strstr(p, word)) != NULL; p += n)
        if ((p == list || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return true;
    if (used + n + 2 > cap)
        return false;
    snprintf(list + used, cap - used, "%s%s", used ? "," : "", word);
    return true;
}

/* The next word of a comma-separated list into w; false at the end. */
static bool list_next(const char **p, char *w, size_t cap)
{
    while (**p == ',')
        (*p)++;
    if (**p == '\0')
        return false;
    const char *q = strchr(*p, ',');
    size_t n = q != NULL ? (size_t)(q - *p) : strlen(*p);
    snprintf(w, cap, "%.*s", (int)(n < cap ? n : cap - 1), *p);
    *p += n;
    return true;
}

static int on_instance(void *ud, const char *id, const char *vpc, const char *subnet,
                       const char *groups)
{
    describe_acc *d = ud;
    char name[96];
    snprintf(name, sizeof name, "groups-before:%s", id);
    int rc = ch_resp_value_put(d->c->rs, d->c->o->plan_id, d->account, d->region, name, groups,
                               d->c->err);
    if (rc < 0)
        return rc;
    if (vpc[0] == '\0') {
        snprintf(d->missing, sizeof d->missing, "%s", id);
        return 0;
    }
    snprintf(name, sizeof name, "vpc-of:%s", id);
    if ((rc = ch_resp_value_put(d->c->rs, d->c->o->plan_id, d->account, d->region, name, vpc,
                                d->c->err)) < 0)
        return rc;
    size_t before = strlen(d->vpcs);
    if (!list_add(d->vpcs, sizeof d->vpcs, vpc) ||
        (subnet[0] && !list_add(d->subnets, sizeof d->subnets, subnet)))
        return ch_error_set(d->c->err, CH_ELIMIT,
                            "the plan's instances in %s %s span too many VPCs or subnets",
                            d->account, d->region);
    d->nvpcs += strlen(d->vpcs) != before;
    return 0;
}

static void add_instance(ch_buf *ids, const char *s, size_t n, int *count)
{
    char w[80];
    snprintf(w, sizeof w, ",%.*s,", (int)n, s);
    if (n == 0 || n > 64 || (ids->data != NULL && strstr(ids->data, w) != NULL))
        return;
    ch_buf_printf(ids, "%.*s,", (int)n, s);
    (*count)++;
}

/* DescribeInstances of the plan's instances in (account, region): their groups (for the
 * rollback), each one's VPC (its quarantine group is the one made in that VPC), the VPCs they
 * span (one quarantine group and one DNS Firewall association per VPC: only VPCs an attacker's
 * instance is in) and their subnets (for the ACLs). "vpcs-of-instances" is recorded last: it
 * says the description is complete, so a run killed halfway describes again. */
static int describe_place(run_ctx *c, const char *account, const char *region)
{
    ch_buf ids;
    ch_buf_init(&ids, 1 << 20);
    ch_buf_addc(&ids, ',');
    int count = 0;
    for (size_t i = 0; i < c->nsteps; i++) {
        const step_view *s = &c->steps[i];
        if (strcmp(s->account, account) != 0 || strcmp(s->region, region) != 0 ||
            strcmp(s->service, "ec2") != 0)
            continue;
        ch_json_val v, e;
        const char *str;
        size_t n;
        ch_json_iter it;
        if (ch_json_obj_get(s->params, "InstanceId", 10, &v) && ch_json_get_str(v, &str, &n))
            add_instance(&ids, str, n, &count);
        if (ch_json_obj_get(s->params, "InstanceIds", 11, &v) && ch_json_arr_iter(v, &it))
            while (ch_json_arr_next(&it, &e))
                if (ch_json_get_str(e, &str, &n))
                    add_instance(&ids, str, n, &count);
    }
    int rc = 0;
    ch_buf_clear(&c->body);
    if ((rc = form(&c->body, "Action", "DescribeInstances")) < 0 ||
        (rc = form(&c->body, "Version", version_of("ec2"))) < 0) {
        ch_buf_free(&ids);
        return ch_error_set(c->err, rc, "out of memory");
    }
    int k = 0;
    for (char *p = ids.data + 1, *q; rc >= 0 && (q = strchr(p, ',')) != NULL; p = q + 1) {
        *q = '\0';
        char key[32];
        snprintf(key, sizeof key, "InstanceId.%d", ++k);
        rc = form(&c->body, key, p);
    }
    ch_buf_free(&ids);
    if (rc < 0)
        return ch_error_set(c->err, rc, "out of memory");
    if (count == 0)
        return ch_error_set(c->err, CH_ENOTFOUND,
                            "the plan names no instance in %s %s to find its VPC", account, region);
    const ch_aws_creds *cr;
    ch_aws_result res;
    if ((rc = creds_for(c, account, &cr)) < 0 ||
        (rc = call(c, cr, "ec2", region, "DescribeInstances", false, &res)) < 0)
        return rc;
    describe_acc d = {.c = c, .account = account, .region = region};
    int got = ch_resp_parse_instances(c->resp.data, c->resp.len, on_instance, &d);
    if (got < 0)
        return got == CH_EPARSE || got == CH_ELIMIT
                   ? ch_error_set(c->err, CH_EPARSE,
                                  "ec2:DescribeInstances in %s %s: the answer lists no instances",
                                  account, region)
                   : got;
    if (got < count)
        return ch_error_set(c->err, CH_ENOTFOUND,
                            "ec2:DescribeInstances in %s %s returned %d of the plan's %d "
                            "instances (terminated, or in another account or region?)",
                            account, region, got, count);
    if (d.missing[0])
        return ch_error_set(c->err, CH_ENOTFOUND,
                            "ec2:DescribeInstances in %s %s: instance %s is in no VPC; the "
                            "quarantine group, DNS Firewall and network ACLs are per VPC",
                            account, region, d.missing);
    if ((rc = ch_resp_value_put(c->rs, c->o->plan_id, account, region, "subnets-of-instances",
                                d.subnets, c->err)) < 0 ||
        (rc = ch_resp_value_put(c->rs, c->o->plan_id, account, region, "vpcs-of-instances", d.vpcs,
                                c->err)) < 0)
        return rc;
    return 0;
}

/* The pool addresses of the plan's CreateNetworkAclEntry steps in (account, region), as CIDRs
 * separated by ',' (the same text the steps send and the rule number values are keyed by). */
static int pool_cidrs(run_ctx *c, const char *account, const char *region, char *out, size_t cap)
{
    out[0] = '\0';
    for (size_t i = 0; i < c->nsteps; i++) {
        const step_view *s = &c->steps[i];
        ch_json_val v;
        const char *str;
        size_t n;
        if (strcmp(s->account, account) != 0 || strcmp(s->region, region) != 0 ||
            strcmp(s->action, "CreateNetworkAclEntry") != 0)
            continue;
        if ((ch_json_obj_get(s->params, "CidrBlock", 9, &v) ||
             ch_json_obj_get(s->params, "Ipv6CidrBlock", 13, &v)) &&
            ch_json_get_str(v, &str, &n) && n < 64) {
            char cidr[64];
            snprintf(cidr, sizeof cidr, "%.*s", (int)n, str);
            if (!list_add(out, cap, cidr))
                return ch_error_set(c->err, CH_ELIMIT, "too many pool addresses in %s %s", account,
                                    region);
        }
    }
    return 0;
}

typedef struct nacl_acc {
    run_ctx *c;
    const char *account, *region, *vpcs, *cidrs;
    char acls[2048];
    int nacls;
} nacl_acc;

/* One ACL of the attacker's subnets: the rule number of each pool address's deny entry, recorded
 * before any entry is sent. A number recorded by an earlier run stays (its entry may exist
 * already); an address the ACL already denies by an entry of its own is marked "-N" (not ours:
 * nothing is added and the rollback leaves it); otherwise a free number (ch_resp_nacl_pick). */
static int on_nacl(void *ud, const char *acl, const char *vpc, const char *subnets,
                   const ch_resp_nacl_entry *e, size_t n)
{
    (void)subnets;
    nacl_acc *d = ud;
    run_ctx *c = d->c;
    char w[72];
    bool ours = false;
    for (const char *p = d->vpcs; !ours && list_next(&p, w, sizeof w);)
        ours = strcmp(w, vpc) == 0;
    if (!ours)
        return 0; /* never an ACL of a VPC without an attacker's instance */
    int taken[CH_RESP_NACL_MAX_ENTRIES];
    size_t ntaken = 0;
    char cidr[64], name[160], val[32];
    /* Numbers recorded before first, so that new picks avoid them. */
    for (const char *p = d->cidrs; list_next(&p, cidr, sizeof cidr);) {
        snprintf(name, sizeof name, "rule-number:%s:%s", acl, cidr);
        int rc = ch_resp_value_get(c->rs, c->o->plan_id, d->account, d->region, name, val,
                                   sizeof val, c->err);
        if (rc < 0)
            return rc;
        if (rc == 1 && val[0] != '-' && ntaken < CH_RESP_NACL_MAX_ENTRIES)
            taken[ntaken++] = atoi(val);
    }
    for (const char *p = d->cidrs; list_next(&p, cidr, sizeof cidr);) {
        snprintf(name, sizeof name, "rule-number:%s:%s", acl, cidr);
        int rc = ch_resp_value_get(c->rs, c->o->plan_id, d->account, d->region, name, val,
                                   sizeof val, c->err);
        if (rc != 0)
            continue;
        int mine = 0;
        for (size_t i = 0; i < n && mine == 0; i++)
            if (e[i].egress && e[i].deny && strcmp(e[i].cidr, cidr) == 0)
                mine = -e[i].number;
        if (mine == 0) {
            mine = ch_resp_nacl_pick(e, n, cidr, taken, ntaken);
            if (mine < 0)
                return ch_error_set(c->err, CH_ELIMIT,
                                    "network ACL %s (%s %s): no free egress rule number before its "
                                    "first allow entry for the deny entry of %s",
                                    acl, d->account, d->region, cidr);
            if (ntaken < CH_RESP_NACL_MAX_ENTRIES)
                taken[ntaken++] = mine;
        }
        snprintf(val, sizeof val, "%d", mine);
        if ((rc = ch_resp_value_put(c->rs, c->o->plan_id, d->account, d->region, name, val,
                                    c->err)) < 0)
            return rc;
    }
    if (!list_add(d->acls, sizeof d->acls, acl))
        return ch_error_set(c->err, CH_ELIMIT, "too many network ACLs in %s %s", d->account,
                            d->region);
    d->nacls++;
    return 0;
}

/* DescribeNetworkAcls of the attacker's subnets in (account, region): every ACL associated with
 * one of them gets the deny entries, with rule numbers free in that ACL. */
static int describe_nacl(run_ctx *c, const char *account, const char *region)
{
    char subnets[2048], vpcs[2048], cidrs[4096];
    int rc = ch_resp_value_get(c->rs, c->o->plan_id, account, region, "vpcs-of-instances", vpcs,
                               sizeof vpcs, c->err);
    if (rc == 0 && (rc = describe_place(c, account, region)) >= 0)
        rc = ch_resp_value_get(c->rs, c->o->plan_id, account, region, "vpcs-of-instances", vpcs,
                               sizeof vpcs, c->err);
    if (rc >= 0)
        rc = ch_resp_value_get(c->rs, c->o->plan_id, account, region, "subnets-of-instances",
                               subnets, sizeof subnets, c->err);
    if (rc >= 0)
        rc = pool_cidrs(c, account, region, cidrs, sizeof cidrs);
    if (rc < 0)
        return rc;
    ch_buf_clear(&c->body);
    if ((rc = form(&c->body, "Action", "DescribeNetworkAcls")) < 0 ||
        (rc = form(&c->body, "Version", version_of("ec2"))) < 0 ||
        (rc = form(&c->body, "Filter.1.Name", "association.subnet-id")) < 0)
        return ch_error_set(c->err, rc, "out of memory");
    int k = 0;
    char w[72];
    for (const char *p = subnets; rc >= 0 && list_next(&p, w, sizeof w);) {
        char key[40];
        snprintf(key, sizeof key, "Filter.1.Value.%d", ++k);
        rc = form(&c->body, key, w);
    }
    if (rc < 0)
        return ch_error_set(c->err, rc, "out of memory");
    const ch_aws_creds *cr;
    ch_aws_result res;
    if ((rc = creds_for(c, account, &cr)) < 0 ||
        (rc = call(c, cr, "ec2", region, "DescribeNetworkAcls", false, &res)) < 0)
        return rc;
    nacl_acc d = {.c = c, .account = account, .region = region, .vpcs = vpcs, .cidrs = cidrs};
    int got = ch_resp_parse_nacls(c->resp.data, c->resp.len, on_nacl, &d);
    if (got < 0)
        return c->err->code != 0
                   ? got
                   : ch_error_set(c->err, got,
                                  "ec2:DescribeNetworkAcls in %s %s: an answer that does not read "
                                  "as network ACLs (%s)",
                                  account, region, ch_strerror(got));
    if (d.nacls == 0)
        return ch_error_set(c->err, CH_ENOTFOUND,
                            "ec2:DescribeNetworkAcls in %s %s: no network ACL for the subnets %s",
                            account, region, subnets);
    return ch_resp_value_put(c->rs, c->o->plan_id, account, region, "network-acls-of-instances",
                             d.acls, c->err);
}

/* The targets a step's call is made for: the VPCs of the attacker's instances in its place
 * (quarantine group, DNS Firewall association) or the network ACLs of their subnets (deny
 * entries); "" (one call, no target) for every other action. Learnt from the account in the run;
 * a rollback uses what the run recorded. */
static int targets_of(run_ctx *c, const step_view *s, const char *action, char *out, size_t cap,
                      bool *fan)
{
    static const char *const per_vpc[] = {"CreateSecurityGroup", "DeleteSecurityGroup",
                                          "AssociateFirewallRuleGroup",
                                          "DisassociateFirewallRuleGroup"};
    static const char *const per_acl[] = {"CreateNetworkAclEntry", "DeleteNetworkAclEntry"};
    const char *name = NULL;
    for (size_t i = 0; i < 4 && name == NULL; i++)
        if (strcmp(action, per_vpc[i]) == 0)
            name = "vpcs-of-instances";
    for (size_t i = 0; i < 2 && name == NULL; i++)
        if (strcmp(action, per_acl[i]) == 0)
            name = "network-acls-of-instances";
    out[0] = '\0';
    *fan = name != NULL;
    if (name == NULL)
        return 0;
    int rc = ch_resp_value_get(c->rs, c->o->plan_id, s->account, s->region, name, out, cap, c->err);
    if (rc != 0 || strcmp(c->phase, "run") != 0)
        return rc < 0 ? rc : 0;
    rc = name[0] == 'v' ? describe_place(c, s->account, s->region)
                        : describe_nacl(c, s->account, s->region);
    if (rc >= 0)
        rc = ch_resp_value_get(c->rs, c->o->plan_id, s->account, s->region, name, out, cap, c->err);
    return rc < 0 ? rc : 0;
}

/* The value of ${name} for step s whose parameters are params (comma-separated for a list),
 * made for target (a VPC or network ACL id, or NULL). */
static int resolve(run_ctx *c, const step_view *s, ch_json_val params, const char *target,
                   const char *name, char *out, size_t cap)
{
    char key[192];
    snprintf(key, sizeof key, "%s", name);
    ch_json_val v;
    const char *str;
    size_t n;
    bool run = strcmp(c->phase, "run") == 0;
    if (strcmp(name, "vpc-of-instances") == 0 || strcmp(name, "network-acl-of-instances") == 0) {
        if (target == NULL)
            return ch_error_set(c->err, CH_EPARSE, "step %s (%s): ${%s} in a call made once", s->id,
                                s->action, name);
        snprintf(out, cap, "%s", target);
        return 0;
    }
    if (strcmp(name, "rule-number") == 0) {
        /* Keyed by the ACL and the address: the run's parameters name it, the rollback's not. */
        if (target == NULL || !((ch_json_obj_get(s->params, "CidrBlock", 9, &v) ||
                                 ch_json_obj_get(s->params, "Ipv6CidrBlock", 13, &v)) &&
                                ch_json_get_str(v, &str, &n)))
            return ch_error_set(c->err, CH_EPARSE,
                                "step %s: ${rule-number} without an ACL and "
                                "an address",
                                s->id);
        snprintf(key, sizeof key, "rule-number:%s:%.*s", target, (int)(n < 64 ? n : 64), str);
    } else if (strcmp(name, "association") == 0 && target != NULL) {
        snprintf(key, sizeof key, "association:%s", target);
    } else if (strcmp(name, "quarantine-group") == 0) {
        char vpc[72];
        if (target != NULL) {
            snprintf(vpc, sizeof vpc, "%s", target);
        } else {
            /* An instance goes into the group made in its own VPC. */
            if (!ch_json_obj_get(params, "InstanceId", 10, &v) || !ch_json_get_str(v, &str, &n))
                return ch_error_set(c->err, CH_EPARSE,
                                    "step %s: ${quarantine-group} without InstanceId", s->id);
            char vk[96];
            snprintf(vk, sizeof vk, "vpc-of:%.*s", (int)(n < 72 ? n : 72), str);
            int rc = ch_resp_value_get(c->rs, c->o->plan_id, s->account, s->region, vk, vpc,
                                       sizeof vpc, c->err);
            if (rc == 0 && run && (rc = describe_place(c, s->account, s->region)) >= 0)
                rc = ch_resp_value_get(c->rs, c->o->plan_id, s->account, s->region, vk, vpc,
                                       sizeof vpc, c->err);
            if (rc <= 0)
                return rc < 0 ? rc
                              : ch_error_set(c->err, CH_ENOTFOUND,
                                             "step %s: the VPC of %.*s is not known", s->id, (int)n,
                                             str);
        }
        snprintf(key, sizeof key, "quarantine-group:%s", vpc);
    } else if (strcmp(name, "groups-before") == 0) {
        if (!ch_json_obj_get(params, "InstanceId", 10, &v) || !ch_json_get_str(v, &str, &n))
            return ch_error_set(c->err, CH_EPARSE, "step %s: ${groups-before} without InstanceId",
                                s->id);
        snprintf(key, sizeof key, "groups-before:%.*s", (int)n, str);
    }
    int rc = ch_resp_value_get(c->rs, c->o->plan_id, s->account, s->region, key, out, cap, c->err);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    if (run && strcmp(name, "groups-before") == 0)
        rc = describe_place(c, s->account, s->region);
    else
        return ch_error_set(c->err, CH_ENOTFOUND,
                            "step %s (%s) needs ${%s}, which no step that ran has made (run the "
                            "step that creates it first)",
                            s->id, s->action, name);
    if (rc < 0)
        return rc;
    rc = ch_resp_value_get(c->rs, c->o->plan_id, s->account, s->region, key, out, cap, c->err);
    if (rc == 0)
        return ch_error_set(c->err, CH_ENOTFOUND, "step %s: cannot resolve ${%s}", s->id, name);
    return rc < 0 ? rc : 0;
}

/* A string that is exactly "${name}": the name into out. */
static bool placeholder(const char *s, size_t n, char *out, size_t cap)
{
    if (n < 4 || n - 3 >= cap || s[0] != '$' || s[1] != '{' || s[n - 1] != '}')
        return false;
    memcpy(out, s + 2, n - 3);
    out[n - 3] = '\0';
    return true;
}

/* ---- encoding -------------------------------------------------------------------------------- */

static const char *rename_of(const action_def *a, const char *key, size_t kl, char *out, size_t cap)
{
    for (const char *p = a->renames; *p;) {
        const char *eq = strchr(p, '='), *end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        if (eq != NULL && eq < end && (size_t)(eq - p) == kl && memcmp(p, key, kl) == 0) {
            snprintf(out, cap, "%.*s", (int)(end - eq - 1), eq + 1);
            return out;
        }
        p = *end ? end + 1 : end;
    }
    snprintf(out, cap, "%.*s", (int)kl, key);
    return out;
}

typedef struct enc {
    run_ctx *c;
    const step_view *s;
    ch_json_val params; /* the object placeholders read InstanceId from */
    const char *target; /* the VPC or ACL this call is made for, or NULL */
    char *val;          /* scratch for resolved values */
} enc;

/* A string with placeholders inside ("...-assoc-${vpc-of-instances}"): each replaced. */
static int embedded(enc *e, const char *s, size_t n)
{
    char ph[64], one[VALUE_MAX];
    size_t used = 0;
    for (size_t i = 0; i < n;) {
        const char *close = NULL;
        if (i + 1 < n && s[i] == '$' && s[i + 1] == '{')
            close = memchr(s + i, '}', n - i);
        if (close != NULL && placeholder(s + i, (size_t)(close - (s + i)) + 1, ph, sizeof ph)) {
            int rc = resolve(e->c, e->s, e->params, e->target, ph, one, sizeof one);
            if (rc < 0)
                return rc;
            size_t l = strlen(one);
            if (used + l >= VALUE_MAX)
                return ch_error_set(e->c->err, CH_ELIMIT, "step %s: a parameter too long",
                                    e->s->id);
            memcpy(e->val + used, one, l);
            used += l;
            i = (size_t)(close - s) + 1;
            continue;
        }
        if (used + 1 >= VALUE_MAX)
            return ch_error_set(e->c->err, CH_ELIMIT, "step %s: a parameter too long", e->s->id);
        e->val[used++] = s[i++];
    }
    e->val[used] = '\0';
    return 0;
}

static int scalar_text(enc *e, ch_json_val v, const char **out, size_t *n, bool *list)
{
    char ph[64];
    *list = false;
    switch (ch_json_typeof(v)) {
    case CH_JSON_STRING:
        ch_json_get_str(v, out, n);
        if (placeholder(*out, *n, ph, sizeof ph)) {
            int rc = resolve(e->c, e->s, e->params, e->target, ph, e->val, VALUE_MAX);
            if (rc < 0)
                return rc;
            *out = e->val;
            *n = strlen(e->val);
            *list = strcmp(ph, "groups-before") == 0;
        } else if (*n > 3 && memmem(*out, *n, "${", 2) != NULL) {
            int rc = embedded(e, *out, *n);
            if (rc < 0)
                return rc;
            *out = e->val;
            *n = strlen(e->val);
        }
        return 0;
    case CH_JSON_BOOL: {
        bool b = false;
        ch_json_get_bool(v, &b);
        *out = b ? "true" : "false";
        *n = strlen(*out);
        return 0;
    }
    case CH_JSON_INT: {
        int64_t i = 0;
        ch_json_get_i64(v, &i);
        snprintf(e->val, VALUE_MAX, "%lld", (long long)i);
        *out = e->val;
        *n = strlen(e->val);
        return 0;
    }
    default:
        return ch_error_set(e->c->err, CH_EPARSE, "step %s: a parameter of an unexpected type",
                            e->s->id);
    }
}

/* Query protocol: objects as Prefix.Key, lists as Prefix.N (from 1). */
static int flatten(enc *e, ch_buf *b, const char *prefix, ch_json_val v)
{
    char key[512], val[VALUE_MAX + 1];
    ch_json_iter it;
    int rc = 0;
    if (ch_json_typeof(v) == CH_JSON_OBJECT) {
        const char *k;
        size_t kl;
        ch_json_val m;
        ch_json_obj_iter(v, &it);
        while (rc >= 0 && ch_json_obj_next(&it, &k, &kl, &m)) {
            snprintf(key, sizeof key, "%s%s%.*s", prefix, *prefix ? "." : "", (int)kl, k);
            rc = flatten(e, b, key, m);
        }
        return rc;
    }
    if (ch_json_typeof(v) == CH_JSON_ARRAY) {
        ch_json_val m;
        int i = 0;
        ch_json_arr_iter(v, &it);
        while (rc >= 0 && ch_json_arr_next(&it, &m)) {
            const char *s;
            size_t n;
            bool list;
            if ((rc = scalar_text(e, m, &s, &n, &list)) < 0)
                return rc;
            snprintf(val, sizeof val, "%.*s", (int)n, s);
            /* A resolved list (groups-before) spreads over as many members. */
            for (char *p = val, *q; rc >= 0 && *p; p = q != NULL ? q + 1 : p + strlen(p)) {
                q = list ? strchr(p, ',') : NULL;
                if (q != NULL)
                    *q = '\0';
                snprintf(key, sizeof key, "%s.%d", prefix, ++i);
                rc = form(b, key, p);
            }
        }
        return rc;
    }
    const char *s;
    size_t n;
    bool list;
    if ((rc = scalar_text(e, v, &s, &n, &list)) < 0)
        return rc;
    snprintf(val, sizeof val, "%.*s", (int)n, s);
    return form(b, prefix, val);
}

static int query_body(enc *e, ch_buf *b, const action_def *a, const char *action,
                      ch_json_val params)
{
    int rc = form(b, "Action", action);
    if (rc >= 0)
        rc = form(b, "Version", version_of(a->service));
    ch_json_iter it;
    const char *k;
    size_t kl;
    ch_json_val m;
    ch_json_obj_iter(params, &it);
    while (rc >= 0 && ch_json_obj_next(&it, &k, &kl, &m)) {
        char name[256];
        rc = flatten(e, b, rename_of(a, k, kl, name, sizeof name), m);
    }
    return rc;
}

/* JSON 1.1: the parameters as they are, placeholders replaced. */
static int json_value(enc *e, ch_buf *b, ch_json_val v)
{
    ch_json_iter it;
    ch_json_val m;
    int rc = 0;
    bool first = true;
    switch (ch_json_typeof(v)) {
    case CH_JSON_OBJECT: {
        const char *k;
        size_t kl;
        rc = ch_buf_addc(b, '{');
        ch_json_obj_iter(v, &it);
        while (rc >= 0 && ch_json_obj_next(&it, &k, &kl, &m)) {
            if (!first)
                rc = ch_buf_addc(b, ',');
            first = false;
            if (rc >= 0)
                rc = ch_buf_add_json_str(b, k, kl);
            if (rc >= 0)
                rc = ch_buf_addc(b, ':');
            if (rc >= 0)
                rc = json_value(e, b, m);
        }
        return rc < 0 ? rc : ch_buf_addc(b, '}');
    }
    case CH_JSON_ARRAY:
        rc = ch_buf_addc(b, '[');
        ch_json_arr_iter(v, &it);
        while (rc >= 0 && ch_json_arr_next(&it, &m)) {
            if (!first)
                rc = ch_buf_addc(b, ',');
            first = false;
            if (rc >= 0)
                rc = json_value(e, b, m);
        }
        return rc < 0 ? rc : ch_buf_addc(b, ']');
    case CH_JSON_STRING: {
        const char *s;
        size_t n;
        bool list;
        if ((rc = scalar_text(e, v, &s, &n, &list)) < 0)
            return rc;
        return ch_buf_add_json_str(b, s, n);
    }
    default:
        return ch_json_write(v, b);
    }
}

/* ---- one step ----------------------------------------------------------------------------------
 */

typedef enum outcome { OUT_DONE, OUT_ALREADY } outcome;

/* After CreateSecurityGroup: a new VPC group allows all egress; the quarantine allows none. */
static int revoke_egress(run_ctx *c, const ch_aws_creds *cr, const step_view *s, const char *group)
{
    ch_buf_clear(&c->body);
    int rc;
    if ((rc = form(&c->body, "Action", "RevokeSecurityGroupEgress")) < 0 ||
        (rc = form(&c->body, "Version", version_of("ec2"))) < 0 ||
        (rc = form(&c->body, "GroupId", group)) < 0 ||
        (rc = form(&c->body, "IpPermissions.1.IpProtocol", "-1")) < 0 ||
        (rc = form(&c->body, "IpPermissions.1.IpRanges.1.CidrIp", "0.0.0.0/0")) < 0)
        return ch_error_set(c->err, rc, "out of memory");
    ch_aws_result res;
    memset(&res, 0, sizeof res);
    rc = call(c, cr, "ec2", s->region, "RevokeSecurityGroupEgress", false, &res);
    if (rc < 0 && strcmp(res.code, "InvalidPermission.NotFound") == 0) {
        memset(c->err, 0, sizeof *c->err); /* revoked by an earlier run */
        return 0;
    }
    return rc;
}

/* CreateSecurityGroup said the group exists (an earlier run made it): find its id. */
static int find_group(run_ctx *c, const ch_aws_creds *cr, const step_view *s, const char *vpc,
                      char *out, size_t cap)
{
    ch_json_val v;
    const char *name;
    size_t n;
    if (!ch_json_obj_get(s->params, "GroupName", 9, &v) || !ch_json_get_str(v, &name, &n))
        return ch_error_set(c->err, CH_EPARSE, "step %s: no GroupName", s->id);
    char gname[256];
    snprintf(gname, sizeof gname, "%.*s", (int)n, name);
    if (vpc == NULL)
        return ch_error_set(c->err, CH_EPARSE, "step %s: a quarantine group without a VPC", s->id);
    int rc;
    ch_buf_clear(&c->body);
    if ((rc = form(&c->body, "Action", "DescribeSecurityGroups")) < 0 ||
        (rc = form(&c->body, "Version", version_of("ec2"))) < 0 ||
        (rc = form(&c->body, "Filter.1.Name", "group-name")) < 0 ||
        (rc = form(&c->body, "Filter.1.Value.1", gname)) < 0 ||
        (rc = form(&c->body, "Filter.2.Name", "vpc-id")) < 0 ||
        (rc = form(&c->body, "Filter.2.Value.1", vpc)) < 0)
        return ch_error_set(c->err, rc, "out of memory");
    ch_aws_result res;
    if ((rc = call(c, cr, "ec2", s->region, "DescribeSecurityGroups", false, &res)) < 0)
        return rc;
    if (!ch__aws_xml_text(c->resp.data, c->resp.len, "groupId", out, cap) ||
        !ch__aws_id_shaped(out, strlen(out)))
        return ch_error_set(c->err, CH_ENOTFOUND, "ec2:DescribeSecurityGroups: no group %s in %s",
                            gname, vpc);
    return 0;
}

/* Associating and disassociating a DNS Firewall rule group are asynchronous: the call answers
 * with the association CREATING or DELETING, and the rule group cannot be deleted while an
 * association of it exists, even one DELETING. Poll GetFirewallRuleGroupAssociation until the
 * association is COMPLETE (gone false) or no longer exists (gone true), waiting 250 ms, then twice
 * as long each time up to 5 s, for at most respond.dns_wait (5 minutes by default: less than the
 * lease of the plan's lock, renewed before each call). */
static int wait_association(run_ctx *c, const ch_aws_creds *cr, const step_view *s,
                            const char *assoc, bool gone)
{
    int64_t limit = c->o->cfg->dns_wait_ms > 0 ? c->o->cfg->dns_wait_ms : 300000;
    int64_t start = now_ms(), delay = 250;
    char status[64] = "";
    for (int polls = 0;; polls++) {
        ch_buf_clear(&c->body);
        int rc = ch_buf_adds(&c->body, "{\"FirewallRuleGroupAssociationId\":");
        if (rc >= 0)
            rc = ch_buf_add_json_str(&c->body, assoc, strlen(assoc));
        if (rc >= 0)
            rc = ch_buf_addc(&c->body, '}');
        if (rc < 0)
            return ch_error_set(c->err, rc, "out of memory");
        ch_aws_result res;
        memset(&res, 0, sizeof res);
        rc = call(c, cr, "route53resolver", s->region, "GetFirewallRuleGroupAssociation", true,
                  &res);
        if (rc < 0 && strcmp(res.code, "ResourceNotFoundException") == 0) {
            memset(c->err, 0, sizeof *c->err);
            if (gone)
                return 0;
            return ch_error_set(c->err, CH_EIO,
                                "route53resolver: association %s in %s vanished while it was "
                                "being made",
                                assoc, s->region);
        }
        if (rc < 0)
            return rc;
        if (ch_resp_json_path(c->resp.data, c->resp.len, "FirewallRuleGroupAssociation", "Status",
                              status, sizeof status) != 1)
            return ch_error_set(c->err, CH_EPARSE,
                                "route53resolver:GetFirewallRuleGroupAssociation answered "
                                "without FirewallRuleGroupAssociation.Status");
        if (!gone && strcmp(status, "COMPLETE") == 0)
            return 0;
        if (!gone && strcmp(status, "CREATING") != 0 && strcmp(status, "UPDATING") != 0)
            return ch_error_set(c->err, CH_EIO,
                                "route53resolver: association %s in %s is %s, not COMPLETE", assoc,
                                s->region, status);
        int64_t waited = now_ms() - start;
        if (waited + delay > limit)
            return ch_error_set(
                c->err, CH_EIO,
                "route53resolver: association %s in %s is still %s after %.1f s and %d polls "
                "(respond.dns_wait); %s",
                assoc, s->region, status, (double)waited / 1000.0, polls + 1,
                gone ? "the rule group and domain list are left in place: roll back again later"
                     : "run the plan again later");
        if (c->o->cancel != NULL && atomic_load(c->o->cancel))
            return ch_error_set(c->err, CH_EIO,
                                "route53resolver: association %s in %s is still %s: the run was "
                                "stopped while waiting (the server stops); run it again",
                                assoc, s->region, status);
        struct timespec ts = {.tv_sec = delay / 1000, .tv_nsec = (delay % 1000) * 1000000};
        nanosleep(&ts, NULL);
        delay = delay * 2 > 5000 ? 5000 : delay * 2;
    }
}

static int do_step(run_ctx *c, const step_view *s, const char *action, ch_json_val params,
                   const char *target, outcome *out, int *attempts)
{
    const action_def *a = action_find(s->service, action);
    if (a == NULL)
        return ch_error_set(c->err, CH_EUSAGE, "step %s: %s:%s is not an action the runner knows",
                            s->id, s->service, action);
    const ch_aws_creds *cr;
    int rc = creds_for(c, s->account, &cr);
    if (rc < 0)
        return rc;
    char *val = ch_malloc(VALUE_MAX + 1);
    if (val == NULL)
        return ch_error_set(c->err, CH_ENOMEM, "out of memory");
    enc e = {c, s, params, target, val};
    bool json = strcmp(a->service, "route53resolver") == 0;
    /* Encoded apart: resolving a placeholder may make its own calls through c->body. */
    ch_buf out_body;
    ch_buf_init(&out_body, RESP_MAX);
    rc = json ? json_value(&e, &out_body, params) : query_body(&e, &out_body, a, action, params);
    ch_free(val);
    if (rc >= 0) {
        ch_buf_clear(&c->body);
        rc = ch_buf_add(&c->body, out_body.data != NULL ? out_body.data : "", out_body.len);
    }
    ch_buf_free(&out_body);
    if (rc < 0)
        return c->err->code != 0 ? rc : ch_error_set(c->err, rc, "encoding step %s", s->id);
    ch_aws_result res;
    memset(&res, 0, sizeof res);
    rc = call(c, cr, a->service, s->region, action, json, &res);
    *attempts = res.attempts;
    *out = OUT_DONE;
    if (rc < 0 && res.code[0] && in_words(a->already, res.code)) {
        *out = OUT_ALREADY;
        memset(c->err, 0, sizeof *c->err);
        rc = 0;
    }
    if (rc < 0)
        return rc;
    if (strcmp(action, "DisassociateFirewallRuleGroup") == 0) {
        char assoc[128];
        if ((rc = resolve(c, s, params, target, "association", assoc, sizeof assoc)) < 0)
            return rc;
        return wait_association(c, cr, s, assoc, true);
    }
    if (a->out_name != NULL) {
        char id[128] = "";
        if (*out == OUT_ALREADY && strcmp(action, "CreateSecurityGroup") == 0)
            rc = find_group(c, cr, s, target, id, sizeof id);
        else if (a->out_k2 == NULL)
            rc = ch__aws_xml_text(c->resp.data, c->resp.len, a->out_k1, id, sizeof id) &&
                         ch__aws_id_shaped(id, strlen(id))
                     ? 0
                     : CH_EPARSE;
        else
            rc = ch_resp_json_path(c->resp.data, c->resp.len, a->out_k1, a->out_k2, id,
                                   sizeof id) == 1
                     ? 0
                     : CH_EPARSE;
        if (rc == CH_EPARSE && c->err->code == 0)
            return ch_error_set(c->err, CH_EPARSE, "%s:%s answered without %s%s%s", a->service,
                                action, a->out_k1, a->out_k2 ? "." : "",
                                a->out_k2 ? a->out_k2 : "");
        if (rc < 0)
            return rc;
        /* Made per VPC: named with it ("quarantine-group:vpc-..."). */
        char name[160];
        snprintf(name, sizeof name, "%s%s%s", a->out_name, target != NULL ? ":" : "",
                 target != NULL ? target : "");
        if ((rc = ch_resp_value_put(c->rs, c->o->plan_id, s->account, s->region, name, id,
                                    c->err)) < 0)
            return rc;
        if (strcmp(action, "CreateSecurityGroup") == 0)
            rc = revoke_egress(c, cr, s, id);
        else if (strcmp(action, "AssociateFirewallRuleGroup") == 0)
            rc = wait_association(c, cr, s, id, false);
    }
    return rc;
}

/* ---- one run at a time ------------------------------------------------------------------------
 */

#define LEASE_MS (10 * 60000) /* renewed at each step; longer than any step's retries */

static void holder_name(char *out, size_t cap)
{
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    /* The thread too: two API requests in one server are two runs. */
    snprintf(out, cap, "%ld.%lu@%s", (long)getpid(), (unsigned long)pthread_self(), host);
}

/* A holder on this machine whose process is gone holds nothing (a run killed with -9). */
static bool holder_alive(const char *h)
{
    char me[300];
    holder_name(me, sizeof me);
    const char *at = strchr(h, '@'), *myat = strchr(me, '@');
    if (at == NULL || myat == NULL || strcmp(at, myat) != 0)
        return true; /* another machine: wait for the lease */
    long pid = strtol(h, NULL, 10);
    return pid > 0 && (kill((pid_t)pid, 0) == 0 || errno == EPERM);
}

/* ---- driver
 * -------------------------------------------------------------------------------------- */

static int refuse(run_ctx *c, const char *reason)
{
    ch_buf a;
    ch_buf_init(&a, CH_AUDIT_JSON_MAX);
    ch_buf_adds(&a, "{\"reason\":");
    ch_buf_add_json_str(&a, reason, strlen(reason));
    ch_buf_printf(&a, ",\"phase\":\"%s\"}", c->phase);
    ch_error saved = *c->err;
    int rc = audit(c, "response.plan.refused", NULL, a.data);
    ch_buf_free(&a);
    if (rc < 0)
        return rc;
    *c->err = saved;
    return ch_error_set(c->err, CH_RESP_REFUSED, "%s", reason);
}

int ch_resp_audit_refusal(const char *db, int64_t plan_id, const char *actor, const char *source,
                          const char *reason, ch_error *err)
{
    ch_resp_run_opts o = {.db = db, .plan_id = plan_id, .actor = actor, .source = source};
    run_ctx c = {.o = &o, .err = err, .phase = "run"};
    int rc = ch_audit_open(db, false, &c.au, err);
    if (rc >= 0)
        rc = refuse(&c, reason);
    ch_audit_close(c.au);
    return rc;
}

static bool selected(const ch_resp_run_opts *o, const step_view *s)
{
    bool ok = true;
    if (o->steps != NULL) {
        ok = false;
        for (size_t i = 0; i < o->nsteps && !ok; i++)
            ok = strcmp(o->steps[i], s->id) == 0;
    }
    if (ok && o->kinds != NULL) {
        ok = false;
        for (size_t i = 0; i < o->nkinds && !ok; i++)
            for (size_t k = 0; k < sizeof kinds / sizeof kinds[0] && !ok; k++)
                ok = strcmp(kinds[k].name, o->kinds[i]) == 0 &&
                     in_words(kinds[k].actions, s->action);
    }
    return ok;
}

static void progress(run_ctx *c, const step_view *s, const char *action, const char *what)
{
    if (c->o->progress != NULL)
        fprintf(c->o->progress, "step %s %s:%s (%s %s): %s\n", s->id, s->service, action,
                s->account[0] ? s->account : "-", s->region, what);
}

static int step_audit(run_ctx *c, const step_view *s, const char *action, const char *target,
                      const char *what, const char *result, int attempts, const char *error)
{
    ch_buf a;
    ch_buf_init(&a, CH_AUDIT_JSON_MAX - 1);
    ch_buf_adds(&a, "{\"action\":");
    ch_buf_add_json_str(&a, action, strlen(action));
    ch_buf_adds(&a, ",\"service\":");
    ch_buf_add_json_str(&a, s->service, strlen(s->service));
    ch_buf_adds(&a, ",\"account\":");
    ch_buf_add_json_str(&a, s->account, strlen(s->account));
    ch_buf_adds(&a, ",\"region\":");
    ch_buf_add_json_str(&a, s->region, strlen(s->region));
    if (target != NULL) {
        ch_buf_adds(&a, ",\"target\":");
        ch_buf_add_json_str(&a, target, strlen(target));
    }
    ch_buf_printf(&a, ",\"phase\":\"%s\",\"result\":\"%s\",\"attempts\":%d", c->phase, result,
                  attempts);
    if (error != NULL) {
        ch_buf_adds(&a, ",\"error\":");
        ch_buf_add_json_str(&a, error, strlen(error) > 2048 ? 2048 : strlen(error));
    }
    int rc = ch_buf_addc(&a, '}');
    ch_error saved = *c->err;
    if (rc >= 0)
        rc = audit(c, what, s->id, a.data);
    ch_buf_free(&a);
    if (rc >= 0 && error != NULL)
        *c->err = saved;
    return rc;
}

/* The lease of the plan's lock, renewed before each call (a step may make several). */
static int renew(run_ctx *c)
{
    char holder[300], other[8];
    holder_name(holder, sizeof holder);
    int rc = ch_resp_lock(c->rs, c->o->plan_id, holder, now_ms(), LEASE_MS, NULL, other,
                          sizeof other, c->err);
    return rc == 0 ? ch_error_set(c->err, CH_EUSAGE, "the plan's lock was taken by another run")
                   : rc;
}

/* A step's calls: one, or one per target (each VPC of the attacker's instances in the step's
 * place, or each network ACL of their subnets). Each target's call has its own state row
 * ("STEP@TARGET") written before it is sent and after its answer, so a rerun sends no target's
 * call twice and a rollback undoes exactly the targets the run did: only VPCs and ACLs of the
 * attacker's instances, only entries the run added. */
static int fan(run_ctx *c, const step_view *s, const char *action, ch_json_val params, outcome *out,
               int *attempts)
{
    char *targets = ch_malloc(VALUE_MAX);
    if (targets == NULL)
        return ch_error_set(c->err, CH_ENOMEM, "out of memory");
    bool fanned = false;
    int rc = targets_of(c, s, action, targets, VALUE_MAX, &fanned);
    if (rc < 0 || !fanned) {
        if (rc >= 0)
            rc = do_step(c, s, action, params, NULL, out, attempts);
        ch_free(targets);
        return rc;
    }
    bool rb = c->o->rollback, acl = strstr(action, "NetworkAclEntry") != NULL;
    int sent = 0, already = 0, ntargets = 0;
    char t[72], sub[160], state[16], line[160];
    for (const char *p = targets; rc >= 0 && list_next(&p, t, sizeof t);) {
        int prev = 0;
        snprintf(sub, sizeof sub, "%s@%s", s->id, t);
        if (rb) {
            rc = ch_resp_step_get(c->rs, c->o->plan_id, sub, "run", state, &prev, c->err);
            if (rc <= 0 || strcmp(state, "done") != 0)
                continue; /* the run never made this one */
        }
        ntargets++;
        if (acl) {
            char num[32];
            if ((rc = resolve(c, s, params, t, "rule-number", num, sizeof num)) < 0)
                break;
            if (num[0] == '-') {
                if (!rb) {
                    snprintf(line, sizeof line,
                             "%s already denies it by its own entry %s: nothing added", t, num + 1);
                    progress(c, s, action, line);
                    rc = ch_resp_step_set(c->rs, c->o->plan_id, sub, c->phase, "done", c->o->actor,
                                          now_ms(), NULL, c->err);
                    already++;
                }
                continue;
            }
        }
        if ((rc = ch_resp_step_get(c->rs, c->o->plan_id, sub, c->phase, state, &prev, c->err)) < 0)
            break;
        if (rc == 1 && strcmp(state, "done") == 0) {
            snprintf(line, sizeof line, "%s: done in an earlier run, not sent again", t);
            progress(c, s, action, line);
            rc = 0;
            continue;
        }
        if ((rc = renew(c)) < 0 ||
            (rc = ch_resp_step_set(c->rs, c->o->plan_id, sub, c->phase, "running", c->o->actor,
                                   now_ms(), NULL, c->err)) < 0)
            break;
        outcome o1 = OUT_DONE;
        int att = 0;
        rc = do_step(c, s, action, params, t, &o1, &att);
        *attempts = att > *attempts ? att : *attempts;
        if (rc < 0) {
            ch_error saved = *c->err;
            ch_error_set(&saved, rc, "%s: %s", t, c->err->msg[0] ? c->err->msg : ch_strerror(rc));
            ch_resp_step_set(c->rs, c->o->plan_id, sub, c->phase, "failed", c->o->actor, now_ms(),
                             saved.msg, c->err);
            *c->err = saved;
            break;
        }
        if ((rc = ch_resp_step_set(c->rs, c->o->plan_id, sub, c->phase, "done", c->o->actor,
                                   now_ms(), NULL, c->err)) < 0 ||
            (rc =
                 step_audit(c, s, action, t, rb ? "response.step.rolled_back" : "response.step.run",
                            o1 == OUT_ALREADY ? "already" : "done", att, NULL)) < 0)
            break;
        snprintf(line, sizeof line, "%s: %s", t, o1 == OUT_ALREADY ? "already so" : "done");
        progress(c, s, action, line);
        sent++;
        already += o1 == OUT_ALREADY;
    }
    ch_free(targets);
    if (rc < 0)
        return rc;
    if (!rb && ntargets == 0)
        return ch_error_set(c->err, CH_ENOTFOUND,
                            "step %s (%s): no VPC or network ACL of the "
                            "plan's instances in %s %s",
                            s->id, action, s->account, s->region);
    *out = sent == already ? OUT_ALREADY : OUT_DONE;
    return 0;
}

/* Run or roll back one step; 1 when it was done before, 0 done now, < 0 failed. */
static int one(run_ctx *c, const step_view *s, ch_resp_run_result *res)
{
    bool rb = c->o->rollback;
    char state[16];
    int prev = 0, attempts = 0;
    int rc = ch_resp_step_get(c->rs, c->o->plan_id, s->id, c->phase, state, &prev, c->err);
    if (rc < 0)
        return rc;
    const char *action = s->action;
    ch_json_val params = s->params;
    char act[64];
    if (rb) {
        ch_json_val v;
        const char *str;
        size_t n;
        if (!ch_json_obj_get(s->rollback, "action", 6, &v) || !ch_json_get_str(v, &str, &n) ||
            n >= sizeof act || !ch_json_obj_get(s->rollback, "parameters", 10, &params))
            return ch_error_set(c->err, CH_EPARSE, "step %s: malformed rollback", s->id);
        memcpy(act, str, n);
        act[n] = '\0';
        action = act;
    }
    if (rc == 1 && strcmp(state, "done") == 0) {
        res->skipped++;
        progress(c, s, action, "done in an earlier run, not sent again");
        return 1;
    }
    if (rc == 1 && strcmp(state, "running") == 0)
        progress(c, s, action,
                 "was in flight when the last run stopped: sending it again (idempotent)");
    int64_t t = now_ms();
    if ((rc = ch_resp_step_set(c->rs, c->o->plan_id, s->id, c->phase, "running", c->o->actor, t,
                               NULL, c->err)) < 0)
        return rc;
    outcome out = OUT_DONE;
    ch_error serr = {0};
    ch_error *keep = c->err;
    c->err = &serr;
    rc = fan(c, s, action, params, &out, &attempts);
    c->err = keep;
    if (rc < 0) {
        if (serr.msg[0] == '\0')
            ch_error_set(&serr, rc, "%s", ch_strerror(rc));
        *c->err = serr;
        res->failed++;
        progress(c, s, action, serr.msg);
        int r2 = ch_resp_step_set(c->rs, c->o->plan_id, s->id, c->phase, "failed", c->o->actor,
                                  now_ms(), serr.msg, c->err);
        if (r2 >= 0)
            r2 = step_audit(c, s, action, NULL,
                            rb ? "response.step.rollback_failed" : "response.step.failed", "failed",
                            attempts, serr.msg);
        *c->err = serr;
        return r2 < 0 ? r2
                      : (rc == CH_EIO || rc == CH_ENOTFOUND || rc == CH_EUSAGE || rc == CH_EPARSE
                             ? CH_EIO
                             : rc);
    }
    res->done++;
    res->already += out == OUT_ALREADY;
    if ((rc = ch_resp_step_set(c->rs, c->o->plan_id, s->id, c->phase, "done", c->o->actor, now_ms(),
                               NULL, c->err)) < 0)
        return rc;
    const char *what = out == OUT_ALREADY ? "already so (counted as done)" : "done";
    char line[96];
    snprintf(line, sizeof line, "%s%s", what, attempts > 1 ? " after throttling" : "");
    progress(c, s, action, line);
    return step_audit(c, s, action, NULL, rb ? "response.step.rolled_back" : "response.step.run",
                      out == OUT_ALREADY ? "already" : "done", attempts, NULL);
}

int ch_resp_run(const ch_resp_run_opts *o, ch_resp_run_result *res, ch_error *err)
{
    memset(res, 0, sizeof *res);
    run_ctx c = {.o = o, .err = err, .phase = o->rollback ? "rollback" : "run"};
    ch_buf_init(&c.body, RESP_MAX);
    ch_buf_init(&c.resp, RESP_MAX);
    ch_buf arena;
    ch_buf_init(&arena, 64u << 20);
    char *json = NULL, status[32] = "";
    int64_t offense = 0;
    int rc = ch_audit_open(o->db, false, &c.au, err);
    if (rc >= 0)
        rc = ch_resp_store_open(o->db, &c.rs, err);
    if (rc >= 0)
        rc = ch_resp_store_get(c.rs, o->plan_id, &json, &offense, status, err);
    if (rc < 0)
        goto cleanup;
    /* Refusals are decided before anything else is read or sent, and audited. */
    if (o->cfg == NULL || !o->cfg->execute) {
        rc = refuse(&c, "execution is off: the configuration does not set respond.execute: true");
        goto cleanup;
    }
    if (!o->approved) {
        rc = refuse(&c, "not approved: running a plan needs an explicit approval (--approve)");
        goto cleanup;
    }
    /* Two runs of one plan at once (two admins, or an admin and the responder) would send
     * steps twice: one holds the plan's lock, renewed at each step. */
    char holder[300], other[300];
    holder_name(holder, sizeof holder);
    rc = ch_resp_lock(c.rs, o->plan_id, holder, now_ms(), LEASE_MS, holder_alive, other,
                      sizeof other, err);
    if (rc == 0)
        rc = ch_error_set(err, CH_RESP_BUSY, "plan %lld is being run by %s; try again when it ends",
                          (long long)o->plan_id, other);
    if (rc < 0)
        goto cleanup;
    c.locked = true;
    c.assumed = ch_calloc(MAX_ASSUMED, sizeof *c.assumed);
    if (c.assumed == NULL) {
        rc = ch_error_set(err, CH_ENOMEM, "out of memory");
        goto cleanup;
    }
    /* Offset 0 would read as "missing" in load_steps: start the arena with a byte. */
    if ((rc = ch_buf_addc(&arena, '\0')) < 0 || (rc = load_steps(&c, json, &arena)) < 0)
        goto cleanup;
    for (size_t i = 0; i < o->nsteps; i++) {
        bool known = false;
        for (size_t k = 0; k < c.nsteps && !known; k++)
            known = strcmp(c.steps[k].id, o->steps[i]) == 0;
        if (!known) {
            rc = ch_error_set(err, CH_ENOTFOUND, "plan %lld has no step %s", (long long)o->plan_id,
                              o->steps[i]);
            goto cleanup;
        }
    }
    ch_buf approved;
    ch_buf_init(&approved, CH_AUDIT_JSON_MAX - 1);
    ch_buf_printf(&approved, "{\"offense\":%lld,\"phase\":\"%s\",\"steps\":[", (long long)offense,
                  c.phase);
    size_t nsel = 0;
    for (size_t i = 0; i < c.nsteps; i++) {
        step_view *s = &c.steps[i];
        s->selected = selected(o, s);
        if (s->selected && o->rollback) {
            char st[16];
            int att;
            int r = ch_resp_step_get(c.rs, o->plan_id, s->id, "run", st, &att, err);
            if (r < 0) {
                ch_buf_free(&approved);
                rc = r;
                goto cleanup;
            }
            /* Only what ran is undone; an irreversible step stays as it is. */
            s->selected = r == 1 && strcmp(st, "done") == 0 && s->has_rollback;
        }
        if (s->selected) {
            ch_buf_printf(&approved, "%s", nsel++ ? "," : "");
            ch_buf_add_json_str(&approved, s->id, strlen(s->id));
        }
    }
    ch_buf_adds(&approved, "]}");
    rc = audit(&c, o->rollback ? "response.plan.rollback_approved" : "response.plan.approved", NULL,
               approved.data);
    ch_buf_free(&approved);
    if (rc < 0 || (rc = ch_resp_store_status(c.rs, o->plan_id, "running", err)) < 0)
        goto cleanup;
    if (o->started != NULL)
        o->started(o->started_ud);
    int failed = 0;
    bool stopped = false;
    for (size_t k = 0; k < c.nsteps && failed == 0; k++) {
        const step_view *s = &c.steps[o->rollback ? c.nsteps - 1 - k : k];
        if (!s->selected)
            continue;
        if (o->cancel != NULL && atomic_load(o->cancel)) {
            progress(&c, s, s->action, "not started: the run was stopped (the server stops)");
            stopped = true;
            break;
        }
        ch_error lerr = {0};
        char lo[8];
        if (ch_resp_lock(c.rs, o->plan_id, holder, now_ms(), LEASE_MS, NULL, lo, sizeof lo, &lerr) <
            0) {
            *err = lerr;
            failed = lerr.code;
            break;
        }
        int r = one(&c, s, res);
        if (r < 0)
            failed = r;
    }
    /* The plan's status: done when every step ran, failed when one failed, rolled back. */
    const char *fin;
    if (failed < 0) {
        fin = "failed";
    } else if (stopped) {
        fin = "approved"; /* partly run: a rerun goes on from where it stopped */
    } else if (o->rollback) {
        fin = "rolled back";
    } else {
        size_t ndone = 0;
        for (size_t i = 0; i < c.nsteps; i++) {
            char st[16];
            int att;
            ndone += ch_resp_step_get(c.rs, o->plan_id, c.steps[i].id, "run", st, &att, err) == 1 &&
                     strcmp(st, "done") == 0;
        }
        fin = ndone == c.nsteps ? "done" : "approved";
    }
    snprintf(res->status, sizeof res->status, "%s", fin);
    ch_error saved = *err;
    int r2 = ch_resp_store_status(c.rs, o->plan_id, fin, err);
    if (r2 >= 0) {
        char after[256];
        snprintf(after, sizeof after,
                 "{\"status\":\"%s\",\"phase\":\"%s\",\"done\":%zu,\"already\":%zu,"
                 "\"skipped\":%zu,\"failed\":%zu}",
                 fin, c.phase, res->done, res->already, res->skipped, res->failed);
        r2 = audit(&c, "response.plan.finished", NULL, after);
    }
    if (failed < 0) {
        *err = saved;
        rc = failed;
    } else {
        rc = r2;
    }
cleanup:
    if (c.locked) {
        ch_error lerr = {0};
        char lo[8], me[300];
        holder_name(me, sizeof me);
        ch_resp_lock(c.rs, o->plan_id, me, now_ms(), 0, NULL, lo, sizeof lo, &lerr);
    }
    if (c.assumed != NULL) {
        for (size_t i = 0; i < c.nassumed; i++)
            ch_aws_creds_wipe(&c.assumed[i].creds);
        ch_free(c.assumed);
    }
    ch_aws_creds_wipe(&c.base);
    ch_json_parser_free(c.jp);
    ch_free(c.steps);
    ch_free(json);
    ch_buf_free(&arena);
    ch_buf_free(&c.body);
    ch_buf_free(&c.resp);
    ch_resp_store_close(c.rs);
    ch_audit_close(c.au);
    return rc;
}

void ch_resp_config_free(ch_resp_config *c)
{
    if (c == NULL)
        return;
    ch_free(c->endpoint);
    ch_free(c->assume_role);
    ch_free(c->kill_switch);
    for (size_t i = 0; i < c->nauto; i++) {
        ch_free(c->autos[i].rule);
        for (size_t k = 0; k < c->autos[i].nkinds; k++)
            ch_free(c->autos[i].kinds[k]);
    }
    memset(c, 0, sizeof *c);
}
