/*
 * fuzz_embed_error - error bodies, their classification, and Retry-After.
 *
 * Input: byte 0 picks the provider, byte 1 the HTTP status (300 + b, so
 * 3xx to 555), byte 2 the batch size (1..8); the rest is the body,
 * which also serves as Retry-After and retry-after-ms header values.  The
 * message must come out as one printable line, the planted key must never
 * survive into a cause or hint, and a delay must stay within its cap.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/service/embed_classify.h"

#define KEY "sk-test-PLANTED-fuzz"
#define CAP 60000

static const enum ef_embed_provider providers[] = {
	EF_EMBED_OLLAMA, EF_EMBED_OPENAI, EF_EMBED_TEI,
};

static void check_line(const char *s, size_t size)
{
	const char *end = memchr(s, '\0', size);

	if (!end)
		abort();
	for (; s < end; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			abort();
}

static void check_outcome(const struct ef_embed_outcome *o, size_t n)
{
	if (strstr(o->cause, KEY) || strstr(o->hint, KEY))
		abort();
	if (o->action == EF_EMBED_ACT_OK || o->vec.data)
		abort();
	if (o->action == EF_EMBED_ACT_SPLIT && n < 2)
		abort();
	if (o->action == EF_EMBED_ACT_REJECT && n != 1)
		abort();
	if (o->retry_after_ms > CAP || o->retry_after_ms < -1)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ef_embed_err_info ei;
	struct ef_embed_outcome o;
	struct ef_embed_exchange x;
	char *text;

	if (size < 3)
		return 0;
	text = malloc(size - 2);
	if (!text)
		return 0;
	memcpy(text, data + 3, size - 3);
	text[size - 3] = '\0';
	ef_embed_parse_error(text, size - 3, &ei);
	check_line(ei.message, sizeof(ei.message));
	check_line(ei.type, sizeof(ei.type));
	x = (struct ef_embed_exchange){
		.provider = providers[data[0] % 3], .endpoint = "http://127.0.0.1:1/embed",
		.model = "m", .secret = KEY, .n = 1 + data[2] % 8, .dim = 4,
		.status = 300 + data[1], .body = text, .body_len = size - 3,
		.retry_after = text, .retry_after_ms = data[2] & 0x80 ? text : NULL,
		.retry_after_max_ms = CAP, .now = 1700000000, .dim_confirm = 2,
	};
	ef_embed_classify(&x, &o);
	check_outcome(&o, x.n);
	free(text);
	return 0;
}
