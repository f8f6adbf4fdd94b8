/*
 * dice.h - reproducible fault decisions.
 */
#ifndef SBX_DICE_H
#define SBX_DICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Independent streams of one request, one per kind of decision. */
enum sbx_stream {
	SBX_DICE_500, SBX_DICE_429, SBX_DICE_MALFORMED, SBX_DICE_WRONG_DIM,
	SBX_DICE_NAN, SBX_DICE_WRONG_COUNT, SBX_DICE_SHUFFLE, SBX_DICE_DROP,
	SBX_DICE_ZERO, SBX_DICE_HUGE,
};

struct sbx_dice {
	uint64_t state;
};

/* Dice for stream of request number seq (0 for the first embed request). */
void sbx_dice_init(struct sbx_dice *d, uint64_t seed, uint64_t seq, enum sbx_stream stream);

/* Dice for the details of a fault once it hit (which item, which sign),
 * drawn apart from the hit itself so the two are not correlated. */
void sbx_dice_detail(struct sbx_dice *d, uint64_t seed, uint64_t seq, enum sbx_stream stream);

/* Uniform in [0, n); n > 0. */
size_t sbx_dice_below(struct sbx_dice *d, size_t n);

/* True with probability rate: never for 0, always for 1. */
bool sbx_dice_hit(uint64_t seed, uint64_t seq, enum sbx_stream stream, double rate);

#endif
