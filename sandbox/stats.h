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
};

void sbx_stats_init(struct sbx_stats *st);
void sbx_stats_destroy(struct sbx_stats *st);
void sbx_stats_record(struct sbx_stats *st, int status, size_t items, bool base64);
void sbx_stats_reset(struct sbx_stats *st);

/* {"requests":N,"by_status":{"200":n,...},"items":N,"base64_requests":N};
 * caller frees. */
char *sbx_stats_json(struct sbx_stats *st);

#endif
