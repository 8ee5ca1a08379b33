/* til_wnet: the TIL weight generator, forward and backward, BLAS and reference. */
#include "til_wnet.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "til_device.h"
#include "til_par.h"
#include "til_rng.h"

#ifdef TIL_HAVE_BLAS
#include <cblas.h>
#endif

int til_wnet_init(til_wnet *m, int in, int hidden, uint64_t seed, til_err *e)
{
    memset(m, 0, sizeof *m);
    if (in < 1 || hidden < 1)
        return til_seterr(e, "weight network: input %d and hidden %d must be >= 1", in, hidden);
    m->in = in;
    m->hidden = hidden;
    m->n_params = (size_t)hidden * (size_t)in + 2 * (size_t)hidden + 1;
    m->params = til_aligned_calloc(m->n_params, sizeof *m->params, e);
    if (!m->params)
        return til_errctx(e, "weight network");
    m->W1 = m->params + til_wnet_off_W1(m);
    m->b1 = m->params + til_wnet_off_b1(m);
    m->W2 = m->params + til_wnet_off_W2(m);
    m->b2 = m->params + til_wnet_off_b2(m);
    til_rng r;
    til_rng_seed(&r, seed, 0x7731);
    /* Xavier-uniform: U(-a, a), a = sqrt(6 / (fan_in + fan_out)); biases stay 0 */
    double a1 = sqrt(6.0 / (in + hidden)), a2 = sqrt(6.0 / (hidden + 1));
    for (size_t k = 0; k < (size_t)hidden * (size_t)in; k++)
        m->W1[k] = (float)((2 * til_rng_uniform(&r) - 1) * a1);
    for (int k = 0; k < hidden; k++)
        m->W2[k] = (float)((2 * til_rng_uniform(&r) - 1) * a2);
    return 0;
}

void til_wnet_free(til_wnet *m)
{
    free(m->params);
    memset(m, 0, sizeof *m);
}

int til_wnet_cache_init(til_wnet_cache *c, const til_wnet *m, int cap, til_err *e)
{
    memset(c, 0, sizeof *c);
    if (cap < 1)
        return til_seterr(e, "weight network cache: capacity %d must be >= 1", cap);
    size_t nz = (size_t)cap * (size_t)m->hidden;
    /* one allocation, three arrays carved out */
    float *p = til_aligned_calloc(2 * nz + (size_t)cap, sizeof *p, e);
    if (!p)
        return til_errctx(e, "weight network cache");
    c->cap = cap;
    c->hidden = m->hidden;
    c->z = p;
    c->dz = p + nz;
    c->w = p + 2 * nz;
    return 0;
}

void til_wnet_cache_free(til_wnet_cache *c)
{
    free(c->z);
    memset(c, 0, sizeof *c);
}

static inline float sigmoidf_(float x)
{
    /* stable for large |x| */
    if (x >= 0)
        return 1.0f / (1.0f + expf(-x));
    float t = expf(x);
    return t / (1.0f + t);
}

/* relu in place on z[h] (also maps NaN to 0: none expected), 16-wide chunks so
 * that gcc -O2 vectorises it */
static inline void relu_row(float *restrict z, int h)
{
    int t = 0;
    for (; t + 16 <= h; t += 16)
        for (int l = 0; l < 16; l++)
            z[t + l] = z[t + l] > 0 ? z[t + l] : 0.0f;
    for (; t < h; t++)
        z[t] = z[t] > 0 ? z[t] : 0.0f;
}

/* z: n x h = relu(a), o = W2 z + b2, w = sigmoid(o) (shared tail of both paths) */
static void head(const til_wnet *m, til_wnet_cache *c, int n, float *w)
{
    const int h = m->hidden;
    for (int k = 0; k < n; k++) {
        float *z = c->z + (size_t)k * h;
        relu_row(z, h);
        /* W2 . z by til_dot's 16 lanes: the serial float sum cost an add latency per
         * hidden unit per triplet, twice per step (~40 ms of a TIL epoch) */
        float o = m->b2[0] + til_dot_hd(m->W2, z, h);
        c->w[k] = sigmoidf_(o);
        w[k] = c->w[k];
    }
}

void til_wnet_forward_ref(const til_wnet *m, til_wnet_cache *c, const float *S, int n, float *w)
{
    const int h = m->hidden, in = m->in;
    for (int k = 0; k < n; k++) {
        const float *s = S + (size_t)k * in;
        float *z = c->z + (size_t)k * h;
        for (int t = 0; t < h; t++) {
            /* a_t = W1[t,:] . s + b1[t] */
            const float *wr = m->W1 + (size_t)t * in;
            float a = 0;
            for (int q = 0; q < in; q++)
                a += wr[q] * s[q];
            z[t] = a + m->b1[t];
        }
    }
    head(m, c, n, w);
}

#ifdef TIL_HAVE_BLAS
typedef struct {
    const til_wnet *m;
    til_wnet_cache *c;
    const float *S, *dz;
    float *w, *gW1;
    int n;
} wjob;

/* row blocks [lo, hi) of TIL_WNET_CHUNKS: Z = b1 broadcast, Z += S W1^T, head */
static void fwd_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    (void)part;
    wjob *j = ctx;
    const til_wnet *m = j->m;
    const int h = m->hidden, in = m->in;
    for (uint64_t q = lo; q < hi; q++) {
        uint64_t r0, r1;
        til_par_range((uint64_t)j->n, TIL_WNET_CHUNKS, (int)q, &r0, &r1);
        int nr = (int)(r1 - r0);
        if (nr <= 0)
            continue;
        float *z = j->c->z + r0 * (size_t)h;
        for (int k = 0; k < nr; k++)
            memcpy(z + (size_t)k * h, m->b1, (size_t)h * sizeof(float));
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nr, h, in, 1.0f, j->S + r0 * (size_t)in, in, m->W1, in,
                    1.0f, z, h);
        til_wnet_cache cc = *j->c; /* head on these rows */
        cc.z = z;
        cc.w = j->c->w + r0;
        head(m, &cc, nr, j->w + r0);
    }
}

/* column blocks of gW1 (two halves of in): gW1[:, blk] += dA^T S[:, blk] */
static void bwd_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    (void)part;
    wjob *j = ctx;
    const int h = j->m->hidden, in = j->m->in;
    for (uint64_t q = lo; q < hi; q++) {
        uint64_t c0, c1;
        til_par_range((uint64_t)in, 2, (int)q, &c0, &c1);
        if (c1 > c0)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, h, (int)(c1 - c0), j->n, 1.0f, j->dz, h, j->S + c0,
                        in, 1.0f, j->gW1 + c0, in);
    }
}
#endif

void til_wnet_forward(const til_wnet *m, til_wnet_cache *c, const float *S, int n, float *w)
{
#ifdef TIL_HAVE_BLAS
    if (n <= 0)
        return;
    wjob j = {m, c, S, NULL, w, NULL, n};
    til_par_for(c->threads > 1 ? TIL_MIN(c->threads, TIL_WNET_CHUNKS) : 1, TIL_WNET_CHUNKS, fwd_part, &j);
#else
    til_wnet_forward_ref(m, c, S, n, w);
#endif
}

/* do_k = dw_k w_k (1 - w_k); grad W2 += do z, b2 += sum do; dz = do W2 masked by
 * relu'. Leaves dA (n x h) in c->dz; shared by both paths. */
static inline void head_back_row(float *restrict gW2, float *restrict dz, const float *restrict z,
                                 const float *restrict W2, float dout, int h)
{
    int t = 0;
    for (; t + 16 <= h; t += 16)
        for (int l = 0; l < 16; l++) {
            float v = dout * W2[t + l]; /* unconditional: lets gcc vectorise (same values) */
            gW2[t + l] += dout * z[t + l];
            dz[t + l] = z[t + l] > 0 ? v : 0.0f;
        }
    for (; t < h; t++) {
        gW2[t] += dout * z[t];
        dz[t] = z[t] > 0 ? dout * W2[t] : 0.0f;
    }
}

static void head_back(const til_wnet *m, til_wnet_cache *c, int n, const float *dw, float *grad)
{
    const int h = m->hidden;
    float *gW2 = grad + til_wnet_off_W2(m), *gb2 = grad + til_wnet_off_b2(m);
    for (int k = 0; k < n; k++) {
        float wk = c->w[k];
        float dout = dw[k] * wk * (1 - wk);
        gb2[0] += dout;
        head_back_row(gW2, c->dz + (size_t)k * h, c->z + (size_t)k * h, m->W2, dout, h);
    }
}

void til_wnet_backward_ref(const til_wnet *m, til_wnet_cache *c, const float *S, int n, const float *dw,
                           float *grad)
{
    const int h = m->hidden, in = m->in;
    head_back(m, c, n, dw, grad);
    float *gW1 = grad + til_wnet_off_W1(m), *gb1 = grad + til_wnet_off_b1(m);
    /* gW1 (h x in) += dA^T (h x n) . S (n x in); gb1 += column sums of dA */
    for (int k = 0; k < n; k++) {
        const float *s = S + (size_t)k * in;
        const float *da = c->dz + (size_t)k * h;
        for (int t = 0; t < h; t++) {
            if (da[t] == 0)
                continue;
            float *g = gW1 + (size_t)t * in;
            for (int q = 0; q < in; q++)
                g[q] += da[t] * s[q];
            gb1[t] += da[t];
        }
    }
}

/* g += x, 16-wide chunks (vectorised at -O2; element-wise: bit-identical) */
static inline void add_row(float *restrict g, const float *restrict x, int h)
{
    int t = 0;
    for (; t + 16 <= h; t += 16)
        for (int l = 0; l < 16; l++)
            g[t + l] += x[t + l];
    for (; t < h; t++)
        g[t] += x[t];
}

void til_wnet_backward(const til_wnet *m, til_wnet_cache *c, const float *S, int n, const float *dw, float *grad)
{
#ifdef TIL_HAVE_BLAS
    const int h = m->hidden;
    if (n <= 0)
        return;
    head_back(m, c, n, dw, grad);
    float *gW1 = grad + til_wnet_off_W1(m), *gb1 = grad + til_wnet_off_b1(m);
    wjob j = {m, c, S, c->dz, NULL, gW1, n};
    til_par_for(c->threads > 1 ? 2 : 1, 2, bwd_part, &j);
    for (int k = 0; k < n; k++)
        add_row(gb1, c->dz + (size_t)k * h, h);
#else
    til_wnet_backward_ref(m, c, S, n, dw, grad);
#endif
}
