/* til_rng: seeded pseudo-random generators, one per thread.
 *
 * xoshiro256** seeded through splitmix64 from (seed, stream): stream is the
 * thread index or a purpose tag, so the same seed and thread count give the
 * same draws whatever the scheduling. The state is plain data: it can be
 * saved in a checkpoint and restored bit for bit. */
#ifndef TIL_RNG_H
#define TIL_RNG_H

#include <stdint.h>

typedef struct til_rng {
    uint64_t s[4];
} til_rng;

void til_rng_seed(til_rng *r, uint64_t seed, uint64_t stream);
uint64_t til_rng_u64(til_rng *r);
/* Uniform integer in [0, n), n >= 1, unbiased (Lemire's method). */
uint64_t til_rng_below(til_rng *r, uint64_t n);
/* Uniform double in [0, 1) with 53 random bits. */
double til_rng_uniform(til_rng *r);
/* Standard normal (Box-Muller, no cached second value: stateless beyond s). */
double til_rng_normal(til_rng *r);
/* Fisher-Yates shuffle of n uint32 values. */
void til_rng_shuffle_u32(til_rng *r, uint32_t *a, uint64_t n);

#endif
