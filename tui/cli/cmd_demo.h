/*
 * cmd_demo.h - `embfill demo`: the sandbox, run by sandbox/demo.sh.
 */
#ifndef EMBFILL_TUI_CMD_DEMO_H
#define EMBFILL_TUI_CMD_DEMO_H

/*
 * Called from main() before the options are parsed, with argv[0] ==
 * "demo": the sandbox script owns its own flags (--scenario, --keep,
 * --stop, --help).  Execs the script; returns an exit code only when it
 * cannot.  The script calls back `embfill demo --copy-corpus ...` (not in
 * --help) to chunk its corpus with the chunker of core.
 */
int cmd_demo(int argc, char **argv);

#endif
