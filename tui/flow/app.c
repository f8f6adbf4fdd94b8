/*
 * app.c (flow) - the session of the main thread and the embedding client's
 * configuration, the same for every command and for the console.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "embfill/redact.h"
#include "embfill/provenance.h"
#include "tui/flow/app.h"

ef_status app_session(struct app *app, unsigned need, ef_session **s, struct ef_error *err)
{
	*s = NULL;
	if (!app->session && ef_session_open(app->cfg, &app->session, err) != EF_OK)
		return err->status;
	if (ef_session_require(app->session, need, err) != EF_OK)
		return err->status;
	*s = app->session;
	return EF_OK;
}

void app_session_close(struct app *app)
{
	ef_session_close(app->session);
	app->session = NULL;
}

ef_status app_embed_config(struct app *app, struct ef_embed_config *ec, struct ef_error *err)
{
	const struct ef_config *c = app->cfg;

	ef_embed_config_defaults(ec);
	if (ef_embed_provider_parse(c->provider, &ec->provider, err) != EF_OK)
		return err->status;
	ec->url = c->embed_url;
	ec->model = c->embed_model;
	ec->dim = c->embed_dim;
	ec->ca_file = c->ca_file;
	ec->connect_timeout_ms = (long)c->connect_timeout_s * 1000;
	ec->timeout_ms = (long)c->timeout_s * 1000;
	ec->max_attempts = (unsigned)c->max_attempts;
	ec->encoding = ef_embed_encoding_from(c->encoding);
	ec->sw.dimensions = c->dimensions;
	ec->sw.truncate = c->truncate;
	ec->sw.normalize = c->normalize < 0 ? 0 : c->normalize ? 1 : -1;
	ec->api_key = c->api_key;
	if (!ec->api_key && c->api_key_file) {
		if (!app->key && ef_embed_read_key_file(c->api_key_file, &app->key, err) != EF_OK)
			return err->status;
		ef_redact_add_secret(app->key);
		ec->api_key = app->key;
	}
	return ef_embed_config_check(ec, err);
}

void app_free(struct app *app)
{
	app_session_close(app);
	if (app->key) {
		explicit_bzero(app->key, strlen(app->key));
		free(app->key);
		app->key = NULL;
	}
}

ef_status app_sample(const struct app *app, size_t *out, struct ef_error *err)
{
	const char *t = app->cli->sample;
	char *end;
	long n;

	*out = 0;
	if (!t)
		return EF_OK;
	errno = 0;
	n = strtol(t, &end, 10);
	if (errno || end == t || *end || n < 1 || n > EF_PROV_MAX_SAMPLE) {
		ef_error_set(err, EF_ERR_USAGE, "--sample \"%s\" is not a number of chunks from 1 "
			     "to %d", t, EF_PROV_MAX_SAMPLE);
		return ef_error_hint(err, "20 to 100 chunks tell recipes apart: --sample 50");
	}
	*out = (size_t)n;
	return EF_OK;
}
