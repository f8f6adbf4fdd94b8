/*
 * urllist.h - EMBED_URL's list of endpoints of one service:
 * "http://gpu1:8080,http://gpu2:8080".
 *
 * Items are separated by a comma that is followed (after blanks) by a
 * scheme, "http://" or "https://", so that a comma inside one URL (in a
 * path, or in a password of its userinfo) never splits it: a secret is
 * never cut in two and shown by halves.
 */
#ifndef EMBFILL_URLLIST_H
#define EMBFILL_URLLIST_H

#include <stddef.h>

/* The most endpoints one list may name. */
#define EF_URL_LIST_MAX 16

/*
 * The items of list, blanks around each trimmed, as a NULL-terminated
 * array the caller frees with ef_names_free() (strbuf.h); *n is their
 * number.  An empty list gives one empty item.  NULL when out of memory.
 */
char **ef_url_list_split(const char *list, size_t *n);

/* How many items list holds (at least 1). */
size_t ef_url_list_count(const char *list);

#endif
