/*
 * registry.c - embfill's record of each collection (registry.h): where its
 * vectors live and who made them.
 *
 * Read through to_jsonb() where a column came with a later version of
 * embfill's tables, so that tables of an older version (or none at all)
 * simply mean "nothing recorded" instead of an error: status and plan must
 * work before `schema init` upgraded anything.
 */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/db/collsql.h"
#include "core/db/db_pg.h"
#include "core/db/session_int.h"
#include "embfill/registry.h"
#include "embfill/strbuf.h"
#include "embfill/urllist.h"

static ef_status load_own(ef_session *s, struct ef_error *err)
{
	PGresult *r = NULL;
	int n;

	if (s->own_loaded)
		return EF_OK;
	if (!s->sc.tool_schema ||
	    ef_collsql_tool_query(s->db, s->cfg, "SELECT c.name, to_jsonb(c)->>'embeddings_table'"
				  " FROM {tool}.collections c WHERE to_regclass(to_jsonb(c)->>"
				  "'embeddings_table') IS NOT NULL ORDER BY 1", 0, NULL, &r,
				  err) != EF_OK) {
		ef_error_clear(err);
		r = NULL;
	}
	n = r ? PQntuples(r) : 0;
	s->own = calloc((size_t)n * 2 + 1, sizeof(*s->own));
	for (int i = 0; s->own && i < n; i++) {
		s->own[2 * i] = strdup(PQgetvalue(r, i, 0));
		s->own[2 * i + 1] = strdup(PQgetvalue(r, i, 1));
		if (!s->own[2 * i] || !s->own[2 * i + 1]) {
			PQclear(r);
			ef_names_free(s->own);
			s->own = NULL;
			return ef_error_oom(err, NULL);
		}
	}
	PQclear(r);
	if (!s->own)
		return ef_error_oom(err, NULL);
	s->own_loaded = true;
	return EF_OK;
}

/* The collection's own table, or NULL (a pointer into s->own). */
static const char *own_table(const ef_session *s, const char *name)
{
	for (size_t i = 0; s->own[i]; i += 2)
		if (strcmp(s->own[i], name) == 0 && s->cfg->map.embeddings &&
		    strcmp(s->own[i + 1], s->cfg->map.embeddings) != 0)
			return s->own[i + 1];
	return NULL;
}

static void fill_view(const ef_session *s, const struct ef_view_slot *slot, struct ef_view *out)
{
	out->collection = slot ? slot->collection : NULL;
	out->cfg = slot ? &slot->cfg : s->cfg;
	out->sc = slot ? &slot->sc : &s->sc;
	out->own_table = slot ? slot->own_table : NULL;
}

static ef_status add_slot(ef_session *s, const char *name, const char *table,
			  struct ef_view_slot **out, struct ef_error *err)
{
	struct ef_view_slot *v;

	if (s->nviews == s->capviews) {
		size_t cap = s->capviews ? s->capviews * 2 : 4;
		struct ef_view_slot **nv = realloc(s->views, cap * sizeof(*nv));

		if (!nv)
			return ef_error_oom(err, NULL);
		s->views = nv;
		s->capviews = cap;
	}
	v = calloc(1, sizeof(*v));
	if (v) {
		v->collection = strdup(name);
		v->own_table = strdup(table);
	}
	if (!v || !v->collection || !v->own_table) {
		if (v) {
			free(v->collection);
			free(v->own_table);
		}
		free(v);
		return ef_error_oom(err, NULL);
	}
	v->cfg = *s->cfg;
	v->cfg.map.embeddings = v->own_table;
	if (ef_schema_discover(s->db, &v->cfg.map, &v->sc, NULL, err) != EF_OK) {
		free(v->collection);
		free(v->own_table);
		free(v);
		return err->status;
	}
	s->views[s->nviews++] = v;
	*out = v;
	return EF_OK;
}

ef_status ef_coll_view(ef_session *s, const char *name, struct ef_view *out,
		       struct ef_error *err)
{
	struct ef_view_slot *slot = NULL;
	const char *table;

	fill_view(s, NULL, out);
	out->collection = name;
	if (load_own(s, err) != EF_OK)
		return err->status;
	if (!(table = own_table(s, name)))
		return EF_OK;
	for (size_t i = 0; i < s->nviews && !slot; i++)
		if (strcmp(s->views[i]->collection, name) == 0)
			slot = s->views[i];
	if (!slot && add_slot(s, name, table, &slot, err) != EF_OK)
		return err->status;
	fill_view(s, slot, out);
	return EF_OK;
}

ef_status ef_coll_own_tables(ef_session *s, char ***names, struct ef_error *err)
{
	size_t n = 0, k = 0;

	*names = NULL;
	if (load_own(s, err) != EF_OK)
		return err->status;
	while (s->own[2 * n])
		n++;
	*names = calloc(n + 1, sizeof(**names));
	if (!*names)
		return ef_error_oom(err, NULL);
	for (size_t i = 0; i < n; i++) {
		if (!own_table(s, s->own[2 * i]))
			continue;
		if (!((*names)[k++] = strdup(s->own[2 * i]))) {
			ef_names_free(*names);
			*names = NULL;
			return ef_error_oom(err, NULL);
		}
	}
	return EF_OK;
}

/* --- origin ------------------------------------------------------------- */

char *ef_url_host(const char *url)
{
	CURLU *h = curl_url();
	char *host = NULL, *port = NULL, *out = NULL;

	if (h && url && curl_url_set(h, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(h, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
		if (curl_url_get(h, CURLUPART_PORT, &port, 0) == CURLUE_OK && port) {
			if (asprintf(&out, "%s:%s", host, port) < 0)
				out = NULL;
		} else {
			out = strdup(host);
		}
	}
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(h);
	return out;
}

static void set_origin(struct ef_origin *o, const char *provider, const char *host,
		       const char *model, int dim)
{
	o->known = *provider != '\0';
	snprintf(o->provider, sizeof(o->provider), "%s", provider);
	snprintf(o->host, sizeof(o->host), "%s", host);
	snprintf(o->model, sizeof(o->model), "%s", model);
	o->dim = dim;
}

ef_status ef_coll_origin(ef_session *s, const char *name, struct ef_origin *o,
			 struct ef_error *err)
{
	const char *p[1] = { name };
	PGresult *r;

	memset(o, 0, sizeof(*o));
	if (ef_collsql_tool_query(s->db, s->cfg, "SELECT provider, coalesce(service_host, ''),"
				  " coalesce(model, ''), coalesce(dim, 0) FROM {tool}.collections"
				  " WHERE name = $1 AND provider IS NOT NULL", 1, p, &r,
				  err) != EF_OK)
		return err->status;
	if (PQntuples(r) == 1)
		set_origin(o, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2),
			   atoi(PQgetvalue(r, 0, 3)));
	PQclear(r);
	if (o->known)
		return EF_OK;
	if (ef_collsql_tool_query(s->db, s->cfg, "SELECT coalesce(settings->>'provider', ''),"
				  " coalesce(settings->>'url', ''), coalesce(settings->>'model', ''),"
				  " coalesce((settings->>'dim')::int, 0) FROM {tool}.runs WHERE"
				  " collection = $1 AND written > 0 ORDER BY id DESC LIMIT 1", 1, p,
				  &r, err) != EF_OK)
		return err->status;
	if (PQntuples(r) == 1) {
		char *host = ef_url_hosts(PQgetvalue(r, 0, 1));
		set_origin(o, PQgetvalue(r, 0, 0), host ? host : "", PQgetvalue(r, 0, 2),
			   atoi(PQgetvalue(r, 0, 3)));
		free(host);
	}
	PQclear(r);
	return EF_OK;
}

/*
 * The hosts of EMBED_URL, every endpoint's, in the order of the list and
 * each once: "gpu1:8080,gpu2:8080".  NULL when none parses.
 */
char *ef_url_hosts(const char *list)
{
	struct ef_strbuf sb = EF_STRBUF_INIT;
	char **items;
	size_t n;
	int added = 0;

	if (!list || !(items = ef_url_list_split(list, &n)))
		return NULL;
	for (size_t i = 0; i < n; i++) {
		char *h = ef_url_host(items[i]);
		bool seen = false;

		for (size_t j = 0; h && j < i && !seen; j++) {
			char *o = ef_url_host(items[j]);

			seen = o && strcmp(o, h) == 0;
			free(o);
		}
		if (h && !seen)
			ef_strbuf_addf(&sb, "%s%s", added++ ? "," : "", h);
		free(h);
	}
	ef_names_free(items);
	if (!added) {
		ef_strbuf_free(&sb);
		return NULL;
	}
	return ef_strbuf_take(&sb);
}

ef_status ef_coll_record_origin(ef_session *s, const char *name, struct ef_error *err)
{
	return ef_coll_record_origin_with(s, name, s->cfg->provider, s->cfg->embed_url, err);
}

ef_status ef_coll_record_origin_with(ef_session *s, const char *name, const char *provider,
				     const char *url, struct ef_error *err)
{
	const struct ef_config *cfg = s->cfg;
	char *host = ef_url_hosts(url);
	char dim[16];
	const char *p[5] = { name, cfg->embed_model, dim, provider, host ? host : "" };
	PGresult *r;
	ef_status st;

	snprintf(dim, sizeof(dim), "%d", cfg->embed_dim);
	st = ef_collsql_tool_query(s->db, cfg, "INSERT INTO {tool}.collections (name, model, dim,"
				   " provider, service_host) VALUES ($1, $2, $3::int, $4, $5)"
				   " ON CONFLICT (name) DO UPDATE SET model = EXCLUDED.model, dim ="
				   " EXCLUDED.dim, provider = EXCLUDED.provider, service_host ="
				   " EXCLUDED.service_host, updated_at = now() RETURNING name", 5, p,
				   &r, err);
	if (st == EF_OK)
		PQclear(r);
	free(host);
	return st;
}

/* The host of "host[:port]" ("[v6]:port" too): a service that moved to
 * another port of the same host is the same provider's. */
static size_t host_len(const char *hp)
{
	const char *colon = strrchr(hp, ':'), *bracket = strrchr(hp, ']');

	if (!colon || (bracket && bracket > colon) || (!bracket && strchr(hp, ':') != colon))
		return strlen(hp);
	for (const char *d = colon + 1; *d; d++)
		if (*d < '0' || *d > '9')
			return strlen(hp);
	return (size_t)(colon - hp);
}

bool ef_same_service_host(const char *a, const char *b)
{
	size_t n = host_len(a);

	return n == host_len(b) && strncmp(a, b, n) == 0;
}

/* One host of a comma-separated list, copied into buf. */
static const char *next_host(const char *p, char *buf, size_t size)
{
	size_t n = strcspn(p, ",");

	snprintf(buf, size, "%.*s", (int)n, p);
	return p[n] ? p + n + 1 : p + n;
}

/*
 * Whether two host lists (ef_url_hosts) share a host, ports aside: the
 * endpoints of one list give the same vectors (the run checks it before it
 * writes), so a list that still holds a host on record is the same
 * provider, with servers added or taken away.
 */
bool ef_service_hosts_overlap(const char *recorded, const char *now)
{
	char a[256], b[256];

	for (const char *p = recorded; *p;) {
		p = next_host(p, a, sizeof(a));
		for (const char *q = now; *q;) {
			q = next_host(q, b, sizeof(b));
			if (a[0] && ef_same_service_host(a, b))
				return true;
		}
	}
	return false;
}

ef_status ef_coll_check_provider(const struct ef_config *cfg, const char *name,
				 const struct ef_origin *o, struct ef_error *err)
{
	char *host = ef_url_hosts(cfg->embed_url);
	bool same = !o->known || (strcmp(o->provider, cfg->provider) == 0 && host &&
				  ef_service_hosts_overlap(o->host, host));

	if (!same) {
		ef_error_set(err, EF_ERR_USAGE, "provider change: the embeddings of \"%s\" were made "
			     "by %s at %s, the settings say %s at %s; nothing was written", name,
			     o->provider, o->host, cfg->provider, host ? host : "?");
		ef_error_hint(err, "a change of provider needs the collection owner's approval; "
				   "once given, repeat the command with --approve-provider-change");
	}
	free(host);
	return same ? EF_OK : EF_ERR_USAGE;
}
