/*
 * cli.h - the coinhound command: a table of subcommands (commands.c), each in its own file.
 * Exit codes are a contract: 0 the run completed (bad records are reported, not fatal),
 * 1 an input could not be read at all (or another runtime failure), 2 usage errors.
 */
#ifndef CH_CLI_CLI_H
#define CH_CLI_CLI_H

#include <stdio.h>

#include "core/paths.h"

enum { CH_EXIT_OK = 0, CH_EXIT_FAIL = 1, CH_EXIT_USAGE = 2 };

typedef struct ch_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name */
} ch_command;

const ch_command *ch_commands(void);
int ch_cli_main(int argc, char **argv);

int ch_cmd_analyze(int argc, char **argv);
int ch_cmd_serve(int argc, char **argv);

#endif
