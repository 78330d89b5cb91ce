/* The table of zila subcommands, in the order `zila help` lists them. */
#include <stddef.h>

#include "cli.h"

#define CMD(name) int cmd_##name(struct cli *cli, int argc, char **argv);
CMD(init)
CMD(import)
CMD(export)
#undef CMD

const struct cli_command cli_commands[] = {
	{ "init", cmd_init, "create a replica with the default schema and a device key", "zila [-d DIR] init" },
	{ "import", cmd_import, "create or update rows of a table from a CSV file", "zila [-d DIR] import FILE.csv --table TABLE [--map HEADER=COLUMN]... [--dry-run] [--skip-bad REJECTS.csv] [--delimiter C] [-q]" },
	{ "export", cmd_export, "write a table as CSV (for Excel) or JSON", "zila [-d DIR] export --table TABLE [--district ID] [--format csv|json] [-o FILE] [--no-bom]" },
	{ NULL, NULL, NULL, NULL },
};
