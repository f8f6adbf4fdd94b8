/*
 * report.c (cli) - findings on the command line (report.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "tui/cli/cli.h"
#include "embfill/provenance.h"
#include "tui/cli/report.h"

static const char *level_tag(enum ef_check_level l)
{
	switch (l) {
	case EF_CHECK_PASS:
		return "[ok]  ";
	case EF_CHECK_WARN:
		return "[warn]";
	default:
		return "[FAIL]";
	}
}

void print_checklist(const struct ef_checklist *l, bool ascii)
{
	(void)ascii;
	for (size_t i = 0; i < l->n; i++) {
		const struct ef_check *c = &l->items[i];

		out_printf(stdout, "%s %s: %s\n", level_tag(c->level), c->what, c->detail);
		if (c->hint[0] && c->level != EF_CHECK_PASS)
			out_printf(stdout, "       hint: %s\n", c->hint);
	}
}

char *checklist_json(const struct ef_checklist *l)
{
	static const char *const names[] = { "pass", "warn", "fail" };
	cJSON *arr = cJSON_CreateArray();
	char *text;

	for (size_t i = 0; arr && i < l->n; i++) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "level", names[l->items[i].level]);
		cJSON_AddStringToObject(o, "what", l->items[i].what);
		cJSON_AddStringToObject(o, "detail", l->items[i].detail);
		cJSON_AddStringToObject(o, "hint", l->items[i].hint);
		cJSON_AddItemToArray(arr, o);
	}
	text = cJSON_PrintUnformatted(arr);
	cJSON_Delete(arr);
	return text;
}

struct cJSON *json_key(const char *key)
{
	const char *p = key && *key == '-' ? key + 1 : key;
	size_t digits = p ? strspn(p, "0123456789") : 0;

	if (p && digits && digits <= 15 && !p[digits])
		return cJSON_CreateNumber(strtod(key, NULL));
	return cJSON_CreateString(key ? key : "");
}

/* --- provenance ------------------------------------------------------------ */

void print_provenance(const struct ef_prov_report *p, const char *model)
{
	if (!p->sampled) {
		out_printf(stdout, "provenance: no vector to sample\n");
		return;
	}
	out_printf(stdout, "provenance: %zu sampled chunks embedded again by \"%s\" with %s "
			   "(%s)\n", p->sampled, model, p->claimed_desc, p->claimed_id);
	out_printf(stdout, "  %zu of %zu match their stored vector (cosine %.4f or more; mean "
			   "%.4f, lowest %.4f)\n", p->matches, p->sampled, p->min_cosine,
		   p->mean_cosine, p->min_cosine_seen);
	for (size_t i = 0; i < p->nworst && !p->ok; i++)
		out_printf(stdout, "  lowest: chunk %s, cosine %.4f\n", p->worst[i].key,
			   p->worst[i].cosine);
	if (p->ok) {
		out_printf(stdout, "  verdict: made by this model and recipe\n");
		return;
	}
	out_printf(stdout, "  verdict: NOT made by this model and recipe\n");
	if (p->ncand <= 1)
		return;
	out_printf(stdout, "  candidates (mean cosine with the stored vectors, matches):\n");
	for (size_t i = 0; i < p->ncand; i++) {
		if (p->cand[i].mean_cosine < 0)
			out_printf(stdout, "    %-44s refused by the service\n", p->cand[i].name);
		else
			out_printf(stdout, "    %-44s %.4f  %zu/%zu%s\n", p->cand[i].name,
				   p->cand[i].mean_cosine, p->cand[i].matches, p->sampled,
				   p->cand[i].claimed ? "  (the settings')" : "");
	}
	if (p->cand[0].matches * 100 >= p->sampled * 95)
		out_printf(stdout, "  closest: %s, by %.4f over the next; set the settings to it "
				   "(EMBED_DOCUMENT_PREFIX, EMBED_DIMENSIONS) or re-embed into a new "
				   "collection\n", p->cand[0].name, p->margin);
	else
		out_printf(stdout, "  none of the model's recipes made them: another model, or "
				   "other weights behind this name\n");
}

struct cJSON *provenance_json(const struct ef_prov_report *p, const char *model)
{
	cJSON *o = cJSON_CreateObject(), *w, *c;

	cJSON_AddStringToObject(o, "model", model);
	cJSON_AddStringToObject(o, "recipe", p->claimed_id);
	cJSON_AddStringToObject(o, "recipe_description", p->claimed_desc);
	cJSON_AddNumberToObject(o, "sampled", (double)p->sampled);
	cJSON_AddNumberToObject(o, "matches", (double)p->matches);
	cJSON_AddNumberToObject(o, "share", p->share);
	cJSON_AddNumberToObject(o, "min_cosine", p->min_cosine);
	cJSON_AddNumberToObject(o, "mean_cosine", p->mean_cosine);
	cJSON_AddNumberToObject(o, "lowest_cosine", p->min_cosine_seen);
	cJSON_AddBoolToObject(o, "ok", p->ok);
	w = cJSON_AddArrayToObject(o, "lowest");
	for (size_t i = 0; i < p->nworst; i++) {
		cJSON *e = cJSON_CreateObject();

		cJSON_AddItemToObject(e, "chunk_id", json_key(p->worst[i].key));
		cJSON_AddNumberToObject(e, "cosine", p->worst[i].cosine);
		cJSON_AddItemToArray(w, e);
	}
	c = cJSON_AddArrayToObject(o, "candidates");
	for (size_t i = 0; i < p->ncand && !p->ok; i++) {
		cJSON *e = cJSON_CreateObject();

		cJSON_AddStringToObject(e, "recipe", p->cand[i].id);
		cJSON_AddStringToObject(e, "description", p->cand[i].name);
		cJSON_AddStringToObject(e, "document_prefix", p->cand[i].prefix);
		cJSON_AddNumberToObject(e, "dimensions", p->cand[i].recipe.dimensions);
		if (p->cand[i].mean_cosine < 0)
			cJSON_AddNullToObject(e, "mean_cosine");
		else
			cJSON_AddNumberToObject(e, "mean_cosine", p->cand[i].mean_cosine);
		cJSON_AddNumberToObject(e, "matches", (double)p->cand[i].matches);
		cJSON_AddBoolToObject(e, "settings", p->cand[i].claimed);
		cJSON_AddItemToArray(c, e);
	}
	if (!p->ok && p->ncand > 1)
		cJSON_AddNumberToObject(o, "margin", p->margin);
	return o;
}
