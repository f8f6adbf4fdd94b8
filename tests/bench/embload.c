/*
 * embload - a small load generator for embedding endpoints: keeps C
 * requests of B inputs in flight against one or more endpoints of one API
 * (round robin) and prints items/s, requests/s and latency percentiles.
 * Numbers are printed, never asserted.
 *
 *   embload --url URL [--url URL ...] [--api ollama|openai|tei] [--model M]
 *           [--batch B] [--concurrency C] [--requests N] [--seconds S]
 *           [--text-bytes T] [--repeat] [--key-file FILE]
 *
 * Every input is a distinct text unless --repeat, which sends request 0's
 * texts every time (to measure a service's cache).  Only loopback endpoints
 * are accepted: load is never sent off this machine.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_URLS 16
#define MAX_CONC 256
#define KEY_MAX 4096

struct opts {
	const char *urls[MAX_URLS];
	size_t n_urls;
	const char *api;
	const char *model;
	long batch, conc, requests, seconds, text_bytes;
	bool repeat;
	char auth[KEY_MAX + 32];
};

struct slot {
	CURL *e;
	char *body;
	double t0;
	struct curl_slist *headers;
};

struct tally {
	long done, ok, failed, items;
	long by_status[600];
	double *lat_ms;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
	fputs("usage: embload --url URL [--url URL ...] [--api ollama|openai|tei] [--model M]\n"
	      "               [--batch B] [--concurrency C] [--requests N] [--seconds S]\n"
	      "               [--text-bytes T] [--repeat] [--key-file FILE]\n"
	      "defaults: --api tei, --model embfill-hash, --batch 100, --concurrency 8,\n"
	      "          --requests 200, --seconds 60 (whichever ends first), --text-bytes 200\n", stderr);
}

static long num(const char *flag, const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || *end != '\0' || end == s || v < lo || v > hi) {
		fprintf(stderr, "embload: %s \"%s\" is not a number from %ld to %ld\n", flag, s, lo, hi);
		exit(2);
	}
	return v;
}

static bool loopback(const char *url)
{
	const char *h = strstr(url, "://");

	h = h ? h + 3 : url;
	return strncmp(h, "127.", 4) == 0 || strncmp(h, "localhost", 9) == 0 ||
	       strncmp(h, "[::1]", 5) == 0;
}

static void read_key(struct opts *o, const char *path)
{
	char key[KEY_MAX + 1];
	FILE *f = fopen(path, "r");
	size_t n;

	if (f == NULL) {
		fprintf(stderr, "embload: --key-file \"%s\" cannot be read: %s\n", path, strerror(errno));
		exit(2);
	}
	n = fread(key, 1, KEY_MAX, f);
	fclose(f);
	while (n > 0 && (key[n - 1] == '\n' || key[n - 1] == '\r'))
		n--;
	key[n] = '\0';
	snprintf(o->auth, sizeof(o->auth), "Authorization: Bearer %s", key);
}

static void parse(struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{"url", 1, 0, 'u'}, {"api", 1, 0, 'a'}, {"model", 1, 0, 'm'}, {"batch", 1, 0, 'b'},
		{"concurrency", 1, 0, 'c'}, {"requests", 1, 0, 'n'}, {"seconds", 1, 0, 's'},
		{"text-bytes", 1, 0, 't'}, {"repeat", 0, 0, 'r'}, {"key-file", 1, 0, 'k'},
		{"help", 0, 0, 'h'}, {0, 0, 0, 0},
	};
	int c;

	*o = (struct opts){.api = "tei", .model = "embfill-hash", .batch = 100, .conc = 8,
			   .requests = 200, .seconds = 60, .text_bytes = 200};
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'u':
			if (o->n_urls == MAX_URLS || !loopback(optarg)) {
				fprintf(stderr, "embload: --url \"%s\": at most %d, on loopback only\n",
					optarg, MAX_URLS);
				exit(2);
			}
			o->urls[o->n_urls++] = optarg;
			break;
		case 'a': o->api = optarg; break;
		case 'm': o->model = optarg; break;
		case 'b': o->batch = num("--batch", optarg, 1, 100000); break;
		case 'c': o->conc = num("--concurrency", optarg, 1, MAX_CONC); break;
		case 'n': o->requests = num("--requests", optarg, 1, 10000000); break;
		case 's': o->seconds = num("--seconds", optarg, 1, 3600); break;
		case 't': o->text_bytes = num("--text-bytes", optarg, 1, 100000); break;
		case 'r': o->repeat = true; break;
		case 'k': read_key(o, optarg); break;
		case 'h': usage(); exit(0);
		default: usage(); exit(2);
		}
	}
	if (o->n_urls == 0 || (strcmp(o->api, "tei") && strcmp(o->api, "ollama") &&
			       strcmp(o->api, "openai"))) {
		usage();
		exit(2);
	}
}

static const char *path_of(const char *api)
{
	if (strcmp(api, "ollama") == 0)
		return "/api/embed";
	return strcmp(api, "openai") == 0 ? "/v1/embeddings" : "/embed";
}

/* A JSON body of o->batch distinct texts of about o->text_bytes each. */
static char *make_body(const struct opts *o, long req)
{
	static const char filler[] = " vectors of chunks for the embedding service";
	size_t cap = (size_t)o->batch * ((size_t)o->text_bytes + 64) + 256, len = 0;
	char *b = malloc(cap);

	if (b == NULL)
		return NULL;
	if (strcmp(o->api, "tei") == 0)
		len += (size_t)snprintf(b, cap, "{\"inputs\":[");
	else
		len += (size_t)snprintf(b, cap, "{\"model\":\"%s\",%s\"input\":[", o->model,
					strcmp(o->api, "openai") == 0 ? "\"encoding_format\":\"float\"," : "");
	for (long i = 0; i < o->batch; i++) {
		size_t start = len;
		len += (size_t)snprintf(b + len, cap - len, "%s\"item %ld of request %ld:", i ? "," : "",
					i, o->repeat ? 0 : req);
		while (len - start < (size_t)o->text_bytes)
			len += (size_t)snprintf(b + len, cap - len, "%s", filler);
		len += (size_t)snprintf(b + len, cap - len, "\"");
	}
	snprintf(b + len, cap - len, "]}");
	return b;
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

static void start(CURLM *m, struct slot *s, const struct opts *o, long req)
{
	char url[1024];

	snprintf(url, sizeof(url), "%s%s", o->urls[(size_t)req % o->n_urls], path_of(o->api));
	s->body = make_body(o, req);
	s->e = curl_easy_init();
	s->headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (o->auth[0] != '\0')
		s->headers = curl_slist_append(s->headers, o->auth);
	curl_easy_setopt(s->e, CURLOPT_URL, url);
	curl_easy_setopt(s->e, CURLOPT_POSTFIELDS, s->body);
	curl_easy_setopt(s->e, CURLOPT_HTTPHEADER, s->headers);
	curl_easy_setopt(s->e, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(s->e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(s->e, CURLOPT_TIMEOUT, 300L);
	curl_easy_setopt(s->e, CURLOPT_PRIVATE, s);
	s->t0 = now_s();
	curl_multi_add_handle(m, s->e);
}

static void finish(CURLM *m, CURLMsg *msg, const struct opts *o, struct tally *t)
{
	struct slot *s;
	long status = 0;

	curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
	curl_easy_getinfo(s->e, CURLINFO_RESPONSE_CODE, &status);
	t->lat_ms[t->done++] = (now_s() - s->t0) * 1e3;
	if (msg->data.result == CURLE_OK && status == 200) {
		t->ok++;
		t->items += o->batch;
	} else {
		t->failed++;
	}
	if (status > 0 && status < 600)
		t->by_status[status]++;
	curl_multi_remove_handle(m, s->e);
	curl_easy_cleanup(s->e);
	curl_slist_free_all(s->headers);
	free(s->body);
	memset(s, 0, sizeof(*s));
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double pct(const double *sorted, long n, double p)
{
	long i = (long)(p * (double)(n - 1) + 0.5);

	return n > 0 ? sorted[i] : 0;
}

static void report(const struct opts *o, struct tally *t, double secs)
{
	qsort(t->lat_ms, (size_t)t->done, sizeof(double), by_value);
	printf("embload: %s x%zu endpoint(s), concurrency %ld, batch %ld: %ld requests (%ld failed) "
	       "in %.2f s: %.0f items/s, %.1f requests/s, latency p50 %.0f ms, p95 %.0f ms, max %.0f ms\n",
	       o->api, o->n_urls, o->conc, o->batch, t->done, t->failed, secs,
	       (double)t->items / secs, (double)t->ok / secs, pct(t->lat_ms, t->done, 0.5),
	       pct(t->lat_ms, t->done, 0.95), pct(t->lat_ms, t->done, 1.0));
	for (int s = 0; s < 600; s++)
		if (t->by_status[s] > 0 && s != 200)
			printf("embload: %ld answers with status %d\n", t->by_status[s], s);
}

int main(int argc, char **argv)
{
	struct opts o;
	struct slot slots[MAX_CONC] = {{0}};
	struct tally t = {0};
	long started = 0;
	int running = 0, left;
	double t0, deadline;
	CURLM *m;
	CURLMsg *msg;

	parse(&o, argc, argv);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	m = curl_multi_init();
	t.lat_ms = calloc((size_t)o.requests, sizeof(double));
	if (m == NULL || t.lat_ms == NULL)
		return 1;
	t0 = now_s();
	deadline = t0 + (double)o.seconds;
	for (long i = 0; i < o.conc && started < o.requests; i++)
		start(m, &slots[i], &o, started++);
	do {
		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &left)) != NULL) {
			struct slot *s;
			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
			finish(m, msg, &o, &t);
			if (started < o.requests && now_s() < deadline)
				start(m, s, &o, started++);
		}
		curl_multi_perform(m, &running);
		if (running > 0)
			curl_multi_poll(m, NULL, 0, 100, NULL);
	} while (running > 0);
	report(&o, &t, now_s() - t0);
	curl_multi_cleanup(m);
	curl_global_cleanup();
	free(t.lat_ms);
	return t.failed > 0 ? 1 : 0;
}
