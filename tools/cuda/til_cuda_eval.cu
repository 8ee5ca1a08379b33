/* til_cuda_eval: full-ranking evaluation on the device (til_eval_run's
 * contract; til_cuda.h).
 *
 * Per block of B users (B x n_items scores, about 256 MiB):
 *   k_gather    U rows of the block's users into Ub (B x d)
 *   sgemm       S = Ub V^T (cuBLAS, FP32, pedantic math: no TF32)
 *   k_mask      S[r][i] = -inf for the user's train and excluded items
 *   k_test_key  kt[r] = the best key of the user's candidate test items (MRR)
 *   k_topk      per row: the top-k by key (score, then lower id), the count of
 *               candidates better than kt, NaN count
 * then on the host, per user, til_eval_user_metrics and til_eval_collect:
 * the CPU path's metric code. Keys (til_device.h) order exactly as the CPU
 * selection does, so the top lists agree whenever the scores do; the scores
 * themselves come from a different sgemm (summation order), so near-ties can
 * rank differently (docs/CUDA.md). */
#include "til_cuda_common.cuh" /* first: makes the C11 headers C++-safe */

#include <math.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "til_device.h"
#include "til_eval.h"
#include "til_inter.h"
}

/* k_gather: block r < n, thread q < d.  U [n_users x d], users [n] -> Ub [n x d] */
__global__ void k_gather(const float *__restrict__ U, const uint32_t *__restrict__ users, int d, float *Ub)
{
    int q = threadIdx.x;
    if (q < d)
        Ub[(uint64_t)blockIdx.x * d + q] = U[(uint64_t)users[blockIdx.x] * d + q];
}

/* k_mask: block r < n, threads stride over the user's items.
 *   S [n x ni], CSR (indptr [n_users + 1], items [nnz]) -> S[r][items of users[r]] = -inf */
__global__ void k_mask(float *S, uint32_t ni, const uint32_t *__restrict__ users, const uint64_t *__restrict__ indptr,
                       const uint32_t *__restrict__ items)
{
    uint32_t u = users[blockIdx.x];
    float *row = S + (uint64_t)blockIdx.x * ni;
    for (uint64_t p = indptr[u] + threadIdx.x; p < indptr[u + 1]; p += blockDim.x)
        row[items[p]] = -INFINITY;
}

/* k_test_key: block r < n.  S [n x ni] (masked), test CSR -> kt [n]:
 *   max over the user's test items i with a candidate score of key64(S[r][i], i), 0 if none */
__global__ void k_test_key(const float *__restrict__ S, uint32_t ni, const uint32_t *__restrict__ users,
                           const uint64_t *__restrict__ indptr, const uint32_t *__restrict__ items,
                           unsigned long long *kt)
{
    __shared__ unsigned long long best;
    if (threadIdx.x == 0)
        best = 0;
    __syncthreads();
    uint32_t u = users[blockIdx.x];
    const float *row = S + (uint64_t)blockIdx.x * ni;
    for (uint64_t p = indptr[u] + threadIdx.x; p < indptr[u + 1]; p += blockDim.x) {
        uint64_t k = til_score_key64(row[items[p]], items[p]);
        if (k >> 32)
            atomicMax(&best, (unsigned long long)k);
    }
    __syncthreads();
    if (threadIdx.x == 0)
        kt[blockIdx.x] = best;
}

#define TOPK_THREADS 256
/* k_topk: block r < n (TOPK_THREADS threads), dynamic shared memory k x 8 bytes.
 *   S [n x ni] (excluded = -inf), kt [n]
 *   -> items, tops [n x k]: the K = min(k, candidates) best candidates, best first
 *      (key64: higher score, then lower id: unique keys), counts [n] = K,
 *      better [n] = #{candidates with key > kt[r]} (kt 0: 0), nan [n] = NaN scores.
 * The K-th largest key T by radix select (8 digits of 8 bits, high to low, a
 * shared histogram per digit); the K keys >= T are gathered and ranked. */
__global__ void k_topk(const float *__restrict__ S, uint32_t ni, int k, const unsigned long long *__restrict__ kt,
                       uint32_t *items, float *tops, int *counts, unsigned long long *better, unsigned long long *nan)
{
    extern __shared__ unsigned long long keys[];
    __shared__ unsigned int hist[256];
    __shared__ unsigned long long s_cand, s_better, s_nan, s_prefix;
    __shared__ unsigned int s_kk, s_fill;
    const float *row = S + (uint64_t)blockIdx.x * ni;
    const uint64_t ktr = kt[blockIdx.x];
    int t = threadIdx.x;
    if (t == 0)
        s_cand = s_better = s_nan = 0, s_prefix = 0, s_fill = 0;
    __syncthreads();
    unsigned long long c = 0, b = 0, z = 0;
    for (uint32_t i = t; i < ni; i += TOPK_THREADS) {
        float s = row[i];
        uint64_t key = til_score_key64(s, i);
        c += key >> 32 ? 1 : 0;
        b += ktr && key > ktr ? 1 : 0;
        z += s != s ? 1 : 0;
    }
    atomicAdd(&s_cand, c), atomicAdd(&s_better, b), atomicAdd(&s_nan, z);
    __syncthreads();
    unsigned long long cand = s_cand;
    int K = cand < (unsigned long long)k ? (int)cand : k;
    if (t == 0) {
        better[blockIdx.x] = s_better;
        nan[blockIdx.x] = s_nan;
        counts[blockIdx.x] = K;
        s_kk = (unsigned)K;
    }
    if (K == 0)
        return;
    uint64_t mask = 0;
    for (int shift = 56; shift >= 0; shift -= 8) {
        for (int x = t; x < 256; x += TOPK_THREADS)
            hist[x] = 0;
        __syncthreads();
        uint64_t prefix = s_prefix;
        for (uint32_t i = t; i < ni; i += TOPK_THREADS) {
            uint64_t key = til_score_key64(row[i], i);
            if ((key >> 32) && (key & mask) == prefix)
                atomicAdd(&hist[(key >> shift) & 255], 1u);
        }
        __syncthreads();
        if (t == 0) { /* the digit holding the kk-th largest of the keys still in play */
            unsigned cum = 0, kk = s_kk;
            for (int d = 255; d >= 0; d--) {
                if (cum + hist[d] >= kk) {
                    s_prefix = prefix | ((uint64_t)d << shift);
                    s_kk = kk - cum;
                    break;
                }
                cum += hist[d];
            }
        }
        mask |= (uint64_t)255 << shift;
        __syncthreads();
    }
    const uint64_t T = s_prefix; /* the K-th largest key: exactly K keys are >= T */
    for (uint32_t i = t; i < ni; i += TOPK_THREADS) {
        uint64_t key = til_score_key64(row[i], i);
        if ((key >> 32) && key >= T)
            keys[atomicAdd(&s_fill, 1u)] = key;
    }
    __syncthreads();
    uint64_t o = (uint64_t)blockIdx.x * k;
    for (int x = t; x < K; x += TOPK_THREADS) {
        unsigned long long kx = keys[x];
        int rank = 0;
        for (int y = 0; y < K; y++)
            rank += keys[y] > kx;
        uint32_t item = 0xFFFFFFFFu - (uint32_t)kx;
        items[o + rank] = item;
        tops[o + rank] = row[item];
    }
}


typedef struct {
    uint64_t *indptr;
    uint32_t *items;
} dcsr;

static int csr_up(dcsr *d, const til_inter *t, til_err *e)
{
    if (dev_alloc(&d->indptr, (size_t)t->n_users + 1, e) || dev_alloc(&d->items, t->nnz, e) ||
        to_dev(d->indptr, t->indptr, (size_t)t->n_users + 1, e) || to_dev(d->items, t->items, t->nnz, e))
        return -1;
    return 0;
}
static void csr_free(dcsr *d) { dev_free(&d->indptr), dev_free(&d->items); }

extern "C" int til_cuda_eval_run(const til_scorer *s, const til_inter *train, const til_inter *exclude,
                                 const til_inter *test, const til_eval_opts *o, til_eval_result *res,
                                 til_eval_per_user *per_user, til_err *e)
{
    if (o->n_k < 1 || o->n_k > TIL_EVAL_MAXK)
        return til_seterr(e, "eval: %d cutoffs (want 1..%d)", o->n_k, TIL_EVAL_MAXK);
    int maxk = 0;
    for (int q = 0; q < o->n_k; q++) {
        if (o->ks[q] < 1)
            return til_seterr(e, "eval: cutoff k=%d (want >= 1)", o->ks[q]);
        maxk = maxk > o->ks[q] ? maxk : o->ks[q];
    }
    if (maxk > TIL_CUDA_MAXK)
        return til_seterr(e, "eval --device cuda: cutoff %d > %d is not supported on cuda", maxk, TIL_CUDA_MAXK);
    if (s->score || !s->U || !s->V || s->dim < 1)
        return til_seterr(e, "eval --device cuda: only dot-product models (mf, lightgcn) so far, not this scorer");
    if (til_scorer_check_data(s, "model", train, "train", e) || til_scorer_check_data(s, "model", test, "test", e) ||
        (exclude && til_scorer_check_data(s, "model", exclude, "excluded", e)))
        return -1;
    cublasHandle_t h;
    if (til_cuda_check(e) || til_cuda_blas(&h, e))
        return -1;
    const uint32_t ni = s->n_items;
    const int d = s->dim, stride = 4 * o->n_k + 1;
    uint64_t n_eval = 0;
    int rc = -1;
    int B;
    float *dU = NULL, *dV = NULL, *Ub = NULL, *S = NULL, *dtops = NULL;
    uint32_t *dusers = NULL, *ditems = NULL;
    unsigned long long *dkt = NULL, *dbetter = NULL, *dnan = NULL;
    int *dcounts = NULL;
    dcsr ctr = {0, 0}, cex = {0, 0}, cte = {0, 0};
    uint32_t *users = (uint32_t *)til_malloc(s->n_users ? s->n_users : 1, sizeof *users, e);
    double *idcg = (double *)til_malloc((size_t)maxk + 1, sizeof *idcg, e), *vals = NULL;
    uint32_t *hitems = NULL;
    int *hcounts = NULL;
    unsigned long long *hbetter = NULL, *hnan = NULL, *hkt = NULL;
    if (!users || !idcg)
        goto fail;
    for (uint32_t u = 0; u < s->n_users; u++)
        if (til_inter_deg(test, u) > 0)
            users[n_eval++] = u;
    til_eval_idcg(maxk, idcg);
    if (o->block > 0)
        B = o->block;
    else {
        uint64_t b = (256ull << 20) / 4 / (ni ? ni : 1);
        B = (int)(b < 1 ? 1 : b > 65535 ? 65535 : b);
    }
    if ((uint64_t)B > n_eval)
        B = n_eval ? (int)n_eval : 1;
    if (!(vals = (double *)til_malloc(n_eval ? n_eval * stride : 1, sizeof(double), e)) ||
        !(hitems = (uint32_t *)til_malloc((size_t)B * maxk, sizeof(uint32_t), e)) ||
        !(hcounts = (int *)til_malloc((size_t)B, sizeof(int), e)) ||
        !(hbetter = (unsigned long long *)til_malloc((size_t)B, 8, e)) ||
        !(hnan = (unsigned long long *)til_malloc((size_t)B, 8, e)) ||
        !(hkt = (unsigned long long *)til_malloc((size_t)B, 8, e)))
        goto fail;
    if (dev_alloc(&dU, (size_t)s->n_users * d, e) || dev_alloc(&dV, (size_t)ni * d, e) ||
        to_dev(dU, s->U, (size_t)s->n_users * d, e) || to_dev(dV, s->V, (size_t)ni * d, e) ||
        dev_alloc(&Ub, (size_t)B * d, e) || dev_alloc(&S, (size_t)B * ni, e) || dev_alloc(&dusers, (size_t)B, e) ||
        dev_alloc(&ditems, (size_t)B * maxk, e) || dev_alloc(&dtops, (size_t)B * maxk, e) ||
        dev_alloc(&dkt, (size_t)B, e) || dev_alloc(&dbetter, (size_t)B, e) || dev_alloc(&dnan, (size_t)B, e) ||
        dev_alloc(&dcounts, (size_t)B, e) || csr_up(&ctr, train, e) || csr_up(&cte, test, e) ||
        (exclude && csr_up(&cex, exclude, e)))
        goto fail;
    for (uint64_t u0 = 0; u0 < n_eval; u0 += (uint64_t)B) {
        int n = (int)(n_eval - u0 < (uint64_t)B ? n_eval - u0 : (uint64_t)B);
        const float one = 1.0f, zero = 0.0f;
        if (to_dev(dusers, users + u0, (size_t)n, e))
            goto fail;
        k_gather<<<n, (d + 31) / 32 * 32>>>(dU, dusers, d, Ub);
        CKG_LAUNCH(e);
        /* row-major S [n x ni] = Ub [n x d] . V^T, i.e. column-major S^T (ni x n) = V^T' Ub' */
        cublasStatus_t bs = cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, (int)ni, n, d, &one, dV, d, Ub, d, &zero, S,
                                        (int)ni);
        if (bs != CUBLAS_STATUS_SUCCESS) {
            til_seterr(e, "%s:%d: cublasSgemm: %s", __FILE__, __LINE__, cublasGetStatusString(bs));
            goto fail;
        }
        k_mask<<<n, 128>>>(S, ni, dusers, ctr.indptr, ctr.items);
        CKG_LAUNCH(e);
        if (exclude) {
            k_mask<<<n, 128>>>(S, ni, dusers, cex.indptr, cex.items);
            CKG_LAUNCH(e);
        }
        k_test_key<<<n, 128>>>(S, ni, dusers, cte.indptr, cte.items, dkt);
        CKG_LAUNCH(e);
        k_topk<<<n, TOPK_THREADS, (size_t)maxk * 8>>>(S, ni, maxk, dkt, ditems, dtops, dcounts, dbetter, dnan);
        CKG_LAUNCH(e);
        if (to_host(hitems, ditems, (size_t)n * maxk, e) || to_host(hcounts, dcounts, (size_t)n, e) ||
            to_host(hbetter, dbetter, (size_t)n, e) || to_host(hnan, dnan, (size_t)n, e) ||
            to_host(hkt, dkt, (size_t)n, e))
            goto fail;
        for (int r = 0; r < n; r++) {
            uint32_t u = users[u0 + r];
            if (hnan[r]) {
                til_seterr(e, "scores of user %u contain %llu NaN values (diverged model?)", u, hnan[r]);
                goto fail;
            }
            double mrr = hkt[r] ? 1.0 / (double)(hbetter[r] + 1) : 0.0;
            til_eval_user_metrics(o, idcg, test, u, hitems + (size_t)r * maxk, 1, hcounts[r], mrr,
                                  vals + (u0 + r) * stride);
        }
    }
    if (til_eval_collect(users, n_eval, vals, o, s->n_users, res, per_user, e))
        goto fail;
    rc = 0;
fail:
    if (rc)
        til_errctx(e, "cuda evaluation");
    dev_free(&dU), dev_free(&dV), dev_free(&Ub), dev_free(&S), dev_free(&dtops), dev_free(&dusers);
    dev_free(&ditems), dev_free(&dkt), dev_free(&dbetter), dev_free(&dnan), dev_free(&dcounts);
    csr_free(&ctr), csr_free(&cex), csr_free(&cte);
    free(users), free(idcg), free(vals), free(hitems), free(hcounts), free(hbetter), free(hnan), free(hkt);
    return rc;
}

extern "C" int til_cuda_k_topk(const float *scores, uint64_t n, uint32_t n_items, int k, const uint64_t *kt,
                               uint32_t *items, float *top_scores, int *counts, uint64_t *better, uint64_t *nan,
                               til_err *e)
{
    if (k < 1 || k > TIL_CUDA_MAXK)
        return til_seterr(e, "topk: k %d out of 1..%d", k, TIL_CUDA_MAXK);
    if (til_cuda_check(e))
        return -1;
    float *S = NULL, *dt = NULL;
    uint32_t *di = NULL;
    int *dc = NULL, rc = -1;
    unsigned long long *dk = NULL, *db = NULL, *dn = NULL;
    if (dev_alloc(&S, n * n_items, e) || dev_alloc(&dt, n * k, e) || dev_alloc(&di, n * k, e) ||
        dev_alloc(&dc, n, e) || dev_alloc(&dk, n, e) || dev_alloc(&db, n, e) || dev_alloc(&dn, n, e) ||
        to_dev(S, scores, n * n_items, e) || to_dev(dk, (const unsigned long long *)kt, n, e))
        goto fail;
    k_topk<<<(unsigned)n, TOPK_THREADS, (size_t)k * 8>>>(S, n_items, k, dk, di, dt, dc, db, dn);
    CKG_LAUNCH(e);
    if (to_host(items, di, n * k, e) || to_host(top_scores, dt, n * k, e) || to_host(counts, dc, n, e) ||
        to_host((unsigned long long *)better, db, n, e) || to_host((unsigned long long *)nan, dn, n, e))
        goto fail;
    rc = 0;
fail:
    dev_free(&S), dev_free(&dt), dev_free(&di), dev_free(&dc), dev_free(&dk), dev_free(&db), dev_free(&dn);
    return rc;
}
