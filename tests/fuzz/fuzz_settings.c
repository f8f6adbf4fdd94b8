/*
 * fuzz_settings - the dotenv reader and the validation behind it.
 *
 * Input: the bytes of a settings file.  It is read with
 * ef_settings_load_text() and, when that succeeds, validated with
 * ef_settings_finish().  Neither may crash; a failure must be a usage
 * error with a non-empty message (a reader's failure naming the file); a
 * success must give a config within the documented limits; and a file can
 * never supply EMBED_API_KEY.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "embfill/settings.h"

#define NAME "fuzz.env"

static void check_failure(ef_status st, const struct ef_error *err, bool reading)
{
	if (st != EF_ERR_USAGE || err->status != EF_ERR_USAGE)
		abort();
	if (!memchr(err->msg, '\0', sizeof(err->msg)) || err->msg[0] == '\0')
		abort();
	if (reading && strncmp(err->msg, NAME ":", strlen(NAME ":")) != 0)
		abort();
}

static bool is_one_of(const char *v, const char *a, const char *b, const char *c)
{
	return strcmp(v, a) == 0 || strcmp(v, b) == 0 || strcmp(v, c) == 0;
}

static void check_config(const struct ef_config *c)
{
	const struct ef_mapping *m;

	if (!c)
		abort();
	m = &c->map;
	if (!is_one_of(c->provider, "ollama", "openai", "tei"))
		abort();
	if (c->batch_size < 1 || c->batch_size > 10000 || c->embed_dim < 1 ||
	    c->embed_dim > 16000 || c->concurrency < 1 || c->max_attempts < 1 ||
	    c->timeout_s < 1 || c->connect_timeout_s < 1)
		abort();
	if (c->chunk_overlap < 0 || c->chunk_overlap >= c->max_chunk_size)
		abort();
	if (!(c->spotcheck_min_coverage >= 0 && c->spotcheck_min_coverage <= 1))
		abort();
	if (c->api_key || !*c->embed_model || !*c->historylog)
		abort();
	if ((m->layout == EF_LAYOUT_INLINE) != (m->embeddings == NULL))
		abort();
	if ((m->coll_mode == EF_COLL_LOOKUP) != (m->lookup != NULL))
		abort();
	if (!*m->chunks || !*m->chunk_id || !*m->emb_vector || strchr(m->chunk_id, '.') ||
	    (m->emb_run && (!*m->emb_run || strchr(m->emb_run, '.'))))
		abort();
}

static void display_all(const ef_settings *s)
{
	for (int k = 0; k < EF_K__COUNT; k++) {
		char origin[256];
		char *shown = ef_settings_display(s, (enum ef_key)k);

		free(shown);
		ef_settings_origin(s, (enum ef_key)k, origin, sizeof(origin));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ef_settings *s = ef_settings_new();
	struct ef_error err;
	ef_status st;

	if (!s)
		return 0;
	ef_error_clear(&err);
	st = ef_settings_load_text(s, NAME, (const char *)data, size, &err);
	if (ef_settings_origin_kind(s, EF_K_EMBED_API_KEY) != EF_FROM_DEFAULT)
		abort();
	if (st != EF_OK) {
		check_failure(st, &err, true);
	} else {
		if (err.status != EF_OK)
			abort();
		st = ef_settings_finish(s, &err);
		if (st != EF_OK) {
			check_failure(st, &err, false);
			if (ef_settings_config(s))
				abort();
		} else {
			check_config(ef_settings_config(s));
		}
	}
	display_all(s);
	ef_settings_free(s);
	return 0;
}
