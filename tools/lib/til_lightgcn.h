/* til_lightgcn: the LightGCN backbone (He et al., SIGIR 2020) and its sparse
 * propagation.
 *
 * Graph: the bipartite graph of the training interactions over N = n_users +
 * n_items nodes (users first), A_hat = D^-1/2 A D^-1/2 (symmetric; a node of
 * degree 0 has no edges), weight of edge (u, i) = 1 / sqrt(d_u d_i), computed
 * in double and rounded once to float. Stored as CSR over all N rows, each
 * row's neighbours in increasing node order.
 *
 * Parameters: param = E0 = [user rows; item rows] (N x dim), layer 0.
 * Forward (once per batch, the whole graph, as LightGCN-PyTorch):
 *   E_{l+1} = A_hat E_l,  F = (E_0 + E_1 + ... + E_L) / (L + 1)
 *   U = F[0 .. n_users), V = F[n_users .. N)
 * A forward whose param is bit-equal to the input of one of the last two
 * forwards reuses that F (kept with a copy of its input) instead of
 * propagating: same bits, since F depends on param alone. A TIL step
 * forwards Theta, the look-ahead Theta~, then Theta again, and the trainer's
 * and the meta-gradient's forwards of an unchanged Theta were each a full
 * propagation (10 per TIL-UI step with --meta-batch fresh, 6 now; BPR: 2).
 * Backward: A_hat is symmetric, so with dF the gradient w.r.t. F,
 *   dE_0 = (dF + A_hat dF + ... + A_hat^L dF) / (L + 1)
 * plus the L2 term reg_c * e0 for every occurrence of a layer-0 row in the
 * batch (the trainer's convention). dF is scattered from the per-triplet
 * gradients serially in triplet order (u, i, j); every product runs in
 * parallel over rows with each row summed in its fixed neighbour order, so
 * the bits do not depend on the thread count. prepare returns every row
 * (rows[k] = k): dense Adam moves all rows at every step.
 *
 * JVP (for TIL's meta-gradient, when the trainer asks for it): the forward is
 * linear in E0, so the directional derivative of (U, V) along a direction
 * dE0 is the same propagation applied to dE0: til_lightgcn_propagate. */
#ifndef TIL_LIGHTGCN_H
#define TIL_LIGHTGCN_H

#include <stdint.h>

#include "til_inter.h"
#include "til_util.h"

struct til_backbone;

/* The normalized bipartite adjacency, CSR over n = n_users + n_items rows. */
typedef struct til_graph {
    uint64_t n;      /* rows */
    uint64_t *ptr;   /* n + 1 */
    uint32_t *col;   /* ptr[n] */
    float *w;        /* ptr[n] */
} til_graph;

/* Builds A_hat from the training interactions. */
int til_graph_bipartite(til_graph *g, const til_inter *train, til_err *e);
void til_graph_free(til_graph *g);

/* Y (n x dim) = A_hat X (n x dim), rows in parallel; Y must not alias X. */
void til_graph_spmm(const til_graph *g, const float *X, float *Y, int dim, int threads);

/* F = (X + A X + ... + A^L X) / (L + 1) (n x dim each); t1, t2: n x dim scratch.
 * F may not alias X. This is both the forward (X = E0) and, A being
 * symmetric, the backward (X = dF, F = dE0) and the JVP. */
void til_lightgcn_propagate(const til_graph *g, int layers, const float *X, float *F, float *t1, float *t2, int dim,
                            int threads);

/* LightGCN over train (users, items as in train); layers >= 1. */
int til_lightgcn_init(struct til_backbone *bb, const til_inter *train, int dim, int layers, int threads, til_err *e);

/* Full-graph propagations so far: forwards computed (*prop), forwards served
 * from the forward cache (*hit: param bit-equal to one of the last two
 * forwards' inputs, so the representations are reused, same bits), backward
 * and jvp products (*other). The environment variable
 * TIL_LIGHTGCN_NOCACHE=1 at init turns the cache off (every forward propagates);
 * TIL_LGCN_COUNTS set prints these counts on stderr when the backbone is freed. */
void til_lightgcn_counts(const struct til_backbone *bb, uint64_t *prop, uint64_t *hit, uint64_t *other);

#endif
