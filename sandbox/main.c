/*
 * main.c - embfill-embedder: the sandbox embedding service.
 *
 * Startup order matters to callers that wait for the `listening on` line:
 * the backend is loaded first (use-lite takes seconds), then the socket is
 * bound, then the port file is written, and only then is the line printed,
 * so whoever reads it can connect at once.
 */
#include "config.h"
#include "server.h"
#include "uselite.h"

#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define PROG "embfill-embedder"

/*
 * SIGTERM and SIGINT are blocked before any thread exists, so every MHD
 * thread inherits the mask and the main thread alone takes them in
 * sigwait(): no handler runs inside a request.  SIGPIPE is ignored because
 * a client that hangs up, or a dead node child, must cost one request, not
 * the process.
 */
static void block_stop_signals(sigset_t *stop)
{
	sigemptyset(stop);
	sigaddset(stop, SIGTERM);
	sigaddset(stop, SIGINT);
	pthread_sigmask(SIG_BLOCK, stop, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Written to a temporary name and renamed, so a reader polling for the
 * file never sees it half written. */
static int write_port_file(const char *path, int port)
{
	char tmp[4096];
	FILE *f;
	int ok;

	snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
	f = fopen(tmp, "w");
	if (f == NULL)
		return -1;
	ok = fprintf(f, "%d\n", port) > 0;
	ok = (fclose(f) == 0) && ok;
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return 0;
}

static int announce(const struct sbx_config *cfg, int port)
{
	if (cfg->port_file != NULL && write_port_file(cfg->port_file, port) != 0) {
		fprintf(stderr, PROG ": cannot write --port-file \"%s\": %s\n",
			cfg->port_file, strerror(errno));
		return -1;
	}
	printf("listening on 127.0.0.1:%d\n", port);
	fflush(stdout);
	return 0;
}

/*
 * A test that fails an assertion ends its process without stopping the
 * server it started; the orphan would keep the test runner's pipes open and
 * hang it.  PR_SET_PDEATHSIG turns the parent's death into our SIGTERM,
 * which sigwait() takes like any other.  The parent may already be gone by
 * the time the flag is set, hence the check of getppid() after it.
 */
static bool orphaned(const struct sbx_config *cfg)
{
	if (cfg->parent_pid <= 0)
		return false;
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	return getppid() != (pid_t)cfg->parent_pid;
}

static int serve(const struct sbx_config *cfg)
{
	char err[2048];
	sbx_uselite *ul = NULL;
	sbx_server *srv;
	sigset_t stop;
	int sig, rc = 0;

	block_stop_signals(&stop);
	if (orphaned(cfg))
		return 0;
	if (cfg->backend == SBX_BACKEND_USE_LITE &&
	    (ul = sbx_uselite_start(cfg->node_modules, err, sizeof(err))) == NULL) {
		fprintf(stderr, PROG ": %s\n", err);
		return 2;
	}
	srv = sbx_server_start(cfg, ul, err, sizeof(err));
	if (srv == NULL) {
		fprintf(stderr, PROG ": %s\n", err);
		rc = 1;
	} else if (announce(cfg, sbx_server_port(srv)) != 0) {
		rc = 1;
	} else {
		while (sigwait(&stop, &sig) != 0)
			;
	}
	sbx_server_stop(srv);
	sbx_uselite_stop(ul);
	return rc;
}

int main(int argc, char **argv)
{
	struct sbx_config cfg;
	int rc = sbx_config_parse(&cfg, argc, argv);

	if (rc < 0)
		rc = serve(&cfg);
	sbx_config_free(&cfg);
	return rc;
}
