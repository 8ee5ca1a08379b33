/* meta_ref.h: double-precision oracles for the TIL meta-gradient on any
 * backbone, shared by the backbone unit tests (header-only; include after
 * unit.h). A backbone is given as its scores in double over its whole
 * parameter table P (np doubles: every parameter row, embeddings first, users
 * then items, as in til_backbone.h).
 *
 *   J_in(P; w)  = (1/|in|) sum_k w_k l_k(P) + reg/|in| * 0.5 sum over the
 *                 batch's occurrences of layer-0 rows |e0|^2
 *   J_out(P)    = (1/|out|) sum_k l_k(P),  l_k = softplus(-(s(u,i) - s(u,j)))
 *   dw_ref[k]   = d/dw_k J_out(P - beta grad J_in(P; w))
 * grad l_k by central differences of the double scores (h = 1e-6, error
 * ~1e-10), the L2 gradient in closed form, and dw by central differences in
 * w (J_out is smooth in w; h = 1e-4): no part of the library's maths is used. */
#ifndef META_REF_H
#define META_REF_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "til_backbone.h"

typedef void (*ref_scores_fn)(void *ctx, const double *P, const til_batch *b, double *sp, double *sn);

/* Dot-product scores of a batch from representations F (users then items,
 * n_users + n_items rows of d doubles): sp = F_u . F_i, sn = F_u . F_j. */
static void ref_dot_scores(const double *F, uint32_t nu, int d, const til_batch *b, double *sp, double *sn)
{
    for (uint64_t k = 0; k < b->n; k++) {
        const double *p = F + (uint64_t)b->u[k] * d, *qi = F + ((uint64_t)nu + b->i[k]) * d,
                     *qj = F + ((uint64_t)nu + b->j[k]) * d;
        sp[k] = sn[k] = 0;
        for (int c = 0; c < d; c++)
            sp[k] += p[c] * qi[c], sn[k] += p[c] * qj[c];
    }
}

static double ref_softplus_neg(double x) { return x >= 0 ? log1p(exp(-x)) : -x + log1p(exp(x)); }

/* per-triplet losses l_k at P (n = b->n) */
static void ref_losses(ref_scores_fn f, void *ctx, const double *P, const til_batch *b, double *l)
{
    double *sp = malloc(2 * b->n * sizeof *sp), *sn = sp + b->n;
    f(ctx, P, b, sp, sn);
    for (uint64_t k = 0; k < b->n; k++)
        l[k] = ref_softplus_neg(sp[k] - sn[k]);
    free(sp);
}

static double ref_jout(ref_scores_fn f, void *ctx, const double *P, const til_batch *b)
{
    double *l = malloc(b->n * sizeof *l), s = 0;
    ref_losses(f, ctx, P, b, l);
    for (uint64_t k = 0; k < b->n; k++)
        s += l[k];
    free(l);
    return s / (double)b->n;
}

/* dw_ref (in->n) as above; P: np doubles; layer-0 rows: u, nu + i, nu + j (d each) */
static void ref_meta_dw(ref_scores_fn f, void *ctx, const double *P, uint64_t np, uint32_t nu, int d,
                        const til_batch *in, const float *w, const til_batch *out, double beta, double reg,
                        double *dw, double *j_out)
{
    uint64_t n = in->n;
    double *gl = calloc(n * np, sizeof *gl), *g0 = calloc(np, sizeof *g0), *Q = malloc(np * sizeof *Q);
    double *lp = malloc(2 * n * sizeof *lp), *lm = lp + n;
    memcpy(Q, P, np * sizeof *Q);
    for (uint64_t q = 0; q < np; q++) { /* grad l_k, column q */
        double h = 1e-6, x = Q[q];
        Q[q] = x + h;
        ref_losses(f, ctx, Q, in, lp);
        Q[q] = x - h;
        ref_losses(f, ctx, Q, in, lm);
        Q[q] = x;
        for (uint64_t k = 0; k < n; k++)
            gl[k * np + q] = (lp[k] - lm[k]) / (2 * h);
    }
    for (uint64_t k = 0; k < n; k++) { /* the L2 term's gradient: reg/|B| per occurrence */
        uint64_t r3[3] = {in->u[k], nu + in->i[k], nu + in->j[k]};
        for (int t = 0; t < 3; t++)
            for (int c = 0; c < d; c++)
                g0[r3[t] * d + c] += reg / (double)n * P[r3[t] * d + c];
    }
    double *wd = malloc(n * sizeof *wd);
    for (uint64_t k = 0; k < n; k++)
        wd[k] = w[k];
    for (int pass = -1; pass < (int)n; pass++) {
        double J[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            double hw = 1e-4, keep = pass >= 0 ? wd[pass] : 0;
            if (pass >= 0)
                wd[pass] = keep + (sgn ? -hw : hw);
            for (uint64_t q = 0; q < np; q++) {
                double g = g0[q];
                for (uint64_t k = 0; k < n; k++)
                    g += wd[k] / (double)n * gl[k * np + q];
                Q[q] = P[q] - beta * g;
            }
            J[sgn] = ref_jout(f, ctx, Q, out);
            if (pass >= 0)
                wd[pass] = keep;
        }
        if (pass < 0)
            *j_out = J[0];
        else
            dw[pass] = (J[0] - J[1]) / (2 * 1e-4);
    }
    free(wd);
    free(gl);
    free(g0);
    free(Q);
    free(lp);
}

/* <a, b> in double over n floats */
static double ref_dotf(const float *a, const float *b, uint64_t n)
{
    double s = 0;
    for (uint64_t q = 0; q < n; q++)
        s += (double)a[q] * b[q];
    return s;
}

/* The transpose identity of a dot-head jvp against backward (reg 0) on batch b
 * (after prepare(b) and forward(b)): <jvp(Dir), scatter(dU, dQi, dQj)> ==
 * <Dir, backward(dU, dQi, dQj)>; Dir over all n_param rows. Returns the two
 * sides. G: rows_cap x dim scratch. */
static int ref_transpose(til_backbone *bb, const til_batch *b, const float *Dir, const float *dU, const float *dQi,
                         const float *dQj, float *G, double *lhs, double *rhs)
{
    til_err e;
    uint64_t d = (uint64_t)bb->dim, nu = bb->n_users, ni = bb->n_items;
    float *JU = calloc((nu + ni) * d, sizeof *JU), *JV = JU + nu * d;
    double l2;
    memset(G, 0, bb->rows_cap * d * sizeof *G);
    int rc = bb->ops->backward(bb, b, dU, dQi, dQj, 0.0f, G, &l2, 1, &e) ||
             bb->ops->jvp(bb, NULL, bb->n_param, Dir, b, JU, JV, 1, &e);
    *lhs = *rhs = 0;
    for (uint64_t k = 0; k < b->n && !rc; k++) {
        *lhs += ref_dotf(JU + b->u[k] * d, dU + k * d, d) + ref_dotf(JV + b->i[k] * d, dQi + k * d, d) +
                ref_dotf(JV + b->j[k] * d, dQj + k * d, d);
    }
    for (uint64_t k = 0; k < bb->n_rows && !rc; k++)
        *rhs += ref_dotf(G + k * d, Dir + (uint64_t)(bb->rows ? bb->rows[k] : k) * d, d);
    free(JU);
    if (rc)
        CHECK(0, "transpose: %s", e.msg);
    return rc;
}

#endif
