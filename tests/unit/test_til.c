/* Unit tests of the TIL mathematics: the weight network (BLAS vs reference,
 * finite differences), principal interest and states (against direct loops),
 * k-means (planted clusters, determinism, thread-count independence, empty
 * clusters), DEC (rows of Q and T, loss gradients by finite differences) and the
 * whole MF meta-gradient dJ_out/dLambda against central differences of a direct
 * double-precision computation of J_out(Theta - beta grad J_in(Theta, Lambda)). */
#include <string.h>

#include "til_cluster.h"
#include "til_inter.h"
#include "til_meta.h"
#include "til_rng.h"
#include "til_state.h"
#include "til_util.h"
#include "til_wnet.h"
#include "unit.h"
#include "wnet_ref.h"

static void fill_normal(til_rng *r, float *x, size_t n, double sd)
{
    for (size_t k = 0; k < n; k++)
        x[k] = (float)(til_rng_normal(r) * sd);
}

static double maxabs(const double *x, size_t n)
{
    double m = 0;
    for (size_t k = 0; k < n; k++)
        m = fmax(m, fabs(x[k]));
    return m;
}

/* ------------------------------------------------------ double references */

static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
static double sig(double x) { return 1 / (1 + exp(-x)); }

typedef struct {
    int nu, ni, d;
    const float *P, *Q;
    int n, m;
    const uint32_t *u, *i, *j;    /* inner */
    const uint32_t *ou, *oi, *oj; /* outer */
    double beta, reg, extra_c;    /* extra inner term (extra_c/2) sum over item rows |q|^2 */
} mf_problem;

/* J_out(Theta - beta grad J_in(Theta, w)), dense, in double */
static double ref_jout(const mf_problem *pb, const double *w)
{
    const int d = pb->d;
    size_t nu = (size_t)pb->nu * d, ni = (size_t)pb->ni * d;
    double *th = calloc(nu + ni, sizeof *th), *g = calloc(nu + ni, sizeof *g);
    for (size_t q = 0; q < nu; q++)
        th[q] = pb->P[q];
    for (size_t q = 0; q < ni; q++)
        th[nu + q] = pb->Q[q];
    for (int k = 0; k < pb->n; k++) {
        double *p = th + (size_t)pb->u[k] * d, *qi = th + nu + (size_t)pb->i[k] * d,
               *qj = th + nu + (size_t)pb->j[k] * d;
        double *gp = g + (size_t)pb->u[k] * d, *gi = g + nu + (size_t)pb->i[k] * d,
               *gj = g + nu + (size_t)pb->j[k] * d;
        double x = 0;
        for (int c = 0; c < d; c++)
            x += p[c] * (qi[c] - qj[c]);
        double a = w[k] * -sig(-x) / pb->n, r = pb->reg / pb->n;
        for (int c = 0; c < d; c++) {
            gp[c] += a * (qi[c] - qj[c]) + r * p[c];
            gi[c] += a * p[c] + r * qi[c];
            gj[c] += -a * p[c] + r * qj[c];
        }
    }
    for (size_t q = 0; q < ni; q++)
        g[nu + q] += pb->extra_c * th[nu + q];
    for (size_t q = 0; q < nu + ni; q++)
        th[q] -= pb->beta * g[q];
    double J = 0;
    for (int k = 0; k < pb->m; k++) {
        double *p = th + (size_t)pb->ou[k] * d, *qi = th + nu + (size_t)pb->oi[k] * d,
               *qj = th + nu + (size_t)pb->oj[k] * d;
        double x = 0;
        for (int c = 0; c < d; c++)
            x += p[c] * (qi[c] - qj[c]);
        J += softplus(-x);
    }
    free(th);
    free(g);
    return J / pb->m;
}

static void extra_items(void *ctx, int table, uint32_t row, const float *theta, int d, double *g)
{
    (void)row;
    double c = *(const double *)ctx;
    if (table == TIL_META_ITEM)
        for (int k = 0; k < d; k++)
            g[k] += c * theta[k];
}

/* ------------------------------------------------------------ weight net */

TEST(wnet_blas_matches_reference)
{
    til_err e;
    til_wnet m;
    til_wnet_cache c1, c2;
    const int n = 37, in = 16, h = 8;
    CHECK(til_wnet_init(&m, in, h, 3, &e) == 0, "init: %s", e.msg);
    CHECK(til_wnet_cache_init(&c1, &m, n, &e) == 0 && til_wnet_cache_init(&c2, &m, n, &e) == 0, "cache");
    til_rng r;
    til_rng_seed(&r, 5, 0);
    fill_normal(&r, m.b1, (size_t)h, 0.1);
    m.b2[0] = 0.2f;
    float S[37 * 16], w1[37], w2[37], dw[37];
    fill_normal(&r, S, sizeof S / sizeof *S, 1.0);
    fill_normal(&r, dw, (size_t)n, 1.0);
    til_wnet_forward(&m, &c1, S, n, w1);
    til_wnet_forward_ref(&m, &c2, S, n, w2);
    CHECK_CLOSE_F("forward w", w1, w2, (size_t)n, 1e-6, 1e-5);
    CHECK_CLOSE_F("forward z", c1.z, c2.z, (size_t)n * h, 1e-6, 1e-5);
    float *g1 = calloc(m.n_params, sizeof *g1), *g2 = calloc(m.n_params, sizeof *g2);
    g1[0] = g2[0] = 0.5f; /* backward adds: a nonzero start must survive */
    til_wnet_backward(&m, &c1, S, n, dw, g1);
    til_wnet_backward_ref(&m, &c2, S, n, dw, g2);
    CHECK_CLOSE_F("backward grad", g1, g2, m.n_params, 1e-6, 1e-5);
    /* init is seeded: the same seed gives the same parameters; Xavier bound */
    til_wnet m2;
    til_wnet_init(&m2, in, h, 3, &e);
    CHECK(memcmp(m2.W1, m.W1, (size_t)h * in * sizeof(float)) == 0, "init not reproducible");
    double a1 = sqrt(6.0 / (in + h)), mx = 0;
    for (int k = 0; k < h * in; k++)
        mx = fmax(mx, fabs(m2.W1[k]));
    CHECK(mx <= a1 && mx > 0.5 * a1, "W1 max %g vs Xavier bound %g", mx, a1);
    CHECK(m2.b1[0] == 0 && m2.b2[0] == 0, "biases not zero");
    free(g1);
    free(g2);
    til_wnet_free(&m);
    til_wnet_free(&m2);
    til_wnet_cache_free(&c1);
    til_wnet_cache_free(&c2);
}

TEST(wnet_backward_finite_differences)
{
    til_err e;
    til_wnet m;
    til_wnet_cache c;
    const int n = 5, in = 6, h = 4;
    til_wnet_init(&m, in, h, 11, &e);
    til_wnet_cache_init(&c, &m, n, &e);
    til_rng r;
    til_rng_seed(&r, 6, 0);
    fill_normal(&r, m.b1, (size_t)h, 0.2);
    m.b2[0] = -0.3f;
    float S[5 * 6], dw[5], w[5];
    fill_normal(&r, S, sizeof S / sizeof *S, 1.0);
    fill_normal(&r, dw, (size_t)n, 1.0);
    /* J = sum_k dw_k w_k, so dJ/dw = dw */
    til_wnet_forward(&m, &c, S, n, w);
    float *g = calloc(m.n_params, sizeof *g);
    til_wnet_backward(&m, &c, S, n, dw, g);
    size_t np = m.n_params;
    double *prm = calloc(np, sizeof *prm), *num = calloc(np, sizeof *num), *got = calloc(np, sizeof *got),
           wd[5];
    for (size_t q = 0; q < np; q++)
        prm[q] = m.params[q];
    for (size_t q = 0; q < np; q++) {
        double eps = 1e-6, save = prm[q], jp = 0, jm = 0;
        prm[q] = save + eps;
        ref_wnet(prm, in, h, S, n, wd);
        for (int k = 0; k < n; k++)
            jp += dw[k] * wd[k];
        prm[q] = save - eps;
        ref_wnet(prm, in, h, S, n, wd);
        for (int k = 0; k < n; k++)
            jm += dw[k] * wd[k];
        prm[q] = save;
        num[q] = (jp - jm) / (2 * eps);
        got[q] = g[q];
    }
    CHECK_CLOSE("dJ/dLambda", got, num, np, 1e-5 * maxabs(num, np), 1e-4);
    free(prm);
    free(num);
    free(got);
    free(g);
    til_wnet_free(&m);
    til_wnet_cache_free(&c);
}

/* ---------------------------------------------------------------- states */

TEST(state_eta_and_vectors_match_direct_loops)
{
    til_err e;
    const int nu = 4, ni = 6, d = 5;
    uint32_t us[] = {0, 0, 0, 1, 2, 2, 0};
    uint32_t is[] = {1, 3, 5, 2, 0, 5, 4};
    til_inter t; /* user 3 has no items */
    CHECK(til_inter_from_pairs(&t, nu, ni, 7, us, is, NULL, NULL, NULL, &e) == 0, "pairs: %s", e.msg);
    til_rng r;
    til_rng_seed(&r, 8, 0);
    float P[4 * 5], Q[6 * 5], C[3 * 5], eta[4 * 5], eta2[4 * 5], eta3[4 * 5];
    fill_normal(&r, P, sizeof P / sizeof *P, 1);
    fill_normal(&r, Q, sizeof Q / sizeof *Q, 1);
    fill_normal(&r, C, sizeof C / sizeof *C, 1);
    uint32_t memb[6] = {2, 0, 1, 1, 0, 2};
    til_state_eta(&t, Q, d, 1, eta);
    til_state_eta(&t, Q, d, 3, eta2);
    CHECK(memcmp(eta, eta2, sizeof eta) == 0, "eta depends on the thread count");
    double ref[4 * 5] = {0}, got[4 * 5];
    for (int u = 0; u < nu; u++) {
        int cnt = 0;
        for (int v = 0; v < ni; v++) {
            int has = 0;
            for (int k = 0; k < 7; k++)
                has |= us[k] == (uint32_t)u && is[k] == (uint32_t)v;
            if (!has)
                continue;
            cnt++;
            for (int c = 0; c < d; c++)
                ref[u * d + c] += Q[v * d + c];
        }
        for (int c = 0; c < d; c++)
            ref[u * d + c] = cnt ? ref[u * d + c] / cnt : 0;
    }
    for (int q = 0; q < nu * d; q++)
        got[q] = eta[q];
    CHECK_CLOSE("eta", got, ref, (size_t)nu * d, 1e-6, 1e-6);
    /* per-user refresh touches only the listed rows */
    for (int q = 0; q < nu * d; q++)
        eta3[q] = 99;
    uint32_t sel[] = {2, 0};
    til_state_eta_users(&t, Q, d, sel, 2, eta3);
    CHECK(memcmp(eta3, eta, (size_t)d * sizeof(float)) == 0 && memcmp(eta3 + 2 * d, eta + 2 * d, (size_t)d * 4) == 0,
          "eta_users rows differ");
    CHECK(eta3[d] == 99 && eta3[3 * d] == 99, "eta_users wrote an unlisted row");

    /* states against the written form of eqs. 5 and 6 */
    uint32_t bu[] = {0, 3, 0, 2}, bi[] = {1, 2, 3, 5}, bj[] = {4, 0, 1, 1};
    const int n = 4;
    float S[4 * 10];
    double sg[4 * 10], sr[4 * 10];
    for (int multi = 0; multi < 2; multi++) {
        float alpha = 0.7f;
        til_state_build(d, n, bu, bi, bj, P, Q, eta, multi ? C : NULL, multi ? memb : NULL, alpha, S);
        for (int k = 0; k < n; k++)
            for (int c = 0; c < d; c++) {
                const float *p = P + bu[k] * d, *et = eta + bu[k] * d;
                const float *qi = Q + bi[k] * d, *qj = Q + bj[k] * d;
                const float *mi = C + memb[bi[k]] * d, *mj = C + memb[bj[k]] * d;
                double a = (double)qi[c] * p[c] + (double)qi[c] * et[c];
                double b = (double)qj[c] * p[c] + (double)qj[c] * et[c];
                if (multi) {
                    a += alpha * ((double)mi[c] * p[c] + (double)mi[c] * et[c]);
                    b += alpha * ((double)mj[c] * p[c] + (double)mj[c] * et[c]);
                }
                sr[k * 2 * d + c] = a;
                sr[k * 2 * d + d + c] = b;
            }
        for (int q = 0; q < n * 2 * d; q++)
            sg[q] = S[q];
        CHECK_CLOSE(multi ? "multi-interest state" : "uni-interest state", sg, sr, (size_t)n * 2 * d, 1e-5, 1e-5);
    }
    til_inter_free(&t);
}

/* ---------------------------------------------------------------- k-means */

/* 4 planted clusters of 500 points in d = 8, centers 10 apart, noise sd 0.3 */
static float *planted(uint32_t *truth, int *n_out)
{
    const int n = 2000, d = 8, K = 4;
    float *X = malloc((size_t)n * d * sizeof *X);
    til_rng r;
    til_rng_seed(&r, 21, 0);
    for (int p = 0; p < n; p++) {
        int k = (p * 7) % K; /* interleaved, so chunks mix clusters */
        truth[p] = (uint32_t)k;
        for (int c = 0; c < d; c++)
            X[p * d + c] = (float)((c == k ? 10.0 : 0.0) + (c == k + 4 ? -5.0 : 0.0) + 0.3 * til_rng_normal(&r));
    }
    *n_out = n;
    return X;
}

TEST(kmeans_recovers_planted_clusters_deterministically)
{
    til_err e;
    uint32_t truth[2000], a1[2000], a2[2000], a3[2000];
    int n;
    float *X = planted(truth, &n);
    const int d = 8, K = 4;
    float C1[32], C2[32], C3[32];
    til_kmeans_info i1, i2;
    CHECK(til_kmeans(X, (uint64_t)n, d, K, 100, 9, 1, C1, a1, &i1, &e) == 0, "kmeans: %s", e.msg);
    CHECK(i1.converged, "not converged in %d iterations", i1.iters);
    /* a bijection between found and planted clusters */
    int map[4] = {-1, -1, -1, -1}, ok = 1;
    for (int p = 0; p < n; p++) {
        if (map[truth[p]] < 0)
            map[truth[p]] = (int)a1[p];
        ok &= map[truth[p]] == (int)a1[p];
    }
    for (int k = 0; k < K; k++)
        for (int l = k + 1; l < K; l++)
            ok &= map[k] != map[l];
    CHECK(ok, "planted clusters not recovered");
    CHECK(i1.inertia < n * d * 0.3 * 0.3 * 1.2, "inertia %g", i1.inertia);
    /* thread count and repetition do not change a bit */
    CHECK(til_kmeans(X, (uint64_t)n, d, K, 100, 9, 2, C2, a2, &i2, &e) == 0, "kmeans 2 threads");
    CHECK(memcmp(a1, a2, sizeof a1) == 0, "assignments differ between 1 and 2 threads");
    CHECK(memcmp(C1, C2, sizeof C1) == 0, "centers differ between 1 and 2 threads");
    CHECK(i1.iters == i2.iters && i1.inertia == i2.inertia, "info differs");
    CHECK(til_kmeans(X, (uint64_t)n, d, K, 100, 9, 3, C3, a3, NULL, &e) == 0 && memcmp(a1, a3, sizeof a1) == 0 &&
              memcmp(C1, C3, sizeof C1) == 0,
          "3 threads differ");
    CHECK(til_kmeans(X, (uint64_t)n, d, 0, 100, 9, 1, C3, a3, NULL, &e) == -1, "K = 0 accepted");
    free(X);
}

TEST(kmeans_reseeds_empty_cluster_and_survives_duplicates)
{
    til_err e;
    uint32_t truth[2000], a[2000];
    int n;
    float *X = planted(truth, &n);
    const int d = 8;
    /* the points of planted clusters 0..2; centers: two on clusters 0 and 1, the
     * third far from every point: it is empty after the first assignment and
     * must be re-seeded (with a point of cluster 2, the farthest from its center) */
    int m = 0;
    for (int p = 0; p < n; p++)
        if (truth[p] < 3)
            memmove(X + (size_t)m++ * d, X + (size_t)p * d, (size_t)d * sizeof *X);
    float C[3 * 8] = {0};
    C[0 * 8 + 0] = 10;
    C[0 * 8 + 4] = -5;
    C[1 * 8 + 1] = 10;
    C[1 * 8 + 5] = -5;
    for (int c = 0; c < d; c++)
        C[2 * 8 + c] = 1000;
    til_kmeans_info info;
    CHECK(til_kmeans_lloyd(X, (uint64_t)m, d, 3, 100, 2, C, a, &info, &e) == 0, "lloyd: %s", e.msg);
    CHECK(info.reseeded == 1 && info.converged, "reseeded %d converged %d", info.reseeded, info.converged);
    int seen[3] = {0};
    for (int p = 0; p < m; p++)
        seen[a[p]] = 1;
    CHECK(seen[0] && seen[1] && seen[2], "a cluster is still empty");
    CHECK(info.inertia < m * d * 0.3 * 0.3 * 1.2, "inertia %g: clusters not recovered", info.inertia);
    free(X);
    /* 10 points with 2 distinct values and K = 3: no crash, valid output */
    float Y[10 * 2];
    for (int p = 0; p < 10; p++)
        Y[2 * p] = Y[2 * p + 1] = (float)(p % 2);
    float CY[6];
    uint32_t ay[10];
    CHECK(til_kmeans(Y, 10, 2, 3, 20, 1, 2, CY, ay, &info, &e) == 0, "degenerate: %s", e.msg);
    int ok = 1;
    for (int p = 0; p < 10; p++)
        ok &= ay[p] < 3 && ay[p] == ay[p % 2];
    CHECK(ok, "degenerate assignments invalid");
    CHECK(info.inertia == 0, "degenerate inertia %g", info.inertia);
}

/* -------------------------------------------------------------------- DEC */

/* reference L_c in double with T fixed (table-shaped, via rows) */
static double ref_dec(const double *X, const uint32_t *rows, int n, int d, const double *C, int K, double tau,
                      const float *T, int mean)
{
    double L = 0;
    for (int r = 0; r < n; r++) {
        const double *x = X + rows[r] * d;
        double q[8], s = 0;
        for (int k = 0; k < K; k++) {
            double D = 0;
            for (int c = 0; c < d; c++)
                D += (x[c] - C[k * d + c]) * (x[c] - C[k * d + c]);
            q[k] = pow(1 + D / tau, -(tau + 1) / 2);
            s += q[k];
        }
        for (int k = 0; k < K; k++)
            L += T[rows[r] * K + k] * log(T[rows[r] * K + k] / (q[k] / s));
    }
    return mean ? L / n : L;
}

TEST(dec_soft_target_assign)
{
    til_rng r;
    til_rng_seed(&r, 31, 0);
    const int n = 9, d = 3, K = 4;
    float X[9 * 3], C[4 * 3], Qm[9 * 4], Q2[9 * 4], T[9 * 4];
    fill_normal(&r, X, sizeof X / sizeof *X, 1);
    fill_normal(&r, C, sizeof C / sizeof *C, 1);
    til_dec_soft(X, NULL, n, d, C, K, 1.0, 1, Qm);
    til_dec_soft(X, NULL, n, d, C, K, 1.0, 2, Q2);
    CHECK(memcmp(Qm, Q2, sizeof Qm) == 0, "soft assignment depends on the thread count");
    til_dec_target(Qm, n, K, T);
    uint32_t memb[9];
    til_dec_assign(Qm, n, K, memb);
    int ok = 1;
    for (int i = 0; i < n; i++) {
        double sq = 0, st = 0, best = INFINITY;
        int bk = 0;
        for (int k = 0; k < K; k++) {
            sq += Qm[i * K + k];
            st += T[i * K + k];
            double D = 0;
            for (int c = 0; c < d; c++)
                D += ((double)X[i * d + c] - C[k * d + c]) * ((double)X[i * d + c] - C[k * d + c]);
            if (D < best) {
                best = D;
                bk = k;
            }
            /* eq. 7 directly */
            double num = 1 / (1 + D), den = 0;
            for (int l = 0; l < K; l++) {
                double Dl = 0;
                for (int c = 0; c < d; c++)
                    Dl += ((double)X[i * d + c] - C[l * d + c]) * ((double)X[i * d + c] - C[l * d + c]);
                den += 1 / (1 + Dl);
            }
            ok &= fabs(Qm[i * K + k] - num / den) < 1e-6;
        }
        ok &= fabs(sq - 1) < 1e-5 && fabs(st - 1) < 1e-5 && memb[i] == (uint32_t)bk;
    }
    CHECK(ok, "Q/T rows do not sum to 1, Q differs from eq. 7, or membership is not the nearest center");
}

TEST(dec_loss_gradients_finite_differences)
{
    til_rng r;
    til_rng_seed(&r, 41, 0);
    const int nt = 7, d = 3, K = 3;
    float X[7 * 3], C[3 * 3], Qm[7 * 3], T[7 * 3];
    fill_normal(&r, X, sizeof X / sizeof *X, 1);
    fill_normal(&r, C, sizeof C / sizeof *C, 1);
    /* a target from slightly different centers, so T != Q */
    float C0[9];
    for (int q = 0; q < 9; q++)
        C0[q] = C[q] + 0.3f * (float)til_rng_normal(&r);
    til_dec_soft(X, NULL, nt, d, C0, K, 1.0, 1, Qm);
    til_dec_target(Qm, nt, K, T);
    uint32_t rows[] = {4, 1, 4, 6, 0}; /* row 4 twice */
    const int n = 5;
    double taus[] = {1.0, 2.5};
    for (int ti = 0; ti < 2; ti++)
        for (int mean = 0; mean < 2; mean++) {
            double tau = taus[ti], scale = 0.75;
            float gX[21] = {0}, gC[9] = {0};
            double L = til_dec_loss_grad(X, rows, n, d, C, K, tau, T, mean, scale, gX, gC);
            double Xd[21], Cd[9], num[30], got[30];
            for (int q = 0; q < 21; q++)
                Xd[q] = X[q];
            for (int q = 0; q < 9; q++)
                Cd[q] = C[q];
            double Lr = ref_dec(Xd, rows, n, d, Cd, K, tau, T, mean);
            CHECK(fabs(L - Lr) < 1e-6 * (1 + fabs(Lr)), "tau %g mean %d: loss %.9g ref %.9g", tau, mean, L, Lr);
            double eps = 1e-6;
            for (int q = 0; q < 30; q++) {
                double *v = q < 21 ? &Xd[q] : &Cd[q - 21], s = *v;
                *v = s + eps;
                double lp = ref_dec(Xd, rows, n, d, Cd, K, tau, T, mean);
                *v = s - eps;
                double lm = ref_dec(Xd, rows, n, d, Cd, K, tau, T, mean);
                *v = s;
                num[q] = scale * (lp - lm) / (2 * eps);
                got[q] = q < 21 ? gX[q] : gC[q - 21];
            }
            char what[64];
            snprintf(what, sizeof what, "dL_c/d(X, centers) tau %g mean %d", tau, mean);
            CHECK_CLOSE(what, got, num, 30, 1e-5 * maxabs(num, 30), 1e-4);
            /* the one-row form used for the look-ahead's extra gradient */
            double rg[21] = {0}, gx[21];
            for (int k = 0; k < n; k++)
                til_dec_row_grad(X + rows[k] * d, d, C, K, tau, T + rows[k] * K, mean ? scale / n : scale,
                                 rg + rows[k] * d);
            for (int q = 0; q < 21; q++)
                gx[q] = gX[q];
            CHECK_CLOSE("til_dec_row_grad", rg, gx, 21, 1e-6, 1e-5);
        }
}

/* the float/gemm fast paths against the double references: Q, T, loss, gradients
 * (tau = 1, the no-pow kernel, and tau = 2.5), the same bits for 1 and 3 threads;
 * k-means assignments equal on planted clusters */
TEST(dec_and_kmeans_fast_paths_match_reference)
{
    til_rng r;
    til_rng_seed(&r, 43, 0);
    const int nt = 700, n = 600, d = 64, K = 60;
    float *X = malloc((size_t)nt * d * sizeof *X), *C = malloc((size_t)K * d * sizeof *C);
    float *Q1 = malloc((size_t)nt * K * sizeof *Q1), *Q2 = malloc((size_t)nt * K * sizeof *Q2);
    float *T = malloc((size_t)nt * K * sizeof *T), *T2 = malloc((size_t)nt * K * sizeof *T2);
    float *g[6];
    for (int q = 0; q < 6; q++)
        g[q] = calloc((size_t)nt * d, sizeof(float));
    uint32_t *rows = malloc((size_t)n * sizeof *rows);
    fill_normal(&r, X, (uint64_t)nt * d, 0.2);
    for (int k = 0; k < K; k++)
        for (int c = 0; c < d; c++)
            C[k * d + c] = X[(size_t)(k * 11) * d + c] + 0.05f * (float)til_rng_normal(&r);
    for (int q = 0; q < n; q++)
        rows[q] = (uint32_t)((q * 37) % 500); /* repeats */
    til_err e = {0};
    double taus[] = {1.0, 2.5};
    for (int ti = 0; ti < 2; ti++) {
        double tau = taus[ti];
        til_dec_soft(X, NULL, nt, d, C, K, tau, 1, Q1);
        CHECK(til_dec_soft_fast(X, NULL, nt, d, C, K, tau, 3, Q2, &e) == 0, "soft fast: %s", e.msg);
        CHECK_CLOSE_F("Q fast vs double", Q2, Q1, (uint64_t)nt * K, 2e-6, 1e-4);
        til_dec_target(Q1, nt, K, T);
        til_dec_target(Q2, nt, K, T2);
        CHECK_CLOSE_F("T fast vs double", T2, T, (uint64_t)nt * K, 2e-6, 1e-4);
        til_dec_soft_fast(X, rows, n, d, C, K, tau, 1, Q1, &e);
        float worst = 0; /* rows addressing: listed row q is table row rows[q] */
        for (int q = 0; q < n; q++)
            for (int k = 0; k < K; k++)
                worst = fmaxf(worst, fabsf(Q1[(size_t)q * K + k] - Q2[(size_t)rows[q] * K + k]));
        CHECK(worst < 1e-6f, "row list addressing: %g", worst);
        /* a target from perturbed centers, so T != Q */
        for (int q = 0; q < K * d; q++)
            C[q] += 0.02f * (float)til_rng_normal(&r);
        for (int mean = 0; mean < 2; mean++) {
            for (int q = 0; q < 6; q++)
                memset(g[q], 0, (size_t)nt * d * sizeof(float));
            double L = til_dec_loss_grad(X, rows, n, d, C, K, tau, T, mean, 0.75, g[0], g[1]), L1, L3;
            CHECK(til_dec_loss_grad_fast(X, rows, n, d, C, K, tau, T, mean, 0.75, 1, g[2], g[3], &L1, &e) == 0 &&
                      til_dec_loss_grad_fast(X, rows, n, d, C, K, tau, T, mean, 0.75, 3, g[4], g[5], &L3, &e) == 0,
                  "loss fast: %s", e.msg);
            CHECK(fabs(L1 - L) <= 1e-4 * fabs(L) + 1e-9, "tau %g mean %d: loss fast %.9g double %.9g", tau, mean, L1,
                  L);
            CHECK(L1 == L3 && !memcmp(g[2], g[4], (size_t)nt * d * sizeof(float)) &&
                      !memcmp(g[3], g[5], (size_t)K * d * sizeof(float)),
                  "fast loss/gradients differ between 1 and 3 threads");
            float mx = 0, mc = 0;
            for (int q = 0; q < nt * d; q++)
                mx = fmaxf(mx, fabsf(g[0][q]));
            for (int q = 0; q < K * d; q++)
                mc = fmaxf(mc, fabsf(g[1][q]));
            CHECK_CLOSE_F("dL/dX fast vs double", g[2], g[0], (uint64_t)nt * d, 1e-3 * mx, 1e-3);
            CHECK_CLOSE_F("dL/dcenters fast vs double", g[3], g[1], (uint64_t)K * d, 1e-3 * mc, 1e-3);
        }
    }
    /* k-means: planted clusters, same assignments as the reference, any thread count */
    uint32_t truth[2000], a1[2000], a2[2000], a3[2000];
    int np;
    float *P = planted(truth, &np), C1[32], C2[32], C3[32];
    til_kmeans_info i1, i2;
    CHECK(til_kmeans(P, (uint64_t)np, 8, 4, 100, 9, 1, C1, a1, &i1, &e) == 0 &&
              til_kmeans_fast(P, (uint64_t)np, 8, 4, 100, 9, 1, C2, a2, &i2, &e) == 0 &&
              til_kmeans_fast(P, (uint64_t)np, 8, 4, 100, 9, 3, C3, a3, NULL, &e) == 0,
          "kmeans fast: %s", e.msg);
    CHECK(!memcmp(a1, a2, sizeof a1) && !memcmp(a2, a3, sizeof a2) && !memcmp(C2, C3, sizeof C2) &&
              i1.iters == i2.iters,
          "fast k-means differs from the reference or between thread counts");
    CHECK_CLOSE_F("k-means centers fast vs double", C2, C1, 32, 1e-5, 1e-5);
    free(P);
    free(X), free(C), free(Q1), free(Q2), free(T), free(T2), free(rows);
    for (int q = 0; q < 6; q++)
        free(g[q]);
}

/* til_logf_fast against log() in double; the special values the DEC loss relies on */
TEST(logf_fast_accuracy)
{
    double worst = 0;
    float wx = 0;
    for (int q = 0; q <= 600000; q++) {
        /* log-spaced over [1e-30, 1e30], plus a dense sweep around 1 */
        float x = q <= 400000 ? (float)pow(10.0, -30 + 60.0 * q / 400000) : 1.0f + (float)(q - 500000) * 1e-6f;
        double ex = log((double)x), err = fabs((double)til_logf_fast(x) - ex) / (3e-7 + 3e-7 * fabs(ex));
        if (err > worst) {
            worst = err;
            wx = x;
        }
    }
    CHECK(worst <= 1, "til_logf_fast off by %g x tolerance at %.9g (%.9g vs %.9g)", worst, wx, til_logf_fast(wx),
          log(wx));
    float z = til_logf_fast(0.0f), sub = til_logf_fast(1e-40f), inf = til_logf_fast(INFINITY);
    CHECK(isfinite(z) && fabsf(z + 88.0296919f) < 1e-4f && 0.0f * z == 0.0f && isfinite(sub),
          "til_logf_fast(0) = %g, (1e-40) = %g: the DEC loss needs them finite", z, sub);
    CHECK(isnan(inf) && isnan(til_logf_fast(NAN)), "til_logf_fast(inf / NaN) should be NaN");
}

/* til_dec_refresh_fast (Q, T and memberships in one pass) against til_dec_soft /
 * til_dec_target (double) and til_dec_assign on til_dec_soft_fast's Q; ties
 * between duplicated centers; the loss near equilibrium (T the target of Q at the
 * same centers: a small KL from large cancelling terms); til_dec_loss_grad_rows_fast
 * against til_dec_loss_grad_fast; all thread-count independent */
TEST(dec_refresh_and_rows_fast)
{
    til_rng r;
    til_rng_seed(&r, 47, 0);
    const int nt = 900, n = 700, d = 64, K = 60;
    float *X = malloc((size_t)nt * d * sizeof *X), *C = malloc((size_t)K * d * sizeof *C);
    float *Q = malloc((size_t)nt * K * sizeof *Q), *Qf = malloc((size_t)nt * K * sizeof *Qf);
    float *T = malloc((size_t)nt * K * sizeof *T), *T1 = malloc((size_t)nt * K * sizeof *T1),
          *T3 = malloc((size_t)nt * K * sizeof *T3);
    float *gX = calloc((size_t)nt * d, sizeof *gX), *gS = calloc((size_t)nt * d, sizeof *gS);
    float *gR1 = malloc((size_t)n * d * sizeof *gR1), *gR3 = malloc((size_t)n * d * sizeof *gR3);
    float gC[60 * 64], gC1[60 * 64], gC3[60 * 64];
    uint32_t *rows = malloc((size_t)n * sizeof *rows), *m1 = malloc((size_t)nt * 4), *m3 = malloc((size_t)nt * 4),
             *ma = malloc((size_t)nt * 4);
    fill_normal(&r, X, (uint64_t)nt * d, 0.2);
    for (int k = 0; k < K; k++)
        for (int c = 0; c < d; c++)
            C[k * d + c] = X[(size_t)(k * 13) * d + c] + 0.05f * (float)til_rng_normal(&r);
    memcpy(C + 59 * d, C + 3 * d, (size_t)d * sizeof *C); /* centers 3 and 59 tie exactly */
    for (int q = 0; q < n; q++)
        rows[q] = (uint32_t)((q * 53) % 800); /* repeats */
    til_err e = {0};
    double taus[] = {1.0, 2.5};
    for (int ti = 0; ti < 2; ti++) {
        double tau = taus[ti];
        CHECK(til_dec_refresh_fast(X, nt, d, C, K, tau, 1, T1, m1, &e) == 0 &&
                  til_dec_refresh_fast(X, nt, d, C, K, tau, 3, T3, m3, &e) == 0,
              "refresh: %s", e.msg);
        CHECK(!memcmp(T1, T3, (size_t)nt * K * sizeof *T1) && !memcmp(m1, m3, (size_t)nt * 4),
              "refresh differs between 1 and 3 threads");
        til_dec_soft(X, NULL, nt, d, C, K, tau, 1, Q);
        til_dec_target(Q, nt, K, T);
        CHECK_CLOSE_F("refresh T vs double", T1, T, (uint64_t)nt * K, 2e-6, 1e-4);
        CHECK(til_dec_soft_fast(X, NULL, nt, d, C, K, tau, 1, Qf, &e) == 0, "soft fast");
        til_dec_assign(Qf, nt, K, ma);
        int same = !memcmp(m1, ma, (size_t)nt * 4), tied = 0;
        for (int i = 0; i < nt; i++)
            tied += ma[i] == 3;
        CHECK(same && tied > 0, "refresh memberships differ from til_dec_assign (or no tie exercised: %d)", tied);
        /* the loss at the refresh's own centers: KL(T || Q) small */
        for (int mean = 0; mean < 2; mean++) {
            memset(gX, 0, (size_t)nt * d * sizeof *gX);
            memset(gC, 0, sizeof gC);
            double L = til_dec_loss_grad(X, rows, n, d, C, K, tau, T, mean, 0.5, NULL, NULL), Lf, L1, L3;
            CHECK(til_dec_loss_grad_fast(X, rows, n, d, C, K, tau, T1, mean, 0.5, 1, gX, gC, &Lf, &e) == 0,
                  "loss fast");
            CHECK(fabs(Lf - L) <= 1e-4 * fabs(L) && L > 0 && L < 0.1 * (mean ? 1 : n),
                  "tau %g mean %d near equilibrium: loss fast %.9g double %.9g", tau, mean, Lf, L);
            /* row-list order, set: the same numbers as the table-shaped accumulation */
            memset(gC1, 0, sizeof gC1);
            memset(gC3, 0, sizeof gC3);
            CHECK(til_dec_loss_grad_rows_fast(X, rows, n, d, C, K, tau, T1, mean, 0.5, 1, gR1, gC1, &L1, &e) == 0 &&
                      til_dec_loss_grad_rows_fast(X, rows, n, d, C, K, tau, T1, mean, 0.5, 3, gR3, gC3, &L3, &e) ==
                          0,
                  "rows fast: %s", e.msg);
            memset(gS, 0, (size_t)nt * d * sizeof *gS);
            for (int q = 0; q < n; q++)
                for (int c = 0; c < d; c++)
                    gS[(size_t)rows[q] * d + c] += gR1[(size_t)q * d + c];
            CHECK(L1 == Lf && L3 == Lf && !memcmp(gS, gX, (size_t)nt * d * sizeof *gX) &&
                      !memcmp(gC1, gC, sizeof gC) && !memcmp(gC3, gC, sizeof gC) &&
                      !memcmp(gR1, gR3, (size_t)n * d * sizeof *gR1),
                  "tau %g mean %d: rows fast differs from til_dec_loss_grad_fast or between thread counts", tau,
                  mean);
            int eq = 1; /* a repeated row gets equal entries */
            for (int q = 0; q < n && eq; q++)
                for (int p = q + 1; p < n && eq; p++)
                    if (rows[p] == rows[q])
                        eq = !memcmp(gR1 + (size_t)p * d, gR1 + (size_t)q * d, (size_t)d * sizeof *gR1);
            CHECK(eq, "repeated rows got different gradients");
        }
    }
    free(X), free(C), free(Q), free(Qf), free(T), free(T1), free(T3), free(gX), free(gS), free(gR1), free(gR3);
    free(rows), free(m1), free(m3), free(ma);
}

/* -------------------------------------------------------------- meta-grad */

enum { NU = 5, NI = 7, D = 4, H = 4, NB = 6 };
static float mfP[NU * D], mfQ[NI * D];
/* inner batch with repeated users (0 x3) and items (1 as positive twice and as
 * a negative; 3 in both roles) */
static const uint32_t bu[NB] = {0, 1, 0, 2, 3, 0}, bi[NB] = {1, 2, 1, 3, 4, 5}, bj[NB] = {6, 1, 3, 1, 0, 3};
/* a fresh outer batch: shares some rows with the inner one, has rows of its own */
static const uint32_t ou[5] = {4, 0, 2, 0, 1}, oi[5] = {2, 1, 6, 5, 1}, oj[5] = {3, 0, 0, 2, 6};

static void mf_setup(mf_problem *pb, int fresh, double extra_c)
{
    til_rng r;
    til_rng_seed(&r, 51, 0);
    fill_normal(&r, mfP, NU * D, 0.7);
    fill_normal(&r, mfQ, NI * D, 0.7);
    *pb = (mf_problem){NU, NI, D, mfP, mfQ, NB, fresh ? 5 : NB, bu, bi, bj, fresh ? ou : bu, fresh ? oi : bi,
                       fresh ? oj : bj, 1.0, 0.1, extra_c};
}

TEST(meta_dw_finite_differences)
{
    til_err e;
    til_meta_ws ws;
    CHECK(til_meta_ws_init(&ws, NU, NI, D, &e) == 0, "ws");
    for (int fresh = 0; fresh < 2; fresh++) {
        mf_problem pb;
        double ec = 0.3;
        mf_setup(&pb, fresh, ec);
        float w[NB] = {0.9f, 0.2f, 0.6f, 0.5f, 0.35f, 0.8f}, dw[NB];
        til_meta_batch in = {NB, bu, bi, bj}, out = {pb.m, pb.ou, pb.oi, pb.oj};
        til_meta_opts o = {pb.beta, pb.reg, extra_items, &ec};
        double J;
        CHECK(til_meta_dw(&ws, mfP, mfQ, &in, w, &out, &o, dw, &J, &e) == 0, "meta_dw: %s", e.msg);
        double wd[NB], num[NB], got[NB];
        for (int k = 0; k < NB; k++)
            wd[k] = w[k];
        double Jr = ref_jout(&pb, wd);
        CHECK(fabs(J - Jr) < 1e-9, "J_out %.17g ref %.17g", J, Jr);
        for (int k = 0; k < NB; k++) {
            double eps = 1e-6;
            wd[k] = w[k] + eps;
            double jp = ref_jout(&pb, wd);
            wd[k] = w[k] - eps;
            double jm = ref_jout(&pb, wd);
            wd[k] = w[k];
            num[k] = (jp - jm) / (2 * eps);
            got[k] = dw[k];
        }
        CHECK_CLOSE(fresh ? "dJ_out/dw (fresh outer batch)" : "dJ_out/dw (same batch)", got, num, NB,
                    1e-6 * maxabs(num, NB), 1e-5);
        CHECK(maxabs(num, NB) > 1e-3, "meta-gradient too small to be a test: %g", maxabs(num, NB));
        /* the map is left clean for the next call */
        int clean = 1;
        for (int q = 0; q < NU + NI; q++)
            clean &= ws.umap[q] == -1;
        CHECK(clean && ws.n_slots == 0, "row map not reset");
    }
    til_meta_ws_free(&ws);
}

/* a wider problem with many repeats: 64 inner and 48 outer triplets over 20 users
 * and 30 items, d = 16 */
TEST(meta_dw_many_repeats)
{
    til_err e;
    enum { nu = 20, ni = 30, d = 16, n = 64, m = 48 };
    static float P[nu * d], Q[ni * d];
    uint32_t u[n], i[n], j[n], uo[m], io[m], jo[m];
    til_rng r;
    til_rng_seed(&r, 71, 0);
    fill_normal(&r, P, nu * d, 0.5);
    fill_normal(&r, Q, ni * d, 0.5);
    float w[n], dw[n];
    for (int k = 0; k < n; k++) {
        u[k] = (uint32_t)til_rng_below(&r, nu);
        i[k] = (uint32_t)til_rng_below(&r, ni);
        j[k] = (uint32_t)til_rng_below(&r, ni);
        w[k] = (float)til_rng_uniform(&r);
    }
    for (int k = 0; k < m; k++) {
        uo[k] = (uint32_t)til_rng_below(&r, nu);
        io[k] = (uint32_t)til_rng_below(&r, ni);
        jo[k] = (uint32_t)til_rng_below(&r, ni);
    }
    mf_problem pb = {nu, ni, d, P, Q, n, m, u, i, j, uo, io, jo, 2.0, 0.05, 0};
    til_meta_ws ws;
    CHECK(til_meta_ws_init(&ws, nu, ni, d, &e) == 0, "ws");
    til_meta_batch in = {n, u, i, j}, out = {m, uo, io, jo};
    til_meta_opts o = {pb.beta, pb.reg, NULL, NULL};
    CHECK(til_meta_dw(&ws, P, Q, &in, w, &out, &o, dw, NULL, &e) == 0, "meta_dw: %s", e.msg);
    double wd[n], num[n], got[n];
    for (int k = 0; k < n; k++)
        wd[k] = w[k];
    for (int k = 0; k < n; k++) {
        double eps = 1e-6;
        wd[k] = w[k] + eps;
        double jp = ref_jout(&pb, wd);
        wd[k] = w[k] - eps;
        double jm = ref_jout(&pb, wd);
        wd[k] = w[k];
        num[k] = (jp - jm) / (2 * eps);
        got[k] = dw[k];
    }
    CHECK_CLOSE("dJ_out/dw (64 x 48, repeats)", got, num, n, 1e-6 * maxabs(num, n), 1e-5);
    uint32_t bad = ni;
    til_meta_batch oob = {1, u, &bad, j};
    CHECK(til_meta_dw(&ws, P, Q, &oob, w, &out, &o, dw, NULL, &e) == -1 && strstr(e.msg, "out of range"),
          "out-of-range item accepted: %s", e.msg);
    til_meta_ws_free(&ws);
}

TEST(meta_lambda_finite_differences)
{
    til_err e;
    til_meta_ws ws;
    til_wnet m;
    til_wnet_cache c;
    CHECK(til_meta_ws_init(&ws, NU, NI, D, &e) == 0, "ws");
    CHECK(til_wnet_init(&m, 2 * D, H, 61, &e) == 0 && til_wnet_cache_init(&c, &m, NB, &e) == 0, "wnet");
    til_rng r;
    til_rng_seed(&r, 62, 0);
    fill_normal(&r, m.b1, H, 0.1);
    m.b2[0] = 0.3f;
    const size_t np = m.n_params;
    double *prm = calloc(np, sizeof *prm), *num = calloc(np, sizeof *num), *got = calloc(np, sizeof *got);
    float *g = malloc(np * sizeof *g);
    for (int fresh = 0; fresh < 2; fresh++)
        for (int norm = 0; norm < 2; norm++) {
            mf_problem pb;
            double ec = fresh ? 0.2 : 0.0;
            mf_setup(&pb, fresh, ec);
            /* Multi-Interest states (constants in the meta-gradient) */
            float eta[NU * D], C[2 * D], S[NB * 2 * D], w[NB];
            uint32_t memb[NI] = {0, 1, 1, 0, 1, 0, 0};
            fill_normal(&r, eta, NU * D, 0.5);
            fill_normal(&r, C, 2 * D, 0.5);
            til_state_build(D, NB, bu, bi, bj, mfP, mfQ, eta, C, memb, 0.5f, S);
            til_wnet_forward(&m, &c, S, NB, w);
            til_meta_batch in = {NB, bu, bi, bj}, out = {pb.m, pb.ou, pb.oi, pb.oj};
            til_meta_opts o = {pb.beta, pb.reg, ec != 0 ? extra_items : NULL, &ec};
            memset(g, 0, np * sizeof *g);
            double J;
            CHECK(til_meta_grad_lambda(&ws, mfP, mfQ, &in, &out, &o, &m, &c, S, norm, g, NULL, &J, &e) == 0,
                  "grad_lambda: %s", e.msg);
            /* J_out as a function of Lambda, directly */
            for (size_t q = 0; q < np; q++)
                prm[q] = m.params[q];
            double wd[NB];
            for (size_t q = 0; q < np; q++) {
                double eps = 1e-6, save = prm[q], jj[2];
                for (int sgn = 0; sgn < 2; sgn++) {
                    prm[q] = save + (sgn ? -eps : eps);
                    ref_wnet(prm, 2 * D, H, S, NB, wd);
                    if (norm) {
                        double s = 0;
                        for (int k = 0; k < NB; k++)
                            s += wd[k];
                        for (int k = 0; k < NB; k++)
                            wd[k] /= s / NB;
                    }
                    jj[sgn] = ref_jout(&pb, wd);
                }
                prm[q] = save;
                num[q] = (jj[0] - jj[1]) / (2 * eps);
                got[q] = g[q];
            }
            char what[80];
            snprintf(what, sizeof what, "dJ_out/dLambda (%s outer batch, weight-norm %s)", fresh ? "fresh" : "same",
                     norm ? "on" : "off");
            CHECK_CLOSE(what, got, num, np, 1e-4 * maxabs(num, np), 1e-3);
            CHECK(maxabs(num, np) > 1e-4, "%s: too small to be a test (%g)", what, maxabs(num, np));
        }
    free(prm);
    free(num);
    free(got);
    free(g);
    til_wnet_free(&m);
    til_wnet_cache_free(&c);
    til_meta_ws_free(&ws);
}

int main(void)
{
    RUN(wnet_blas_matches_reference);
    RUN(wnet_backward_finite_differences);
    RUN(state_eta_and_vectors_match_direct_loops);
    RUN(kmeans_recovers_planted_clusters_deterministically);
    RUN(kmeans_reseeds_empty_cluster_and_survives_duplicates);
    RUN(dec_soft_target_assign);
    RUN(dec_loss_gradients_finite_differences);
    RUN(dec_and_kmeans_fast_paths_match_reference);
    RUN(logf_fast_accuracy);
    RUN(dec_refresh_and_rows_fast);
    RUN(meta_dw_finite_differences);
    RUN(meta_dw_many_repeats);
    RUN(meta_lambda_finite_differences);
    return unit_end();
}
