/*
 * respond_config.h - the `respond:` section of the serve configuration (docs/RESPONSE.md,
 * docs/SERVE.md): whether plans may be executed at all, where the AWS calls go, the role to
 * assume in member accounts, and automatic response (which rules, which step kinds, how often,
 * and the kill switch). server/config.c reads it; the runner (run.h) and serve read it.
 *
 * Everything defaults to off: no execution, no automatic plans.
 *
 * Ownership: strings are owned by the config (ch_resp_config_free).
 */
#ifndef CH_RESPONSE_RESPOND_CONFIG_H
#define CH_RESPONSE_RESPOND_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CH_RESP_MAX_AUTO 16
#define CH_RESP_MAX_KINDS 8

/* One automatic response: offenses a rule raised at or above a magnitude get a plan; with
 * execute, the step kinds named (run.h, ch_resp_step_kinds) are run. */
typedef struct ch_resp_auto {
    char *rule;        /* rule id, "CJ-CHAIN-01" */
    int min_magnitude; /* 1..10 */
    char *kinds[CH_RESP_MAX_KINDS];
    size_t nkinds; /* 0 = propose only */
} ch_resp_auto;

typedef struct ch_resp_config {
    bool execute;      /* respond.execute: plans may be run (off by default) */
    char *endpoint;    /* respond.endpoint: every AWS call goes there (tests, VPC endpoints) */
    char *assume_role; /* respond.assume_role: role NAME assumed in member accounts */
    ch_resp_auto autos[CH_RESP_MAX_AUTO];
    size_t nauto;
    int auto_rate;         /* respond.auto_rate "N/PERIOD": at most N automatic runs ... */
    int64_t auto_rate_ms;  /* ... per PERIOD (default 5 per hour) */
    char *kill_switch;     /* respond.kill_switch: while this file exists, no automatic run */
    bool auto_disabled;    /* respond.auto_enabled: false stops every automatic run too */
    int64_t auto_every_ms; /* respond.auto_every: how often serve looks (default 5 s) */
    int64_t dns_wait_ms;   /* respond.dns_wait: DNS Firewall (dis)association wait (0: 5 min) */
} ch_resp_config;

void ch_resp_config_free(ch_resp_config *c);

#endif
