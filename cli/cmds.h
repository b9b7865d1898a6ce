/* SPDX-License-Identifier: MIT */
/* cmds.h - the flowpic subcommands; each returns the process exit status. */
#ifndef FLOWPIC_CLI_CMDS_H
#define FLOWPIC_CLI_CMDS_H

int cmd_flows(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_render(int argc, char **argv);
int cmd_classify(int argc, char **argv);

#endif
