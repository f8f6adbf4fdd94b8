/*
 * service.h - what the sandbox embedding service does with one embed
 * request: refuse it, fail it on purpose, or answer it (perhaps wrongly on
 * purpose).  Independent of HTTP plumbing, which lives in server.c.
 */
#ifndef SBX_SERVICE_H
#define SBX_SERVICE_H

#include "api.h"
#include "config.h"
#include "stats.h"
#include "uselite.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct sbx_service sbx_service;

/* An embed request as it came off the wire. */
struct sbx_incoming {
	const char *body;               /* NUL-terminated */
	size_t len;
	bool too_big;                   /* body exceeded --max-body-bytes */
	const char *authorization;      /* header value, or NULL */
};

/*
 * cfg, ul (NULL for the hash backend) and stats must outlive the service.
 * Opens the --cache-dir; returns NULL with a message in err.
 */
sbx_service *sbx_service_new(const struct sbx_config *cfg, sbx_uselite *ul,
			     struct sbx_stats *stats, char *err, size_t errsz);
void sbx_service_free(sbx_service *svc);

/* True during the first --loading-seconds after the service was created. */
bool sbx_service_loading(const sbx_service *svc);

/* Fills r, which must start zeroed, with the answer to one embed request. */
void sbx_service_handle(sbx_service *svc, enum sbx_api api,
			const struct sbx_incoming *in, struct sbx_reply *r);

#endif
