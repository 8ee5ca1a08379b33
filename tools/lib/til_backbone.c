/* til_backbone: MF, and the backbone registry.
 *
 * MF prepare collects the batch's unique rows (users, then items offset by
 * n_users, in first-occurrence order) and, per row, the list of its
 * occurrences in triplet order (CSR, built by a stable counting pass); backward
 * reduces each row over its occurrences in that order, rows in parallel. */
#pragma GCC optimize("vect-cost-model=dynamic")
#include "til_backbone.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "til_eval.h"
#include "til_lightgcn.h"
#include "til_mgccf.h"
#include "til_neumf.h"
#include "til_par.h"
#include "til_rng.h"

void til_init_xavier(float *rows, uint64_t n, int dim, uint64_t seed, uint64_t stream)
{
    til_rng r;
    til_rng_seed(&r, seed, stream);
    double a = sqrt(6.0 / ((double)n + dim));
    for (uint64_t k = 0; k < n * (uint64_t)dim; k++)
        rows[k] = (float)((2.0 * til_rng_uniform(&r) - 1.0) * a);
}

typedef struct mf {
    int32_t *slot;      /* n_param: index into rows, or -1 */
    uint64_t *ptr;      /* n_rows + 1: occurrences of rows[k] are occ[ptr[k] .. ptr[k+1]) */
    uint32_t *occ;      /* 3 B: (b << 2) | kind, kind 0 user, 1 positive item, 2 negative item */
    uint32_t *rows_buf; /* 3 B */
    double *l2;         /* 3 B: per-row 0.5 * count * |e|^2 */
    uint64_t cap;       /* batch capacity */
} mf;

static int mf_prepare(til_backbone *bb, const til_batch *b, til_err *e)
{
    mf *m = bb->impl;
    if (b->n > m->cap)
        return til_seterr(e, "mf: batch of %llu > capacity %llu", (unsigned long long)b->n,
                          (unsigned long long)m->cap);
    uint64_t n = 0;
    uint32_t nu = bb->n_users;
    /* unique rows in first-occurrence order; count occurrences in ptr[k+1] */
    for (uint64_t t = 0; t < b->n; t++) {
        uint32_t r3[3] = {b->u[t], nu + b->i[t], nu + b->j[t]};
        for (int q = 0; q < 3; q++) {
            uint32_t r = r3[q];
            if (m->slot[r] < 0) {
                m->slot[r] = (int32_t)n;
                m->rows_buf[n] = r;
                m->ptr[n + 1] = 0;
                n++;
            }
            m->ptr[m->slot[r] + 1]++;
        }
    }
    m->ptr[0] = 0;
    for (uint64_t k = 0; k < n; k++)
        m->ptr[k + 1] += m->ptr[k];
    /* stable fill: occurrences in triplet order; ptr[k] advances, then shifts back */
    for (uint64_t t = 0; t < b->n; t++) {
        uint32_t r3[3] = {b->u[t], nu + b->i[t], nu + b->j[t]};
        for (uint32_t q = 0; q < 3; q++)
            m->occ[m->ptr[m->slot[r3[q]]]++] = (uint32_t)(t << 2) | q;
    }
    for (uint64_t k = n; k > 0; k--)
        m->ptr[k] = m->ptr[k - 1];
    m->ptr[0] = 0;
    for (uint64_t k = 0; k < n; k++)
        m->slot[m->rows_buf[k]] = -1;
    bb->rows = m->rows_buf;
    bb->n_rows = n;
    return 0;
}

static int mf_forward(til_backbone *bb, const til_batch *b, int threads, til_err *e)
{
    (void)b, (void)threads, (void)e;
    bb->U = bb->param; /* representations are the embeddings themselves */
    bb->V = bb->param + (uint64_t)bb->n_users * bb->dim;
    return 0;
}

typedef struct {
    til_backbone *bb;
    const float *d[3]; /* dU, dQi, dQj: B x dim */
    float reg_c;
    float *G;
} mf_bwd_job;

/* G[k] (dim) = sum over occurrences o of rows[k], in triplet order, of
 *   d_kind(o)[b(o)] + reg_c * param[rows[k]] */
static inline void mf_reduce_row(float *restrict g, const float *restrict p, const float *const d[3],
                                 const uint32_t *restrict occ, uint64_t n_occ, int dim, float reg_c)
{
    for (int k = 0; k < dim; k++)
        g[k] = 0.0f;
    for (uint64_t o = 0; o < n_occ; o++) {
        const float *restrict src = d[occ[o] & 3] + (uint64_t)(occ[o] >> 2) * dim;
        for (int k = 0; k < dim; k++)
            g[k] = g[k] + (src[k] + reg_c * p[k]);
    }
}

static void mf_bwd_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    (void)part;
    mf_bwd_job *j = ctx;
    til_backbone *bb = j->bb;
    mf *m = bb->impl;
    int dim = bb->dim;
    for (uint64_t k = lo; k < hi; k++) {
        const float *p = bb->param + (uint64_t)bb->rows[k] * dim;
        uint64_t a = m->ptr[k], n = m->ptr[k + 1] - a;
        if (dim == 64)
            mf_reduce_row(j->G + k * 64, p, j->d, m->occ + a, n, 64, j->reg_c);
        else
            mf_reduce_row(j->G + k * dim, p, j->d, m->occ + a, n, dim, j->reg_c);
        double s = 0;
        for (int q = 0; q < dim; q++)
            s += (double)p[q] * p[q];
        m->l2[k] = 0.5 * (double)n * s;
    }
}

static int mf_backward(til_backbone *bb, const til_batch *b, const float *dU, const float *dQi, const float *dQj,
                       float reg_c, float *G, double *l2, int threads, til_err *e)
{
    (void)b, (void)e;
    mf *m = bb->impl;
    mf_bwd_job j = {bb, {dU, dQi, dQj}, reg_c, G};
    til_par_for(bb->n_rows < 256 ? 1 : threads, bb->n_rows, mf_bwd_part, &j);
    double s = 0;
    for (uint64_t k = 0; k < bb->n_rows; k++)
        s += m->l2[k];
    *l2 = s;
    return 0;
}

static void mf_free(til_backbone *bb)
{
    mf *m = bb->impl;
    if (m) {
        free(m->slot);
        free(m->ptr);
        free(m->occ);
        free(m->rows_buf);
        free(m->l2);
        free(m);
    }
    free(bb->param);
}

/* MF: R = param, so the JVP is the identity: scatter-add D's rows. */
static int mf_jvp(til_backbone *bb, const uint32_t *rows, uint64_t n_rows, const float *D, const til_batch *want,
                  float *dU, float *dV, int threads, til_err *e)
{
    (void)want, (void)threads, (void)e;
    uint64_t d = (uint64_t)bb->dim, nu = bb->n_users;
    for (uint64_t k = 0; k < n_rows; k++) {
        uint64_t r = rows ? rows[k] : k;
        float *dst = r < nu ? dU + r * d : dV + (r - nu) * d;
        for (uint64_t c = 0; c < d; c++)
            dst[c] += D[k * d + c];
    }
    return 0;
}

static const til_backbone_ops mf_ops = {.name = "mf", .prepare = mf_prepare, .forward = mf_forward,
                                        .backward = mf_backward, .free = mf_free, .jvp = mf_jvp};

int til_mf_init(til_backbone *bb, uint32_t n_users, uint32_t n_items, int dim, uint64_t batch_cap, til_err *e)
{
    memset(bb, 0, sizeof *bb);
    bb->ops = &mf_ops;
    bb->n_users = n_users;
    bb->n_items = n_items;
    bb->dim = dim;
    bb->n_param = (uint64_t)n_users + n_items;
    if (batch_cap == 0 || 3 * batch_cap > (UINT32_MAX >> 2))
        return til_seterr(e, "mf: batch size %llu out of range", (unsigned long long)batch_cap);
    mf *m = til_calloc(1, sizeof *m, e);
    bb->impl = m;
    if (!m)
        return -1;
    m->cap = batch_cap;
    uint64_t nr = TIL_MIN(3 * batch_cap, bb->n_param);
    bb->param = til_aligned_calloc(bb->n_param * (uint64_t)dim, sizeof(float), e);
    m->slot = til_malloc(bb->n_param, sizeof *m->slot, e);
    m->ptr = til_calloc(nr + 1, sizeof *m->ptr, e);
    m->occ = til_malloc(3 * batch_cap, sizeof *m->occ, e);
    m->rows_buf = til_malloc(nr, sizeof *m->rows_buf, e);
    m->l2 = til_malloc(nr, sizeof *m->l2, e);
    if (!bb->param || !m->slot || !m->ptr || !m->occ || !m->rows_buf || !m->l2) {
        til_backbone_free(bb);
        return -1;
    }
    for (uint64_t r = 0; r < bb->n_param; r++)
        m->slot[r] = -1;
    bb->U = bb->param;
    bb->V = bb->param + (uint64_t)n_users * dim;
    return 0;
}

int til_backbone_create(til_backbone *bb, const char *name, uint32_t n_users, uint32_t n_items, int dim,
                        uint64_t batch_cap, til_err *e)
{
    return til_backbone_create_opts(bb, name, n_users, n_items, dim, batch_cap, NULL, e);
}

int til_backbone_create_opts(til_backbone *bb, const char *name, uint32_t n_users, uint32_t n_items, int dim,
                             uint64_t batch_cap, const til_backbone_opts *o, til_err *e)
{
    til_backbone_opts none = {0};
    if (!o)
        o = &none;
    memset(bb, 0, sizeof *bb);
    if (!strcmp(name, "mf"))
        return til_mf_init(bb, n_users, n_items, dim, batch_cap, e);
    if (!strcmp(name, "lightgcn")) {
        if (!o->train || o->train->n_users != n_users || o->train->n_items != n_items)
            return til_seterr(e, "lightgcn: needs the training interactions");
        return til_lightgcn_init(bb, o->train, dim, o->layers > 0 ? o->layers : 1, o->threads > 0 ? o->threads : 1,
                                 e);
    }
    if (!strcmp(name, "neumf"))
        return til_neumf_init(bb, n_users, n_items, dim, batch_cap, e);
    if (!strcmp(name, "mgccf")) {
        if (!o->train || o->train->n_users != n_users || o->train->n_items != n_items)
            return til_seterr(e, "mgccf: needs the training interactions");
        if (o->layers > 1)
            return til_seterr(e, "mgccf: one Bipar-GCN layer (as in the TIL paper); --layers %d not supported",
                              o->layers);
        return til_mgccf_init(bb, o->train, dim, TIL_MGCCF_K, batch_cap, o->threads > 0 ? o->threads : 1, e);
    }
    return til_seterr(e, "unknown backbone '%s' (known: mf, lightgcn, neumf, mgccf)", name);
}

int til_backbone_scorer(til_backbone *bb, til_scorer *s, til_err *e)
{
    if (bb->ops->scorer)
        return bb->ops->scorer(bb, s, e);
    *s = til_scorer_dot(bb->U, bb->V, bb->n_users, bb->n_items, bb->dim);
    return 0;
}

void til_backbone_free(til_backbone *bb)
{
    if (bb->ops && bb->ops->free)
        bb->ops->free(bb);
    memset(bb, 0, sizeof *bb);
}
