/* til_mgccf: the similarity graphs and the Multi-GCCF backbone (maths in
 * til_mgccf.h).
 *
 * Layout of the per-row intermediates: the batch's distinct nodes ("slots",
 * in increasing node id: users, then items) each own SLOT_BUFS vectors of D
 * floats in m->X; forward fills A..S, backward DF..DS. */
#pragma GCC optimize("vect-cost-model=dynamic")
#include "til_mgccf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "til_backbone.h"
#include "til_model.h"
#include "til_par.h"
#include "til_sampler.h"
#include "til_train.h"

__extension__ typedef unsigned __int128 u128;

/* ------------------------------------------------------------------ similarity graphs */

void til_knn_free(til_knn *g)
{
    free(g->ptr);
    free(g->col);
    memset(g, 0, sizeof *g);
}

typedef struct {
    uint32_t id, c; /* candidate row, co-occurrences */
    uint64_t d;     /* its degree */
} cand;

/* a ranks before b: c_a / sqrt(d_a) > c_b / sqrt(d_b) (the row's own degree
 * cancels), exactly: c_a^2 d_b > c_b^2 d_a; ties to the smaller id */
static int cand_before(const cand *a, const cand *b)
{
    u128 x = (u128)a->c * a->c * b->d, y = (u128)b->c * b->c * a->d;
    return x > y || (x == y && a->id < b->id);
}

typedef struct {
    uint64_t n;
    const uint64_t *xptr, *tptr;
    const uint32_t *xidx, *tidx;
    int k;
    uint32_t **cnt, **touched; /* per part: n each */
    uint32_t *top;             /* n x k */
    uint32_t *n_top;           /* n */
} knn_job;

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void knn_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    knn_job *j = ctx;
    uint32_t *cnt = j->cnt[part], *touched = j->touched[part];
    cand best[64];
    for (uint64_t r = lo; r < hi; r++) {
        uint64_t nt = 0;
        for (uint64_t a = j->xptr[r]; a < j->xptr[r + 1]; a++) {
            uint32_t c = j->xidx[a];
            for (uint64_t b = j->tptr[c]; b < j->tptr[c + 1]; b++) {
                uint32_t r2 = j->tidx[b];
                if (r2 != r && cnt[r2]++ == 0)
                    touched[nt++] = r2;
            }
        }
        int m = 0;
        for (uint64_t t = 0; t < nt; t++) {
            uint32_t r2 = touched[t];
            cand x = {r2, cnt[r2], j->xptr[r2 + 1] - j->xptr[r2]};
            cnt[r2] = 0;
            if (m == j->k && !cand_before(&x, &best[m - 1]))
                continue;
            int p = m < j->k ? m++ : m - 1; /* drop the last when full */
            while (p > 0 && cand_before(&x, &best[p - 1])) {
                best[p] = best[p - 1];
                p--;
            }
            best[p] = x;
        }
        uint32_t *out = j->top + r * (uint64_t)j->k;
        for (int q = 0; q < m; q++)
            out[q] = best[q].id;
        qsort(out, (size_t)m, sizeof *out, cmp_u32);
        j->n_top[r] = (uint32_t)m;
    }
}

int til_mgccf_knn(til_knn *g, uint64_t n, const uint64_t *xptr, const uint32_t *xidx, const uint64_t *tptr,
                  const uint32_t *tidx, int k, int threads, til_err *e)
{
    memset(g, 0, sizeof *g);
    if (k < 1 || k > 64)
        return til_seterr(e, "mgccf: similarity neighbours k = %d out of range 1..64", k);
    if (n > UINT32_MAX)
        return til_seterr(e, "mgccf: too many rows");
    int parts = threads < 1 ? 1 : threads > 64 ? 64 : threads;
    if ((uint64_t)parts > n)
        parts = n ? (int)n : 1;
    knn_job j = {n, xptr, tptr, xidx, tidx, k, NULL, NULL, NULL, NULL};
    int rc = -1;
    j.cnt = til_calloc((size_t)parts, sizeof *j.cnt, e);
    j.touched = til_calloc((size_t)parts, sizeof *j.touched, e);
    j.top = til_malloc(n * (uint64_t)k + 1, sizeof *j.top, e);
    j.n_top = til_malloc(n + 1, sizeof *j.n_top, e);
    g->ptr = til_calloc(n + 1, sizeof *g->ptr, e);
    if (!j.cnt || !j.touched || !j.top || !j.n_top || !g->ptr)
        goto out;
    for (int p = 0; p < parts; p++)
        if (!(j.cnt[p] = til_calloc(n + 1, sizeof **j.cnt, e)) || !(j.touched[p] = til_malloc(n + 1, sizeof **j.touched, e)))
            goto out;
    til_par_for(parts, n, knn_part, &j);
    g->n = n;
    for (uint64_t r = 0; r < n; r++)
        g->ptr[r + 1] = g->ptr[r] + j.n_top[r];
    if (!(g->col = til_malloc(g->ptr[n] + 1, sizeof *g->col, e)))
        goto out;
    for (uint64_t r = 0; r < n; r++)
        memcpy(g->col + g->ptr[r], j.top + r * (uint64_t)k, j.n_top[r] * sizeof *g->col);
    rc = 0;
out:
    for (int p = 0; j.cnt && j.touched && p < parts; p++) {
        free(j.cnt[p]);
        free(j.touched[p]);
    }
    free(j.cnt);
    free(j.touched);
    free(j.top);
    free(j.n_top);
    if (rc)
        til_knn_free(g);
    return rc;
}

/* the transpose of g (n rows): for each r', the rows r with r' in S(r), increasing */
static int knn_transpose(til_knn *t, const til_knn *g, til_err *e)
{
    memset(t, 0, sizeof *t);
    uint64_t n = g->n, nnz = g->ptr[n];
    t->n = n;
    t->ptr = til_calloc(n + 1, sizeof *t->ptr, e);
    t->col = til_malloc(nnz + 1, sizeof *t->col, e);
    uint64_t *fill = til_malloc(n + 1, sizeof *fill, e);
    if (!t->ptr || !t->col || !fill) {
        free(fill);
        til_knn_free(t);
        return -1;
    }
    for (uint64_t a = 0; a < nnz; a++)
        t->ptr[g->col[a] + 1]++;
    for (uint64_t r = 0; r < n; r++)
        t->ptr[r + 1] += t->ptr[r];
    memcpy(fill, t->ptr, n * sizeof *fill);
    for (uint64_t r = 0; r < n; r++)
        for (uint64_t a = g->ptr[r]; a < g->ptr[r + 1]; a++)
            t->col[fill[g->col[a]]++] = (uint32_t)r;
    free(fill);
    return 0;
}

/* ------------------------------------------------------------------ the backbone */

enum { A, NN, H, B, Z, S, DF, GH, GN, GZ, GS, DA, DB, DS, SLOT_BUFS };
/* weight matrices within a side, in D-row units: Q (1), W (2: top, bottom), M (1), S (1) */
enum { WQ = 0, WT = 1, WB = 2, WM = 3, WS = 4, W_PER_SIDE = 5 };

typedef struct mgccf {
    int k;
    uint64_t N;           /* n_users + n_items */
    uint64_t *bp_ptr;     /* N + 1: bipartite neighbours, node ids (users: their items; items: their users) */
    uint32_t *bp_col;
    float *inv;           /* N: 1 / degree (0 for degree 0) */
    til_knn sim[2], simt[2]; /* user-user, item-item graphs (ids within the kind) and their transposes */
    float *F;             /* N x D: f */
    /* the batch */
    uint64_t cap;         /* slot capacity */
    int32_t *slot;        /* N: slot of a touched node, or -1 */
    uint32_t *cnt;        /* N: occurrences in the batch (L2) */
    uint32_t *trow;       /* touched nodes, increasing */
    uint64_t n_t, n_tu;   /* touched nodes, of which users */
    float *X;             /* cap x SLOT_BUFS x D */
    til_batch fwd;        /* the batch of the last forward (n = 0: none) */
    uint32_t *ident;      /* n_param: rows[k] = k */
    float *Wt;            /* 10 D x D: the weights transposed (backward's g W^T as a vecmat), per backward */
    /* jvp (allocated by its first call) */
    float *jD;            /* n_param x D: a row-list direction scattered */
    uint32_t *jmark, jcur; /* N: stamp of the nodes listed in jrow */
    uint32_t *jrow;       /* N: the nodes whose tangent is computed */
} mgccf;

static const float *weight(const til_backbone *bb, int side, int w)
{
    const mgccf *m = bb->impl;
    uint64_t D = (uint64_t)bb->dim;
    return bb->param + (m->N + (uint64_t)(side * W_PER_SIDE + w) * D) * D;
}

/* neighbours of node r in its similarity graph (node ids) */
static inline void sim_range(const mgccf *m, const til_knn *g, uint64_t nu, uint64_t r, uint64_t *lo, uint64_t *hi,
                             const uint32_t **col, uint32_t *off)
{
    int side = r >= nu;
    const til_knn *s = &g[side];
    uint64_t q = side ? r - nu : r;
    (void)m;
    *lo = s->ptr[q];
    *hi = s->ptr[q + 1];
    *col = s->col;
    *off = side ? (uint32_t)nu : 0;
}

/* D = 64 (the paper's size): y in four 16-float registers (gcc vector extension;
 * two or four narrower registers per vector on machines without AVX-512) for the
 * whole k loop; the loop below stores y back every k. Per element the same
 * products and sums in the same order, so bit-identical to it. */
typedef float v16f __attribute__((vector_size(64)));
static int vecmat_generic; /* TIL_MGCCF_GENERIC=1 at til_mgccf_init: the loop below for D = 64 too (tests) */
static inline void vecmat64(const float *restrict x, const float *restrict W, float *restrict y, int acc)
{
    v16f y0 = {0}, y1 = {0}, y2 = {0}, y3 = {0}, w0, w1, w2, w3;
    if (acc) {
        memcpy(&y0, y, sizeof y0);
        memcpy(&y1, y + 16, sizeof y1);
        memcpy(&y2, y + 32, sizeof y2);
        memcpy(&y3, y + 48, sizeof y3);
    }
    for (int k = 0; k < 64; k++) {
        const float *w = W + (uint64_t)k * 64;
        memcpy(&w0, w, sizeof w0);
        memcpy(&w1, w + 16, sizeof w1);
        memcpy(&w2, w + 32, sizeof w2);
        memcpy(&w3, w + 48, sizeof w3);
        float xk = x[k];
        y0 = y0 + xk * w0;
        y1 = y1 + xk * w1;
        y2 = y2 + xk * w2;
        y3 = y3 + xk * w3;
    }
    memcpy(y, &y0, sizeof y0);
    memcpy(y + 16, &y1, sizeof y1);
    memcpy(y + 32, &y2, sizeof y2);
    memcpy(y + 48, &y3, sizeof y3);
}

/* y[D] = sum over q in [lo, hi) of E[(col[q] + off) * D ..] (y = 0 for none), q increasing:
 * the neighbourhood sums, D = 64 in registers (bit-identical to the loop) */
static inline void rowsum(const float *restrict E, const uint32_t *restrict col, uint64_t lo, uint64_t hi, uint32_t off,
                          int D, float *restrict y)
{
    if (D == 64 && !vecmat_generic) {
        v16f y0 = {0}, y1 = {0}, y2 = {0}, y3 = {0}, x0, x1, x2, x3;
        for (uint64_t q = lo; q < hi; q++) {
            const float *x = E + (uint64_t)(col[q] + off) * 64;
            memcpy(&x0, x, sizeof x0);
            memcpy(&x1, x + 16, sizeof x1);
            memcpy(&x2, x + 32, sizeof x2);
            memcpy(&x3, x + 48, sizeof x3);
            y0 = y0 + x0;
            y1 = y1 + x1;
            y2 = y2 + x2;
            y3 = y3 + x3;
        }
        memcpy(y, &y0, sizeof y0);
        memcpy(y + 16, &y1, sizeof y1);
        memcpy(y + 32, &y2, sizeof y2);
        memcpy(y + 48, &y3, sizeof y3);
        return;
    }
    for (int k = 0; k < D; k++)
        y[k] = 0.0f;
    for (uint64_t q = lo; q < hi; q++) {
        const float *restrict x = E + (uint64_t)(col[q] + off) * D;
        for (int k = 0; k < D; k++)
            y[k] += x[k];
    }
}

/* y[dout] (=|+=) x[din] W (W: din x dout row-major): y_j = sum_k x_k W[k][j], k increasing */
static inline void vecmat(const float *restrict x, const float *restrict W, int din, int dout, float *restrict y,
                          int acc)
{
    if (din == 64 && dout == 64 && !vecmat_generic) {
        vecmat64(x, W, y, acc);
        return;
    }
    if (!acc)
        for (int j = 0; j < dout; j++)
            y[j] = 0.0f;
    for (int k = 0; k < din; k++) {
        const float *restrict w = W + (uint64_t)k * dout;
        float xk = x[k];
        for (int j = 0; j < dout; j++)
            y[j] += xk * w[j];
    }
}

/* the transpose of weight w of a side (filled by mg_backward): g W^T = vecmat(g, W^T),
 * y_k = sum_j g_j W[k][j], j increasing */
static const float *weight_t(const til_backbone *bb, int side, int w)
{
    const mgccf *m = bb->impl;
    uint64_t D = (uint64_t)bb->dim;
    return m->Wt + (uint64_t)(side * W_PER_SIDE + w) * D * D;
}

static inline void tanh_v(float *restrict v, int d)
{
    for (int k = 0; k < d; k++)
        v[k] = til_tanhf_fast(v[k]);
}

/* Forward of node r into o[A..S] (each D) and f (D):
 *   a = inv_r sum_{c in N(r)} e_c;  n = tanh(a Q);  h = tanh(e W[0..D) + n W[D..2D))
 *   b = sum_{c in S(r)} e_c;        z = tanh(b M);  s = tanh(e S);  f = h + z + s */
static void fwd_row(const til_backbone *bb, uint64_t r, float *const o[6], float *restrict f)
{
    const mgccf *m = bb->impl;
    int D = bb->dim, side = r >= bb->n_users;
    const float *E = bb->param, *er = E + r * D;
    float *a = o[0], *n = o[1], *h = o[2], *b = o[3], *z = o[4], *s = o[5];
    rowsum(E, m->bp_col, m->bp_ptr[r], m->bp_ptr[r + 1], 0, D, a);
    float inv = m->inv[r];
    for (int k = 0; k < D; k++)
        a[k] *= inv;
    uint64_t lo, hi;
    const uint32_t *col;
    uint32_t off;
    sim_range(m, m->sim, bb->n_users, r, &lo, &hi, &col, &off);
    rowsum(E, col, lo, hi, off, D, b);
    vecmat(a, weight(bb, side, WQ), D, D, n, 0);
    tanh_v(n, D);
    vecmat(er, weight(bb, side, WT), D, D, h, 0);
    vecmat(n, weight(bb, side, WB), D, D, h, 1);
    tanh_v(h, D);
    vecmat(b, weight(bb, side, WM), D, D, z, 0);
    tanh_v(z, D);
    vecmat(er, weight(bb, side, WS), D, D, s, 0);
    tanh_v(s, D);
    for (int k = 0; k < D; k++)
        f[k] = (h[k] + z[k]) + s[k];
}

static inline float *slot_buf(const mgccf *m, int D, uint64_t t, int which)
{
    return m->X + (t * SLOT_BUFS + (uint64_t)which) * D;
}

typedef struct {
    til_backbone *bb;
    float reg_c;
    float *G;
} job;

static void fwd_slots_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    (void)part;
    til_backbone *bb = ((job *)ctx)->bb;
    mgccf *m = bb->impl;
    int D = bb->dim;
    for (uint64_t t = lo; t < hi; t++) {
        float *o[6];
        for (int q = 0; q < 6; q++)
            o[q] = slot_buf(m, D, t, A + q);
        uint64_t r = m->trow[t];
        fwd_row(bb, r, o, m->F + r * D);
    }
}

static void fwd_all_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    (void)part;
    til_backbone *bb = ((job *)ctx)->bb;
    mgccf *m = bb->impl;
    int D = bb->dim;
    float buf[6 * 1024];
    float *o[6];
    for (int q = 0; q < 6; q++)
        o[q] = buf + q * D;
    for (uint64_t r = lo; r < hi; r++)
        fwd_row(bb, r, o, m->F + r * D);
}

/* ------------------------------------------------------------------ jvp */

typedef struct {
    til_backbone *bb;
    const float *Dir; /* n_param x D: every row's direction */
    const uint32_t *nodes;
    float *dU, *dV;
} jvp_job;

/* y[k] = (1 - t[k]^2) y[k]: through tanh (t = tanh(.)) */
static inline void dtanh_v(float *restrict y, const float *restrict t, int d)
{
    for (int k = 0; k < d; k++)
        y[k] *= 1.0f - t[k] * t[k];
}

/* Tangent of node r's f along Dir (first order), the forward recomputed from
 * param (fwd_row) and each product differentiated (x W)' = x' W + x W':
 *   da = inv_r sum_{c in N(r)} De_c;  dn = (da Q + a dQ) (1 - n^2)
 *   dh = (De_r W[0..D) + e dW[0..D) + dn W[D..2D) + n dW[D..2D)) (1 - h^2)
 *   db = sum_{c in S(r)} De_c;        dz = (db M + b dM) (1 - z^2)
 *   ds = (De_r S + e dS) (1 - s^2);   df = dh + dz + ds   (added into dU/dV) */
static void jvp_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    (void)part;
    jvp_job *j = ctx;
    til_backbone *bb = j->bb;
    const mgccf *m = bb->impl;
    int D = bb->dim;
    uint64_t nu = bb->n_users, DD = (uint64_t)D * D;
    float buf[13 * 1024];
    float *o[6];
    for (int q = 0; q < 6; q++)
        o[q] = buf + q * D;
    float *f = buf + 6 * D, *da = f + D, *dn = da + D, *dh = dn + D, *db = dh + D, *dz = db + D, *ds = dz + D;
    const float *a = o[0], *n = o[1], *h = o[2], *b = o[3], *z = o[4], *sv = o[5];
    for (uint64_t t = lo; t < hi; t++) {
        uint64_t r = j->nodes ? j->nodes[t] : t;
        int side = r >= nu;
        fwd_row(bb, r, o, f);
        const float *er = bb->param + r * D, *De = j->Dir + r * D;
        const float *dW = j->Dir + (m->N + (uint64_t)side * W_PER_SIDE * D) * D; /* the side's weight directions */
        rowsum(j->Dir, m->bp_col, m->bp_ptr[r], m->bp_ptr[r + 1], 0, D, da);
        float inv = m->inv[r];
        for (int k = 0; k < D; k++)
            da[k] *= inv;
        uint64_t slo, shi;
        const uint32_t *col;
        uint32_t off;
        sim_range(m, m->sim, nu, r, &slo, &shi, &col, &off);
        rowsum(j->Dir, col, slo, shi, off, D, db);
        vecmat(da, weight(bb, side, WQ), D, D, dn, 0);
        vecmat(a, dW + WQ * DD, D, D, dn, 1);
        dtanh_v(dn, n, D);
        vecmat(De, weight(bb, side, WT), D, D, dh, 0);
        vecmat(er, dW + WT * DD, D, D, dh, 1);
        vecmat(dn, weight(bb, side, WB), D, D, dh, 1);
        vecmat(n, dW + WB * DD, D, D, dh, 1);
        dtanh_v(dh, h, D);
        vecmat(db, weight(bb, side, WM), D, D, dz, 0);
        vecmat(b, dW + WM * DD, D, D, dz, 1);
        dtanh_v(dz, z, D);
        vecmat(De, weight(bb, side, WS), D, D, ds, 0);
        vecmat(er, dW + WS * DD, D, D, ds, 1);
        dtanh_v(ds, sv, D);
        float *dst = side ? j->dV + (r - nu) * D : j->dU + r * D;
        for (int k = 0; k < D; k++)
            dst[k] += dh[k] + dz[k] + ds[k];
    }
}

/* JVP at the current param: the tangent of f for want's distinct nodes (want
 * NULL: every node), rows in parallel, each independent (thread-count free).
 * Needs no forward state and leaves it alone (own buffers). */
static int mg_jvp(til_backbone *bb, const uint32_t *rows, uint64_t n_rows, const float *Dir, const til_batch *want,
                  float *dU, float *dV, int threads, til_err *e)
{
    mgccf *m = bb->impl;
    uint64_t D = (uint64_t)bb->dim, nu = bb->n_users, N = m->N;
    if (!m->jD && (!(m->jD = til_aligned_calloc(bb->n_param * D, sizeof(float), e)) ||
                   !(m->jmark = til_calloc(N, sizeof *m->jmark, e)) || !(m->jrow = til_malloc(N, sizeof *m->jrow, e))))
        return -1;
    const float *full = Dir;
    if (rows && !(rows == m->ident && n_rows == bb->n_param)) {
        memset(m->jD, 0, bb->n_param * D * sizeof(float));
        for (uint64_t k = 0; k < n_rows; k++)
            for (uint64_t c = 0; c < D; c++)
                m->jD[(uint64_t)rows[k] * D + c] += Dir[k * D + c];
        full = m->jD;
    } else if (!rows && n_rows != bb->n_param) {
        return til_seterr(e, "mgccf jvp: %llu rows for %llu", (unsigned long long)n_rows,
                          (unsigned long long)bb->n_param);
    }
    jvp_job j = {bb, full, NULL, dU, dV};
    uint64_t nn = N;
    if (want) {
        if (++m->jcur == 0) {
            memset(m->jmark, 0, N * sizeof *m->jmark);
            m->jcur = 1;
        }
        nn = 0;
        for (uint64_t t = 0; t < want->n; t++) {
            uint64_t r3[3] = {want->u[t], nu + want->i[t], nu + want->j[t]};
            for (int q = 0; q < 3; q++)
                if (m->jmark[r3[q]] != m->jcur) {
                    m->jmark[r3[q]] = m->jcur;
                    m->jrow[nn++] = (uint32_t)r3[q];
                }
        }
        j.nodes = m->jrow;
    }
    til_par_for(threads, nn, jvp_part, &j);
    return 0;
}

static int mg_prepare(til_backbone *bb, const til_batch *b, til_err *e)
{
    (void)b, (void)e;
    mgccf *m = bb->impl;
    bb->rows = m->ident;
    bb->n_rows = bb->n_param;
    return 0;
}

static void clear_batch(mgccf *m)
{
    for (uint64_t t = 0; t < m->n_t; t++) {
        m->slot[m->trow[t]] = -1;
        m->cnt[m->trow[t]] = 0;
    }
    m->n_t = m->n_tu = 0;
    memset(&m->fwd, 0, sizeof m->fwd);
}

static int mg_forward(til_backbone *bb, const til_batch *b, int threads, til_err *e)
{
    mgccf *m = bb->impl;
    uint64_t nu = bb->n_users;
    clear_batch(m);
    job j = {bb, 0, NULL};
    if (!b) {
        til_par_for(threads, m->N, fwd_all_part, &j);
        return 0;
    }
    /* the batch's distinct nodes, in increasing id (users, then items) */
    for (uint64_t t = 0; t < b->n; t++) {
        uint64_t r3[3] = {b->u[t], nu + b->i[t], nu + b->j[t]};
        for (int q = 0; q < 3; q++)
            if (m->cnt[r3[q]]++ == 0) {
                if (m->n_t == m->cap) {
                    clear_batch(m);
                    return til_seterr(e, "mgccf: batch touches more than %llu rows", (unsigned long long)m->cap);
                }
                m->trow[m->n_t++] = (uint32_t)r3[q];
            }
    }
    qsort(m->trow, m->n_t, sizeof *m->trow, cmp_u32);
    for (uint64_t t = 0; t < m->n_t; t++) {
        m->slot[m->trow[t]] = (int32_t)t;
        if (m->trow[t] < nu)
            m->n_tu = t + 1;
    }
    til_par_for(threads, m->n_t, fwd_slots_part, &j);
    m->fwd = *b;
    return 0;
}

/* Backward of slot t (node r) from dF:
 *   gh = dF (1 - h^2), gz = dF (1 - z^2), gs = dF (1 - s^2)
 *   gn = (gh W[D..2D)^T) (1 - n^2)
 *   DA = inv_r (gn Q^T)     (each bipartite neighbour c of r gets DA: de_c += DA)
 *   DB = gz M^T             (each c in S(r) gets DB)
 *   DS = gh W[0..D)^T + gs S^T   (de_r) */
static void bwd_slots_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    (void)part;
    til_backbone *bb = ((job *)ctx)->bb;
    mgccf *m = bb->impl;
    int D = bb->dim;
    for (uint64_t t = lo; t < hi; t++) {
        uint64_t r = m->trow[t];
        int side = r >= bb->n_users;
        const float *dF = slot_buf(m, D, t, DF), *n = slot_buf(m, D, t, NN), *h = slot_buf(m, D, t, H),
                    *z = slot_buf(m, D, t, Z), *s = slot_buf(m, D, t, S);
        float *gh = slot_buf(m, D, t, GH), *gn = slot_buf(m, D, t, GN), *gz = slot_buf(m, D, t, GZ),
              *gs = slot_buf(m, D, t, GS), *dA = slot_buf(m, D, t, DA), *dB = slot_buf(m, D, t, DB),
              *dS = slot_buf(m, D, t, DS);
        for (int k = 0; k < D; k++) {
            gh[k] = dF[k] * (1.0f - h[k] * h[k]);
            gz[k] = dF[k] * (1.0f - z[k] * z[k]);
            gs[k] = dF[k] * (1.0f - s[k] * s[k]);
        }
        vecmat(gh, weight_t(bb, side, WB), D, D, gn, 0);
        for (int k = 0; k < D; k++)
            gn[k] *= 1.0f - n[k] * n[k];
        vecmat(gn, weight_t(bb, side, WQ), D, D, dA, 0);
        float inv = m->inv[r];
        for (int k = 0; k < D; k++)
            dA[k] *= inv;
        vecmat(gz, weight_t(bb, side, WM), D, D, dB, 0);
        vecmat(gh, weight_t(bb, side, WT), D, D, dS, 0);
        vecmat(gs, weight_t(bb, side, WS), D, D, dS, 1);
    }
}

static inline void add_row(float *restrict dst, const float *restrict src, int d)
{
    for (int k = 0; k < d; k++)
        dst[k] += src[k];
}

/* G[r] (embedding row r, every node) = DS[r] + sum_{c in N(r)} DA[c] + sum_{c: r in S(c)} DB[c]
 *   + reg_c cnt[r] e_r      (terms of untouched nodes are zero and skipped) */
static void gather_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    (void)part;
    job *j = ctx;
    til_backbone *bb = j->bb;
    mgccf *m = bb->impl;
    int D = bb->dim;
    for (uint64_t r = lo; r < hi; r++) {
        float *restrict g = j->G + r * D;
        for (int k = 0; k < D; k++)
            g[k] = 0.0f;
        if (m->slot[r] >= 0)
            add_row(g, slot_buf(m, D, (uint64_t)m->slot[r], DS), D);
        for (uint64_t q = m->bp_ptr[r]; q < m->bp_ptr[r + 1]; q++) {
            int32_t sc = m->slot[m->bp_col[q]];
            if (sc >= 0)
                add_row(g, slot_buf(m, D, (uint64_t)sc, DA), D);
        }
        uint64_t slo, shi;
        const uint32_t *col;
        uint32_t off;
        sim_range(m, m->simt, bb->n_users, r, &slo, &shi, &col, &off);
        for (uint64_t q = slo; q < shi; q++) {
            int32_t sc = m->slot[col[q] + off];
            if (sc >= 0)
                add_row(g, slot_buf(m, D, (uint64_t)sc, DB), D);
        }
        if (m->cnt[r]) {
            const float *p = bb->param + r * D;
            float c = j->reg_c * (float)m->cnt[r];
            for (int k = 0; k < D; k++)
                g[k] += c * p[k];
        }
    }
}

/* Weight gradients, in blocks of WBLK rows of one D x D matrix (10 ceil(D / WBLK) blocks):
 *   dQ = sum_t a_t^T gn_t;  dW[0..D) = sum_t e_t^T gh_t;  dW[D..2D) = sum_t n_t^T gh_t
 *   dM = sum_t b_t^T gz_t;  dS = sum_t e_t^T gs_t
 * over the side's touched slots t in increasing node id. */
#define WBLK 16
static void wgrad_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    (void)part;
    job *j = ctx;
    til_backbone *bb = j->bb;
    mgccf *m = bb->impl;
    int D = bb->dim, nb = (D + WBLK - 1) / WBLK;
    static const int xbuf[W_PER_SIDE] = {A, -1, NN, B, -1}, gbuf[W_PER_SIDE] = {GN, GH, GH, GZ, GS};
    float acc[WBLK * 1024];
    for (uint64_t blk = lo; blk < hi; blk++) {
        int mat = (int)(blk / (uint64_t)nb), side = mat / W_PER_SIDE, w = mat % W_PER_SIDE;
        int k0 = (int)(blk % (uint64_t)nb) * WBLK, kn = D - k0 < WBLK ? D - k0 : WBLK;
        uint64_t t0 = side ? m->n_tu : 0, t1 = side ? m->n_t : m->n_tu;
        if (D == 64 && kn % 4 == 0 && !vecmat_generic) {
            /* four rows of the block at a time, their 4 x 64 sums in registers (same order: bit-identical) */
            for (int k4 = 0; k4 < kn; k4 += 4) {
                v16f s00 = {0}, s01 = {0}, s02 = {0}, s03 = {0}, s10 = {0}, s11 = {0}, s12 = {0}, s13 = {0};
                v16f s20 = {0}, s21 = {0}, s22 = {0}, s23 = {0}, s30 = {0}, s31 = {0}, s32 = {0}, s33 = {0};
                for (uint64_t t = t0; t < t1; t++) {
                    const float *x = xbuf[w] >= 0 ? slot_buf(m, D, t, xbuf[w]) : bb->param + (uint64_t)m->trow[t] * D;
                    const float *g = slot_buf(m, D, t, gbuf[w]);
                    v16f g0, g1, g2, g3;
                    memcpy(&g0, g, sizeof g0);
                    memcpy(&g1, g + 16, sizeof g1);
                    memcpy(&g2, g + 32, sizeof g2);
                    memcpy(&g3, g + 48, sizeof g3);
                    float x0 = x[k0 + k4], x1 = x[k0 + k4 + 1], x2 = x[k0 + k4 + 2], x3 = x[k0 + k4 + 3];
                    s00 = s00 + x0 * g0, s01 = s01 + x0 * g1, s02 = s02 + x0 * g2, s03 = s03 + x0 * g3;
                    s10 = s10 + x1 * g0, s11 = s11 + x1 * g1, s12 = s12 + x1 * g2, s13 = s13 + x1 * g3;
                    s20 = s20 + x2 * g0, s21 = s21 + x2 * g1, s22 = s22 + x2 * g2, s23 = s23 + x2 * g3;
                    s30 = s30 + x3 * g0, s31 = s31 + x3 * g1, s32 = s32 + x3 * g2, s33 = s33 + x3 * g3;
                }
#define WG_PUT(r, c, v) memcpy(acc + (k4 + (r)) * 64 + (c) * 16, &(v), sizeof(v16f))
                WG_PUT(0, 0, s00), WG_PUT(0, 1, s01), WG_PUT(0, 2, s02), WG_PUT(0, 3, s03);
                WG_PUT(1, 0, s10), WG_PUT(1, 1, s11), WG_PUT(1, 2, s12), WG_PUT(1, 3, s13);
                WG_PUT(2, 0, s20), WG_PUT(2, 1, s21), WG_PUT(2, 2, s22), WG_PUT(2, 3, s23);
                WG_PUT(3, 0, s30), WG_PUT(3, 1, s31), WG_PUT(3, 2, s32), WG_PUT(3, 3, s33);
#undef WG_PUT
            }
            float *dst = j->G + (m->N + (uint64_t)mat * D + (uint64_t)k0) * D;
            memcpy(dst, acc, (size_t)kn * D * sizeof(float));
            continue;
        }
        memset(acc, 0, (size_t)kn * D * sizeof(float));
        for (uint64_t t = t0; t < t1; t++) {
            const float *x = xbuf[w] >= 0 ? slot_buf(m, D, t, xbuf[w]) : bb->param + (uint64_t)m->trow[t] * D;
            const float *restrict g = slot_buf(m, D, t, gbuf[w]);
            for (int kk = 0; kk < kn; kk++) {
                float xk = x[k0 + kk];
                float *restrict ac = acc + kk * D;
                for (int q = 0; q < D; q++)
                    ac[q] += xk * g[q];
            }
        }
        float *dst = j->G + (m->N + (uint64_t)mat * D + (uint64_t)k0) * D;
        memcpy(dst, acc, (size_t)kn * D * sizeof(float));
    }
}

static int mg_backward(til_backbone *bb, const til_batch *b, const float *dU, const float *dQi, const float *dQj,
                       float reg_c, float *G, double *l2, int threads, til_err *e)
{
    mgccf *m = bb->impl;
    int D = bb->dim;
    uint64_t nu = bb->n_users;
    if (!b || !m->fwd.n || b->n != m->fwd.n || b->u != m->fwd.u || b->i != m->fwd.i || b->j != m->fwd.j)
        return til_seterr(e, "mgccf: backward needs forward of the same batch first");
    /* dF per slot: scattered in triplet order (u, i, j) */
    for (uint64_t t = 0; t < m->n_t; t++)
        memset(slot_buf(m, D, t, DF), 0, (size_t)D * sizeof(float));
    for (uint64_t t = 0; t < b->n; t++) {
        uint64_t r3[3] = {b->u[t], nu + b->i[t], nu + b->j[t]};
        const float *s3[3] = {dU + t * D, dQi + t * D, dQj + t * D};
        for (int q = 0; q < 3; q++)
            add_row(slot_buf(m, D, (uint64_t)m->slot[r3[q]], DF), s3[q], D);
    }
    for (int w = 0; w < 2 * W_PER_SIDE; w++) {
        const float *W = weight(bb, w / W_PER_SIDE, w % W_PER_SIDE);
        float *T = m->Wt + (uint64_t)w * D * D;
        for (int k = 0; k < D; k++)
            for (int q = 0; q < D; q++)
                T[(uint64_t)q * D + k] = W[(uint64_t)k * D + q];
    }
    job j = {bb, reg_c, G};
    til_par_for(threads, m->n_t, bwd_slots_part, &j);
    til_par_for(threads, m->N, gather_part, &j);
    til_par_for(threads, (uint64_t)2 * W_PER_SIDE * ((D + WBLK - 1) / WBLK), wgrad_part, &j);
    double s = 0;
    for (uint64_t t = 0; t < m->n_t; t++) {
        const float *p = bb->param + (uint64_t)m->trow[t] * D;
        double q = 0;
        for (int k = 0; k < D; k++)
            q += (double)p[k] * p[k];
        s += 0.5 * m->cnt[m->trow[t]] * q;
    }
    *l2 = s;
    return 0;
}

static void mg_init(til_backbone *bb, uint64_t seed)
{
    mgccf *m = bb->impl;
    uint64_t D = (uint64_t)bb->dim;
    float *w0 = bb->param + m->N * D;
    for (int side = 0; side < 2; side++) {
        float *w = w0 + (uint64_t)side * W_PER_SIDE * D * D;
        uint64_t s0 = 2 + 4 * (uint64_t)side;
        til_init_xavier(w, D, (int)D, seed, til_stream(TIL_STREAM_INIT, 0, s0));                     /* Q */
        til_init_xavier(w + D * D, 2 * D, (int)D, seed, til_stream(TIL_STREAM_INIT, 0, s0 + 1));     /* W */
        til_init_xavier(w + 3 * D * D, D, (int)D, seed, til_stream(TIL_STREAM_INIT, 0, s0 + 2));     /* M */
        til_init_xavier(w + 4 * D * D, D, (int)D, seed, til_stream(TIL_STREAM_INIT, 0, s0 + 3));     /* S */
    }
}

static int mg_meta(const til_backbone *bb, til_model *mo, til_err *e)
{
    const mgccf *m = bb->impl;
    return til_model_set(mo, "layers", "1", e) || til_model_setf(mo, e, "mgccf_k", "%d", m->k) ||
                   til_model_set(mo, "mgccf",
                                 "f = tanh([e;tanh(mean_N e Q)] W) + tanh(sum_topk-cosine e M) + tanh(e S); "
                                 "full neighbourhoods, fusion sum",
                                 e)
               ? -1
               : 0;
}

static int mg_export(const til_backbone *bb, til_model *mo, til_err *e)
{
    (void)bb;
    return til_model_set(mo, "scorer", "dot", e) ? -1 : 0;
}

static void mg_free(til_backbone *bb)
{
    mgccf *m = bb->impl;
    if (m) {
        free(m->bp_ptr);
        free(m->bp_col);
        free(m->inv);
        for (int q = 0; q < 2; q++) {
            til_knn_free(&m->sim[q]);
            til_knn_free(&m->simt[q]);
        }
        free(m->F);
        free(m->slot);
        free(m->cnt);
        free(m->trow);
        free(m->X);
        free(m->ident);
        free(m->Wt);
        free(m->jD);
        free(m->jmark);
        free(m->jrow);
        free(m);
    }
    free(bb->param);
}

static const til_backbone_ops mg_ops = {.name = "mgccf",
                                        .prepare = mg_prepare,
                                        .forward = mg_forward,
                                        .backward = mg_backward,
                                        .free = mg_free,
                                        .jvp = mg_jvp,
                                        .init = mg_init,
                                        .meta = mg_meta,
                                        .export_model = mg_export};

const til_knn *til_mgccf_user_graph(const til_backbone *bb)
{
    return &((const mgccf *)bb->impl)->sim[0];
}

const til_knn *til_mgccf_item_graph(const til_backbone *bb)
{
    return &((const mgccf *)bb->impl)->sim[1];
}

/* bipartite CSR over node ids and the item -> users transpose (ids within kinds) */
static int build_graphs(mgccf *m, const til_inter *t, int threads, til_err *e)
{
    uint64_t nu = t->n_users, ni = t->n_items, nnz = t->nnz, N = nu + ni;
    uint64_t *iptr = til_calloc(ni + 1, sizeof *iptr, e), *fill = til_malloc(ni + 1, sizeof *fill, e);
    uint32_t *iusers = til_malloc(nnz + 1, sizeof *iusers, e);
    m->bp_ptr = til_calloc(N + 1, sizeof *m->bp_ptr, e);
    m->bp_col = til_malloc(2 * nnz + 1, sizeof *m->bp_col, e);
    m->inv = til_malloc(N, sizeof *m->inv, e);
    int rc = -1;
    if (!iptr || !fill || !iusers || !m->bp_ptr || !m->bp_col || !m->inv)
        goto out;
    for (uint64_t k = 0; k < nnz; k++)
        iptr[t->items[k] + 1]++;
    for (uint64_t i = 0; i < ni; i++)
        iptr[i + 1] += iptr[i];
    memcpy(fill, iptr, ni * sizeof *fill);
    for (uint64_t u = 0; u < nu; u++)
        for (uint64_t k = t->indptr[u]; k < t->indptr[u + 1]; k++)
            iusers[fill[t->items[k]]++] = (uint32_t)u;
    for (uint64_t u = 0; u < nu; u++)
        m->bp_ptr[u + 1] = m->bp_ptr[u] + (t->indptr[u + 1] - t->indptr[u]);
    for (uint64_t i = 0; i < ni; i++)
        m->bp_ptr[nu + i + 1] = m->bp_ptr[nu + i] + (iptr[i + 1] - iptr[i]);
    for (uint64_t u = 0; u < nu; u++)
        for (uint64_t k = t->indptr[u]; k < t->indptr[u + 1]; k++)
            m->bp_col[m->bp_ptr[u] + k - t->indptr[u]] = (uint32_t)(nu + t->items[k]);
    memcpy(m->bp_col + m->bp_ptr[nu], iusers, nnz * sizeof *iusers);
    for (uint64_t r = 0; r < N; r++) {
        uint64_t d = m->bp_ptr[r + 1] - m->bp_ptr[r];
        m->inv[r] = d ? (float)(1.0 / (double)d) : 0.0f;
    }
    if (til_mgccf_knn(&m->sim[0], nu, t->indptr, t->items, iptr, iusers, m->k, threads, e) ||
        til_mgccf_knn(&m->sim[1], ni, iptr, iusers, t->indptr, t->items, m->k, threads, e) ||
        knn_transpose(&m->simt[0], &m->sim[0], e) || knn_transpose(&m->simt[1], &m->sim[1], e))
        goto out;
    rc = 0;
out:
    free(iptr);
    free(fill);
    free(iusers);
    return rc;
}

int til_mgccf_init(til_backbone *bb, const til_inter *train, int dim, int k, uint64_t batch_cap, int threads,
                   til_err *e)
{
    memset(bb, 0, sizeof *bb);
    bb->ops = &mg_ops;
    const char *gen = getenv("TIL_MGCCF_GENERIC");
    vecmat_generic = gen && *gen == '1';
    bb->n_users = train->n_users;
    bb->n_items = train->n_items;
    bb->dim = dim;
    uint64_t N = (uint64_t)train->n_users + train->n_items, D = (uint64_t)dim;
    if (dim < 1 || dim > 1024)
        return til_seterr(e, "mgccf: dim %d out of range 1..1024", dim);
    if (N + 10 * D > UINT32_MAX || N > INT32_MAX)
        return til_seterr(e, "mgccf: too many nodes");
    if (batch_cap == 0)
        return til_seterr(e, "mgccf: batch capacity 0");
    mgccf *m = til_calloc(1, sizeof *m, e);
    bb->impl = m;
    if (!m)
        return -1;
    m->k = k;
    m->N = N;
    bb->n_param = N + 10 * D;
    bb->rows_cap = bb->n_param;
    m->cap = TIL_MIN(3 * batch_cap, N);
    bb->param = til_aligned_calloc(bb->n_param * D, sizeof(float), e);
    m->F = til_aligned_calloc(N * D, sizeof(float), e);
    m->slot = til_malloc(N, sizeof *m->slot, e);
    m->cnt = til_calloc(N, sizeof *m->cnt, e);
    m->trow = til_malloc(m->cap + 1, sizeof *m->trow, e);
    m->X = til_aligned_calloc(m->cap * SLOT_BUFS * D, sizeof(float), e);
    m->ident = til_malloc(bb->n_param, sizeof *m->ident, e);
    m->Wt = til_aligned_calloc(10 * D * D, sizeof(float), e);
    if (!bb->param || !m->F || !m->slot || !m->cnt || !m->trow || !m->X || !m->ident || !m->Wt ||
        build_graphs(m, train, threads, e)) {
        til_backbone_free(bb);
        return -1;
    }
    for (uint64_t r = 0; r < N; r++)
        m->slot[r] = -1;
    for (uint64_t r = 0; r < bb->n_param; r++)
        m->ident[r] = (uint32_t)r;
    bb->U = m->F;
    bb->V = m->F + (uint64_t)train->n_users * D;
    return 0;
}
