/*
 * embed_route.c - the rules that choose a tei endpoint's route; see
 * embed_route.h.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/service/embed_route.h"
#include "embfill/embed.h"

const char *ef_embed_route_name(enum ef_embed_provider provider, enum ef_embed_route route)
{
	switch (provider) {
	case EF_EMBED_OLLAMA: return "/api/embed";
	case EF_EMBED_OPENAI: return "/v1/embeddings";
	case EF_EMBED_TEI:
		return route == EF_EMBED_ROUTE_OPENAI ? "OpenAI route /v1/embeddings, base64"
						      : "/embed, numbers";
	default: return "?";
	}
}

bool ef_embed_route_eligible(const struct ef_embed_switches *sw, char *why, size_t size)
{
	if (sw && sw->truncate) {
		snprintf(why, size, "EMBED_TRUNCATE=true: /v1/embeddings has no truncate switch");
		return false;
	}
	if (sw && sw->normalize < 0) {
		snprintf(why, size, "EMBED_NORMALIZE=false: /v1/embeddings always normalises");
		return false;
	}
	return true;
}

static double norm(const float *a, int dim)
{
	double aa = 0;

	for (int i = 0; i < dim; i++)
		aa += (double)a[i] * a[i];
	return sqrt(aa);
}

void ef_embed_route_compare(const float *a, const float *b, size_t n, int dim, double *cosine,
			    double *norm_dev)
{
	*cosine = 1;
	*norm_dev = 0;
	for (size_t i = 0; i < n; i++) {
		const float *x = a + i * (size_t)dim, *y = b + i * (size_t)dim;
		double na = norm(x, dim), nb = norm(y, dim), c = ef_embed_cosine(x, y, dim);
		double big = na > nb ? na : nb;
		double dev = big > 0 ? fabs(na - nb) / big : 0;

		if (c < *cosine)
			*cosine = c;
		if (dev > *norm_dev)
			*norm_dev = dev;
	}
}

bool ef_embed_route_slower(double openai_ms, double native_ms)
{
	return openai_ms > native_ms * 1.25 + 2.0;
}

static enum ef_embed_route_verdict keep(struct ef_embed_route_info *info, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static enum ef_embed_route_verdict keep(struct ef_embed_route_info *info, const char *fmt, ...)
{
	va_list ap;

	info->route = EF_EMBED_ROUTE_NATIVE;
	va_start(ap, fmt);
	vsnprintf(info->why, sizeof(info->why), fmt, ap);
	va_end(ap);
	return EF_EMBED_ROUTE_KEEP;
}

/* A 2xx whose content cannot be used, or a status the route does not give. */
static enum ef_embed_route_verdict not_usable(const struct ef_embed_route_evidence *ev,
					      struct ef_embed_route_info *info)
{
	const struct ef_embed_outcome *o = ev->o;

	if (o->action == EF_EMBED_ACT_FALLBACK)
		return keep(info, "/v1/embeddings refuses base64 (HTTP %ld)", ev->status);
	if (ev->status >= 200 && ev->status < 300)
		return keep(info, "/v1/embeddings gave an unusable answer: %.180s", o->cause);
	return keep(info, "/v1/embeddings answered HTTP %ld", ev->status);
}

enum ef_embed_route_verdict ef_embed_route_judge(const struct ef_embed_route_evidence *ev,
						 struct ef_embed_route_info *info)
{
	const struct ef_embed_outcome *o = ev->o;
	double cosine, dev;

	info->cosine = -2;
	if (!ev->answered)
		return keep(info, "/v1/embeddings did not answer: %.180s",
			    ev->net_msg ? ev->net_msg : "no answer");
	if (o->action != EF_EMBED_ACT_OK || !o->vec.data)
		return not_usable(ev, info);
	if (o->vec.encoding != EF_EMBED_ENC_BASE64)
		return keep(info, "/v1/embeddings answered numbers, not base64");
	ef_embed_route_compare(ev->native, o->vec.data, ev->n, ev->dim, &cosine, &dev);
	info->cosine = cosine;
	if (cosine < EF_EMBED_ROUTE_COSINE)
		return keep(info, "/v1/embeddings does not give /embed's vectors (cosine %.4f, at "
			    "least %.4f expected)", cosine, EF_EMBED_ROUTE_COSINE);
	if (dev > EF_EMBED_ROUTE_NORM)
		return keep(info, "/v1/embeddings does not give /embed's vectors (norms %.2g %% "
			    "apart: another normalisation)", dev * 100);
	if (ev->setting != EF_EMBED_ENC_BASE64 && ef_embed_route_slower(ev->openai_ms, ev->native_ms)) {
		if (!ev->last_round)
			return EF_EMBED_ROUTE_AGAIN;
		return keep(info, "/v1/embeddings gives the same vectors but is slower: probe %.1f ms "
			    "vs %.1f ms on /embed", ev->openai_ms, ev->native_ms);
	}
	info->route = EF_EMBED_ROUTE_OPENAI;
	snprintf(info->why, sizeof(info->why), "same vectors as /embed, probe %.1f ms vs %.1f ms "
		 "on /embed", ev->openai_ms, ev->native_ms);
	return EF_EMBED_ROUTE_TAKE;
}
