/*
 * cmd_rules.h - `coinhound rules check DIR` and `coinhound rules test DIR`.
 *
 *   check   load and validate every rule and reference set of a content pack, and check that
 *           every test case's events file exists; one message per problem; exit 0 when the
 *           pack is valid, 1 when not, 2 on usage errors.
 *   test    run every rule's test cases: each case feeds its events (raw log records, type
 *           detected as `analyze` does, GeoIP-enriched when a database is available) through a
 *           fresh engine holding all rules of the pack (so sequences over other rules work),
 *           and asserts that the rule under test fired or stayed silent. One line per case,
 *           a summary, exit 1 on any failure.
 */
#ifndef CH_CLI_CMD_RULES_H
#define CH_CLI_CMD_RULES_H

int ch_cmd_rules(int argc, char **argv);

#endif
