/* til_backbone: the models whose representations are scored.
 *
 * A backbone owns a table of trainable parameter rows (param: n_param x dim,
 * float32, row-major; the optimizer moves them) and computes from it the
 * representations that scores use: U (n_users x dim) and V (n_items x dim),
 * score(u, i) = U[u] . V[i] for dot-product backbones (MF, LightGCN, MGCCF;
 * NeuMF has its own head through the optional score/score_backward ops). One
 * training step, driven by til_train:
 *
 *   prepare(batch)    the unique parameter rows the batch reads and writes
 *                     (bb->rows, bb->n_rows; graph backbones return every
 *                     row, rows[k] = k), in a fixed order, so the optimizer can
 *                     bring exactly those up to date before they are read.
 *   forward(batch)    U, V valid at least for the batch's users and items
 *                     (batch NULL: for all, before evaluation). MF: U, V alias
 *                     param (no work). LightGCN: propagation.
 *   backward(batch, dU, dQi, dQj, reg_c)
 *                     from dL/dU[u_b], dL/dV[i_b], dL/dV[j_b] per triplet
 *                     (each B x dim) adds into G (n_rows x dim, zeroed by the
 *                     caller; G[k] belongs to rows[k]) the gradient of the loss
 *                     w.r.t. the parameter rows, plus the L2 term reg_c * e0
 *                     for every occurrence of a layer-0 row e0 in the batch
 *                     (LightGCN convention: reg * 0.5 * sum |e0|^2 / B, so
 *                     reg_c = reg / B), and returns 0.5 * sum |e0|^2 over those
 *                     occurrences in *l2 (for the reported loss).
 *   jvp(rows, n_rows, D, want, dU, dV)   (optional; TIL's meta-gradient needs it)
 *                     forward-mode derivative of the representations at the
 *                     current parameters: D is a direction in parameter space,
 *                     D[k] (dim) for parameter row rows[k] (rows NULL: all
 *                     n_param rows, D n_param x dim); unlisted rows have
 *                     direction 0. ADDS (dR/dparam) D into dU (n_users x dim)
 *                     and dV (n_items x dim), zeroed by the caller, at least
 *                     on the users and items of the batch `want` (NULL: every
 *                     row); other rows may be left as they were. Linear
 *                     backbones (MF: the identity, scatter D's user rows into
 *                     dU and item rows into dV; LightGCN: propagate D like the
 *                     embeddings, no L2) give exactly R(param + D) - R(param);
 *                     non-linear ones (MGCCF, through its tanh's and weight
 *                     rows) the first-order change. Its transpose must be what
 *                     backward computes (the VJP) from dU, dQi, dQj without its
 *                     L2 term. Must not touch param, U, V, rows or the state
 *                     prepare/forward left for backward. Deterministic for any
 *                     thread count. The representations only: a score head's
 *                     own parameters (NeuMF's tower) go through score_jvp.
 * Reductions are deterministic: each parameter row sums its contributions in
 * triplet order (u, then i, then j within a triplet), whatever the threads. */
#ifndef TIL_BACKBONE_H
#define TIL_BACKBONE_H

#include <stdint.h>

#include "til_inter.h"
#include "til_util.h"

typedef struct til_batch {
    uint64_t n;                /* triplets */
    const uint32_t *u, *i, *j; /* n each */
} til_batch;

typedef struct til_backbone til_backbone;
struct til_model;
struct til_scorer;

typedef struct til_backbone_ops {
    const char *name;
    int (*prepare)(til_backbone *bb, const til_batch *b, til_err *e);
    int (*forward)(til_backbone *bb, const til_batch *b, int threads, til_err *e);
    int (*backward)(til_backbone *bb, const til_batch *b, const float *dU, const float *dQi, const float *dQj,
                    float reg_c, float *G, double *l2, int threads, til_err *e);
    void (*free)(til_backbone *bb);
    /* [NULL: the backbone does not support TIL methods] forward-mode derivative
     * of the representations (contract at the top of this file). */
    int (*jvp)(til_backbone *bb, const uint32_t *rows, uint64_t n_rows, const float *D, const til_batch *want,
               float *dU, float *dV, int threads, til_err *e);
    /* Optional ops (NULL: the default in brackets). */
    /* [none] after the trainer's Xavier init of the user and item tables:
     * initialises the backbone's other parameter rows (NeuMF's tower). */
    void (*init)(til_backbone *bb, uint64_t seed);
    /* [dot product U[u].V[i]] per-triplet scores of a non-dot-product head:
     * s_pos[b] = score(u_b, i_b), s_neg[b] = score(u_b, j_b) (B each), after
     * forward. */
    int (*score)(til_backbone *bb, const til_batch *b, float *s_pos, float *s_neg, int threads, til_err *e);
    /* [dU = g_pos V[i] + g_neg V[j], dQi = g_pos U[u], dQj = g_neg U[u]] its
     * backward: from dL/ds (B each) fills dU, dQi, dQj (B x dim, w.r.t. the
     * representation rows) and keeps the head's own parameter gradient for
     * backward to add into G. */
    int (*score_backward)(til_backbone *bb, const til_batch *b, const float *g_pos, const float *g_neg, float *dU,
                          float *dQi, float *dQj, int threads, til_err *e);
    /* [none: TIL methods need it with a score op] forward-mode derivative of
     * the head's scores at the current parameters (after forward of b) along
     * the parameter direction D (rows, n_rows as for jvp, every parameter row:
     * embeddings and the head's own): ds_pos[b], ds_neg[b] (B each, SET, not
     * added) = d score(u_b, i_b) . D, d score(u_b, j_b) . D. Its transpose is
     * score_backward followed by backward with reg 0. */
    int (*score_jvp)(til_backbone *bb, const til_batch *b, const uint32_t *rows, uint64_t n_rows, const float *D,
                     float *ds_pos, float *ds_neg, int threads, til_err *e);
    /* [til_scorer_dot(U, V)] the evaluation scorer over the representations
     * after forward(NULL); valid until the next forward. */
    int (*scorer)(til_backbone *bb, struct til_scorer *s, til_err *e);
    /* [none] adds the backbone's hyper-parameters to model/checkpoint meta. */
    int (*meta)(const til_backbone *bb, struct til_model *m, til_err *e);
    /* [none] adds what a model file needs beyond tensors user/item (after
     * forward(NULL)): head layers and meta "scorer" (til_scorer_from_model). */
    int (*export_model)(const til_backbone *bb, struct til_model *m, til_err *e);
} til_backbone_ops;

struct til_backbone {
    const til_backbone_ops *ops;
    uint32_t n_users, n_items;
    int dim;
    float *param;        /* n_param x dim (64-byte aligned) */
    uint64_t n_param;
    const float *U, *V;  /* representations after forward */
    uint32_t *rows;      /* after prepare: n_rows unique param rows, or NULL = all */
    uint64_t n_rows;
    uint64_t rows_cap;   /* the most rows prepare returns (0: 3 x batch_cap); G holds rows_cap x dim */
    void *impl;
};

/* Construction options of the graph and neural backbones (zero: defaults). */
typedef struct til_backbone_opts {
    const til_inter *train; /* the training interactions (graph backbones: required) */
    int layers;             /* LightGCN propagation layers (0: 1) */
    int threads;            /* for building graphs (0: 1) */
} til_backbone_opts;

/* MF: param = [user rows; item rows] (n_users + n_items rows), U = param,
 * V = param + n_users * dim; batch_cap: the largest batch prepare will see. */
int til_mf_init(til_backbone *bb, uint32_t n_users, uint32_t n_items, int dim, uint64_t batch_cap, til_err *e);

/* Xavier-uniform init of rows [r0, r0 + n) as nn.init.xavier_uniform_ on an
 * n x dim table: U(-a, a), a = sqrt(6 / (n + dim)), from generator (seed, stream). */
void til_init_xavier(float *rows, uint64_t n, int dim, uint64_t seed, uint64_t stream);

/* By name ("mf"); NULL if unknown. */
int til_backbone_create(til_backbone *bb, const char *name, uint32_t n_users, uint32_t n_items, int dim,
                        uint64_t batch_cap, til_err *e);
/* By name: "mf", "lightgcn", "neumf", "mgccf" (o may be NULL for mf and neumf). */
int til_backbone_create_opts(til_backbone *bb, const char *name, uint32_t n_users, uint32_t n_items, int dim,
                             uint64_t batch_cap, const til_backbone_opts *o, til_err *e);
/* The evaluation scorer of bb after forward(NULL): ops->scorer or dot(U, V). */
int til_backbone_scorer(til_backbone *bb, struct til_scorer *s, til_err *e);
void til_backbone_free(til_backbone *bb);

#endif
