/*
 * cmd_search.h - `coinhound search`, `coinhound store` and `coinhound hunt`: the event store
 * from the command line (store/evstore.h, store/search.h).
 */
#ifndef CH_CLI_CMD_SEARCH_H
#define CH_CLI_CMD_SEARCH_H

int ch_cmd_search(int argc, char **argv);
int ch_cmd_store(int argc, char **argv);
int ch_cmd_hunt(int argc, char **argv);

#endif
