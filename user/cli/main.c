/*
 * main.c - bpfwrap's command line: finds the subcommand and hands over argv.
 * Every command is implemented in the module of its stage (see cli.h).
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define BPFWRAP_VERSION "0.1"

struct command {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static const struct command commands[] = {
	/* COMMANDS: one line each, in the order `bpfwrap help` lists them */
	{ "check", cmd_check, "diagnose hosts.allow/hosts.deny like tcpdchk" },
	{ "match", cmd_match, "decide queries like tcpdmatch" },
	{ "run", cmd_run, "enforce in the kernel for cgroups; stay in the foreground" },
	{ "detach", cmd_detach, "remove every program, map, link and pin bpfwrap made" },
	{ "status", cmd_status, "what is attached and loaded, with per-rule counters" },
	{ "bans", cmd_bans, "list the clients banned by trap rules (extensions)" },
	{ "unban", cmd_unban, "remove the bans of an address or prefix" },
};

/* usage - list the commands */
static void usage(FILE *out)
{
	fprintf(out, "usage: bpfwrap COMMAND [OPTIONS] [ARGS]\n\n"
		     "TCP Wrappers (hosts.allow/hosts.deny) enforced in the kernel with cgroup BPF.\n\n"
		     "commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(out, "  %-8s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\n`bpfwrap COMMAND --help` describes a command; man bpfwrap(8) all of them.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("bpfwrap %s\n", BPFWRAP_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "bpfwrap: unknown command '%s' (see `bpfwrap help`)\n", argv[1]);
	return 2;
}
