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
	st->computed = 0;
	st->cached = 0;
	st->max_computing = st->computing;
	memset(st->by_path, 0, sizeof(st->by_path));
	pthread_mutex_unlock(&st->lock);
}

void sbx_stats_served(struct sbx_stats *st, size_t computed, size_t cached)
{
	pthread_mutex_lock(&st->lock);
	st->computed += computed;
	st->cached += cached;
	pthread_mutex_unlock(&st->lock);
}

void sbx_stats_compute_begin(struct sbx_stats *st)
{
	pthread_mutex_lock(&st->lock);
	if (++st->computing > st->max_computing)
		st->max_computing = st->computing;
	pthread_mutex_unlock(&st->lock);
}

void sbx_stats_compute_end(struct sbx_stats *st)
{
	pthread_mutex_lock(&st->lock);
	st->computing--;
	pthread_mutex_unlock(&st->lock);
}

void sbx_stats_cache_size(struct sbx_stats *st, size_t vectors)
{
	pthread_mutex_lock(&st->lock);
	st->cache_vectors = vectors;
	pthread_mutex_unlock(&st->lock);
}

void sbx_stats_path(struct sbx_stats *st, int api)
{
	pthread_mutex_lock(&st->lock);
	if (api >= 0 && api < 3)
		st->by_path[api]++;
	pthread_mutex_unlock(&st->lock);
}

static cJSON *path_object(const unsigned long *by_path)
{
	static const char *const paths[3] = { "/api/embed", "/v1/embeddings", "/embed" };
	cJSON *obj = cJSON_CreateObject();

	for (int i = 0; obj != NULL && i < 3; i++)
		cJSON_AddNumberToObject(obj, paths[i], (double)by_path[i]);
	return obj;
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
	struct sbx_stats c;
	cJSON *root = cJSON_CreateObject();
	char *out;

	pthread_mutex_lock(&st->lock);
	c = *st;	/* the copy's lock is never used */
	pthread_mutex_unlock(&st->lock);
	if (root == NULL)
		return NULL;
	cJSON_AddNumberToObject(root, "requests", (double)c.requests);
	cJSON_AddItemToObject(root, "by_status", status_object(c.by_status));
	cJSON_AddNumberToObject(root, "items", (double)c.items);
	cJSON_AddNumberToObject(root, "base64_requests", (double)c.base64_requests);
	cJSON_AddNumberToObject(root, "computed", (double)c.computed);
	cJSON_AddNumberToObject(root, "cached", (double)c.cached);
	cJSON_AddNumberToObject(root, "computing", (double)c.computing);
	cJSON_AddNumberToObject(root, "max_computing", (double)c.max_computing);
	cJSON_AddNumberToObject(root, "cache_vectors", (double)c.cache_vectors);
	cJSON_AddItemToObject(root, "by_path", path_object(c.by_path));
	out = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return out;
}
