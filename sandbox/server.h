/*
 * server.h - the HTTP side of the sandbox embedder, on libmicrohttpd.
 */
#ifndef SBX_SERVER_H
#define SBX_SERVER_H

#include "config.h"
#include "uselite.h"

#include <stddef.h>

typedef struct sbx_server sbx_server;

/*
 * Listens on 127.0.0.1:cfg->port (0 picks a free port) and serves from
 * threads of its own until sbx_server_stop().  cfg and ul (NULL for the
 * hash backend) must outlive the server.  Returns NULL with err set.
 */
sbx_server *sbx_server_start(const struct sbx_config *cfg, sbx_uselite *ul,
			     char *err, size_t errsz);

/* The port actually bound. */
int sbx_server_port(const sbx_server *srv);

/* Stops accepting, waits for requests in flight, frees srv. */
void sbx_server_stop(sbx_server *srv);

#endif
