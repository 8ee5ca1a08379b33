/* til_state: principal interest eta_u and Uni/Multi-Interest triplet states. */
#include "til_state.h"

#include "til_par.h"

/* eta_u = (1/|I_u|) sum_{v in I_u} q_v, summed in double, 64 columns at a time
 * (a full block has a constant trip count so that gcc -O2 vectorises it; each
 * column's sum is the same sequence of additions either way) */
static void eta_row(const til_inter *t, const float *Q, int d, uint32_t u, float *out)
{
    uint64_t lo = t->indptr[u], hi = t->indptr[u + 1];
    double inv = hi > lo ? 1.0 / (double)(hi - lo) : 0.0;
    for (int c0 = 0; c0 < d; c0 += 64) {
        int w = TIL_MIN(64, d - c0);
        double a[64] = {0};
        if (w == 64) {
            for (uint64_t p = lo; p < hi; p++) {
                const float *restrict q = Q + (size_t)t->items[p] * d + c0;
                for (int c = 0; c < 64; c++)
                    a[c] += q[c];
            }
        } else {
            for (uint64_t p = lo; p < hi; p++) {
                const float *q = Q + (size_t)t->items[p] * d + c0;
                for (int c = 0; c < w; c++)
                    a[c] += q[c];
            }
        }
        for (int c = 0; c < w; c++)
            out[c0 + c] = (float)(a[c] * inv);
    }
}

typedef struct {
    const til_inter *t;
    const float *Q;
    int d;
    float *eta;
} eta_ctx;

static void eta_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    (void)part;
    eta_ctx *c = ctx;
    for (uint64_t u = lo; u < hi; u++)
        eta_row(c->t, c->Q, c->d, (uint32_t)u, c->eta + u * (size_t)c->d);
}

void til_state_eta(const til_inter *train, const float *Q, int d, int threads, float *eta)
{
    eta_ctx c = {train, Q, d, eta};
    til_par_for(threads < 1 ? 1 : threads, train->n_users, eta_part, &c);
}

void til_state_eta_users(const til_inter *train, const float *Q, int d, const uint32_t *users, int n, float *eta)
{
    for (int k = 0; k < n; k++)
        eta_row(train, Q, d, users[k], eta + (size_t)users[k] * d);
}

/* One state row: si = (qi + alpha mi) (.) (p + e), sj likewise (mi = mj = NULL:
 * the Uni-Interest form qi (.) (p + e)). 16-wide chunks with restrict operands
 * so that gcc -O2 vectorises them; element-wise, so bit-identical to the plain
 * loop. */
static inline void state_row(int d, const float *restrict p, const float *restrict e, const float *restrict qi,
                             const float *restrict qj, const float *restrict mi, const float *restrict mj, float alpha,
                             float *restrict si, float *restrict sj)
{
    int c = 0;
    if (!mi) {
        for (; c + 16 <= d; c += 16)
            for (int l = 0; l < 16; l++) {
                float pe = p[c + l] + e[c + l];
                si[c + l] = qi[c + l] * pe;
                sj[c + l] = qj[c + l] * pe;
            }
        for (; c < d; c++) {
            float pe = p[c] + e[c];
            si[c] = qi[c] * pe;
            sj[c] = qj[c] * pe;
        }
    } else {
        for (; c + 16 <= d; c += 16)
            for (int l = 0; l < 16; l++) {
                float pe = p[c + l] + e[c + l];
                si[c + l] = (qi[c + l] + alpha * mi[c + l]) * pe;
                sj[c + l] = (qj[c + l] + alpha * mj[c + l]) * pe;
            }
        for (; c < d; c++) {
            float pe = p[c] + e[c];
            si[c] = (qi[c] + alpha * mi[c]) * pe;
            sj[c] = (qj[c] + alpha * mj[c]) * pe;
        }
    }
}

void til_state_build(int d, int n, const uint32_t *u, const uint32_t *i, const uint32_t *j, const float *P,
                     const float *Q, const float *eta, const float *centers, const uint32_t *memb, float alpha,
                     float *S)
{
    int multi = centers && memb && alpha != 0;
    for (int k = 0; k < n; k++) {
        const float *p = P + (size_t)u[k] * d, *e = eta + (size_t)u[k] * d;
        const float *qi = Q + (size_t)i[k] * d, *qj = Q + (size_t)j[k] * d;
        float *si = S + (size_t)k * 2 * d, *sj = si + d;
        /* s = (q_i + alpha mu_ci) (.) (p_u + eta_u) || (q_j + alpha mu_cj) (.) (p_u + eta_u); uni: no mu */
        const float *mi = multi ? centers + (size_t)memb[i[k]] * d : NULL;
        const float *mj = multi ? centers + (size_t)memb[j[k]] * d : NULL;
        state_row(d, p, e, qi, qj, mi, mj, alpha, si, sj);
    }
}
