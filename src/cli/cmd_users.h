/*
 * cmd_users.h - `coinhound users show NAME [--timeline] [--format table|json] [--db FILE]`: one
 * user's risk against the population, lineage, offenses and timeline (src/uba/timeline.h).
 * Not to be confused with `coinhound user`, the console's accounts.
 * Exit codes as in cli.h: 0 done, 1 no database or nothing known of the user, 2 usage.
 */
#ifndef CH_CLI_CMD_USERS_H
#define CH_CLI_CMD_USERS_H

/* argv[0] is "users"; argv[1] the action. Writes to stdout and stderr. */
int ch_cmd_users(int argc, char **argv);

#endif
