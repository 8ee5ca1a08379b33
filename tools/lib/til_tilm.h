/* til_tilm: the TIL training methods (Wu et al., CIKM 2022) as a til_method:
 * til-ui (Uni-Interest state, eq. 5), til-mi (Multi-Interest state, eq. 6, with
 * end-to-end DEC clustering, eqs. 7-9) and til-mik (Multi-Interest state over
 * plain k-means centroids, no clustering loss).
 *
 * One step on batch B (eqs. 12-15):
 *   1. s_uij from the current P, Q, eta and centers; w = f(s; Lambda) (til_wnet)
 *   2. dJ_out/dLambda at the look-ahead Theta~ = Theta - beta grad_Theta J_in
 *      (til_meta_grad_lambda: MF closed form; other backbones: the generic
 *      path through the backbone's jvp or score_jvp op, see
 *      til_tilm_meta_generic), J_out = plain BPR on the outer batch (B itself,
 *      --meta-batch same, or a fresh slice of the epoch's shuffled triplets,
 *      --meta-batch fresh); one Adam step on Lambda (own Adam, --meta-lr)
 *   3. w recomputed with the new Lambda (batch-normalised if --weight-norm
 *      batch); the trainer's step on Theta with (1/B) sum w L_BPR + L2
 *      (+ gamma KL(T||Q) for til-mi: after_grad on mf, through backward
 *      elsewhere, see below)
 * The states are constants when differentiating wrt Theta (the paper's choice;
 * til_state has no backward).
 *
 * Documented choices:
 *  - eta_u (eq. 4) is refreshed for ALL users every `eta_update` steps (default
 *    50, at steps t with t % eta_update == 0, t = steps done), from the item rows
 *    brought up to date by til_adam_sync (exact: the lazy Adam is bit-identical to
 *    eager); between refreshes it is a snapshot. Per-batch refresh would need
 *    every item of the batch's users caught up each step; a full refresh costs
 *    nnz x d (Gowalla: ~8 ms), so every 10 steps cost ~12% of a TIL-UI epoch.
 *  - til-mi/til-mik: during the first `pretrain_epochs` epochs the state is
 *    Uni-Interest (no cluster terms, no clustering loss; weights are still
 *    meta-learned). At the first step after them the centers are initialised by
 *    k-means (k-means++ seeded from --seed, Lloyd to convergence, at most 100
 *    iterations) on the synced item embeddings.
 *  - til-mi: Phi (K x d) has its own Adam (PyTorch semantics, eager) with the
 *    backbone's lr, b1, b2, eps. The clustering loss is gamma * the MEAN over
 *    the batch's distinct items of KL(T_i || Q_i) (til_dec_loss_grad, mean = 1)
 *    over the item representations q_i = bb->V[i] the backbone scores with;
 *    Theta and Phi minimise weighted BPR + L2 + gamma L_c, and L_c is part of
 *    J_in in the look-ahead too (it does not depend on Lambda: it moves
 *    Theta~, it adds no per-triplet term). T and the memberships c_i =
 *    argmax_k Q_ik are refreshed over all items every `cluster_update` steps
 *    (same cadence rule as eta); mu_ci = Phi[c_i] uses the current Phi.
 *    The batch's DEC gradient gXc = gamma dL_c/dq_i (and dL_c/dPhi) is
 *    computed once per step (before the meta step) at the current Theta and
 *    Phi and used twice: in the look-ahead's grad J_in and in the step's G.
 *    How gXc reaches the parameters:
 *      mf: the V rows are parameter rows: added into G's item rows
 *        (after_grad), and into the look-ahead as til_meta's extra term
 *        (auto and double paths).
 *      every other backbone (and mf's generic path): as a representation
 *        gradient (til_rep_grad, til_train.h): item i's row is added to the
 *        dQi (or dQj) row of its first occurrence in the batch before the
 *        backbone's backward, which is linear in those rows, so G gets
 *        gamma J_V(Theta)^T dL_c/dV exactly (LightGCN: propagated back to the
 *        layer-0 rows; MGCCF: through its tanh's and weight rows; NeuMF:
 *        into the item rows, the tower untouched). The same injection in
 *        til_tilm_meta_generic's J_in puts beta gamma grad_Theta L_c into
 *        the look-ahead. No extra backward: the cost is the batch's DEC work.
 *  - Other backbones: the states (eta, the item clusters: k-means, T, Q and
 *    the clustering loss) are built from the representations the backbone
 *    scores with, bb->U and bb->V after forward (LightGCN: the layer mean;
 *    MGCCF: f; NeuMF: the whole [GMF | MLP] rows).
 *  - til-mik: centers and memberships are recomputed every `cluster_update`
 *    steps by Lloyd iterations warm-started from the previous centers (at most
 *    `kmeans_iter`, default 3).
 *  - Clustering arithmetic (k-means initialisation, til-mik's Lloyd refreshes,
 *    til-mi's soft assignments at refresh and its per-step loss and gradients)
 *    runs on til_cluster's float gemm fast paths (til_kmeans_fast,
 *    til_kmeans_lloyd_fast, til_dec_refresh_fast: Q, T and the memberships in
 *    one pass, til_dec_loss_grad_rows_fast: the batch items' rows and T rows read
 *    in place through the item list, their gradients in item-list order; their
 *    tolerances vs the double references are in til_cluster.h). The per-step
 *    DEC work covers only the batch's distinct items; a full refresh (all
 *    items, one sgemm per 256 rows) costs about as much as a few steps' DEC
 *    work, so the --cluster-update cadence is kept as specified. The logged
 *    cluster_loss is the mean over the epoch's steps of the batch's mean KL as
 *    that step computed it (float, til_logf_fast: ~1e-5 relative of the double
 *    reference even near T = Q). In the MF fast look-ahead the DEC gradient rows
 *    enter through til_tilm_fast.extra_row (floats, no per-row callback in
 *    double).
 *  - Weight statistics per epoch (w_mean, w_std, w_p10, w_p50, w_p90 columns of
 *    the log) are over the weights used in the Theta steps of that epoch (after
 *    normalisation when --weight-norm batch).
 *  - dump_weights: after training, the final Theta, Lambda, eta and centers on
 *    the triplets of epoch (last + 1)'s sampling (all, or the first dump_sample of
 *    that shuffled epoch), TSV "user pos neg weight" (dense ids).
 *  - --meta-batch fresh: the outer batch is a contiguous slice (as many
 *    triplets as a batch, wrapping) of the epoch's shuffled triplets at an
 *    offset drawn from (seed, TIL_STREAM_META, step); it may overlap the inner
 *    batch. Its rows are caught up before they are read.
 *  - The weight network's gemms run on one OpenBLAS thread (set and restored
 *    around the hook); with --threads > 1 its fixed gemm blocks (til_wnet.h)
 *    and the fast path's per-triplet passes (scores, s'_k, dJ_out/dw) run on
 *    the trainer's threads; the scatters into G stay serial, in triplet order.
 *    No result depends on the thread count.
 *  - Randomness: Lambda init from (seed, stream 0x7731 of til_wnet), fresh outer
 *    batches from (seed, TIL_STREAM_META, step), k-means from (seed, 0x6b6d),
 *    the held-out split from (seed, TIL_STREAM_HOLDOUT, user) and held-out outer
 *    batches from (seed, TIL_STREAM_META_HELD, step) (til_tilm_holdout). */
#ifndef TIL_TILM_H
#define TIL_TILM_H

#include <stdint.h>

#include "til_backbone.h"
#include "til_inter.h"
#include "til_method.h"
#include "til_util.h"
#include "til_meta.h"
#include "til_wnet.h"

enum { TIL_TILM_UI = 0, TIL_TILM_MI = 1, TIL_TILM_MIK = 2 };
enum { TIL_STREAM_META = 5, TIL_STREAM_HOLDOUT = 6, TIL_STREAM_META_HELD = 7 };
/* MF meta-gradient: AUTO the float fast path (til_tilm_meta_dw_fast), DOUBLE
 * til_meta_grad_lambda (the closed-form reference in double), GENERIC the
 * backbone-jvp path (what other backbones always use). */
enum { TIL_META_PATH_AUTO = 0, TIL_META_PATH_GENERIC = 1, TIL_META_PATH_DOUBLE = 2 };
extern const char *const til_tilm_meta_path_names[3];

typedef struct til_tilm_opts {
    double alpha;        /* Multi-Interest mixing (1) */
    int clusters;        /* K (60) */
    double tau;          /* Student-t degrees of freedom (1) */
    double gamma;        /* clustering-loss weight (0.1) */
    int pretrain_epochs; /* (500) */
    int cluster_update;  /* steps between T/membership (mi) or k-means (mik) refreshes (10) */
    int eta_update;      /* steps between eta refreshes (50) */
    int kmeans_iter;     /* til-mik warm-started Lloyd iterations per refresh (3) */
    double virtual_lr;   /* beta; 0: the backbone's lr */
    double meta_lr;      /* Lambda's Adam lr (1e-3) */
    int hidden;          /* weight network hidden units; 0: dim */
    int meta_fresh;      /* 0: outer loss on the same batch, 1: on a fresh batch */
    int weight_norm;     /* 1: weights divided by their batch mean */
    int meta_path;       /* TIL_META_PATH_*: how dJ_out/dw is computed for mf */
    const char *dump_weights, *dump_clusters; /* NULL: none */
    uint64_t dump_sample; /* 0: all triplets */
    double meta_holdout;  /* fraction of each user's training items held out for J_out (0: none) */
} til_tilm_opts;

void til_tilm_defaults(til_tilm_opts *o);
/* variant: TIL_TILM_*; -1 if name is not a TIL method. */
int til_tilm_variant(const char *name);
int til_tilm_create(til_method *m, int variant, const til_tilm_opts *o, til_err *e);

/* --meta-holdout FRACTION: an outer objective on held-out interactions. User u
 * with n_u training items holds out h_u = min(round(frac n_u), n_u - 1) of them
 * (so at least one stays for training; users with no item hold none), chosen
 * by a partial Fisher-Yates shuffle from til_rng(seed, TIL_STREAM_HOLDOUT << 56
 * ^ u): the split depends on (seed, user) only. -> inner (the rest; the trainer's
 * sampler, triplets, eta, graph) and held (the held-out pairs), both with
 * train's shape, sorted; ratings/timestamps are not kept. The validation split
 * is never touched. With the split, the trainer
 *  - samples the inner triplets from inner, with negatives rejecting ALL of u's
 *    training items (held-out items are never negatives for u);
 *  - evaluates (masks) with the whole training set, as without the split;
 *  - and J_out (step 2) is plain BPR on an outer batch of as many triplets as
 *    a batch: held-out pairs drawn uniformly with replacement, each with a
 *    uniform negative rejecting all of u's training items, from
 *    til_rng(seed, TIL_STREAM_META_HELD << 56 ^ step): resume is bit-identical
 *    without extra state. Exclusive with --meta-batch fresh.
 * The fraction is the til_meta_holdout entry of the model and checkpoint. */
int til_tilm_holdout(const til_inter *train, double frac, uint64_t seed, til_inter *inner, til_inter *held,
                     til_err *e);

/* The MF meta-gradient dJ_out/dw (til_meta_dw's maths and assumptions) in
 * float with 16-lane sums (til_dot) instead of double: ~3x faster, tested
 * against til_meta_dw. Rows in the param numbering of MF (users, then n_users +
 * item); extra as til_meta_opts.extra (item rows only). */
typedef struct til_tilm_fast {
    uint32_t n_users;
    int d;
    uint64_t cap;   /* 3 x batch */
    int32_t *slot;  /* n_users + n_items: row -> slot or -1 */
    uint32_t *rows; /* cap */
    float *th, *G;  /* cap x d each */
    float *sp;      /* batch: s'_k of the inner triplets */
    float *ao;      /* batch: the outer triplets' a_k = -sigmoid(-x_k)/|B_out| */
    int threads;    /* per-triplet passes on this many threads (init: 1); results do not depend on it */
    /* NULL (init), or the extra inner gradient as float rows, used instead of the
     * extra callback: extra_row(ctx, item) returns the item row's d floats (added
     * to its gradient, the same bits as a callback adding them in double) or
     * NULL for none. TIL-MI's DEC gradient, computed once per step. */
    const float *(*extra_row)(void *ctx, uint32_t item);
    /* NULL (init), or batch floats each: the inner pass also writes every inner
     * triplet's scores at Theta, s_pos[k] = p_u . q_i and s_neg[k] = p_u . q_j
     * (til_dot, the step head's arithmetic), so that the step need not score
     * them again (til_step_buf.scores_ready). */
    float *s_pos, *s_neg;
} til_tilm_fast;
int til_tilm_fast_init(til_tilm_fast *f, uint32_t n_users, uint32_t n_items, int d, uint64_t batch, til_err *e);
void til_tilm_fast_free(til_tilm_fast *f);
int til_tilm_meta_dw_fast(til_tilm_fast *f, const float *P, const float *Q, const til_batch *in, const float *w,
                          const til_batch *out, double beta, double reg, til_meta_extra_fn extra, void *ctx,
                          float *dw, double *j_out, til_err *e);

/* For tests: prepares b, brings its rows up to date and computes, as a step
 * would (refreshes aside), the states and gL (n_params) = dJ_out/dLambda at the
 * current parameters, without stepping anything. */
int til_tilm_meta_grad(til_method *m, const til_batch *b, float *gL, til_err *e);
/* For tests: the method's current pieces (read-only views). */
typedef struct til_tilm_view {
    const til_wnet *net;
    const float *S;       /* states of the last step / meta_grad call */
    const float *eta;     /* n_users x d */
    const float *centers; /* K x d when the Multi-Interest state is active, else NULL */
    const uint32_t *memb; /* n_items, or NULL (til-ui) */
    const float *T;       /* n_items x K (til-mi), or NULL */
    int K, clustered;
    double beta;
} til_tilm_view;
void til_tilm_inspect(const til_method *m, til_tilm_view *v);

/* The generic meta-gradient, for any backbone with a jvp op (dot-product
 * heads) or a score_jvp op (score heads: NeuMF) (til_backbone.h). bb: its rows
 * of in and out up to date. in: the inner batch with weights w (as in J_in),
 * reg: the L2 coefficient, beta: the look-ahead step, extra: NULL or a
 * further inner term's gradient w.r.t. item representations, slots into `in`
 * (til_rep_grad, til_train.h; TIL-MI's gamma dL_c/dV), carried to the
 * parameters by the backbone's backward. -> dw: n values dJ_out/dw_k, *j_out =
 * J_out at the look-ahead.
 *   g = grad_Theta J_in(Theta) (til_batch_grad with w and extra)
 *   Theta~ = Theta - beta g, in place on those parameter rows (put back bit
 *     for bit before returning, also on error)
 *   G_out = grad_Theta J_out(Theta~) (til_batch_grad, plain BPR, reg 0); J_out
 *   dJ_out/dw_k = -(beta/|B|) <G_out, grad_Theta l_k(Theta)>
 *               = -(beta/|B|) s'_k D_k, D_k = dx_k/dTheta . G_out,
 *     x_k = score(u,i) - score(u,j), s'_k = d softplus(-x)/dx at Theta:
 *     dot heads: c = JVP(G_out) on the rows of in, D_k = c_u.(q_i - q_j) +
 *     (c_i - c_j).p_u (for a linear layer y = W x this is delta_k^T G x_k: no
 *     per-triplet gradient is built); score heads: D_k = score_jvp's ds_pos -
 *     ds_neg.
 * Exact for every backbone (the look-ahead is taken in parameter space; the
 * jvp is the derivative at Theta, which is all the chain rule needs), in
 * float where the backbone computes in float. On return the backbone is
 * prepared for `in` and forward(in) done; sb's per-triplet buffers and G are
 * clobbered. */
struct til_step_buf;
struct til_rep_grad;
int til_tilm_meta_generic(til_backbone *bb, const til_batch *in, const float *w, const til_batch *out, double reg,
                          double beta, const struct til_rep_grad *extra, int threads, struct til_step_buf *sb,
                          float *dw, double *j_out, til_err *e);

#endif
