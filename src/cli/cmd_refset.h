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

#include <stdint.h>
#include <stdio.h>

#include "core/error.h"
#include "enrich/refset.h"

typedef struct ch_intel_store ch_intel_store;

/* argv[0] is "refset"; argv[1] the action. */
int ch_cmd_refset(int argc, char **argv);

/* Shared with `intel load`. */

/* "90s", "30m", "24h", "7d", "2w" (or bare seconds) into ms; false for anything else. */
bool ch_cli_parse_duration(const char *s, int64_t *ms);
/* The start of a `coinhound CMD ACTION [options]` command (refset, offenses): usage to stderr
 * and CH_EXIT_USAGE without an action, usage to stdout and CH_EXIT_OK for help / -h / --help;
 * else *action = argv[1], getopt reset to parse argv + 1 (optind = 0 fully resets GNU getopt,
 * so that a command can run more than once in a process, as tests do; opterr = 0, the caller
 * reports), and -1: go on. */
int ch_cli_action_start(int argc, char **argv, void (*usage)(FILE *), const char **action);
/* Report getopt's ':' (missing value) or '?' (unknown option) for the option av[optind - 1] as
 * "CMD: option 'X' needs a value" / "CMD: unknown option 'X'"; returns CH_EXIT_USAGE. */
int ch_cli_bad_option(const char *cmd, int c, char **av);
/* A decimal count 0..max, the whole string; false for anything else. */
bool ch_cli_parse_count(const char *s, unsigned long max, unsigned long *out);
/* Current wall-clock time in ms. */
int64_t ch_cli_now_ms(void);
/* A set name from a file name: the base name without its extensions, characters a set name
 * cannot hold replaced by '_'. */
void ch_cli_set_name_from_path(const char *path, char *out, size_t cap);
/* Load a block list file (domains, hosts, Adblock, IP/CIDR; gzip allowed) into the stored set
 * `set` (made with type, or with the type detected from the content when type is 0), each
 * element from `source` and expiring at now + ttl_ms (ttl_ms 0 = never), in one transaction.
 * A summary line goes to out. Returns elements written, or a negative code. */
int ch_cli_import_list(ch_intel_store *st, const char *path, const char *set, ch_refset_type type,
                       const char *source, int64_t ttl_ms, FILE *out, ch_error *err);

#endif
