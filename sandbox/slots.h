/*
 * slots.h - a GPU's capacity: at most N requests compute at once, and the
 * others wait their turn in the order they came (--compute-slots).
 */
#ifndef SBX_SLOTS_H
#define SBX_SLOTS_H

#include <pthread.h>

struct sbx_slots {
	pthread_mutex_t lock;
	pthread_cond_t turn;
	unsigned long next;		/* tickets handed out */
	unsigned long admitted;		/* tickets below this may compute */
};

void sbx_slots_init(struct sbx_slots *s, long n);
void sbx_slots_destroy(struct sbx_slots *s);

/* Waits, first come first served, until a slot is free, and takes it. */
void sbx_slots_acquire(struct sbx_slots *s);

/* Gives the slot to the longest waiter. */
void sbx_slots_release(struct sbx_slots *s);

#endif
