/*
 * cmd_intel_taxii.h - `coinhound intel pull` (TAXII 2.1 client) and `coinhound intel serve`
 * (TAXII 2.1 server), defined in cmd_intel_taxii.c. Its presence is what enables their lines in
 * the action table of cmd_intel.c (checked with __has_include).
 * Exit codes as in cli.h: 0 done, 1 the server, the network or the database failed, 2 usage.
 */
#ifndef CH_CLI_CMD_INTEL_TAXII_H
#define CH_CLI_CMD_INTEL_TAXII_H

#include "cli/cmd_intel.h"

/* argv[0] is "pull" / "serve". */
int ch_cmd_intel_pull(int argc, char **argv);
int ch_cmd_intel_serve(int argc, char **argv);

#endif
