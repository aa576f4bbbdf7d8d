/*
 * cmd_intel_taxii.h - `coinhound intel pull` (TAXII 2.1 client) and `coinhound intel serve`
 * (TAXII 2.1 server), defined in cmd_intel_taxii.c. Its presence is what enables their lines in
 * the action table of cmd_intel.c (checked with __has_include).
 * Exit codes as in cli.h: 0 done, 1 the server, the network or the database failed, 2 usage.
 */
#ifndef CH_CLI_CMD_INTEL_TAXII_H
#define CH_CLI_CMD_INTEL_TAXII_H

#include <stddef.h>

#include "cli/cmd_intel.h"

/* argv[0] is "pull" / "serve". */
int ch_cmd_intel_pull(int argc, char **argv);
/* The same, telling the caller (serve's scheduler, cli/cmd_serve.c) what the pull did: out may
 * be NULL; it is filled on success and on failure (error then holds the reason). */
typedef struct ch_intel_pull_summary {
    unsigned long long objects, indicators, loaded, revoked, bad, added, removed;
    size_t pages;
    char error[512];
    /* Set by the caller, or NULL: every line the pull would print (level "info" for its
     * summary and retro-hunt lines, "warn", "error") goes here instead of stdout/stderr, so a
     * server logging JSON keeps one JSON object per line. */
    void (*say)(void *ud, const char *level, const char *msg);
    void *say_ud;
} ch_intel_pull_summary;
int ch_cmd_intel_pull_ex(int argc, char **argv, ch_intel_pull_summary *out);
int ch_cmd_intel_serve(int argc, char **argv);

#endif
