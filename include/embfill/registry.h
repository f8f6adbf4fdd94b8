/*
 * registry.h - what embfill records of each collection in its own
 * `collections` table: where its vectors live, and who made them.
 *
 * A collection whose vectors have another dimension than the live
 * embedding column keeps them in a table of its own (see lifecycle.h);
 * ef_coll_view() gives every core call the mapping and schema through
 * which to read a collection.  The provider and service host that made a
 * collection's vectors are recorded at every run that writes, so that a
 * change of provider is never silent.
 *
 * The registry needs only the database and the SQL fragments: it sits
 * below everything that counts, checks or changes a collection.
 */
#ifndef EMBFILL_REGISTRY_H
#define EMBFILL_REGISTRY_H

#include <stdbool.h>

#include "embfill/error.h"
#include "embfill/session.h"
#include "embfill/settings.h"

/*
 * The view of collection name: its own embedding table when the registry
 * names one that exists, else the mapping's.  Resolved once per session
 * (ef_session_forget_views() resolves again).  A registry that cannot be
 * read (embfill's tables not created yet, or of an older version) means
 * "no table of its own".
 */
ef_status ef_coll_view(ef_session *s, const char *name, struct ef_view *out,
		       struct ef_error *err);

/* The collections that keep their vectors in a table of their own;
 * NULL-terminated, caller frees with ef_names_free() (strbuf.h). */
ef_status ef_coll_own_tables(ef_session *s, char ***names, struct ef_error *err);

/* Who made a collection's embeddings. */
struct ef_origin {
	bool known;
	char provider[32];
	char host[256];          /* host[:port] of the service, no userinfo; several
				    endpoints' joined by commas */
	char model[256];
	int dim;
};

/* From embfill's collections table, else from the newest run that wrote
 * vectors; known is false when neither says. */
ef_status ef_coll_origin(ef_session *s, const char *name, struct ef_origin *o,
			 struct ef_error *err);

/* Records the settings' provider, service hosts (every endpoint's, see
 * ef_url_hosts), model and dimension as the origin of name's embeddings. */
ef_status ef_coll_record_origin(ef_session *s, const char *name, struct ef_error *err);

/* The same with another provider and URL list: a run that another process
 * started records the service its first worker used. */
ef_status ef_coll_record_origin_with(ef_session *s, const char *name, const char *provider,
				     const char *url, struct ef_error *err);

/*
 * EF_OK when cfg's provider is o's and its endpoints' hosts share one with
 * those on record, ports aside (or o is unknown); else EF_ERR_USAGE with a
 * message naming both and a hint to approve the change with
 * --approve-provider-change.
 */
ef_status ef_coll_check_provider(const struct ef_config *cfg, const char *name,
				 const struct ef_origin *o, struct ef_error *err);

/* host[:port] of a URL through libcurl's parser, without userinfo;
 * NULL when the URL does not parse.  Caller frees. */
char *ef_url_host(const char *url);

/* Whether two host[:port] name the same host: the port does not count, so
 * a service moved to another port of its host is no change of provider. */
bool ef_same_service_host(const char *a, const char *b);

/* host[:port] of every endpoint of an EMBED_URL list, each once, joined by
 * commas ("gpu1:8080,gpu2:8080"); NULL when none parses.  Caller frees. */
char *ef_url_hosts(const char *list);

/* Whether two such lists share a host, ports aside. */
bool ef_service_hosts_overlap(const char *recorded, const char *now);

#endif
