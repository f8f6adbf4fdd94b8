/*
 * fuzz_url_list - EMBED_URL's list of endpoints: the split, the redaction
 * of each item, the hosts the registry records and their overlap.
 *
 * Input: one list.  Any violation aborts: an item that is not part of the
 * input, items that do not join back into the input, a host that keeps a
 * URL's userinfo, a list of hosts that does not overlap itself.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "embfill/redact.h"
#include "embfill/registry.h"
#include "embfill/strbuf.h"
#include "embfill/urllist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every item appears in the input, in order, and nothing but blanks and
 * the separating commas is lost. */
static void check_items(const char *in, char **items, size_t n)
{
	const char *at = in;
	size_t kept = 0, blanks = 0;

	for (size_t i = 0; i < n; i++) {
		const char *hit = *items[i] ? strstr(at, items[i]) : at;

		if (!hit)
			abort();
		at = hit + strlen(items[i]);
		kept += strlen(items[i]);
	}
	for (const char *p = in; *p; p++)
		blanks += *p == ' ' || *p == '\t' || *p == ',';
	if (kept + blanks < strlen(in) || n != ef_url_list_count(in))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1), **items, *shown, *hosts;
	size_t n = 0;

	if (!in)
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';
	items = ef_url_list_split(in, &n);
	if (items)
		check_items(in, items, n);
	ef_names_free(items);
	shown = ef_redact_url(in);
	hosts = ef_url_hosts(in);
	if (hosts && (strchr(hosts, '@') || !ef_service_hosts_overlap(hosts, hosts)))
		abort();
	free(shown);
	free(hosts);
	free(in);
	return 0;
}
