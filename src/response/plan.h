/*
 * plan.h - response plans: from an offense's evidence to the AWS calls that contain it.
 *
 * A plan is a list of steps, each one AWS API action with its parameters, the equivalent `aws`
 * command line, whether it can be undone and the call that undoes it, and why the evidence
 * calls for it. Steps are made only for what the offense names (offense/observables.h), and only
 * for values a rule of CH_OBS_ATTRIBUTED_SEVERITY or more saw (an offense indexed by a user also
 * holds that user's own low-severity context, e.g. a login from home, which is not the
 * attacker's):
 *   - principal: the access keys seen (UpdateAccessKey to Inactive, never every key of the
 *     user), the console password (DeleteLoginProfile), active sessions (an inline deny policy
 *     conditioned on aws:TokenIssueTime, as IAM's "revoke active sessions" does);
 *   - instances: those the offense's events name and those entity linking (the store's
 *     entity_links) ties to the attacker's keys after the attacker first used them: snapshot
 *     (CreateSnapshots), isolate (quarantine security group), stop (or terminate);
 *   - pools: Route 53 Resolver DNS Firewall (domain list, rule group, rule, association) for the
 *     domains, network ACL deny entries for the addresses, per account and region the
 *     attacker's instances ran in.
 * Values a step needs that only the account can tell (the VPCs of the instances, the network
 * ACLs of their subnets, a free rule number in each, ids that earlier steps create) are written
 * as "${...}" placeholders that the runner resolves; the `cli` strings show them the same way. A
 * step naming ${vpc-of-instances} or ${network-acl-of-instances} is made by the runner once per
 * VPC or ACL of the attacker's instances in its region (run.h).
 *
 * Builders are registered in a table (plan.c), one per kind, so adding an action is a builder
 * and a row.
 *
 * Ownership: ch_resp_plan_build allocates the plan; ch_resp_plan_free releases it and every
 * string in it.
 */
#ifndef CH_RESPONSE_PLAN_H
#define CH_RESPONSE_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/error.h"
#include "offense/offense.h"

#define CH_RESP_MAX_STEPS 4096
#define CH_RESP_MAX_LINKED 512 /* instances taken from entity links, at most */

typedef struct ch_resp_step {
    char *id;      /* "1", "2", ... in plan order */
    char *kind;    /* "principal", "instance", "dns", "network" */
    char *service; /* "iam", "ec2", "route53resolver" */
    char *action;  /* the AWS API action: "UpdateAccessKey" */
    char *region, *account;
    char *parameters; /* a JSON object */
    char *cli;        /* "aws iam update-access-key ..." */
    bool reversible;
    char *rollback; /* a JSON object {"action","parameters","cli"}, or NULL */
    char *why;
} ch_resp_step;

typedef struct ch_resp_plan {
    int64_t id; /* 0 until stored */
    int64_t offense_id;
    ch_resp_step *steps;
    size_t nsteps, cap;
} ch_resp_plan;

/* An instance entity linking ties to a principal (from the store's entity_links). */
typedef struct ch_resp_linked {
    const char *instance, *account, *region, *access_key;
    int64_t launch_ms;
} ch_resp_linked;

typedef struct ch_resp_opts {
    bool terminate;               /* terminate instead of stop (irreversible) */
    const char *quarantine;       /* security group name; NULL = "coinhound-quarantine" */
    int64_t now_ms;               /* the plan's time: sessions issued before it are revoked */
    const ch_resp_linked *linked; /* entity links of the offense's keys, may be NULL */
    size_t nlinked;
} ch_resp_opts;

/* Build the plan for offense o (loaded with its observables). CH_ENOMEM, CH_ELIMIT. */
int ch_resp_plan_build(const ch_offense *o, const ch_resp_opts *opt, ch_resp_plan **out,
                       ch_error *err);
void ch_resp_plan_free(ch_resp_plan *p);

/* {"offense":ID,"steps":[...]} */
int ch_resp_plan_json(ch_buf *b, const ch_resp_plan *p);
/* For people: one block per step. */
int ch_resp_plan_text(ch_buf *b, const ch_resp_plan *p);

/* Append `s` to b as one shell word, quoted so that no value from the logs can end it. */
int ch_resp_shell_word(ch_buf *b, const char *s);

#endif
