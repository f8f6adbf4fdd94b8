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

#include "proc.h"

extern char **environ;

static char **build_env(const char *const *env)
{
	size_t n = 0, k = 0, extra = 0;
	char **out;

	while (environ[n])
		n++;
	while (env && env[extra])
		extra++;
	out = calloc(n + extra + 1, sizeof(*out));
	for (size_t i = 0; out && i < n; i++) {
		size_t kl = strcspn(environ[i], "=");
		int drop = 0;
		for (size_t j = 0; j < extra; j++)
			if (strncmp(env[j], environ[i], kl) == 0 &&
			    (env[j][kl] == '=' || env[j][kl] == '\0'))
				drop = 1;
		if (!drop)
			out[k++] = environ[i];
	}
	for (size_t j = 0; out && j < extra; j++)
		if (strchr(env[j], '='))
			out[k++] = (char *)env[j];
	return out;
}

static void append(char **buf, size_t *len, const char *data, size_t n)
{
	char *nb = realloc(*buf, *len + n + 1);
	if (!nb)
		return;
	memcpy(nb + *len, data, n);
	*len += n;
	nb[*len] = '\0';
	*buf = nb;
}

static void drain(int outfd, int errfd, pid_t pid, struct proc_result *r)
{
	struct pollfd fds[2] = { { outfd, POLLIN, 0 }, { errfd, POLLIN, 0 } };
	size_t ol = 0, el = 0;
	time_t deadline = time(NULL) + 120;
	char buf[8192];

	r->out = strdup("");
	r->err = strdup("");
	while (fds[0].fd >= 0 || fds[1].fd >= 0) {
		if (time(NULL) > deadline) {
			kill(pid, SIGKILL);
			break;
		}
		if (poll(fds, 2, 1000) <= 0)
			continue;
		for (int i = 0; i < 2; i++) {
			ssize_t n;
			if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP)))
				continue;
			n = read(fds[i].fd, buf, sizeof(buf));
			if (n > 0)
				append(i == 0 ? &r->out : &r->err, i == 0 ? &ol : &el, buf, (size_t)n);
			else {
				close(fds[i].fd);
				fds[i].fd = -1;
			}
		}
	}
}

int proc_run(const char *const *argv, const char *const *env, const char *cwd,
	     struct proc_result *r)
{
	posix_spawn_file_actions_t fa;
	int op[2], ep[2], st = 0;
	char **envp = build_env(env);
	pid_t pid;

	memset(r, 0, sizeof(*r));
	r->status = -1;
	if (!envp || pipe(op) || pipe(ep))
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, op[1], 1);
	posix_spawn_file_actions_adddup2(&fa, ep[1], 2);
	posix_spawn_file_actions_addclose(&fa, op[0]);
	posix_spawn_file_actions_addclose(&fa, ep[0]);
	if (cwd)
		posix_spawn_file_actions_addchdir_np(&fa, cwd);
	if (posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *)argv, envp) != 0) {
		posix_spawn_file_actions_destroy(&fa);
		free(envp);
		return -1;
	}
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	close(op[1]);
	close(ep[1]);
	drain(op[0], ep[0], pid, r);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
	return r->status;
}

int run_embfill(const char *const *args, const char *const *env, const char *cwd,
		struct proc_result *r)
{
	const char *argv[64];
	const char *bin = getenv("EMBFILL_BIN");
	size_t n = 0;

	if (!bin) {
		fprintf(stderr, "EMBFILL_BIN is not set: run the suite through `make check`\n");
		memset(r, 0, sizeof(*r));
		r->status = -1;
		return -1;
	}
	argv[n++] = bin;
	while (args && *args && n < 63)
		argv[n++] = *args++;
	argv[n] = NULL;
	return proc_run(argv, env, cwd, r);
}

void proc_result_free(struct proc_result *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

int spawn_embfill(const char *const *args, const char *const *env, const char *cwd,
		  const char *out_path)
{
	posix_spawn_file_actions_t fa;
	const char *argv[64];
	const char *bin = getenv("EMBFILL_BIN");
	char **envp = build_env(env);
	size_t n = 0;
	pid_t pid;
	int rc;

	if (!bin || !envp) {
		free(envp);
		return -1;
	}
	argv[n++] = bin;
	while (args && *args && n < 63)
		argv[n++] = *args++;
	argv[n] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	posix_spawn_file_actions_adddup2(&fa, 1, 2);
	if (cwd)
		posix_spawn_file_actions_addchdir_np(&fa, cwd);
	rc = posix_spawn(&pid, bin, &fa, NULL, (char *const *)argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	return rc == 0 ? (int)pid : -1;
}

int wait_exit(int pid, int timeout_s)
{
	int st = 0;

	for (int i = 0; i < timeout_s * 20; i++) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(50 * 1000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}
