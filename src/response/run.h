/*
 * run.h - executing a stored response plan against the AWS APIs, and undoing what ran.
 *
 * The runner takes a plan from response_plans (resp_store.h) and makes each selected step's
 * call in plan order through ch_aws_call (aws_call.h): the step's parameters encoded for its
 * protocol (Query form for IAM and EC2, JSON 1.1 for Route 53 Resolver), its "${...}"
 * placeholders resolved from what the account says (DescribeInstances, DescribeNetworkAcls) and
 * from what earlier steps made (the quarantine group, the DNS Firewall ids), credentials from
 * the standard chain and, for a step in another account than the caller's, an STS AssumeRole of
 * respond.assume_role there. A step made per VPC (quarantine group, DNS Firewall association) is
 * one call for each VPC an attacker's instance is in, a deny entry one call for each network ACL
 * of their subnets, each with its own state row; DNS Firewall (dis)associations are waited for.
 *
 * It refuses unless respond.execute is true and the caller says the run is approved (the CLI
 * and the API check that the approver is an admin before calling). Every state change goes to
 * the audit log with the actor and the time: approved, each step run or failed, rolled back,
 * refused. Each step's state is committed before its call is sent and after its answer
 * (resp_store.h), so a run killed anywhere and started again sends no done step again and loses
 * none; a step that was in flight when the run died is sent again, which is safe because every
 * step is idempotent at AWS or its "already so" error counts as done.
 *
 * A step that fails stops the run: later steps build on earlier ones (the group before the
 * instances move into it), and a containment half done is better told than guessed at.
 *
 * Ownership: options borrow everything; nothing is kept after ch_resp_run returns.
 */
#ifndef CH_RESPONSE_RUN_H
#define CH_RESPONSE_RUN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/error.h"
#include "response/plan.h"
#include "response/respond_config.h"

/* ch_resp_run's refusal: execution is not configured, or the run is not approved. */
#define CH_RESP_REFUSED (-100)
/* ch_resp_run's answer while another run of the plan holds its lock. */
#define CH_RESP_BUSY (-101)

typedef struct ch_resp_run_opts {
    const char *db;
    int64_t plan_id;
    const ch_resp_config *cfg;
    const char *actor, *source; /* who approved, for the audit log: "alice", "cli" */
    bool approved;
    bool rollback;            /* undo the steps that ran, in reverse order */
    const char *const *steps; /* step ids to run; NULL = every step */
    size_t nsteps;
    const char *const *kinds; /* or step kinds (ch_resp_step_kinds); NULL = every step */
    size_t nkinds;
    int base_delay_ms; /* throttling backoff base; 0 = ch_aws_call's default */
    FILE *progress;    /* a line per step, or NULL */
    /* Called once the run is approved, audited and holds the plan's lock, before its first call
     * (an asynchronous caller answers then); NULL for none. Not called when refused. */
    void (*started)(void *ud);
    void *started_ud;
    /* When set (by another thread), the run stops before its next call; the plan is left
     * "approved" with the steps done so far, and a rerun goes on from there. NULL: never. */
    const atomic_bool *cancel;
} ch_resp_run_opts;

typedef struct ch_resp_run_result {
    size_t done;    /* steps whose call succeeded in this run */
    size_t already; /* ... of which AWS said "already so" */
    size_t skipped; /* done in an earlier run */
    size_t failed;
    char status[32]; /* the plan's status afterwards */
} ch_resp_run_result;

/* Run (or roll back) the plan. 0 when every selected step is done; CH_RESP_REFUSED (audited as
 * refused) when not configured or not approved; CH_EIO when a step failed (audited, recorded
 * failed, err names the AWS error and for a refusal the permission); CH_ENOTFOUND for an
 * unknown plan or step id; CH_RESP_BUSY while another run of the plan is under way. */
int ch_resp_run(const ch_resp_run_opts *o, ch_resp_run_result *res, ch_error *err);

/* Propose: build the plan for a stored offense, store it (response_plans) and audit it as
 * proposed by actor from source (propose.c). *out is the plan with its id (ch_resp_plan_free). */
typedef struct ch_resp_propose_opts {
    bool terminate;
    const char *quarantine; /* NULL = the default group name */
    const char *actor, *source;
    int64_t now_ms;
    bool automatic; /* made by automatic response (said in the audit entry) */
} ch_resp_propose_opts;
int ch_resp_propose(const char *db, int64_t offense_id, const ch_resp_propose_opts *po,
                    ch_resp_plan **out, ch_error *err);

/* Audit a refusal decided by the caller (not an admin, no approval). */
int ch_resp_audit_refusal(const char *db, int64_t plan_id, const char *actor, const char *source,
                          const char *reason, ch_error *err);

/* The step kinds automatic response and `--kinds` name ("deactivate_keys", "stop_instances",
 * ...), NULL-terminated; true when name is one. */
const char *const *ch_resp_step_kinds(void);
bool ch_resp_step_kind_ok(const char *name);

/* Read what DescribeInstances says of each instance: calls fn with the instance id, its VPC,
 * subnet and security groups (comma-separated). At most 1000 instances; false when the text is
 * not a DescribeInstances answer. For the runner and the fuzz target. */
typedef int (*ch_resp_instance_fn)(void *ud, const char *id, const char *vpc, const char *subnet,
                                   const char *groups);
int ch_resp_parse_instances(const char *xml, size_t n, ch_resp_instance_fn fn, void *ud);

/* The text at a path of object keys in a JSON answer ("FirewallDomainList", "Id"). 1 found,
 * 0 not, < 0 for text that is not JSON. */
int ch_resp_json_path(const char *json, size_t n, const char *k1, const char *k2, char *out,
                      size_t cap);

/* One entry of a network ACL as DescribeNetworkAcls lists it. */
#define CH_RESP_NACL_MAX_ENTRIES 256
typedef struct ch_resp_nacl_entry {
    int number; /* 1..32767 (32767 is the default "*" entry) */
    bool egress, deny;
    char cidr[64]; /* IPv4 or IPv6 CIDR; "" when neither */
} ch_resp_nacl_entry;

/* Read a DescribeNetworkAcls answer: fn gets each ACL's id, VPC, associated subnets
 * (comma-separated) and entries (borrowed for the call). The number of ACLs, CH_EPARSE for text
 * that is not such an answer or holds a value of the wrong shape, CH_ELIMIT past the caps
 * (nacl.c). For the runner and the fuzz target. */
typedef int (*ch_resp_nacl_fn)(void *ud, const char *acl, const char *vpc, const char *subnets,
                               const ch_resp_nacl_entry *e, size_t n);
int ch_resp_parse_nacls(const char *xml, size_t n, ch_resp_nacl_fn fn, void *ud);

/* A free egress rule number for the deny entry of cidr in an ACL with entries e, not in taken
 * (numbers chosen already): the lowest from 50 below the first egress allow entry that matches
 * cidr, else the highest below 50; CH_ELIMIT when every number before that allow is used. */
int ch_resp_nacl_pick(const ch_resp_nacl_entry *e, size_t n, const char *cidr, const int *taken,
                      size_t ntaken);

#endif
