/* The table of zila subcommands, in the order `zila help` lists them. */
#include <stddef.h>

#include "cli.h"

#define CMD(name) int cmd_##name(struct cli *cli, int argc, char **argv);
CMD(init)
#undef CMD

const struct cli_command cli_commands[] = {
	{ "init", cmd_init, "create a replica with the default schema and a device key", "zila [-d DIR] init" },
	{ NULL, NULL, NULL, NULL },
};
