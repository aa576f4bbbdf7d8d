/*
 * commands.c - the subcommand table, top-level help and --version. Adding a subcommand is a
 * file with its run function and one line in the table.
 */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cmd_offenses.h"
#include "cli/cmd_intel.h"
#include "cli/cmd_refset.h"
#include "cli/cmd_respond.h"
#include "cli/cmd_rules.h"
#include "cli/cmd_search.h"
#include "cli/cmd_user.h"
#include "cli/cmd_users.h"

static const ch_command commands[] = {
    {"analyze", "read logs, normalize and enrich them, report (and write events)", ch_cmd_analyze},
    {"rules", "validate (check), test a content pack; enable|disable a rule (--db)", ch_cmd_rules},
    {"offenses", "list, show, close and hide offenses; users by risk", ch_cmd_offenses},
    {"refset", "reference sets in the database: list, show, add, remove, import, export",
     ch_cmd_refset},
    {"intel", "threat intelligence: load STIX bundles and block lists, pull and serve TAXII",
     ch_cmd_intel},
    {"user", "console accounts: add, list, disable, enable, passwd, role, lockouts, unlock",
     ch_cmd_user},
    {"token", "API tokens: create (printed once), list, revoke", ch_cmd_token},
    {"audit", "the append-only audit log of changes, logins and failed logins", ch_cmd_audit},
    {"serve", "run as a server: HTTP, Firehose and spool ingest through a durable journal",
     ch_cmd_serve},
    {"respond", "response plans from offenses: propose, run when enabled, roll back; block lists",
     ch_cmd_respond},
    {"search", "search the stored events with an expression (indexes, aggregations)",
     ch_cmd_search},
    {"store", "the event store: stats, verify, retention, compact, hot", ch_cmd_store},
    {"hunt", "retro-hunt: match the stored events against the current intelligence", ch_cmd_hunt},
    {"users", "a user's risk, lineage, offenses and timeline (users show NAME --timeline)",
     ch_cmd_users},
    {NULL, NULL, NULL},
};

const ch_command *ch_commands(void) { return commands; }

static void usage(FILE *f)
{
    fprintf(f, "usage: coinhound [--help] [--version] COMMAND [ARGS...]\n\n"
               "coinhound spots and stops cryptojacking in cloud accounts: it reads CloudTrail,\n"
               "VPC Flow Logs and Route 53 Resolver query logs, normalizes and enriches them.\n\n"
               "Commands:\n");
    for (const ch_command *c = commands; c->name != NULL; c++)
        fprintf(f, "  %-10s %s\n", c->name, c->summary);
    fprintf(f,
            "\nRun 'coinhound COMMAND --help' for a command's options; 'man docs/coinhound.1' for "
            "all.\n"
            "Environment: COINHOUND_HOME (data directory, default %s).\n",
            ch_data_dir());
}

static void version(void)
{
    printf("coinhound %s\n"
           "GeoIP: the bundled country database is @ip-location-db/geo-whois-asn-country-mmdb,\n"
           "data licensed CC BY 4.0 by the Number Resource Organization (NRO) and the regional\n"
           "internet registries (RIRs); see README.md.\n",
           CH_VERSION);
}

int ch_cli_main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return CH_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return CH_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "-V") == 0) {
        version();
        return CH_EXIT_OK;
    }
    for (const ch_command *c = commands; c->name != NULL; c++)
        if (strcmp(c->name, cmd) == 0)
            return c->run(argc - 1, argv + 1);
    fprintf(stderr, "coinhound: unknown command '%s'\n", cmd);
    usage(stderr);
    return CH_EXIT_USAGE;
}
