/* Unit tests of the graph and neural backbones: LightGCN propagation against a
 * dense double reference (forward, mean over layers), the whole LightGCN-BPR
 * batch gradient (through the backward propagation, the scatter and the L2
 * term) against finite differences, threaded == single-thread bits; NeuMF's
 * batch gradient (embeddings and every tower layer) against finite
 * differences of a double reference, its scorer against the pair reference,
 * and a model file scored through til_scorer_from_model; the jvp ops
 * (LightGCN's propagation, NeuMF's score_jvp) against finite differences and
 * their transposes against backward, and TIL's meta-gradient on both against
 * the double oracle of meta_ref.h; TIL-MI with the clustering loss (gamma > 0)
 * on MF (every meta path), LightGCN and NeuMF: dJ_out/dLambda and the step's
 * G against that oracle with gamma L_c in J_in (ref_mi_check). */
#include <stdlib.h>
#include <string.h>

#include "til_backbone.h"
#include "til_inter.h"
#include "til_lightgcn.h"
#include "til_model.h"
#include "til_neumf.h"
#include "til_scorers.h"
#include "til_rng.h"
#include "til_train.h"
#include "unit.h"
#include "til_tilm.h"
#include "meta_ref.h"

enum { NU = 5, NI = 7, N = NU + NI, D = 6, NB = 9 };
static const uint32_t BU[NB] = {0, 1, 0, 4, 2, 0, 3, 1, 4};
static const uint32_t BI[NB] = {1, 2, 1, 6, 3, 5, 0, 2, 6};
static const uint32_t BJ[NB] = {3, 0, 4, 1, 6, 2, 2, 5, 0};
/* training interactions (user 3 has one, item 4 none: degree-0 node) */
static const uint32_t TU[] = {0, 0, 0, 1, 1, 2, 2, 3, 4, 4, 4};
static const uint32_t TI[] = {1, 2, 5, 2, 6, 3, 0, 0, 6, 1, 5};

static void make_train(til_inter *t)
{
    til_err e;
    int rc = til_inter_from_pairs(t, NU, NI, sizeof TU / sizeof *TU, TU, TI, NULL, NULL, NULL, &e);
    CHECK(rc == 0, "from_pairs: %s", e.msg);
}

/* dense A_hat in double */
static void dense_ahat(const til_inter *t, double A[N][N])
{
    memset(A, 0, sizeof(double) * N * N);
    double deg[N] = {0};
    for (uint32_t u = 0; u < NU; u++)
        for (uint64_t k = t->indptr[u]; k < t->indptr[u + 1]; k++)
            deg[u]++, deg[NU + t->items[k]]++;
    for (uint32_t u = 0; u < NU; u++)
        for (uint64_t k = t->indptr[u]; k < t->indptr[u + 1]; k++) {
            int i = NU + (int)t->items[k];
            A[u][i] = A[i][u] = 1.0 / sqrt(deg[u] * deg[i]);
        }
}

/* F = mean_{l=0..L} A^l E (double) */
static void prop_ref(double A[N][N], int L, const double *E, double *F)
{
    double cur[N * D], nxt[N * D];
    memcpy(cur, E, sizeof cur);
    memcpy(F, E, sizeof cur);
    for (int l = 1; l <= L; l++) {
        for (int r = 0; r < N; r++)
            for (int k = 0; k < D; k++) {
                double s = 0;
                for (int c = 0; c < N; c++)
                    s += A[r][c] * cur[c * D + k];
                nxt[r * D + k] = s;
            }
        memcpy(cur, nxt, sizeof cur);
        for (int q = 0; q < N * D; q++)
            F[q] += cur[q];
    }
    for (int q = 0; q < N * D; q++)
        F[q] /= L + 1;
}

TEST(lightgcn_propagation_matches_dense)
{
    til_inter t;
    make_train(&t);
    til_err e;
    til_graph g;
    CHECK(til_graph_bipartite(&g, &t, &e) == 0, "%s", e.msg);
    static double A[N][N];
    dense_ahat(&t, A);
    float X[N * D], F[N * D], t1[N * D], t2[N * D];
    double Xd[N * D], ref[N * D], got[N * D];
    til_init_xavier(X, N, D, 1, 0);
    for (int q = 0; q < N * D; q++)
        Xd[q] = X[q];
    for (int L = 1; L <= 3; L++) {
        prop_ref(A, L, Xd, ref);
        til_lightgcn_propagate(&g, L, X, F, t1, t2, D, 1);
        for (int q = 0; q < N * D; q++)
            got[q] = F[q];
        char what[64];
        snprintf(what, sizeof what, "propagate L=%d vs dense", L);
        CHECK_CLOSE(what, got, ref, N * D, 1e-6, 1e-5);
        float F3[N * D];
        til_lightgcn_propagate(&g, L, X, F3, t1, t2, D, 3);
        CHECK(memcmp(F, F3, sizeof F) == 0, "L=%d: 1 and 3 threads differ", L);
    }
    /* the item of degree 0 keeps E0 / (L + 1) */
    CHECK(F[(NU + 4) * D] == X[(NU + 4) * D] / 4.0f, "degree-0 node");
    til_graph_free(&g);
    til_inter_free(&t);
}

/* LightGCN-BPR loss in double: BPR on F, L2 on the batch's layer-0 rows */
static double lgcn_loss_ref(double A[N][N], int L, const double *E, double reg)
{
    double F[N * D];
    prop_ref(A, L, E, F);
    double loss = 0, l2 = 0;
    for (int b = 0; b < NB; b++) {
        const double *pu = F + BU[b] * D, *qi = F + (NU + BI[b]) * D, *qj = F + (NU + BJ[b]) * D;
        const double *eu = E + BU[b] * D, *ei = E + (NU + BI[b]) * D, *ej = E + (NU + BJ[b]) * D;
        double x = 0;
        for (int k = 0; k < D; k++) {
            x += pu[k] * (qi[k] - qj[k]);
            l2 += eu[k] * eu[k] + ei[k] * ei[k] + ej[k] * ej[k];
        }
        loss += log1p(exp(-x));
    }
    return loss / NB + reg * 0.5 * l2 / NB;
}

static int lgcn_grad(const til_inter *t, int L, int threads, double reg, const float *P, float *G, double *loss)
{
    til_err e;
    til_backbone bb;
    til_step_buf sb;
    til_backbone_opts o = {.train = t, .layers = L};
    if (til_backbone_create_opts(&bb, "lightgcn", NU, NI, D, NB, &o, &e) || til_step_buf_alloc(&sb, NB, D, &e)) {
        CHECK(0, "init: %s", e.msg);
        return -1;
    }
    free(sb.G);
    sb.G = calloc(bb.rows_cap * D, sizeof(float));
    memcpy(bb.param, P, sizeof(float) * N * D);
    til_batch b = {NB, BU, BI, BJ};
    int rc = bb.ops->prepare(&bb, &b, &e) || til_batch_grad(&bb, &b, reg, threads, &sb, loss, &e);
    CHECK(rc == 0, "grad: %s", e.msg);
    CHECK(bb.n_rows == N && bb.rows[N - 1] == N - 1, "lightgcn rows: all, in order");
    memcpy(G, sb.G, sizeof(float) * N * D);
    /* a second batch on the same backbone gives the same gradient (scratch reset) */
    float G2[N * D];
    double l2;
    rc = rc || bb.ops->prepare(&bb, &b, &e) || til_batch_grad(&bb, &b, reg, threads, &sb, &l2, &e);
    memcpy(G2, sb.G, sizeof G2);
    CHECK(rc == 0 && memcmp(G, G2, sizeof G2) == 0 && l2 == *loss, "second batch differs");
    til_step_buf_free(&sb);
    til_backbone_free(&bb);
    return rc ? -1 : 0;
}

/* the parameters the gradient tests start from: Xavier (seed 3) times scale,
 * and their double copy in Pd (if not NULL) */
static void start_params(float *P, double *Pd, float scale)
{
    til_init_xavier(P, N, D, 3, 0);
    for (int q = 0; q < N * D; q++) {
        P[q] *= scale;
        if (Pd)
            Pd[q] = P[q];
    }
}

/* the LightGCN gradient tests' start: training graph, its dense A-hat, parameters */
static void lgcn_start(til_inter *t, double A[N][N], float *P, double *Pd, float scale)
{
    make_train(t);
    dense_ahat(t, A);
    start_params(P, Pd, scale);
}

TEST(lightgcn_bpr_backward_fd)
{
    til_inter t;
    static double A[N][N];
    float P[N * D], G[N * D], G3[N * D];
    double Pd[N * D], ref[N * D], got[N * D], reg = 0.05;
    lgcn_start(&t, A, P, Pd, 6); /* larger scores: the sigmoid is not flat */
    for (int L = 1; L <= 2; L++) {
        double loss, l3;
        if (lgcn_grad(&t, L, 1, reg, P, G, &loss) || lgcn_grad(&t, L, 3, reg, P, G3, &l3))
            break;
        CHECK(memcmp(G, G3, sizeof G) == 0 && loss == l3, "L=%d: 1 and 3 threads differ", L);
        double l0 = lgcn_loss_ref(A, L, Pd, reg);
        CHECK(fabs(loss - l0) < 1e-5 * (1 + fabs(l0)), "L=%d loss %.9g ref %.9g", L, loss, l0);
        for (int q = 0; q < N * D; q++) {
            double h = 1e-5, x = Pd[q];
            Pd[q] = x + h;
            double lp = lgcn_loss_ref(A, L, Pd, reg);
            Pd[q] = x - h;
            double lm = lgcn_loss_ref(A, L, Pd, reg);
            Pd[q] = x;
            ref[q] = (lp - lm) / (2 * h);
            got[q] = G[q];
        }
        char what[64];
        snprintf(what, sizeof what, "dL/dE0 (LightGCN L=%d, BPR + L2)", L);
        CHECK_CLOSE(what, got, ref, N * D, 1e-6, 1e-4);
    }
    til_inter_free(&t);
}

/* ------------------------------------------------------------------ NeuMF */

enum { ND = 8, NH = ND / 2, NH2 = NH / 2 };

static double relu_d(double x) { return x > 0 ? x : 0; }

/* the NeuMF score in double, weights from the packed tower t */
static double neumf_ref(const double *t, const double *pu, const double *qi)
{
    const double *W1 = t, *b1 = W1 + ND * NH, *W2 = b1 + NH, *b2 = W2 + NH * NH2, *wp = b2 + NH2, *bp = wp + NH + NH2;
    double x[ND], a1[NH], y = bp[0];
    for (int k = 0; k < NH; k++)
        x[k] = pu[NH + k], x[NH + k] = qi[NH + k];
    for (int j = 0; j < NH; j++) {
        double z = b1[j];
        for (int k = 0; k < ND; k++)
            z += x[k] * W1[k * NH + j];
        a1[j] = relu_d(z);
    }
    for (int j = 0; j < NH2; j++) {
        double z = b2[j];
        for (int k = 0; k < NH; k++)
            z += a1[k] * W2[k * NH2 + j];
        y += wp[NH + j] * relu_d(z);
    }
    for (int k = 0; k < NH; k++)
        y += wp[k] * pu[k] * qi[k];
    return y;
}

static double neumf_loss_ref(const double *P, double reg)
{
    const double *t = P + N * ND;
    double loss = 0, l2 = 0;
    for (int b = 0; b < NB; b++) {
        const double *pu = P + BU[b] * ND, *qi = P + (NU + BI[b]) * ND, *qj = P + (NU + BJ[b]) * ND;
        loss += log1p(exp(-(neumf_ref(t, pu, qi) - neumf_ref(t, pu, qj))));
        for (int k = 0; k < ND; k++)
            l2 += pu[k] * pu[k] + qi[k] * qi[k] + qj[k] * qj[k];
    }
    return loss / NB + reg * 0.5 * l2 / NB;
}

static int neumf_grad(int threads, double reg, float *P, uint64_t np, float *Gd, double *loss, int init)
{
    til_err e;
    til_backbone bb;
    til_step_buf sb;
    if (til_backbone_create_opts(&bb, "neumf", NU, NI, ND, NB, NULL, &e) || til_step_buf_alloc(&sb, NB, ND, &e)) {
        CHECK(0, "init: %s", e.msg);
        return -1;
    }
    CHECK(bb.n_param == np, "neumf n_param %llu", (unsigned long long)bb.n_param);
    if (init) { /* the trainer's init, scaled so that the sigmoid and the ReLUs are not flat */
        til_init_xavier(bb.param, N, ND, 3, 0);
        bb.ops->init(&bb, 5);
        for (uint64_t q = 0; q < np * ND; q++)
            bb.param[q] *= 3;
        float *b1 = bb.param + N * ND + ND * NH, *b2 = b1 + NH + NH * NH2;
        for (int q = 0; q < NH; q++) /* biases away from 0: no pre-activation sits on a ReLU kink */
            b1[q] = 0.1f * (q - 1.5f);
        for (int q = 0; q < NH2; q++)
            b2[q] = 0.07f * (q + 1);
        memcpy(P, bb.param, np * ND * sizeof(float));
    }
    memcpy(bb.param, P, np * ND * sizeof(float));
    til_batch b = {NB, BU, BI, BJ};
    int rc = bb.ops->prepare(&bb, &b, &e) || til_batch_grad(&bb, &b, reg, threads, &sb, loss, &e);
    CHECK(rc == 0, "grad: %s", e.msg);
    memset(Gd, 0, np * ND * sizeof(float));
    for (uint64_t k = 0; k < bb.n_rows && !rc; k++)
        memcpy(Gd + (uint64_t)bb.rows[k] * ND, sb.G + k * ND, ND * sizeof(float));
    til_step_buf_free(&sb);
    til_backbone_free(&bb);
    return rc ? -1 : 0;
}

TEST(neumf_bpr_backward_fd)
{
    uint64_t tower = til_neumf_tower_size(ND), np = N + (tower + ND - 1) / ND;
    CHECK(tower == ND * NH + NH + NH * NH2 + NH2 + NH + NH2 + 1, "tower size");
    float *P = calloc(np * ND, 4), *G = calloc(np * ND, 4), *G3 = calloc(np * ND, 4);
    double *Pd = calloc(np * ND, 8), *ref = calloc(np * ND, 8), *got = calloc(np * ND, 8), reg = 0.05, loss, l3;
    if (neumf_grad(1, reg, P, np, G, &loss, 1) == 0 && neumf_grad(3, reg, P, np, G3, &l3, 0) == 0) {
        CHECK(memcmp(G, G3, np * ND * 4) == 0 && loss == l3, "neumf: 1 and 3 threads differ");
        for (uint64_t q = 0; q < np * ND; q++)
            Pd[q] = P[q];
        double l0 = neumf_loss_ref(Pd, reg);
        CHECK(fabs(loss - l0) < 1e-5 * (1 + fabs(l0)), "neumf loss %.9g ref %.9g", loss, l0);
        uint64_t n = N * ND + tower; /* the padding has no gradient: checked below */
        for (uint64_t q = 0; q < n; q++) {
            double h = 1e-6, x = Pd[q];
            Pd[q] = x + h;
            double lp = neumf_loss_ref(Pd, reg);
            Pd[q] = x - h;
            double lm = neumf_loss_ref(Pd, reg);
            Pd[q] = x;
            ref[q] = (lp - lm) / (2 * h);
            got[q] = G[q];
        }
        CHECK_CLOSE("dL/dparam (NeuMF embeddings + W1 b1 W2 b2 wp bp, BPR + L2)", got, ref, n, 1e-6, 1e-4);
        for (uint64_t q = n; q < np * ND; q++)
            CHECK(G[q] == 0, "padding gradient %g", G[q]);
    }
    free(P), free(G), free(G3), free(Pd), free(ref), free(got);
}

/* D = 64 (16-item blocks, 37 items: two full blocks and a padded one): the
 * scorer against til_neumf_score within tolerance and, bit for bit, against
 * the per-item loop (TIL_NEUMF_GENERIC=1) */
TEST(neumf_scorer_d64_blocks)
{
    enum { U = 3, I = 37, DD = 64 };
    til_err e;
    til_backbone bb;
    CHECK(til_backbone_create_opts(&bb, "neumf", U, I, DD, 8, NULL, &e) == 0, "%s", e.msg);
    til_init_xavier(bb.param, U + I, DD, 7, 0);
    bb.ops->init(&bb, 9);
    for (uint64_t q = 0; q < bb.n_param * DD; q++)
        bb.param[q] *= 3;
    CHECK(bb.ops->forward(&bb, NULL, 1, &e) == 0, "%s", e.msg);
    til_neumf_net net;
    til_neumf_net_view(&net, DD, bb.param + (U + I) * DD);
    static double ref[U * I], got[U * I];
    static float out[2][U * I];
    uint32_t users[U] = {0, 1, 2};
    for (int v = 0; v < 2; v++) {
        if (v)
            setenv("TIL_NEUMF_GENERIC", "1", 1);
        til_scorer s;
        CHECK(til_backbone_scorer(&bb, &s, &e) == 0 && s.score(s.ctx, users, U, out[v], &e) == 0, "%s", e.msg);
        unsetenv("TIL_NEUMF_GENERIC");
    }
    for (int u = 0; u < U; u++)
        for (int i = 0; i < I; i++) {
            ref[u * I + i] = til_neumf_score(&net, bb.U + u * DD, bb.V + i * DD);
            got[u * I + i] = out[0][u * I + i];
        }
    /* float sums of 64 terms of size ~1 in two different orders: atol 2e-5 */
    CHECK_CLOSE("neumf D = 64 block scorer vs til_neumf_score", got, ref, U * I, 2e-5, 1e-5);
    CHECK(memcmp(out[0], out[1], sizeof out[0]) == 0, "neumf D = 64: block scorer and per-item loop differ");
    til_backbone_free(&bb);
}

TEST(neumf_scorer_matches_pair_reference_and_model_file)
{
    til_err e;
    til_backbone bb;
    CHECK(til_backbone_create_opts(&bb, "neumf", NU, NI, ND, NB, NULL, &e) == 0, "%s", e.msg);
    til_init_xavier(bb.param, N, ND, 3, 0);
    bb.ops->init(&bb, 5);
    for (uint64_t q = 0; q < bb.n_param * ND; q++)
        bb.param[q] *= 3;
    CHECK(bb.ops->forward(&bb, NULL, 1, &e) == 0, "%s", e.msg);
    til_neumf_net net;
    til_neumf_net_view(&net, ND, bb.param + N * ND);
    double ref[NU * NI], got[NU * NI], fm[NU * NI];
    for (int u = 0; u < NU; u++)
        for (int i = 0; i < NI; i++)
            ref[u * NI + i] = til_neumf_score(&net, bb.U + u * ND, bb.V + i * ND);
    /* the trainer's evaluation scorer */
    til_scorer s;
    float out[NU * NI];
    uint32_t users[NU] = {0, 1, 2, 3, 4};
    CHECK(til_backbone_scorer(&bb, &s, &e) == 0 && s.score(s.ctx, users, NU, out, &e) == 0, "%s", e.msg);
    for (int q = 0; q < NU * NI; q++)
        got[q] = out[q];
    CHECK_CLOSE("neumf scorer vs til_neumf_score", got, ref, NU * NI, 1e-6, 1e-5);
    /* a model file as the trainer writes it, scored by til_scorer_from_model */
    til_model m;
    til_model_init(&m);
    CHECK(til_model_set(&m, "kind", "model", &e) == 0 && bb.ops->meta(&bb, &m, &e) == 0 &&
              til_model_setf(&m, &e, "n_users", "%d", NU) == 0 && til_model_setf(&m, &e, "n_items", "%d", NI) == 0 &&
              til_model_setf(&m, &e, "dim", "%d", ND) == 0 && til_model_add(&m, "user", TIL_F32, NU, ND, bb.U, &e) &&
              til_model_add(&m, "item", TIL_F32, NI, ND, bb.V, &e) && bb.ops->export_model(&bb, &m, &e) == 0,
          "model: %s", e.msg);
    til_backbone_free(&bb);
    til_scorer s2;
    CHECK(til_scorer_from_model(&m, "m.model", &s2, &e) == 0 && s2.score && s2.score(s2.ctx, users, NU, out, &e) == 0, "%s",
          e.msg);
    for (int q = 0; q < NU * NI; q++)
        fm[q] = out[q];
    CHECK_CLOSE("til_scorer_from_model(neumf) vs pair reference", fm, ref, NU * NI, 1e-6, 1e-5);
    til_scorer_release(&s2);
    /* a dot model: no score function */
    til_model_set(&m, "scorer", "dot", &e);
    CHECK(til_scorer_from_model(&m, "m.model", &s2, &e) == 0 && !s2.score && s2.U && s2.dim == ND, "dot scorer");
    til_model_set(&m, "scorer", "bogus", &e);
    CHECK(til_scorer_from_model(&m, "m.model", &s2, &e) == -1 && strstr(e.msg, "bogus"), "unknown scorer rejected");
    til_model_free(&m);
}

/* ------------------------------------------------------------------ LightGCN jvp and TIL meta-gradient */

/* an outer batch different from the inner one (BU, BI, BJ) */
enum { OB = 6 };
static const uint32_t OU[OB] = {3, 2, 0, 1, 4, 2}, OI[OB] = {0, 3, 2, 6, 5, 0}, OJ[OB] = {5, 1, 6, 3, 2, 4};

static int lgcn_make(til_backbone *bb, til_step_buf *sb, const til_inter *t, int L, const float *P)
{
    til_err e;
    til_backbone_opts o = {.train = t, .layers = L};
    if (til_backbone_create_opts(bb, "lightgcn", NU, NI, D, NB, &o, &e) || til_step_buf_alloc(sb, NB, D, &e)) {
        CHECK(0, "init: %s", e.msg);
        return -1;
    }
    free(sb->G);
    sb->G = calloc(bb->rows_cap * D, sizeof(float));
    memcpy(bb->param, P, sizeof(float) * N * D);
    return 0;
}

/* jvp(Dir) == R(P + Dir) - R(P) (library forward, float), == mean_l A^l Dir
 * (double reference); a row list == the same rows scattered; threads give the
 * same bits; <jvp(Dir), A> == <Dir, backward(A)> */
TEST(lightgcn_jvp)
{
    til_inter t;
    make_train(&t);
    static double A[N][N];
    dense_ahat(&t, A);
    float P[N * D], Dir[N * D];
    til_init_xavier(P, N, D, 3, 0);
    til_init_xavier(Dir, N, D, 4, 0);
    til_err e;
    for (int L = 1; L <= 3; L++) {
        til_backbone bb;
        til_step_buf sb;
        if (lgcn_make(&bb, &sb, &t, L, P))
            break;
        float J[N * D] = {0}, J3[N * D] = {0}, F0[N * D], F1[N * D];
        CHECK(bb.ops->jvp(&bb, NULL, N, Dir, NULL, J, J + NU * D, 1, &e) == 0, "jvp");
        CHECK(bb.ops->jvp(&bb, NULL, N, Dir, NULL, J3, J3 + NU * D, 3, &e) == 0, "jvp 3");
        CHECK(memcmp(J, J3, sizeof J) == 0, "L=%d: jvp 1 and 3 threads differ", L);
        bb.ops->forward(&bb, NULL, 1, &e);
        memcpy(F0, bb.U, sizeof F0);
        for (int q = 0; q < N * D; q++)
            bb.param[q] = P[q] + Dir[q];
        bb.ops->forward(&bb, NULL, 1, &e);
        memcpy(F1, bb.U, sizeof F1);
        memcpy(bb.param, P, sizeof P);
        double got[N * D], ref[N * D], Dd[N * D], Fd[N * D];
        for (int q = 0; q < N * D; q++) {
            got[q] = J[q];
            ref[q] = (double)F1[q] - F0[q];
            Dd[q] = Dir[q];
        }
        CHECK_CLOSE("lightgcn jvp vs R(P + Dir) - R(P)", got, ref, N * D, 1e-6, 1e-5);
        prop_ref(A, L, Dd, Fd);
        CHECK_CLOSE("lightgcn jvp vs dense propagation", got, Fd, N * D, 1e-7, 1e-5);
        /* a row list: rows 2, 7, 9 of Dir */
        uint32_t rl[3] = {9, 2, 7};
        float Dr[3 * D], Full[N * D] = {0}, Jr[N * D] = {0}, Jf[N * D] = {0};
        for (int k = 0; k < 3; k++)
            for (int c = 0; c < D; c++)
                Full[rl[k] * D + c] = Dr[k * D + c] = Dir[rl[k] * D + c];
        CHECK(bb.ops->jvp(&bb, rl, 3, Dr, NULL, Jr, Jr + NU * D, 1, &e) == 0 &&
                  bb.ops->jvp(&bb, NULL, N, Full, NULL, Jf, Jf + NU * D, 1, &e) == 0,
              "jvp rows");
        CHECK(memcmp(Jr, Jf, sizeof Jr) == 0, "L=%d: row list != scattered", L);
        /* transpose */
        til_batch b = {NB, BU, BI, BJ};
        float dU[NB * D], dQi[NB * D], dQj[NB * D];
        til_init_xavier(dU, NB, D, 5, 0);
        til_init_xavier(dQi, NB, D, 5, 1);
        til_init_xavier(dQj, NB, D, 5, 2);
        double lhs, rhs;
        if (bb.ops->prepare(&bb, &b, &e) == 0 && bb.ops->forward(&bb, &b, 1, &e) == 0 &&
            ref_transpose(&bb, &b, Dir, dU, dQi, dQj, sb.G, &lhs, &rhs) == 0)
            CHECK(fabs(lhs - rhs) <= 1e-5 * (fabs(lhs) + 1e-3), "L=%d transpose %.9g vs %.9g", L, lhs, rhs);
        /* jvp left the forward state alone: forward of the same P gives the same F */
        CHECK(memcmp(bb.param, P, sizeof P) == 0, "param untouched");
        til_step_buf_free(&sb);
        til_backbone_free(&bb);
    }
    til_inter_free(&t);
}

/* forward reuses the representations of the last two forwards when param is
 * bit-equal to their input (a TIL step forwards Theta, Theta~, Theta): every
 * forward gives the bits of a direct propagation of the current param, a
 * change in the last float is seen, only the changed inputs propagate; jvp
 * with the identity row list (prepare's) == jvp of the table, -0.0 included */
TEST(lightgcn_forward_cache)
{
    til_inter t;
    make_train(&t);
    til_graph g;
    til_err e;
    CHECK(til_graph_bipartite(&g, &t, &e) == 0, "graph");
    float P[N * D], P1[N * D], P2[N * D];
    til_init_xavier(P, N, D, 3, 0);
    memcpy(P1, P, sizeof P);
    P1[N * D - 1] = nextafterf(P1[N * D - 1], 1.0f); /* the last float only */
    til_init_xavier(P2, N, D, 8, 0);
    for (int L = 1; L <= 2; L++) {
        til_backbone bb;
        til_step_buf sb;
        if (lgcn_make(&bb, &sb, &t, L, P))
            break;
        static float t1[N * D], t2[N * D];
        const float *seq[] = {P, P, P1, P1, P, P2, P, P1, P1};
        /* propagated (1) or served from the cache (0), two entries, the one not used last replaced */
        const int fresh[] = {1, 0, 1, 0, 0, 1, 0, 1, 0};
        uint64_t np = 0, nh = 0, no = 0;
        for (int s = 0; s < (int)(sizeof seq / sizeof *seq); s++) {
            float ref[N * D];
            memcpy(bb.param, seq[s], sizeof P);
            til_lightgcn_propagate(&g, L, seq[s], ref, t1, t2, D, 1);
            CHECK(bb.ops->forward(&bb, NULL, 1 + s % 2, &e) == 0, "forward");
            CHECK(bb.U && bb.V == bb.U + NU * D && memcmp(bb.U, ref, sizeof ref) == 0,
                  "L=%d forward %d: not the propagation of param", L, s);
            uint64_t p0 = np, h0 = nh;
            til_lightgcn_counts(&bb, &np, &nh, &no);
            CHECK(np - p0 == (uint64_t)fresh[s] && nh - h0 == (uint64_t)!fresh[s],
                  "L=%d forward %d: propagated %d, cached %d, want %d", L, s, (int)(np - p0), (int)(nh - h0), fresh[s]);
        }
        float Dir[N * D], Jn[N * D] = {0}, Ji[N * D] = {0};
        uint32_t id[N];
        til_init_xavier(Dir, N, D, 4, 0);
        Dir[0] = -0.0f;
        Dir[(NU + 4) * D] = -0.0f;
        for (uint32_t r = 0; r < N; r++)
            id[r] = r;
        CHECK(bb.ops->jvp(&bb, NULL, N, Dir, NULL, Jn, Jn + NU * D, 1, &e) == 0 &&
                  bb.ops->jvp(&bb, id, N, Dir, NULL, Ji, Ji + NU * D, 2, &e) == 0,
              "jvp");
        CHECK(memcmp(Jn, Ji, sizeof Jn) == 0, "L=%d: jvp identity rows != table", L);
        /* every row, reversed: the scatter path (0 + x), same bits as the table itself */
        uint32_t rv[N];
        float Dv[N * D], Jv[N * D] = {0};
        for (uint32_t k = 0; k < N; k++) {
            rv[k] = N - 1 - k;
            memcpy(Dv + k * D, Dir + (N - 1 - k) * D, D * sizeof(float));
        }
        CHECK(bb.ops->jvp(&bb, rv, N, Dv, NULL, Jv, Jv + NU * D, 1, &e) == 0, "jvp reversed");
        CHECK(memcmp(Jn, Jv, sizeof Jn) == 0, "L=%d: jvp scattered rows != table", L);
        til_step_buf_free(&sb);
        til_backbone_free(&bb);
    }
    til_graph_free(&g);
    til_inter_free(&t);
}

typedef struct {
    double (*A)[N];
    int L;
} lgref;

static void lgcn_scores_ref(void *ctx, const double *P, const til_batch *b, double *sp, double *sn)
{
    lgref *r = ctx;
    double F[N * D];
    prop_ref(r->A, r->L, P, F);
    ref_dot_scores(F, NU, D, b, sp, sn);
}

/* til_tilm_meta_generic on LightGCN == d/dw J_out(Theta - beta grad J_in(Theta; w)) (double oracle) */
TEST(lightgcn_meta_grad_fd)
{
    til_inter t;
    static double A[N][N];
    float P[N * D];
    double Pd[N * D];
    lgcn_start(&t, A, P, Pd, 6);
    til_batch in = {NB, BU, BI, BJ}, out = {OB, OU, OI, OJ};
    for (int L = 1; L <= 2; L++) {
        til_backbone bb;
        til_step_buf sb;
        if (lgcn_make(&bb, &sb, &t, L, P))
            break;
        lgref r = {A, L};
        ref_generic_check("lightgcn dJ_out/dw", &bb, &sb, P, sizeof P, Pd, N * D, NU, D, lgcn_scores_ref, &r, &in,
                          &out, 0.05, 0.7);
        til_step_buf_free(&sb);
        til_backbone_free(&bb);
    }
    til_inter_free(&t);
}

static void lgcn_reps_ref(void *ctx, const double *P, double *F)
{
    lgref *r = ctx;
    prop_ref(r->A, r->L, P, F);
}

/* TIL-MI with the clustering loss on LightGCN (L_c on the propagated item
 * representations, through backward): dJ_out/dLambda and the step's G against
 * the double oracle, threads (meta_ref.h ref_mi_check) */
TEST(lightgcn_til_mi_gamma)
{
    til_inter t;
    static double A[N][N];
    float P[N * D];
    lgcn_start(&t, A, P, NULL, 3); /* scores not flat, representations not far from every center */
    til_batch in = {NB, BU, BI, BJ}, b0 = {OB, OU, OI, OJ};
    for (int L = 1; L <= 2; L++) {
        til_backbone bb;
        til_step_buf sb;
        if (lgcn_make(&bb, &sb, &t, L, P))
            break;
        lgref r = {A, L};
        ref_mi_check(L == 1 ? "lightgcn L=1" : "lightgcn L=2", &bb, &sb, &t, lgcn_scores_ref, lgcn_reps_ref, &r, &b0,
                     &in, 5.0, 0);
        til_step_buf_free(&sb);
        til_backbone_free(&bb);
    }
    til_inter_free(&t);
}

/* MF: the parameter rows are the representations */
static void mf_reps_ref(void *ctx, const double *P, double *F)
{
    (void)ctx;
    memcpy(F, P, sizeof(double) * N * D);
}

static void mf_scores_ref(void *ctx, const double *P, const til_batch *b, double *sp, double *sn)
{
    (void)ctx;
    ref_dot_scores(P, NU, D, b, sp, sn);
}

/* TIL-MI with the clustering loss on MF, on each meta-gradient path (auto:
 * the float fast path, double: til_meta, generic: through til_rep_grad like
 * the other backbones), against the same oracle as the other backbones */
TEST(mf_til_mi_gamma)
{
    til_inter t;
    make_train(&t);
    float P[N * D];
    start_params(P, NULL, 3);
    til_batch in = {NB, BU, BI, BJ}, b0 = {OB, OU, OI, OJ};
    for (int path = 0; path < 3; path++) {
        til_backbone bb;
        til_step_buf sb;
        til_err e;
        if (til_mf_init(&bb, NU, NI, D, NB, &e) || til_step_buf_alloc(&sb, NB, D, &e)) {
            CHECK(0, "init: %s", e.msg);
            break;
        }
        memcpy(bb.param, P, sizeof P);
        char what[32];
        snprintf(what, sizeof what, "mf %s", til_tilm_meta_path_names[path]);
        ref_mi_check(what, &bb, &sb, &t, mf_scores_ref, mf_reps_ref, NULL, &b0, &in, 5.0, path);
        til_step_buf_free(&sb);
        til_backbone_free(&bb);
    }
    til_inter_free(&t);
}

/* ------------------------------------------------------------------ NeuMF score_jvp and TIL meta-gradient */

static int neumf_make(til_backbone *bb, til_step_buf *sb, float *P, uint64_t np)
{
    til_err e;
    double loss;
    float *G = calloc(np * ND, sizeof(float));
    int rc = neumf_grad(1, 0.0, P, np, G, &loss, 1); /* P: the scaled init of neumf_bpr_backward_fd */
    free(G);
    if (rc || til_backbone_create_opts(bb, "neumf", NU, NI, ND, NB, NULL, &e) || til_step_buf_alloc(sb, NB, ND, &e)) {
        CHECK(0, "init");
        return -1;
    }
    free(sb->G);
    sb->G = calloc(bb->rows_cap * ND, sizeof(float));
    memcpy(bb->param, P, np * ND * sizeof(float));
    return 0;
}

/* score_jvp == central differences of the double pair reference along Dir
 * (embeddings and every tower weight), a row list == the same rows scattered,
 * and its transpose: <score_jvp(Dir), (g+, g-)> == <Dir, backward(score_backward(g+, g-))> */
TEST(neumf_score_jvp)
{
    uint64_t tower = til_neumf_tower_size(ND), np = N + (tower + ND - 1) / ND;
    float *P = calloc(np * ND, 4), *Dir = calloc(np * ND, 4);
    double *Pp = calloc(np * ND, 8), *Pm = calloc(np * ND, 8);
    til_backbone bb;
    til_step_buf sb;
    til_err e;
    if (neumf_make(&bb, &sb, P, np) == 0) {
        til_init_xavier(Dir, N * ND + tower, 1, 8, 0); /* the padding keeps direction 0 */
        for (uint64_t q = 0; q < N * ND + tower; q++)
            Dir[q] *= 20.0f;
        til_batch b = {NB, BU, BI, BJ};
        float sp[NB], sn[NB], sp3[NB], sn3[NB];
        CHECK(bb.ops->prepare(&bb, &b, &e) == 0 && bb.ops->forward(&bb, &b, 1, &e) == 0 &&
                  bb.ops->score_jvp(&bb, &b, NULL, np, Dir, sp, sn, 1, &e) == 0 &&
                  bb.ops->score_jvp(&bb, &b, NULL, np, Dir, sp3, sn3, 3, &e) == 0,
              "score_jvp");
        CHECK(memcmp(sp, sp3, sizeof sp) == 0 && memcmp(sn, sn3, sizeof sn) == 0, "threads");
        double h = 1e-6, got[2 * NB], ref[2 * NB];
        for (uint64_t q = 0; q < np * ND; q++)
            Pp[q] = P[q] + h * Dir[q], Pm[q] = P[q] - h * Dir[q];
        for (int k = 0; k < NB; k++) {
            const uint32_t r2[2] = {BI[k], BJ[k]};
            for (int s = 0; s < 2; s++) {
                double yp = neumf_ref(Pp + N * ND, Pp + BU[k] * ND, Pp + (NU + r2[s]) * ND);
                double ym = neumf_ref(Pm + N * ND, Pm + BU[k] * ND, Pm + (NU + r2[s]) * ND);
                ref[2 * k + s] = (yp - ym) / (2 * h);
                got[2 * k + s] = s ? sn[k] : sp[k];
            }
        }
        CHECK_CLOSE("neumf score_jvp vs central differences", got, ref, 2 * NB, 1e-6, 1e-5);
        /* a row list: the batch's rows after prepare (embeddings, then the tower rows) */
        float *Dr = calloc(bb.n_rows * ND, 4), spr[NB], snr[NB];
        uint32_t *rl = malloc(bb.n_rows * sizeof *rl);
        for (uint64_t k = 0; k < bb.n_rows; k++) {
            rl[k] = bb.rows[k];
            memcpy(Dr + k * ND, Dir + (uint64_t)rl[k] * ND, ND * sizeof(float));
        }
        CHECK(bb.ops->score_jvp(&bb, &b, rl, bb.n_rows, Dr, spr, snr, 1, &e) == 0, "rows");
        CHECK(memcmp(sp, spr, sizeof sp) == 0 && memcmp(sn, snr, sizeof sn) == 0, "row list != all rows");
        /* transpose */
        float gp[NB], gn[NB];
        for (int k = 0; k < NB; k++)
            gp[k] = 0.3f - 0.1f * (float)k, gn[k] = 0.05f * (float)k - 0.2f;
        double l2, lhs = 0, rhs = 0;
        memset(sb.G, 0, bb.rows_cap * ND * sizeof(float));
        CHECK(bb.ops->score_backward(&bb, &b, gp, gn, sb.dU, sb.dQi, sb.dQj, 1, &e) == 0 &&
                  bb.ops->backward(&bb, &b, sb.dU, sb.dQi, sb.dQj, 0.0f, sb.G, &l2, 1, &e) == 0,
              "backward");
        for (int k = 0; k < NB; k++)
            lhs += (double)sp[k] * gp[k] + (double)sn[k] * gn[k];
        for (uint64_t k = 0; k < bb.n_rows; k++)
            rhs += ref_dotf(sb.G + k * ND, Dir + (uint64_t)bb.rows[k] * ND, ND);
        CHECK(fabs(lhs - rhs) <= 1e-5 * (fabs(lhs) + 1e-3), "transpose %.9g vs %.9g", lhs, rhs);
        free(Dr);
        free(rl);
        til_step_buf_free(&sb);
        til_backbone_free(&bb);
    }
    free(P), free(Dir), free(Pp), free(Pm);
}

static void neumf_scores_ref(void *ctx, const double *P, const til_batch *b, double *sp, double *sn)
{
    (void)ctx;
    for (uint64_t k = 0; k < b->n; k++) {
        sp[k] = neumf_ref(P + N * ND, P + b->u[k] * ND, P + (NU + b->i[k]) * ND);
        sn[k] = neumf_ref(P + N * ND, P + b->u[k] * ND, P + (NU + b->j[k]) * ND);
    }
}

/* til_tilm_meta_generic through the score head == the double oracle */
TEST(neumf_meta_grad_fd)
{
    uint64_t tower = til_neumf_tower_size(ND), np = N + (tower + ND - 1) / ND;
    float *P = calloc(np * ND, 4), *P0 = calloc(np * ND, 4);
    double *Pd = calloc(np * ND, 8);
    til_backbone bb;
    til_step_buf sb;
    if (neumf_make(&bb, &sb, P, np) == 0) {
        memcpy(P0, bb.param, np * ND * 4);
        for (uint64_t q = 0; q < np * ND; q++)
            Pd[q] = P[q];
        til_batch in = {NB, BU, BI, BJ}, out = {OB, OU, OI, OJ};
        ref_generic_check("neumf dJ_out/dw", &bb, &sb, P0, np * ND * 4, Pd, np * ND, NU, ND, neumf_scores_ref, NULL, &in,
                          &out, 0.05, 0.5);
        til_step_buf_free(&sb);
        til_backbone_free(&bb);
    }
    free(P), free(P0), free(Pd);
}

/* NeuMF's representations: its embedding rows [GMF | MLP] themselves */
static void neumf_reps_ref(void *ctx, const double *P, double *F)
{
    (void)ctx;
    memcpy(F, P, sizeof(double) * N * ND);
}

/* TIL-MI with the clustering loss on NeuMF (L_c on the whole [GMF | MLP] item
 * rows; the tower gets no L_c gradient) against the double oracle */
TEST(neumf_til_mi_gamma)
{
    uint64_t tower = til_neumf_tower_size(ND), np = N + (tower + ND - 1) / ND;
    float *P = calloc(np * ND, 4);
    til_backbone bb;
    til_step_buf sb;
    til_inter t;
    make_train(&t);
    if (neumf_make(&bb, &sb, P, np) == 0) {
        til_batch in = {NB, BU, BI, BJ}, b0 = {OB, OU, OI, OJ};
        ref_mi_check("neumf", &bb, &sb, &t, neumf_scores_ref, neumf_reps_ref, NULL, &b0, &in, 5.0, 0);
        til_step_buf_free(&sb);
        til_backbone_free(&bb);
    }
    til_inter_free(&t);
    free(P);
}

int main(void)
{
    RUN(lightgcn_propagation_matches_dense);
    RUN(lightgcn_bpr_backward_fd);
    RUN(lightgcn_jvp);
    RUN(lightgcn_forward_cache);
    RUN(lightgcn_meta_grad_fd);
    RUN(lightgcn_til_mi_gamma);
    RUN(mf_til_mi_gamma);
    RUN(neumf_bpr_backward_fd);
    RUN(neumf_score_jvp);
    RUN(neumf_meta_grad_fd);
    RUN(neumf_til_mi_gamma);
    RUN(neumf_scorer_matches_pair_reference_and_model_file);
    RUN(neumf_scorer_d64_blocks);
    return unit_end();
}
