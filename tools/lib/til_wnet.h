/* til_wnet: the TIL weight generator f(s; Lambda) (paper eq. 3).
 *
 *   a = W1 s + b1          W1: hidden x in, b1: hidden      (in = 2d)
 *   z = relu(a)
 *   o = W2 z + b2          W2: 1 x hidden,  b2: 1
 *   w = sigmoid(o)         one importance weight per triplet state s
 *
 * All parameters live in one contiguous float vector (W1 | b1 | W2 | b2, each
 * row-major) so that an optimiser (Adam) can treat Lambda as a single flat
 * vector; gradients use the same layout. Initialisation is Xavier-uniform
 * (U(-a, a), a = sqrt(6 / (fan_in + fan_out))) from a seeded til_rng, biases 0.
 *
 * The forward pass keeps what the backward pass needs (z and w) in a
 * til_wnet_cache sized for a maximum batch. The backward pass ADDS into the
 * caller's gradient vector (the caller zeroes it); it does not produce dL/ds:
 * TIL treats the states as constants.
 *
 * til_wnet_forward/backward use cblas_sgemm when built with TIL_HAVE_BLAS and
 * fall back to the plain loops otherwise; with BLAS the forward runs as
 * TIL_WNET_CHUNKS fixed row blocks (til_par_range) and the backward's gemm as
 * two fixed column blocks of W1, spread over c->threads threads (each gemm
 * call the same whatever the thread count: the results do not depend on it;
 * the caller keeps OpenBLAS itself on one thread); the *_ref versions are always the plain
 * loops (the oracle the tests compare the BLAS path against). */
#ifndef TIL_WNET_H
#define TIL_WNET_H

#include <stddef.h>
#include <stdint.h>

#include "til_util.h"

enum { TIL_WNET_CHUNKS = 4 };

typedef struct til_wnet {
    int in, hidden;
    size_t n_params;          /* hidden*in + hidden + hidden + 1 */
    float *params;            /* n_params, owned */
    float *W1, *b1, *W2, *b2; /* views into params: hidden x in, hidden, 1 x hidden, 1 */
} til_wnet;

typedef struct til_wnet_cache {
    int cap, hidden;
    float *z;  /* cap x hidden: relu(W1 s + b1) of the last forward */
    float *w;  /* cap: sigmoid outputs of the last forward */
    float *dz; /* cap x hidden: backward scratch */
    int threads; /* til_wnet_forward/backward's threads (0 or 1: the caller's only); the
                  * results do not depend on it (fixed chunks, see below) */
} til_wnet_cache;

/* Offsets of the four blocks inside params (and inside a gradient vector). */
static inline size_t til_wnet_off_W1(const til_wnet *m) { (void)m; return 0; }
static inline size_t til_wnet_off_b1(const til_wnet *m) { return (size_t)m->hidden * (size_t)m->in; }
static inline size_t til_wnet_off_W2(const til_wnet *m) { return til_wnet_off_b1(m) + (size_t)m->hidden; }
static inline size_t til_wnet_off_b2(const til_wnet *m) { return til_wnet_off_W2(m) + (size_t)m->hidden; }

/* Allocates and Xavier-initialises a network with input size `in` (2d for TIL)
 * and `hidden` units (d in the paper). Draws come from til_rng stream 0x7731 of
 * `seed`. Returns 0 or -1. */
int til_wnet_init(til_wnet *m, int in, int hidden, uint64_t seed, til_err *e);
void til_wnet_free(til_wnet *m);
/* (A checkpoint restores Lambda by copying n_params floats into m->params.) */

/* Scratch for batches of up to cap states. */
int til_wnet_cache_init(til_wnet_cache *c, const til_wnet *m, int cap, til_err *e);
void til_wnet_cache_free(til_wnet_cache *c);

/* S: n x in (row-major states) -> w: n weights in (0, 1) (w may be c->w).
 * Fills c->z and c->w. Requires n <= c->cap. */
void til_wnet_forward(const til_wnet *m, til_wnet_cache *c, const float *S, int n, float *w);
void til_wnet_forward_ref(const til_wnet *m, til_wnet_cache *c, const float *S, int n, float *w);

/* dw: n values dJ/dw_k, S: n x in (the states of the last forward, which must
 * have been on these n states with this cache) -> grad (n_params, layout of
 * params) += dJ/dLambda. */
void til_wnet_backward(const til_wnet *m, til_wnet_cache *c, const float *S, int n, const float *dw, float *grad);
void til_wnet_backward_ref(const til_wnet *m, til_wnet_cache *c, const float *S, int n, const float *dw,
                           float *grad);

#endif
