/*
 * cmd_intel.h - `coinhound intel`: threat intelligence into the database.
 *
 *   coinhound intel load FILE... [--db FILE] [--set NAME] [--type T] [--feed NAME]
 *                                [--domain-set N] [--ip-set N] [--url-set N] [--ttl DUR]
 *   coinhound intel pull ...      (TAXII 2.1 client: ch_cmd_intel_pull)
 *   coinhound intel serve ...     (TAXII 2.1 server: ch_cmd_intel_serve)
 *
 * `load` tells STIX bundles from block lists by content (ch_stix_looks_like_bundle).
 * The actions are a table in cmd_intel.c. `pull` and `serve` live in the TAXII helper's files;
 * their table lines are enabled when src/cli/cmd_intel_taxii.h exists (checked with
 * __has_include), so that header must only be created once both functions below are defined.
 * Exit codes as in cli.h: 0 done, 1 an input or the database failed, 2 usage.
 */
#ifndef CH_CLI_CMD_INTEL_H
#define CH_CLI_CMD_INTEL_H

/* argv[0] is "intel"; argv[1] the action. */
int ch_cmd_intel(int argc, char **argv);

/* The actions; argv[0] is the action's name ("load", "pull", "serve"). */
int ch_cmd_intel_load(int argc, char **argv);
int ch_cmd_intel_pull(int argc, char **argv);  /* defined by the TAXII client */
int ch_cmd_intel_serve(int argc, char **argv); /* defined by the TAXII server */

#endif
