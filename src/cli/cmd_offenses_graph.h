/*
 * cmd_offenses_graph.h - `coinhound offenses graph ID [--db FILE] [--format json|dot]
 * [--expand GROUP] [--group-min N] [--hub-max N]`: an offense's investigation graph
 * (src/investigate/graph.h) as cytoscape.js JSON or Graphviz DOT.
 * Exit codes as in cli.h: 0 done, 1 no database or no such offense, 2 usage.
 */
#ifndef CH_CLI_CMD_OFFENSES_GRAPH_H
#define CH_CLI_CMD_OFFENSES_GRAPH_H

/* argv[0] is "graph". Writes to stdout and stderr. */
int ch_cmd_offenses_graph(int argc, char **argv);

#endif
