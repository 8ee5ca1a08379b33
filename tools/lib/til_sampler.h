/* til_sampler: the training triplets (u, i, j) of an epoch.
 *
 * Every training positive (u, i) is visited once per epoch in a shuffled order
 * (Fisher-Yates from a generator seeded with (seed, epoch)); each gets n_neg
 * negatives j drawn by the sampler kind, never a training positive of u
 * (rejection with til_inter_has). Negatives are drawn in fixed chunks of
 * TIL_SAMPLER_CHUNK positions, chunk c from a generator seeded with
 * (seed, epoch, c), in parallel: the epoch's triplets depend on (seed, epoch)
 * only, not on the thread count, and an epoch can be regenerated on resume.
 *
 * Kinds: uniform (now). Planned here: popularity (WBPR, item-count^a), adaptive
 * (AOBPR: rank-based on the current scores), PRIS (several importance-weighted
 * negatives per positive: j is then n x n_neg and a weight per negative). */
#ifndef TIL_SAMPLER_H
#define TIL_SAMPLER_H

#include <stdint.h>

#include "til_inter.h"
#include "til_util.h"

#define TIL_SAMPLER_CHUNK 4096u

enum { TIL_SAMPLER_UNIFORM = 0 };

/* Random-stream tags: every generator of the project is (seed, tag<<56 | ...). */
enum { TIL_STREAM_INIT = 1, TIL_STREAM_SHUFFLE = 2, TIL_STREAM_NEG = 3 };
static inline uint64_t til_stream(uint64_t tag, uint64_t epoch, uint64_t chunk)
{
    return (tag << 56) ^ (epoch << 24) ^ chunk;
}

struct til_rng;

typedef struct til_sampler {
    int kind;
    /* optional non-uniform proposal (WBPR's popularity alias): j = draw(draw_ctx, r),
     * still rejecting the user's positives; NULL = uniform */
    uint32_t (*draw)(const void *ctx, struct til_rng *r);
    const void *draw_ctx;
    int n_neg; /* negatives per positive (1) */
    const til_inter *train;
    uint64_t seed;
    uint32_t *pair_user; /* nnz: the user of each positive, CSR order */
    /* negatives reject the user's items in exclude (NULL: train); a superset of
     * train when training on part of the positives (TIL's --meta-holdout) */
    const til_inter *exclude;
} til_sampler;

typedef struct til_triplets {
    uint64_t n;            /* positives = triplets (n_neg = 1) */
    uint32_t *u, *i, *j;   /* n each (j: n x n_neg) */
} til_triplets;

/* Fails if a user has every item as a positive (no negative exists). */
int til_sampler_init(til_sampler *s, int kind, const til_inter *train, uint64_t seed, til_err *e);
void til_sampler_free(til_sampler *s);
int til_triplets_alloc(til_triplets *t, uint64_t n, int n_neg, til_err *e);
void til_triplets_free(til_triplets *t);
/* Fills t (allocated for train->nnz) with epoch `epoch`'s triplets. */
int til_sampler_epoch(til_sampler *s, uint64_t epoch, int threads, til_triplets *t, til_err *e);

#endif
