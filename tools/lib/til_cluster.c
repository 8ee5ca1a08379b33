/* til_cluster: k-means (k-means++ and Lloyd, thread-count independent) and the
 * DEC soft assignment, target, KL loss and its gradients. */
#include "til_cluster.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "til_device.h"
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
    int fast;          /* distances by gemm in float (til_kmeans_lloyd_fast) */
    float *cc;         /* fast: K squared center norms */
    float *ws;         /* fast: per part LL_BLOCK x K distances */
} ll_ctx;

#define LL_BLOCK 256

static void dist_block(const float *Xb, int m, int d, const float *C, const float *cc, int K, float *D);
static float sqnorm(const float *x, int d);

/* assigns the points of chunks [lo, hi) and accumulates their per-chunk sums */
static void ll_part(void *ctx, int part, uint64_t clo, uint64_t chi)
{
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
        float *D = c->fast ? c->ws + (size_t)part * LL_BLOCK * K : NULL;
        for (uint64_t i = lo; i < hi; i++) {
            const float *x = c->X + i * (size_t)d;
            uint32_t best = 0;
            double bd;
            if (c->fast) {
                /* |x|^2 + |c|^2 - 2 x.c by gemm, LL_BLOCK points at a time (blocks within the chunk) */
                uint64_t off = (i - lo) % LL_BLOCK;
                if (off == 0)
                    dist_block(x, (int)TIL_MIN((uint64_t)LL_BLOCK, hi - i), d, c->C, c->cc, K, D);
                const float *dr = D + off * K;
                float bf = dr[0];
                for (int k = 1; k < K; k++)
                    if (dr[k] < bf) { /* strict: ties stay with the lower index */
                        bf = dr[k];
                        best = (uint32_t)k;
                    }
                bd = bf;
            } else {
                bd = dist2(x, c->C, d);
                for (int k = 1; k < K; k++) {
                    double v = dist2(x, c->C + (size_t)k * d, d);
                    if (v < bd) { /* strict: ties stay with the lower index */
                        bd = v;
                        best = (uint32_t)k;
                    }
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
    if (c->fast)
        for (int k = 0; k < c->K; k++)
            c->cc[k] = sqnorm(c->C + (size_t)k * c->d, c->d);
    til_par_for(threads, (uint64_t)c->n_chunks, ll_part, c);
    uint64_t ch = 0;
    for (int k = 0; k < c->n_chunks; k++)
        ch += c->changed[k];
    return ch;
}

static int lloyd(const float *X, uint64_t n, int d, int K, int max_iter, int threads, float *centers,
                 uint32_t *assign, til_kmeans_info *info, int fast, til_err *e)
{
    if (K < 1 || K > TIL_CLUSTER_MAXK || (uint64_t)K > n || d < 1)
        return til_seterr(e, "k-means: need 1 <= K (%d) <= min(points (%llu), %d) and dim %d >= 1", K,
                          (unsigned long long)n, TIL_CLUSTER_MAXK, d);
    if (threads < 1)
        threads = 1;
    /* chunks depend only on n: about 256 points each, at most 64 of them */
    uint64_t nc = n / 256;
    int n_chunks = (int)(nc < 1 ? 1 : nc > 64 ? 64 : nc);
    ll_ctx c = {X, centers, d, K, n, n_chunks, assign, NULL, NULL, NULL, NULL, fast, NULL, NULL};
    if (fast && (!(c.cc = til_malloc((size_t)K, sizeof *c.cc, e)) ||
                 !(c.ws = til_malloc((size_t)threads * LL_BLOCK, (size_t)K * sizeof *c.ws, e)))) {
        free(c.cc);
        return til_errctx(e, "k-means");
    }
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
    free(c.cc);
    free(c.ws);
    return rc;
}

int til_kmeans_lloyd(const float *X, uint64_t n, int d, int K, int max_iter, int threads, float *centers,
                     uint32_t *assign, til_kmeans_info *info, til_err *e)
{
    return lloyd(X, n, d, K, max_iter, threads, centers, assign, info, 0, e);
}

int til_kmeans_lloyd_fast(const float *X, uint64_t n, int d, int K, int max_iter, int threads, float *centers,
                          uint32_t *assign, til_kmeans_info *info, til_err *e)
{
    return lloyd(X, n, d, K, max_iter, threads, centers, assign, info, 1, e);
}

int til_kmeans(const float *X, uint64_t n, int d, int K, int max_iter, uint64_t seed, int threads, float *centers,
               uint32_t *assign, til_kmeans_info *info, til_err *e)
{
    if (til_kmeans_pp(X, n, d, K, seed, threads, centers, e) < 0)
        return -1;
    return til_kmeans_lloyd(X, n, d, K, max_iter, threads, centers, assign, info, e);
}

int til_kmeans_fast(const float *X, uint64_t n, int d, int K, int max_iter, uint64_t seed, int threads,
                    float *centers, uint32_t *assign, til_kmeans_info *info, til_err *e)
{
    if (til_kmeans_pp(X, n, d, K, seed, threads, centers, e) < 0)
        return -1;
    return til_kmeans_lloyd_fast(X, n, d, K, max_iter, threads, centers, assign, info, e);
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

/* f += q (double sums per column) and t = q^2 / f / s, in 8-wide chunks with
 * restrict operands so that gcc -O2 vectorises them (element-wise: the same
 * operations in the same order as the plain loops, bit-identical) */
static inline void col_add(double *restrict f, const float *restrict q, int K)
{
    int k = 0;
    for (; k + 8 <= K; k += 8)
        for (int l = 0; l < 8; l++)
            f[k + l] += q[k + l];
    for (; k < K; k++)
        f[k] += q[k];
}

static inline void target_row(float *restrict t, const float *restrict q, const double *restrict f, double s, int K)
{
    int k = 0;
    for (; k + 8 <= K; k += 8)
        for (int l = 0; l < 8; l++)
            t[k + l] = (float)((double)q[k + l] * q[k + l] / f[k + l] / s);
    for (; k < K; k++)
        t[k] = (float)((double)q[k] * q[k] / f[k] / s);
}

void til_dec_target(const float *Qm, uint64_t n, int K, float *T)
{
    /* f_k = sum_i Q_ik (serial, double) */
    double f[TIL_CLUSTER_MAXK] = {0};
    for (uint64_t i = 0; i < n; i++)
        col_add(f, Qm + i * (size_t)K, K);
    for (uint64_t i = 0; i < n; i++) {
        const float *q = Qm + i * (size_t)K;
        double s = 0;
        for (int k = 0; k < K; k++)
            s += (double)q[k] * q[k] / f[k];
        target_row(T + i * (size_t)K, q, f, s, K);
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

/* ------------------------------------------------------------ fast paths (float, gemm) */

#ifdef TIL_HAVE_BLAS
#include <cblas.h>
#endif

/* C (m x n) = op(A) op(B), row-major, op = transpose where ta / tb: A is m x k
 * (k x m if ta), B is k x n (n x k if tb) */
static void gemm(int ta, int tb, int m, int n, int k, const float *A, const float *B, float *C)
{
    const int lda = ta ? m : k, ldb = tb ? k : n;
#ifdef TIL_HAVE_BLAS
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, A, lda,
                B, ldb, 0.0f, C, n);
#else
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float s = 0;
            for (int t = 0; t < k; t++)
                s += A[ta ? (size_t)t * lda + i : (size_t)i * lda + t] * B[tb ? (size_t)j * ldb + t : (size_t)t * ldb + j];
            C[(size_t)i * n + j] = s;
        }
#endif
}

static void gemm_nt(int m, int n, int k, const float *A, const float *B, float *C) { gemm(0, 1, m, n, k, A, B, C); }
static void gemm_nn(int m, int n, int k, const float *A, const float *B, float *C) { gemm(0, 0, m, n, k, A, B, C); }
static void gemm_tn(int m, int n, int k, const float *A, const float *B, float *C) { gemm(1, 0, m, n, k, A, B, C); }

/* The per-element loops below run in FW-wide chunks with restrict operands and
 * then a scalar tail: gcc -O2 (the very-cheap vectoriser) only vectorises loops
 * whose trip count is a known multiple of the vector width and that need no
 * alias checks. Lane sums are combined by a fixed tree (lane_sum), so every
 * result depends only on the inputs and the sizes. */
#define FW 8

static inline double lane_sum(const double *s)
{
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

static inline float lane_sumf(const float *s)
{
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}

/* |x|^2 by til_dot's 16 lanes (a serial float sum is one add latency per element) */
static float sqnorm(const float *x, int d) { return til_dot_hd(x, x, d); }

/* dr = max(xx + cc - 2 dr, 0) */
static inline void dist_row(float *restrict dr, const float *restrict cc, float xx, int K)
{
    int k = 0;
    for (; k + FW <= K; k += FW)
        for (int l = 0; l < FW; l++) {
            float v = xx + cc[k + l] - 2.0f * dr[k + l];
            dr[k + l] = v > 0 ? v : 0;
        }
    for (; k < K; k++) {
        float v = xx + cc[k] - 2.0f * dr[k];
        dr[k] = v > 0 ? v : 0;
    }
}

/* D (m x K) = |x_r - c_k|^2 = |x_r|^2 + |c_k|^2 - 2 x_r . c_k, clamped at 0;
 * Xb: m x d contiguous, cc: K squared center norms */
static void dist_block(const float *Xb, int m, int d, const float *C, const float *cc, int K, float *D)
{
    gemm_nt(m, K, d, Xb, C, D);
    for (int r = 0; r < m; r++)
        dist_row(D + (size_t)r * K, cc, sqnorm(Xb + (size_t)r * d, d), K);
}

/* u = 1 / (1 + dr) (the tau = 1 kernel, no pow); returns sum_k u_k in double */
static inline double inv1p_row(float *restrict u, const float *restrict dr, int K)
{
    double s[FW] = {0};
    int k = 0;
    for (; k + FW <= K; k += FW)
        for (int l = 0; l < FW; l++) {
            u[k + l] = 1.0f / (1.0f + dr[k + l]);
            s[l] += u[k + l];
        }
    for (; k + FW / 2 <= K; k += FW / 2)
        for (int l = 0; l < FW / 2; l++) {
            u[k + l] = 1.0f / (1.0f + dr[k + l]);
            s[l] += u[k + l];
        }
    double t = lane_sum(s);
    for (; k < K; k++) {
        u[k] = 1.0f / (1.0f + dr[k]);
        t += u[k];
    }
    return t;
}

/* q = a u */
static inline void mul_row(float *restrict q, const float *restrict u, float a, int K)
{
    int k = 0;
    for (; k + FW <= K; k += FW)
        for (int l = 0; l < FW; l++)
            q[k + l] = a * u[k + l];
    for (; k < K; k++)
        q[k] = a * u[k];
}

/* q *= a */
static inline void scale_row(float *restrict q, float a, int K)
{
    int k = 0;
    for (; k + FW <= K; k += FW)
        for (int l = 0; l < FW; l++)
            q[k + l] *= a;
    for (; k < K; k++)
        q[k] *= a;
}

/* Qb (m x K) <- the soft assignments of the block; Ub (m x K) <- 1 / a_rk if
 * non-NULL. D (m x K) holds the distances; no operand aliases another. */
static void soft_block(const float *D, int m, int K, double tau, float *Qb, float *Ub)
{
    const double p = (tau + 1) / 2;
    const float itau = (float)(1.0 / tau);
    for (int r = 0; r < m; r++) {
        const float *dr = D + (size_t)r * K;
        float *q = Qb + (size_t)r * K, *u = Ub ? Ub + (size_t)r * K : NULL;
        double s = 0;
        if (tau == 1.0) {
            s = inv1p_row(u ? u : q, dr, K); /* Q_rk = u_rk / s */
        } else {
            for (int k = 0; k < K; k++) {
                float ak = 1.0f + dr[k] * itau;
                float qk = (float)pow((double)ak, -p);
                if (u)
                    u[k] = 1.0f / ak;
                q[k] = qk;
                s += qk;
            }
        }
        float inv = (float)(1.0 / s);
        if (tau == 1.0 && u)
            mul_row(q, u, inv, K);
        else
            scale_row(q, inv, K);
    }
}

/* max(q, 1e-30) for q >= 0 or NaN, on the bit pattern (an integer max: a float
 * select there would keep gcc from vectorising the loop around it) */
static inline float floor_1e30(float q)
{
    uint32_t i;
    memcpy(&i, &q, sizeof i);
    i = i > 0x0da24260u ? i : 0x0da24260u; /* 1e-30f */
    memcpy(&q, &i, sizeof q);
    return q;
}

/* one row of the loss: returns sum_k t_k log(t_k / max(q_k, 1e-30)) (float
 * lanes, one til_logf_fast of the ratio: accurate to ~1e-7 absolute per term
 * even where T ~ Q, unlike log t - log q; t_k = 0 gives 0 exactly,
 * til_logf_fast(0) being finite)
 * and sets cr_k = cf (t_k - q_k) u_k, the coefficient of (x - mu_k), and
 * *cs = sum_k cr_k. Branch-free, so that the chunk loop vectorises. */
static inline double kl_row(float *restrict cr, const float *restrict t, const float *restrict q,
                            const float *restrict u, float cf, int K, float *cs)
{
    float L[FW] = {0}, S[FW] = {0};
    int k = 0;
    for (; k + FW <= K; k += FW)
        for (int l = 0; l < FW; l++) {
            float tk = t[k + l], qk = q[k + l];
            L[l] += tk * til_logf_fast(tk / floor_1e30(qk));
            float c = cf * (tk - qk) * u[k + l];
            cr[k + l] = c;
            S[l] += c;
        }
    for (; k + FW / 2 <= K; k += FW / 2) /* a half chunk (K = 60: 7 x 8 + 4) into lanes 0..3 */
        for (int l = 0; l < FW / 2; l++) {
            float tk = t[k + l], qk = q[k + l];
            L[l] += tk * til_logf_fast(tk / floor_1e30(qk));
            float c = cf * (tk - qk) * u[k + l];
            cr[k + l] = c;
            S[l] += c;
        }
    double Lr = lane_sumf(L);
    float s = lane_sumf(S);
    for (; k < K; k++) {
        float tk = t[k], qk = q[k];
        Lr += tk * til_logf_fast(tk / floor_1e30(qk));
        cr[k] = cf * (tk - qk) * u[k];
        s += cr[k];
    }
    *cs = s;
    return Lr;
}

/* g = s x - y */
static inline void sxmy(float *restrict g, float s, const float *restrict x, const float *restrict y, int d)
{
    int c = 0;
    for (; c + FW <= d; c += FW)
        for (int l = 0; l < FW; l++)
            g[c + l] = s * x[c + l] - y[c + l];
    for (; c < d; c++)
        g[c] = s * x[c] - y[c];
}

/* g = s x - g */
static inline void sxmg(float *restrict g, float s, const float *restrict x, int d)
{
    int c = 0;
    for (; c + FW <= d; c += FW)
        for (int l = 0; l < FW; l++)
            g[c + l] = s * x[c + l] - g[c + l];
    for (; c < d; c++)
        g[c] = s * x[c] - g[c];
}

/* f += q */
static inline void acc_row(float *restrict f, const float *restrict q, int K)
{
    int k = 0;
    for (; k + FW <= K; k += FW)
        for (int l = 0; l < FW; l++)
            f[k + l] += q[k + l];
    for (; k < K; k++)
        f[k] += q[k];
}

/* f += g in double */
static inline void col_addd(double *restrict f, const double *restrict g, int K)
{
    int k = 0;
    for (; k + FW <= K; k += FW)
        for (int l = 0; l < FW; l++)
            f[k + l] += g[k + l];
    for (; k < K; k++)
        f[k] += g[k];
}

/* argmax_k q_k, ties: lower k, NaN never chosen unless q_0 is NaN (then 0):
 * til_dec_assign's rule. The maximum by FW lanes (a serial compare-and-move
 * chain costs a load latency per element), then the first k that reaches it
 * (tracking the index in the lanes too was slower: gcc keeps them in memory). */
static inline uint32_t argmax_row(const float *restrict q, int K)
{
    float mx = q[0];
    if (!(mx == mx))
        return 0;
    float m[FW]; /* every lane starts at q_0: a NaN element never enters a lane */
    for (int l = 0; l < FW; l++)
        m[l] = mx;
    int k = 0;
    for (; k + FW <= K; k += FW)
        for (int l = 0; l < FW; l++)
            m[l] = q[k + l] > m[l] ? q[k + l] : m[l];
    for (int l = 0; l < FW; l++)
        mx = m[l] > mx ? m[l] : mx;
    for (; k < K; k++)
        mx = q[k] > mx ? q[k] : mx;
    for (k = 0; k < K; k++)
        if (q[k] == mx)
            break;
    return (uint32_t)k;
}

/* t = q^2 / f / s in place, s = sum_k q_k^2 / f_k; invf: 1 / f_k */
static inline void target_row_fast(float *restrict t, const float *restrict invf, int K)
{
    double s[FW] = {0};
    int k = 0;
    for (; k + FW <= K; k += FW)
        for (int l = 0; l < FW; l++) {
            t[k + l] = t[k + l] * t[k + l] * invf[k + l];
            s[l] += t[k + l];
        }
    double S = lane_sum(s);
    for (; k < K; k++) {
        t[k] = t[k] * t[k] * invf[k];
        S += t[k];
    }
    scale_row(t, (float)(1.0 / S), K);
}

#define DEC_BLOCK 256 /* rows per block: fixed, so results do not depend on the thread count */

typedef struct {
    const float *X;
    const uint32_t *rows;
    uint64_t n;
    int d, K;
    const float *C, *cc;
    double tau;
    void *mem; /* the call's one allocation (fdec_alloc) */
    float *ws; /* per part: DEC_BLOCK x (2d + 4K) + K */
    size_t ws_part;
    /* soft */
    float *Qm;
    /* refresh */
    uint32_t *memb;
    double *fb;       /* per block: K column sums of Q */
    const float *invf; /* K: 1 / f_k */
    /* loss/grad */
    const float *T;
    float cf;        /* ((tau+1)/tau) * norm * scale */
    double *Lb;      /* per block: sum of KL terms */
    float *gXb;      /* n x d: the rows' gradients (row-list order), or NULL */
    float *gCb;      /* per block K x d, or NULL */
} fdec_ctx;

/* asks for the cache lines of [p, p + bytes) (a hint: no effect on results) */
static inline void prefetch_span(const void *p, size_t bytes)
{
#if defined(__GNUC__)
    const char *b = p;
    for (size_t o = 0; o < bytes; o += 64)
        __builtin_prefetch(b + o);
    __builtin_prefetch(b + bytes - 1);
#else
    (void)p, (void)bytes;
#endif
}

#define GATHER_AHEAD 8 /* rows prefetched ahead of the copy */

/* the block's rows, contiguous: X itself when there is no row list, else copied
 * into Xb. Listed rows are scattered over the table: their lines (and their T
 * rows, read only after the block's sgemm, too late for out-of-order execution
 * to overlap the misses) are prefetched ahead: loss+grad on 7000 of 40981 rows
 * 4.55 -> 3.35 ms. (Prefetching in the TIL per-triplet passes was tried and did
 * not gain: their loads overlap already.) */
static const float *gather(const fdec_ctx *c, uint64_t lo, int m, float *Xb)
{
    const int d = c->d;
    if (!c->rows)
        return c->X + lo * (size_t)d;
    const uint32_t *rw = c->rows + lo;
    for (int r = 0; r < m && r < GATHER_AHEAD; r++)
        prefetch_span(c->X + (uint64_t)rw[r] * d, (size_t)d * sizeof *Xb);
    for (int r = 0; r < m; r++) {
        if (r + GATHER_AHEAD < m)
            prefetch_span(c->X + (uint64_t)rw[r + GATHER_AHEAD] * d, (size_t)d * sizeof *Xb);
        if (c->T)
            prefetch_span(c->T + (uint64_t)rw[r] * c->K, (size_t)c->K * sizeof *c->T);
        memcpy(Xb + (size_t)r * d, c->X + (uint64_t)rw[r] * d, (size_t)d * sizeof *Xb);
    }
    return Xb;
}

static void fsoft_part(void *ctx, int part, uint64_t blo, uint64_t bhi)
{
    fdec_ctx *c = ctx;
    const int d = c->d, K = c->K;
    float *Xb = c->ws + (size_t)part * c->ws_part, *D = Xb + (size_t)DEC_BLOCK * d;
    for (uint64_t b = blo; b < bhi; b++) {
        uint64_t lo = b * DEC_BLOCK;
        int m = (int)TIL_MIN((uint64_t)DEC_BLOCK, c->n - lo);
        dist_block(gather(c, lo, m, Xb), m, d, c->C, c->cc, K, D);
        float *Q = c->Qm + lo * (size_t)K;
        soft_block(D, m, K, c->tau, Q, NULL);
        if (c->memb)
            for (int r = 0; r < m; r++)
                c->memb[lo + (uint64_t)r] = argmax_row(Q + (size_t)r * K, K);
        if (c->fb) {
            double *f = c->fb + b * (size_t)K;
            memset(f, 0, (size_t)K * sizeof *f);
            for (int r = 0; r < m; r++)
                col_add(f, Q + (size_t)r * K, K);
        }
    }
}

/* One allocation per call: n_dbl doubles (*dbl), then the per-part workspaces
 * (c->ws), then n_flt floats (*flt, when non-NULL). Separate blocks of a few
 * hundred KB each went to mmap and back every call (page faults: ~10 % of a
 * loss call's time). Freed with free(c->mem). */
static int fdec_alloc(fdec_ctx *c, int parts, size_t n_dbl, double **dbl, size_t n_flt, float **flt, til_err *e)
{
    c->ws_part = (size_t)DEC_BLOCK * (2 * (size_t)c->d + 4 * (size_t)c->K) + (size_t)c->K;
    size_t nf = (size_t)parts * c->ws_part + n_flt;
    if (!(c->mem = til_malloc(1, n_dbl * sizeof(double) + nf * sizeof(float), e)))
        return -1;
    if (dbl)
        *dbl = c->mem;
    c->ws = (float *)((double *)c->mem + n_dbl);
    if (flt)
        *flt = c->ws + (size_t)parts * c->ws_part;
    return 0;
}

static void fdec_norms(fdec_ctx *c, float *cc)
{
    for (int k = 0; k < c->K; k++)
        cc[k] = sqnorm(c->C + (size_t)k * c->d, c->d);
    c->cc = cc;
}

int til_dec_soft_fast(const float *X, const uint32_t *rows, uint64_t n, int d, const float *centers, int K,
                      double tau, int threads, float *Qm, til_err *e)
{
    if (threads < 1)
        threads = 1;
    fdec_ctx c = {.X = X, .rows = rows, .n = n, .d = d, .K = K, .C = centers, .tau = tau, .Qm = Qm};
    float cc[TIL_CLUSTER_MAXK];
    fdec_norms(&c, cc);
    if (fdec_alloc(&c, threads, 0, NULL, 0, NULL, e))
        return til_errctx(e, "DEC soft assignment");
    til_par_for(threads, (n + DEC_BLOCK - 1) / DEC_BLOCK, fsoft_part, &c);
    free(c.mem);
    return 0;
}

static void ftarget_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    (void)part;
    fdec_ctx *c = ctx;
    for (uint64_t r = lo; r < hi; r++)
        target_row_fast(c->Qm + r * (size_t)c->K, c->invf, c->K);
}

int til_dec_refresh_fast(const float *X, uint64_t n, int d, const float *centers, int K, double tau, int threads,
                         float *T, uint32_t *memb, til_err *e)
{
    if (threads < 1)
        threads = 1;
    uint64_t nb = (n + DEC_BLOCK - 1) / DEC_BLOCK;
    fdec_ctx c = {.X = X, .n = n, .d = d, .K = K, .C = centers, .tau = tau, .Qm = T, .memb = memb};
    float cc[TIL_CLUSTER_MAXK], invf[TIL_CLUSTER_MAXK];
    fdec_norms(&c, cc);
    if (fdec_alloc(&c, threads, nb * (size_t)K, &c.fb, 0, NULL, e))
        return til_errctx(e, "DEC refresh");
    /* 1. Q into T, memberships, per-block column sums */
    til_par_for(threads, nb, fsoft_part, &c);
    /* 2. f_k = sum_i Q_ik, reduced in block order; T from Q in place */
    double f[TIL_CLUSTER_MAXK] = {0};
    for (uint64_t b = 0; b < nb; b++)
        col_addd(f, c.fb + b * (size_t)K, K);
    for (int k = 0; k < K; k++)
        invf[k] = (float)(1.0 / f[k]);
    c.invf = invf;
    til_par_for(threads, n, ftarget_part, &c);
    free(c.mem);
    return 0;
}

static void floss_part(void *ctx, int part, uint64_t blo, uint64_t bhi)
{
    fdec_ctx *c = ctx;
    const int d = c->d, K = c->K;
    float *Xb = c->ws + (size_t)part * c->ws_part, *D = Xb + (size_t)DEC_BLOCK * d, *U = D + (size_t)DEC_BLOCK * K,
          *Q = U + (size_t)DEC_BLOCK * K, *G = Q + (size_t)DEC_BLOCK * K, *cs = G + (size_t)DEC_BLOCK * d,
          *rs = cs + K, *Cf = D; /* the coefficients overwrite the distances once soft_block has read them */
    for (uint64_t b = blo; b < bhi; b++) {
        uint64_t lo = b * DEC_BLOCK;
        int m = (int)TIL_MIN((uint64_t)DEC_BLOCK, c->n - lo);
        const float *X = gather(c, lo, m, Xb);
        dist_block(X, m, d, c->C, c->cc, K, D);
        soft_block(D, m, K, c->tau, Q, U);
        double L = 0;
        for (int r = 0; r < m; r++) {
            uint64_t row = c->rows ? c->rows[lo + (uint64_t)r] : lo + (uint64_t)r;
            size_t o = (size_t)r * K;
            L += kl_row(Cf + o, c->T + row * (size_t)K, Q + o, U + o, c->cf, K, rs + r);
        }
        c->Lb[b] = L;
        if (c->gXb) {
            /* g_r = (sum_k c_rk) x_r - sum_k c_rk mu_k */
            gemm_nn(m, d, K, Cf, c->C, G);
            for (int r = 0; r < m; r++)
                sxmy(c->gXb + (lo + (uint64_t)r) * d, rs[r], X + (size_t)r * d, G + (size_t)r * d, d);
        }
        if (c->gCb) {
            /* dL/dmu_k = -(sum_r c_rk x_r - (sum_r c_rk) mu_k) */
            float *gc = c->gCb + b * (size_t)K * d;
            gemm_tn(K, d, m, Cf, X, gc);
            memset(cs, 0, (size_t)K * sizeof *cs);
            for (int r = 0; r < m; r++)
                acc_row(cs, Cf + (size_t)r * K, K);
            for (int k = 0; k < K; k++)
                sxmg(gc + (size_t)k * d, cs[k], c->C + (size_t)k * d, d);
        }
    }
}

/* the loss and gradients; gXr: n x d in row-list order (set), or NULL */
static int dec_loss_grad(const float *X, const uint32_t *rows, uint64_t n, int d, const float *centers, int K,
                         double tau, const float *T, int mean, double scale, int threads, float *gXr, float *gC,
                         double *loss, til_err *e)
{
    if (threads < 1)
        threads = 1;
    double norm = mean && n ? 1.0 / (double)n : 1.0;
    uint64_t nb = (n + DEC_BLOCK - 1) / DEC_BLOCK;
    fdec_ctx c = {.X = X, .rows = rows, .n = n, .d = d, .K = K, .C = centers, .tau = tau, .T = T,
                  .cf = (float)((tau + 1) / tau * norm * scale), .gXb = gXr};
    float cc[TIL_CLUSTER_MAXK];
    fdec_norms(&c, cc);
    if (fdec_alloc(&c, threads, nb, &c.Lb, gC ? nb * (size_t)K * d : 0, &c.gCb, e))
        return til_errctx(e, "DEC loss");
    if (!gC)
        c.gCb = NULL;
    til_par_for(threads, nb, floss_part, &c);
    /* reductions in block order: the same bits for any thread count */
    double L = 0;
    for (uint64_t b = 0; b < nb; b++)
        L += c.Lb[b];
    if (gC)
        for (uint64_t b = 0; b < nb; b++)
            acc_row(gC, c.gCb + b * (size_t)K * d, K * d);
    *loss = L * norm;
    free(c.mem);
    return 0;
}

int til_dec_loss_grad_fast(const float *X, const uint32_t *rows, uint64_t n, int d, const float *centers, int K,
                           double tau, const float *T, int mean, double scale, int threads, float *gX, float *gC,
                           double *loss, til_err *e)
{
    float *gXr = NULL;
    if (gX && !(gXr = til_malloc(n ? n : 1, (size_t)d * sizeof(float), e)))
        return til_errctx(e, "DEC loss");
    int rc = dec_loss_grad(X, rows, n, d, centers, K, tau, T, mean, scale, threads, gXr, gC, loss, e);
    if (!rc && gX) /* in row order: repeated rows accumulate the same way for any thread count */
        for (uint64_t r = 0; r < n; r++)
            acc_row(gX + (rows ? rows[r] : r) * (size_t)d, gXr + r * (size_t)d, d);
    free(gXr);
    return rc;
}

int til_dec_loss_grad_rows_fast(const float *X, const uint32_t *rows, uint64_t n, int d, const float *centers, int K,
                                double tau, const float *T, int mean, double scale, int threads, float *gXr,
                                float *gC, double *loss, til_err *e)
{
    return dec_loss_grad(X, rows, n, d, centers, K, tau, T, mean, scale, threads, gXr, gC, loss, e);
}
