/* wnet_ref.h: the TIL weight network (til_wnet.h: w = sigmoid(W2 relu(W1 s +
 * b1) + b2)) in double, for the unit tests (header-only). */
#ifndef WNET_REF_H
#define WNET_REF_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

/* w[k] for the n states S (n x in floats); parameters L in til_wnet's layout
 * (W1 | b1 | W2 | b2) */
static void ref_wnet(const double *L, int in, int hidden, const float *S, uint64_t n, double *w)
{
    const double *W1 = L, *b1 = W1 + (size_t)hidden * in, *W2 = b1 + hidden, *b2 = W2 + hidden;
    for (uint64_t k = 0; k < n; k++) {
        double o = b2[0];
        for (int j = 0; j < hidden; j++) {
            double a = b1[j];
            for (int c = 0; c < in; c++)
                a += W1[(size_t)j * in + c] * S[k * in + c];
            o += W2[j] * (a > 0 ? a : 0);
        }
        w[k] = 1 / (1 + exp(-o));
    }
}

#endif
