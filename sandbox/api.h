/*
 * api.h - the three embedding APIs the sandbox speaks: request parsing and
 * the exact shapes of their answers and errors.
 */
#ifndef SBX_API_H
#define SBX_API_H

#include <stdbool.h>
#include <stddef.h>

enum sbx_api { SBX_API_OLLAMA, SBX_API_OPENAI, SBX_API_TEI };

/* Conditions a request can fail with; each API words and codes them its way. */
enum sbx_cond {
	SBX_BAD_REQUEST, SBX_UNKNOWN_MODEL, SBX_UNAUTHORIZED, SBX_LOADING,
	SBX_INJECTED_500, SBX_RATE_LIMITED, SBX_FAIL_FIRST, SBX_BATCH_TOO_LARGE,
	SBX_CONTEXT_LENGTH, SBX_REJECTED, SBX_BACKEND_FAILED,
};

/* One HTTP answer, filled by the service and sent by the server. */
struct sbx_reply {
	int status;
	char *body;                     /* malloc'ed; NULL sends an empty body */
	size_t len;
	const char *content_type;
	char retry_after[24];           /* "" when absent */
	char retry_after_ms[24];
	bool auth_challenge;            /* add WWW-Authenticate: Bearer */
	const char *allow;              /* Allow header of a 405, or NULL */
	bool drop;                      /* send half the body, then abort */
	size_t items;                   /* inputs in the request */
	bool base64_asked;              /* openai "encoding_format":"base64" */
};

struct sbx_request {
	void *root;                     /* the parsed cJSON tree */
	const char *model;              /* NULL for TEI */
	const char **texts;             /* point into root */
	size_t n;
	bool base64;                    /* openai "encoding_format":"base64" */
};

/* What to put into a successful answer; faults are already decided. */
struct sbx_vectors {
	const float *data;              /* vector i at data + i * stride */
	size_t stride;
	size_t n;                       /* vectors to send */
	int dim;                        /* components to send per vector */
	const size_t *order;            /* openai: item k carries vector order[k]; NULL: in order */
	size_t nan_item, nan_pos;
	const char *nan_token;          /* NULL: no planted non-number */
	size_t prompt_tokens;
	const char *model;
	bool base64;                    /* openai: base64 of little-endian float32 */
};

/* Maps an embed path to its API; false for any other path. */
bool sbx_api_for_path(const char *url, enum sbx_api *api);

/*
 * Fills r with cond's error in api's shape.  status 0 takes the usual status
 * of cond for that API (TEI's 422 where the others say 413 or 400, ...).
 */
void sbx_api_error(struct sbx_reply *r, enum sbx_api api, enum sbx_cond cond, int status,
		   const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Sets a plain-text body, as a proxy in front of a service would send. */
void sbx_api_plain(struct sbx_reply *r, int status, const char *text);

/*
 * Parses an embed request body.  Returns 0, or -1 with r set to the API's
 * 400 answer.  Free req with sbx_request_free() either way.
 */
int sbx_api_parse(enum sbx_api api, const char *body, size_t len,
		  struct sbx_request *req, struct sbx_reply *r);

void sbx_request_free(struct sbx_request *req);

/* Fills r with a 200 answer holding v.  Returns 0, or -1 out of memory. */
int sbx_api_render(struct sbx_reply *r, enum sbx_api api, const struct sbx_vectors *v);

#endif
