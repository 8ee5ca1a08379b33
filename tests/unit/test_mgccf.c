/* Unit tests of the Multi-GCCF backbone: the top-k cosine similarity graphs
 * against a brute-force reference (dense co-occurrences, full sort); the
 * whole BPR batch gradient (embeddings and every weight matrix, through the
 * tanh's, the linear layers, the mean and sum aggregations and the L2 term)
 * against finite differences of a double-precision reference of the
 * equations in til_mgccf.h; 1 and 3 threads giving the same bits; the
 * batch-restricted forward equal to the full one on the batch's rows; the
 * jvp (embedding and weight directions) against central differences of the
 * double reference, its transpose against backward, and TIL's meta-gradient
 * on MGCCF against the double oracle of meta_ref.h, also for TIL-MI with the
 * clustering loss (ref_mi_check). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "til_backbone.h"
#include "til_inter.h"
#include "til_mgccf.h"
#include "til_rng.h"
#include "til_train.h"
#include "unit.h"
#include "til_tilm.h"
#include "meta_ref.h"

/* ------------------------------------------------------------------ brute-force top-k */

typedef struct {
    int id;
    uint64_t c, d;
} bf_cand;

static int bf_cmp(const void *pa, const void *pb)
{
    const bf_cand *a = pa, *b = pb;
    /* cos^2 = c^2 / (d_r d): larger first, then smaller id */
    uint64_t x = a->c * a->c * b->d, y = b->c * b->c * a->d;
    if (x != y)
        return x > y ? -1 : 1;
    return a->id - b->id;
}

static int cmp_int(const void *a, const void *b) { return *(const int *)a - *(const int *)b; }

/* M: n x nc dense 0/1; out[r]: up to k ids (increasing), n_out[r] */
static void bf_knn(const unsigned char *M, int n, int nc, int k, int *out, int *n_out)
{
    bf_cand *c = malloc(sizeof *c * (size_t)n);
    for (int r = 0; r < n; r++) {
        int m = 0;
        for (int q = 0; q < n; q++) {
            if (q == r)
                continue;
            uint64_t co = 0, d = 0;
            for (int x = 0; x < nc; x++) {
                co += M[r * nc + x] & M[q * nc + x];
                d += M[q * nc + x];
            }
            if (co)
                c[m++] = (bf_cand){q, co, d};
        }
        qsort(c, (size_t)m, sizeof *c, bf_cmp);
        n_out[r] = m < k ? m : k;
        for (int q = 0; q < n_out[r]; q++)
            out[r * k + q] = c[q].id;
        qsort(out + r * k, (size_t)n_out[r], sizeof(int), cmp_int);
    }
    free(c);
}

static void make_random(til_inter *t, uint32_t nu, uint32_t ni, double p, uint64_t seed)
{
    til_rng r;
    til_rng_seed(&r, seed, 0);
    uint32_t *us = malloc(sizeof *us * nu * ni), *is = malloc(sizeof *is * nu * ni);
    uint64_t n = 0;
    for (uint32_t u = 0; u < nu; u++)
        for (uint32_t i = 0; i < ni; i++)
            if (til_rng_uniform(&r) < p)
                us[n] = u, is[n++] = i;
    til_err e;
    CHECK(til_inter_from_pairs(t, nu, ni, n, us, is, NULL, NULL, NULL, &e) == 0, "%s", e.msg);
    free(us);
    free(is);
}

static void check_knn(const til_knn *g, const unsigned char *M, int n, int nc, int k, const char *what)
{
    int *out = malloc(sizeof *out * (size_t)n * k), *n_out = malloc(sizeof *n_out * (size_t)n);
    bf_knn(M, n, nc, k, out, n_out);
    int bad = 0;
    CHECK(g->n == (uint64_t)n, "%s: %llu rows", what, (unsigned long long)g->n);
    for (int r = 0; r < n && !bad; r++) {
        int m = (int)(g->ptr[r + 1] - g->ptr[r]);
        bad = m != n_out[r];
        for (int q = 0; q < m && !bad; q++)
            bad = (int)g->col[g->ptr[r] + q] != out[r * k + q];
        CHECK(!bad, "%s k=%d: row %d differs from brute force", what, k, r);
    }
    free(out);
    free(n_out);
}

/* til_tanhf_fast against tanh() in double over [-20, 20] (dense near 0 and
 * around the 0.625 switch), oddness, and the special values */
TEST(tanhf_fast_accuracy)
{
    double worst = 0;
    float wx = 0;
    for (int q = 0; q <= 800000; q++) {
        float x = q <= 400000 ? -20.0f + 40.0f * (float)q / 400000.0f
                              : (q <= 600000 ? (float)(q - 500000) * 2e-5f : 0.625f + (float)(q - 700000) * 1e-6f);
        double ex = tanh((double)x), err = fabs((double)til_tanhf_fast(x) - ex) / (3e-7 + 3e-7 * fabs(ex));
        if (err > worst) {
            worst = err;
            wx = x;
        }
        CHECK(til_tanhf_fast(-x) == -til_tanhf_fast(x), "til_tanhf_fast not odd at %.9g", x);
    }
    CHECK(worst <= 1, "til_tanhf_fast off by %g x tolerance at %.9g (%.9g vs %.9g)", worst, wx, til_tanhf_fast(wx),
          tanh(wx));
    CHECK(til_tanhf_fast(0.0f) == 0.0f && til_tanhf_fast(1e-30f) == 1e-30f, "tanh(0), tanh(tiny) should be exact");
    CHECK(til_tanhf_fast(INFINITY) == 1.0f && til_tanhf_fast(-INFINITY) == -1.0f && isnan(til_tanhf_fast(NAN)),
          "tanh(+-inf) = +-1, tanh(NaN) = NaN");
}

TEST(knn_matches_brute_force)
{
    til_inter t;
    enum { U = 40, I = 30 };
    make_random(&t, U, I, 0.15, 7);
    static unsigned char MU[U * I], MI[I * U];
    memset(MU, 0, sizeof MU);
    memset(MI, 0, sizeof MI);
    for (uint32_t u = 0; u < U; u++)
        for (uint64_t q = t.indptr[u]; q < t.indptr[u + 1]; q++)
            MU[u * I + t.items[q]] = MI[t.items[q] * U + u] = 1;
    til_err e;
    for (int k = 1; k <= 12; k += 11) {
        for (int th = 1; th <= 3; th += 2) {
            til_backbone bb;
            if (til_mgccf_init(&bb, &t, 4, k, 8, th, &e)) {
                CHECK(0, "init: %s", e.msg);
                continue;
            }
            check_knn(til_mgccf_user_graph(&bb), MU, U, I, k, "user-user");
            check_knn(til_mgccf_item_graph(&bb), MI, I, U, k, "item-item");
            til_backbone_free(&bb);
        }
    }
    til_inter_free(&t);
    /* exact ties, k = 1: users 0, 1, 2 {0,1} pick the smallest other id; user 3 {0}: users
     * 0, 1, 2 (c 1, d 2: cos^2 1/2) beat user 4 {0,1,2,3} (c 1, d 4: 1/4), tie to 0 */
    uint32_t tu[] = {0, 0, 1, 1, 2, 2, 3, 4, 4, 4, 4}, ti[] = {0, 1, 0, 1, 0, 1, 0, 0, 1, 2, 3};
    CHECK(til_inter_from_pairs(&t, 5, 4, 11, tu, ti, NULL, NULL, NULL, &e) == 0, "%s", e.msg);
    til_backbone bb;
    CHECK(til_mgccf_init(&bb, &t, 4, 1, 8, 1, &e) == 0, "%s", e.msg);
    const til_knn *g = til_mgccf_user_graph(&bb);
    CHECK(g->col[g->ptr[0]] == 1 && g->col[g->ptr[1]] == 0 && g->col[g->ptr[2]] == 0, "tie to the smaller id");
    CHECK(g->col[g->ptr[3]] == 0, "user 3: %u", g->col[g->ptr[3]]);
    til_backbone_free(&bb);
    til_inter_free(&t);
}

/* ------------------------------------------------------------------ the gradient */

enum { NU = 5, NI = 7, N = NU + NI, D = 4, NB = 9, KS = 2, NP = N + 10 * D };
static const uint32_t BU[NB] = {0, 1, 0, 4, 2, 0, 3, 1, 4};
static const uint32_t BI[NB] = {1, 2, 1, 6, 3, 5, 0, 2, 6};
static const uint32_t BJ[NB] = {3, 0, 4, 1, 6, 2, 2, 5, 0};
/* user 3 has one item, item 4 none (degree-0 node: a = 0, no similar items) */
static const uint32_t TU[] = {0, 0, 0, 1, 1, 2, 2, 3, 4, 4, 4};
static const uint32_t TI[] = {1, 2, 5, 2, 6, 3, 0, 0, 6, 1, 5};

typedef struct {
    int deg[N], nb[N][N];     /* bipartite neighbours, node ids */
    int ns[N], sim[N][N];     /* similarity neighbours, node ids */
} ref_graph;

static void ref_graph_make(ref_graph *g, const til_inter *t, const til_backbone *bb)
{
    memset(g, 0, sizeof *g);
    for (uint32_t u = 0; u < NU; u++)
        for (uint64_t q = t->indptr[u]; q < t->indptr[u + 1]; q++) {
            int i = NU + (int)t->items[q];
            g->nb[u][g->deg[u]++] = i;
            g->nb[i][g->deg[i]++] = (int)u;
        }
    /* similarity graphs from brute force (checked against the library's) */
    static unsigned char MU[NU * NI], MI[NI * NU];
    memset(MU, 0, sizeof MU);
    memset(MI, 0, sizeof MI);
    for (uint32_t u = 0; u < NU; u++)
        for (uint64_t q = t->indptr[u]; q < t->indptr[u + 1]; q++)
            MU[u * NI + t->items[q]] = MI[t->items[q] * NU + u] = 1;
    int out[N * KS], n_out[N];
    bf_knn(MU, NU, NI, KS, out, n_out);
    for (int u = 0; u < NU; u++)
        for (int q = 0; q < n_out[u]; q++)
            g->sim[u][g->ns[u]++] = out[u * KS + q];
    bf_knn(MI, NI, NU, KS, out, n_out);
    for (int i = 0; i < NI; i++)
        for (int q = 0; q < n_out[i]; q++)
            g->sim[NU + i][g->ns[NU + i]++] = NU + out[i * KS + q];
    check_knn(til_mgccf_user_graph(bb), MU, NU, NI, KS, "tiny user-user");
    check_knn(til_mgccf_item_graph(bb), MI, NI, NU, KS, "tiny item-item");
}

/* y = x W (W: din x D row-major) */
static void ref_vm(const double *x, const double *W, int din, double *y)
{
    for (int j = 0; j < D; j++) {
        double s = 0;
        for (int k = 0; k < din; k++)
            s += x[k] * W[k * D + j];
        y[j] = s;
    }
}

/* f for every node (double), straight from the equations */
static void ref_forward(const ref_graph *g, const double *P, double *F)
{
    for (int r = 0; r < N; r++) {
        const double *W0 = P + (N + (r >= NU ? 5 * D : 0)) * D;
        const double *Q = W0, *W = W0 + D * D, *M = W0 + 3 * D * D, *S = W0 + 4 * D * D;
        double a[D] = {0}, b[D] = {0}, en[2 * D], n[D], h[D], z[D], s[D];
        for (int q = 0; q < g->deg[r]; q++)
            for (int k = 0; k < D; k++)
                a[k] += P[g->nb[r][q] * D + k] / g->deg[r];
        for (int q = 0; q < g->ns[r]; q++)
            for (int k = 0; k < D; k++)
                b[k] += P[g->sim[r][q] * D + k];
        ref_vm(a, Q, D, n);
        for (int k = 0; k < D; k++) {
            n[k] = tanh(n[k]);
            en[k] = P[r * D + k];
            en[D + k] = n[k];
        }
        ref_vm(en, W, 2 * D, h);
        ref_vm(b, M, D, z);
        ref_vm(P + r * D, S, D, s);
        for (int k = 0; k < D; k++)
            F[r * D + k] = tanh(h[k]) + tanh(z[k]) + tanh(s[k]);
    }
}

static double ref_loss(const ref_graph *g, const double *P, double reg)
{
    double F[N * D], loss = 0, l2 = 0;
    ref_forward(g, P, F);
    for (int b = 0; b < NB; b++) {
        int r3[3] = {(int)BU[b], NU + (int)BI[b], NU + (int)BJ[b]};
        double x = 0;
        for (int k = 0; k < D; k++)
            x += F[r3[0] * D + k] * (F[r3[1] * D + k] - F[r3[2] * D + k]);
        loss += log1p(exp(-x));
        for (int q = 0; q < 3; q++)
            for (int k = 0; k < D; k++)
                l2 += P[r3[q] * D + k] * P[r3[q] * D + k];
    }
    return loss / NB + reg * 0.5 * l2 / NB;
}

static void make_tiny(til_inter *t)
{
    til_err e;
    CHECK(til_inter_from_pairs(t, NU, NI, sizeof TU / sizeof *TU, TU, TI, NULL, NULL, NULL, &e) == 0, "%s", e.msg);
}

/* the library's batch gradient (G in parameter-row order) and loss */
static int lib_grad(const til_inter *t, int threads, double reg, const float *P, float *G, double *loss, float *Fb,
                    float *Fall)
{
    til_err e;
    til_backbone bb;
    til_step_buf sb;
    if (til_mgccf_init(&bb, t, D, KS, NB, threads, &e) || til_step_buf_alloc(&sb, NB, D, &e)) {
        CHECK(0, "init: %s", e.msg);
        return -1;
    }
    CHECK(bb.n_param == NP && bb.rows_cap == NP, "n_param %llu", (unsigned long long)bb.n_param);
    free(sb.G);
    sb.G = calloc(bb.rows_cap * D, sizeof(float));
    memcpy(bb.param, P, sizeof(float) * NP * D);
    til_batch b = {NB, BU, BI, BJ};
    double l2;
    int rc = bb.ops->backward(&bb, &b, sb.dU, sb.dQi, sb.dQj, 0, sb.G, &l2, threads, &e);
    CHECK(rc == -1 && strstr(e.msg, "forward"), "backward before forward must fail");
    rc = bb.ops->prepare(&bb, &b, &e) || til_batch_grad(&bb, &b, reg, threads, &sb, loss, &e);
    CHECK(rc == 0, "grad: %s", e.msg);
    CHECK(bb.n_rows == NP && bb.rows[NP - 1] == NP - 1, "mgccf rows: all, in order");
    memcpy(G, sb.G, sizeof(float) * NP * D);
    memcpy(Fb, bb.U, sizeof(float) * N * D); /* valid on the batch's rows */
    /* a second batch on the same backbone gives the same gradient (scratch reset) */
    rc = rc || bb.ops->prepare(&bb, &b, &e) || til_batch_grad(&bb, &b, reg, threads, &sb, &l2, &e);
    CHECK(rc == 0 && memcmp(G, sb.G, sizeof(float) * NP * D) == 0 && l2 == *loss, "second batch differs");
    rc = rc || bb.ops->forward(&bb, NULL, threads, &e);
    memcpy(Fall, bb.U, sizeof(float) * N * D);
    til_step_buf_free(&sb);
    til_backbone_free(&bb);
    return rc ? -1 : 0;
}

TEST(mgccf_bpr_backward_fd)
{
    til_inter t;
    make_tiny(&t);
    til_err e;
    til_backbone bb;
    if (til_mgccf_init(&bb, &t, D, KS, NB, 1, &e)) {
        CHECK(0, "%s", e.msg);
        return;
    }
    static ref_graph g;
    ref_graph_make(&g, &t, &bb);
    /* the trainer's init, scaled so that scores and tanh's are not flat */
    til_init_xavier(bb.param, NU, D, 3, 0);
    til_init_xavier(bb.param + NU * D, NI, D, 3, 1);
    bb.ops->init(&bb, 5);
    for (int q = 0; q < NP * D; q++)
        bb.param[q] *= q < N * D ? 2.0f : 1.5f;
    static float P[NP * D], G[NP * D], G3[NP * D], Fb[N * D], Fa[N * D], Fb3[N * D], Fa3[N * D];
    memcpy(P, bb.param, sizeof P);
    til_backbone_free(&bb);
    double reg = 0.05, loss, l3;
    if (lib_grad(&t, 1, reg, P, G, &loss, Fb, Fa) || lib_grad(&t, 3, reg, P, G3, &l3, Fb3, Fa3)) {
        til_inter_free(&t);
        return;
    }
    CHECK(memcmp(G, G3, sizeof G) == 0 && loss == l3, "1 and 3 threads differ");
    CHECK(memcmp(Fa, Fa3, sizeof Fa) == 0, "forward(NULL): 1 and 3 threads differ");
    /* the batch's rows: batch forward == full forward, bit for bit */
    for (int b = 0; b < NB; b++) {
        int r3[3] = {(int)BU[b], NU + (int)BI[b], NU + (int)BJ[b]};
        for (int q = 0; q < 3; q++)
            CHECK(memcmp(Fb + r3[q] * D, Fa + r3[q] * D, D * sizeof(float)) == 0, "row %d: batch forward differs",
                  r3[q]);
    }
    static double Pd[NP * D], ref[NP * D], got[NP * D], Fr[N * D], Fg[N * D];
    for (int q = 0; q < NP * D; q++)
        Pd[q] = P[q];
    ref_forward(&g, Pd, Fr);
    for (int q = 0; q < N * D; q++)
        Fg[q] = Fa[q];
    CHECK_CLOSE("f (forward(NULL)) vs double reference", Fg, Fr, N * D, 1e-6, 1e-5);
    double l0 = ref_loss(&g, Pd, reg);
    CHECK(fabs(loss - l0) < 1e-5 * (1 + fabs(l0)), "loss %.9g ref %.9g", loss, l0);
    for (int q = 0; q < NP * D; q++) {
        double h = 1e-6, x = Pd[q];
        Pd[q] = x + h;
        double lp = ref_loss(&g, Pd, reg);
        Pd[q] = x - h;
        double lm = ref_loss(&g, Pd, reg);
        Pd[q] = x;
        ref[q] = (lp - lm) / (2 * h);
        got[q] = G[q];
    }
    CHECK_CLOSE("dL/dE0 (embeddings)", got, ref, N * D, 1e-6, 1e-4);
    static const char *names[5] = {"Q", "W[0..D)", "W[D..2D)", "M", "S"};
    for (int side = 0; side < 2; side++)
        for (int w = 0; w < 5; w++) {
            char what[64];
            snprintf(what, sizeof what, "dL/d%s of the %s", names[w], side ? "items" : "users");
            int o = (N + (side * 5 + w) * D) * D;
            CHECK_CLOSE(what, got + o, ref + o, D * D, 1e-6, 1e-4);
        }
    double gmax = 0;
    for (int q = N * D; q < NP * D; q++)
        gmax = fmax(gmax, fabs(ref[q]));
    CHECK(gmax > 1e-3, "weight gradients are not all tiny (%g)", gmax);
    til_inter_free(&t);
}

/* a larger random graph at D = 64: 1 thread, 3 threads, and 1 thread with the
 * D = 64 register path off (TIL_MGCCF_GENERIC=1): gradient, loss and the full
 * forward bit for bit */
TEST(mgccf_threads_same_bits)
{
    til_inter t;
    enum { U = 60, I = 80, DD = 64, BB = 50, NV = 3 };
    make_random(&t, U, I, 0.08, 11);
    uint32_t bu[BB], bi[BB], bj[BB];
    til_rng r;
    til_rng_seed(&r, 5, 0);
    for (int b = 0; b < BB; b++) {
        bu[b] = (uint32_t)til_rng_below(&r, U);
        bi[b] = (uint32_t)til_rng_below(&r, I);
        bj[b] = (uint32_t)til_rng_below(&r, I);
    }
    til_batch b = {BB, bu, bi, bj};
    uint64_t np = 0;
    float *G[NV] = {0}, *F[NV] = {0};
    double loss[NV] = {0};
    for (int v = 0; v < NV; v++) {
        int th = v == 1 ? 3 : 1;
        if (v == 2)
            setenv("TIL_MGCCF_GENERIC", "1", 1);
        til_err e;
        til_backbone bb;
        til_step_buf sb;
        if (til_mgccf_init(&bb, &t, DD, TIL_MGCCF_K, BB, th, &e) || til_step_buf_alloc(&sb, BB, DD, &e)) {
            CHECK(0, "%s", e.msg);
            break;
        }
        np = bb.n_param;
        free(sb.G);
        sb.G = calloc(np * DD, sizeof(float));
        til_init_xavier(bb.param, U, DD, 1, 0);
        til_init_xavier(bb.param + U * DD, I, DD, 1, 1);
        bb.ops->init(&bb, 2);
        G[v] = malloc(np * DD * sizeof(float));
        F[v] = malloc((U + I) * DD * sizeof(float));
        int rc = bb.ops->prepare(&bb, &b, &e) || til_batch_grad(&bb, &b, 1e-3, th, &sb, &loss[v], &e) ||
                 (memcpy(G[v], sb.G, np * DD * sizeof(float)), bb.ops->forward(&bb, NULL, th, &e));
        CHECK(rc == 0, "%s", e.msg);
        memcpy(F[v], bb.U, (U + I) * DD * sizeof(float));
        til_step_buf_free(&sb);
        til_backbone_free(&bb);
        unsetenv("TIL_MGCCF_GENERIC");
    }
    static const char *what[NV] = {"", "3 threads", "the generic D path"};
    for (int v = 1; v < NV; v++)
        if (G[0] && G[v]) {
            CHECK(memcmp(G[0], G[v], np * DD * sizeof(float)) == 0 && loss[0] == loss[v], "G: 1 thread and %s differ",
                  what[v]);
            CHECK(memcmp(F[0], F[v], (U + I) * DD * sizeof(float)) == 0, "f: 1 thread and %s differ", what[v]);
        }
    for (int v = 0; v < NV; v++)
        free(G[v]), free(F[v]);
    til_inter_free(&t);
}

TEST(mgccf_registry)
{
    til_inter t;
    make_tiny(&t);
    til_err e;
    til_backbone bb;
    til_backbone_opts o = {.train = &t, .layers = 2};
    CHECK(til_backbone_create_opts(&bb, "mgccf", NU, NI, D, NB, &o, &e) == -1 && strstr(e.msg, "layers"),
          "layers 2 rejected");
    CHECK(til_backbone_create_opts(&bb, "mgccf", NU, NI, D, NB, NULL, &e) == -1 && strstr(e.msg, "training"),
          "needs train");
    o.layers = 1;
    CHECK(til_backbone_create_opts(&bb, "mgccf", NU, NI, D, NB, &o, &e) == 0 && !strcmp(bb.ops->name, "mgccf"),
          "%s", e.msg);
    til_backbone_free(&bb);
    til_inter_free(&t);
}

/* ------------------------------------------------------------------ jvp and TIL meta-gradient */

enum { OB = 6 };
static const uint32_t OU[OB] = {3, 2, 0, 1, 4, 2}, OI[OB] = {0, 3, 2, 6, 5, 0}, OJ[OB] = {5, 1, 6, 3, 2, 4};

/* a backbone over the tiny graph with the scaled trainer init (P: NP x D) */
static int jv_make(til_backbone *bb, til_step_buf *sb, const til_inter *t, float *P)
{
    til_err e;
    if (til_mgccf_init(bb, t, D, KS, NB, 1, &e) || til_step_buf_alloc(sb, NB, D, &e)) {
        CHECK(0, "init: %s", e.msg);
        return -1;
    }
    free(sb->G);
    sb->G = calloc(bb->rows_cap * D, sizeof(float));
    til_init_xavier(bb->param, NU, D, 3, 0);
    til_init_xavier(bb->param + NU * D, NI, D, 3, 1);
    bb->ops->init(bb, 5);
    for (int q = 0; q < NP * D; q++)
        bb->param[q] *= q < N * D ? 2.0f : 1.5f;
    memcpy(P, bb->param, sizeof(float) * NP * D);
    return 0;
}

/* the tiny graph, an MGCCF backbone on it (jv_make) and its double reference */
typedef struct {
    til_inter t;
    til_backbone bb;
    til_step_buf sb;
    ref_graph g;
} jv_fix;

/* nonzero (nothing left to free) when the backbone could not be made */
static int jv_start(jv_fix *f, float *P)
{
    make_tiny(&f->t);
    if (jv_make(&f->bb, &f->sb, &f->t, P)) {
        til_inter_free(&f->t);
        return -1;
    }
    ref_graph_make(&f->g, &f->t, &f->bb);
    return 0;
}

static void jv_end(jv_fix *f)
{
    til_step_buf_free(&f->sb);
    til_backbone_free(&f->bb);
    til_inter_free(&f->t);
}

/* jvp == (F(P + h Dir) - F(P - h Dir)) / 2h of the double reference (h = 1e-5:
 * truncation ~h^2 = 1e-10, far below float rounding); want = batch gives the
 * batch's rows bit for bit and leaves the others; a row list == the same rows
 * scattered; 1 and 3 threads the same bits; <jvp(Dir), A> == <Dir, backward(A)>;
 * the forward state survives a jvp (backward afterwards gives the same G). */
TEST(mgccf_jvp)
{
    til_err e;
    static float P[NP * D], Dir[NP * D];
    static jv_fix f;
    if (jv_start(&f, P))
        return;
    til_init_xavier(Dir, NP, D, 9, 0);
    for (int q = 0; q < NP * D; q++)
        Dir[q] *= 4.0f;
    static float J[N * D], J3[N * D], Jb[N * D];
    CHECK(f.bb.ops->jvp(&f.bb, NULL, NP, Dir, NULL, J, J + NU * D, 1, &e) == 0, "jvp: %s", e.msg);
    CHECK(f.bb.ops->jvp(&f.bb, NULL, NP, Dir, NULL, J3, J3 + NU * D, 3, &e) == 0, "jvp 3");
    CHECK(memcmp(J, J3, sizeof J) == 0, "jvp: 1 and 3 threads differ");
    CHECK(memcmp(f.bb.param, P, sizeof P) == 0, "param untouched");
    static double Pp[NP * D], Pm[NP * D], Fp[N * D], Fm[N * D], ref[N * D], got[N * D];
    double h = 1e-5;
    for (int q = 0; q < NP * D; q++) {
        Pp[q] = P[q] + h * Dir[q];
        Pm[q] = P[q] - h * Dir[q];
    }
    ref_forward(&f.g, Pp, Fp);
    ref_forward(&f.g, Pm, Fm);
    for (int q = 0; q < N * D; q++) {
        ref[q] = (Fp[q] - Fm[q]) / (2 * h);
        got[q] = J[q];
    }
    CHECK_CLOSE("mgccf jvp vs central differences", got, ref, N * D, 1e-6, 1e-5);
    double jmax = 0;
    for (int q = 0; q < N * D; q++)
        jmax = fmax(jmax, fabs(ref[q]));
    CHECK(jmax > 0.1, "the tangent is not tiny (%g)", jmax);
    /* only the weight directions move f too */
    static float Dw[NP * D], Jw[N * D];
    memcpy(Dw + N * D, Dir + N * D, sizeof(float) * 10 * D * D);
    CHECK(f.bb.ops->jvp(&f.bb, NULL, NP, Dw, NULL, Jw, Jw + NU * D, 1, &e) == 0, "jvp weights");
    double wmax = 0;
    for (int q = 0; q < N * D; q++)
        wmax = fmax(wmax, fabs(Jw[q]));
    CHECK(wmax > 0.05, "weight directions move f (%g)", wmax);
    /* want = the batch: its rows bit for bit, others untouched */
    til_batch b = {NB, BU, BI, BJ};
    CHECK(f.bb.ops->jvp(&f.bb, NULL, NP, Dir, &b, Jb, Jb + NU * D, 1, &e) == 0, "jvp want");
    int inb[N] = {0};
    for (int k = 0; k < NB; k++)
        inb[BU[k]] = inb[NU + BI[k]] = inb[NU + BJ[k]] = 1;
    for (int r = 0; r < N; r++)
        for (int c = 0; c < D; c++)
            CHECK(Jb[r * D + c] == (inb[r] ? J[r * D + c] : 0.0f), "want: row %d", r);
    /* a row list: rows 2, 9 (embeddings), N + 3, N + 21 (weights) */
    uint32_t rl[4] = {N + 21, 2, 9, N + 3};
    static float Dr[4 * D], Full[NP * D], Jr[N * D], Jf[N * D];
    for (int k = 0; k < 4; k++)
        for (int c = 0; c < D; c++)
            Full[rl[k] * D + c] = Dr[k * D + c] = Dir[rl[k] * D + c];
    CHECK(f.bb.ops->jvp(&f.bb, rl, 4, Dr, NULL, Jr, Jr + NU * D, 1, &e) == 0 &&
              f.bb.ops->jvp(&f.bb, NULL, NP, Full, NULL, Jf, Jf + NU * D, 1, &e) == 0,
          "jvp rows");
    CHECK(memcmp(Jr, Jf, sizeof Jr) == 0, "row list != scattered");
    /* transpose, and the forward state surviving a jvp */
    float dU[NB * D], dQi[NB * D], dQj[NB * D];
    til_init_xavier(dU, NB, D, 5, 0);
    til_init_xavier(dQi, NB, D, 5, 1);
    til_init_xavier(dQj, NB, D, 5, 2);
    static float G0[NP * D];
    double l2, lhs, rhs;
    CHECK(f.bb.ops->prepare(&f.bb, &b, &e) == 0 && f.bb.ops->forward(&f.bb, &b, 1, &e) == 0 &&
              f.bb.ops->backward(&f.bb, &b, dU, dQi, dQj, 0.0f, f.sb.G, &l2, 1, &e) == 0,
          "backward");
    memcpy(G0, f.sb.G, sizeof G0);
    CHECK(f.bb.ops->jvp(&f.bb, NULL, NP, Dir, &b, Jb, Jb + NU * D, 1, &e) == 0, "jvp between");
    if (ref_transpose(&f.bb, &b, Dir, dU, dQi, dQj, f.sb.G, &lhs, &rhs) == 0) {
        CHECK(memcmp(G0, f.sb.G, sizeof G0) == 0, "backward after a jvp differs");
        CHECK(fabs(lhs - rhs) <= 1e-5 * (fabs(lhs) + 1e-3), "transpose %.9g vs %.9g", lhs, rhs);
    }
    jv_end(&f);
}

static void mg_scores_ref(void *ctx, const double *P, const til_batch *b, double *sp, double *sn)
{
    double F[N * D];
    ref_forward(ctx, P, F);
    ref_dot_scores(F, NU, D, b, sp, sn);
}

/* til_tilm_meta_generic on MGCCF == d/dw J_out(Theta - beta grad J_in(Theta; w))
 * (double oracle; the look-ahead is in parameter space, so the algorithm is
 * exact, not first order: float tolerance) */
TEST(mgccf_meta_grad_fd)
{
    static float P[NP * D];
    static jv_fix f;
    if (jv_start(&f, P))
        return;
    static double Pd[NP * D];
    for (int q = 0; q < NP * D; q++)
        Pd[q] = P[q];
    til_batch in = {NB, BU, BI, BJ}, out = {OB, OU, OI, OJ};
    ref_generic_check("mgccf dJ_out/dw", &f.bb, &f.sb, P, sizeof P, Pd, NP * D, NU, D, mg_scores_ref, &f.g, &in, &out, 0.05,
                      0.5);
    jv_end(&f);
}

static void mg_reps_ref(void *ctx, const double *P, double *F) { ref_forward(ctx, P, F); }

/* TIL-MI with the clustering loss on MGCCF (L_c on f, through its tanh's and
 * weight rows) against the double oracle (meta_ref.h ref_mi_check) */
TEST(mgccf_til_mi_gamma)
{
    static float P[NP * D];
    static jv_fix f;
    if (jv_start(&f, P))
        return;
    til_batch in = {NB, BU, BI, BJ}, b0 = {OB, OU, OI, OJ};
    ref_mi_check("mgccf", &f.bb, &f.sb, &f.t, mg_scores_ref, mg_reps_ref, &f.g, &b0, &in, 5.0, 0);
    jv_end(&f);
}

int main(void)
{
    RUN(tanhf_fast_accuracy);
    RUN(knn_matches_brute_force);
    RUN(mgccf_bpr_backward_fd);
    RUN(mgccf_threads_same_bits);
    RUN(mgccf_jvp);
    RUN(mgccf_meta_grad_fd);
    RUN(mgccf_til_mi_gamma);
    RUN(mgccf_registry);
    return unit_end();
}
