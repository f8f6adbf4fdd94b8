/*
 * slots.c - a ticket queue: each request draws the next ticket and computes
 * once fewer than N tickets before it are still computing.  A plain counting
 * semaphore would let a late request overtake one that has waited longer
 * (pthread_cond_signal wakes any waiter); a GPU server's queue does not.
 */
#include "slots.h"

void sbx_slots_init(struct sbx_slots *s, long n)
{
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->turn, NULL);
	s->next = 0;
	s->admitted = (unsigned long)n;
}

void sbx_slots_destroy(struct sbx_slots *s)
{
	pthread_cond_destroy(&s->turn);
	pthread_mutex_destroy(&s->lock);
}

void sbx_slots_acquire(struct sbx_slots *s)
{
	unsigned long ticket;

	pthread_mutex_lock(&s->lock);
	ticket = s->next++;
	while (ticket >= s->admitted)
		pthread_cond_wait(&s->turn, &s->lock);
	pthread_mutex_unlock(&s->lock);
}

void sbx_slots_release(struct sbx_slots *s)
{
	pthread_mutex_lock(&s->lock);
	s->admitted++;
	pthread_cond_broadcast(&s->turn);
	pthread_mutex_unlock(&s->lock);
}
