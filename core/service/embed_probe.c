/*
 * embed_probe.c - the two blocking calls of the embedding client: one
 * batch through a pool of one, and doctor's single-request probe.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/service/embed_http.h"
#include "embfill/recipe.h"

ef_status ef_embed_batch(const struct ef_embed_config *cfg, const char *const *texts,
			 size_t n, struct ef_embed_result **out, struct ef_error *err)
{
	ef_embed_pool *pool;
	ef_status st;

	*out = NULL;
	st = ef_embed_pool_new(cfg, 1, &pool, err);
	if (st != EF_OK)
		return st;
	st = ef_embed_pool_submit(pool, NULL, texts, n, err);
	while (st == EF_OK && !*out)
		st = ef_embed_pool_next(pool, -1, out, err);
	ef_embed_pool_free(pool);
	return st;
}

static ef_status probe_dim(const struct ef_embed_resolved *r, int wanted,
			   struct ef_embed_probe *out, struct ef_error *err)
{
	out->dim_matches = wanted == 0 || out->dim == wanted;
	if (out->dim_matches)
		return EF_OK;
	ef_error_set(err, EF_ERR_EMBED, "model \"%s\" at \"%s\" returns vectors of dimension %d, "
		     "EMBED_DIM is %d", r->model ? r->model : "", r->shown, out->dim, wanted);
	return ef_error_hint(err, "set EMBED_DIM=%d (a new collection: see `embfill plan`), or "
			     "set EMBED_MODEL to a model of dimension %d", out->dim, wanted);
}

/*
 * The probe takes the classifier's word, except that what the pool would
 * retry or split is an answer here: doctor reports, it does not insist.
 */
static ef_status probe_verdict(const struct ef_embed_resolved *r, int wanted,
			       const struct ef_embed_outcome *o, struct ef_embed_probe *out,
			       struct ef_error *err)
{
	if (o->action == EF_EMBED_ACT_OK) {
		out->dim = o->vec.dim;
		out->encoding = o->vec.encoding;
		out->base64_ignored = r->base64 && o->vec.encoding == EF_EMBED_ENC_FLOAT;
		return probe_dim(r, wanted, out, err);
	}
	ef_error_set(err, EF_ERR_EMBED, "%s", o->cause);
	if (o->hint[0])
		return ef_error_hint(err, "%s", o->hint);
	if (o->action == EF_EMBED_ACT_RETRY)
		return ef_error_hint(err, "the service may be starting, overloaded or down: "
				     "check it and run `embfill doctor` again");
	return ef_error_hint(err, "the service refused a one-line text: check EMBED_MODEL "
			     "and EMBED_PROVIDER");
}

/*
 * One request, one answer, no retry: doctor reports what it sees.  Only a
 * refusal of base64 under EMBED_ENCODING=auto is asked again, for numbers,
 * as a run would.
 */
static ef_status probe_once(struct ef_embed_resolved *r, int wanted, struct ef_embed_probe *out,
			    struct ef_error *err)
{
	static const char *const text[] = { "embfill probe: is the embedding service up?" };
	struct ef_embed_xfer x;
	struct ef_embed_exchange ex;
	struct ef_embed_outcome o;
	CURLcode rc;
	ef_status st;

	st = ef_embed_xfer_init(&x, r, text, 1, NULL, err);
	if (st != EF_OK)
		return st;
	rc = curl_easy_perform(x.easy);
	out->latency_ms = ef_embed_now_ms() - x.started_ms;
	ef_embed_xfer_exchange(&x, rc, r, 1, &ex);
	out->reachable = rc == CURLE_OK;
	out->http_status = ex.status;
	ef_embed_classify(&ex, &o);
	ef_embed_xfer_cleanup(&x);
	if (o.action == EF_EMBED_ACT_FALLBACK && !out->base64_refused) {
		out->base64_refused = 1;
		r->base64 = false;
		free(o.vec.data);
		return probe_once(r, wanted, out, err);
	}
	st = probe_verdict(r, wanted, &o, out, err);
	free(o.vec.data);
	return st;
}

/*
 * The route probe of a run, on endpoint i alone: a pool of one endpoint
 * verifies itself against its own /embed answer, and the probe texts go to
 * the OpenAI route as the run's start sends them.  A failure of the route
 * under EMBED_ENCODING=base64 is route_failed, with the reason in why
 * (under auto, a failure of the pool, such as the endpoint going away
 * between the probes, leaves /embed, and why says so).
 */
void ef_embed_probe_route(const struct ef_embed_config *cfg, size_t i, struct ef_embed_probe *out)
{
	struct ef_embed_config c = *cfg;
	char *one = ef_embed_url_at(cfg->url, i);
	ef_embed_pool *pool = NULL;
	struct ef_error err;

	ef_error_clear(&err);
	out->route_failed = 0;
	if (cfg->provider != EF_EMBED_TEI || out->dim <= 0) {
		free(one);
		return;
	}
	c.url = one;
	c.dim = out->dim;
	c.retry_budget_ms = 0;
	if (!one || ef_embed_pool_new(&c, 1, &pool, &err) != EF_OK) {
		snprintf(out->route.why, sizeof(out->route.why), "not probed: %.200s",
			 one ? err.msg : "out of memory");
	} else {
		ef_status st = ef_embed_pool_verify(pool, ef_embed_probe_texts, EF_EMBED_PROBE_TEXTS,
						    NULL, &err);

		ef_embed_pool_route(pool, 0, &out->route);
		if (st != EF_OK && !out->route.probed)
			snprintf(out->route.why, sizeof(out->route.why), "not probed: %.200s",
				 err.msg);
		out->route_failed = st != EF_OK && cfg->encoding == EF_EMBED_ENC_BASE64;
	}
	ef_embed_pool_free(pool);
	free(one);
}

/*
 * The expected dimension is set aside (0 accepts any), so that a service
 * of another dimension still reports the one it returns.
 */
ef_status ef_embed_probe(const struct ef_embed_config *cfg, struct ef_embed_probe *out,
			 struct ef_error *err)
{
	return ef_embed_probe_at(cfg, 0, out, err);
}

ef_status ef_embed_probe_at(const struct ef_embed_config *cfg, size_t i,
			    struct ef_embed_probe *out, struct ef_error *err)
{
	struct ef_embed_resolved r;
	ef_status st;
	int wanted;

	memset(out, 0, sizeof(*out));
	ef_error_clear(err);
	st = ef_embed_resolve_at(cfg, i, &r, err);
	if (st != EF_OK)
		return st;
	snprintf(out->endpoint, sizeof(out->endpoint), "%s", r.shown);
	wanted = r.dim;
	r.dim = 0;
	st = probe_once(&r, wanted, out, err);
	ef_embed_resolved_release(&r);
	out->route.native_ms = out->route.openai_ms = -1;
	out->route.cosine = -2;
	return st;
}

/* After the verification, every endpoint must have been compared: one that
 * stayed away was not. */
static ef_status all_compared(ef_embed_pool *pool, struct ef_error *err)
{
	struct ef_embed_endpoint_stat es[EF_EMBED_MAX_ENDPOINTS];
	size_t n = ef_embed_pool_endpoints(pool, es, EF_EMBED_MAX_ENDPOINTS);

	for (size_t k = 0; k < n; k++) {
		if (es[k].state == EF_EMBED_EP_UP)
			continue;
		ef_error_set(err, EF_ERR_EMBED, "embedding endpoint \"%s\" could not be compared "
			     "with the others: %s", es[k].url,
			     es[k].last_error[0] ? es[k].last_error : "no answer");
		return ef_error_hint(err, "`embfill doctor` probes each endpoint");
	}
	return EF_OK;
}

/*
 * One attempt per request is not enough to compare endpoints (a busy one
 * answers 429), so the pool's own retries apply, bounded by attempts: a
 * check must not wait out a retry budget.
 */
ef_status ef_embed_endpoints_agree(const struct ef_embed_config *cfg, const char *prefix,
				   struct ef_error *err)
{
	struct ef_embed_config c = *cfg;
	const char *texts[EF_EMBED_PROBE_TEXTS];
	char *owned[EF_EMBED_PROBE_TEXTS] = { NULL };
	ef_embed_pool *pool = NULL;
	ef_status st = EF_OK;

	ef_error_clear(err);
	if (ef_embed_endpoint_count(cfg) < 2)
		return EF_OK;
	c.retry_budget_ms = 0;
	for (int i = 0; i < EF_EMBED_PROBE_TEXTS; i++) {
		owned[i] = ef_recipe_apply(prefix, ef_embed_probe_texts[i]);
		texts[i] = owned[i];
		if (!owned[i])
			st = ef_error_oom(err, NULL);
	}
	if (st == EF_OK)
		st = ef_embed_pool_new(&c, 1, &pool, err);
	if (st == EF_OK)
		st = ef_embed_pool_verify(pool, texts, EF_EMBED_PROBE_TEXTS, NULL, err);
	if (st == EF_OK)
		st = all_compared(pool, err);
	ef_embed_pool_free(pool);
	for (int i = 0; i < EF_EMBED_PROBE_TEXTS; i++)
		free(owned[i]);
	return st;
}
