/*
 * fixture.h - per-test schemas and settings files for the status and
 * schema tests, on either backend.
 */
#ifndef EMBFILL_TESTS_FIXTURE_H
#define EMBFILL_TESTS_FIXTURE_H

#include <cjson/cJSON.h>

#include "proc.h"
#include "testdb.h"

struct fx {
	enum backend b;
	char *schema;   /* the test's own schema for data tables */
	char *tool;     /* the test's own embfill schema */
	char *dir;      /* temp dir holding embfill.env */
	char *config;   /* path of the settings file */
};

/* Creates names and a settings file with the default mapping moved into
 * the test's schema, plus extra lines (may be NULL). */
void fx_init(struct fx *f, enum backend b, const char *extra_settings);
void fx_free(struct fx *f);

/* Runs embfill --config <file> args...; returns the exit code. */
int fx_run(struct fx *f, struct proc_result *r, const char *const *args);

/* SQL with every "@S" replaced by the quoted data schema and "@T" by the
 * quoted tool schema; runs it. */
void fx_sql(struct fx *f, const char *sql);
long long fx_ll(struct fx *f, const char *sql);
char *fx_text(struct fx *f, const char *sql);

/* Runs `status --json` (with extra args) and returns the parsed array;
 * fails the test unless it exits 0 with valid JSON. */
cJSON *fx_status(struct fx *f, const char *const *extra);

/* The object of one collection in a status array; fails when absent. */
cJSON *fx_row(cJSON *arr, const char *collection);
long long fx_num(cJSON *row, const char *field);

struct counts {
	long long chunks, embedded, missing, stale, stale_model, stale_dim, stale_content,
		orphans, cross_tenant, quarantined;
};

/* Asserts every field of a status row. */
void fx_expect(cJSON *arr, const char *collection, struct counts want);

#endif
