/* til_meta: the TIL meta-gradient for matrix factorisation (paper eqs. 12-15),
 * one-step look-ahead, in closed form.
 *
 * Model. Theta = (P, Q): P n_users x d, Q n_items x d; a triplet k = (u, i, j)
 * scores x_k = p_u . (q_i - q_j) and has BPR loss L_k = softplus(-x_k).
 *   Inner objective  J_in(Theta, w) = (1/|B|) sum_{k in B} w_k L_k(Theta) + reg(Theta) + extra(Theta)
 *   Look-ahead       Theta~ = Theta - beta grad_Theta J_in(Theta, w)
 *   Outer objective  J_out(Theta~) = (1/|B'|) sum_{k in B'} L_k(Theta~)     (plain BPR, unweighted)
 * Since reg and extra do not depend on w, and L_k(Theta) does not either,
 *   dJ_out/dw_k = -(beta/|B|) < grad J_out(Theta~), grad_Theta L_k(Theta) >
 * where grad_Theta L_k touches three rows: with s'_k = dL/dx = -sigmoid(-x_k),
 *   grad_{p_u} L_k = s'_k (q_i - q_j),  grad_{q_i} L_k = s'_k p_u,  grad_{q_j} L_k = -s'_k p_u.
 * The outer gradient G = grad J_out(Theta~) is the full (summed) gradient at
 * Theta~: a row that several outer triplets touch accumulates all their terms, and
 * a row that several inner triplets touch gets all their steps in Theta~; each
 * inner triplet's own gradient is paired with G separately. Rows that no outer
 * triplet touches have G = 0, so Theta~ is built only on the outer batch's rows
 * (a sparse row map; the tables are never copied). All internal sums are double.
 *
 * Assumptions (what the trainer must match for this to be its exact gradient):
 *  - reg(Theta) = (reg/2) (1/|B|) sum_{k in B} (|p_u|^2 + |q_i|^2 + |q_j|^2): L2 on
 *    the batch's rows, counted once per triplet that uses them (a row in c
 *    triplets gets c * reg/|B| * row in its gradient). reg = 0 turns it off.
 *  - extra(Theta): any further w-independent inner term (TIL-MI: gamma L_c, the
 *    DEC loss on the item embeddings); its gradient only moves Theta~. It is
 *    supplied, row by row, by the optional callback opts->extra.
 *  - The states s_k are constants (not differentiated wrt Theta), as in the paper.
 *  - B' (the outer batch) may be the inner batch itself or a fresh batch; rows may
 *    repeat within and across both; i == j is allowed (gradient 0).
 *  - w are the weights exactly as they enter J_in (after any normalisation: see
 *    til_wnorm_* and til_meta_grad_lambda).
 *
 * Typical use per iteration (the trainer):
 *   1. S = til_state_build(batch); w = til_wnet_forward(S)            (weights from current state)
 *   2. zero gL; til_meta_grad_lambda(..., S, weight_norm, gL)          (dJ_out/dLambda at Theta~)
 *      Adam step on Lambda with gL
 *   3. w = til_wnet_forward(S) again with the new Lambda (normalised if asked);
 *      Adam step on Theta with the weighted loss (1/|B|) sum w_k L_k + reg. */
#ifndef TIL_META_H
#define TIL_META_H

#include <stdint.h>

#include "til_util.h"
#include "til_wnet.h"

enum { TIL_META_USER = 0, TIL_META_ITEM = 1 };

/* A batch of n triplets (u[k], i[k], j[k]). */
typedef struct til_meta_batch {
    int n;
    const uint32_t *u, *i, *j;
} til_meta_batch;

/* Extra inner gradient: adds d extra/d theta for row `row` of table `table`
 * (TIL_META_USER or TIL_META_ITEM), whose current value is theta (d floats), into
 * g (d doubles). Called once for each distinct row of the outer batch. */
typedef void (*til_meta_extra_fn)(void *ctx, int table, uint32_t row, const float *theta, int d, double *g);

typedef struct til_meta_opts {
    double beta;             /* look-ahead step size (> 0; the trainer uses its learning rate) */
    double reg;              /* L2 coefficient, see the assumptions above */
    til_meta_extra_fn extra; /* NULL: none */
    void *extra_ctx;
} til_meta_opts;

/* Workspace: the sparse row map (n_users + n_items int32, -1 outside a call) and
 * the look-ahead rows. Create once per training run; not thread-safe. */
typedef struct til_meta_ws {
    uint32_t n_users, n_items;
    int d;
    int32_t *umap, *imap; /* row -> slot, or -1 */
    int cap, n_slots;
    uint32_t *slot_row;   /* cap */
    uint8_t *slot_tab;    /* cap: TIL_META_USER / TIL_META_ITEM */
    double *theta;        /* cap x d: Theta~ rows */
    double *G;            /* cap x d: grad J_out(Theta~) rows */
    int fcap;
    float *f1, *f2;       /* fcap each: scratch for til_meta_grad_lambda */
} til_meta_ws;

int til_meta_ws_init(til_meta_ws *ws, uint32_t n_users, uint32_t n_items, int d, til_err *e);
void til_meta_ws_free(til_meta_ws *ws);

/* P: n_users x d, Q: n_items x d, in: B (n triplets), w: n weights as used in
 * J_in, out: B' -> dw: n values dJ_out/dw_k; *j_out (if non-NULL) = J_out(Theta~).
 * Returns 0 or -1 (allocation). */
int til_meta_dw(til_meta_ws *ws, const float *P, const float *Q, const til_meta_batch *in, const float *w,
                const til_meta_batch *out, const til_meta_opts *o, float *dw, double *j_out, til_err *e);

/* Batch weight normalisation (--weight-norm batch): wn_k = w_k / mean(w).
 * w: n -> wn: n (may alias w); returns mean(w). */
double til_wnorm_forward(const float *w, int n, float *wn);
/* Chain rule through the normalisation: w: n raw weights, dwn: n values dJ/dwn
 * -> dw: n values dJ/dw (may alias dwn):
 *   dJ/dw_m = (dJ/dwn_m - (1/n) sum_k dJ/dwn_k wn_k) / mean(w). */
void til_wnorm_backward(const float *w, int n, const float *dwn, float *dw);

/* The whole chain to Lambda. m, c: the weight network and the cache of its last
 * forward on S (n x m->in, the states of `in`), so c->w holds the raw weights.
 * weight_norm: 0 = raw weights in J_in, 1 = batch-normalised weights.
 * -> grad (m->n_params) += dJ_out/dLambda; dw (n, optional) = dJ_out/dw_raw;
 * *j_out (optional) = J_out(Theta~). */
int til_meta_grad_lambda(til_meta_ws *ws, const float *P, const float *Q, const til_meta_batch *in,
                         const til_meta_batch *out, const til_meta_opts *o, const til_wnet *m, til_wnet_cache *c,
                         const float *S, int weight_norm, float *grad, float *dw, double *j_out, til_err *e);

#endif
