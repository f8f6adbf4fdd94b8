/*
 * history.c (flow) - historylog entries of runs and events (history.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embfill/historylog.h"
#include "tui/flow/app.h"
#include "tui/flow/history.h"

void history_verification(const struct ef_verify_report *v, const struct ef_spot_report *s,
			  char *buf, size_t n)
{
	size_t used;

	used = (size_t)snprintf(buf, n, "%s: %lld chunks, %lld fresh vectors",
				v->ok ? "passed" : "FAILED", v->chunks, v->fresh);
	for (size_t i = 0; i < v->nissues && used < n; i++)
		used += (size_t)snprintf(buf + used, n - used, "; %s %lld%s", v->issues[i].kind,
					 v->issues[i].count,
					 v->issues[i].explained ? " (explained)" : "");
	if (used < n)
		used += (size_t)snprintf(buf + used, n - used, "; isolation: %lld orphans, %lld "
					 "cross-tenant", ef_verify_count(v, "orphans"),
					 ef_verify_count(v, "cross_tenant") +
					 ef_verify_count(v, "cross_tenant_inbound"));
	if (!s || used >= n)
		return;
	if (s->sampled)
		used += (size_t)snprintf(buf + used, n - used, "; spot-check: %zu of %zu sampled "
					 "chunks retrieved themselves", s->hits, s->nqueries);
	else
		used += (size_t)snprintf(buf + used, n - used, "; spot-check: %zu queries, %s",
					 s->nqueries, s->retrieval_ok ? "each with citations"
					 : "some without citations");
	if (s->partial && used < n)
		snprintf(buf + used, n - used, ", partial: %.0f%% of the chunks have a vector",
			 s->coverage * 100);
}

void history_verify_now(struct app *app, const char *collection, char *buf, size_t n)
{
	struct ef_verify_report v;
	struct ef_error err;
	ef_session *s;

	ef_error_clear(&err);
	if (app_session(app, EF_NEED_TABLES, &s, &err) != EF_OK ||
	    ef_verify(s, collection, &v, &err) != EF_OK) {
		snprintf(buf, n, "could not verify (%s); run `embfill verify -C %s`", err.msg,
			 collection);
		return;
	}
	history_verification(&v, NULL, buf, n);
	ef_verify_report_free(&v);
}

static void settings_of(const struct app *app, struct ef_history_entry *h)
{
	const struct ef_config *c = app->cfg;

	h->provider = c->provider;
	h->url = c->embed_url;
	h->model = c->embed_model;
	h->dim = c->embed_dim;
	h->batch_size = c->batch_size;
	h->concurrency = c->concurrency;
	h->max_chunk_size = c->max_chunk_size;
	h->chunk_overlap = c->chunk_overlap;
}

char *history_run_entry(const struct app *app, const char *collection, const char *note,
			const struct ef_run_result *r, ef_status st, const char *command,
			const struct history_extras *x)
{
	struct ef_history_entry h;
	char outcome[160], left[64] = "";

	memset(&h, 0, sizeof(h));
	if (r->unconverged)
		snprintf(left, sizeof(left), "; did not converge: %lld chunks still to embed",
			 r->unconverged);
	snprintf(outcome, sizeof(outcome), "%s%s%s%s", r->state, r->resumed ? " (resumed)" : "",
		 st == EF_ERR_INTERRUPTED ? " (resumable)" : "", left);
	settings_of(app, &h);
	h.collection = collection;
	h.run_id = r->run_id;
	h.outcome = outcome;
	h.command = command;
	h.note = note;
	h.before = r->before;
	h.after = r->after;
	h.duration_s = r->elapsed_s;
	h.rate = r->rate;
	h.retries = r->retries;
	h.quarantined = r->after.quarantined;
	if (x) {
		h.verification = x->verification;
		h.spot_lines = x->spot_lines;
		h.nspot = x->nspot;
		h.accepted_warnings = x->accepted;
		h.naccepted = x->naccepted;
	}
	return ef_history_format(&h);
}

ef_status history_write(const struct app *app, const char *md, struct ef_error *err)
{
	return ef_history_prepend(app->cfg->historylog, md, err);
}

ef_status history_event(const struct app *app, const char *collection, const char *event,
			const char *outcome, const char *command, const char *verification,
			const struct ef_counts *before, const struct ef_counts *after,
			struct ef_error *err)
{
	struct ef_history_entry h;
	char *md;
	ef_status st;

	memset(&h, 0, sizeof(h));
	settings_of(app, &h);
	h.collection = collection;
	h.event = event;
	h.outcome = outcome;
	h.command = command;
	h.before = *before;
	h.after = *after;
	h.verification = verification;
	if (!(md = ef_history_format(&h)))
		return ef_error_oom(err, "writing the historylog");
	st = history_write(app, md, err);
	free(md);
	return st;
}
