/*
 * embedder_proc.c - spawn and stop the sandbox embedder from tests.
 *
 * The server announces its port on stdout once it accepts connections, so
 * the helper waits for that line instead of sleeping: startup of the
 * use-lite backend takes seconds on a weak machine, the hash backend none.
 */
#include "embedder_proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

extern char **environ;

#define START_TIMEOUT_MS 30000
#define STOP_TIMEOUT_MS 5000
#define MAX_ARGS 64

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* --parent-pid makes the server exit with this process, so a test that
 * fails an assertion before embedder_stop() leaves no server behind. */
static int build_argv(char **argv, const char *bin, const char *const *extra)
{
	char parent[32];
	int n = 0;

	snprintf(parent, sizeof(parent), "%ld", (long)getpid());
	argv[n++] = strdup(bin);
	argv[n++] = strdup("--port");
	argv[n++] = strdup("0");
	argv[n++] = strdup("--parent-pid");
	argv[n++] = strdup(parent);
	for (size_t i = 0; extra != NULL && extra[i] != NULL; i++) {
		if (n == MAX_ARGS - 1)
			return -1;
		argv[n++] = strdup(extra[i]);
	}
	argv[n] = NULL;
	return 0;
}

static void free_argv(char **argv)
{
	for (size_t i = 0; argv[i] != NULL; i++)
		free(argv[i]);
}

/* The server ignores SIGPIPE and blocks SIGTERM itself; it must not
 * inherit a test runner's odd signal state. */
static int spawn(pid_t *pid, char **argv, int out_fd)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, dfl;
	int rc;

	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT);
	sigaddset(&dfl, SIGPIPE);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &dfl);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	rc = posix_spawn(pid, argv[0], &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	return rc;
}

/* Reads one line of at most size-1 bytes; 0, or -1 on EOF or timeout. */
static int read_line(int fd, char *line, size_t size, long deadline)
{
	size_t len = 0;

	while (len + 1 < size) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		long left = deadline - now_ms();
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return -1;
		n = read(fd, line + len, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		if (line[len] == '\n')
			break;
		len++;
	}
	line[len] = '\0';
	return 0;
}

static void explain_failure(pid_t pid, const char *bin)
{
	int status;

	if (waitpid(pid, &status, WNOHANG) == pid)
		fprintf(stderr, "embedder_start: %s exited (%s %d) before listening\n", bin,
			WIFEXITED(status) ? "status" : "signal",
			WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
	else
		fprintf(stderr, "embedder_start: %s printed no `listening on` line within %d s\n",
			bin, START_TIMEOUT_MS / 1000);
}

static int await_listening(struct embedder_proc *p, int fd, const char *bin)
{
	char line[256];

	if (read_line(fd, line, sizeof(line), now_ms() + START_TIMEOUT_MS) != 0 ||
	    sscanf(line, "listening on 127.0.0.1:%d", &p->port) != 1 || p->port <= 0) {
		explain_failure(p->pid, bin);
		embedder_stop(p);
		return -1;
	}
	snprintf(p->url, sizeof(p->url), "http://127.0.0.1:%d", p->port);
	return 0;
}

int embedder_start(struct embedder_proc *p, const char *const *extra_args)
{
	const char *bin = getenv("EMBFILL_EMBEDDER");
	char *argv[MAX_ARGS] = {0};
	int fds[2], rc;

	memset(p, 0, sizeof(*p));
	if (bin == NULL || *bin == '\0') {
		fprintf(stderr, "embedder_start: EMBFILL_EMBEDDER is not set\n"
			"hint: run the tests through `make check`, or set it to build/embfill-embedder\n");
		return -1;
	}
	if (build_argv(argv, bin, extra_args) != 0 || pipe2(fds, O_CLOEXEC) != 0) {
		free_argv(argv);
		fprintf(stderr, "embedder_start: too many arguments or no pipe\n");
		return -1;
	}
	rc = spawn(&p->pid, argv, fds[1]);
	free_argv(argv);
	close(fds[1]);
	if (rc != 0) {
		close(fds[0]);
		p->pid = 0;
		fprintf(stderr, "embedder_start: cannot run \"%s\": %s\n", bin, strerror(rc));
		return -1;
	}
	rc = await_listening(p, fds[0], bin);
	close(fds[0]);
	return rc;
}

void embedder_stop(struct embedder_proc *p)
{
	long deadline = now_ms() + STOP_TIMEOUT_MS;
	int status;

	if (p->pid <= 0)
		return;
	kill(p->pid, SIGTERM);
	while (waitpid(p->pid, &status, WNOHANG) == 0) {
		if (now_ms() >= deadline) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, &status, 0);
			break;
		}
		nanosleep(&(struct timespec){.tv_nsec = 20000000L}, NULL);
	}
	p->pid = 0;
	p->port = 0;
	p->url[0] = '\0';
}

/* --- GET /stats --------------------------------------------------------------- */

struct body {
	char *data;
	size_t len;
};

static size_t take_body(char *data, size_t size, size_t n, void *ud)
{
	struct body *b = ud;
	size_t add = size * n;
	char *p = realloc(b->data, b->len + add + 1);

	if (!p)
		return 0;
	memcpy(p + b->len, data, add);
	b->data = p;
	b->len += add;
	b->data[b->len] = '\0';
	return add;
}

cJSON *embedder_stats(const struct embedder_proc *p)
{
	char url[128];
	struct body b = { NULL, 0 };
	CURL *c = curl_easy_init();
	cJSON *j = NULL;

	if (!c)
		return NULL;
	snprintf(url, sizeof(url), "%s/stats", p->url);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, take_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	if (curl_easy_perform(c) == CURLE_OK && b.data)
		j = cJSON_Parse(b.data);
	curl_easy_cleanup(c);
	free(b.data);
	return j;
}
