/*
 * stats.h - counters behind GET /stats, so tests can count retries exactly.
 */
#ifndef SBX_STATS_H
#define SBX_STATS_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#define SBX_STATUS_MAX 600

struct sbx_stats {
	pthread_mutex_t lock;
	unsigned long requests;                 /* embed requests answered */
	unsigned long items;                    /* inputs of 200 answers */
	unsigned long base64_requests;          /* requests asking for base64 vectors */
	unsigned long by_status[SBX_STATUS_MAX];
	unsigned long computed;                 /* inputs the backend embedded */
	unsigned long cached;                   /* inputs answered from --cache-dir */
	unsigned long computing;                /* requests computing now */
	unsigned long max_computing;            /* most at once since start or reset */
	unsigned long cache_vectors;            /* vectors in the cache */
	unsigned long by_path[3];               /* POSTs to /api/embed, /v1/embeddings,
						   /embed, whatever the answer */
};

void sbx_stats_init(struct sbx_stats *st);
void sbx_stats_destroy(struct sbx_stats *st);
void sbx_stats_record(struct sbx_stats *st, int status, size_t items, bool base64);
void sbx_stats_reset(struct sbx_stats *st);

/* Inputs of one request the backend computed and the cache answered. */
void sbx_stats_served(struct sbx_stats *st, size_t computed, size_t cached);

/* Around the compute of one request (its latency and the backend call). */
void sbx_stats_compute_begin(struct sbx_stats *st);
void sbx_stats_compute_end(struct sbx_stats *st);

void sbx_stats_cache_size(struct sbx_stats *st, size_t vectors);

/* One POST to the embed path of API api (enum sbx_api), answered or not. */
void sbx_stats_path(struct sbx_stats *st, int api);

/* {"requests":N,"by_status":{"200":n,...},"items":N,"base64_requests":N,
 * "computed":N,"cached":N,"computing":N,"max_computing":N,"cache_vectors":N,
 * "by_path":{"/api/embed":N,"/v1/embeddings":N,"/embed":N}};
 * caller frees. */
char *sbx_stats_json(struct sbx_stats *st);

#endif
