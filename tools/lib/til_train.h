/* til_train: the training loop shared by every backbone and method.
 *
 * One epoch: the sampler draws the epoch's triplets (seeded by (seed, epoch));
 * they are cut into batches of cfg->batch; one step per batch:
 *   rows  = backbone.prepare(batch)       unique parameter rows the batch touches
 *   optimizer catch-up(rows)              (dense Adam: replay the zero-gradient steps)
 *   U, V  = backbone.forward(batch)
 *   s_pos = U[u].V[i], s_neg = U[u].V[j]  (dot-product head; per triplet, parallel)
 *   loss, g_pos, g_neg = method(s_pos, s_neg, 1/B)   (BPR, or a baseline's loss over
 *                                      the whole batch: til_baselines.h)
 *   dU = g_pos V[i] + g_neg V[j]; dQi = g_pos U[u]; dQj = g_neg U[u]   (B x dim)
 *   G    = backbone.backward(dU, dQi, dQj, reg/B)  (deterministic row reductions)
 *   optimizer step(rows, G)
 * Reported loss = mean over batches of (mean BPR + reg * 0.5 * sum|e0|^2 / B),
 * as the PyTorch peer reports it. Every cfg->eval_every epochs (and at the last)
 * all rows are brought up to date and the model is evaluated on the validation
 * set (Recall/NDCG@topk, train items masked); the best Recall model is kept and
 * training stops when it has not improved for cfg->patience epochs.
 *
 * Randomness: init from (seed, INIT, table), the epoch shuffle from (seed,
 * SHUFFLE, epoch), negatives from (seed, NEG, epoch, chunk): a checkpoint needs
 * no generator state beyond the epoch and the position in it. Results do not
 * depend on the thread count (fixed-order reductions, chunked sampling).
 *
 * Checkpoints (kind = checkpoint) hold the parameters, Adam m, v, step and
 * per-row last step, the best parameters and metrics, the epoch and the
 * position within it, and the loss so far; resuming is bit-identical. */
#ifndef TIL_TRAIN_H
#define TIL_TRAIN_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "til_baselines.h"
#include "til_device.h"
#include "til_inter.h"
#include "til_model.h"
#include "til_util.h"

typedef struct til_train_cfg {
    const char *backbone; /* "mf", "lightgcn", "neumf" */
    const char *method;   /* "bpr", a baseline (til_baselines.h) or til-ui, til-mi, til-mik (til_method.h) */
    const void *method_opts; /* a til_method's own options (til_tilm_opts for til-*), NULL: defaults */
    til_bl_cfg bl;        /* the baselines' hyper-parameters */
    int optim;            /* TIL_ADAM_* */
    int dim;
    uint64_t batch;
    double lr, reg, b1, b2, eps;
    int epochs, eval_every, patience, topk;
    uint64_t seed;
    int threads;
    const char *log_path;        /* TSV, one line per epoch; NULL: none */
    const char *checkpoint_path; /* NULL: none */
    int checkpoint_every;        /* epochs; 0: only at the end and on interruption */
    const char *resume_path;     /* NULL: fresh start */
    int progress;                /* progress line on stderr */
    FILE *info;                  /* memory and summary lines, or NULL */
    volatile sig_atomic_t *stop; /* set from a signal handler: checkpoint and return 1 */
    int layers;                  /* graph backbones: propagation layers (1) */
    int device;                  /* TIL_DEVICE_CPU (0) or TIL_DEVICE_CUDA (til_cuda.h: mf + bpr) */
} til_train_cfg;

typedef struct til_train_result {
    int best_epoch, epochs_run, stopped_early;
    double best_recall, best_ndcg;
    double train_s, sample_s, eval_s; /* totals */
    double median_epoch_s;            /* batch loop only, median of epochs 2.. */
} til_train_result;

/* Fills cfg with the paper's defaults (dim 64, batch 5000, lr 1e-3, reg 1e-4,
 * 3000 epochs, eval every 1, patience 100, top-20, seed 2020, dense Adam). */
void til_train_defaults(til_train_cfg *c);

/* Trains; on success out holds the best model (kind = model). Returns 0, 1 if
 * interrupted through cfg->stop (checkpoint written when a path was given), -1
 * on error. */
int til_train_run(const til_train_cfg *c, const til_inter *train, const til_inter *valid, til_model *out,
                  til_train_result *res, til_err *e);

/* Fixed-order dot product (16 lanes, then a tree): the same bits whatever the
 * caller; one definition, til_dot_hd in til_device.h, shared with the CUDA kernels. */
static inline float til_dot(const float *a, const float *b, int d) { return til_dot_hd(a, b, d); }

struct til_backbone;
struct til_batch;

/* A further loss term's gradient w.r.t. some item representations V[i] (not
 * parameter rows: the backbone's backward carries it to the parameters), e.g.
 * TIL-MI's clustering loss: for r < n, g[r] (dim) is added to dQi[slot[r]] if
 * slot[r] < B, else to dQj[slot[r] - B] (B = the batch's size), after the head
 * and before backward. Since backward is linear in (dU, dQi, dQj), G then holds
 * the extra term's parameter gradient too, whichever occurrence of an item
 * carries its row. Slots must be distinct (one per item). */
typedef struct til_rep_grad {
    uint64_t n;
    const uint32_t *slot; /* n */
    const float *g;       /* n x dim */
} til_rep_grad;

/* Scratch of one step: B floats each for the scores, losses and dL/dscore;
 * B x dim for dU, dQi, dQj; 3B x dim for G. */
typedef struct til_step_buf {
    uint64_t cap;
    float *s_pos, *s_neg, *loss, *g_pos, *g_neg, *dU, *dQi, *dQj, *G;
    const float *w; /* B per-triplet BPR weights set by a til_method, or NULL (all 1); not owned */
    const til_rep_grad *xr; /* NULL, or an extra representation gradient set by a til_method; not owned */
    /* set by a til_method before the step: s_pos/s_neg already hold this batch's
     * dot-product scores at the current parameters (til_dot of the step's U, V
     * rows), so the head skips scoring; cleared by every til_batch_grad_bl call */
    int scores_ready;
    /* scratch of til_tilm_meta_generic, kept between steps (graph backbones: N x dim
     * each; allocating them per step cost page faults): capacities in elements */
    float *mg_save, *mg_c;
    uint32_t *mg_rows;
    uint64_t mg_save_cap, mg_c_cap, mg_rows_cap;
} til_step_buf;
int til_step_buf_alloc(til_step_buf *s, uint64_t batch, int dim, til_err *e);
void til_step_buf_free(til_step_buf *s);

/* Gradient of one batch, after bb->ops->prepare and the optimizer catch-up:
 * forward, the dot-product head with the BPR loss (weighted by s->w when set:
 * L = (1/B) sum w_b BPR_b + L2), s->xr added to dQi/dQj when set (its term's
 * gradient joins G; its loss is the caller's to report), backward. On return
 * s->G[k] (dim) = dL/dparam[bb->rows[k]] for L = mean BPR + reg * 0.5 *
 * sum|e0|^2 / B, and *loss = L. Deterministic for any thread count. */
int til_batch_grad(struct til_backbone *bb, const struct til_batch *b, double reg, int threads, til_step_buf *s,
                   double *loss, til_err *e);
/* The same with a baseline's loss (til_bl_step_loss over the whole batch
 * between the scores and the gradients); bl NULL: BPR as til_batch_grad. */
int til_batch_grad_bl(struct til_backbone *bb, const struct til_batch *b, til_bl *bl, double reg, int threads,
                      til_step_buf *s, double *loss, til_err *e);

#endif
