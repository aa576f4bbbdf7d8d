/*
 * cmd_respond.h - `coinhound respond plan|show|export`: containment plans and block lists from
 * stored offenses (src/response/). Exit codes as in cli.h: 0 done, 1 the database, the offense
 * or the plan could not be read or written, 2 usage.
 */
#ifndef CH_CLI_CMD_RESPOND_H
#define CH_CLI_CMD_RESPOND_H

/* argv[0] is "respond"; argv[1] the action. Writes to stdout (or --output) and stderr. */
int ch_cmd_respond(int argc, char **argv);

#endif
