/* til_loss: per-triplet losses on scores, and their derivatives.
 *
 * A method (BPR now; TIL, T-CE, R-CE next) turns the scores of a batch of
 * triplets, s_pos[b] = y_ui and s_neg[b] = y_uj, and optional per-triplet
 * weights w[b] (TIL's w_uij; NULL = 1), into per-triplet losses and dL/dscore:
 *   loss[b] = w_b * l(s_pos, s_neg)
 *   g_pos[b] = scale * w_b * dl/ds_pos,  g_neg[b] = scale * w_b * dl/ds_neg
 * (scale = 1/B for a batch mean). Pointwise losses (BCE, T-CE, R-CE) use both
 * scores separately; pairwise ones (BPR) their difference.
 * BPR: x = s_pos - s_neg, l = -log sigmoid(x) = softplus(-x), computed stably
 * as max(-x, 0) + log1p(exp(-|x|)); dl/dx = -sigmoid(-x). */
#ifndef TIL_LOSS_H
#define TIL_LOSS_H

#include <math.h>
#include <stdint.h>

enum { TIL_LOSS_BPR = 0 };

/* softplus(z) = log(1 + e^z), stable for every z. */
static inline float til_softplus(float z) { return (z > 0 ? z : 0.0f) + log1pf(expf(-(z < 0 ? -z : z))); }
/* sigmoid(z) = 1 / (1 + e^-z), stable for every z. */
static inline float til_sigmoid(float z)
{
    if (z >= 0)
        return 1.0f / (1.0f + expf(-z));
    float ez = expf(z);
    return ez / (1.0f + ez);
}

/* Triplets [lo, hi) of a batch: fills loss, g_pos, g_neg (same indexing). */
void til_loss_bpr(const float *s_pos, const float *s_neg, const float *w, float scale, uint64_t lo, uint64_t hi,
                  float *loss, float *g_pos, float *g_neg);

#endif
