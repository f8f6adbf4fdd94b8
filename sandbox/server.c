/*
 * server.c - libmicrohttpd plumbing: bodies, routes, replies, access log.
 *
 * One thread per connection (MHD_USE_THREAD_PER_CONNECTION): the service
 * sleeps on purpose for --latency-ms, and a sleeping request must not hold
 * up others as it would on a shared polling thread.  A request queued for
 * a --compute-slots slot waits in its own connection's thread too, while
 * the internal polling thread goes on accepting connections.  The socket is bound to
 * 127.0.0.1 through MHD_OPTION_SOCK_ADDR, never to all interfaces: the
 * sandbox answers anyone who can connect, so only this host may.
 */
#include "server.h"

#include "api.h"
#include "service.h"
#include "stats.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#define CONNECTION_TIMEOUT_S 120u
#define DROP_BLOCK 4096

struct sbx_server {
	const struct sbx_config *cfg;
	sbx_service *svc;
	struct sbx_stats stats;
	struct MHD_Daemon *daemon;
	int port;
};

/* Per-request state, MHD's con_cls: the body as it arrives. */
struct upload {
	char *buf;
	size_t len, cap;
	bool too_big;
	struct timespec t0;
};

/* A reply that is cut off halfway, for --drop-rate. */
struct dropping {
	char *body;
	size_t cut;
};

static void collect(struct upload *up, size_t limit, const char *data, size_t size)
{
	char *nb;
	size_t want;

	if (up->too_big || size > limit - up->len) {
		up->too_big = true;
		return;
	}
	want = up->len + size + 1;
	if (want > up->cap) {
		size_t cap = up->cap ? up->cap : 4096;
		while (cap < want)
			cap *= 2;
		nb = realloc(up->buf, cap);
		if (nb == NULL) {
			up->too_big = true;
			return;
		}
		up->buf = nb;
		up->cap = cap;
	}
	memcpy(up->buf + up->len, data, size);
	up->len += size;
	up->buf[up->len] = '\0';
}

static ssize_t read_until_cut(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct dropping *d = cls;
	size_t n;

	if (pos >= d->cut)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	n = d->cut - (size_t)pos < max ? d->cut - (size_t)pos : max;
	memcpy(buf, d->body + pos, n);
	return (ssize_t)n;
}

static void free_dropping(void *cls)
{
	struct dropping *d = cls;

	free(d->body);
	free(d);
}

/* Announces the full length, sends half, then closes: the client sees a
 * transfer cut short, as when a proxy or the service dies mid-answer. */
static struct MHD_Response *dropping_response(struct sbx_reply *r)
{
	struct dropping *d = malloc(sizeof(*d));
	struct MHD_Response *resp;

	if (d == NULL)
		return NULL;
	d->body = r->body;
	d->cut = r->len / 2;
	resp = MHD_create_response_from_callback(r->len, DROP_BLOCK, read_until_cut, d, free_dropping);
	if (resp == NULL)
		free(d);
	else
		r->body = NULL;
	return resp;
}

static struct MHD_Response *buffer_response(struct sbx_reply *r)
{
	struct MHD_Response *resp;

	if (r->body == NULL)
		return MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	resp = MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
	if (resp != NULL)
		r->body = NULL;
	return resp;
}

static void add_headers(struct MHD_Response *resp, const struct sbx_reply *r)
{
	if (r->content_type != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
	if (r->retry_after[0] != '\0')
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, r->retry_after);
	if (r->retry_after_ms[0] != '\0')
		MHD_add_response_header(resp, "retry-after-ms", r->retry_after_ms);
	if (r->auth_challenge)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
	if (r->allow != NULL)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
}

static enum MHD_Result send_reply(struct MHD_Connection *c, struct sbx_reply *r)
{
	struct MHD_Response *resp = r->drop ? dropping_response(r) : buffer_response(r);
	enum MHD_Result ret;

	free(r->body);
	r->body = NULL;
	if (resp == NULL)
		return MHD_NO;
	add_headers(resp, r);
	ret = MHD_queue_response(c, r->status > 0 ? (unsigned)r->status : 500u, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void json_reply(struct sbx_reply *r, int status, const char *json)
{
	r->status = status;
	r->body = strdup(json);
	r->len = r->body != NULL ? strlen(r->body) : 0;
	r->content_type = "application/json";
}

static void stats_reply(struct sbx_server *srv, struct sbx_reply *r)
{
	r->status = 200;
	r->body = sbx_stats_json(&srv->stats);
	r->len = r->body != NULL ? strlen(r->body) : 0;
	r->content_type = "application/json";
}

static void embed_route(struct sbx_server *srv, struct MHD_Connection *c, enum sbx_api api,
			const struct upload *up, struct sbx_reply *r)
{
	struct sbx_incoming in = {
		.body = up->buf != NULL ? up->buf : "",
		.len = up->len,
		.too_big = up->too_big,
		.authorization = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
							     MHD_HTTP_HEADER_AUTHORIZATION),
	};

	sbx_service_handle(srv->svc, api, &in, r);
	sbx_stats_record(&srv->stats, r->status, r->items, r->base64_asked);
}

static void other_route(struct sbx_server *srv, const char *url, bool get, bool post,
			struct sbx_reply *r)
{
	bool loading = sbx_service_loading(srv->svc);

	if (strcmp(url, "/health") == 0 && get) {
		json_reply(r, loading ? 503 : 200, loading ? "{\"status\":\"loading\"}" : "{\"status\":\"ok\"}");
	} else if (strcmp(url, "/stats") == 0 && get) {
		stats_reply(srv, r);
	} else if (strcmp(url, "/stats/reset") == 0 && post) {
		sbx_stats_reset(&srv->stats);
		json_reply(r, 200, "{\"reset\":true}");
	} else if (strcmp(url, "/health") == 0 || strcmp(url, "/stats") == 0) {
		json_reply(r, 405, "{\"error\":\"method not allowed\"}");
		r->allow = "GET";
	} else if (strcmp(url, "/stats/reset") == 0) {
		json_reply(r, 405, "{\"error\":\"method not allowed\"}");
		r->allow = "POST";
	} else {
		json_reply(r, 404, "{\"error\":\"not found\"}");
	}
}

static double elapsed_ms(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t0->tv_sec) * 1e3 + (double)(now.tv_nsec - t0->tv_nsec) / 1e6;
}

/* Method, path, status, counts and time only: bodies hold the customer's
 * text and headers may hold the key. */
static void access_log(const struct sbx_server *srv, const char *method, const char *url,
		       const struct sbx_reply *r, const struct upload *up)
{
	if (!srv->cfg->verbose)
		return;
	fprintf(stderr, "embfill-embedder: %s %s %d (%zu items, %zu bytes in, %.1f ms)%s\n",
		method, url, r->status, r->items, up->len, elapsed_ms(&up->t0),
		r->drop ? " dropped" : "");
}

static enum MHD_Result dispatch(struct sbx_server *srv, struct MHD_Connection *c,
				const char *url, const char *method, struct upload *up)
{
	struct sbx_reply r = {0};
	enum sbx_api api;
	bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
	bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;

	if (sbx_api_for_path(url, &api) && post) {
		sbx_stats_path(&srv->stats, (int)api);
		if (api == SBX_API_OPENAI && srv->cfg->openai_route == SBX_OPENAI_MISSING)
			json_reply(&r, 404, "{\"error\":\"not found\"}");
		else
			embed_route(srv, c, api, up, &r);
	} else if (sbx_api_for_path(url, &api)) {
		json_reply(&r, 405, "{\"error\":\"method not allowed\"}");
		r.allow = "POST";
	} else {
		other_route(srv, url, get, post, &r);
	}
	access_log(srv, method, url, &r, up);
	return send_reply(c, &r);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *size, void **con_cls)
{
	struct sbx_server *srv = cls;
	struct upload *up = *con_cls;

	(void)version;
	if (up == NULL) {
		up = calloc(1, sizeof(*up));
		if (up == NULL)
			return MHD_NO;
		clock_gettime(CLOCK_MONOTONIC, &up->t0);
		*con_cls = up;
		return MHD_YES;
	}
	if (*size > 0) {
		collect(up, srv->cfg->max_body_bytes, data, *size);
		*size = 0;
		return MHD_YES;
	}
	return dispatch(srv, c, url, method, up);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode code)
{
	struct upload *up = *con_cls;

	(void)cls;
	(void)c;
	(void)code;
	if (up != NULL) {
		free(up->buf);
		free(up);
		*con_cls = NULL;
	}
}

static struct MHD_Daemon *listen_loopback(struct sbx_server *srv)
{
	struct sockaddr_in sa;
	unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
			     MHD_USE_AUTO | (srv->cfg->verbose ? MHD_USE_ERROR_LOG : 0);

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)srv->cfg->port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return MHD_start_daemon(flags, 0, NULL, NULL, on_request, srv,
				MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv,
				MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT_S,
				MHD_OPTION_END);
}

sbx_server *sbx_server_start(const struct sbx_config *cfg, sbx_uselite *ul,
			     char *err, size_t errsz)
{
	sbx_server *srv = calloc(1, sizeof(*srv));
	const union MHD_DaemonInfo *info;

	if (srv == NULL) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	sbx_stats_init(&srv->stats);
	if ((srv->svc = sbx_service_new(cfg, ul, &srv->stats, err, errsz)) == NULL) {
		sbx_stats_destroy(&srv->stats);
		free(srv);
		return NULL;
	}
	srv->cfg = cfg;
	srv->daemon = listen_loopback(srv);
	info = srv->daemon != NULL ? MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT) : NULL;
	if (info == NULL || info->port == 0) {
		snprintf(err, errsz, "cannot listen on 127.0.0.1:%d%s\nhint: pick another --port, or "
			 "--port 0 for a free one", cfg->port, errno == EADDRINUSE ? " (port in use)" : "");
		sbx_server_stop(srv);
		return NULL;
	}
	srv->port = info->port;
	return srv;
}

int sbx_server_port(const sbx_server *srv)
{
	return srv->port;
}

void sbx_server_stop(sbx_server *srv)
{
	if (srv == NULL)
		return;
	if (srv->daemon != NULL)
		MHD_stop_daemon(srv->daemon);
	sbx_service_free(srv->svc);
	sbx_stats_destroy(&srv->stats);
	free(srv);
}
