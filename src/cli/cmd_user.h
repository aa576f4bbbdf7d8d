/*
 * cmd_user.h - `coinhound user`, `coinhound token` and `coinhound audit`: console accounts,
 * API tokens and the audit log of the database (src/server/accounts.h, src/server/audit.h).
 *
 *   coinhound user add NAME --role admin|analyst|viewer     prints a one-time password
 *   coinhound user list | lockouts                          [--format table|json]
 *   coinhound user disable|enable NAME
 *   coinhound user passwd NAME [--password-stdin [--must-change]]
 *   coinhound user role NAME --role admin|analyst|viewer
 *   coinhound user unlock NAME|ADDRESS
 *   coinhound token create NAME --role admin|analyst|viewer|ingest   prints the token, alone
 *   coinhound token list [--all] [--format table|json]
 *   coinhound token revoke NAME|chk_PREFIX
 *   coinhound audit [--since 24h|ISO-TIME] [--limit N] [--format table|json]
 * Every action takes --db FILE. Changes are audited with the local OS user as actor and "cli"
 * as source. Exit codes as in cli.h: 0 done, 1 failure (no database, no such account), 2 usage.
 */
#ifndef CH_CLI_CMD_USER_H
#define CH_CLI_CMD_USER_H

/* argv[0] is the command ("user", "token", "audit"); argv[1] the action (not for audit). */
int ch_cmd_user(int argc, char **argv);
int ch_cmd_token(int argc, char **argv);
int ch_cmd_audit(int argc, char **argv);

#endif
