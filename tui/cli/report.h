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
/* A chunk key for JSON: a number when it is one integer column (as the
 * default layout's ids always were), else its text ("7/2", a uuid). */
struct cJSON *json_key(const char *key);

#endif
