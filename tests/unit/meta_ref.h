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
 * w (J_out is smooth in w; h = 1e-4): no part of the library's maths is used.
 *
 * TIL-MI's clustering loss (ref_dec_loss: gamma * the mean KL(T_i || Q_i) over
 * the batch's items, on the double representations of the backbone) joins
 * J_in as an extra term X(P) (ref_inner_parts: its gradient by central
 * differences too); ref_mi_check runs TIL-MI through the trainer's hooks on a
 * backbone and checks dJ_out/dLambda and the inner step's G against them. */
#ifndef META_REF_H
#define META_REF_H

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "til_adam.h"
#include "til_backbone.h"
#include "til_method.h"
#include "til_tilm.h"
#include "til_train.h"
#include "til_wnet.h"
#include "wnet_ref.h"

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

/* An extra inner loss term X(P) of the whole parameter table (NULL: none). */
typedef double (*ref_loss_fn)(void *ctx, const double *P);

/* The pieces of grad J_in at P: gl (in->n x np) = grad l_k (central
 * differences) and g0 (np) = the L2 term's gradient (closed form; layer-0 rows
 * u, nu + i, nu + j, d each) + grad X (central differences, h = 1e-6), so that
 * grad J_in(P; w) = g0 + sum_k w_k / |in| gl_k. */
static void ref_inner_parts(ref_scores_fn f, void *ctx, const double *P, uint64_t np, uint32_t nu, int d,
                            const til_batch *in, double reg, ref_loss_fn xf, void *xctx, double *gl, double *g0)
{
    uint64_t n = in->n;
    double *Q = malloc(np * sizeof *Q), *lp = malloc(2 * n * sizeof *lp), *lm = lp + n;
    memcpy(Q, P, np * sizeof *Q);
    memset(g0, 0, np * sizeof *g0);
    for (uint64_t q = 0; q < np; q++) { /* grad l_k, column q; grad X */
        double h = 1e-6, x = Q[q];
        Q[q] = x + h;
        ref_losses(f, ctx, Q, in, lp);
        double xp = xf ? xf(xctx, Q) : 0;
        Q[q] = x - h;
        ref_losses(f, ctx, Q, in, lm);
        double xm = xf ? xf(xctx, Q) : 0;
        Q[q] = x;
        for (uint64_t k = 0; k < n; k++)
            gl[k * np + q] = (lp[k] - lm[k]) / (2 * h);
        g0[q] = (xp - xm) / (2 * h);
    }
    for (uint64_t k = 0; k < n; k++) { /* the L2 term's gradient: reg/|B| per occurrence */
        uint64_t r3[3] = {in->u[k], nu + in->i[k], nu + in->j[k]};
        for (int t = 0; t < 3; t++)
            for (int c = 0; c < d; c++)
                g0[r3[t] * d + c] += reg / (double)n * P[r3[t] * d + c];
    }
    free(Q);
    free(lp);
}

/* J_out(P - beta (g0 + sum_k w_k / n gl_k)) on out; Q: np doubles of scratch */
static double ref_look(ref_scores_fn f, void *ctx, const double *P, uint64_t np, const double *gl, const double *g0,
                       const double *w, uint64_t n, double beta, const til_batch *out, double *Q)
{
    for (uint64_t q = 0; q < np; q++) {
        double g = g0[q];
        for (uint64_t k = 0; k < n; k++)
            g += w[k] / (double)n * gl[k * np + q];
        Q[q] = P[q] - beta * g;
    }
    return ref_jout(f, ctx, Q, out);
}

/* dw_ref (in->n) as above; P: np doubles; layer-0 rows: u, nu + i, nu + j (d each) */
static void ref_meta_dw(ref_scores_fn f, void *ctx, const double *P, uint64_t np, uint32_t nu, int d,
                        const til_batch *in, const float *w, const til_batch *out, double beta, double reg,
                        double *dw, double *j_out)
{
    uint64_t n = in->n;
    double *gl = calloc(n * np, sizeof *gl), *g0 = calloc(np, sizeof *g0), *Q = malloc(np * sizeof *Q);
    ref_inner_parts(f, ctx, P, np, nu, d, in, reg, NULL, NULL, gl, g0);
    double *wd = malloc(n * sizeof *wd);
    for (uint64_t k = 0; k < n; k++)
        wd[k] = w[k];
    for (int pass = -1; pass < (int)n; pass++) {
        double J[2];
        for (int sgn = 0; sgn < 2; sgn++) {
            double hw = 1e-4, keep = pass >= 0 ? wd[pass] : 0;
            if (pass >= 0)
                wd[pass] = keep + (sgn ? -hw : hw);
            J[sgn] = ref_look(f, ctx, P, np, gl, g0, wd, n, beta, out, Q);
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
}

/* til_tilm_meta_generic on bb (its parameters P0, pbytes bytes; Pd: the same np
 * values in double) at weights 0.3 + 0.15 k: dJ_out/dw and J_out against
 * ref_meta_dw's double oracle, the parameters put back, 1 and 3 threads the same bits */
static void ref_generic_check(const char *what, til_backbone *bb, til_step_buf *sb, const void *P0, size_t pbytes,
                              const double *Pd, uint64_t np, uint32_t nu, int d, ref_scores_fn f, void *ctx,
                              const til_batch *in, const til_batch *out, double reg, double beta)
{
    uint64_t n = in->n;
    float *w = malloc(3 * n * sizeof *w), *dw = w + n, *dw3 = w + 2 * n;
    double *ref = malloc(2 * n * sizeof *ref), *got = ref + n;
    for (uint64_t k = 0; k < n; k++)
        w[k] = 0.3f + 0.15f * (float)k;
    double jo = 0, jo3 = 0, jr = 0;
    til_err e;
    int ok = til_tilm_meta_generic(bb, in, w, out, reg, beta, NULL, 1, sb, dw, &jo, &e) == 0;
    CHECK(ok, "%s: %s", what, e.msg);
    CHECK(memcmp(bb->param, P0, pbytes) == 0, "%s: param put back", what);
    ok = ok && til_tilm_meta_generic(bb, in, w, out, reg, beta, NULL, 3, sb, dw3, &jo3, &e) == 0;
    CHECK(ok, "%s: %s", what, e.msg);
    CHECK(ok && memcmp(dw, dw3, n * sizeof *dw) == 0 && jo == jo3, "%s: 1 and 3 threads differ", what);
    if (ok) {
        ref_meta_dw(f, ctx, Pd, np, nu, d, in, w, out, beta, reg, ref, &jr);
        for (uint64_t k = 0; k < n; k++)
            got[k] = dw[k];
        CHECK_CLOSE(what, got, ref, n, 1e-8, 1e-4);
        CHECK(fabs(jo - jr) <= 1e-5 * fabs(jr), "%s: J_out %.9g vs %.9g", what, jo, jr);
    }
    free(w);
    free(ref);
}

/* ------------------------------------------------------------------ TIL-MI's clustering loss */

/* The representations F (n_users + n_items rows of d doubles) from P. */
typedef void (*ref_reps_fn)(void *ctx, const double *P, double *F);

/* gamma * (1/|I|) sum_{i in I} sum_k T_ik log(T_ik / Q_ik), I the distinct items
 * of b, Q_ik = a_ik^(-(tau+1)/2) / sum_k' (same), a_ik = 1 + |F_i - mu_k|^2 / tau
 * (til_cluster.h eqs. 7-9, written out again here); T and mu held fixed. */
typedef struct ref_dec {
    ref_reps_fn reps;
    void *ctx;
    uint32_t nu, ni;
    int d, K;
    double tau, gamma;
    const float *centers, *T; /* K x d, ni x K */
    const til_batch *b;
} ref_dec;

static double ref_dec_loss(void *ctx, const double *P)
{
    const ref_dec *x = ctx;
    double *F = malloc(((uint64_t)x->nu + x->ni) * x->d * sizeof *F), *q = malloc((size_t)x->K * sizeof *q);
    char *seen = calloc(x->ni, 1);
    x->reps(x->ctx, P, F);
    double L = 0;
    uint64_t n = 0;
    for (uint64_t k = 0; k < 2 * x->b->n; k++) {
        uint32_t it = k & 1 ? x->b->j[k >> 1] : x->b->i[k >> 1];
        if (seen[it]++)
            continue;
        n++;
        const double *v = F + ((uint64_t)x->nu + it) * x->d;
        double z = 0;
        for (int c = 0; c < x->K; c++) {
            double a = 0;
            for (int t = 0; t < x->d; t++) {
                double dv = v[t] - x->centers[c * x->d + t];
                a += dv * dv;
            }
            q[c] = pow(1 + a / x->tau, -(x->tau + 1) / 2);
            z += q[c];
        }
        for (int c = 0; c < x->K; c++) {
            double t = x->T[(uint64_t)it * x->K + c];
            if (t > 0)
                L += t * log(t / (q[c] / z));
        }
    }
    free(F);
    free(q);
    free(seen);
    return n ? x->gamma * L / (double)n : 0;
}

/* TIL-MI (gamma > 0, clusters from the first step) through the trainer's hooks
 * on backbone bb (its param: the point P; never moved here), training
 * interactions tr, one real before_grad on b0 (k-means, T, eta, one Lambda
 * step), then on b (J_out on b: --meta-batch same; meta_path: TIL_META_PATH_*,
 * which only mf reads), for threads 1 and 3:
 *  1. til_tilm_meta_grad's dJ_out/dLambda == central differences wrt Lambda
 *     (h = 1e-5) of J_out(P - beta grad_P [J_in(P; w(Lambda)) + gamma L_c(P)])
 *     (ref_look; w = ref_wnet on the method's states), and the same without
 *     L_c would differ by far more than the tolerance;
 *  2. the inner step (before_grad, til_batch_grad, after_grad): G on bb->rows
 *     == grad_P [J_in(P; w) + gamma L_c(P)] at the step's weights, and the
 *     step's loss grew by gamma L_c(P);
 *  3. threads 1 and 3: the same gL and G bits. */
static void ref_mi_check(const char *what, til_backbone *bb, til_step_buf *sb, const til_inter *tr,
                         ref_scores_fn f, ref_reps_fn reps, void *ctx, const til_batch *b0, const til_batch *b,
                         double gamma, int meta_path)
{
    til_err e;
    const int d = bb->dim;
    const uint64_t np = bb->n_param * (uint64_t)d, n = b->n;
    float *P0 = malloc(np * sizeof *P0), *gL1 = NULL, *G1 = NULL;
    double *P = malloc(np * sizeof *P), *gl = malloc(n * np * sizeof *gl), *g0 = malloc(np * sizeof *g0),
           *g00 = malloc(np * sizeof *g00), *Q = malloc(np * sizeof *Q), *wd = malloc(n * sizeof *wd);
    memcpy(P0, bb->param, np * sizeof *P0);
    for (uint64_t q = 0; q < np; q++)
        P[q] = P0[q];
    for (int threads = 1; threads <= 3; threads += 2) {
        memcpy(bb->param, P0, np * sizeof *P0);
        til_train_cfg c;
        til_train_defaults(&c);
        c.dim = d;
        c.batch = sb->cap;
        c.reg = 0.05;
        c.threads = threads;
        c.method = "til-mi";
        til_tilm_opts o;
        til_tilm_defaults(&o);
        o.virtual_lr = 0.5;
        o.hidden = 3;
        o.pretrain_epochs = 0;
        o.clusters = 3;
        o.gamma = gamma;
        o.meta_path = meta_path;
        o.eta_update = 1;
        c.method_opts = &o;
        til_adam adam;
        int epoch = 1;
        til_method *m = NULL;
        if (til_adam_init(&adam, TIL_ADAM_DENSE, bb->param, bb->n_param, d, c.lr, c.b1, c.b2, c.eps, &e)) {
            CHECK(0, "%s: adam: %s", what, e.msg);
            break;
        }
        til_method_env env = {&c, tr, bb, &adam, sb, NULL, NULL, &epoch, NULL, tr};
        if (til_method_create(&m, "til-mi", &env, &o, &e)) {
            CHECK(0, "%s: til-mi on %s: %s", what, bb->ops->name, e.msg);
            til_adam_free(&adam);
            break;
        }
        til_tilm_view v;
        til_tilm_inspect(m, &v);
        size_t nl = v.net->n_params;
        float *gL = calloc(nl, sizeof *gL), *G = NULL;
        int ok = bb->ops->prepare(bb, b0, &e) == 0 && m->ops->before_grad(m, b0, &e) == 0 &&
                 til_tilm_meta_grad(m, b, gL, &e) == 0;
        CHECK(ok, "%s: meta_grad: %s", what, e.msg);
        til_tilm_inspect(m, &v);
        CHECK(!ok || (v.clustered && v.T && v.centers), "%s: clusters active", what);
        if (ok && threads == 1) { /* 1. dJ_out/dLambda against the oracle */
            ref_dec x = {reps, ctx, bb->n_users, bb->n_items, d, v.K, 1.0, o.gamma, v.centers, v.T, b};
            ref_inner_parts(f, ctx, P, np, bb->n_users, d, b, c.reg, ref_dec_loss, &x, gl, g0);
            ref_inner_parts(f, ctx, P, np, bb->n_users, d, b, c.reg, NULL, NULL, gl, g00);
            const til_wnet *net = v.net;
            double *Ld = malloc(nl * sizeof *Ld);
            for (size_t k = 0; k < nl; k++)
                Ld[k] = net->params[k];
            double *got = malloc(nl * sizeof *got), *ref = malloc(nl * sizeof *ref), *ref0 = malloc(nl * sizeof *ref0);
            double maxref = 0, maxdiff = 0;
            for (size_t k = 0; k < nl; k++) {
                double keep = Ld[k], J[2][2], h = 1e-5;
                for (int sgn = 0; sgn < 2; sgn++) {
                    Ld[k] = keep + (sgn ? -h : h);
                    ref_wnet(Ld, net->in, net->hidden, v.S, n, wd);
                    J[0][sgn] = ref_look(f, ctx, P, np, gl, g0, wd, n, v.beta, b, Q);
                    J[1][sgn] = ref_look(f, ctx, P, np, gl, g00, wd, n, v.beta, b, Q);
                }
                Ld[k] = keep;
                ref[k] = (J[0][0] - J[0][1]) / (2 * h);
                ref0[k] = (J[1][0] - J[1][1]) / (2 * h);
                got[k] = gL[k];
                maxref = fmax(maxref, fabs(ref[k]));
            }
            char msg[160];
            snprintf(msg, sizeof msg, "%s: dJ_out/dLambda with gamma L_c vs the oracle", what);
            const double atol = 2e-6 * maxref, rtol = 2e-5; /* float vs double: worst seen ~0.02 of it */
            CHECK_CLOSE(msg, got, ref, nl, atol, rtol);
            double worst = 0;
            for (size_t k = 0; k < nl; k++)
                worst = fmax(worst, fabs(got[k] - ref[k]) / (atol + rtol * fabs(ref[k])));
            /* the clustering term matters: without it in the look-ahead the check above would fail by a
             * factor of 10 at least */
            for (size_t k = 0; k < nl; k++)
                maxdiff = fmax(maxdiff, fabs(ref[k] - ref0[k]) / (atol + rtol * fabs(ref[k])));
            CHECK(maxdiff > 10, "%s: L_c moves dJ/dLambda by only %.3g tolerances", what, maxdiff);
            printf("# %s: max |dJ/dLambda| %.3g, worst error %.3g tolerances; L_c moves it by up to %.3g\n", what,
                   maxref, worst, maxdiff);
            free(Ld), free(got), free(ref), free(ref0);
        }
        /* 2. the inner step on b */
        double loss0 = 0, loss1 = 0;
        ok = ok && bb->ops->prepare(bb, b, &e) == 0 && m->ops->before_grad(m, b, &e) == 0;
        float *C = NULL;
        if (ok) {
            til_tilm_inspect(m, &v);
            C = malloc((size_t)v.K * d * sizeof *C);
            memcpy(C, v.centers, (size_t)v.K * d * sizeof *C);
            ok = til_batch_grad(bb, b, c.reg, threads, sb, &loss0, &e) == 0;
            loss1 = loss0;
            ok = ok && m->ops->after_grad(m, b, &loss1, &e) == 0;
        }
        CHECK(ok, "%s: inner step: %s", what, e.msg);
        if (ok) {
            G = malloc(bb->n_rows * d * sizeof *G);
            memcpy(G, sb->G, bb->n_rows * d * sizeof *G);
        }
        if (ok && threads == 1) {
            ref_dec x = {reps, ctx, bb->n_users, bb->n_items, d, v.K, 1.0, o.gamma, C, v.T, b};
            ref_inner_parts(f, ctx, P, np, bb->n_users, d, b, c.reg, ref_dec_loss, &x, gl, g0);
            uint64_t nr = bb->n_rows * d;
            double *got = malloc(nr * sizeof *got), *ref = malloc(nr * sizeof *ref), *dec = malloc(nr * sizeof *dec),
                   maxg = 0;
            for (uint64_t k = 0; k < bb->n_rows; k++)
                for (int q = 0; q < d; q++) {
                    uint64_t pq = (uint64_t)bb->rows[k] * d + q;
                    double g = g0[pq];
                    for (uint64_t t = 0; t < n; t++)
                        g += (double)sb->w[t] / (double)n * gl[t * np + pq];
                    got[k * d + q] = G[k * d + q];
                    ref[k * d + q] = g;
                    dec[k * d + q] = g0[pq] - g00[pq]; /* gamma grad L_c */
                    maxg = fmax(maxg, fabs(g));
                }
            char msg[160];
            snprintf(msg, sizeof msg, "%s: the step's G with gamma L_c vs the oracle", what);
            const double atol = 1e-6 * maxg, rtol = 1e-5; /* float vs double: worst seen ~0.1 of it */
            CHECK_CLOSE(msg, got, ref, nr, atol, rtol);
            double worst = 0, moved = 0;
            for (uint64_t k = 0; k < nr; k++) {
                worst = fmax(worst, fabs(got[k] - ref[k]) / (atol + rtol * fabs(ref[k])));
                moved = fmax(moved, fabs(dec[k]) / (atol + rtol * fabs(ref[k])));
            }
            CHECK(moved > 10, "%s: gamma grad L_c in G is only %.3g tolerances", what, moved);
            printf("# %s: the step's G: max %.3g, worst error %.3g tolerances; gamma grad L_c up to %.3g\n", what,
                   maxg, worst, moved);
            double lc = ref_dec_loss(&x, P);
            CHECK(fabs((loss1 - loss0) - lc) <= 1e-5 * lc, "%s: loss += %.9g, gamma L_c = %.9g", what, loss1 - loss0,
                  lc);
            free(got), free(ref), free(dec);
        }
        /* 3. threads */
        if (threads == 1) {
            gL1 = gL, G1 = G;
            gL = G = NULL;
        } else if (gL1 && G1 && G) {
            CHECK(!memcmp(gL, gL1, nl * sizeof *gL) && !memcmp(G, G1, bb->n_rows * d * sizeof *G),
                  "%s: 1 and 3 threads differ", what);
        }
        free(gL), free(G), free(C);
        til_method_free(&m);
        til_adam_free(&adam);
    }
    memcpy(bb->param, P0, np * sizeof *P0);
    free(P0), free(gL1), free(G1), free(P), free(gl), free(g0), free(g00), free(Q), free(wd);
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
