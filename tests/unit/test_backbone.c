/* Unit tests of the graph and neural backbones: LightGCN propagation against a
 * dense double reference (forward, mean over layers), the whole LightGCN-BPR
 * batch gradient (through the backward propagation, the scatter and the L2
 * term) against finite differences, threaded == single-thread bits. */
#include <stdlib.h>
#include <string.h>

#include "til_backbone.h"
#include "til_inter.h"
#include "til_lightgcn.h"
#include "til_rng.h"
#include "til_train.h"
#include "unit.h"

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

TEST(lightgcn_bpr_backward_fd)
{
    til_inter t;
    make_train(&t);
    static double A[N][N];
    dense_ahat(&t, A);
    float P[N * D], G[N * D], G3[N * D];
    til_init_xavier(P, N, D, 3, 0);
    for (int q = 0; q < N * D; q++)
        P[q] *= 6; /* larger scores: the sigmoid is not flat */
    double Pd[N * D], ref[N * D], got[N * D], reg = 0.05;
    for (int q = 0; q < N * D; q++)
        Pd[q] = P[q];
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

int main(void)
{
    RUN(lightgcn_propagation_matches_dense);
    RUN(lightgcn_bpr_backward_fd);
    return unit_end();
}
