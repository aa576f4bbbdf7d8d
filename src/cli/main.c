/* main.c - the coinhound executable; everything else lives in the library for testability. */
#include "cli/cli.h"

int main(int argc, char **argv) { return ch_cli_main(argc, argv); }
