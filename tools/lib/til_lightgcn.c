/* til_lightgcn: the normalized bipartite graph, its product, and the LightGCN
 * backbone (maths in til_lightgcn.h). */
#pragma GCC optimize("vect-cost-model=dynamic")
#include "til_lightgcn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "til_backbone.h"
#include "til_model.h"
#include "til_par.h"

void til_graph_free(til_graph *g)
{
    free(g->ptr);
    free(g->col);
    free(g->w);
    memset(g, 0, sizeof *g);
}

int til_graph_bipartite(til_graph *g, const til_inter *t, til_err *e)
{
    memset(g, 0, sizeof *g);
    uint64_t nu = t->n_users, n = nu + t->n_items, nnz = t->nnz;
    g->n = n;
    g->ptr = til_calloc(n + 1, sizeof *g->ptr, e);
    g->col = til_malloc(2 * nnz + 1, sizeof *g->col, e);
    g->w = til_malloc(2 * nnz + 1, sizeof *g->w, e);
    if (!g->ptr || !g->col || !g->w) {
        til_graph_free(g);
        return -1;
    }
    /* degrees: users from their CSR rows, items by counting */
    for (uint64_t u = 0; u < nu; u++)
        g->ptr[u + 1] = t->indptr[u + 1] - t->indptr[u];
    for (uint64_t k = 0; k < nnz; k++)
        g->ptr[nu + t->items[k] + 1]++;
    for (uint64_t r = 0; r < n; r++)
        g->ptr[r + 1] += g->ptr[r];
    /* user rows: their items (increasing); item rows: their users, filled in
     * user order, hence increasing */
    uint64_t *fill = til_malloc(t->n_items + 1, sizeof *fill, e);
    if (!fill) {
        til_graph_free(g);
        return -1;
    }
    for (uint64_t i = 0; i < t->n_items; i++)
        fill[i] = g->ptr[nu + i];
    for (uint64_t u = 0; u < nu; u++) {
        uint64_t du = t->indptr[u + 1] - t->indptr[u];
        for (uint64_t k = t->indptr[u]; k < t->indptr[u + 1]; k++) {
            uint32_t i = t->items[k];
            uint64_t di = g->ptr[nu + i + 1] - g->ptr[nu + i];
            float w = (float)(1.0 / sqrt((double)du * (double)di));
            uint64_t a = g->ptr[u] + (k - t->indptr[u]);
            g->col[a] = (uint32_t)(nu + i);
            g->w[a] = w;
            uint64_t b = fill[i]++;
            g->col[b] = (uint32_t)u;
            g->w[b] = w;
        }
    }
    free(fill);
    return 0;
}

/* ------------------------------------------------------------------ products */

typedef struct {
    const til_graph *g;
    const float *X, *cur; /* X: layer 0; cur: layer l-1 */
    float *nxt, *F;       /* nxt: layer l (NULL: not kept); F: running sum */
    int dim, first, last, layers;
} prop_job;

/* Row r, layer l:  y = sum_k w_rk cur[c_k]   ([dim], neighbours in CSR order)
 *   nxt[r] = y (when kept);  F[r] = (l == 1 ? X[r] : F[r]) + y;
 *   at l == L:  F[r] = F[r] / (L + 1) */
static inline void prop_row(const prop_job *j, uint64_t r, int dim)
{
    const til_graph *g = j->g;
    float y[1024];
    for (int k = 0; k < dim; k++)
        y[k] = 0.0f;
    for (uint64_t a = g->ptr[r]; a < g->ptr[r + 1]; a++) {
        const float *restrict x = j->cur + (uint64_t)g->col[a] * dim;
        float w = g->w[a];
        for (int k = 0; k < dim; k++)
            y[k] += w * x[k];
    }
    if (j->nxt)
        memcpy(j->nxt + r * dim, y, (size_t)dim * sizeof(float));
    if (!j->F)
        return;
    float *restrict f = j->F + r * dim;
    const float *restrict base = j->first ? j->X + r * dim : f;
    if (j->last) {
        float den = (float)(j->layers + 1);
        for (int k = 0; k < dim; k++)
            f[k] = (base[k] + y[k]) / den;
    } else {
        for (int k = 0; k < dim; k++)
            f[k] = base[k] + y[k];
    }
}

static void prop_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    (void)part;
    const prop_job *j = ctx;
    if (j->dim == 64)
        for (uint64_t r = lo; r < hi; r++)
            prop_row(j, r, 64);
    else
        for (uint64_t r = lo; r < hi; r++)
            prop_row(j, r, j->dim);
}

void til_graph_spmm(const til_graph *g, const float *X, float *Y, int dim, int threads)
{
    prop_job j = {g, X, X, Y, NULL, dim, 1, 0, 1};
    til_par_for(threads, g->n, prop_part, &j);
}

void til_lightgcn_propagate(const til_graph *g, int layers, const float *X, float *F, float *t1, float *t2, int dim,
                            int threads)
{
    if (layers < 1) {
        memcpy(F, X, g->n * (uint64_t)dim * sizeof(float));
        return;
    }
    const float *cur = X;
    for (int l = 1; l <= layers; l++) {
        float *nxt = l == layers ? NULL : (l & 1 ? t1 : t2);
        prop_job j = {g, X, cur, nxt, F, dim, l == 1, l == layers, layers};
        til_par_for(threads, g->n, prop_part, &j);
        cur = nxt;
    }
}

/* ------------------------------------------------------------------ the backbone */

typedef struct lgcn {
    til_graph g;
    int layers;
    float *F;         /* N x dim: final representations (U, V): Fc[cur] */
    /* forward cache: Fc[k] = propagate(Pc[k]) where valid[k]; forward with
     * param bit-equal to Pc[k] reuses Fc[k] (a TIL step forwards the same
     * parameters up to four times, and Theta, Theta~, Theta in turn) */
    float *Fc[2], *Pc[2];
    int valid[2], cur, nocache;
    uint64_t n_prop, n_hit, n_other; /* forwards propagated / served from the cache; backward + jvp */
    float *dF;        /* N x dim: gradient w.r.t. F; zero outside the batch's rows */
    float *t1, *t2;   /* N x dim scratch (layers >= 2, >= 3) */
    uint32_t *ident;  /* N: rows[k] = k */
    uint32_t *cnt;    /* N: occurrences of the row in the batch */
    uint32_t *touched;
    uint64_t n_touched;
    float *jX, *jF;   /* N x dim each, allocated by the first jvp: its direction and its propagation */
} lgcn;

static int lg_prepare(til_backbone *bb, const til_batch *b, til_err *e)
{
    (void)b, (void)e;
    lgcn *m = bb->impl;
    bb->rows = m->ident;
    bb->n_rows = bb->n_param;
    return 0;
}

static int lg_forward(til_backbone *bb, const til_batch *b, int threads, til_err *e)
{
    (void)b, (void)e;
    lgcn *m = bb->impl;
    const size_t bytes = bb->n_param * (uint64_t)bb->dim * sizeof(float);
    int k = -1;
    if (!m->nocache) {
        /* the entry used last first: the usual hit; a changed param differs in its first rows */
        if (m->valid[m->cur] && !memcmp(m->Pc[m->cur], bb->param, bytes))
            k = m->cur;
        else if (m->valid[!m->cur] && !memcmp(m->Pc[!m->cur], bb->param, bytes))
            k = !m->cur;
    }
    if (k >= 0) {
        m->n_hit++;
    } else {
        k = m->nocache ? m->cur : !m->cur; /* replace the entry not used last */
        til_lightgcn_propagate(&m->g, m->layers, bb->param, m->Fc[k], m->t1, m->t2, bb->dim, threads);
        if (!m->nocache) {
            memcpy(m->Pc[k], bb->param, bytes);
            m->valid[k] = 1;
        }
        m->n_prop++;
    }
    m->cur = k;
    m->F = m->Fc[k];
    bb->U = m->F;
    bb->V = m->F + (uint64_t)bb->n_users * bb->dim;
    return 0;
}

typedef struct {
    til_backbone *bb;
    float *G;
    float reg_c;
    double *l2; /* per part */
} reg_job;

/* G[r] += reg_c * cnt[r] * e0[r] for the batch's rows; per-part 0.5 cnt |e0|^2 */
static void reg_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    reg_job *j = ctx;
    lgcn *m = j->bb->impl;
    int d = j->bb->dim;
    double s = 0;
    for (uint64_t t = lo; t < hi; t++) {
        uint64_t r = m->touched[t];
        const float *p = j->bb->param + r * d;
        float *g = j->G + r * d, c = j->reg_c * (float)m->cnt[r];
        double q = 0;
        for (int k = 0; k < d; k++) {
            g[k] += c * p[k];
            q += (double)p[k] * p[k];
        }
        s += 0.5 * m->cnt[r] * q;
    }
    j->l2[part] = s;
}

static void add_row(float *restrict dst, const float *restrict src, int d)
{
    for (int k = 0; k < d; k++)
        dst[k] += src[k];
}

static int lg_backward(til_backbone *bb, const til_batch *b, const float *dU, const float *dQi, const float *dQj,
                       float reg_c, float *G, double *l2, int threads, til_err *e)
{
    (void)e;
    lgcn *m = bb->impl;
    int d = bb->dim;
    uint64_t nu = bb->n_users;
    /* dF: scatter in triplet order (u, i, j) */
    for (uint64_t t = 0; t < b->n; t++) {
        uint64_t r3[3] = {b->u[t], nu + b->i[t], nu + b->j[t]};
        const float *s3[3] = {dU + t * d, dQi + t * d, dQj + t * d};
        for (int q = 0; q < 3; q++) {
            if (m->cnt[r3[q]]++ == 0)
                m->touched[m->n_touched++] = (uint32_t)r3[q];
            add_row(m->dF + r3[q] * d, s3[q], d);
        }
    }
    /* dE0 = sum_l A^l dF / (L + 1) (A symmetric) */
    m->n_other++;
    til_lightgcn_propagate(&m->g, m->layers, m->dF, G, m->t1, m->t2, d, threads);
    /* the L2 term on the batch's layer-0 rows, in touched order per part */
    double part_l2[256] = {0};
    int parts = threads > 256 ? 256 : threads;
    if (m->n_touched < 1024)
        parts = 1;
    reg_job rj = {bb, G, reg_c, part_l2};
    til_par_for(parts, m->n_touched, reg_part, &rj);
    double s = 0;
    for (int p = 0; p < parts; p++)
        s += part_l2[p];
    *l2 = s;
    /* leave dF and cnt zero for the next batch */
    for (uint64_t t = 0; t < m->n_touched; t++) {
        uint64_t r = m->touched[t];
        memset(m->dF + r * d, 0, (size_t)d * sizeof(float));
        m->cnt[r] = 0;
    }
    m->n_touched = 0;
    return 0;
}

/* JVP: the forward is linear in E0, so (dU; dV) += propagate(dE0), dE0 = D
 * scattered into an N x dim table (rows NULL: D is that table). Exact; whole
 * graph whatever `want` asks. Uses its own buffers and t1, t2 (scratch that
 * neither forward's F nor backward's dF/cnt depend on). */
static int lg_jvp(til_backbone *bb, const uint32_t *rows, uint64_t n_rows, const float *D, const til_batch *want,
                  float *dU, float *dV, int threads, til_err *e)
{
    (void)want;
    lgcn *m = bb->impl;
    uint64_t d = (uint64_t)bb->dim, N = bb->n_param, nu = bb->n_users;
    if (!m->jX && (!(m->jX = til_aligned_calloc(N * d, sizeof(float), e)) ||
                   !(m->jF = til_aligned_calloc(N * d, sizeof(float), e))))
        return -1;
    const float *X = D;
    uint64_t id = 0; /* rows the identity (graph backbones' prepare: every row in order): D is the table */
    if (rows && n_rows == N)
        while (id < N && rows[id] == id)
            id++;
    if (rows && !(n_rows == N && id == N)) {
        memset(m->jX, 0, N * d * sizeof(float));
        for (uint64_t k = 0; k < n_rows; k++)
            add_row(m->jX + (uint64_t)rows[k] * d, D + k * d, (int)d);
        X = m->jX;
    } else if (!rows && n_rows != N) {
        return til_seterr(e, "lightgcn jvp: %llu rows for %llu", (unsigned long long)n_rows, (unsigned long long)N);
    }
    til_lightgcn_propagate(&m->g, m->layers, X, m->jF, m->t1, m->t2, (int)d, threads);
    m->n_other++;
    for (uint64_t q = 0; q < nu * d; q++)
        dU[q] += m->jF[q];
    for (uint64_t q = nu * d; q < N * d; q++)
        dV[q - nu * d] += m->jF[q];
    return 0;
}

static int lg_meta(const til_backbone *bb, til_model *mo, til_err *e)
{
    const lgcn *m = bb->impl;
    return til_model_setf(mo, e, "layers", "%d", m->layers) ||
                   til_model_set(mo, "graph", "D^-1/2 A D^-1/2 of the training interactions; mean of layers 0..L", e)
               ? -1
               : 0;
}

static void lg_free(til_backbone *bb)
{
    lgcn *m = bb->impl;
    if (m && getenv("TIL_LGCN_COUNTS"))
        fprintf(stderr, "lightgcn: forwards %llu propagated, %llu cached; backward+jvp %llu\n",
                (unsigned long long)m->n_prop, (unsigned long long)m->n_hit, (unsigned long long)m->n_other);
    if (m) {
        til_graph_free(&m->g);
        for (int k = 0; k < 2; k++) {
            free(m->Fc[k]);
            free(m->Pc[k]);
        }
        free(m->dF);
        free(m->t1);
        free(m->t2);
        free(m->ident);
        free(m->cnt);
        free(m->touched);
        free(m->jX);
        free(m->jF);
        free(m);
    }
    free(bb->param);
}

static const til_backbone_ops lg_ops = {
    .name = "lightgcn", .prepare = lg_prepare, .forward = lg_forward, .backward = lg_backward, .free = lg_free,
    .jvp = lg_jvp, .meta = lg_meta};

int til_lightgcn_init(til_backbone *bb, const til_inter *train, int dim, int layers, int threads, til_err *e)
{
    (void)threads;
    memset(bb, 0, sizeof *bb);
    bb->ops = &lg_ops;
    bb->n_users = train->n_users;
    bb->n_items = train->n_items;
    bb->dim = dim;
    bb->n_param = (uint64_t)train->n_users + train->n_items;
    bb->rows_cap = bb->n_param;
    if (layers < 1 || layers > 16)
        return til_seterr(e, "lightgcn: layers %d out of range 1..16", layers);
    if (dim > 1024)
        return til_seterr(e, "lightgcn: dim %d > 1024", dim);
    if (bb->n_param > UINT32_MAX)
        return til_seterr(e, "lightgcn: too many nodes");
    lgcn *m = til_calloc(1, sizeof *m, e);
    bb->impl = m;
    if (!m)
        return -1;
    m->layers = layers;
    uint64_t N = bb->n_param, nd = N * (uint64_t)dim;
    bb->param = til_aligned_calloc(nd, sizeof(float), e);
    m->nocache = getenv("TIL_LIGHTGCN_NOCACHE") && *getenv("TIL_LIGHTGCN_NOCACHE") == '1';
    for (int k = 0; k < 2; k++)
        if (!(m->Fc[k] = til_aligned_calloc(nd, sizeof(float), e)) ||
            (!m->nocache && !(m->Pc[k] = til_aligned_calloc(nd, sizeof(float), e)))) {
            til_backbone_free(bb);
            return -1;
        }
    m->F = m->Fc[0];
    m->dF = til_aligned_calloc(nd, sizeof(float), e);
    m->ident = til_malloc(N, sizeof *m->ident, e);
    m->cnt = til_calloc(N, sizeof *m->cnt, e);
    m->touched = til_malloc(N, sizeof *m->touched, e);
    if (!bb->param || !m->F || !m->dF || !m->ident || !m->cnt || !m->touched ||
        (layers >= 2 && !(m->t1 = til_aligned_calloc(nd, sizeof(float), e))) ||
        (layers >= 3 && !(m->t2 = til_aligned_calloc(nd, sizeof(float), e))) || til_graph_bipartite(&m->g, train, e)) {
        til_backbone_free(bb);
        return -1;
    }
    for (uint64_t r = 0; r < N; r++)
        m->ident[r] = (uint32_t)r;
    bb->U = m->F;
    bb->V = m->F + (uint64_t)train->n_users * dim;
    return 0;
}

void til_lightgcn_counts(const struct til_backbone *bb, uint64_t *prop, uint64_t *hit, uint64_t *other)
{
    const lgcn *m = bb->impl;
    *prop = m->n_prop;
    *hit = m->n_hit;
    *other = m->n_other;
}
