/*
 * cmd_offenses.h - `coinhound offenses list|show|close|hide|users`: the analyst's view of the
 * offenses and user risk that `coinhound analyze` stored (src/offense/store.h).
 * Exit codes as in cli.h: 0 done, 1 the database or the offense could not be read, 2 usage.
 */
#ifndef CH_CLI_CMD_OFFENSES_H
#define CH_CLI_CMD_OFFENSES_H

/* argv[0] is "offenses"; argv[1] the action. Writes to stdout and stderr. */
int ch_cmd_offenses(int argc, char **argv);

#endif
