/* til_cuda: the CUDA backend of til-train (MF backbone, BPR) and til-eval.
 *
 * Implemented in tools/cuda/ (*.cu) (nvcc, built into libtil.a when the Makefile
 * finds nvcc: CUDA=1, -DTIL_HAVE_CUDA=1); without CUDA every function is a
 * stub (til_cuda_stub.c) that fails with "built without CUDA". Every function
 * first checks that a device is visible and otherwise fails with "no CUDA
 * device visible (cudaGetDeviceCount: <status>)", so a CUDA build still runs
 * the CPU path on a machine without a GPU. docs/CUDA.md has the design.
 *
 * Training (driven by til_train.c when cfg->device == TIL_DEVICE_CUDA): the
 * parameters, Adam m and v live on the device; the host keeps sampling (the
 * CPU sampler: the same triplets as the CPU path) and the per-batch
 * occurrence lists (the MF prepare), uploads them per batch, and the device
 * computes scores, the BPR loss and derivatives, the per-row gradient
 * reduction in triplet order (deterministic), and the Adam step over every
 * row (dense semantics) or the batch's rows (lazy-adam). The host copies of
 * param (and m, v) are brought up to date only on request (evaluation,
 * checkpoints, the final model). */
#ifndef TIL_CUDA_H
#define TIL_CUDA_H

#include <stdint.h>

#include "til_device.h"
#include "til_util.h"

#ifdef __cplusplus
extern "C" {
#endif

struct til_train_cfg;
struct til_backbone;
struct til_adam;
struct til_batch;
struct til_scorer;
struct til_inter;
struct til_eval_opts;
struct til_eval_result;
struct til_eval_per_user;

/* 1 if this build has the CUDA backend. */
int til_cuda_built(void);
/* 0 if a CUDA device is visible (and selects device 0); -1 with
 * "no CUDA device visible (cudaGetDeviceCount: ...)" otherwise. */
int til_cuda_check(til_err *e);
/* One line naming the device (name, memory, compute capability) into buf. */
int til_cuda_describe(char *buf, int n, til_err *e);

/* ---- training (MF backbone, BPR method) ---- */
typedef struct til_cuda_train til_cuda_train;
/* Checks the configuration (mf, bpr; any optimizer), allocates the device
 * state and uploads bb->param and a's moments (a synced first). */
int til_cuda_train_init(til_cuda_train **out, const struct til_train_cfg *c, struct til_backbone *bb,
                        struct til_adam *a, til_err *e);
/* Host param, m, v -> device (after a resume; a is synced first). */
int til_cuda_train_upload(til_cuda_train *d, til_err *e);
/* One optimisation step on batch b (a->t advances by one); *loss = the
 * batch loss as til_batch_grad reports it. */
int til_cuda_train_step(til_cuda_train *d, const struct til_batch *b, double *loss, til_err *e);
/* Device -> host: param; with moments also m, v (and a->last[] = a->t). */
int til_cuda_train_download(til_cuda_train *d, int moments, til_err *e);
void til_cuda_train_free(til_cuda_train **d);

/* ---- evaluation: til_eval_run's contract, on the device ---- */
/* Dot-product scorers only; max cutoff <= TIL_CUDA_MAXK. Scores by cuBLAS
 * sgemm per block of users, masks train/exclude items, selects the top-k per
 * user on the device; metrics on the host (til_eval_user_metrics). */
#define TIL_CUDA_MAXK 1024
int til_cuda_eval_run(const struct til_scorer *s, const struct til_inter *train, const struct til_inter *exclude,
                      const struct til_inter *test, const struct til_eval_opts *o, struct til_eval_result *res,
                      struct til_eval_per_user *per_user, til_err *e);

/* ---- single kernels on host arrays (for tests/cuda/test_cuda.c) ---- */
/* Scores and BPR per triplet: U (n_users x d), V (n_items x d), triplets u,i,j
 * (n) -> s_pos, s_neg, loss, g (dL/ds_pos; dL/ds_neg = -g), scale = 1/n. */
int til_cuda_k_bpr(const float *U, const float *V, uint32_t n_users, uint32_t n_items, int d, const uint32_t *u,
                   const uint32_t *i, const uint32_t *j, uint64_t n, float *s_pos, float *s_neg, float *loss,
                   float *g, til_err *e);
/* One dense Adam step over rows x d with per-row gradient slot (-1: zero). */
int til_cuda_k_adam(float *p, float *m, float *v, const float *G, const int32_t *slot, uint64_t rows, int d,
                    float b1, float b2, float ns, float bc2s, float eps, til_err *e);
/* Top-k of score rows (n x n_items) after masking -inf (excluded): items,
 * scores (n x k), counts (n), and for test item key kt[r] (0: none) the count
 * of better candidates, better[r]; nan[r] NaN scores. */
int til_cuda_k_topk(const float *scores, uint64_t n, uint32_t n_items, int k, const uint64_t *kt, uint32_t *items,
                    float *top_scores, int *counts, uint64_t *better, uint64_t *nan, til_err *e);

#ifdef __cplusplus
}
#endif

#endif
