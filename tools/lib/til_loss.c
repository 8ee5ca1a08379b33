/* til_loss: BPR. */
#include <math.h>

#include "til_loss.h"

void til_loss_bpr(const float *s_pos, const float *s_neg, const float *w, float scale, uint64_t lo, uint64_t hi,
                  float *loss, float *g_pos, float *g_neg)
{
    for (uint64_t b = lo; b < hi; b++) {
        float x = s_pos[b] - s_neg[b];     /* y_ui - y_uj */
        float wb = w ? w[b] : 1.0f;
        loss[b] = wb * til_softplus(-x);   /* -log sigmoid(x) */
        float g = -til_sigmoid(-x) * scale * wb; /* dl/dx */
        g_pos[b] = g;
        g_neg[b] = -g;
    }
}
