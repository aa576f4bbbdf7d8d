/*
 * cmd_refset.h - `coinhound refset`: the reference sets stored in the database
 * (src/intel/intel_store.h).
 *
 *   coinhound refset list                       name, type, count, shareable
 *   coinhound refset show NAME [--limit N]      elements with source, indicator and times
 *   coinhound refset add NAME VALUE [--ttl 24h] [--type T] [--source S]
 *   coinhound refset remove NAME VALUE
 *   coinhound refset import NAME FILE [--type T] [--ttl 24h]
 *   coinhound refset export NAME [--format text|json|stix]
 *   coinhound refset share|unshare NAME         mark for (or hide from) the TAXII server
 *   coinhound refset drop NAME
 * Every action takes --db FILE. Exit codes as in cli.h: 0 done, 1 failure, 2 usage.
 */
#ifndef CH_CLI_CMD_REFSET_H
#define CH_CLI_CMD_REFSET_H

/* argv[0] is "refset"; argv[1] the action. */
int ch_cmd_refset(int argc, char **argv);

#endif
