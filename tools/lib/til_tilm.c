/* til_tilm: TIL-UI, TIL-MI, TIL-MIK as a til_method (see til_tilm.h). */
#include "til_tilm.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "til_adam.h"
#include "til_cluster.h"
#include "til_io.h"
#include "til_loss.h"
#include "til_meta.h"
#include "til_par.h"
#include "til_rng.h"
#include "til_sampler.h"
#include "til_state.h"
#include "til_train.h"

#ifdef TIL_HAVE_BLAS
#include <cblas.h>
#endif

void til_tilm_defaults(til_tilm_opts *o)
{
    memset(o, 0, sizeof *o);
    o->alpha = 1.0;
    o->clusters = 60;
    o->tau = 1.0;
    o->gamma = 0.1;
    o->pretrain_epochs = 500;
    o->cluster_update = 10;
    o->eta_update = 50;
    o->kmeans_iter = 3;
    o->meta_lr = 1e-3;
}

const char *const til_tilm_meta_path_names[3] = {"auto", "generic", "double"};

int til_tilm_variant(const char *name)
{
    if (!strcmp(name, "til-ui"))
        return TIL_TILM_UI;
    if (!strcmp(name, "til-mi"))
        return TIL_TILM_MI;
    if (!strcmp(name, "til-mik"))
        return TIL_TILM_MIK;
    return -1;
}

/* ------------------------------------------------------------------ a small eager Adam */

/* PyTorch Adam, every element every step (Lambda and Phi are small):
 *   m = m*b1 + (1-b1)*g; v = v*b2 + ((1-b2)*g)*g
 *   p = p + (-lr/(1-b1^t)) * m / (sqrt(v)/sqrt(1-b2^t) + eps) */
typedef struct tadam {
    size_t n;
    float *p, *m, *v; /* p not owned; m, v one allocation */
    uint64_t t;
    double lr, b1, b2, eps;
} tadam;

static int tadam_init(tadam *a, float *p, size_t n, double lr, double b1, double b2, double eps, til_err *e)
{
    *a = (tadam){n, p, NULL, NULL, 0, lr, b1, b2, eps};
    if (!(a->m = til_calloc(2 * n, sizeof(float), e)))
        return -1;
    a->v = a->m + n;
    return 0;
}

static void tadam_step(tadam *a, const float *g)
{
    a->t++;
    float cn = (float)(-a->lr / (1.0 - pow(a->b1, (double)a->t)));
    float bc2s = (float)sqrt(1.0 - pow(a->b2, (double)a->t));
    float b1 = (float)a->b1, b2 = (float)a->b2, ob1 = (float)(1 - a->b1), ob2 = (float)(1 - a->b2),
          eps = (float)a->eps;
    for (size_t k = 0; k < a->n; k++) {
        a->m[k] = a->m[k] * b1 + ob1 * g[k];
        a->v[k] = a->v[k] * b2 + (ob2 * g[k]) * g[k];
        float denom = sqrtf(a->v[k]) / bc2s + eps;
        a->p[k] = a->p[k] + cn * a->m[k] / denom;
    }
}

/* ------------------------------------------------------------------ state */

typedef struct tilm {
    int variant;
    til_tilm_opts o;
    int d, K;
    uint64_t B;
    double beta;
    til_wnet net;
    til_wnet_cache wc;
    tadam lam;
    float *gL;       /* n_params */
    til_meta_ws ws;
    til_tilm_fast fast;
    float *S;        /* B x 2d states */
    float *w;        /* B weights of the step */
    float *dw;       /* B */
    float *eta;      /* n_users x d */
    int clustered;   /* cluster terms active (after pretraining) */
    float *centers;  /* K x d: Phi (mi) or the k-means centroids (mik) */
    tadam phi;
    float *gC;       /* K x d */
    uint32_t *memb;  /* n_items */
    float *T;        /* n_items x K (mi) */
    /* the batch's distinct items (from bb->rows) and their G index */
    uint32_t *bitems;
    uint64_t *bgidx;
    uint64_t nbi;
    uint32_t *stamp, cur;
    uint32_t *bpos;       /* n_items: index of a batch item in bitems (valid where stamp == cur) */
    int inject;           /* 1: the DEC gradient reaches the parameters through backward (every backbone but
                           * mf, whose V rows are its parameter rows: added into G directly, as always) */
    uint32_t *bslot;      /* 3B: each batch item's dQ slot (its first occurrence), for xr */
    til_rep_grad xr;      /* the batch's DEC gradient gXc as a representation gradient (til_train.h) */
    double lc;            /* the batch's clustering loss (mean KL), with gXc and gC computed in before_grad */
    float *Xc, *gXc;      /* 3B x d: scratch; the batch items' DEC gradients (bitems order) */
    uint32_t *ou;         /* 3 x B: fresh outer batch */
    float *wst;           /* weights used this epoch (nnz) */
    uint64_t nwst;
    double lc_sum;
    uint64_t lc_n;
    uint32_t *held_user;  /* held->nnz: the user of each held-out pair (--meta-holdout) */
} tilm;

static void tilm_free(til_method *m)
{
    tilm *t = m->impl;
    if (!t)
        return;
    til_wnet_free(&t->net);
    til_wnet_cache_free(&t->wc);
    til_meta_ws_free(&t->ws);
    til_tilm_fast_free(&t->fast);
    free(t->lam.m);
    free(t->phi.m);
    void *p[] = {t->gL, t->S, t->w, t->dw, t->eta, t->centers, t->gC, t->memb, t->T, t->bitems, t->bpos,
                 t->bgidx, t->stamp, t->Xc, t->gXc, t->ou, t->wst, t->held_user, t->bslot};
    for (size_t k = 0; k < sizeof p / sizeof *p; k++)
        free(p[k]);
    free(t);
    m->impl = NULL;
}

/* all item (and user) representations current: sync the lazy Adam, forward all */
static int sync_all(til_method *m, til_err *e)
{
    til_adam_sync(m->env.adam, m->env.c->threads);
    return m->env.bb->ops->forward(m->env.bb, NULL, m->env.c->threads, e);
}

static int refresh_clusters(til_method *m, int init, til_err *e)
{
    tilm *t = m->impl;
    til_backbone *bb = m->env.bb;
    const til_train_cfg *c = m->env.c;
    if (sync_all(m, e))
        return -1;
    if (init) {
        til_kmeans_info info;
        if (til_kmeans_fast(bb->V, bb->n_items, t->d, t->K, 100, c->seed, c->threads, t->centers, t->memb, &info,
                            e))
            return til_errctx(e, "k-means initialisation of the item clusters");
    } else if (t->variant == TIL_TILM_MIK) {
        if (til_kmeans_lloyd_fast(bb->V, bb->n_items, t->d, t->K, t->o.kmeans_iter, c->threads, t->centers,
                                  t->memb, NULL, e))
            return til_errctx(e, "k-means refresh");
    }
    if (t->variant == TIL_TILM_MI) {
        if (til_dec_refresh_fast(bb->V, bb->n_items, t->d, t->centers, t->K, t->o.tau, c->threads, t->T, t->memb,
                                 e))
            return -1;
    }
    return 0;
}

/* look-ahead's extra inner gradient: gamma * mean over the batch's items of KL */
static void dec_extra(void *ctx, int table, uint32_t row, const float *theta, int d, double *g)
{
    tilm *t = ctx;
    (void)theta;
    if (table != TIL_META_ITEM || t->stamp[row] != t->cur)
        return;
    /* gamma * d/dq_i of the batch's mean KL, computed once per step at the current Theta and Phi (the same
     * gradient the step adds into G in after_grad) */
    const float *gx = t->gXc + (uint64_t)t->bpos[row] * d;
    for (int c = 0; c < d; c++)
        g[c] += gx[c];
}

/* the same gradient as a float row, for the fast path (til_tilm_fast.extra_row) */
static const float *dec_extra_row(void *ctx, uint32_t item)
{
    const tilm *t = ctx;
    return t->stamp[item] == t->cur ? t->gXc + (uint64_t)t->bpos[item] * t->d : NULL;
}

static int cluster_loss_on(const tilm *t) { return t->variant == TIL_TILM_MI && t->clustered && t->o.gamma > 0; }

/* the batch's distinct items, in bb->rows order (MF: param row = n_users + item; other backbones: in
 * order of first occurrence in b, i then j per triplet) */
static int collect_items(til_method *m, const til_batch *b, til_err *e)
{
    tilm *t = m->impl;
    til_backbone *bb = m->env.bb;
    t->nbi = 0;
    if (++t->cur == 0) {
        memset(t->stamp, 0, (size_t)bb->n_items * sizeof *t->stamp);
        t->cur = 1;
    }
    if (cluster_loss_on(t) && t->inject)
        for (uint64_t k = 0; k < 2 * b->n; k++) {
            uint32_t it = k & 1 ? b->j[k >> 1] : b->i[k >> 1];
            if (t->stamp[it] != t->cur) {
                t->stamp[it] = t->cur;
                t->bpos[it] = (uint32_t)t->nbi;
                t->bitems[t->nbi++] = it;
            }
        }
    else if (cluster_loss_on(t))
        for (uint64_t k = 0; k < bb->n_rows; k++)
            if (bb->rows[k] >= bb->n_users) {
                uint32_t it = bb->rows[k] - bb->n_users;
                t->stamp[it] = t->cur;
                t->bpos[it] = (uint32_t)t->nbi;
                t->bitems[t->nbi] = it;
                t->bgidx[t->nbi++] = k;
            }
    if (!cluster_loss_on(t) || t->nbi == 0)
        return 0;
    /* gamma * (1/n) sum_i KL(T_i || Q_i) over the batch's items: gradients wrt those rows and Phi */
    /* rows read in place through the item list; gXc (set, bitems order) and gC (added) */
    memset(t->gC, 0, (size_t)t->K * t->d * sizeof(float));
    return til_dec_loss_grad_rows_fast(bb->V, t->bitems, t->nbi, t->d, t->centers, t->K, t->o.tau, t->T, 1,
                                       t->o.gamma, m->env.c->threads, t->gXc, t->gC, &t->lc, e);
}

/* t->xr: the batch's DEC gradient gXc (collect_items) as a representation
 * gradient, each item's row in the dQ slot of its first occurrence in b (i side:
 * k, j side: n + k). Backward is linear in its dQ rows, so this adds
 * gamma J_V^T dL_c/dV to the parameter gradient of any backbone. */
static void dec_slots(tilm *t, const til_batch *b)
{
    t->xr = (til_rep_grad){0, t->bslot, t->gXc};
    if (!cluster_loss_on(t) || t->nbi == 0)
        return;
    for (uint64_t r = 0; r < t->nbi; r++)
        t->bslot[r] = UINT32_MAX;
    for (uint64_t k = 0; k < 2 * b->n; k++) {
        uint32_t it = k & 1 ? b->j[k >> 1] : b->i[k >> 1];
        uint32_t *sl = t->bslot + t->bpos[it]; /* every item of b is stamped */
        if (*sl == UINT32_MAX)
            *sl = (uint32_t)(k & 1 ? b->n + (k >> 1) : k >> 1);
    }
    t->xr.n = t->nbi;
}

/* Steps 1-2 of the iteration on batch b (prepared, rows current, refreshes done):
 * states S, weights c->w with the current Lambda, gL = dJ_out/dLambda. */
static int meta_grad(til_method *m, const til_batch *b, float *gL, til_err *e)
{
    tilm *t = m->impl;
    til_backbone *bb = m->env.bb;
    const til_train_cfg *c = m->env.c;
    uint64_t step = m->env.adam->t;
    int n = (int)b->n, d = t->d;
    /* 1. states and weights with the current Lambda */
    int multi = t->variant != TIL_TILM_UI && t->clustered;
    til_state_build(d, n, b->u, b->i, b->j, bb->U, bb->V, t->eta, multi ? t->centers : NULL,
                    multi ? t->memb : NULL, (float)t->o.alpha, t->S);
    til_wnet_forward(&t->net, &t->wc, t->S, n, t->w);
    /* 2. the outer batch and dJ_out/dLambda at the look-ahead */
    til_batch out = *b;
    uint32_t *ou = t->ou, *oi = t->ou + t->B, *oj = t->ou + 2 * t->B;
    if (t->held_user) {
        /* held-out pairs, uniform with replacement; negatives reject all of u's training items */
        const til_inter *h = m->env.held, *full = m->env.full;
        til_rng r;
        til_rng_seed(&r, c->seed, ((uint64_t)TIL_STREAM_META_HELD << 56) ^ step);
        for (uint64_t k = 0; k < t->B; k++) {
            uint64_t q = til_rng_below(&r, h->nnz);
            ou[k] = t->held_user[q];
            oi[k] = h->items[q];
            do
                oj[k] = (uint32_t)til_rng_below(&r, full->n_items);
            while (til_inter_has(full, ou[k], oj[k]));
        }
        out = (til_batch){t->B, ou, oi, oj};
    } else if (t->o.meta_fresh) {
        const til_triplets *tr = m->env.trip;
        uint64_t no = TIL_MIN(t->B, tr->n);
        til_rng r;
        til_rng_seed(&r, c->seed, ((uint64_t)TIL_STREAM_META << 56) ^ step);
        uint64_t off = til_rng_below(&r, tr->n);
        for (uint64_t k = 0; k < no; k++) {
            uint64_t q = (off + k) % tr->n;
            ou[k] = tr->u[q];
            oi[k] = tr->i[q];
            oj[k] = tr->j[q];
        }
        out = (til_batch){no, ou, oi, oj};
    }
    if (t->held_user || t->o.meta_fresh) {
        /* its rows must be current too */
        if (bb->ops->prepare(bb, &out, e))
            return -1;
        if (bb->rows)
            til_adam_catch_up(m->env.adam, bb->rows, bb->n_rows, c->threads);
        else
            til_adam_sync(m->env.adam, c->threads);
        if (bb->ops->prepare(bb, b, e) || bb->ops->forward(bb, NULL, c->threads, e))
            return -1;
    }
    memset(gL, 0, t->net.n_params * sizeof *gL);
    double jout = 0;
    if (t->o.meta_path == TIL_META_PATH_GENERIC || strcmp(bb->ops->name, "mf")) {
        /* w as it enters J_in, then dJ/dw_raw, then the network's backward */
        float *wu = t->dw + 0; /* reuse: dw receives the gradient afterwards */
        if (t->o.weight_norm)
            til_wnorm_forward(t->wc.w, n, wu);
        else
            memcpy(wu, t->wc.w, (size_t)n * sizeof *wu);
        float *wj = t->Xc; /* scratch B floats (Xc has 3B x d) */
        memcpy(wj, wu, (size_t)n * sizeof *wj);
        /* gamma L_c enters J_in through backward: Theta~ moves by beta gamma grad_Theta L_c too */
        if (til_tilm_meta_generic(bb, b, wj, &out, c->reg, t->beta, t->xr.n ? &t->xr : NULL, c->threads, m->env.sb,
                                  t->dw, &jout, e))
            return -1;
        if (t->o.weight_norm)
            til_wnorm_backward(t->wc.w, n, t->dw, t->dw);
        til_wnet_backward(&t->net, &t->wc, t->S, n, t->dw, gL);
    } else if (t->o.meta_path == TIL_META_PATH_AUTO) {
        /* MF, float fast path (tested against til_meta_dw) */
        float *wu = t->Xc; /* scratch B floats */
        if (t->o.weight_norm)
            til_wnorm_forward(t->wc.w, n, wu);
        else
            memcpy(wu, t->wc.w, (size_t)n * sizeof *wu);
        t->fast.extra_row = cluster_loss_on(t) ? dec_extra_row : NULL;
        /* the inner scores at Theta are the step's scores too (nothing moves b's rows before it) */
        t->fast.s_pos = m->env.sb->s_pos;
        t->fast.s_neg = m->env.sb->s_neg;
        int rc = til_tilm_meta_dw_fast(&t->fast, bb->U, bb->V, b, wu, &out, t->beta, c->reg, NULL, t, t->dw, &jout, e);
        t->fast.s_pos = t->fast.s_neg = NULL;
        if (rc)
            return -1;
        m->env.sb->scores_ready = 1;
        if (t->o.weight_norm)
            til_wnorm_backward(t->wc.w, n, t->dw, t->dw);
        til_wnet_backward(&t->net, &t->wc, t->S, n, t->dw, gL);
    } else {
        til_meta_batch in = {n, b->u, b->i, b->j}, ob = {(int)out.n, out.u, out.i, out.j};
        til_meta_opts mo = {.beta = t->beta, .reg = c->reg};
        if (cluster_loss_on(t)) {
            mo.extra = dec_extra;
            mo.extra_ctx = t;
        }
        if (til_meta_grad_lambda(&t->ws, bb->U, bb->V, &in, &ob, &mo, &t->net, &t->wc, t->S, t->o.weight_norm,
                                 gL, NULL, &jout, e))
            return -1;
    }
    return 0;
}

static int before_grad_impl(til_method *m, const til_batch *b, til_err *e)
{
    tilm *t = m->impl;
    til_backbone *bb = m->env.bb;
    const til_train_cfg *c = m->env.c;
    uint64_t step = m->env.adam->t; /* steps done */
    if (b->n > t->B)
        return til_seterr(e, "til: batch of %" PRIu64 " > capacity", b->n);
    int n = (int)b->n, d = t->d;
    /* refreshes (documented cadence: steps t with t % N == 0) */
    if (t->variant != TIL_TILM_UI && !t->clustered && *m->env.epoch > t->o.pretrain_epochs) {
        if (refresh_clusters(m, 1, e))
            return -1;
        t->clustered = 1;
    } else if (t->clustered && step % (uint64_t)t->o.cluster_update == 0) {
        if (refresh_clusters(m, 0, e))
            return -1;
    }
    if (step % (uint64_t)t->o.eta_update == 0) {
        if (sync_all(m, e))
            return -1;
        til_state_eta(m->env.train, bb->V, d, c->threads, t->eta);
    }
    if (bb->ops->forward(bb, b, c->threads, e))
        return -1;
    if (collect_items(m, b, e))
        return -1;
    dec_slots(t, b);
    if (meta_grad(m, b, t->gL, e)) {
        m->env.sb->scores_ready = 0;
        return -1;
    }
    tadam_step(&t->lam, t->gL);
    /* 3. weights with the new Lambda for the Theta step */
    til_wnet_forward(&t->net, &t->wc, t->S, n, t->w);
    if (t->o.weight_norm)
        til_wnorm_forward(t->w, n, t->w);
    m->env.sb->w = t->w;
    /* the step's gamma L_c: through backward (til_batch_grad adds xr into dQi/dQj), or into G in after_grad (mf) */
    m->env.sb->xr = t->inject && t->xr.n ? &t->xr : NULL;
    if (t->nwst + (uint64_t)n <= m->env.train->nnz) {
        memcpy(t->wst + t->nwst, t->w, (size_t)n * sizeof *t->w);
        t->nwst += (uint64_t)n;
    }
    return 0;
}

/* The weight network's gemms (B x 2d x hidden) run on one OpenBLAS thread: on a
 * shared machine OpenBLAS's spinning pool cost more than it saved (small runs
 * went from 0.1 s to 5 s of wall time in sched_yield). */
static int tilm_before_grad(til_method *m, const til_batch *b, til_err *e)
{
#ifdef TIL_HAVE_BLAS
    int bt = openblas_get_num_threads();
    openblas_set_num_threads(1);
#endif
    int rc = before_grad_impl(m, b, e);
#ifdef TIL_HAVE_BLAS
    openblas_set_num_threads(bt);
#endif
    return rc;
}

static inline void f_ax(float *restrict g, float a, const float *restrict x, int d);

static int tilm_after_grad(til_method *m, const til_batch *b, double *loss, til_err *e)
{
    (void)b, (void)e;
    tilm *t = m->impl;
    m->env.sb->xr = NULL; /* used by this step's backward (other backbones); not by any later gradient */
    if (!cluster_loss_on(t))
        return 0;
    int d = t->d;
    double lc = t->lc; /* computed in before_grad at the same Theta and Phi */
    float *G = m->env.sb->G;
    if (!t->inject) /* mf: the V rows are parameter rows; G + 1 * g: G + g bit for bit, in 16-wide chunks */
        for (uint64_t r = 0; r < t->nbi; r++)
            f_ax(G + t->bgidx[r] * d, 1.0f, t->gXc + r * d, d);
    *loss += t->o.gamma * lc;
    t->lc_sum += lc;
    t->lc_n++;
    tadam_step(&t->phi, t->gC);
    return 0;
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void tilm_log_header(til_method *m, FILE *f)
{
    (void)m;
    fputs("\tw_mean\tw_std\tw_p10\tw_p50\tw_p90\tcluster_loss", f);
}

static void tilm_log_row(til_method *m, FILE *f)
{
    tilm *t = m->impl;
    uint64_t n = t->nwst;
    if (n == 0) {
        fputs("\tNA\tNA\tNA\tNA\tNA", f);
    } else {
        double s = 0, s2 = 0;
        for (uint64_t k = 0; k < n; k++)
            s += t->wst[k];
        double mean = s / (double)n;
        for (uint64_t k = 0; k < n; k++)
            s2 += (t->wst[k] - mean) * (t->wst[k] - mean);
        qsort(t->wst, n, sizeof *t->wst, cmp_float);
        fprintf(f, "\t%.9g\t%.9g\t%.9g\t%.9g\t%.9g", mean, sqrt(s2 / (double)n), t->wst[(n - 1) / 10],
                t->wst[(n - 1) / 2], t->wst[(n - 1) * 9 / 10]);
    }
    if (t->lc_n)
        fprintf(f, "\t%.9g", t->lc_sum / (double)t->lc_n);
    else
        fputs("\tNA", f);
    t->nwst = 0;
    t->lc_sum = 0;
    t->lc_n = 0;
}

static int tilm_put_meta(til_method *m, til_model *md, til_err *e)
{
    tilm *t = m->impl;
    const til_tilm_opts *o = &t->o;
    return til_model_setf(md, e, "til_alpha", "%.17g", o->alpha) ||
                   til_model_setf(md, e, "til_clusters", "%d", o->clusters) ||
                   til_model_setf(md, e, "til_tau", "%.17g", o->tau) ||
                   til_model_setf(md, e, "til_gamma", "%.17g", o->gamma) ||
                   til_model_setf(md, e, "til_pretrain_epochs", "%d", o->pretrain_epochs) ||
                   til_model_setf(md, e, "til_cluster_update", "%d", o->cluster_update) ||
                   til_model_setf(md, e, "til_eta_update", "%d", o->eta_update) ||
                   til_model_setf(md, e, "til_kmeans_iter", "%d", o->kmeans_iter) ||
                   til_model_setf(md, e, "til_virtual_lr", "%.17g", t->beta) ||
                   til_model_setf(md, e, "til_meta_lr", "%.17g", o->meta_lr) ||
                   til_model_setf(md, e, "til_hidden", "%d", t->net.hidden) ||
                   til_model_set(md, "til_meta_batch", o->meta_fresh ? "fresh" : "same", e) ||
                   til_model_set(md, "til_weight_norm", o->weight_norm ? "batch" : "none", e) ||
                   til_model_set(md, "til_meta_path", til_tilm_meta_path_names[o->meta_path], e) ||
                   til_model_setf(md, e, "til_meta_holdout", "%.17g", o->meta_holdout) ||
                   til_model_set(md, "til_state", t->variant == TIL_TILM_UI ? "uni-interest" : "multi-interest", e)
               ? -1
               : 0;
}

static int tilm_save(til_method *m, til_model *ck, til_err *e)
{
    tilm *t = m->impl;
    const til_backbone *bb = m->env.bb;
    uint64_t np = t->net.n_params, d = (uint64_t)t->d, K = (uint64_t)t->K;
    if (til_model_setf(ck, e, "til_lambda_t", "%" PRIu64, t->lam.t) ||
        til_model_setf(ck, e, "til_phi_t", "%" PRIu64, t->phi.t) ||
        til_model_setf(ck, e, "til_clustered", "%d", t->clustered) ||
        til_model_setf(ck, e, "til_lc_sum", "%.17g", t->lc_sum) ||
        til_model_setf(ck, e, "til_lc_n", "%" PRIu64, t->lc_n) ||
        !til_model_add(ck, "til_lambda", TIL_F32, 1, np, t->net.params, e) ||
        !til_model_add(ck, "til_lambda_m", TIL_F32, 1, np, t->lam.m, e) ||
        !til_model_add(ck, "til_lambda_v", TIL_F32, 1, np, t->lam.v, e) ||
        !til_model_add(ck, "til_eta", TIL_F32, bb->n_users, d, t->eta, e) ||
        !til_model_add(ck, "til_epoch_weights", TIL_F32, t->nwst, 1, t->wst, e))
        return -1;
    if (t->variant != TIL_TILM_UI &&
        (!til_model_add(ck, "til_centers", TIL_F32, K, d, t->centers, e) ||
         !til_model_add(ck, "til_memb", TIL_U32, bb->n_items, 1, t->memb, e)))
        return -1;
    if (t->variant == TIL_TILM_MI &&
        (!til_model_add(ck, "til_phi_m", TIL_F32, K, d, t->phi.m, e) ||
         !til_model_add(ck, "til_phi_v", TIL_F32, K, d, t->phi.v, e) ||
         !til_model_add(ck, "til_target", TIL_F32, bb->n_items, K, t->T, e)))
        return -1;
    return 0;
}

static int load_f32(const til_model *ck, const char *name, uint64_t rows, uint64_t cols, float *dst, const char *path,
                    til_err *e)
{
    const til_tensor *x = til_model_need(ck, name, TIL_F32, rows, cols, path, e);
    if (!x)
        return -1;
    memcpy(dst, x->data, rows * cols * sizeof(float));
    return 0;
}

static int tilm_load(til_method *m, const til_model *ck, const char *path, til_err *e)
{
    tilm *t = m->impl;
    const til_backbone *bb = m->env.bb;
    uint64_t np = t->net.n_params, d = (uint64_t)t->d, K = (uint64_t)t->K, u;
    /* hyper-parameters must match */
    til_model cur;
    til_model_init(&cur);
    if (tilm_put_meta(m, &cur, e)) {
        til_model_free(&cur);
        return -1;
    }
    for (int k = 0; k < cur.n_meta; k++) {
        const char *a = til_model_get(ck, cur.key[k]), *b = cur.val[k];
        if (!a || strcmp(a, b)) {
            til_seterr(e, "%s: checkpoint has %s = %s, this run has %s", path, cur.key[k], a ? a : "(missing)",
                       b);
            til_model_free(&cur);
            return -1;
        }
    }
    til_model_free(&cur);
    if (til_model_get_u64(ck, "til_lambda_t", &t->lam.t, e) || til_model_get_u64(ck, "til_phi_t", &t->phi.t, e) ||
        til_model_get_u64(ck, "til_clustered", &u, e) || til_model_get_double(ck, "til_lc_sum", &t->lc_sum, e) ||
        til_model_get_u64(ck, "til_lc_n", &t->lc_n, e))
        return -1;
    t->clustered = u != 0;
    if (load_f32(ck, "til_lambda", 1, np, t->net.params, path, e) ||
        load_f32(ck, "til_lambda_m", 1, np, t->lam.m, path, e) ||
        load_f32(ck, "til_lambda_v", 1, np, t->lam.v, path, e) ||
        load_f32(ck, "til_eta", bb->n_users, d, t->eta, path, e))
        return -1;
    const til_tensor *ws = til_model_need(ck, "til_epoch_weights", TIL_F32, 0, 1, path, e);
    if (!ws)
        return -1;
    if (ws->rows > m->env.train->nnz)
        return til_seterr(e, "%s: til_epoch_weights larger than an epoch", path);
    t->nwst = ws->rows;
    memcpy(t->wst, ws->data, t->nwst * sizeof(float));
    if (t->variant != TIL_TILM_UI) {
        const til_tensor *mb = til_model_need(ck, "til_memb", TIL_U32, bb->n_items, 1, path, e);
        if (!mb || load_f32(ck, "til_centers", K, d, t->centers, path, e))
            return -1;
        memcpy(t->memb, mb->data, (size_t)bb->n_items * sizeof(uint32_t));
        for (uint32_t i = 0; i < bb->n_items; i++)
            if (t->memb[i] >= K)
                return til_seterr(e, "%s: til_memb[%u] = %u out of range", path, i, t->memb[i]);
    }
    if (t->variant == TIL_TILM_MI &&
        (load_f32(ck, "til_phi_m", K, d, t->phi.m, path, e) || load_f32(ck, "til_phi_v", K, d, t->phi.v, path, e) ||
         load_f32(ck, "til_target", bb->n_items, K, t->T, path, e)))
        return -1;
    return 0;
}

static int tilm_finish(til_method *m, til_err *e)
{
    tilm *t = m->impl;
    til_backbone *bb = m->env.bb;
    const til_train_cfg *c = m->env.c;
    if (t->o.dump_clusters) {
        if (t->variant == TIL_TILM_UI || !t->clustered)
            return til_seterr(e, "--dump-clusters: no clusters (%s)",
                              t->variant == TIL_TILM_UI ? "til-ui has none" : "pretraining did not end");
        til_wr *w = til_wr_open(t->o.dump_clusters, -1, e);
        if (!w)
            return -1;
        int bad = til_wr_printf(w, e, "item\tcluster\n") < 0;
        for (uint32_t i = 0; i < bb->n_items && !bad; i++)
            bad = til_wr_printf(w, e, "%u\t%u\n", i, t->memb[i]) < 0;
        if (bad) {
            til_wr_abort(&w);
            return -1;
        }
        if (til_wr_commit(&w, e))
            return -1;
    }
    if (t->o.dump_weights) {
        if (sync_all(m, e))
            return -1;
        til_triplets *tr = m->env.trip;
        if (til_sampler_epoch(m->env.sampler, (uint64_t)*m->env.epoch, c->threads, tr, e))
            return -1;
        uint64_t n = t->o.dump_sample ? TIL_MIN(t->o.dump_sample, tr->n) : tr->n;
        til_wr *w = til_wr_open(t->o.dump_weights, -1, e);
        if (!w)
            return -1;
        int bad = til_wr_printf(w, e, "user\tpos\tneg\tweight\n") < 0;
        int multi = t->variant != TIL_TILM_UI && t->clustered;
        for (uint64_t lo = 0; lo < n && !bad; lo += t->B) {
            int nb = (int)TIL_MIN(t->B, n - lo);
            til_state_build(t->d, nb, tr->u + lo, tr->i + lo, tr->j + lo, bb->U, bb->V, t->eta,
                            multi ? t->centers : NULL, multi ? t->memb : NULL, (float)t->o.alpha, t->S);
            til_wnet_forward(&t->net, &t->wc, t->S, nb, t->w);
            if (t->o.weight_norm)
                til_wnorm_forward(t->w, nb, t->w);
            for (int k = 0; k < nb && !bad; k++)
                bad = til_wr_printf(w, e, "%u\t%u\t%u\t%.9g\n", tr->u[lo + k], tr->i[lo + k], tr->j[lo + k], t->w[k]) <
                      0;
        }
        if (bad) {
            til_wr_abort(&w);
            return -1;
        }
        if (til_wr_commit(&w, e))
            return -1;
    }
    return 0;
}

static const til_method_ops tilm_ops = {.name = "til",
                                        .before_grad = tilm_before_grad,
                                        .after_grad = tilm_after_grad,
                                        .log_header = tilm_log_header,
                                        .log_row = tilm_log_row,
                                        .put_meta = tilm_put_meta,
                                        .save = tilm_save,
                                        .load = tilm_load,
                                        .finish = tilm_finish,
                                        .free = tilm_free};

int til_tilm_meta_grad(til_method *m, const til_batch *b, float *gL, til_err *e)
{
    tilm *t = m->impl;
    if (m->env.bb->ops->prepare(m->env.bb, b, e))
        return -1;
    if (m->env.bb->rows)
        til_adam_catch_up(m->env.adam, m->env.bb->rows, m->env.bb->n_rows, m->env.c->threads);
    if (m->env.bb->ops->forward(m->env.bb, b, m->env.c->threads, e))
        return -1;
    if (collect_items(m, b, e))
        return -1;
    dec_slots(t, b);
    memset(gL, 0, t->net.n_params * sizeof *gL);
    int rc = meta_grad(m, b, gL, e);
    m->env.sb->scores_ready = 0; /* no step follows */
    return rc;
}

void til_tilm_inspect(const til_method *m, til_tilm_view *v)
{
    const tilm *t = m->impl;
    *v = (til_tilm_view){&t->net, t->S, t->eta, t->variant != TIL_TILM_UI && t->clustered ? t->centers : NULL,
                         t->memb, t->T, t->K, t->clustered, t->beta};
}

int til_tilm_create(til_method *m, int variant, const til_tilm_opts *o, til_err *e)
{
    const til_train_cfg *c = m->env.c;
    til_backbone *bb = m->env.bb;
    m->ops = &tilm_ops;
    tilm *t = til_calloc(1, sizeof *t, e);
    if (!t)
        return -1;
    m->impl = t;
    t->variant = variant;
    t->o = *o;
    t->d = c->dim;
    t->K = o->clusters;
    t->B = c->batch;
    t->inject = strcmp(bb->ops->name, "mf") != 0;
    t->beta = o->virtual_lr > 0 ? o->virtual_lr : c->lr;
    if (c->dim > 512 && t->o.meta_path == TIL_META_PATH_AUTO)
        t->o.meta_path = TIL_META_PATH_DOUBLE; /* the fast path keeps rows on the stack */
    if (bb->ops->score ? !bb->ops->score_jvp : !bb->ops->jvp)
        return til_seterr(e, "backbone %s has no %s: TIL methods need it", bb->ops->name,
                          bb->ops->score ? "score_jvp" : "jvp");
    if (o->cluster_update < 1 || o->eta_update < 1 || o->kmeans_iter < 1 || o->meta_lr <= 0 || o->tau <= 0)
        return til_seterr(e, "til: bad options");
    if (variant != TIL_TILM_UI && (t->K < 1 || t->K > TIL_CLUSTER_MAXK || (uint64_t)t->K > bb->n_items))
        return til_seterr(e, "--clusters %d: must be in 1..min(%d, items = %u)", t->K, TIL_CLUSTER_MAXK, bb->n_items);
    if (o->meta_holdout < 0 || o->meta_holdout >= 1)
        return til_seterr(e, "--meta-holdout %g: must be in [0, 1)", o->meta_holdout);
    if (o->meta_holdout > 0 && o->meta_fresh)
        return til_seterr(e, "--meta-holdout and --meta-batch fresh are exclusive (both choose the outer batch)");
    if (o->meta_holdout > 0 && (!m->env.held || !m->env.full))
        return til_seterr(e, "--meta-holdout: the trainer did not split the training set (til_method_split)");
    if (m->env.held && m->env.held->nnz == 0)
        return til_seterr(e, "--meta-holdout %g holds out no interaction (too few items per user)", o->meta_holdout);
    if (t->B > INT32_MAX / 4)
        return til_seterr(e, "til: batch too large");
    int hidden = o->hidden > 0 ? o->hidden : c->dim;
    uint64_t d = (uint64_t)c->dim, B = t->B, nu = bb->n_users, ni = bb->n_items, K = (uint64_t)t->K;
    if (til_wnet_init(&t->net, 2 * c->dim, hidden, c->seed, e) || til_wnet_cache_init(&t->wc, &t->net, (int)B, e) ||
        til_meta_ws_init(&t->ws, bb->n_users, bb->n_items, c->dim, e) ||
        til_tilm_fast_init(&t->fast, bb->n_users, bb->n_items, c->dim, B, e) ||
        tadam_init(&t->lam, t->net.params, t->net.n_params, o->meta_lr, c->b1, c->b2, c->eps, e))
        return -1;
    t->wc.threads = c->threads;
    t->fast.threads = c->threads;
    if (!(t->gL = til_malloc(t->net.n_params, sizeof(float), e)) || !(t->S = til_malloc(B * 2 * d, sizeof(float), e)) ||
        !(t->w = til_malloc(B, sizeof(float), e)) || !(t->dw = til_malloc(B, sizeof(float), e)) ||
        !(t->eta = til_calloc(nu * d, sizeof(float), e)) || !(t->stamp = til_calloc(ni, sizeof(uint32_t), e)) ||
        !(t->bpos = til_calloc(ni, sizeof(uint32_t), e)) || !(t->bslot = til_malloc(3 * B, sizeof(uint32_t), e)) ||
        !(t->bitems = til_malloc(3 * B, sizeof(uint32_t), e)) || !(t->bgidx = til_malloc(3 * B, sizeof(uint64_t), e)) ||
        !(t->Xc = til_malloc(3 * B * d, sizeof(float), e)) || !(t->gXc = til_malloc(3 * B * d, sizeof(float), e)) ||
        !(t->ou = til_malloc(3 * B, sizeof(uint32_t), e)) ||
        !(t->wst = til_malloc(m->env.train->nnz ? m->env.train->nnz : 1, sizeof(float), e)))
        return -1;
    if (o->meta_holdout > 0) {
        const til_inter *h = m->env.held;
        if (!(t->held_user = til_malloc(h->nnz, sizeof(uint32_t), e)))
            return -1;
        for (uint32_t u = 0; u < h->n_users; u++)
            for (uint64_t k = h->indptr[u]; k < h->indptr[u + 1]; k++)
                t->held_user[k] = u;
    }
    if (variant != TIL_TILM_UI) {
        if (!(t->centers = til_calloc(K * d, sizeof(float), e)) || !(t->memb = til_calloc(ni, sizeof(uint32_t), e)) ||
            !(t->gC = til_malloc(K * d, sizeof(float), e)))
            return -1;
    }
    if (variant == TIL_TILM_MI) {
        if (!(t->T = til_calloc(ni * K, sizeof(float), e)) ||
            tadam_init(&t->phi, t->centers, K * d, c->lr, c->b1, c->b2, c->eps, e))
            return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ MF fast path */

int til_tilm_fast_init(til_tilm_fast *f, uint32_t n_users, uint32_t n_items, int d, uint64_t batch, til_err *e)
{
    memset(f, 0, sizeof *f);
    f->n_users = n_users;
    f->d = d;
    uint64_t np = (uint64_t)n_users + n_items, cap = 3 * batch;
    f->cap = cap;
    if (!(f->slot = til_malloc(np, sizeof *f->slot, e)) || !(f->rows = til_malloc(cap, sizeof *f->rows, e)) ||
        !(f->th = til_aligned_calloc(2 * cap * (uint64_t)d, sizeof(float), e)) ||
        !(f->sp = til_malloc(batch, sizeof *f->sp, e)) || !(f->ao = til_malloc(2 * batch, sizeof *f->ao, e))) {
        til_tilm_fast_free(f);
        return -1;
    }
    f->G = f->th + cap * (uint64_t)d;
    f->threads = 1;
    for (uint64_t r = 0; r < np; r++)
        f->slot[r] = -1;
    return 0;
}

void til_tilm_fast_free(til_tilm_fast *f)
{
    free(f->slot);
    free(f->rows);
    free(f->th);
    free(f->sp);
    free(f->ao);
    memset(f, 0, sizeof *f);
}

/* The fast path's per-dimension loops in 16-wide chunks with restrict operands:
 * gcc -O2 (the very-cheap vectoriser) only vectorises loops whose trip count is
 * a known multiple of the vector width and that need no alias checks. Each
 * element sees the same operations in the same order as the plain loop, so
 * the results are bit-identical to it. fdot is til_dot's arithmetic (16 lane
 * sums, then the same pairwise tree), inlined. */
#define fdot til_dot /* til_train.h: inline, the same arithmetic everywhere */

/* g += a (x - y) + r z */
static inline void f_axmy_pz(float *restrict g, float a, const float *restrict x, const float *restrict y, float r,
                             const float *restrict z, int d)
{
    int c = 0;
    for (; c + 16 <= d; c += 16)
        for (int l = 0; l < 16; l++)
            g[c + l] += a * (x[c + l] - y[c + l]) + r * z[c + l];
    for (; c < d; c++)
        g[c] += a * (x[c] - y[c]) + r * z[c];
}

/* g += a x + r z */
static inline void f_ax_pz(float *restrict g, float a, const float *restrict x, float r, const float *restrict z,
                           int d)
{
    int c = 0;
    for (; c + 16 <= d; c += 16)
        for (int l = 0; l < 16; l++)
            g[c + l] += a * x[c + l] + r * z[c + l];
    for (; c < d; c++)
        g[c] += a * x[c] + r * z[c];
}

/* g += a (x - y) */
static inline void f_axmy(float *restrict g, float a, const float *restrict x, const float *restrict y, int d)
{
    int c = 0;
    for (; c + 16 <= d; c += 16)
        for (int l = 0; l < 16; l++)
            g[c + l] += a * (x[c + l] - y[c + l]);
    for (; c < d; c++)
        g[c] += a * (x[c] - y[c]);
}

/* g += a x (a = -a' gives g -= a' x bit for bit: -(a'x) == (-a')x) */
static inline void f_ax(float *restrict g, float a, const float *restrict x, int d)
{
    int c = 0;
    for (; c + 16 <= d; c += 16)
        for (int l = 0; l < 16; l++)
            g[c + l] += a * x[c + l];
    for (; c < d; c++)
        g[c] += a * x[c];
}

/* t = s - b g */
static inline void f_sub_bg(float *restrict t, const float *restrict s, float b, const float *restrict g, int d)
{
    int c = 0;
    for (; c + 16 <= d; c += 16)
        for (int l = 0; l < 16; l++)
            t[c + l] = s[c + l] - b * g[c + l];
    for (; c < d; c++)
        t[c] = s[c] - b * g[c];
}

/* t = x - y */
static inline void f_sub(float *restrict t, const float *restrict x, const float *restrict y, int d)
{
    int c = 0;
    for (; c + 16 <= d; c += 16)
        for (int l = 0; l < 16; l++)
            t[c + l] = x[c + l] - y[c + l];
    for (; c < d; c++)
        t[c] = x[c] - y[c];
}

/* The fast path's per-triplet passes that read shared rows and write only their
 * own triplet's values (parallel over any partition: same results). */
typedef struct {
    const til_tilm_fast *f;
    const float *P, *Q;
    const til_batch *b;
    float invm, sc;
    float *dw;
} fjob;

/* inner triplets: s'_k at Theta (where the look-ahead needs it) */
static void f_inner_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    (void)part;
    fjob *j = ctx;
    const til_tilm_fast *f = j->f;
    const int d = f->d;
    const uint32_t nu = f->n_users;
    for (uint64_t k = lo; k < hi; k++) {
        const til_batch *in = j->b;
        int32_t su = f->slot[in->u[k]], si = f->slot[nu + in->i[k]], sj = f->slot[nu + in->j[k]];
        if ((su & si & sj) < 0 && !f->s_pos)
            continue;
        const float *p = j->P + (uint64_t)in->u[k] * d, *qi = j->Q + (uint64_t)in->i[k] * d,
                    *qj = j->Q + (uint64_t)in->j[k] * d;
        float xp = fdot(p, qi, d), xn = fdot(p, qj, d), x = xp - xn;
        if (f->s_pos) {
            f->s_pos[k] = xp;
            f->s_neg[k] = xn;
        }
        f->sp[k] = -til_sigmoid(-x);
    }
}

/* outer triplets at Theta~: ao[k] = -sigmoid(-x_k)/|B_out|, ao[n + k] = softplus(-x_k) */
static void f_outer_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    (void)part;
    fjob *j = ctx;
    const til_tilm_fast *f = j->f;
    const int d = f->d;
    const uint32_t nu = f->n_users;
    const til_batch *out = j->b;
    for (uint64_t k = lo; k < hi; k++) {
        int32_t su = f->slot[out->u[k]], si = f->slot[nu + out->i[k]], sj = f->slot[nu + out->j[k]];
        const float *p = f->th + su * d, *qi = f->th + si * d, *qj = f->th + sj * d;
        float x = fdot(p, qi, d) - fdot(p, qj, d);
        f->ao[out->n + k] = til_softplus(-x);
        f->ao[k] = -til_sigmoid(-x) * j->invm;
    }
}

/* dJ_out/dw_k = sc s'_k [G_u . (q_i - q_j) + (G_i - G_j) . p_u], sc = -beta/|B| */
static void f_dw_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    (void)part;
    fjob *j = ctx;
    const til_tilm_fast *f = j->f;
    const int d = f->d;
    const uint32_t nu = f->n_users;
    const til_batch *in = j->b;
    const float *G = f->G;
    float tmp[512];
    for (uint64_t k = lo; k < hi; k++) {
        int32_t su = f->slot[in->u[k]], si = f->slot[nu + in->i[k]], sj = f->slot[nu + in->j[k]];
        if ((su & si & sj) < 0) {
            j->dw[k] = 0;
            continue;
        }
        const float *p = j->P + (uint64_t)in->u[k] * d, *qi = j->Q + (uint64_t)in->i[k] * d,
                    *qj = j->Q + (uint64_t)in->j[k] * d;
        float acc = 0;
        if (su >= 0) {
            f_sub(tmp, qi, qj, d);
            acc += fdot(G + su * d, tmp, d);
        }
        if (si >= 0)
            acc += fdot(G + si * d, p, d);
        if (sj >= 0)
            acc -= fdot(G + sj * d, p, d);
        j->dw[k] = j->sc * f->sp[k] * acc;
    }
}

static int f_parts(const til_tilm_fast *f, uint64_t n) { return n < 512 || f->threads < 1 ? 1 : f->threads; }

int til_tilm_meta_dw_fast(til_tilm_fast *f, const float *P, const float *Q, const til_batch *in, const float *w,
                          const til_batch *out, double beta, double reg, til_meta_extra_fn extra, void *ctx,
                          float *dw, double *j_out, til_err *e)
{
    const int d = f->d;
    const uint32_t nu = f->n_users;
    if (d > 512)
        return til_seterr(e, "meta-gradient fast path: dim %d > 512", d);
    if (out->n * 3 > f->cap || in->n * 3 > f->cap || in->n < 1 || out->n < 1)
        return til_seterr(e, "meta-gradient: batch sizes %" PRIu64 "/%" PRIu64 " out of range", in->n, out->n);
    /* 1. the outer batch's distinct rows (param numbering: users, then n_users + item) */
    uint64_t ns = 0;
    for (uint64_t k = 0; k < out->n; k++) {
        uint32_t r3[3] = {out->u[k], nu + out->i[k], nu + out->j[k]};
        for (int q = 0; q < 3; q++)
            if (f->slot[r3[q]] < 0) {
                f->slot[r3[q]] = (int32_t)ns;
                f->rows[ns++] = r3[q];
            }
    }
    float *G = f->G, *th = f->th;
    memset(G, 0, ns * (size_t)d * sizeof *G);
    /* 2. grad J_in on those rows: w s'/|B| (q_i - q_j | p_u | -p_u) + reg/|B| per use */
    const float invn = (float)(1.0 / (double)in->n), rn = (float)(reg / (double)in->n);
    fjob jb = {f, P, Q, in, 0, 0, dw};
    til_par_for(f_parts(f, in->n), in->n, f_inner_part, &jb);
    for (uint64_t k = 0; k < in->n; k++) {
        int32_t su = f->slot[in->u[k]], si = f->slot[nu + in->i[k]], sj = f->slot[nu + in->j[k]];
        if ((su & si & sj) < 0)
            continue;
        const float *p = P + (uint64_t)in->u[k] * d, *qi = Q + (uint64_t)in->i[k] * d, *qj = Q + (uint64_t)in->j[k] * d;
        float a = w[k] * f->sp[k] * invn; /* s'_k from f_inner_part, reused in 4 */
        if (su >= 0)
            f_axmy_pz(G + (size_t)su * d, a, qi, qj, rn, p, d);
        if (si >= 0)
            f_ax_pz(G + (size_t)si * d, a, p, rn, qi, d);
        if (sj >= 0)
            f_ax_pz(G + (size_t)sj * d, -a, p, rn, qj, d);
    }
    double gx[512];
    for (uint64_t s = 0; s < ns; s++) {
        uint32_t r = f->rows[s];
        const float *src = r < nu ? P + (uint64_t)r * d : Q + (uint64_t)(r - nu) * d;
        if (f->extra_row && r >= nu) {
            const float *gr = f->extra_row(ctx, r - nu);
            if (gr) /* G + 1 * gr: what the double callback adds, bit for bit */
                f_ax(G + s * d, 1.0f, gr, d);
        } else if (extra && r >= nu && d <= 512) {
            memset(gx, 0, (size_t)d * sizeof *gx);
            extra(ctx, TIL_META_ITEM, r - nu, src, d, gx);
            for (int c = 0; c < d; c++)
                G[s * d + c] += (float)gx[c];
        }
        /* Theta~ = Theta - beta grad J_in */
        f_sub_bg(th + s * d, src, (float)beta, G + s * d, d);
    }
    /* 3. G = grad J_out(Theta~) */
    memset(G, 0, ns * (size_t)d * sizeof *G);
    double J = 0;
    const float invm = (float)(1.0 / (double)out->n);
    jb = (fjob){f, P, Q, out, invm, 0, dw};
    til_par_for(f_parts(f, out->n), out->n, f_outer_part, &jb);
    for (uint64_t k = 0; k < out->n; k++) {
        int32_t su = f->slot[out->u[k]], si = f->slot[nu + out->i[k]], sj = f->slot[nu + out->j[k]];
        const float *p = th + su * d, *qi = th + si * d, *qj = th + sj * d;
        J += f->ao[out->n + k];
        float a = f->ao[k];
        /* per element the same three updates in the same order as one fused loop */
        f_axmy(G + su * d, a, qi, qj, d);
        f_ax(G + si * d, a, p, d);
        f_ax(G + sj * d, -a, p, d);
    }
    if (j_out)
        *j_out = J / (double)out->n;
    /* 4. dJ_out/dw_k = -(beta/|B|) s'_k [G_u . (q_i - q_j) + (G_i - G_j) . p_u] */
    jb = (fjob){f, P, Q, in, invm, (float)(-beta * invn), dw};
    til_par_for(f_parts(f, in->n), in->n, f_dw_part, &jb);
    for (uint64_t s = 0; s < ns; s++)
        f->slot[f->rows[s]] = -1;
    return 0;
}

/* ------------------------------------------------------------------ generic meta-gradient */

/* *p holds at least n elements of size sz (contents kept) */
static int mg_grow(void **p, uint64_t *cap, uint64_t n, size_t sz, til_err *e)
{
    if (n <= *cap)
        return 0;
    void *q = til_realloc(*p, n, sz, e);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

static inline double bpr_dx(double x) { return x >= 0 ? -exp(-x) / (1 + exp(-x)) : -1 / (1 + exp(x)); }

int til_tilm_meta_generic(til_backbone *bb, const til_batch *in, const float *w, const til_batch *out, double reg,
                          double beta, const til_rep_grad *extra, int threads, til_step_buf *sb, float *dw,
                          double *j_out, til_err *e)
{
    const uint64_t d = (uint64_t)bb->dim, nu = bb->n_users, ni = bb->n_items, n_in = in->n;
    const int head = bb->ops->score != NULL; /* a score op: per-triplet derivatives through score_jvp */
    if (head ? !bb->ops->score_jvp : !bb->ops->jvp)
        return til_seterr(e, "backbone %s has no %s", bb->ops->name, head ? "score_jvp" : "jvp");
    if (out->n > sb->cap || in->n > sb->cap || in->n < 1 || out->n < 1)
        return til_seterr(e, "meta-gradient: batch sizes out of range of the step buffers");
    const float *w0 = sb->w;
    const til_rep_grad *xr0 = sb->xr;
    int rc = -1, moved = 0;
    uint64_t nr = 0;
    double loss;
    float *save = NULL, *cU = NULL;
    uint32_t *rows = NULL;
    /* 1. g = grad_Theta J_in(Theta) on the rows of `in` (the extra term through backward) */
    sb->w = w;
    sb->xr = extra;
    if (bb->ops->prepare(bb, in, e) || til_batch_grad(bb, in, reg, threads, sb, &loss, e))
        goto out;
    nr = bb->rows ? bb->n_rows : bb->n_param;
    if (mg_grow((void **)&sb->mg_save, &sb->mg_save_cap, nr * d + 1, sizeof *save, e) ||
        mg_grow((void **)&sb->mg_rows, &sb->mg_rows_cap, 2 * nr + 1, sizeof *rows, e))
        goto out;
    save = sb->mg_save;
    rows = sb->mg_rows;
    for (uint64_t k = 0; k < nr; k++)
        rows[k] = bb->rows ? bb->rows[k] : (uint32_t)k;
    /* 2. Theta~ = Theta - beta g on those rows (kept, put back bit for bit) */
    const float fb = (float)beta;
    for (uint64_t k = 0; k < nr; k++) {
        float *p = bb->param + (uint64_t)rows[k] * d;
        memcpy(save + k * d, p, d * sizeof *p);
        for (uint64_t c = 0; c < d; c++)
            p[c] = p[c] - fb * sb->G[k * d + c];
    }
    moved = 1;
    /* 3. G_out = grad_Theta J_out(Theta~) (plain BPR, no L2), J_out */
    sb->w = NULL;
    sb->xr = NULL;
    double jo;
    if (bb->ops->prepare(bb, out, e) || til_batch_grad(bb, out, 0.0, threads, sb, &jo, e))
        goto out;
    if (j_out)
        *j_out = jo;
    for (uint64_t k = 0; k < nr; k++)
        memcpy(bb->param + (uint64_t)rows[k] * d, save + k * d, d * sizeof(float));
    moved = 0;
    uint64_t no = bb->rows ? bb->n_rows : bb->n_param;
    if (mg_grow((void **)&sb->mg_rows, &sb->mg_rows_cap, nr + no + 1, sizeof *rows, e))
        goto out;
    rows = sb->mg_rows;
    uint32_t *orow = rows + nr; /* prepare(in) below may reuse bb->rows' buffer */
    for (uint64_t k = 0; k < no; k++)
        orow[k] = bb->rows ? bb->rows[k] : (uint32_t)k;
    /* 4. dJ_out/dw_k = -(beta/|B|) <G_out, grad_Theta l_k(Theta)>, l_k = softplus(-x_k):
     *    = -(beta/|B|) s'_k dx_k.G_out, dx_k.G_out a directional derivative at Theta */
    if (bb->ops->prepare(bb, in, e) || bb->ops->forward(bb, in, threads, e))
        goto out;
    const double sc = -beta / (double)n_in;
    if (head) {
        float *dp = sb->g_pos, *dn = sb->g_neg; /* scratch: the trainer refills them */
        if (bb->ops->score(bb, in, sb->s_pos, sb->s_neg, threads, e) ||
            bb->ops->score_jvp(bb, in, orow, no, sb->G, dp, dn, threads, e))
            goto out;
        for (uint64_t k = 0; k < n_in; k++)
            dw[k] = (float)(sc * bpr_dx((double)sb->s_pos[k] - sb->s_neg[k]) * ((double)dp[k] - dn[k]));
    } else {
        /* c = JVP(G_out) at Theta on the rows of `in`; dx_k.G_out = c_u.(q_i - q_j) + (c_i - c_j).p_u */
        if (mg_grow((void **)&sb->mg_c, &sb->mg_c_cap, (nu + ni) * d + 1, sizeof *cU, e))
            goto out;
        cU = sb->mg_c;
        memset(cU, 0, (nu + ni) * d * sizeof *cU); /* jvp adds into it */
        float *cV = cU + nu * d;
        if (bb->ops->jvp(bb, orow, no, sb->G, in, cU, cV, threads, e))
            goto out;
        for (uint64_t k = 0; k < n_in; k++) {
            const float *p = bb->U + in->u[k] * d, *qi = bb->V + in->i[k] * d, *qj = bb->V + in->j[k] * d;
            const float *cu = cU + in->u[k] * d, *ci = cV + in->i[k] * d, *cj = cV + in->j[k] * d;
            double x = 0, acc = 0;
            for (uint64_t c = 0; c < d; c++) {
                double dq = (double)qi[c] - qj[c];
                x += p[c] * dq;
                acc += cu[c] * dq + ((double)ci[c] - cj[c]) * p[c];
            }
            dw[k] = (float)(sc * bpr_dx(x) * acc);
        }
    }
    rc = 0;
out:
    if (moved)
        for (uint64_t k = 0; k < nr; k++)
            memcpy(bb->param + (uint64_t)rows[k] * d, save + k * d, d * sizeof(float));
    sb->w = w0;
    sb->xr = xr0;
    return rc;
}

/* ------------------------------------------------------------------ --meta-holdout */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int til_tilm_holdout(const til_inter *train, double frac, uint64_t seed, til_inter *inner, til_inter *held,
                     til_err *e)
{
    memset(inner, 0, sizeof *inner);
    memset(held, 0, sizeof *held);
    if (!(frac >= 0 && frac < 1))
        return til_seterr(e, "--meta-holdout %g: must be in [0, 1)", frac);
    const uint32_t nu = train->n_users;
    uint64_t nh = 0, maxdeg = 0;
    for (uint32_t u = 0; u < nu; u++) {
        uint64_t n = til_inter_deg(train, u), h = (uint64_t)llround(frac * (double)n);
        nh += n ? TIL_MIN(h, n - 1) : 0;
        maxdeg = TIL_MAX(maxdeg, n);
    }
    uint32_t *buf = til_malloc(maxdeg ? maxdeg : 1, sizeof *buf, e);
    if (!buf || til_inter_alloc(inner, nu, train->n_items, train->nnz - nh, 0, e) ||
        til_inter_alloc(held, nu, train->n_items, nh, 0, e)) {
        free(buf);
        til_inter_free(inner);
        til_inter_free(held);
        return til_errctx(e, "--meta-holdout");
    }
    uint64_t pi = 0, ph = 0;
    for (uint32_t u = 0; u < nu; u++) {
        uint64_t n = til_inter_deg(train, u), h = n ? TIL_MIN((uint64_t)llround(frac * (double)n), n - 1) : 0;
        memcpy(buf, train->items + train->indptr[u], n * sizeof *buf);
        til_rng r;
        til_rng_seed(&r, seed, ((uint64_t)TIL_STREAM_HOLDOUT << 56) ^ u);
        for (uint64_t k = 0; k < h; k++) { /* partial Fisher-Yates: buf[0, h) held out */
            uint64_t q = k + til_rng_below(&r, n - k);
            uint32_t x = buf[k];
            buf[k] = buf[q];
            buf[q] = x;
        }
        qsort(buf, h, sizeof *buf, cmp_u32);
        qsort(buf + h, n - h, sizeof *buf, cmp_u32);
        memcpy(held->items + ph, buf, h * sizeof *buf);
        memcpy(inner->items + pi, buf + h, (n - h) * sizeof *buf);
        ph += h;
        pi += n - h;
        held->indptr[u + 1] = ph;
        inner->indptr[u + 1] = pi;
    }
    free(buf);
    return 0;
}
