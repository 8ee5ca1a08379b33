/* til_state: the triplet states s_uij that the TIL weight network reads.
 *
 * Principal interest (paper eq. 4): eta_u = mean of q_v over the user's training
 * items v (0 for a user with none).
 *
 * Uni-Interest state (eq. 5), 2d values:
 *   s_uij = [q_i (.) p_u + q_i (.) eta_u] || [q_j (.) p_u + q_j (.) eta_u]
 * Multi-Interest state (eq. 6):
 *   s_uij = [q_i (.) p_u + q_i (.) eta_u + alpha (mu_ci (.) p_u + mu_ci (.) eta_u)] || [same for j]
 * where (.) is the element-wise product, mu_c a cluster center and c_i item i's
 * cluster. Both are computed in the factorised form (q_i + alpha mu_ci) (.) (p_u +
 * eta_u) (one rounding per term fewer; equal to the written form up to float
 * rounding, tested against it).
 *
 * The states are inputs of the weight network only: TIL treats them as constants
 * when differentiating with respect to the embeddings (no backward here). */
#ifndef TIL_STATE_H
#define TIL_STATE_H

#include <stdint.h>

#include "til_inter.h"
#include "til_util.h"

/* train: CSR training data; Q: n_items x d item embeddings -> eta: n_users x d
 * (row u = mean of Q rows over train's items of u, zero for an empty user).
 * Sums in double; threads >= 1 (rows are independent: the result does not
 * depend on the thread count). */
void til_state_eta(const til_inter *train, const float *Q, int d, int threads, float *eta);

/* Same, only for the n listed users (rows eta[users[k]] of the n_users x d table
 * are rewritten, the others are left alone): for refreshing eta per batch. */
void til_state_eta_users(const til_inter *train, const float *Q, int d, const uint32_t *users, int n, float *eta);

/* Triplets k = 0..n-1: (u[k], i[k], j[k]).
 * P: n_users x d, Q: n_items x d, eta: n_users x d (til_state_eta),
 * centers: K x d or NULL, memb: n_items cluster ids in [0, K) or NULL, alpha
 * -> S: n x 2d states. centers == NULL (or alpha == 0) gives the Uni-Interest
 * state (eq. 5); otherwise Multi-Interest (eq. 6). */
void til_state_build(int d, int n, const uint32_t *u, const uint32_t *i, const uint32_t *j, const float *P,
                     const float *Q, const float *eta, const float *centers, const uint32_t *memb, float alpha,
                     float *S);

#endif
