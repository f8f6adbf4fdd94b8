/*
 * embedder_proc.h - run the sandbox embedder (embfill-embedder) for a test.
 *
 * The binary is taken from $EMBFILL_EMBEDDER (the Makefile's test targets
 * set it).  Each test starts its own server on a free loopback port, so
 * tests can run in parallel.
 */
#ifndef EMBFILL_TESTS_EMBEDDER_PROC_H
#define EMBFILL_TESTS_EMBEDDER_PROC_H

#include <sys/types.h>

#include <cjson/cJSON.h>

struct embedder_proc {
	pid_t pid;
	int port;
	char url[64];   /* "http://127.0.0.1:PORT", no trailing slash */
};

/*
 * Starts `$EMBFILL_EMBEDDER --port 0 --parent-pid <this pid> extra_args...`
 * (extra_args is NULL-terminated, or NULL for none) and waits up to 30 s for
 * its `listening on 127.0.0.1:PORT` line.  The server exits by itself when
 * the thread that started it ends, so call this from the test's thread.  Returns 0 with p filled, or -1 after
 * saying why on stderr (variable unset, program missing, it exited, or it
 * stayed silent); no process is left behind then.
 */
int embedder_start(struct embedder_proc *p, const char *const *extra_args);

/* Its GET /stats, parsed (the caller deletes it), or NULL when it could
 * not be fetched or parsed. */
cJSON *embedder_stats(const struct embedder_proc *p);

/* SIGTERM, up to 5 s for it to exit, then SIGKILL.  Safe to call twice. */
void embedder_stop(struct embedder_proc *p);

#endif
