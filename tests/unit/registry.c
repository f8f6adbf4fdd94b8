/*
 * registry.c - the pure parts of registry.h: service hosts from URLs and
 * when two of them are the same service's.
 */
#include <stdlib.h>

#include <criterion/criterion.h>

#include "embfill/registry.h"

Test(lifecycle, url_host_keeps_the_port_and_drops_the_userinfo)
{
	char *h = ef_url_host("https://user:secret@embed.example.com:8443/v1?key=x");

	cr_assert_str_eq(h, "embed.example.com:8443");
	free(h);
	h = ef_url_host("http://127.0.0.1/api");
	cr_assert_str_eq(h, "127.0.0.1");
	free(h);
	h = ef_url_host("http://[::1]:11434");
	cr_assert_str_eq(h, "[::1]:11434");
	free(h);
	cr_assert_null(ef_url_host("not a url at all"));
}

Test(lifecycle, a_port_of_the_same_host_is_the_same_service)
{
	cr_assert(ef_same_service_host("127.0.0.1:8080", "127.0.0.1:9090"));
	cr_assert(ef_same_service_host("embed.example.com", "embed.example.com:443"));
	cr_assert(ef_same_service_host("[::1]:1", "[::1]:2"));
	cr_assert(!ef_same_service_host("127.0.0.1:8080", "localhost:8080"));
	cr_assert(!ef_same_service_host("embed-a.example.com", "embed-b.example.com"));
	cr_assert(!ef_same_service_host("[::1]:1", "[::2]:1"));
	cr_assert(!ef_same_service_host("embed.example.com", "embed.example.co"));
}
