/* til_neumf: the NeuMF backbone (He et al., WWW 2017) trained with pairwise
 * BPR (as in the TIL paper), and its scorer for evaluation.
 *
 * Dimensions (D = --dim, D % 4 == 0; h = D / 2): each user and item has one
 * parameter row of D floats, split [GMF part (h) | MLP part (h)]; these rows
 * are the representations U, V (dim D), so the trainer's row machinery, L2 and
 * a JVP (identity) are those of MF. --dim 64: GMF 32, MLP embeddings 32 + 32,
 * tower 64 -> 32 -> 16; --dim 128 gives the 64/64 split and tower 128 -> 64 -> 32.
 *   g   = p_u[0..h) * q_i[0..h)                      GMF, element-wise  [h]
 *   x   = [p_u[h..D); q_i[h..D)]                     MLP input          [D]
 *   a1  = relu(W1^T x + b1)      W1: D x h            [h]
 *   a2  = relu(W2^T a1 + b2)     W2: h x h/2          [h/2]
 *   y   = wp . [g; a2] + bp      wp: h + h/2          score
 * The head's parameters (the tower) are packed after the user and item rows in
 * the parameter table, in the order W1 (row-major, input-major), b1, W2, b2,
 * wp, bp, padded to whole rows: Adam moves them as rows that every batch
 * touches. L2 (reg) applies to the batch's embedding rows only, as for MF; the
 * tower is not regularized. Init: embeddings Xavier-uniform per table (the
 * trainer's), W1, W2, wp Xavier-uniform, biases 0.
 *
 * TIL methods: the state vectors, the item clusters and til-mi's clustering
 * loss use U, V = the whole rows [GMF | MLP] (the representations the head
 * scores; the loss's gradient enters through backward's dQi/dQj, so it lands
 * on the item rows and never on the tower). jvp is the identity on the embedding
 * rows (the tower moves no representation); score_jvp is the forward-mode
 * derivative of the head (pair_jvp: through both halves, the ReLUs and every
 * tower weight), so the meta-gradient's per-triplet terms <G_out, grad l_k>
 * need no per-triplet tower gradient.
 *
 * A model file (backbone = neumf) carries user, item (n x D) and the tensors
 * neumf.W1 (D x h), neumf.b1 (1 x h), neumf.W2 (h x h/2), neumf.b2 (1 x h/2),
 * neumf.wp (1 x 3h/2), neumf.bp (1 x 1), with meta scorer = neumf. */
#ifndef TIL_NEUMF_H
#define TIL_NEUMF_H

#include <stdint.h>

#include "til_util.h"

struct til_backbone;
struct til_scorer;

/* Views of a NeuMF network's weights (not owned). */
typedef struct til_neumf_net {
    int D, h;
    const float *W1, *b1, *W2, *b2, *wp, *bp;
} til_neumf_net;

/* Floats of the tower for dim D (W1, b1, W2, b2, wp, bp). */
uint64_t til_neumf_tower_size(int D);
/* Points net's weights into a packed tower (layout above). */
void til_neumf_net_view(til_neumf_net *net, int D, const float *tower);

/* The score of one pair (the plain reference). */
float til_neumf_score(const til_neumf_net *net, const float *pu, const float *qi);

/* An evaluation scorer over U (n_users x D), V (n_items x D) and net: blocks
 * of users, each against all items, with the item half of the first layer
 * (W1[h..D)^T q_i[h..D) + b1) computed once here. Release with
 * til_neumf_scorer_free. U, V and the weights must outlive it. */
int til_neumf_scorer(struct til_scorer *s, const til_neumf_net *net, const float *U, const float *V,
                     uint32_t n_users, uint32_t n_items, int threads, til_err *e);
void til_neumf_scorer_free(struct til_scorer *s);

int til_neumf_init(struct til_backbone *bb, uint32_t n_users, uint32_t n_items, int dim, uint64_t batch_cap,
                   til_err *e);

#endif
