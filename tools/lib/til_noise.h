/* til_noise: the robustness study of the paper (section 5.6.2) applied to a
 * training file: noisy positives injected, true positives turned negative.
 *
 * For a user with n training positives, c_u = round(ratio * n) (C round():
 * halves away from zero, computed in double).
 *   pos: c_u items the user has not interacted with (not in the training file
 *        nor in any excluded file, e.g. validation and test) are added as
 *        positives; if fewer candidates exist, all of them are added.
 *   neg: c_u of the user's training positives are removed, so that samplers
 *        can draw them as negatives; at least one positive is always kept
 *        (removal is capped at n - 1).
 *   pos+neg: both; the removed items are chosen among the original positives
 *        and the injected ones among the items the user never had.
 * The draws for user u come from til_rng_seed(seed, 2u) (removal) and
 * til_rng_seed(seed, 2u + 1) (injection), so they depend only on the seed and
 * the user's own records, and pos+neg injects exactly what pos injects and
 * removes exactly what neg removes. Injected records carry the noise marks
 * rating 0 and timestamp -1 in the columns the input has. */
#ifndef TIL_NOISE_H
#define TIL_NOISE_H

#include <stdint.h>

#include "til_inter.h"
#include "til_util.h"

enum { TIL_NOISE_POS = 1, TIL_NOISE_NEG = 2 };

#define TIL_NOISE_RATING 0.0f
#define TIL_NOISE_TS (-1)

typedef struct til_noise_opts {
    unsigned mode; /* TIL_NOISE_POS | TIL_NOISE_NEG */
    double ratio;  /* >= 0 */
    uint64_t seed;
} til_noise_opts;

typedef struct til_noise_stats {
    uint64_t users;          /* users with >= 1 training positive */
    uint64_t injected;       /* records added */
    uint64_t removed;        /* records removed */
    uint64_t users_pos_short; /* users with fewer candidates than c_u */
    uint64_t users_neg_capped; /* users whose removal was capped at n - 1 */
} til_noise_stats;

/* "pos", "neg" or "pos+neg" into a TIL_NOISE_* mask. */
int til_noise_parse_mode(const char *s, unsigned *mode, til_err *e);
/* c_u for n positives. */
uint64_t til_noise_count(double ratio, uint64_t n);

/* Applies the noise to train. exclude: n_exclude files of the same shape whose
 * items are never injected (may be NULL/0). Fills out (the noisy training
 * file), injected and removed (the added and removed pairs, same shape and
 * columns as train); all freed with til_inter_free. st may be NULL. */
int til_noise_run(const til_inter *train, const til_inter *const *exclude, int n_exclude, const til_noise_opts *o,
                  til_inter *out, til_inter *injected, til_inter *removed, til_noise_stats *st, til_err *e);

#endif
