/*
 * urllist.c - EMBED_URL's list of endpoints: where it splits, what a
 * message shows of it, the hosts the registry records, and the settings'
 * check of every item.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "embfill/redact.h"
#include "embfill/registry.h"
#include "embfill/settings.h"
#include "embfill/strbuf.h"
#include "embfill/urllist.h"

Test(urllist, splits_at_commas_that_start_another_url)
{
	size_t n = 0;
	char **v = ef_url_list_split("http://gpu1:8080, https://gpu2/v1 ,http://x/a,b", &n);

	cr_assert_eq(n, 3);
	cr_assert_str_eq(v[0], "http://gpu1:8080");
	cr_assert_str_eq(v[1], "https://gpu2/v1");
	cr_assert_str_eq(v[2], "http://x/a,b", "a comma inside a URL split it");
	cr_assert_null(v[3]);
	ef_names_free(v);
	cr_assert_eq(ef_url_list_count("http://one"), 1);
	cr_assert_eq(ef_url_list_count(""), 1);
}

/* A password holding a comma is one URL: split there, half of the
 * password would be shown as a host. */
Test(urllist, a_comma_in_a_password_never_splits_it)
{
	char *shown = ef_redact_url("http://user:pa,ss@gpu1:8080/v1");

	cr_assert_eq(ef_url_list_count("http://user:pa,ss@gpu1:8080/v1"), 1);
	cr_assert_null(strstr(shown, "pa"), "%s", shown);
	cr_assert_null(strstr(shown, "ss@"), "%s", shown);
	free(shown);
}

Test(urllist, every_item_of_a_list_is_redacted)
{
	char *shown = ef_redact_url("http://u:secret1@gpu1:8080/?api_key=tok1,"
				    "https://u:secret2@gpu2:8443/v1");

	cr_assert_null(strstr(shown, "secret1"), "%s", shown);
	cr_assert_null(strstr(shown, "secret2"), "%s", shown);
	cr_assert_null(strstr(shown, "tok1"), "%s", shown);
	cr_assert(strstr(shown, "gpu1:8080"), "%s", shown);
	cr_assert(strstr(shown, "gpu2:8443"), "%s", shown);
	free(shown);
}

Test(urllist, hosts_of_a_list_each_once)
{
	char *h = ef_url_hosts("http://gpu1:8080,http://u:p@gpu2:8080/v1,http://gpu1:8080/x");

	cr_assert_str_eq(h, "gpu1:8080,gpu2:8080");
	free(h);
	cr_assert_null(ef_url_hosts("no url"));
}

/* One endpoint of the list on record is the same provider: servers were
 * added or taken away.  None on record is another provider. */
Test(urllist, a_list_that_keeps_a_recorded_host_is_the_same_service)
{
	cr_assert(ef_service_hosts_overlap("gpu1:8080", "gpu1:8080,gpu2:8080"));
	cr_assert(ef_service_hosts_overlap("gpu1:8080,gpu2:8080", "gpu2:9000"));
	cr_assert(!ef_service_hosts_overlap("gpu1:8080,gpu2:8080", "gpu3:8080,gpu4:8080"));
	cr_assert(!ef_service_hosts_overlap("", "gpu1:8080"));
}

static ef_status finish_with(const char *url, struct ef_error *err)
{
	ef_settings *s = ef_settings_new();
	ef_status st;

	cr_assert(s);
	ef_error_clear(err);
	st = ef_settings_set_flag(s, "EMBED_URL", url, "--set", err);
	if (st == EF_OK)
		st = ef_settings_finish(s, err);
	ef_settings_free(s);
	return st;
}

Test(urllist, settings_check_every_endpoint_and_name_the_bad_one)
{
	struct ef_error err;

	cr_assert_eq(finish_with("http://gpu1:8080,http://gpu2:8080", &err), EF_OK, "%s", err.msg);
	cr_assert_eq(finish_with("http://gpu1:8080,ftp://gpu2", &err), EF_ERR_USAGE);
	cr_assert_eq(finish_with("http://gpu1:8080, http://", &err), EF_ERR_USAGE);
	cr_assert(strstr(err.msg, "number 2 of 2"), "%s", err.msg);
	cr_assert(strstr(err.hint, "separated by commas"), "%s", err.hint);
}

Test(urllist, settings_refuse_more_endpoints_than_are_driven)
{
	struct ef_error err;
	char list[2048] = "";

	for (int i = 0; i <= EF_URL_LIST_MAX; i++)
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%shttp://h%d:80",
			 i ? "," : "", i);
	cr_assert_eq(finish_with(list, &err), EF_ERR_USAGE);
	cr_assert(strstr(err.msg, "more endpoints"), "%s", err.msg);
}
