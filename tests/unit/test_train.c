/* Unit tests of the trainer's parts: BPR loss and MF backward against finite
 * differences (double-precision reference), lazy-exact dense Adam == eager
 * dense Adam bit for bit, one Adam step against the PyTorch formula by hand,
 * SparseAdam, thread-count independence of the batch gradient, and the
 * sampler (no training positive as a negative, every positive once). */
#include <string.h>

#include "til_adam.h"
#include "til_backbone.h"
#include "til_inter.h"
#include "til_loss.h"
#include "til_rng.h"
#include "til_sampler.h"
#include "til_train.h"
#include "unit.h"

TEST(softplus_sigmoid_stable)
{
    CHECK(til_softplus(-200.0f) >= 0 && til_softplus(-200.0f) < 1e-30f, "softplus(-200) %g", til_softplus(-200.0f));
    CHECK(fabsf(til_softplus(200.0f) - 200.0f) < 1e-4f, "softplus(200) %g", til_softplus(200.0f));
    CHECK(fabsf(til_softplus(0.0f) - logf(2.0f)) < 1e-7f, "softplus(0)");
    CHECK(til_sigmoid(-200.0f) >= 0 && til_sigmoid(200.0f) == 1.0f, "sigmoid extremes");
    /* d softplus / dz = sigmoid(z), by central differences in double */
    double ref[7], got[7];
    for (int k = 0; k < 7; k++) {
        double z = -9 + 3 * k, h = 1e-3;
        ref[k] = (log1p(exp(z + h)) - log1p(exp(z - h))) / (2 * h);
        got[k] = til_sigmoid((float)z);
    }
    CHECK_CLOSE("sigmoid = softplus'", got, ref, 7, 1e-6, 1e-5);
}

TEST(bpr_loss_grad_fd)
{
    float sp[5] = {2.0f, -1.0f, 0.3f, 30.0f, -30.0f}, sn[5] = {1.0f, 1.0f, 0.3f, -5.0f, 5.0f};
    float w[5] = {1, 2, 0.5f, 1, 1}, loss[5], gp[5], gn[5];
    til_loss_bpr(sp, sn, w, 0.5f, 0, 5, loss, gp, gn);
    double rl[5], gl[5], rg[5], gg[5], rn[5], gnn[5];
    for (int b = 0; b < 5; b++) {
        double x = (double)sp[b] - sn[b], h = 1e-4;
        rl[b] = w[b] * log1p(exp(-x));
        gl[b] = loss[b];
        rg[b] = 0.5 * w[b] * (log1p(exp(-(x + h))) - log1p(exp(-(x - h)))) / (2 * h);
        gg[b] = gp[b];
        rn[b] = -rg[b];
        gnn[b] = gn[b];
    }
    CHECK_CLOSE("bpr loss", gl, rl, 5, 1e-6, 1e-5);
    CHECK_CLOSE("dL/ds_pos", gg, rg, 5, 1e-6, 1e-4);
    CHECK_CLOSE("dL/ds_neg", gnn, rn, 5, 1e-6, 1e-4);
}

/* A small MF batch with repeated users and items (the reductions matter). */
enum { NU = 5, NI = 7, D = 19, NB = 9 };
static const uint32_t BU[NB] = {0, 1, 0, 4, 2, 0, 3, 1, 4};
static const uint32_t BI[NB] = {1, 2, 1, 6, 3, 5, 0, 2, 6};
static const uint32_t BJ[NB] = {3, 0, 4, 1, 6, 2, 2, 5, 0};

/* L(params) in double: mean softplus(-(p_u.q_i - p_u.q_j)) + reg 0.5 sum|e|^2 / B */
static double mf_loss_ref(const double *P, double reg)
{
    double L = 0, l2 = 0;
    for (int b = 0; b < NB; b++) {
        const double *pu = P + BU[b] * D, *qi = P + (NU + BI[b]) * D, *qj = P + (NU + BJ[b]) * D;
        double x = 0;
        for (int k = 0; k < D; k++) {
            x += pu[k] * (qi[k] - qj[k]);
            l2 += pu[k] * pu[k] + qi[k] * qi[k] + qj[k] * qj[k];
        }
        L += log1p(exp(-x));
    }
    return L / NB + reg * 0.5 * l2 / NB;
}

static int mf_grad(int threads, double reg, float *P0, float *Gdense, double *loss)
{
    til_err e;
    til_backbone bb;
    til_step_buf sb;
    if (til_mf_init(&bb, NU, NI, D, NB, &e) || til_step_buf_alloc(&sb, NB, D, &e)) {
        CHECK(0, "init: %s", e.msg);
        return -1;
    }
    memcpy(bb.param, P0, sizeof(float) * (NU + NI) * D);
    til_batch b = {NB, BU, BI, BJ};
    int rc = bb.ops->prepare(&bb, &b, &e) || til_batch_grad(&bb, &b, reg, threads, &sb, loss, &e);
    CHECK(rc == 0, "grad: %s", e.msg);
    memset(Gdense, 0, sizeof(float) * (NU + NI) * D);
    for (uint64_t k = 0; k < bb.n_rows; k++)
        memcpy(Gdense + (uint64_t)bb.rows[k] * D, sb.G + k * D, sizeof(float) * D);
    til_step_buf_free(&sb);
    til_backbone_free(&bb);
    return rc ? -1 : 0;
}

TEST(mf_bpr_backward_fd)
{
    float P[(NU + NI) * D], G[(NU + NI) * D];
    til_init_xavier(P, NU + NI, D, 3, 0);
    for (int k = 0; k < (NU + NI) * D; k++)
        P[k] *= 4; /* larger scores: the sigmoid is not flat */
    double reg = 0.05, loss;
    if (mf_grad(1, reg, P, G, &loss))
        return;
    double Pd[(NU + NI) * D], ref[(NU + NI) * D], got[(NU + NI) * D];
    for (int k = 0; k < (NU + NI) * D; k++)
        Pd[k] = P[k];
    double l0 = mf_loss_ref(Pd, reg);
    CHECK(fabs(loss - l0) < 1e-5 * (1 + fabs(l0)), "loss %.9g ref %.9g", loss, l0);
    for (int k = 0; k < (NU + NI) * D; k++) {
        double h = 1e-5, x = Pd[k];
        Pd[k] = x + h;
        double lp = mf_loss_ref(Pd, reg);
        Pd[k] = x - h;
        double lm = mf_loss_ref(Pd, reg);
        Pd[k] = x;
        ref[k] = (lp - lm) / (2 * h);
        got[k] = G[k];
    }
    CHECK_CLOSE("dL/dparam (MF-BPR + L2)", got, ref, (NU + NI) * D, 1e-6, 1e-4);
}

TEST(batch_grad_thread_independent)
{
    float P[(NU + NI) * D], G1[(NU + NI) * D], G3[(NU + NI) * D];
    til_init_xavier(P, NU + NI, D, 9, 0);
    double l1, l3;
    if (mf_grad(1, 1e-3, P, G1, &l1) || mf_grad(3, 1e-3, P, G3, &l3))
        return;
    CHECK(memcmp(G1, G3, sizeof G1) == 0 && l1 == l3, "1 and 3 threads differ");
    /* a batch big enough that the threaded paths really split (>= 512 triplets, >= 256 rows) */
    enum { BU_ = 200, BI_ = 300, BN = 3000, BD = 64 };
    til_err e;
    uint32_t *u = malloc(BN * 4), *i = malloc(BN * 4), *j = malloc(BN * 4);
    til_rng r;
    til_rng_seed(&r, 5, 0);
    for (int k = 0; k < BN; k++) {
        u[k] = (uint32_t)til_rng_below(&r, BU_);
        i[k] = (uint32_t)til_rng_below(&r, BI_);
        j[k] = (uint32_t)til_rng_below(&r, BI_);
    }
    float *G[2] = {0};
    uint64_t nrows = 0;
    double dl[2];
    for (int q = 0; q < 2; q++) {
        til_backbone bb;
        til_step_buf sb;
        CHECK(til_mf_init(&bb, BU_, BI_, BD, BN, &e) == 0 && til_step_buf_alloc(&sb, BN, BD, &e) == 0, "%s", e.msg);
        til_init_xavier(bb.param, BU_ + BI_, BD, 1, 0);
        til_batch b = {BN, u, i, j};
        CHECK(bb.ops->prepare(&bb, &b, &e) == 0 && til_batch_grad(&bb, &b, 1e-4, q ? 4 : 1, &sb, &dl[q], &e) == 0,
              "%s", e.msg);
        nrows = bb.n_rows;
        G[q] = malloc(nrows * BD * 4);
        memcpy(G[q], sb.G, nrows * BD * 4);
        til_step_buf_free(&sb);
        til_backbone_free(&bb);
    }
    CHECK(memcmp(G[0], G[1], nrows * BD * 4) == 0 && dl[0] == dl[1], "big batch: 1 and 4 threads differ");
    free(G[0]);
    free(G[1]);
    free(u);
    free(i);
    free(j);
}

/* Lazy exact dense Adam against the eager reference: many steps, random
 * sparse gradients, rows left untouched for long stretches; dims with and
 * without a vector tail. */
static void lazy_vs_eager(int dim, int threads)
{
    enum { R = 300, STEPS = 400 };
    til_err e;
    float *p0 = malloc(sizeof(float) * R * dim), *p1 = malloc(sizeof(float) * R * dim);
    til_init_xavier(p0, R, dim, 11, 0);
    memcpy(p1, p0, sizeof(float) * R * dim);
    til_adam lz, eg;
    CHECK(til_adam_init(&lz, TIL_ADAM_DENSE, p0, R, dim, 1e-2, 0.9, 0.999, 1e-8, &e) == 0, "%s", e.msg);
    CHECK(til_adam_init(&eg, TIL_ADAM_EAGER, p1, R, dim, 1e-2, 0.9, 0.999, 1e-8, &e) == 0, "%s", e.msg);
    uint32_t rows[R];
    float *G = malloc(sizeof(float) * R * dim);
    til_rng r;
    til_rng_seed(&r, 4, 0);
    for (int s = 0; s < STEPS; s++) {
        uint32_t n = 0;
        int frac = s < 200 ? 5 : 50; /* later: most rows idle for many steps */
        for (uint32_t q = 0; q < R; q++)
            if (til_rng_below(&r, 100) < (uint64_t)frac && q != 7) /* row 7 never has a gradient */
                rows[n++] = q;
        for (uint64_t k = 0; k < (uint64_t)n * dim; k++)
            G[k] = (float)til_rng_normal(&r) * (k % 3 == 0 ? 1e-3f : 1.0f);
        til_adam_catch_up(&lz, rows, n, threads);
        CHECK(til_adam_step(&lz, rows, G, n, threads, &e) == 0, "%s", e.msg);
        CHECK(til_adam_step(&eg, rows, G, n, threads, &e) == 0, "%s", e.msg);
    }
    til_adam_sync(&lz, threads);
    CHECK(memcmp(p0, p1, sizeof(float) * R * dim) == 0, "dim %d: lazy params differ from eager", dim);
    CHECK(memcmp(lz.m, eg.m, sizeof(float) * R * dim) == 0, "dim %d: lazy m differs", dim);
    CHECK(memcmp(lz.v, eg.v, sizeof(float) * R * dim) == 0, "dim %d: lazy v differs", dim);
    int moved = 0;
    for (int k = 0; k < dim; k++) /* row 7 had no gradient and still moved (dense semantics) */
        moved |= lz.m[7 * dim + k] != 0 || lz.v[7 * dim + k] != 0;
    CHECK(!moved, "row 7 m/v should stay 0 with zero gradients");
    til_adam_free(&lz);
    til_adam_free(&eg);
    free(p0);
    free(p1);
    free(G);
}

TEST(adam_lazy_exact_equals_eager)
{
    lazy_vs_eager(64, 1);
    lazy_vs_eager(64, 2);
    lazy_vs_eager(13, 3);
}

TEST(adam_step_by_hand)
{
    /* PyTorch Adam, 3 steps on 2 elements, computed here in double:
     * m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
     * p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps) */
    til_err e;
    float p[2] = {0.5f, -0.25f};
    float g[3][2] = {{0.1f, -2.0f}, {0.3f, 0.0f}, {-0.2f, 1.0f}};
    til_adam a;
    CHECK(til_adam_init(&a, TIL_ADAM_DENSE, p, 1, 2, 1e-3, 0.9, 0.999, 1e-8, &e) == 0, "%s", e.msg);
    double P[2] = {0.5, -0.25}, M[2] = {0}, V[2] = {0};
    uint32_t row = 0;
    for (int t = 1; t <= 3; t++) {
        CHECK(til_adam_step(&a, &row, g[t - 1], 1, 1, &e) == 0, "%s", e.msg);
        for (int k = 0; k < 2; k++) {
            M[k] = 0.9 * M[k] + 0.1 * g[t - 1][k];
            V[k] = 0.999 * V[k] + 0.001 * g[t - 1][k] * g[t - 1][k];
            P[k] -= 1e-3 / (1 - pow(0.9, t)) * M[k] / (sqrt(V[k]) / sqrt(1 - pow(0.999, t)) + 1e-8);
        }
        if (t == 1) /* first step: p -= lr * sign(g) (up to eps) */
            CHECK(fabs(p[0] - (0.5 - 1e-3)) < 1e-7 && fabs(p[1] - (-0.25 + 1e-3)) < 1e-7, "step 1: %.9g %.9g", p[0],
                  p[1]);
    }
    double got[2] = {p[0], p[1]};
    CHECK_CLOSE("Adam after 3 steps", got, P, 2, 1e-7, 1e-6);
    til_adam_free(&a);
}

TEST(sparse_adam_by_hand)
{
    /* SparseAdam: only rows with a gradient move; step size lr sqrt(1-b2^t)/(1-b1^t), denom sqrt(v)+eps */
    til_err e;
    float p[4] = {1, 1, 2, 2};
    float g[2] = {0.5f, -0.5f};
    til_adam a;
    CHECK(til_adam_init(&a, TIL_ADAM_SPARSE, p, 2, 2, 1e-2, 0.9, 0.999, 1e-8, &e) == 0, "%s", e.msg);
    uint32_t row = 1;
    double P = 2, M = 0, V = 0;
    for (int t = 1; t <= 2; t++) {
        CHECK(til_adam_step(&a, &row, g, 1, 1, &e) == 0, "%s", e.msg);
        M += (0.5 - M) * 0.1;
        V += (0.25 - V) * 0.001;
        P -= 1e-2 * sqrt(1 - pow(0.999, t)) / (1 - pow(0.9, t)) * M / (sqrt(V) + 1e-8);
    }
    CHECK(p[0] == 1 && p[1] == 1, "row without gradient moved");
    CHECK(fabs(p[2] - P) < 1e-6 && fabs(p[3] - (4 - P)) < 1e-6, "got %.9g %.9g want %.9g %.9g", p[2], p[3], P, 4 - P);
    til_adam_free(&a);
}

static void make_train(til_inter *t)
{
    /* 40 users x 30 items; user u has items (u*7 + 3k) % 30 for k < 5 + u % 20 (user 3 has 25 of 30) */
    uint32_t us[2000], is[2000];
    uint64_t n = 0, dups;
    til_err e;
    for (uint32_t u = 0; u < 40; u++) {
        uint32_t deg = u == 3 ? 25 : 5 + u % 20;
        for (uint32_t k = 0; k < deg; k++) {
            us[n] = u;
            is[n++] = u == 3 ? k : (u * 7 + 3 * k) % 30;
        }
    }
    CHECK(til_inter_from_pairs(t, 40, 30, n, us, is, NULL, NULL, &dups, &e) == 0, "%s", e.msg);
}

TEST(sampler_negatives_and_coverage)
{
    til_inter tr;
    til_err e;
    make_train(&tr);
    til_sampler s;
    CHECK(til_sampler_init(&s, TIL_SAMPLER_UNIFORM, &tr, 7, &e) == 0, "%s", e.msg);
    til_triplets a, b;
    CHECK(til_triplets_alloc(&a, tr.nnz, 1, &e) == 0 && til_triplets_alloc(&b, tr.nnz, 1, &e) == 0, "alloc");
    for (int ep = 1; ep <= 3; ep++) {
        CHECK(til_sampler_epoch(&s, ep, 1, &a, &e) == 0, "%s", e.msg);
        CHECK(til_sampler_epoch(&s, ep, 3, &b, &e) == 0, "%s", e.msg);
        CHECK(memcmp(a.u, b.u, tr.nnz * 4) == 0 && memcmp(a.i, b.i, tr.nnz * 4) == 0 &&
                  memcmp(a.j, b.j, tr.nnz * 4) == 0,
              "epoch %d depends on the thread count", ep);
        int bad = 0, inorder = 1;
        uint8_t seen[40 * 30] = {0};
        for (uint64_t k = 0; k < tr.nnz; k++) {
            bad += til_inter_has(&tr, a.u[k], a.j[k]) || a.j[k] >= 30;
            CHECK(til_inter_has(&tr, a.u[k], a.i[k]), "triplet %llu: (u, i) not a positive", (unsigned long long)k);
            seen[a.u[k] * 30 + a.i[k]]++;
            if (k && a.u[k] < a.u[k - 1])
                inorder = 0;
        }
        CHECK(bad == 0, "epoch %d: %d negatives are training positives", ep, bad);
        int once = 1;
        for (uint32_t u = 0; u < 40; u++)
            for (uint32_t i = 0; i < 30; i++)
                once &= seen[u * 30 + i] == (uint8_t)til_inter_has(&tr, u, i);
        CHECK(once, "epoch %d: some positive not visited exactly once", ep);
        CHECK(!inorder, "epoch %d: positives not shuffled", ep);
    }
    CHECK(til_sampler_epoch(&s, 2, 1, &b, &e) == 0, "%s", e.msg);
    CHECK(memcmp(a.u, b.u, tr.nnz * 4) != 0, "epochs 2 and 3 have the same order");
    til_triplets_free(&a);
    til_triplets_free(&b);
    til_sampler_free(&s);
    /* a user with every item: refused */
    uint32_t us[3] = {0, 0, 1}, is[3] = {0, 1, 0};
    til_inter full;
    CHECK(til_inter_from_pairs(&full, 2, 2, 3, us, is, NULL, NULL, NULL, &e) == 0, "%s", e.msg);
    CHECK(til_sampler_init(&s, TIL_SAMPLER_UNIFORM, &full, 1, &e) == -1 && strstr(e.msg, "every item"), "%s", e.msg);
    til_inter_free(&full);
    til_inter_free(&tr);
}

int main(void)
{
    RUN(softplus_sigmoid_stable);
    RUN(bpr_loss_grad_fd);
    RUN(mf_bpr_backward_fd);
    RUN(batch_grad_thread_independent);
    RUN(adam_lazy_exact_equals_eager);
    RUN(adam_step_by_hand);
    RUN(sparse_adam_by_hand);
    RUN(sampler_negatives_and_coverage);
    return unit_end();
}
