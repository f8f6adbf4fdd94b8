/*
 * request.c (flow) - one run as the operator asked for it (request.h).
 */
#include <stdio.h>
#include <string.h>

#include "embfill/ident.h"
#include "tui/flow/command.h"
#include "tui/flow/request.h"

void request_from_cli(struct run_request *r, const struct cli *cli)
{
	memset(r, 0, sizeof(*r));
	r->collection = cli->collection;
	r->into = cli->into;
	r->rechunk = cli->rechunk;
	r->backup = cli->backup;
	r->rebuild_index = cli->rebuild_index;
	r->approve_provider = cli->approve_provider;
	r->retry_quarantined = cli->retry_quarantined;
	r->only_missing = cli->only != NULL;
	r->dry_run = cli->dry_run;
	r->resume = cli->resume;
	r->join = cli->join;
	r->until = cli->until;
	r->note = cli->note;
}

const char *request_target(const struct run_request *r)
{
	return r->into ? r->into : r->collection;
}

ef_status request_until(const char *s, time_t *out, struct ef_error *err)
{
	int h, m, sec = 0, n;
	char extra;
	time_t now = time(NULL);
	struct tm tm;

	*out = 0;
	if (!s || !*s)
		return EF_OK;
	n = sscanf(s, "%2d:%2d:%2d%c", &h, &m, &sec, &extra);
	if (!((n == 2 && strlen(s) == 5) || (n == 3 && strlen(s) == 8)) || h > 23 || m > 59 ||
	    sec > 59 || h < 0 || m < 0 || sec < 0) {
		ef_error_set(err, EF_ERR_USAGE, "the window's end \"%s\" is not a time of day", s);
		return ef_error_hint(err, "write it as HH:MM or HH:MM:SS in local time, e.g. 05:30");
	}
	localtime_r(&now, &tm);
	tm.tm_hour = h;
	tm.tm_min = m;
	tm.tm_sec = sec;
	*out = mktime(&tm);
	if (*out <= now)
		*out += 24 * 3600;
	return EF_OK;
}

static ef_status check_confirmation(const struct run_request *r, const char *confirm,
				    struct ef_error *err)
{
	if (!confirm) {
		ef_error_set(err, EF_ERR_USAGE, "the confirmation is missing: `embfill run` writes "
			     "only when the collection's name is typed twice; nothing was touched");
		return ef_error_hint(err, "add --confirm %s", r->collection);
	}
	if (strcmp(confirm, r->collection) != 0) {
		ef_error_set(err, EF_ERR_USAGE, "the confirmation \"%s\" differs from the collection "
			     "\"%s\"; nothing was touched", confirm, r->collection);
		return ef_error_hint(err, "type the exact collection name twice: -C %s --confirm %s",
				     r->collection, r->collection);
	}
	return EF_OK;
}

/* A joining worker takes the run as its first worker set it up: what
 * would set up another is refused, with the way to say what was meant. */
static ef_status check_join(const struct run_request *r, struct ef_error *err)
{
	const char *clash = r->resume ? "--resume" : r->into ? "--into" : r->backup ? "--backup"
			    : r->dry_run ? "--dry-run" : r->only_missing ? "--only"
			    : r->retry_quarantined ? "--retry-quarantined" : NULL;

	if (!r->join || !clash)
		return EF_OK;
	ef_error_set(err, EF_ERR_USAGE, "--join adds a worker to the run as its first worker "
		     "set it up, which %s would change; nothing was touched", clash);
	if (r->into)
		return ef_error_hint(err, "a run into a new collection is joined by its name: "
				     "embfill run -C %s --confirm %s --join", r->into, r->into);
	return ef_error_hint(err, "leave out %s: the run's own selection and backup apply to "
			     "every worker", clash);
}

ef_status request_check(const struct run_request *r, const char *confirm, struct ef_error *err)
{
	time_t deadline;

	if (!r->collection) {
		ef_error_set(err, EF_ERR_USAGE, "`embfill run` needs the collection: -C COLL");
		return ef_error_hint(err, "embfill run -C COLL --confirm COLL; `embfill status` "
					  "lists them");
	}
	if (ef_collection_name_check(r->collection, err) != EF_OK)
		return err->status;
	if (check_confirmation(r, confirm, err) != EF_OK)
		return err->status;
	if (r->rechunk && !r->into) {
		ef_error_set(err, EF_ERR_USAGE, "--rechunk cuts a new collection: it needs --into "
			     "NEWCOLL");
		return ef_error_hint(err, "embfill run -C %s --confirm %s --into NEWCOLL --rechunk",
				     r->collection, r->collection);
	}
	if (r->only_missing && r->into) {
		ef_error_set(err, EF_ERR_USAGE, "--only missing is for in-place runs: a new "
			     "collection made with --into has no vectors yet");
		return ef_error_hint(err, "leave out --only");
	}
	if (r->backup && r->into) {
		ef_error_set(err, EF_ERR_USAGE, "--backup is for in-place runs; --into leaves the "
			     "vectors of \"%s\" untouched", r->collection);
		return ef_error_hint(err, "leave out --backup: the old collection itself is the way "
					  "back");
	}
	if (check_join(r, err) != EF_OK)
		return err->status;
	return request_until(r->until, &deadline, err);
}

char *request_command(const struct app *app, const struct run_request *r)
{
	struct ef_strbuf b = EF_STRBUF_INIT;
	char num[16];

	command_start(&b, app, "run");
	command_flag(&b, "-C", r->collection);
	command_flag(&b, "--confirm", r->collection);
	snprintf(num, sizeof(num), "%d", app->cfg->batch_size);
	command_flag(&b, "--batch-size", num);
	snprintf(num, sizeof(num), "%d", app->cfg->concurrency);
	command_flag(&b, "--concurrency", num);
	command_flag(&b, "--into", r->into);
	if (r->into && r->rechunk)
		command_word(&b, "--rechunk");
	if (r->backup)
		command_word(&b, "--backup");
	if (r->rebuild_index)
		command_word(&b, "--rebuild-index");
	if (r->approve_provider)
		command_word(&b, "--approve-provider-change");
	if (r->retry_quarantined)
		command_word(&b, "--retry-quarantined");
	if (r->only_missing)
		command_flag(&b, "--only", "missing");
	if (r->dry_run)
		command_word(&b, "--dry-run");
	if (r->join)
		command_word(&b, "--join");
	command_flag(&b, "--until", r->until);
	command_flag(&b, "--note", r->note);
	return ef_strbuf_take(&b);
}

unsigned request_plan_flags(const struct run_request *r)
{
	return (r->retry_quarantined ? EF_PLAN_RETRY_QUARANTINED : 0u) |
	       (r->only_missing ? EF_PLAN_ONLY_MISSING : 0u);
}

ef_status request_run_opts(const struct run_request *r, const char *command,
			   struct ef_run_opts *o, struct ef_error *err)
{
	memset(o, 0, sizeof(*o));
	o->collection = request_target(r);
	o->source = r->into ? r->collection : NULL;
	o->resume = r->resume;
	o->dry_run = r->dry_run;
	o->retry_quarantined = r->retry_quarantined;
	o->only_missing = r->only_missing;
	o->backup = r->backup;
	o->rebuild_index = r->rebuild_index;
	o->approve_provider_change = r->approve_provider;
	o->join = r->join;
	o->note = r->note && *r->note ? r->note : NULL;
	o->command = command;
	return request_until(r->until, &o->deadline, err);
}
