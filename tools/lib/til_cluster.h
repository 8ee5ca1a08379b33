/* til_cluster: item clusters for TIL-MI: k-means (to initialise the centers) and
 * the end-to-end DEC clustering loss (Xie et al. 2016; TIL paper eqs. 7-9).
 *
 * k-means: k-means++ seeding from a seeded til_rng, then Lloyd iterations until
 * no assignment changes (or max_iter). Distances are squared Euclidean, summed in
 * double; ties go to the lower center index. The assignment step runs on
 * `threads` threads over points; the center sums are accumulated per chunk of
 * points, where the chunks depend only on n (never on the thread count), and
 * reduced in chunk order: centers and assignments are bit-identical for any
 * thread count and any scheduling. A cluster left empty by an update is re-seeded
 * with the point farthest from its own center (ties: lower point index; a point
 * re-seeds at most one cluster per iteration; clusters are served in index order).
 *
 * DEC with a Student-t kernel of tau degrees of freedom (tau = 1 in DEC/TIL):
 *   Q_ik = (1 + |x_i - mu_k|^2 / tau)^(-(tau+1)/2) / sum_k' (same for k')   (eq. 7)
 *   T_ik = (Q_ik^2 / f_k) / sum_k' (Q_ik'^2 / f_k'),  f_k = sum_i Q_ik      (eq. 8)
 *   L_c  = sum_i sum_k T_ik log(T_ik / Q_ik)                               (eq. 9)
 * T is held fixed between refreshes (not differentiated). With a_ik = 1 +
 * |x_i - mu_k|^2 / tau the gradients are (DEC's closed form generalised to tau):
 *   dL/dx_i  =  ((tau+1)/tau) sum_k (T_ik - Q_ik) (x_i - mu_k) / a_ik
 *   dL/dmu_k = -((tau+1)/tau) sum_i (T_ik - Q_ik) (x_i - mu_k) / a_ik
 * Reduction over items: `mean` = 1 divides the loss (and gradients) by the
 * number n of rows in play (recommended: the scale then does not depend on how
 * many items a batch touches, so gamma keeps its meaning); mean = 0 is the plain
 * sum of eq. 9.
 *
 * Row addressing. The DEC functions read embeddings from a table X (n_tab x d,
 * e.g. the item embeddings) through an optional row list `rows` (n entries; NULL
 * means rows 0..n-1): listed row r is X[rows[r]]. T is table-shaped like X (row
 * rows[r]); gX too (gradients added at rows[r], so repeated rows accumulate).
 * The soft assignment Qm is n x K, one row per LISTED row. */
#ifndef TIL_CLUSTER_H
#define TIL_CLUSTER_H

#include <stdint.h>
#include <string.h>

#include "til_util.h"

/* Largest number of clusters (the DEC functions keep a row of K doubles on the
 * stack; every function here requires 1 <= K <= TIL_CLUSTER_MAXK). */
#define TIL_CLUSTER_MAXK 1024

typedef struct til_kmeans_info {
    int iters;      /* Lloyd update steps done */
    int converged;  /* 1 if the assignments stopped changing before max_iter */
    int reseeded;   /* empty clusters re-seeded, over all iterations */
    double inertia; /* sum of squared distances to the assigned centers */
} til_kmeans_info;

/* X: n x d -> centers: K x d chosen by k-means++ (first uniformly, then with
 * probability proportional to the squared distance to the nearest chosen center),
 * draws from til_rng(seed, stream 0x6b6d). Requires 1 <= K <= n. */
int til_kmeans_pp(const float *X, uint64_t n, int d, int K, uint64_t seed, int threads, float *centers, til_err *e);

/* X: n x d, centers: K x d (initial, updated in place) -> assign: n cluster ids.
 * On return assign[i] is the nearest final center of point i. info may be NULL. */
int til_kmeans_lloyd(const float *X, uint64_t n, int d, int K, int max_iter, int threads, float *centers,
                     uint32_t *assign, til_kmeans_info *info, til_err *e);

/* til_kmeans_pp followed by til_kmeans_lloyd. */
int til_kmeans(const float *X, uint64_t n, int d, int K, int max_iter, uint64_t seed, int threads, float *centers,
               uint32_t *assign, til_kmeans_info *info, til_err *e);

/* X (table, via rows), centers: K x d -> Qm: n x K soft assignments (eq. 7),
 * each row summing to 1. tau > 0. Rows are independent: threaded, deterministic. */
void til_dec_soft(const float *X, const uint32_t *rows, uint64_t n, int d, const float *centers, int K, double tau,
                  int threads, float *Qm);

/* Qm: n x K -> T: n x K target distribution (eq. 8) over these n rows, aligned
 * with Qm. The usual refresh runs til_dec_soft with rows = NULL over all items, so
 * T comes out table-shaped, as til_dec_loss_grad reads it. */
void til_dec_target(const float *Qm, uint64_t n, int K, float *T);

/* Qm: n x K -> memb: n hard memberships argmax_k Qm[i,k] (ties: lower k). */
void til_dec_assign(const float *Qm, uint64_t n, int K, uint32_t *memb);

/* X (table, via rows), centers: K x d, T (table-shaped like X, K columns)
 * -> returns L_c (eq. 9; divided by n if mean), and ADDS scale * dL_c/dX into gX
 * (table-shaped, at rows[r]) and scale * dL_c/dcenters into gC (K x d); either
 * gradient pointer may be NULL. Q is recomputed from X and centers. */
double til_dec_loss_grad(const float *X, const uint32_t *rows, uint64_t n, int d, const float *centers, int K,
                         double tau, const float *T, int mean, double scale, float *gX, float *gC);

/* One item's term: x: d, centers: K x d, t: K (its target row) -> g: d doubles
 * += scale * d/dx sum_k t_k log(t_k / Q_k(x)). For the look-ahead's extra inner
 * gradient (til_meta_opts.extra) in TIL-MI: scale = gamma / n for a mean over n
 * items in play, times the number of times the item is counted. */
void til_dec_row_grad(const float *x, int d, const float *centers, int K, double tau, const float *t, double scale,
                      double *g);

/* ---- fast paths: float, gemm (OpenBLAS sgemm when built with BLAS), blocked
 * and threaded. Distances by the expansion |x|^2 + |mu|^2 - 2 x.mu (clamped at
 * 0) from one sgemm per block of 256 rows; tau = 1 uses 1/(1 + d^2) (no pow).
 * Blocks depend only on n, each block's sums run in a fixed order and the
 * per-block results are reduced in block order: the same bits for any thread
 * count (call with OpenBLAS on one thread when threads > 1, as the TIL hooks do).
 * Against the double reference (tested, embeddings of norm ~1, d = 64, K = 60):
 * Q and T within 2e-6 + 1e-4 x |ref|, the loss within 1e-4 relative, gradients
 * within 1e-3 of the largest reference entry; k-means assignments equal the
 * reference except at near-ties (distance gaps below ~1e-6 x |x|^2). Cancellation
 * in the expansion grows with |x|^2 / d^2: embeddings far from the origin with
 * tight clusters lose digits. Failures: -1 only when workspace allocation fails. */

/* til_dec_soft in float (see above). */
int til_dec_soft_fast(const float *X, const uint32_t *rows, uint64_t n, int d, const float *centers, int K,
                      double tau, int threads, float *Qm, til_err *e);

/* til_dec_loss_grad in float (see above); the loss goes to *loss. gX is added to
 * in row-list order (serially), gC in block order. The KL terms use
 * til_logf_fast (below). */
int til_dec_loss_grad_fast(const float *X, const uint32_t *rows, uint64_t n, int d, const float *centers, int K,
                           double tau, const float *T, int mean, double scale, int threads, float *gX, float *gC,
                           double *loss, til_err *e);

/* As til_dec_loss_grad_fast, except that the row gradients go to gXr (n x d, in
 * row-list order) and are SET: gXr[r] = scale * dL_c/dx for listed row r alone
 * (a row listed twice gets two equal entries). No copy of the rows' gradients
 * through a table-shaped buffer: what TIL-MI uses per step. gXr may be NULL. */
int til_dec_loss_grad_rows_fast(const float *X, const uint32_t *rows, uint64_t n, int d, const float *centers, int K,
                                double tau, const float *T, int mean, double scale, int threads, float *gXr,
                                float *gC, double *loss, til_err *e);

/* The refresh of TIL-MI in one pass over X (n x d, all rows, no row list):
 * T <- the target distribution (eq. 8) of the soft assignments (eq. 7), and
 * memb <- the hard memberships argmax_k Q_ik (ties: lower k), i.e. what
 * til_dec_soft_fast, til_dec_target and til_dec_assign give, without an n x K
 * Q buffer (Q is built in T and turned into T in place). f_k is summed in double
 * per block of 256 rows, reduced in block order; T_ik = (Q_ik^2 / f_k) / s_i in
 * float with s_i summed in double: within the fast paths' tolerances of
 * til_dec_target on til_dec_soft's Q; memb equals til_dec_assign on
 * til_dec_soft_fast's Q. Thread-count independent. */
int til_dec_refresh_fast(const float *X, uint64_t n, int d, const float *centers, int K, double tau, int threads,
                         float *T, uint32_t *memb, til_err *e);

/* log(x) in float for finite x > 0 (normal): Cephes' logf polynomial on the
 * mantissa reduced to [sqrt(1/2), sqrt(2)), branch-free so that gcc vectorises
 * the fast paths' loops around it (glibc's log is a call per element). Tested
 * against log() in double: within 3e-7 absolute + 3e-7 relative over
 * [1e-30, 1e30]. x = 0 and subnormal x give finite values (0: -127 ln 2), so
 * t * til_logf_fast(t) is exactly 0 at t = 0; inf and NaN give NaN. */
static inline float til_logf_fast(float x)
{
    uint32_t ix;
    memcpy(&ix, &x, sizeof ix);
    uint32_t tmp = ix - 0x3f3504f3u;           /* the exponent of x / sqrt(1/2), rounded down */
    int32_t k = (int32_t)tmp >> 23;            /* arithmetic shift (gcc, clang) */
    uint32_t iz = ix - (tmp & 0xff800000u);    /* z = x / 2^k in [sqrt(1/2), sqrt(2)) */
    float z;
    memcpy(&z, &iz, sizeof z);
    float f = z - 1.0f, f2 = f * f, e = (float)k;
    float y = ((((((((7.0376836292e-2f * f - 1.1514610310e-1f) * f + 1.1676998740e-1f) * f - 1.2420140846e-1f) * f +
                   1.4249322787e-1f) * f - 1.6668057665e-1f) * f + 2.0000714765e-1f) * f - 2.4999993993e-1f) * f +
               3.3333331174e-1f) * f * f2;
    y += -2.12194440e-4f * e;
    y += -0.5f * f2;
    return (f + y) + 0.693359375f * e + (x - x); /* + 0, or NaN for inf / NaN */
}

/* til_kmeans_lloyd / til_kmeans with the assignment distances by gemm in float
 * (the center sums stay in double, chunked as in the reference). */
int til_kmeans_lloyd_fast(const float *X, uint64_t n, int d, int K, int max_iter, int threads, float *centers,
                          uint32_t *assign, til_kmeans_info *info, til_err *e);
int til_kmeans_fast(const float *X, uint64_t n, int d, int K, int max_iter, uint64_t seed, int threads,
                    float *centers, uint32_t *assign, til_kmeans_info *info, til_err *e);

#endif
