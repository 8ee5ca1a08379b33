/* til_cuda_train: MF-BPR training steps on the device (til_cuda.h).
 *
 * Per batch (n triplets): the host builds the batch's unique rows (users,
 * then items offset by n_users, first-occurrence order) and each row's
 * occurrences in triplet order, as til_backbone's MF prepare does, and sends
 * them with the triplets in one copy; then
 *   k_bpr       scores, BPR loss and dL/ds per triplet (til_device.h)
 *   k_row_grad  G[k] = sum over the occurrences of rows[k], in triplet order,
 *               of (dL/d(row) of that triplet + reg_c * row): the CPU order,
 *               so no atomics and the same bits on every run
 *   k_loss      the batch loss: mean BPR + reg * sum of 0.5 n_occ |row|^2 / n,
 *               fixed-shape tree sums in double
 *   k_adam_*    Adam over every row (dense: rows without gradient get g = 0,
 *               PyTorch semantics) or over the batch's rows (lazy-adam).
 * The host reads one double back per batch (the loss). */
#include <stdlib.h>
#include <string.h>

#include "til_cuda_common.cuh" /* first: makes the C11 headers C++-safe */

extern "C" {
#include "til_adam.h"
#include "til_backbone.h"
#include "til_device.h"
#include "til_train.h"
}

/* ------------------------------------------------------------------ kernels */

/* k_bpr: thread b < n, one triplet.
 *   U [n_users x d], V [n_items x d], u, i, j [n]
 *   -> s_pos, s_neg, loss, g [n]:  s_pos = U[u].V[i], s_neg = U[u].V[j],
 *      loss = softplus(s_neg - s_pos), g = dL/ds_pos = -sigmoid(s_neg - s_pos) * scale (dL/ds_neg = -g) */
__global__ void k_bpr(const float *__restrict__ U, const float *__restrict__ V, int d, const uint32_t *__restrict__ u,
                      const uint32_t *__restrict__ i, const uint32_t *__restrict__ j, uint64_t n, float scale,
                      float *s_pos, float *s_neg, float *loss, float *g)
{
    uint64_t b = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (b >= n)
        return;
    const float *pu = U + (uint64_t)u[b] * d;
    float sp = til_dot_hd(pu, V + (uint64_t)i[b] * d, d);
    float sn = til_dot_hd(pu, V + (uint64_t)j[b] * d, d);
    s_pos[b] = sp;
    s_neg[b] = sn;
    til_bpr_hd(sp, sn, 1.0f, scale, &loss[b], &g[b]);
}

/* k_row_grad: block k < n_rows (one unique row), thread q < d (blockDim >= d).
 *   P [n_param x d] (users then items), u, i, j, g [n], rows [n_rows],
 *   ptr [n_rows + 1], occ [3n] ((b << 2) | kind: 0 user, 1 positive, 2 negative)
 *   -> G [n_rows x d]:  G[k][q] = sum_o (src_o[q] + reg_c * P[rows[k]][q]), o in triplet order,
 *        src = g V[i] - g V[j] (user), g U[u] (positive), -g U[u] (negative)
 *   -> l2 [n_rows]:  0.5 * n_occ * |P[rows[k]]|^2 (double, summed over q in order) */
__global__ void k_row_grad(const float *__restrict__ P, uint32_t n_users, int d, const uint32_t *__restrict__ u,
                           const uint32_t *__restrict__ i, const uint32_t *__restrict__ j,
                           const float *__restrict__ g, const uint32_t *__restrict__ rows,
                           const uint32_t *__restrict__ ptr, const uint32_t *__restrict__ occ, float reg_c, float *G,
                           double *l2)
{
    uint32_t k = blockIdx.x;
    int q = threadIdx.x;
    const float *p = P + (uint64_t)rows[k] * d;
    const float *V = P + (uint64_t)n_users * d;
    uint32_t a = ptr[k], z = ptr[k + 1];
    if (q < d) {
        float acc = 0.0f, pq = p[q];
        for (uint32_t o = a; o < z; o++) {
            uint32_t b = occ[o] >> 2, kind = occ[o] & 3;
            float gp = g[b], gn = -gp, src;
            if (kind == 0)
                src = gp * V[(uint64_t)i[b] * d + q] + gn * V[(uint64_t)j[b] * d + q]; /* dU = g_pos V[i] + g_neg V[j] */
            else
                src = (kind == 1 ? gp : gn) * P[(uint64_t)u[b] * d + q]; /* dQi = g_pos U[u], dQj = g_neg U[u] */
            acc = acc + (src + reg_c * pq);
        }
        G[(uint64_t)k * d + q] = acc;
    }
    if (q == 0) {
        double s = 0;
        for (int c = 0; c < d; c++)
            s += (double)p[c] * p[c];
        l2[k] = 0.5 * (double)(z - a) * s;
    }
}

#define LOSS_THREADS 512
/* k_loss: one block of LOSS_THREADS.  loss [n], l2 [n_rows] -> out[0] = sum loss / n + reg * sum l2 / n
 * (each thread sums a fixed strided slice, then a fixed tree: the same bits every run) */
__global__ void k_loss(const float *__restrict__ loss, uint64_t n, const double *__restrict__ l2, uint64_t n_rows,
                       double reg, double *out)
{
    __shared__ double sl[LOSS_THREADS], sr[LOSS_THREADS];
    int t = threadIdx.x;
    double a = 0, b = 0;
    for (uint64_t x = t; x < n; x += LOSS_THREADS)
        a += loss[x];
    for (uint64_t x = t; x < n_rows; x += LOSS_THREADS)
        b += l2[x];
    sl[t] = a;
    sr[t] = b;
    __syncthreads();
    for (int w = LOSS_THREADS / 2; w; w >>= 1) {
        if (t < w) {
            sl[t] += sl[t + w];
            sr[t] += sr[t + w];
        }
        __syncthreads();
    }
    if (t == 0)
        out[0] = sl[0] / (double)n + reg * sr[0] / (double)n;
}

/* k_slot: thread k < n: slot[rows[k]] = set ? k : -1 */
__global__ void k_slot(int32_t *slot, const uint32_t *__restrict__ rows, uint64_t n, int set)
{
    uint64_t k = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k < n)
        slot[rows[k]] = set ? (int32_t)k : -1;
}

/* k_adam_dense: thread x < rows * d, one element of P, M, V [rows x d];
 *   g = slot[r] >= 0 ? G[slot[r]][q] : 0;  Adam step (til_adam_elem_hd) */
__global__ void k_adam_dense(float *P, float *M, float *Vv, const float *__restrict__ G,
                             const int32_t *__restrict__ slot, uint64_t n_el, int d, float b1, float omb1, float b2,
                             float omb2, float ns, float bc2s, float eps)
{
    uint64_t x = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (x >= n_el)
        return;
    uint64_t r = x / d;
    int32_t s = slot[r];
    float g = s >= 0 ? G[(uint64_t)s * d + (x - r * d)] : 0.0f;
    til_adam_elem_hd(&P[x], &M[x], &Vv[x], g, b1, omb1, b2, omb2, ns, bc2s, eps);
}

/* k_adam_sparse: thread x < n_rows * d: element q of rows[k], gradient G[k][q] (SparseAdam) */
__global__ void k_adam_sparse(float *P, float *M, float *Vv, const float *__restrict__ G,
                              const uint32_t *__restrict__ rows, uint64_t n_el, int d, float omb1, float omb2, float ns,
                              float eps)
{
    uint64_t x = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (x >= n_el)
        return;
    uint64_t k = x / d, q = x - k * d, e = (uint64_t)rows[k] * d + q;
    til_sparse_adam_elem_hd(&P[e], &M[e], &Vv[e], G[x], omb1, omb2, ns, eps);
}

static inline unsigned grid(uint64_t n, unsigned threads) { return (unsigned)((n + threads - 1) / threads); }

/* ------------------------------------------------------------------ state */

struct til_cuda_train {
    const til_train_cfg *c;
    til_backbone *bb;
    til_adam *a;
    uint64_t n_param, cap;
    int d;
    float *P, *M, *V, *G;
    int32_t *slot;
    float *s_pos, *s_neg, *loss, *g;
    double *l2, *bl;
    uint32_t *stage_d; /* u, i, j [cap each], occ [3cap], rows [3cap], ptr [3cap + 1] */
    uint32_t *stage_h; /* pinned */
    int32_t *hslot;    /* host, n_param, -1 */
};

extern "C" void til_cuda_train_free(til_cuda_train **pd)
{
    til_cuda_train *d = *pd;
    if (!d)
        return;
    dev_free(&d->P), dev_free(&d->M), dev_free(&d->V), dev_free(&d->G), dev_free(&d->slot);
    dev_free(&d->s_pos), dev_free(&d->s_neg), dev_free(&d->loss), dev_free(&d->g), dev_free(&d->l2);
    dev_free(&d->bl), dev_free(&d->stage_d);
    if (d->stage_h)
        cudaFreeHost(d->stage_h);
    free(d->hslot);
    free(d);
    *pd = NULL;
}

extern "C" int til_cuda_train_upload(til_cuda_train *d, til_err *e)
{
    size_t n = d->n_param * (size_t)d->d;
    til_adam_sync(d->a, d->c->threads); /* the device keeps every row current */
    if (to_dev(d->P, d->bb->param, n, e) || to_dev(d->M, d->a->m, n, e) || to_dev(d->V, d->a->v, n, e))
        return til_errctx(e, "cuda: upload");
    return 0;
}

extern "C" int til_cuda_train_download(til_cuda_train *d, int moments, til_err *e)
{
    size_t n = d->n_param * (size_t)d->d;
    if (to_host(d->bb->param, d->P, n, e) ||
        (moments && (to_host(d->a->m, d->M, n, e) || to_host(d->a->v, d->V, n, e))))
        return til_errctx(e, "cuda: download");
    if (moments && d->a->last)
        for (uint64_t r = 0; r < d->n_param; r++)
            d->a->last[r] = d->a->t;
    return 0;
}

extern "C" int til_cuda_train_init(til_cuda_train **out, const til_train_cfg *c, til_backbone *bb, til_adam *a,
                                   til_err *e)
{
    *out = NULL;
    if (strcmp(c->backbone, "mf") || strcmp(c->method, "bpr"))
        return til_seterr(e, "--device cuda: backbone %s with method %s is not yet on cuda (mf with bpr is)",
                          c->backbone, c->method);
    if (til_cuda_check(e))
        return -1;
    til_cuda_train *d = (til_cuda_train *)calloc(1, sizeof *d);
    if (!d)
        return til_seterr(e, "cuda: out of host memory");
    d->c = c;
    d->bb = bb;
    d->a = a;
    d->n_param = bb->n_param;
    d->d = bb->dim;
    d->cap = c->batch;
    uint64_t n = d->n_param * (uint64_t)d->d, cap = d->cap, stage = 3 * cap + 3 * cap + 3 * cap + 3 * cap + 1;
    if (3 * cap + 1 > UINT32_MAX / 4) {
        til_seterr(e, "cuda: batch %llu too large", (unsigned long long)cap);
        goto fail;
    }
    if (dev_alloc(&d->P, n, e) || dev_alloc(&d->M, n, e) || dev_alloc(&d->V, n, e) ||
        dev_alloc(&d->G, 3 * cap * d->d, e) || dev_alloc(&d->slot, d->n_param, e) || dev_alloc(&d->s_pos, cap, e) ||
        dev_alloc(&d->s_neg, cap, e) || dev_alloc(&d->loss, cap, e) || dev_alloc(&d->g, cap, e) ||
        dev_alloc(&d->l2, 3 * cap, e) || dev_alloc(&d->bl, 1, e) || dev_alloc(&d->stage_d, stage, e))
        goto fail;
    CKG(e, cudaMallocHost((void **)&d->stage_h, stage * sizeof(uint32_t)));
    CKG(e, cudaMemset(d->slot, 0xff, d->n_param * sizeof(int32_t)));
    if (!(d->hslot = (int32_t *)til_malloc(d->n_param, sizeof(int32_t), e)))
        goto fail;
    memset(d->hslot, 0xff, d->n_param * sizeof(int32_t));
    if (til_cuda_train_upload(d, e))
        goto fail;
    *out = d;
    return 0;
fail:
    til_errctx(e, "cuda: training state for %llu x %d parameters", (unsigned long long)d->n_param, d->d);
    til_cuda_train_free(&d);
    return -1;
}

/* The batch's unique rows and occurrence lists, til_backbone's mf_prepare:
 * rows in first-occurrence order (u, then n_users + i, n_users + j per
 * triplet), occurrences per row in triplet order. Returns n_rows. */
static uint64_t prepare(til_cuda_train *d, const til_batch *b, uint32_t *occ, uint32_t *rows, uint32_t *ptr)
{
    uint64_t n = 0;
    uint32_t nu = d->bb->n_users;
    int32_t *slot = d->hslot;
    for (uint64_t t = 0; t < b->n; t++) {
        uint32_t r3[3] = {b->u[t], nu + b->i[t], nu + b->j[t]};
        for (int q = 0; q < 3; q++) {
            uint32_t r = r3[q];
            if (slot[r] < 0) {
                slot[r] = (int32_t)n;
                rows[n] = r;
                ptr[n + 1] = 0;
                n++;
            }
            ptr[slot[r] + 1]++;
        }
    }
    ptr[0] = 0;
    for (uint64_t k = 0; k < n; k++)
        ptr[k + 1] += ptr[k];
    for (uint64_t t = 0; t < b->n; t++) {
        uint32_t r3[3] = {b->u[t], nu + b->i[t], nu + b->j[t]};
        for (uint32_t q = 0; q < 3; q++)
            occ[ptr[slot[r3[q]]]++] = (uint32_t)(t << 2) | q;
    }
    for (uint64_t k = n; k > 0; k--)
        ptr[k] = ptr[k - 1];
    ptr[0] = 0;
    for (uint64_t k = 0; k < n; k++)
        slot[rows[k]] = -1;
    return n;
}

extern "C" int til_cuda_train_step(til_cuda_train *d, const til_batch *b, double *loss, til_err *e)
{
    uint64_t n = b->n, cap = d->cap;
    if (n > cap || n == 0)
        return til_seterr(e, "cuda: batch of %llu (capacity %llu)", (unsigned long long)n, (unsigned long long)cap);
    int dim = d->d;
    uint32_t *h = d->stage_h, *hu = h, *hi = h + cap, *hj = h + 2 * cap, *hocc = h + 3 * cap, *hrows = h + 6 * cap,
             *hptr = h + 9 * cap;
    memcpy(hu, b->u, n * sizeof(uint32_t));
    memcpy(hi, b->i, n * sizeof(uint32_t));
    memcpy(hj, b->j, n * sizeof(uint32_t));
    uint64_t nr = prepare(d, b, hocc, hrows, hptr);
    CK(e, cudaMemcpyAsync(d->stage_d, h, (9 * cap + nr + 1) * sizeof(uint32_t), cudaMemcpyHostToDevice, 0));
    const uint32_t *du = d->stage_d, *di = du + cap, *dj = du + 2 * cap, *docc = du + 3 * cap, *drows = du + 6 * cap,
                   *dptr = du + 9 * cap;
    const float *U = d->P, *V = d->P + (uint64_t)d->bb->n_users * dim;
    k_bpr<<<grid(n, 256), 256>>>(U, V, dim, du, di, dj, n, 1.0f / (float)n, d->s_pos, d->s_neg, d->loss, d->g);
    CK_LAUNCH(e);
    float reg_c = (float)(d->c->reg / (double)n);
    k_row_grad<<<(unsigned)nr, (unsigned)((dim + 31) / 32 * 32)>>>(d->P, d->bb->n_users, dim, du, di, dj, d->g,
                                                                    drows, dptr, docc, reg_c, d->G, d->l2);
    CK_LAUNCH(e);
    k_loss<<<1, LOSS_THREADS>>>(d->loss, n, d->l2, nr, d->c->reg, d->bl);
    CK_LAUNCH(e);
    til_adam *a = d->a;
    if (til_adam_reserve(a, a->t + 1, e))
        return -1;
    uint64_t t = ++a->t;
    float b1 = (float)a->b1, b2 = (float)a->b2, eps = (float)a->eps;
    float omb1 = (float)(1.0 - a->b1), omb2 = (float)(1.0 - a->b2), ns = a->c_ns[t], bs = a->c_bc2s[t];
    if (a->mode == TIL_ADAM_SPARSE) {
        k_adam_sparse<<<grid(nr * dim, 256), 256>>>(d->P, d->M, d->V, d->G, drows, nr * dim, dim, omb1, omb2, ns, eps);
        CK_LAUNCH(e);
    } else { /* dense and eager: every row, every step */
        k_slot<<<grid(nr, 256), 256>>>(d->slot, drows, nr, 1);
        CK_LAUNCH(e);
        uint64_t ne = d->n_param * dim;
        k_adam_dense<<<grid(ne, 256), 256>>>(d->P, d->M, d->V, d->G, d->slot, ne, dim, b1, omb1, b2, omb2, ns, bs, eps);
        CK_LAUNCH(e);
        k_slot<<<grid(nr, 256), 256>>>(d->slot, drows, nr, 0);
        CK_LAUNCH(e);
    }
    CK(e, cudaMemcpy(loss, d->bl, sizeof(double), cudaMemcpyDeviceToHost)); /* waits for the step */
    return 0;
}

/* ------------------------------------------------------------------ single kernels for the tests */

extern "C" int til_cuda_k_bpr(const float *U, const float *V, uint32_t n_users, uint32_t n_items, int d,
                              const uint32_t *u, const uint32_t *i, const uint32_t *j, uint64_t n, float *s_pos,
                              float *s_neg, float *loss, float *g, til_err *e)
{
    if (til_cuda_check(e))
        return -1;
    float *dU = NULL, *dV = NULL, *o = NULL;
    uint32_t *t = NULL;
    int rc = -1;
    if (dev_alloc(&dU, (size_t)n_users * d, e) || dev_alloc(&dV, (size_t)n_items * d, e) ||
        dev_alloc(&o, 4 * n, e) || dev_alloc(&t, 3 * n, e) || to_dev(dU, U, (size_t)n_users * d, e) ||
        to_dev(dV, V, (size_t)n_items * d, e) || to_dev(t, u, n, e) || to_dev(t + n, i, n, e) ||
        to_dev(t + 2 * n, j, n, e))
        goto fail;
    k_bpr<<<grid(n, 256), 256>>>(dU, dV, d, t, t + n, t + 2 * n, n, 1.0f / (float)n, o, o + n, o + 2 * n, o + 3 * n);
    CKG_LAUNCH(e);
    if (to_host(s_pos, o, n, e) || to_host(s_neg, o + n, n, e) || to_host(loss, o + 2 * n, n, e) ||
        to_host(g, o + 3 * n, n, e))
        goto fail;
    rc = 0;
fail:
    dev_free(&dU), dev_free(&dV), dev_free(&o), dev_free(&t);
    return rc;
}

extern "C" int til_cuda_k_adam(float *p, float *m, float *v, const float *G, const int32_t *slot, uint64_t rows,
                               int d, float b1, float b2, float ns, float bc2s, float eps, til_err *e)
{
    if (til_cuda_check(e))
        return -1;
    uint64_t ne = rows * d, ng = 0;
    for (uint64_t r = 0; r < rows; r++)
        if (slot[r] >= 0 && (uint64_t)slot[r] + 1 > ng)
            ng = (uint64_t)slot[r] + 1;
    float *dp = NULL, *dm = NULL, *dv = NULL, *dg = NULL;
    int32_t *ds = NULL;
    int rc = -1;
    if (dev_alloc(&dp, ne, e) || dev_alloc(&dm, ne, e) || dev_alloc(&dv, ne, e) || dev_alloc(&dg, ng * d, e) ||
        dev_alloc(&ds, rows, e) || to_dev(dp, p, ne, e) || to_dev(dm, m, ne, e) || to_dev(dv, v, ne, e) ||
        to_dev(dg, G, ng * d, e) || to_dev(ds, slot, rows, e))
        goto fail;
    k_adam_dense<<<grid(ne, 256), 256>>>(dp, dm, dv, dg, ds, ne, d, b1, (float)(1.0 - (double)b1), b2,
                                         (float)(1.0 - (double)b2), ns, bc2s, eps);
    CKG_LAUNCH(e);
    if (to_host(p, dp, ne, e) || to_host(m, dm, ne, e) || to_host(v, dv, ne, e))
        goto fail;
    rc = 0;
fail:
    dev_free(&dp), dev_free(&dm), dev_free(&dv), dev_free(&dg), dev_free(&ds);
    return rc;
}
