/*
 * dice.c - counter-based randomness: splitmix64 keyed by (seed, request
 * number, stream).
 *
 * A single PRNG under a mutex would make request k's faults depend on how
 * many numbers earlier requests happened to draw, and on which of two
 * concurrent requests took the lock first.  Keying the generator by the
 * request's arrival number instead gives the k-th request the same faults
 * for the same seed whatever else happened, and needs no lock: the only
 * shared state is the server's atomic request counter.
 */
#include "dice.h"

static uint64_t mix64(uint64_t z)
{
	z += 0x9e3779b97f4a7c15ULL;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void sbx_dice_init(struct sbx_dice *d, uint64_t seed, uint64_t seq, enum sbx_stream stream)
{
	d->state = mix64(mix64(mix64(seed) ^ seq) ^ (uint64_t)stream);
}

void sbx_dice_detail(struct sbx_dice *d, uint64_t seed, uint64_t seq, enum sbx_stream stream)
{
	d->state = mix64(mix64(mix64(seed) ^ seq) ^ ((uint64_t)stream | 0x100));
}

static uint64_t next(struct sbx_dice *d)
{
	d->state += 0x9e3779b97f4a7c15ULL;
	return mix64(d->state);
}

size_t sbx_dice_below(struct sbx_dice *d, size_t n)
{
	return (size_t)(next(d) % n);
}

bool sbx_dice_hit(uint64_t seed, uint64_t seq, enum sbx_stream stream, double rate)
{
	struct sbx_dice d;

	if (rate <= 0)
		return false;
	sbx_dice_init(&d, seed, seq, stream);
	return (double)(next(&d) >> 11) * 0x1.0p-53 < rate;
}
