/* til_cluster: k-means (k-means++ and Lloyd, thread-count independent) and the
 * DEC soft assignment, target, KL loss and its gradients. */
#include "til_cluster.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "til_par.h"
#include "til_rng.h"

/* |x - c|^2 in double */
static inline double dist2(const float *x, const float *c, int d)
{
    double s = 0;
    for (int t = 0; t < d; t++) {
        double v = (double)x[t] - (double)c[t];
        s += v * v;
    }
    return s;
}

/* ---------------------------------------------------------------- k-means++ */

typedef struct {
    const float *X, *c;
    int d;
    double *D;
} pp_ctx;

/* D[i] = min(D[i], |x_i - c|^2) */
static void pp_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    (void)part;
    pp_ctx *p = ctx;
    for (uint64_t i = lo; i < hi; i++) {
        double v = dist2(p->X + i * (size_t)p->d, p->c, p->d);
        if (v < p->D[i])
            p->D[i] = v;
    }
}

int til_kmeans_pp(const float *X, uint64_t n, int d, int K, uint64_t seed, int threads, float *centers, til_err *e)
{
    if (K < 1 || K > TIL_CLUSTER_MAXK || (uint64_t)K > n || d < 1)
        return til_seterr(e, "k-means: need 1 <= K (%d) <= min(points (%llu), %d) and dim %d >= 1", K,
                          (unsigned long long)n, TIL_CLUSTER_MAXK, d);
    double *D = til_malloc(n, sizeof *D, e);
    if (!D)
        return til_errctx(e, "k-means++");
    til_rng r;
    til_rng_seed(&r, seed, 0x6b6d);
    uint64_t first = til_rng_below(&r, n);
    memcpy(centers, X + first * (size_t)d, (size_t)d * sizeof *centers);
    for (uint64_t i = 0; i < n; i++)
        D[i] = INFINITY;
    for (int k = 1; k < K; k++) {
        pp_ctx c = {X, centers + (size_t)(k - 1) * d, d, D};
        til_par_for(threads < 1 ? 1 : threads, n, pp_part, &c);
        /* serial total and walk: the choice does not depend on the thread count */
        double tot = 0;
        for (uint64_t i = 0; i < n; i++)
            tot += D[i];
        uint64_t pick;
        if (!(tot > 0)) { /* every point sits on a chosen center: any point will do */
            pick = til_rng_below(&r, n);
        } else {
            double x = til_rng_uniform(&r) * tot, cum = 0;
            pick = n;
            uint64_t last_pos = 0;
            for (uint64_t i = 0; i < n; i++) {
                if (D[i] > 0)
                    last_pos = i;
                cum += D[i];
                if (cum > x && D[i] > 0) {
                    pick = i;
                    break;
                }
            }
            if (pick == n) /* rounding ran off the end */
                pick = last_pos;
        }
        memcpy(centers + (size_t)k * d, X + pick * (size_t)d, (size_t)d * sizeof *centers);
    }
    free(D);
    return 0;
}

/* ------------------------------------------------------------------- Lloyd */

typedef struct {
    const float *X;
    const float *C;
    int d, K;
    uint64_t n;
    int n_chunks;
    uint32_t *assign;
    double *dist;     /* n: squared distance to the assigned center */
    double *sums;     /* n_chunks x K x d */
    uint64_t *counts; /* n_chunks x K */
    uint64_t *changed; /* n_chunks */
} ll_ctx;

/* assigns the points of chunks [lo, hi) and accumulates their per-chunk sums */
static void ll_part(void *ctx, int part, uint64_t clo, uint64_t chi)
{
    (void)part;
    ll_ctx *c = ctx;
    const int d = c->d, K = c->K;
    for (uint64_t ch = clo; ch < chi; ch++) {
        uint64_t lo, hi;
        til_par_range(c->n, c->n_chunks, (int)ch, &lo, &hi);
        double *S = c->sums + ch * (size_t)K * d;
        uint64_t *N = c->counts + ch * (size_t)K;
        memset(S, 0, (size_t)K * d * sizeof *S);
        memset(N, 0, (size_t)K * sizeof *N);
        uint64_t changed = 0;
        for (uint64_t i = lo; i < hi; i++) {
            const float *x = c->X + i * (size_t)d;
            uint32_t best = 0;
            double bd = dist2(x, c->C, d);
            for (int k = 1; k < K; k++) {
                double v = dist2(x, c->C + (size_t)k * d, d);
                if (v < bd) { /* strict: ties stay with the lower index */
                    bd = v;
                    best = (uint32_t)k;
                }
            }
            changed += c->assign[i] != best;
            c->assign[i] = best;
            c->dist[i] = bd;
            N[best]++;
            double *s = S + (size_t)best * d;
            for (int t = 0; t < d; t++)
                s[t] += x[t];
        }
        c->changed[ch] = changed;
    }
}

/* one assignment pass; returns the number of changed assignments */
static uint64_t ll_assign(ll_ctx *c, int threads)
{
    til_par_for(threads, (uint64_t)c->n_chunks, ll_part, c);
    uint64_t ch = 0;
    for (int k = 0; k < c->n_chunks; k++)
        ch += c->changed[k];
    return ch;
}

int til_kmeans_lloyd(const float *X, uint64_t n, int d, int K, int max_iter, int threads, float *centers,
                     uint32_t *assign, til_kmeans_info *info, til_err *e)
{
    if (K < 1 || K > TIL_CLUSTER_MAXK || (uint64_t)K > n || d < 1)
        return til_seterr(e, "k-means: need 1 <= K (%d) <= min(points (%llu), %d) and dim %d >= 1", K,
                          (unsigned long long)n, TIL_CLUSTER_MAXK, d);
    if (threads < 1)
        threads = 1;
    /* chunks depend only on n: about 256 points each, at most 64 of them */
    uint64_t nc = n / 256;
    int n_chunks = (int)(nc < 1 ? 1 : nc > 64 ? 64 : nc);
    ll_ctx c = {X, centers, d, K, n, n_chunks, assign, NULL, NULL, NULL, NULL};
    c.dist = til_malloc(n, sizeof *c.dist, e);
    c.sums = til_malloc((size_t)n_chunks * K, (size_t)d * sizeof *c.sums, e);
    c.counts = til_malloc((size_t)n_chunks * K, sizeof *c.counts, e);
    c.changed = til_malloc((size_t)n_chunks, sizeof *c.changed, e);
    double *tot = til_malloc((size_t)K * d, sizeof *tot, e);
    uint64_t *cnt = til_malloc((size_t)K, sizeof *cnt, e);
    int rc = 0;
    if (!c.dist || !c.sums || !c.counts || !c.changed || !tot || !cnt) {
        rc = til_errctx(e, "k-means");
        goto out;
    }
    for (uint64_t i = 0; i < n; i++)
        assign[i] = UINT32_MAX;
    ll_assign(&c, threads);
    til_kmeans_info inf = {0, 0, 0, 0};
    for (int it = 0; it < max_iter; it++) {
        /* update: center k = mean of its points, chunk sums reduced in chunk order */
        memset(tot, 0, (size_t)K * d * sizeof *tot);
        memset(cnt, 0, (size_t)K * sizeof *cnt);
        for (int ch = 0; ch < n_chunks; ch++) {
            const double *S = c.sums + (size_t)ch * K * d;
            for (size_t q = 0; q < (size_t)K * d; q++)
                tot[q] += S[q];
            for (int k = 0; k < K; k++)
                cnt[k] += c.counts[(size_t)ch * K + k];
        }
        int reseeded = 0;
        for (int k = 0; k < K; k++) {
            if (cnt[k]) {
                for (int t = 0; t < d; t++)
                    centers[(size_t)k * d + t] = (float)(tot[(size_t)k * d + t] / (double)cnt[k]);
                continue;
            }
            /* empty: re-seed with the point farthest from its center (lower index on ties) */
            uint64_t far = n;
            double fd = 0;
            for (uint64_t i = 0; i < n; i++)
                if (c.dist[i] > fd) {
                    fd = c.dist[i];
                    far = i;
                }
            if (far == n)
                continue; /* every point sits on a center: nothing better to do */
            memcpy(centers + (size_t)k * d, X + far * (size_t)d, (size_t)d * sizeof *centers);
            c.dist[far] = -1; /* not again in this iteration */
            reseeded++;
        }
        inf.reseeded += reseeded;
        inf.iters = it + 1;
        uint64_t changed = ll_assign(&c, threads);
        if (changed == 0 && reseeded == 0) {
            inf.converged = 1;
            break;
        }
    }
    for (uint64_t i = 0; i < n; i++)
        inf.inertia += c.dist[i];
    if (info)
        *info = inf;
out:
    free(c.dist);
    free(c.sums);
    free(c.counts);
    free(c.changed);
    free(tot);
    free(cnt);
    return rc;
}

int til_kmeans(const float *X, uint64_t n, int d, int K, int max_iter, uint64_t seed, int threads, float *centers,
               uint32_t *assign, til_kmeans_info *info, til_err *e)
{
    if (til_kmeans_pp(X, n, d, K, seed, threads, centers, e) < 0)
        return -1;
    return til_kmeans_lloyd(X, n, d, K, max_iter, threads, centers, assign, info, e);
}

/* --------------------------------------------------------------------- DEC */

/* q[k] = a_k^(-(tau+1)/2) / sum, a_k = 1 + |x - mu_k|^2 / tau; a[k] kept if non-NULL */
static void soft_row(const float *x, int d, const float *C, int K, double tau, double *q, double *a)
{
    double p = (tau + 1) / 2, s = 0;
    for (int k = 0; k < K; k++) {
        double ak = 1 + dist2(x, C + (size_t)k * d, d) / tau;
        if (a)
            a[k] = ak;
        q[k] = pow(ak, -p);
        s += q[k];
    }
    for (int k = 0; k < K; k++)
        q[k] /= s;
}

typedef struct {
    const float *X;
    const uint32_t *rows;
    int d, K;
    const float *C;
    double tau;
    float *Qm;
} soft_ctx;

static void soft_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    (void)part;
    soft_ctx *c = ctx;
    double q[TIL_CLUSTER_MAXK];
    for (uint64_t r = lo; r < hi; r++) {
        uint64_t row = c->rows ? c->rows[r] : r;
        soft_row(c->X + row * (size_t)c->d, c->d, c->C, c->K, c->tau, q, NULL);
        for (int k = 0; k < c->K; k++)
            c->Qm[r * (size_t)c->K + k] = (float)q[k];
    }
}

void til_dec_soft(const float *X, const uint32_t *rows, uint64_t n, int d, const float *centers, int K, double tau,
                  int threads, float *Qm)
{
    soft_ctx c = {X, rows, d, K, centers, tau, Qm};
    til_par_for(threads < 1 ? 1 : threads, n, soft_part, &c);
}

void til_dec_target(const float *Qm, uint64_t n, int K, float *T)
{
    /* f_k = sum_i Q_ik (serial, double) */
    double f[TIL_CLUSTER_MAXK] = {0};
    for (uint64_t i = 0; i < n; i++)
        for (int k = 0; k < K; k++)
            f[k] += Qm[i * (size_t)K + k];
    for (uint64_t i = 0; i < n; i++) {
        const float *q = Qm + i * (size_t)K;
        float *t = T + i * (size_t)K;
        double s = 0;
        for (int k = 0; k < K; k++)
            s += (double)q[k] * q[k] / f[k];
        for (int k = 0; k < K; k++)
            t[k] = (float)((double)q[k] * q[k] / f[k] / s);
    }
}

void til_dec_assign(const float *Qm, uint64_t n, int K, uint32_t *memb)
{
    for (uint64_t i = 0; i < n; i++) {
        const float *q = Qm + i * (size_t)K;
        int best = 0;
        for (int k = 1; k < K; k++)
            if (q[k] > q[best])
                best = k;
        memb[i] = (uint32_t)best;
    }
}

double til_dec_loss_grad(const float *X, const uint32_t *rows, uint64_t n, int d, const float *centers, int K,
                         double tau, const float *T, int mean, double scale, float *gX, float *gC)
{
    double q[TIL_CLUSTER_MAXK], a[TIL_CLUSTER_MAXK];
    double L = 0, norm = mean && n ? 1.0 / (double)n : 1.0;
    double cf = (tau + 1) / tau * norm * scale;
    for (uint64_t r = 0; r < n; r++) {
        uint64_t row = rows ? rows[r] : r;
        const float *x = X + row * (size_t)d;
        const float *t = T + row * (size_t)K;
        soft_row(x, d, centers, K, tau, q, a);
        for (int k = 0; k < K; k++) {
            /* KL term T log(T / Q), 0 log 0 = 0 */
            if (t[k] > 0)
                L += t[k] * (log((double)t[k]) - log(q[k] > 1e-300 ? q[k] : 1e-300));
            if (!gX && !gC)
                continue;
            /* coefficient of (x - mu_k): ((tau+1)/tau) (T_ik - Q_ik) / a_ik */
            double g = cf * ((double)t[k] - q[k]) / a[k];
            const float *mu = centers + (size_t)k * d;
            for (int c = 0; c < d; c++) {
                double v = g * ((double)x[c] - (double)mu[c]);
                if (gX)
                    gX[row * (size_t)d + c] += (float)v;
                if (gC)
                    gC[(size_t)k * d + c] -= (float)v;
            }
        }
    }
    return L * norm;
}

void til_dec_row_grad(const float *x, int d, const float *centers, int K, double tau, const float *t, double scale,
                      double *g)
{
    double q[TIL_CLUSTER_MAXK], a[TIL_CLUSTER_MAXK];
    soft_row(x, d, centers, K, tau, q, a);
    double cf = (tau + 1) / tau * scale;
    for (int k = 0; k < K; k++) {
        /* ((tau+1)/tau) (t_k - Q_k) (x - mu_k) / a_k */
        double gk = cf * ((double)t[k] - q[k]) / a[k];
        const float *mu = centers + (size_t)k * d;
        for (int c = 0; c < d; c++)
            g[c] += gk * ((double)x[c] - (double)mu[c]);
    }
}
