/* Tests of the TIL methods in the trainer (til_tilm, til_method, the MF jvp):
 * the trainer-integrated meta-gradient against a finite difference of
 * J_out(Theta - beta grad J_in(Theta, Lambda)) wrt Lambda (til-ui, and til-mi
 * with the clustering loss inside J_in), the generic jvp path against til_meta,
 * and the clustering-loss gradient added to the step's G. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "til_adam.h"
#include "til_backbone.h"
#include "til_cluster.h"
#include "til_meta.h"
#include "til_method.h"
#include "til_rng.h"
#include "til_sampler.h"
#include "til_tilm.h"
#include "til_train.h"
#include "unit.h"

enum { NU = 6, NI = 10, D = 4, NB = 8, PER = 3 };

typedef struct fx {
    til_train_cfg c;
    til_inter tr;
    til_backbone bb;
    til_adam adam;
    til_step_buf sb;
    til_sampler sp;
    til_triplets trip;
    int epoch;
    til_method *m;
    til_tilm_opts o;
} fx;

static int fx_init(fx *f, const char *method, int generic)
{
    til_err e;
    memset(f, 0, sizeof *f);
    til_train_defaults(&f->c);
    f->c.dim = D;
    f->c.batch = NB;
    f->c.reg = 0.01;
    f->c.method = method;
    til_tilm_defaults(&f->o);
    f->o.virtual_lr = 0.5;
    f->o.hidden = 3;
    f->o.pretrain_epochs = 0;
    f->o.clusters = 3;
    f->o.gamma = 0.5;
    f->o.eta_update = 1;
    f->o.meta_path = generic;
    f->c.method_opts = &f->o;
    if (til_inter_alloc(&f->tr, NU, NI, NU * PER, 0, &e))
        return -1;
    til_rng r;
    til_rng_seed(&r, 5, 0);
    for (int u = 0; u < NU; u++) {
        f->tr.indptr[u + 1] = (uint64_t)(u + 1) * PER;
        uint32_t a = (uint32_t)til_rng_below(&r, NI - PER);
        for (int k = 0; k < PER; k++)
            f->tr.items[u * PER + k] = a + (uint32_t)k; /* sorted, unique */
    }
    if (til_mf_init(&f->bb, NU, NI, D, NB, &e) ||
        til_adam_init(&f->adam, TIL_ADAM_DENSE, f->bb.param, f->bb.n_param, D, 1e-2, .9, .999, 1e-8, &e) ||
        til_step_buf_alloc(&f->sb, NB, D, &e) || til_sampler_init(&f->sp, TIL_SAMPLER_UNIFORM, &f->tr, 7, &e) ||
        til_triplets_alloc(&f->trip, f->tr.nnz, 1, &e) || til_sampler_epoch(&f->sp, 1, 1, &f->trip, &e))
        return -1;
    for (uint64_t k = 0; k < f->bb.n_param * D; k++)
        f->bb.param[k] = (float)(0.6 * til_rng_normal(&r));
    f->epoch = 1;
    til_method_env env = {&f->c, &f->tr, &f->bb, &f->adam, &f->sb, &f->sp, &f->trip, &f->epoch, NULL, &f->tr};
    if (til_method_create(&f->m, method, &env, &f->o, &e)) {
        til_report(&e);
        return -1;
    }
    return 0;
}

static void fx_free(fx *f)
{
    til_method_free(&f->m);
    til_backbone_free(&f->bb);
    til_adam_free(&f->adam);
    til_step_buf_free(&f->sb);
    til_sampler_free(&f->sp);
    til_triplets_free(&f->trip);
    til_inter_free(&f->tr);
}

static double bdx(double x) { return -1.0 / (1.0 + exp(x)); }
static double bl(double x) { return x >= 0 ? log1p(exp(-x)) : -x + log1p(exp(x)); }

/* J_out(Theta - beta grad J_in(Theta; w(S; Lambda))), in double, same batch as outer */
static double j_look(fx *f, const til_batch *b, const float *S, til_wnet_cache *wc, const til_tilm_view *v)
{
    float w[NB];
    til_wnet_forward_ref(v->net, wc, S, (int)b->n, w);
    const float *P = f->bb.param, *Q = f->bb.param + NU * D;
    double th[(NU + NI) * D], g[(NU + NI) * D] = {0};
    for (int k = 0; k < (NU + NI) * D; k++)
        th[k] = f->bb.param[k];
    double n = (double)b->n, reg = f->c.reg;
    int seen[NI] = {0}, nbi = 0;
    for (uint64_t k = 0; k < b->n; k++) {
        const float *p = P + b->u[k] * D, *qi = Q + b->i[k] * D, *qj = Q + b->j[k] * D;
        double x = 0;
        for (int c = 0; c < D; c++)
            x += (double)p[c] * ((double)qi[c] - qj[c]);
        double a = w[k] * bdx(x) / n;
        double *gu = g + b->u[k] * D, *gi = g + (NU + b->i[k]) * D, *gj = g + (NU + b->j[k]) * D;
        for (int c = 0; c < D; c++) {
            gu[c] += a * ((double)qi[c] - qj[c]) + reg / n * p[c];
            gi[c] += a * p[c] + reg / n * qi[c];
            gj[c] += -a * p[c] + reg / n * qj[c];
        }
        if (!seen[b->i[k]]++)
            nbi++;
        if (!seen[b->j[k]]++)
            nbi++;
    }
    if (v->T && v->centers) /* gamma * mean over the batch's items of KL(T_i||Q_i) */
        for (int i = 0; i < NI; i++)
            if (seen[i])
                til_dec_row_grad(Q + i * D, D, v->centers, v->K, 1.0, v->T + i * v->K, 0.5 / nbi, g + (NU + i) * D);
    for (int k = 0; k < (NU + NI) * D; k++)
        th[k] -= v->beta * g[k];
    double J = 0;
    for (uint64_t k = 0; k < b->n; k++) {
        const double *p = th + b->u[k] * D, *qi = th + (NU + b->i[k]) * D, *qj = th + (NU + b->j[k]) * D;
        double x = 0;
        for (int c = 0; c < D; c++)
            x += p[c] * (qi[c] - qj[c]);
        J += bl(x);
    }
    return J / n;
}

static void fd_case(const char *method, int generic)
{
    fx f;
    til_err e;
    CHECK(fx_init(&f, method, generic) == 0, "setup");
    til_batch b0 = {NB, f.trip.u, f.trip.i, f.trip.j};
    til_batch b = {NB, f.trip.u + NB, f.trip.i + NB, f.trip.j + NB};
    /* one real step of the method: refreshes eta, k-means + T for til-mi, steps Lambda once */
    CHECK(f.bb.ops->prepare(&f.bb, &b0, &e) == 0, "prepare");
    CHECK(f.m->ops->before_grad(f.m, &b0, &e) == 0, "before_grad");
    til_tilm_view v;
    til_tilm_inspect(f.m, &v);
    size_t np = v.net->n_params;
    float *gL = calloc(np, sizeof *gL);
    CHECK(til_tilm_meta_grad(f.m, &b, gL, &e) == 0, "meta_grad");
    til_tilm_inspect(f.m, &v);
    if (!strcmp(method, "til-mi"))
        CHECK(v.centers && v.T && v.clustered, "til-mi: clusters active");
    float S[NB * 2 * D];
    memcpy(S, v.S, sizeof S);
    til_wnet_cache wc;
    CHECK(til_wnet_cache_init(&wc, v.net, NB, &e) == 0, "cache");
    double got[64], ref[64];
    int nc = 0;
    float *par = ((til_wnet *)v.net)->params;
    for (size_t k = 0; k < np && nc < 64; k += (k < 24 ? 5 : 1)) {
        float keep = par[k];
        double h = 1e-3;
        par[k] = (float)(keep + h);
        double hp = (double)par[k] - keep;
        double jp = j_look(&f, &b, S, &wc, &v);
        par[k] = (float)(keep - h);
        double hm = keep - (double)par[k];
        double jm = j_look(&f, &b, S, &wc, &v);
        par[k] = keep;
        ref[nc] = (jp - jm) / (hp + hm);
        got[nc++] = gL[k];
    }
    CHECK_CLOSE(method, got, ref, (size_t)nc, 2e-6, 3e-2);
    til_wnet_cache_free(&wc);
    free(gL);
    fx_free(&f);
}

TEST(meta_grad_fd_til_ui) { fd_case("til-ui", 0); }
TEST(meta_grad_fd_til_mi) { fd_case("til-mi", 0); }
TEST(meta_grad_fd_til_ui_generic) { fd_case("til-ui", TIL_META_PATH_GENERIC); }
TEST(meta_grad_fd_til_mi_double) { fd_case("til-mi", TIL_META_PATH_DOUBLE); }

/* the generic jvp path on MF equals til_meta's closed form, inner != outer batch */
TEST(generic_equals_til_meta)
{
    fx f;
    til_err e;
    CHECK(fx_init(&f, "bpr", 0) == 0, "setup");
    til_batch in = {NB, f.trip.u, f.trip.i, f.trip.j}, out = {NB - 2, f.trip.u + NB, f.trip.i + NB, f.trip.j + NB};
    float w[NB], dw_g[NB], dw_m[NB];
    for (int k = 0; k < NB; k++)
        w[k] = 0.2f + 0.1f * (float)k;
    double jg, jm;
    CHECK(til_tilm_meta_generic(&f.bb, &in, w, &out, f.c.reg, 0.3, NULL, 1, &f.sb, dw_g, &jg, &e) == 0, "generic");
    til_meta_ws ws;
    CHECK(til_meta_ws_init(&ws, NU, NI, D, &e) == 0, "ws");
    til_meta_batch mi = {NB, in.u, in.i, in.j}, mo = {(int)out.n, out.u, out.i, out.j};
    til_meta_opts o = {.beta = 0.3, .reg = f.c.reg};
    CHECK(til_meta_dw(&ws, f.bb.param, f.bb.param + NU * D, &mi, w, &mo, &o, dw_m, &jm, &e) == 0, "til_meta");
    CHECK_CLOSE_F("dw generic vs til_meta", dw_g, dw_m, NB, 1e-7, 1e-4);
    CHECK(fabs(jg - jm) <= 1e-6 * fabs(jm), "J_out %g vs %g", jg, jm);
    til_meta_ws_free(&ws);
    fx_free(&f);
}

/* the float fast path equals til_meta_dw (double), with an extra inner term, inner != outer */
static void extra_test(void *ctx, int table, uint32_t row, const float *theta, int d, double *g)
{
    (void)ctx;
    if (table == TIL_META_ITEM && row % 2 == 0)
        for (int c = 0; c < d; c++)
            g[c] += 0.3 * theta[c] * theta[c];
}

TEST(fast_equals_til_meta)
{
    fx f;
    til_err e;
    CHECK(fx_init(&f, "bpr", 0) == 0, "setup");
    til_batch in = {NB, f.trip.u, f.trip.i, f.trip.j}, out = {NB - 3, f.trip.u + 5, f.trip.i + 5, f.trip.j + 5};
    float w[NB], dw_f[NB], dw_m[NB];
    for (int k = 0; k < NB; k++)
        w[k] = 0.9f - 0.1f * (float)k;
    double jf, jm;
    til_tilm_fast fa;
    CHECK(til_tilm_fast_init(&fa, NU, NI, D, NB, &e) == 0, "fast ws");
    const float *P = f.bb.param, *Q = f.bb.param + NU * D;
    for (int rep = 0; rep < 2; rep++) /* the workspace is clean after a call */
        CHECK(til_tilm_meta_dw_fast(&fa, P, Q, &in, w, &out, 0.3, f.c.reg, extra_test, NULL, dw_f, &jf, &e) == 0,
              "fast");
    til_meta_ws ws;
    CHECK(til_meta_ws_init(&ws, NU, NI, D, &e) == 0, "ws");
    til_meta_batch mi = {NB, in.u, in.i, in.j}, mo = {(int)out.n, out.u, out.i, out.j};
    til_meta_opts o = {.beta = 0.3, .reg = f.c.reg, .extra = extra_test};
    CHECK(til_meta_dw(&ws, P, Q, &mi, w, &mo, &o, dw_m, &jm, &e) == 0, "til_meta");
    CHECK_CLOSE_F("dw fast vs til_meta", dw_f, dw_m, NB, 1e-7, 1e-4);
    CHECK(fabs(jf - jm) <= 1e-5 * fabs(jm), "J_out %g vs %g", jf, jm);
    til_meta_ws_free(&ws);
    til_tilm_fast_free(&fa);
    fx_free(&f);
}

/* til_tilm_fast.extra_row (float rows, TIL-MI's per-step DEC gradient) gives the
 * same bits as the extra callback adding the same numbers in double */
static float extra_rows_tab[NI * D];
static void extra_const(void *ctx, int table, uint32_t row, const float *theta, int d, double *g)
{
    (void)ctx, (void)theta;
    if (table == TIL_META_ITEM && row % 3 != 1)
        for (int c = 0; c < d; c++)
            g[c] += extra_rows_tab[row * d + c];
}
static const float *extra_const_row(void *ctx, uint32_t item)
{
    (void)ctx;
    return item % 3 != 1 ? extra_rows_tab + item * D : NULL;
}

TEST(fast_extra_rows_equal_callback)
{
    fx f;
    til_err e;
    CHECK(fx_init(&f, "bpr", 0) == 0, "setup");
    til_rng r;
    til_rng_seed(&r, 77, 0);
    for (int q = 0; q < NI * D; q++)
        extra_rows_tab[q] = (float)(0.3 * til_rng_normal(&r));
    til_batch in = {NB, f.trip.u, f.trip.i, f.trip.j}, out = {NB - 3, f.trip.u + 5, f.trip.i + 5, f.trip.j + 5};
    float w[NB], dw_c[NB], dw_r[NB];
    for (int k = 0; k < NB; k++)
        w[k] = 0.9f - 0.1f * (float)k;
    double jc, jr;
    til_tilm_fast fa;
    CHECK(til_tilm_fast_init(&fa, NU, NI, D, NB, &e) == 0, "fast ws");
    const float *P = f.bb.param, *Q = f.bb.param + NU * D;
    for (int same = 0; same < 2; same++) {
        const til_batch *ob = same ? &in : &out;
        fa.extra_row = NULL;
        CHECK(til_tilm_meta_dw_fast(&fa, P, Q, &in, w, ob, 0.3, f.c.reg, extra_const, NULL, dw_c, &jc, &e) == 0,
              "callback");
        fa.extra_row = extra_const_row;
        CHECK(til_tilm_meta_dw_fast(&fa, P, Q, &in, w, ob, 0.3, f.c.reg, NULL, NULL, dw_r, &jr, &e) == 0, "rows");
        CHECK(!memcmp(dw_c, dw_r, sizeof dw_c) && jc == jr, "extra_row differs from the callback (outer %s)",
              same ? "same" : "fresh");
        float dw0[NB];
        fa.extra_row = NULL;
        CHECK(til_tilm_meta_dw_fast(&fa, P, Q, &in, w, ob, 0.3, f.c.reg, NULL, NULL, dw0, NULL, &e) == 0, "none");
        CHECK(memcmp(dw0, dw_r, sizeof dw0) != 0, "the extra term changed nothing: not a test");
    }
    til_tilm_fast_free(&fa);
    fx_free(&f);
}

/* MF: before_grad leaves the batch's scores at Theta in the step buffer
 * (scores_ready); the step that uses them gives the same loss and G, bit for
 * bit, as one that scores the batch itself; the flag is consumed */
TEST(step_reuses_inner_scores)
{
    fx f;
    til_err e;
    CHECK(fx_init(&f, "til-ui", 0) == 0, "setup");
    til_batch b = {NB, f.trip.u, f.trip.i, f.trip.j};
    CHECK(f.bb.ops->prepare(&f.bb, &b, &e) == 0 && f.m->ops->before_grad(f.m, &b, &e) == 0, "before_grad");
    CHECK(f.sb.scores_ready == 1, "before_grad did not hand its scores to the step");
    for (int k = 0; k < NB; k++) {
        const float *p = f.bb.U + (uint64_t)b.u[k] * D;
        CHECK(f.sb.s_pos[k] == til_dot(p, f.bb.V + (uint64_t)b.i[k] * D, D) &&
                  f.sb.s_neg[k] == til_dot(p, f.bb.V + (uint64_t)b.j[k] * D, D),
              "triplet %d: handed-over scores differ from the head's", k);
    }
    double l0, l1;
    static float G0[3 * NB * D];
    CHECK(til_batch_grad(&f.bb, &b, f.c.reg, 1, &f.sb, &l0, &e) == 0 && f.sb.scores_ready == 0, "grad, flag cleared");
    memcpy(G0, f.sb.G, f.bb.n_rows * D * sizeof(float));
    for (int k = 0; k < NB; k++) /* poison: the next step must score itself */
        f.sb.s_pos[k] = f.sb.s_neg[k] = 1e30f;
    CHECK(til_batch_grad(&f.bb, &b, f.c.reg, 1, &f.sb, &l1, &e) == 0, "grad");
    CHECK(l0 == l1 && memcmp(G0, f.sb.G, f.bb.n_rows * D * sizeof(float)) == 0,
          "step with handed-over scores differs from one that scores (loss %.9g vs %.9g)", l0, l1);
    fx_free(&f);
}

/* til-mi after_grad adds gamma * d/dq (mean KL over the batch's items) into G's item rows */
TEST(cluster_loss_into_G)
{
    fx f;
    til_err e;
    CHECK(fx_init(&f, "til-mi", 0) == 0, "setup");
    til_batch b = {NB, f.trip.u, f.trip.i, f.trip.j};
    double loss0, loss1;
    float G0[3 * NB * D];
    til_tilm_view v;
    CHECK(f.bb.ops->prepare(&f.bb, &b, &e) == 0 && f.m->ops->before_grad(f.m, &b, &e) == 0, "before_grad");
    til_tilm_inspect(f.m, &v);
    float C[3 * D];
    memcpy(C, v.centers, sizeof C);
    CHECK(til_batch_grad(&f.bb, &b, f.c.reg, 1, &f.sb, &loss0, &e) == 0, "grad");
    memcpy(G0, f.sb.G, f.bb.n_rows * D * sizeof(float));
    loss1 = loss0;
    CHECK(f.m->ops->after_grad(f.m, &b, &loss1, &e) == 0, "after_grad");
    CHECK(loss1 > loss0, "cluster loss added to the step's loss (%g -> %g)", loss0, loss1);
    uint32_t items[3 * NB];
    int ni = 0;
    for (uint64_t k = 0; k < f.bb.n_rows; k++)
        if (f.bb.rows[k] >= NU)
            items[ni++] = f.bb.rows[k] - NU;
    double got[3 * NB * D], ref[3 * NB * D];
    int nc = 0;
    float *Q = f.bb.param + NU * D;
    for (uint64_t k = 0; k < f.bb.n_rows; k++) {
        if (f.bb.rows[k] < NU)
            continue;
        uint32_t it = f.bb.rows[k] - NU;
        for (int c = 0; c < D; c++) {
            float keep = Q[it * D + c];
            double lp, lm, h = 1e-3;
            Q[it * D + c] = (float)(keep + h);
            double hp = (double)Q[it * D + c] - keep;
            lp = til_dec_loss_grad(Q, items, (uint64_t)ni, D, C, 3, 1.0, v.T, 1, 1.0, NULL, NULL);
            Q[it * D + c] = (float)(keep - h);
            double hm = keep - (double)Q[it * D + c];
            lm = til_dec_loss_grad(Q, items, (uint64_t)ni, D, C, 3, 1.0, v.T, 1, 1.0, NULL, NULL);
            Q[it * D + c] = keep;
            ref[nc] = 0.5 * (lp - lm) / (hp + hm);
            got[nc++] = (double)f.sb.G[k * D + c] - G0[k * D + c];
        }
    }
    CHECK_CLOSE("gamma dKL/dq in G", got, ref, (size_t)nc, 1e-5, 1e-2);
    fx_free(&f);
}

/* --meta-holdout: the split (sizes, disjoint, union = train, >= 1 kept, depends
 * on (seed, user) only) and the inner sampler (positives from the rest,
 * negatives never a training item, held-out ones included) */
TEST(meta_holdout_split_and_sampler)
{
    til_err e;
    til_inter tr, in, h, in2, h2;
    const uint32_t nu = 40, ni = 30;
    til_rng r;
    til_rng_seed(&r, 9, 0);
    CHECK(til_inter_alloc(&tr, nu, ni, (uint64_t)nu * ni, 0, &e) == 0, "alloc");
    uint64_t p = 0;
    for (uint32_t u = 0; u < nu; u++) { /* degrees 0..u % 12 */
        for (uint32_t i = 0; i < ni; i++)
            if (til_rng_below(&r, ni) < u % 12)
                tr.items[p++] = i;
        tr.indptr[u + 1] = p;
    }
    tr.nnz = p;
    CHECK(til_tilm_holdout(&tr, 0.3, 4, &in, &h, &e) == 0 && til_tilm_holdout(&tr, 0.3, 4, &in2, &h2, &e) == 0,
          "holdout: %s", e.msg);
    CHECK(h.nnz == h2.nnz && !memcmp(h.items, h2.items, h.nnz * 4) && !memcmp(in.items, in2.items, in.nnz * 4),
          "split not deterministic");
    int ok = in.nnz + h.nnz == tr.nnz;
    for (uint32_t u = 0; u < nu; u++) {
        uint64_t n = til_inter_deg(&tr, u), hh = til_inter_deg(&h, u), want = (uint64_t)llround(0.3 * (double)n);
        ok &= hh == (n ? (want < n ? want : n - 1) : 0) && til_inter_deg(&in, u) == n - hh;
        for (uint64_t k = h.indptr[u]; k < h.indptr[u + 1]; k++)
            ok &= til_inter_has(&tr, u, h.items[k]) && !til_inter_has(&in, u, h.items[k]);
        for (uint64_t k = in.indptr[u]; k < in.indptr[u + 1]; k++)
            ok &= til_inter_has(&tr, u, in.items[k]);
    }
    CHECK(ok, "held-out split sizes or membership wrong");
    til_sampler sp;
    til_triplets t;
    CHECK(til_sampler_init(&sp, TIL_SAMPLER_UNIFORM, &in, 7, &e) == 0 && til_triplets_alloc(&t, in.nnz, 1, &e) == 0,
          "sampler: %s", e.msg);
    sp.exclude = &tr;
    ok = 1;
    for (uint64_t ep = 1; ep <= 20; ep++) {
        til_sampler_epoch(&sp, ep, 2, &t, &e);
        for (uint64_t k = 0; k < t.n; k++)
            ok &= til_inter_has(&in, t.u[k], t.i[k]) && !til_inter_has(&tr, t.u[k], t.j[k]);
    }
    CHECK(ok, "a held-out item in an inner triplet or as a negative");
    til_sampler_free(&sp);
    til_triplets_free(&t);
    til_inter_free(&tr), til_inter_free(&in), til_inter_free(&h), til_inter_free(&in2), til_inter_free(&h2);
}

int main(void)
{
    RUN(meta_grad_fd_til_ui);
    RUN(meta_grad_fd_til_mi);
    RUN(meta_grad_fd_til_ui_generic);
    RUN(meta_grad_fd_til_mi_double);
    RUN(fast_equals_til_meta);
    RUN(fast_extra_rows_equal_callback);
    RUN(generic_equals_til_meta);
    RUN(step_reuses_inner_scores);
    RUN(cluster_loss_into_G);
    RUN(meta_holdout_split_and_sampler);
    return unit_end();
}
