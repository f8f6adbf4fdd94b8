/*
 * report.h (cli) - a list of findings on the command line: plain lines or
 * JSON, for doctor and schema check.
 */
#ifndef EMBFILL_TUI_CLI_REPORT_H
#define EMBFILL_TUI_CLI_REPORT_H

#include <stdbool.h>

#include "embfill/check.h"

/* "[ok]   what: detail" lines, with "hint:" under warnings and failures. */
void print_checklist(const struct ef_checklist *l, bool ascii);

/* The list as a JSON array of {level, what, detail, hint}; caller frees. */
char *checklist_json(const struct ef_checklist *l);

struct cJSON;
struct ef_prov_report;

/* The provenance probe's verdict, its worst examples and, when it failed,
 * the candidate recipes; model is the one tested. */
void print_provenance(const struct ef_prov_report *p, const char *model);

/* The same as an object for --json. */
struct cJSON *provenance_json(const struct ef_prov_report *p, const char *model);

/* A chunk key for JSON: a number when it is one integer column (as the
 * default layout's ids always were), else its text ("7/2", a uuid). */
struct cJSON *json_key(const char *key);

#endif
