/*
 * stats.c - request counters.  The copy is taken under the lock and the
 * JSON is built from it afterwards, so /stats never holds up a request.
 */
#include "stats.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

void sbx_stats_init(struct sbx_stats *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_init(&st->lock, NULL);
}

void sbx_stats_destroy(struct sbx_stats *st)
{
	pthread_mutex_destroy(&st->lock);
}

void sbx_stats_record(struct sbx_stats *st, int status, size_t items, bool base64)
{
	pthread_mutex_lock(&st->lock);
	st->requests++;
	st->base64_requests += base64;
	if (status >= 0 && status < SBX_STATUS_MAX)
		st->by_status[status]++;
	if (status == 200)
		st->items += items;
	pthread_mutex_unlock(&st->lock);
}

void sbx_stats_reset(struct sbx_stats *st)
{
	pthread_mutex_lock(&st->lock);
	st->requests = 0;
	st->items = 0;
	st->base64_requests = 0;
	memset(st->by_status, 0, sizeof(st->by_status));
	pthread_mutex_unlock(&st->lock);
}

static cJSON *status_object(const unsigned long *by_status)
{
	cJSON *obj = cJSON_CreateObject();
	char key[8];

	for (int s = 0; obj != NULL && s < SBX_STATUS_MAX; s++) {
		if (by_status[s] == 0)
			continue;
		snprintf(key, sizeof(key), "%d", s);
		cJSON_AddNumberToObject(obj, key, (double)by_status[s]);
	}
	return obj;
}

char *sbx_stats_json(struct sbx_stats *st)
{
	unsigned long by_status[SBX_STATUS_MAX];
	unsigned long requests, items, base64;
	cJSON *root = cJSON_CreateObject();
	char *out;

	pthread_mutex_lock(&st->lock);
	requests = st->requests;
	items = st->items;
	base64 = st->base64_requests;
	memcpy(by_status, st->by_status, sizeof(by_status));
	pthread_mutex_unlock(&st->lock);
	if (root == NULL)
		return NULL;
	cJSON_AddNumberToObject(root, "requests", (double)requests);
	cJSON_AddItemToObject(root, "by_status", status_object(by_status));
	cJSON_AddNumberToObject(root, "items", (double)items);
	cJSON_AddNumberToObject(root, "base64_requests", (double)base64);
	out = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return out;
}
