/* til_train: the epoch loop, evaluation, early stopping, logs, checkpoints. */
#pragma GCC optimize("vect-cost-model=dynamic")
#include "til_train.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "til_adam.h"
#include "til_backbone.h"
#include "til_cuda.h"
#include "til_eval.h"
#include "til_loss.h"
#include "til_method.h"
#include "til_par.h"
#include "til_sampler.h"

void til_train_defaults(til_train_cfg *c)
{
    memset(c, 0, sizeof *c);
    c->backbone = "mf";
    c->method = "bpr";
    c->optim = TIL_ADAM_DENSE;
    c->dim = 64;
    c->batch = 5000;
    c->lr = 1e-3;
    c->reg = 1e-4;
    c->b1 = 0.9;
    c->b2 = 0.999;
    c->eps = 1e-8;
    c->epochs = 3000;
    c->eval_every = 1;
    c->patience = 100;
    c->topk = 20;
    c->seed = 2020;
    c->threads = 1;
    c->layers = 1;
    til_bl_defaults(&c->bl);
}

/* ------------------------------------------------------------------ state */

typedef struct trainer {
    const til_train_cfg *c;
    const til_inter *train, *valid;
    til_backbone bb;
    til_adam adam;
    til_sampler sampler;
    til_bl bl; /* the method (bpr or a baseline) */
    til_triplets trip;
    til_step_buf sb;
    float *best; /* n_param x dim, best parameters (valid when best_epoch > 0) */
    til_method *meth; /* a method's hooks (TIL), NULL otherwise */
    /* progress */
    int epoch;      /* epoch in progress (1-based) */
    uint64_t pos;   /* next triplet of the epoch */
    double loss_sum; /* sum of batch losses so far in this epoch */
    uint64_t n_batches;
    int best_epoch;
    double best_recall, best_ndcg;
    int last_ckpt_epoch;
    til_cuda_train *dev; /* device state when c->device == TIL_DEVICE_CUDA */
    til_inter inner, held; /* a method's held-out split (TIL --meta-holdout): train = &inner */
    int split;
} trainer;

static void trainer_free(trainer *t)
{
    til_method_free(&t->meth);
    til_cuda_train_free(&t->dev);
    til_backbone_free(&t->bb);
    til_adam_free(&t->adam);
    til_sampler_free(&t->sampler);
    til_bl_free(&t->bl);
    til_triplets_free(&t->trip);
    til_step_buf_free(&t->sb);
    free(t->best);
    t->best = NULL;
    if (t->split) {
        til_inter_free(&t->inner);
        til_inter_free(&t->held);
    }
}

static int trainer_init(trainer *t, const til_train_cfg *c, const til_inter *train, const til_inter *valid,
                        til_err *e)
{
    memset(t, 0, sizeof *t);
    t->c = c;
    t->train = train;
    t->valid = valid;
    uint64_t B = c->batch, d = (uint64_t)c->dim;
    int hooked = til_method_known(c->method); /* TIL: BPR loss, weighted through the method's hooks */
    int method = hooked ? TIL_M_BPR : til_bl_method_parse(c->method);
    if (method < 0)
        return til_seterr(e, "unknown method '%s' (known: %s, %s)", c->method, TIL_BL_METHODS, TIL_METHOD_NAMES);
    /* a method that keeps part of the training set for itself trains on the rest */
    const til_inter *full = train;
    int s = hooked ? til_method_split(c->method, c->method_opts, full, c->seed, &t->inner, &t->held, e) : 0;
    if (s < 0)
        return -1;
    t->split = s;
    if (s)
        t->train = train = &t->inner;
    if (til_bl_init(&t->bl, method, &c->bl, train, c->dim, B, c->seed, e))
        return -1;
    B *= (uint64_t)til_bl_expand(&t->bl); /* PRIS: B positives -> B x N triplets per step */
    til_backbone_opts bo = {.train = train, .layers = c->layers, .threads = c->threads};
    if (til_backbone_create_opts(&t->bb, c->backbone, train->n_users, train->n_items, c->dim, B, &bo, e))
        return -1;
    if (til_adam_init(&t->adam, c->optim, t->bb.param, t->bb.n_param, c->dim, c->lr, c->b1, c->b2, c->eps, e))
        return -1;
    if (til_sampler_init(&t->sampler, TIL_SAMPLER_UNIFORM, train, c->seed, e))
        return -1;
    t->sampler.exclude = full; /* held-out items are never negatives */
    if (method == TIL_M_WBPR)
        t->sampler.draw = til_bl_pop_draw, t->sampler.draw_ctx = &t->bl;
    if (til_triplets_alloc(&t->trip, train->nnz, 1, e))
        return -1;
    if (til_step_buf_alloc(&t->sb, B, c->dim, e))
        return -1;
    if (t->bb.rows_cap > 3 * B) { /* graph backbones: G covers every row */
        free(t->sb.G);
        if (!(t->sb.G = til_aligned_calloc(t->bb.rows_cap * d, sizeof(float), e)))
            return -1;
    }
    if (!(t->best = til_aligned_calloc(t->bb.n_param * d, sizeof(float), e)))
        return -1;
    /* Xavier-uniform per table, as nn.init.xavier_uniform_ on each nn.Embedding */
    til_init_xavier(t->bb.param, train->n_users, c->dim, c->seed, til_stream(TIL_STREAM_INIT, 0, 0));
    til_init_xavier(t->bb.param + (uint64_t)train->n_users * d, train->n_items, c->dim, c->seed,
                    til_stream(TIL_STREAM_INIT, 0, 1));
    if (t->bb.ops->init)
        t->bb.ops->init(&t->bb, c->seed);
    if (hooked && c->device == TIL_DEVICE_CUDA) /* the method hooks run on the host tables */
        return til_seterr(e, "--method %s: --device cpu only", c->method);
    if (c->device == TIL_DEVICE_CUDA && til_cuda_train_init(&t->dev, c, &t->bb, &t->adam, e))
        return -1;
    t->epoch = 1;
    til_method_env env = {c, train, &t->bb, &t->adam, &t->sb, &t->sampler, &t->trip, &t->epoch,
                          t->split ? &t->held : NULL, full};
    return hooked ? til_method_create(&t->meth, c->method, &env, c->method_opts, e) : 0;
}

/* ------------------------------------------------------------------ one step */

int til_step_buf_alloc(til_step_buf *s, uint64_t batch, int dim, til_err *e)
{
    memset(s, 0, sizeof *s);
    s->cap = batch;
    float **b1[] = {&s->s_pos, &s->s_neg, &s->loss, &s->g_pos, &s->g_neg};
    for (size_t k = 0; k < 5; k++)
        if (!(*b1[k] = til_aligned_calloc(batch, sizeof(float), e)))
            goto fail;
    float **bd[] = {&s->dU, &s->dQi, &s->dQj};
    for (size_t k = 0; k < 3; k++)
        if (!(*bd[k] = til_aligned_calloc(batch * (uint64_t)dim, sizeof(float), e)))
            goto fail;
    if (!(s->G = til_aligned_calloc(3 * batch * (uint64_t)dim, sizeof(float), e)))
        goto fail;
    return 0;
fail:
    til_step_buf_free(s);
    return -1;
}

void til_step_buf_free(til_step_buf *s)
{
    float **bufs[] = {&s->s_pos, &s->s_neg, &s->loss, &s->g_pos, &s->g_neg, &s->dU, &s->dQi, &s->dQj, &s->G};
    for (size_t k = 0; k < sizeof bufs / sizeof *bufs; k++) {
        free(*bufs[k]);
        *bufs[k] = NULL;
    }
    free(s->mg_save);
    free(s->mg_c);
    free(s->mg_rows);
    s->mg_save = s->mg_c = NULL;
    s->mg_rows = NULL;
    s->mg_save_cap = s->mg_c_cap = s->mg_rows_cap = 0;
}

typedef struct {
    const til_backbone *bb;
    const til_batch *b;
    til_step_buf *s;
    float scale;
    int phase; /* 0: all (BPR); 1: scores only; 2: gradients only; 3: BPR with the scores given */
} head_job;

/* Per triplet b: scores, loss, dL/dscore, then dL/d(representations):
 *   s_pos = U[u].V[i]; s_neg = U[u].V[j]
 *   dU[b] = g_pos V[i] + g_neg V[j];  dQi[b] = g_pos U[u];  dQj[b] = g_neg U[u]   ([dim] each) */
static void head_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    (void)part;
    head_job *j = ctx;
    til_step_buf *s = j->s;
    const float *U = j->bb->U, *V = j->bb->V;
    const til_batch *bt = j->b;
    int d = j->bb->dim;
    for (uint64_t b = lo; b < hi && j->phase < 2; b++) {
        const float *pu = U + (uint64_t)bt->u[b] * d;
        s->s_pos[b] = til_dot(pu, V + (uint64_t)bt->i[b] * d, d);
        s->s_neg[b] = til_dot(pu, V + (uint64_t)bt->j[b] * d, d);
    }
    if (j->phase == 1)
        return;
    if (j->phase == 0 || j->phase == 3)
        til_loss_bpr(s->s_pos, s->s_neg, s->w, j->scale, lo, hi, s->loss, s->g_pos, s->g_neg);
    for (uint64_t b = lo; b < hi; b++) {
        const float *restrict pu = U + (uint64_t)bt->u[b] * d;
        const float *restrict qi = V + (uint64_t)bt->i[b] * d;
        const float *restrict qj = V + (uint64_t)bt->j[b] * d;
        float *restrict du = s->dU + b * d, *restrict di = s->dQi + b * d, *restrict dj = s->dQj + b * d;
        float gp = s->g_pos[b], gn = s->g_neg[b];
        for (int k = 0; k < d; k++) {
            du[k] = gp * qi[k] + gn * qj[k];
            di[k] = gp * pu[k];
            dj[k] = gn * pu[k];
        }
    }
}

int til_batch_grad(til_backbone *bb, const til_batch *b, double reg, int threads, til_step_buf *s, double *loss,
                   til_err *e)
{
    return til_batch_grad_bl(bb, b, NULL, reg, threads, s, loss, e);
}

int til_batch_grad_bl(til_backbone *bb, const til_batch *b, til_bl *bl, double reg, int threads, til_step_buf *s,
                      double *loss, til_err *e)
{
    int ready = s->scores_ready;
    s->scores_ready = 0;
    if (b->n > s->cap)
        return til_seterr(e, "batch of %llu > buffer capacity", (unsigned long long)b->n);
    if (bb->ops->forward(bb, b, threads, e))
        return -1;
    int parts = b->n < 512 ? 1 : threads;
    if (bl && bl->method == TIL_M_BPR)
        bl = NULL;
    if (ready && (bb->ops->score || bl))
        return til_seterr(e, "scores given for a backbone with its own head or a baseline's loss");
    if (bb->ops->score) { /* the backbone's own head (NeuMF) */
        if (bb->ops->score(bb, b, s->s_pos, s->s_neg, threads, e))
            return -1;
        if (bl) { /* a baseline's loss sees the whole batch (drops, weights) */
            if (til_bl_step_loss(bl, b->n, s->s_pos, s->s_neg, s->loss, s->g_pos, s->g_neg, e))
                return -1;
        } else {
            til_loss_bpr(s->s_pos, s->s_neg, s->w, 1.0f / (float)b->n, 0, b->n, s->loss, s->g_pos, s->g_neg);
        }
        if (bb->ops->score_backward(bb, b, s->g_pos, s->g_neg, s->dU, s->dQi, s->dQj, threads, e))
            return -1;
    } else {
        head_job hj = {bb, b, s, 1.0f / (float)b->n, bl ? 1 : ready ? 3 : 0};
        til_par_for(parts, b->n, head_part, &hj);
        if (bl) { /* a baseline's loss sees the whole batch (drops, weights) */
            if (til_bl_step_loss(bl, b->n, s->s_pos, s->s_neg, s->loss, s->g_pos, s->g_neg, e))
                return -1;
            hj.phase = 2;
            til_par_for(parts, b->n, head_part, &hj);
        }
    }
    if (s->xr) { /* a method's extra term on item representations (serial: fixed order) */
        const uint64_t d = (uint64_t)bb->dim;
        for (uint64_t r = 0; r < s->xr->n; r++) {
            uint64_t sl = s->xr->slot[r];
            if (sl >= 2 * b->n)
                return til_seterr(e, "extra representation gradient: slot %llu out of range",
                                  (unsigned long long)sl);
            float *dst = sl < b->n ? s->dQi + sl * d : s->dQj + (sl - b->n) * d;
            const float *src = s->xr->g + r * d;
            for (uint64_t c = 0; c < d; c++)
                dst[c] += src[c];
        }
    }
    double l2 = 0;
    if (bb->ops->backward(bb, b, s->dU, s->dQi, s->dQj, (float)(reg / (double)b->n), s->G, &l2, threads, e))
        return -1;
    double sum = 0;
    for (uint64_t k = 0; k < b->n; k++)
        sum += s->loss[k];
    *loss = sum / (double)b->n + reg * l2 / (double)b->n;
    return 0;
}

/* One optimisation step on triplets [lo, hi) of the epoch; returns the batch loss via *bl. */
static int train_step(trainer *t, uint64_t lo, uint64_t hi, double *bl, til_err *e)
{
    const til_train_cfg *c = t->c;
    til_batch b = {hi - lo, t->trip.u + lo, t->trip.i + lo, t->trip.j + lo};
    if (t->dev)
        return til_cuda_train_step(t->dev, &b, bl, e);
    til_backbone *bb = &t->bb;
    if (til_bl_per_batch(&t->bl) && /* adaptive samplers draw now, from the current model */
        til_bl_batch(&t->bl, bb, &t->adam, (uint64_t)t->epoch, lo / c->batch, &b, t->trip.j + lo, &b, c->threads, e))
        return -1;
    t->bl.T = t->adam.t;
    if (bb->ops->prepare(bb, &b, e))
        return -1;
    if (!bb->rows) /* dense-gradient backbones: wire a dense step here (til_adam_step over all rows) */
        return til_seterr(e, "dense-gradient backbones are not wired to the optimizer yet");
    til_adam_catch_up(&t->adam, bb->rows, bb->n_rows, c->threads);
    const til_method_ops *mo = t->meth ? t->meth->ops : NULL;
    if (mo && mo->before_grad && mo->before_grad(t->meth, &b, e))
        return -1;
    if (til_batch_grad_bl(bb, &b, &t->bl, c->reg, c->threads, &t->sb, bl, e))
        return -1;
    if (mo && mo->after_grad && mo->after_grad(t->meth, &b, bl, e))
        return -1;
    return til_adam_step(&t->adam, bb->rows, t->sb.G, bb->n_rows, c->threads, e);
}

/* ------------------------------------------------------------------ checkpoints */

static int put_meta_common(til_model *m, const trainer *t, til_err *e)
{
    const til_train_cfg *c = t->c;
    return til_model_set(m, "backbone", c->backbone, e) || til_model_set(m, "method", c->method, e) ||
           til_model_set(m, "optim", til_adam_mode_name(c->optim), e) ||
           til_model_setf(m, e, "n_users", "%u", t->train->n_users) ||
           til_model_setf(m, e, "n_items", "%u", t->train->n_items) || til_model_setf(m, e, "dim", "%d", c->dim) ||
           til_model_setf(m, e, "seed", "%" PRIu64, c->seed) ||
           til_model_setf(m, e, "batch", "%" PRIu64, c->batch) || til_model_setf(m, e, "lr", "%.17g", c->lr) ||
           til_model_setf(m, e, "reg", "%.17g", c->reg) || til_model_setf(m, e, "adam_beta1", "%.17g", c->b1) ||
           til_model_setf(m, e, "adam_beta2", "%.17g", c->b2) || til_model_setf(m, e, "adam_eps", "%.17g", c->eps) ||
           til_bl_meta(m, &t->bl, e) ||
           til_model_set(m, "init", "xavier_uniform", e) ||
           til_model_set(m, "l2", "reg*0.5*(|p_u|^2+|q_i|^2+|q_j|^2)/batch on the batch's layer-0 rows", e) ||
           til_model_setf(m, e, "epochs_max", "%d", c->epochs) ||
           til_model_setf(m, e, "eval_every", "%d", c->eval_every) ||
           til_model_setf(m, e, "patience", "%d", c->patience) || til_model_setf(m, e, "topk", "%d", c->topk) ||
           (t->bb.ops->meta && t->bb.ops->meta(&t->bb, m, e)) ||
           (t->meth && t->meth->ops->put_meta && t->meth->ops->put_meta(t->meth, m, e))
               ? -1
               : 0;
}

static int ckpt_write(trainer *t, const char *path, til_err *e)
{
    til_model m;
    til_model_init(&m);
    uint64_t np = t->bb.n_param, d = (uint64_t)t->c->dim;
    int rc = -1;
    if (til_model_set(&m, "kind", "checkpoint", e) || put_meta_common(&m, t, e) ||
        til_model_setf(&m, e, "epoch", "%d", t->epoch) || til_model_setf(&m, e, "pos", "%" PRIu64, t->pos) ||
        til_model_setf(&m, e, "loss_sum", "%.17g", t->loss_sum) ||
        til_model_setf(&m, e, "n_batches", "%" PRIu64, t->n_batches) ||
        til_model_setf(&m, e, "step", "%" PRIu64, t->adam.t) ||
        til_model_setf(&m, e, "best_epoch", "%d", t->best_epoch) ||
        til_model_setf(&m, e, "best_recall", "%.17g", t->best_recall) ||
        til_model_setf(&m, e, "best_ndcg", "%.17g", t->best_ndcg))
        goto out;
    if (!til_model_add(&m, "param", TIL_F32, np, d, t->bb.param, e) ||
        !til_model_add(&m, "adam_m", TIL_F32, np, d, t->adam.m, e) ||
        !til_model_add(&m, "adam_v", TIL_F32, np, d, t->adam.v, e) ||
        (t->adam.last && !til_model_add(&m, "adam_last", TIL_U64, np, 1, t->adam.last, e)) ||
        !til_model_add(&m, "best_param", TIL_F32, np, d, t->best, e))
        goto out;
    if (t->meth && t->meth->ops->save && t->meth->ops->save(t->meth, &m, e))
        goto out;
    rc = til_model_write(path, &m, e);
out:
    til_model_free(&m);
    return rc;
}

static int ckpt_read(trainer *t, const char *path, til_err *e)
{
    til_model m;
    int rc = -1;
    if (til_model_read(path, &m, e))
        return -1;
    const til_train_cfg *c = t->c;
    uint64_t np = t->bb.n_param, d = (uint64_t)c->dim, u;
    double x;
    const char *kind = til_model_get(&m, "kind");
    if (!kind || strcmp(kind, "checkpoint")) {
        til_seterr(e, "%s: not a checkpoint (kind %s)", path, kind ? kind : "missing");
        goto out;
    }
    /* everything that changes the arithmetic must match */
    til_model cur;
    til_model_init(&cur);
    if (put_meta_common(&cur, t, e)) {
        til_model_free(&cur);
        goto out;
    }
    static const char *must[] = {"backbone", "method", "optim", "n_users", "n_items", "dim", "seed", "batch",
                                 "lr", "reg", "adam_beta1", "adam_beta2", "adam_eps", "topk"};
    for (size_t k = 0; k < sizeof must / sizeof *must; k++) {
        const char *a = til_model_get(&m, must[k]), *b = til_model_get(&cur, must[k]);
        if (!a || strcmp(a, b)) {
            til_seterr(e, "%s: checkpoint has %s = %s, this run has %s", path, must[k], a ? a : "(missing)", b);
            til_model_free(&cur);
            goto out;
        }
    }
    static const char *bb_must[] = {"layers", "tower"}; /* the backbone's, when it has them */
    for (size_t k = 0; k < sizeof bb_must / sizeof *bb_must; k++) {
        const char *a = til_model_get(&m, bb_must[k]), *b = til_model_get(&cur, bb_must[k]);
        if (b && (!a || strcmp(a, b))) {
            til_seterr(e, "%s: checkpoint has %s = %s, this run has %s", path, bb_must[k], a ? a : "(missing)", b);
            til_model_free(&cur);
            goto out;
        }
    }
    til_model_free(&cur);
    if (til_model_get_u64(&m, "epoch", &u, e))
        goto out;
    t->epoch = (int)u;
    if (til_model_get_u64(&m, "pos", &t->pos, e) || til_model_get_double(&m, "loss_sum", &t->loss_sum, e) ||
        til_model_get_u64(&m, "n_batches", &t->n_batches, e) || til_model_get_u64(&m, "step", &t->adam.t, e) ||
        til_model_get_u64(&m, "best_epoch", &u, e))
        goto out;
    t->best_epoch = (int)u;
    if (til_model_get_double(&m, "best_recall", &t->best_recall, e) ||
        til_model_get_double(&m, "best_ndcg", &x, e))
        goto out;
    t->best_ndcg = x;
    if (t->pos > t->train->nnz) {
        til_seterr(e, "%s: position %" PRIu64 " beyond the epoch", path, t->pos);
        goto out;
    }
    const til_tensor *tp = til_model_need(&m, "param", TIL_F32, np, d, path, e);
    const til_tensor *tm = tp ? til_model_need(&m, "adam_m", TIL_F32, np, d, path, e) : NULL;
    const til_tensor *tv = tm ? til_model_need(&m, "adam_v", TIL_F32, np, d, path, e) : NULL;
    const til_tensor *tb = tv ? til_model_need(&m, "best_param", TIL_F32, np, d, path, e) : NULL;
    const til_tensor *tl = NULL;
    if (!tb)
        goto out;
    if (t->adam.last && !(tl = til_model_need(&m, "adam_last", TIL_U64, np, 1, path, e)))
        goto out;
    memcpy(t->bb.param, tp->data, np * d * sizeof(float));
    memcpy(t->adam.m, tm->data, np * d * sizeof(float));
    memcpy(t->adam.v, tv->data, np * d * sizeof(float));
    memcpy(t->best, tb->data, np * d * sizeof(float));
    if (tl) {
        memcpy(t->adam.last, tl->data, np * sizeof(uint64_t));
        for (uint64_t r = 0; r < np; r++)
            if (t->adam.last[r] > t->adam.t) {
                til_seterr(e, "%s: adam_last[%" PRIu64 "] beyond step", path, r);
                goto out;
            }
    }
    if (til_adam_reserve(&t->adam, t->adam.t + 1, e))
        goto out;
    if (t->meth && t->meth->ops->load && t->meth->ops->load(t->meth, &m, path, e))
        goto out;
    t->last_ckpt_epoch = t->epoch;
    rc = 0;
out:
    til_model_free(&m);
    return rc;
}

/* ------------------------------------------------------------------ the model */

static int make_model(trainer *t, til_model *out, int epochs_run, int stopped_early, til_err *e)
{
    const til_train_cfg *c = t->c;
    uint64_t d = (uint64_t)c->dim, nu = t->train->n_users, ni = t->train->n_items;
    char kr[32], kn[32];
    /* the representations of the best parameters (training is over: param is free) */
    memcpy(t->bb.param, t->best, t->bb.n_param * d * sizeof(float));
    if (t->bb.ops->forward(&t->bb, NULL, c->threads, e))
        return -1;
    snprintf(kr, sizeof kr, "valid_recall_%d", c->topk);
    snprintf(kn, sizeof kn, "valid_ndcg_%d", c->topk);
    til_model_init(out);
    if (til_model_set(out, "kind", "model", e) || put_meta_common(out, t, e) ||
        til_model_setf(out, e, "epoch", "%d", t->best_epoch) ||
        til_model_setf(out, e, "epochs_run", "%d", epochs_run) ||
        til_model_set(out, "stopped", stopped_early ? "early" : "max_epochs", e) ||
        til_model_setf(out, e, kr, "%.9g", t->best_recall) || til_model_setf(out, e, kn, "%.9g", t->best_ndcg) ||
        !til_model_add(out, "user", TIL_F32, nu, d, t->bb.U, e) ||
        !til_model_add(out, "item", TIL_F32, ni, d, t->bb.V, e) ||
        (t->bb.ops->export_model && t->bb.ops->export_model(&t->bb, out, e))) {
        til_model_free(out);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ the loop */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void progress(const trainer *t, double loss, int evald, double rec, double ndcg, double s_ep, int last)
{
    const til_train_cfg *c = t->c;
    double eta = s_ep * (c->epochs - t->epoch);
    char rs[64] = "";
    if (evald)
        snprintf(rs, sizeof rs, " valid R@%d %.4f N@%d %.4f", c->topk, rec, c->topk, ndcg);
    fprintf(stderr, "\r\033[Kepoch %d/%d loss %.5f%s | %.2f s/epoch | best %.4f @%d | ETA <= %.0f s%s", t->epoch,
            c->epochs, loss, rs, s_ep, t->best_recall, t->best_epoch, eta, last ? "\n" : "");
    fflush(stderr);
}

int til_train_run(const til_train_cfg *c, const til_inter *train, const til_inter *valid, til_model *out,
                  til_train_result *res, til_err *e)
{
    memset(res, 0, sizeof *res);
    if (c->dim < 1 || c->dim > 1024 || c->batch < 1 || c->epochs < 1 || c->eval_every < 1 || c->threads < 1 ||
        c->topk < 1)
        return til_seterr(e, "bad training configuration");
    if (til_inter_same_shape(train, "train", valid, "valid", e))
        return -1;
    trainer t;
    FILE *log = NULL;
    double *ep_s = NULL;
    int rc = -1, epochs_run = 0, stopped_early = 0, done = 0;
    if (trainer_init(&t, c, train, valid, e))
        goto out;
    if (c->resume_path && (ckpt_read(&t, c->resume_path, e) || (t.dev && til_cuda_train_upload(t.dev, e))))
        goto out;
    if (c->info) {
        char a[32], b[32], s[32];
        uint64_t np = t.bb.n_param * (uint64_t)c->dim * 4;
        til_fmt_bytes(np, a, sizeof a);
        til_fmt_bytes(2 * np + (t.adam.last ? t.bb.n_param * 8 : 0), b, sizeof b);
        til_fmt_bytes(np + 12 * train->nnz + c->batch * (5 * 4 + 12 * (uint64_t)c->dim * 4), s, sizeof s);
        fprintf(c->info,
                "%s: %u users, %u items, %" PRIu64 " train positives; %s/%s/%s dim %d batch %" PRIu64
                " lr %g reg %g, %d threads\n%s: memory: parameters %s, Adam state %s, best copy + triplets + "
                "batch buffers %s\n",
                til_prog(), train->n_users, train->n_items, train->nnz, c->backbone, c->method,
                til_adam_mode_name(c->optim), c->dim, c->batch, c->lr, c->reg, c->threads, til_prog(), a, b, s);
        if (c->resume_path)
            fprintf(c->info, "%s: resuming from %s at epoch %d, triplet %" PRIu64 "\n", til_prog(), c->resume_path,
                    t.epoch, t.pos);
    }
    if (c->log_path) {
        int fresh = !c->resume_path || access(c->log_path, F_OK) != 0;
        log = fopen(c->log_path, fresh ? "w" : "a");
        if (!log) {
            til_seterr(e, "%s:", c->log_path);
            goto out;
        }
        if (fresh && t.meth) { /* a method's run: the hyper-parameters as comment lines */
            til_model hp;
            til_model_init(&hp);
            if (put_meta_common(&hp, &t, e)) {
                til_model_free(&hp);
                goto out;
            }
            for (int k = 0; k < hp.n_meta; k++)
                fprintf(log, "# %s = %s\n", hp.key[k], hp.val[k]);
            til_model_free(&hp);
        }
        if (fresh) {
            fprintf(log, "epoch\tloss\ttrain_s\tsample_s\teval_s\tvalid_recall@%d\tvalid_ndcg@%d\tbest_epoch\tbest_recall@%d",
                    c->topk, c->topk, c->topk);
            if (t.meth && t.meth->ops->log_header)
                t.meth->ops->log_header(t.meth, log);
            fputc('\n', log);
        }
    }
    if (!(ep_s = til_malloc((size_t)c->epochs + 1, sizeof *ep_s, e)))
        goto out;
    til_scorer sc;
    til_eval_opts eo = {.ks = {c->topk}, .n_k = 1, .threads = c->threads, .block = 0, .device = c->device};
    for (; t.epoch <= c->epochs && !done; t.epoch++) {
        double t0 = til_now();
        if (til_sampler_epoch(&t.sampler, (uint64_t)t.epoch, c->threads, &t.trip, e))
            goto out;
        double t1 = til_now();
        for (; t.pos < t.trip.n; t.pos = TIL_MIN(t.pos + c->batch, t.trip.n)) {
            if (c->stop && *c->stop) {
                if (c->checkpoint_path) {
                    if (t.dev && til_cuda_train_download(t.dev, 1, e))
                        goto out;
                    til_adam_sync(&t.adam, c->threads);
                    if (ckpt_write(&t, c->checkpoint_path, e))
                        goto out;
                }
                if (c->progress)
                    fputc('\n', stderr);
                til_seterr(e, "interrupted at epoch %d, triplet %" PRIu64 "%s%s", t.epoch, t.pos,
                           c->checkpoint_path ? "; checkpoint written to " : " (no --checkpoint given)",
                           c->checkpoint_path ? c->checkpoint_path : "");
                rc = 1;
                goto out;
            }
            double bl = 0;
            if (train_step(&t, t.pos, TIL_MIN(t.pos + c->batch, t.trip.n), &bl, e))
                goto out;
            t.loss_sum += bl;
            t.n_batches++;
        }
        double t2 = til_now();
        double loss = t.loss_sum / (double)(t.n_batches ? t.n_batches : 1);
        if (!isfinite(loss)) {
            if (c->progress)
                fputc('\n', stderr);
            if (c->checkpoint_path && t.last_ckpt_epoch > 0)
                til_seterr(e, "loss is %g at epoch %d: training diverged; the last good checkpoint %s (epoch %d) is kept",
                           loss, t.epoch, c->checkpoint_path, t.last_ckpt_epoch);
            else
                til_seterr(e, "loss is %g at epoch %d: training diverged (lower --lr?)", loss, t.epoch);
            goto out;
        }
        int evald = 0;
        til_eval_result er = {0};
        if (t.epoch % c->eval_every == 0 || t.epoch == c->epochs) {
            if (t.dev && til_cuda_train_download(t.dev, 0, e))
                goto out;
            til_adam_sync(&t.adam, c->threads);
            if (t.bb.ops->forward(&t.bb, NULL, c->threads, e) || til_backbone_scorer(&t.bb, &sc, e) ||
                til_eval_run(&sc, train, NULL, valid, &eo, &er, NULL, e)) {
                til_errctx(e, "validation at epoch %d", t.epoch);
                goto out;
            }
            evald = 1;
            if (t.best_epoch == 0 || er.recall[0] > t.best_recall) {
                t.best_epoch = t.epoch;
                t.best_recall = er.recall[0];
                t.best_ndcg = er.ndcg[0];
                memcpy(t.best, t.bb.param, t.bb.n_param * (uint64_t)c->dim * sizeof(float));
            } else if (t.epoch - t.best_epoch >= c->patience) {
                stopped_early = 1;
                done = 1;
            }
        }
        double t3 = til_now();
        ep_s[epochs_run] = t2 - t1;
        res->train_s += t2 - t1;
        res->sample_s += t1 - t0;
        res->eval_s += t3 - t2;
        epochs_run++;
        if (log) {
            fprintf(log, "%d\t%.9g\t%.4f\t%.4f\t%.4f\t", t.epoch, loss, t2 - t1, t1 - t0, t3 - t2);
            if (evald)
                fprintf(log, "%.9g\t%.9g", er.recall[0], er.ndcg[0]);
            else
                fprintf(log, "NA\tNA");
            fprintf(log, "\t%d\t%.9g", t.best_epoch, t.best_recall);
            if (t.meth && t.meth->ops->log_row)
                t.meth->ops->log_row(t.meth, log);
            fputc('\n', log);
            if (fflush(log)) {
                til_seterr(e, "%s:", c->log_path);
                goto out;
            }
        }
        if (c->progress)
            progress(&t, loss, evald, er.recall[0], er.ndcg[0], t3 - t0, 0);
        t.pos = 0;
        t.loss_sum = 0;
        t.n_batches = 0;
        int next = t.epoch + 1;
        if (c->checkpoint_path &&
            ((c->checkpoint_every > 0 && t.epoch % c->checkpoint_every == 0) || done || t.epoch == c->epochs)) {
            if (t.dev && til_cuda_train_download(t.dev, 1, e))
                goto out;
            til_adam_sync(&t.adam, c->threads);
            t.epoch = next; /* a checkpoint names the epoch to run next */
            int w = ckpt_write(&t, c->checkpoint_path, e);
            t.epoch = next - 1;
            if (w)
                goto out;
            t.last_ckpt_epoch = t.epoch;
        }
    }
    if (c->progress)
        fputc('\n', stderr);
    if (t.best_epoch == 0) {
        til_seterr(e, "no epoch was trained (checkpoint already at epoch %d of %d)", t.epoch, c->epochs);
        goto out;
    }
    if (t.meth && t.meth->ops->finish && t.meth->ops->finish(t.meth, e))
        goto out;
    if (make_model(&t, out, t.epoch - 1, stopped_early, e))
        goto out;
    res->best_epoch = t.best_epoch;
    res->best_recall = t.best_recall;
    res->best_ndcg = t.best_ndcg;
    res->epochs_run = t.epoch - 1;
    res->stopped_early = stopped_early;
    if (epochs_run > 1) {
        qsort(ep_s + 1, (size_t)epochs_run - 1, sizeof *ep_s, cmp_double);
        res->median_epoch_s = ep_s[1 + (epochs_run - 1) / 2];
    } else {
        res->median_epoch_s = ep_s[0];
    }
    rc = 0;
out:
    if (log && fclose(log) && rc == 0) {
        til_seterr(e, "%s:", c->log_path);
        til_model_free(out);
        rc = -1;
    }
    free(ep_s);
    trainer_free(&t);
    return rc;
}
