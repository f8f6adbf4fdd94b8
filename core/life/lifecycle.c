/*
 * lifecycle.c - new collections, swaps, rollbacks, backups and the record
 * of who made a collection's embeddings (see lifecycle.h).
 *
 * A collection is a name on rows: on documents, chunks and embedding rows
 * (or, in lookup mode, one row of the lookup table).  A swap is therefore a
 * pair of renames in one transaction: MVCC lets every reader see the names
 * as they were before the commit or after it, never in between.  Renames
 * go table by table (documents, chunks, embedding rows), each statement
 * touching only rows that still carry the old name, so they are right both
 * when foreign keys cascade a rename downwards (the default layout) and
 * when a mapped layout has no such keys.
 */
#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/db/collsql.h"
#include "core/db/db_pg.h"
#include "core/life/life_int.h"
#include "core/db/sqltpl.h"
#include "embfill/chunker.h"
#include "embfill/ident.h"
#include "embfill/lifecycle.h"
#include "embfill/redact.h"
#include "embfill/schema.h"
#include "embfill/spotcheck.h"
#include "embfill/strbuf.h"
#include "embfill/verify.h"

double life_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

ef_status life_oom(struct ef_error *err)
{
	return ef_error_oom(err, NULL);
}

/* Runs tpl (expanded with the quoted names) and returns its result when its
 * status is expect. */
PGresult *life_q(struct life *l, const char *tpl, int n, const char *const *p,
		   ExecStatusType expect, struct ef_error *err)
{
	char *sql = ef_sqlvars_expand(&l->v, tpl);
	PGresult *r;

	if (!sql) {
		life_oom(err);
		return NULL;
	}
	r = ef_db_query(l->db, sql, n, p, expect, err);
	free(sql);
	return r;
}

/* A statement without rows; *affected (may be NULL) gets its row count. */
ef_status life_x(struct life *l, const char *tpl, int n, const char *const *p,
		   long long *affected, struct ef_error *err)
{
	PGresult *r = life_q(l, tpl, n, p, PGRES_COMMAND_OK, err);

	if (!r)
		return err->status;
	if (affected)
		*affected = atoll(PQcmdTuples(r));
	PQclear(r);
	return EF_OK;
}

static ef_status tool_version(struct life *l, struct ef_error *err)
{
	PGresult *r = life_q(l, "SELECT value FROM {tool}.meta WHERE key = 'schema_version'", 0, NULL,
			PGRES_TUPLES_OK, err);
	int v;

	if (!r)
		return err->status;
	v = PQntuples(r) == 1 ? atoi(PQgetvalue(r, 0, 0)) : 0;
	PQclear(r);
	if (v >= EF_TOOL_SCHEMA_VERSION)
		return EF_OK;
	ef_error_set(err, EF_ERR_DB, "embfill's tables in schema \"%s\" are version %d; this "
		     "embfill needs version %d", l->cfg->map.tool_schema, v,
		     EF_TOOL_SCHEMA_VERSION);
	return ef_error_hint(err, "run `embfill schema init`: it upgrades embfill's tables and "
				  "leaves yours as they are");
}

/* Connects; with coll, the mapping is that collection's (its own
 * embedding table when it has one). */
ef_status life_open(struct life *l, const struct ef_config *cfg, const char *coll,
			   struct ef_error *err)
{
	bool moved = false;

	memset(l, 0, sizeof(*l));
	l->cfg = cfg;
	if (ef_db_connect(cfg->dsn, &l->db, err) != EF_OK ||
	    ef_db_exec(l->db, "SET client_encoding = 'UTF8'", err) != EF_OK)
		return err->status;
	if (coll && ef_coll_config(l->db, cfg, coll, &l->own, &l->own_table, &moved, err) != EF_OK)
		return err->status;
	if (moved)
		l->cfg = cfg = &l->own;
	if (ef_schema_discover(l->db, &cfg->map, &l->sc, NULL, err) != EF_OK)
		return err->status;
	if (!ef_schema_usable(&l->sc)) {
		ef_error_set(err, EF_ERR_DB, "the collection's tables are not usable");
		return ef_error_hint(err, "run `embfill schema check` to see what is missing");
	}
	if (!l->sc.tool_schema) {
		ef_error_set(err, EF_ERR_DB, "embfill's own tables (schema \"%s\") do not exist",
			     cfg->map.tool_schema);
		return ef_error_hint(err, "run `embfill schema init`: it adds them and leaves "
					  "your tables as they are");
	}
	if (!ef_collsql_quote(&l->v, l->db, &cfg->map, err))
		return err->status;
	return tool_version(l, err);
}

void life_close(struct life *l)
{
	struct ef_error ignored;

	if (l->in_txn && l->db)
		ef_db_exec(l->db, "ROLLBACK", &ignored);
	ef_sqlvars_free(&l->v);
	ef_db_close(l->db);
	free(l->own_table);
	l->db = NULL;
}

/* After rows moved between collection names the planner's statistics of
 * the collection columns are wrong: a name it thinks empty holds 100,000
 * chunks, and a status or verify of it would pick a nested loop over the
 * whole embedding table.  Refreshed at once (a sample, and never blocking
 * readers or writers); a table we do not own is skipped by the server. */
void life_analyze(struct life *l)
{
	struct ef_error ignored;

	life_x(l, "ANALYZE {chunks}", 0, NULL, NULL, &ignored);
	if (l->cfg->map.layout == EF_LAYOUT_SEPARATE)
		life_x(l, "ANALYZE {embeddings}", 0, NULL, NULL, &ignored);
	if (l->sc.documents_ok)
		life_x(l, "ANALYZE {documents}", 0, NULL, NULL, &ignored);
}

ef_status life_begin(struct life *l, struct ef_error *err)
{
	if (ef_db_exec(l->db, "BEGIN", err) != EF_OK)
		return err->status;
	l->in_txn = true;
	return EF_OK;
}

ef_status life_commit(struct life *l, struct ef_error *err)
{
	l->in_txn = false;
	return ef_db_exec(l->db, "COMMIT", err);
}

/* The run lock of a collection (the key run.c takes), for this
 * transaction: no run can start on it, and none is running. */
ef_status life_lock(struct life *l, const char *name, struct ef_error *err)
{
	char *key = NULL;
	const char *p[1];
	PGresult *r;
	bool got;

	if (asprintf(&key, "embfill:%s:%s", l->cfg->map.tool_schema, name) < 0)
		return life_oom(err);
	p[0] = key;
	r = ef_db_query(l->db, "SELECT pg_try_advisory_xact_lock(hashtextextended($1::text, 0))",
			1, p, PGRES_TUPLES_OK, err);
	free(key);
	if (!r)
		return err->status;
	got = strcmp(PQgetvalue(r, 0, 0), "t") == 0;
	PQclear(r);
	if (got)
		return EF_OK;
	ef_error_set(err, EF_ERR_BUSY, "collection \"%s\" is busy: an embfill run holds it", name);
	return ef_error_hint(err, "wait for the run to finish (`embfill status -C %s`), then "
				  "try again", name);
}

/* The value rows carry for a collection: its name, or in lookup mode its
 * key in the lookup table (NULL in *out when it is not there). */
ef_status life_value(struct life *l, const char *name, char **out, struct ef_error *err)
{
	const char *p[1] = { name };
	PGresult *r;

	*out = NULL;
	if (l->cfg->map.coll_mode != EF_COLL_LOOKUP) {
		*out = strdup(name);
		return *out ? EF_OK : life_oom(err);
	}
	r = life_q(l, "SELECT {lkey}::text FROM {lookup} WHERE {lname} = $1", 1, p, PGRES_TUPLES_OK,
	      err);
	if (!r)
		return err->status;
	if (PQntuples(r) == 1 && !(*out = strdup(PQgetvalue(r, 0, 0)))) {
		PQclear(r);
		return life_oom(err);
	}
	PQclear(r);
	return EF_OK;
}

ef_status life_lookup_missing(struct life *l, const char *name, struct ef_error *err)
{
	ef_error_set(err, EF_ERR_USAGE, "collection \"%s\" is not in the lookup table %s", name,
		     l->cfg->map.lookup);
	return ef_error_hint(err, "add it to %s first (embfill does not write that table), then "
				  "try again", l->cfg->map.lookup);
}

/* How many documents and chunks carry a collection value. */
ef_status life_holds(struct life *l, const char *value, long long *docs, long long *chunks,
		       struct ef_error *err)
{
	const char *p[1] = { value };
	PGresult *r;

	*docs = *chunks = 0;
	if (!value)
		return EF_OK;
	r = life_q(l, "SELECT count(*) FROM {chunks} WHERE {ccoll} = $1", 1, p, PGRES_TUPLES_OK, err);
	if (!r)
		return err->status;
	*chunks = ef_db_ll(r, 0, 0);
	PQclear(r);
	if (!l->sc.documents_ok)
		return EF_OK;
	r = life_q(l, "SELECT count(*) FROM {documents} WHERE {doc_coll} = $1", 1, p, PGRES_TUPLES_OK,
	      err);
	if (!r)
		return err->status;
	*docs = ef_db_ll(r, 0, 0);
	PQclear(r);
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

ef_status ef_coll_origin(ef_db *db, const struct ef_config *cfg, const char *name,
			 struct ef_origin *o, struct ef_error *err)
{
	const char *p[1] = { name };
	PGresult *r;

	memset(o, 0, sizeof(*o));
	if (ef_collsql_tool_query(db, cfg, "SELECT provider, coalesce(service_host, ''), coalesce(model, ''),"
			       " coalesce(dim, 0) FROM {tool}.collections WHERE name = $1"
			       " AND provider IS NOT NULL", 1, p, &r, err) != EF_OK)
		return err->status;
	if (PQntuples(r) == 1)
		set_origin(o, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2),
			   atoi(PQgetvalue(r, 0, 3)));
	PQclear(r);
	if (o->known)
		return EF_OK;
	if (ef_collsql_tool_query(db, cfg, "SELECT coalesce(settings->>'provider', ''), coalesce(settings->>"
			       "'url', ''), coalesce(settings->>'model', ''), coalesce((settings->>"
			       "'dim')::int, 0) FROM {tool}.runs WHERE collection = $1 AND written > 0"
			       " ORDER BY id DESC LIMIT 1", 1, p, &r, err) != EF_OK)
		return err->status;
	if (PQntuples(r) == 1) {
		char *host = ef_url_host(PQgetvalue(r, 0, 1));
		set_origin(o, PQgetvalue(r, 0, 0), host ? host : "", PQgetvalue(r, 0, 2),
			   atoi(PQgetvalue(r, 0, 3)));
		free(host);
	}
	PQclear(r);
	return EF_OK;
}

ef_status ef_coll_record_origin(ef_db *db, const struct ef_config *cfg, const char *name,
				struct ef_error *err)
{
	char *host = ef_url_host(cfg->embed_url);
	char dim[16];
	const char *p[5] = { name, cfg->embed_model, dim, cfg->provider, host ? host : "" };
	PGresult *r;
	ef_status st;

	snprintf(dim, sizeof(dim), "%d", cfg->embed_dim);
	st = ef_collsql_tool_query(db, cfg, "INSERT INTO {tool}.collections (name, model, dim, provider,"
				" service_host) VALUES ($1, $2, $3::int, $4, $5) ON CONFLICT (name)"
				" DO UPDATE SET model = EXCLUDED.model, dim = EXCLUDED.dim, provider ="
				" EXCLUDED.provider, service_host = EXCLUDED.service_host,"
				" updated_at = now() RETURNING name", 5, p, &r, err);
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

ef_status ef_coll_check_provider(const struct ef_config *cfg, const char *name,
				 const struct ef_origin *o, struct ef_error *err)
{
	char *host = ef_url_host(cfg->embed_url);
	bool same = !o->known || (strcmp(o->provider, cfg->provider) == 0 && host &&
				  ef_same_service_host(o->host, host));

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

