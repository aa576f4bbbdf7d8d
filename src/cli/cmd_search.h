/*
 * cmd_search.h - `coinhound search`, `coinhound store` and `coinhound hunt`: the event store
 * from the command line (store/evstore.h, store/search.h).
 */
#ifndef CH_CLI_CMD_SEARCH_H
#define CH_CLI_CMD_SEARCH_H

#include <stdbool.h>
#include <stdio.h>

#include "core/error.h"

int ch_cmd_search(int argc, char **argv);
int ch_cmd_store(int argc, char **argv);
int ch_cmd_hunt(int argc, char **argv);

typedef struct ch_store ch_store;
typedef struct ch_offense ch_offense;
/* `offenses show ID --events`: the offense's contributing events (by their ids) from the
 * event store beside db, as JSON Lines (json) or a table, to f. */
int ch_cli_offense_events(ch_store *db, const ch_offense *o, bool json, FILE *f, ch_error *err);

#endif
