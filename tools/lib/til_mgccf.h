/* til_mgccf: the Multi-GCCF backbone (Sun, Zhang, Ma, Coates, Guo, Tang, He:
 * "Multi-Graph Convolution Collaborative Filtering", ICDM 2019,
 * arXiv 2001.00267), one layer as in the TIL paper, scored by dot product.
 *
 * Notation: row vectors, x W; D = --dim; e_r the layer-0 embedding (parameter
 * row) of node r; users are nodes 0..n_users), items n_users..N. For a user u
 * (an item is the same with the item weights Q_V, W_V, M_V, S_V):
 *   a_u = (1/|N(u)|) sum_{i in N(u)} e_i      N(u): u's training items   [D]
 *   n_u = tanh(a_u Q_U)                       Bipar-GCN aggregation   Q_U: D x D
 *   h_u = tanh([e_u ; n_u] W_U)               Bipar-GCN update        W_U: 2D x D
 *   b_u = sum_{u' in S(u)} e_u'               S(u): u's user-user neighbours
 *   z_u = tanh(b_u M_U)                       multi-graph encoding    M_U: D x D
 *   s_u = tanh(e_u S_U)                       skip connection         S_U: D x D
 *   f_u = h_u + z_u + s_u                     information fusion: element-wise sum
 *   score(u, i) = f_u . f_i
 * U, V (and a model file's user/item tensors) are f: n x D, so meta dim = D
 * and til-eval scores them by dot (meta scorer = dot).
 *
 * Choices the paper leaves open or that we fix (documented in docs/MGCCF.md):
 *  - Neighbourhoods: full, mean-aggregated (the paper samples neighbours);
 *    deterministic. A node without training interactions has a = 0, n = 0.
 *  - Mean before the transform: mean(e_i Q) = mean(e_i) Q (linear), computed
 *    as (sum e_i) * (1/|N(u)|), the reciprocal rounded once to float.
 *  - User-user and item-item graphs (the paper thresholds cosine similarity
 *    of interaction vectors): built once from the training interactions; S(r)
 *    = the k (TIL_MGCCF_K = 10) nodes r' != r of the same kind with the
 *    largest cosine |X_r & X_r'| / sqrt(|X_r| |X_r'|) among those sharing at
 *    least one interaction, ties to the smaller id (compared exactly in
 *    integers: c_a^2 d_b vs c_b^2 d_a); directed (r' in S(r) does not imply
 *    r in S(r')); unweighted sum as in the paper.
 *  - Activation tanh everywhere (the paper's sigma); no biases; fusion by
 *    element-wise sum (the paper's default; concatenation and attention are
 *    its alternatives); all hidden and output sizes D.
 *  - Parameters: param = [user rows; item rows; weight rows], the weights
 *    packed after the N embedding rows as Q_U, W_U, M_U, S_U, Q_V, W_V, M_V,
 *    S_V (each row-major, input-major: W[k][j] multiplies x_k into y_j),
 *    10 D rows of D floats, so dense Adam moves them as rows. Init: the
 *    trainer's Xavier embeddings; each weight Xavier-uniform (fan_in x
 *    fan_out) from stream (seed, INIT, 0, 2 + index). L2 (reg) on the batch's
 *    layer-0 embedding rows only (the trainer's convention); weights are not
 *    regularized.
 *
 * One training step: forward(batch) computes f only for the batch's distinct
 * users and items (the "touched" rows; every row's f depends on the whole
 * graph's embeddings, but not on other rows' f, so this is exactly the full
 * propagation restricted to the rows the loss reads) and keeps their
 * intermediates; backward(batch) (after forward of the same batch) goes back
 * through the tanh's, the linear layers, the mean and sum aggregations
 * (their transposes: a gather over every node's bipartite and reverse
 * similarity neighbours) and adds the L2 term. forward(NULL) computes f for
 * every node (evaluation, export). prepare returns every row (rows[k] = k).
 *
 * JVP (TIL's meta-gradient): the first-order change of f along a parameter
 * direction (embedding rows and the ten weight rows' directions), forward
 * mode through the same equations: for each product (x W)' = x' W + x W',
 * through tanh t' = (1 - t^2) (.)', the aggregations summing the neighbours'
 * directions. Computed only for the users and items of the `want` batch (the
 * rows TIL reads; NULL: every node), each row's forward recomputed from param
 * (no forward state read or written).
 *
 * Determinism: rows are independent and computed in parallel; each output
 * (a row of f, of the embedding gradient, of a weight gradient) sums its
 * terms in one fixed order (neighbours in CSR order; weight gradients over
 * the touched rows in increasing node id), so the bits do not depend on the
 * thread count. */
#ifndef TIL_MGCCF_H
#define TIL_MGCCF_H

#include <stdint.h>
#include <string.h>

#include "til_inter.h"
#include "til_util.h"

/* tanh(x) in float, branch-free so that gcc vectorises the loops around it
 * (glibc's tanhf is a call per element and was a quarter of an MGCCF TIL
 * step): Cephes' tanhf polynomial for |x| < 0.625, 1 - 2 / (e^{2|x|} + 1)
 * above (e^y by Cephes' expf polynomial and an exponent shift, |x| clamped
 * to 10, where tanh rounds to 1 in float), the sign put back by bits. Tested
 * against tanh() in double: within 3e-7 absolute + 3e-7 relative over
 * [-20, 20]; tanh(0) = 0, odd, +-inf gives +-1, NaN gives NaN. */
static inline float til_tanhf_fast(float x)
{
    /* every select on integer bits: gcc if-converts (and vectorises) those, not float ?: */
    uint32_t ix, sx, ia;
    memcpy(&ix, &x, sizeof ix);
    sx = ix & 0x80000000u;
    ia = ix & 0x7fffffffu;
    uint32_t nan = (uint32_t)-(int32_t)(ia > 0x7f800000u);
    float a;
    memcpy(&a, &ia, sizeof a);
    /* small: x + x z P(z) */
    float z = a * a;
    float ps = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z + 1.33314422036e-1f) * z -
                3.33332819422e-1f) * z * a + a;
    /* large: e = exp(2 min(a, 10)) = 2^n e^r, |r| <= ln2 / 2 (bits of a >= 0 order as a does) */
    uint32_t ic = ia < 0x41200000u ? ia : 0x41200000u;
    float c;
    memcpy(&c, &ic, sizeof c);
    float y = 2.0f * c;
    float n = (float)(int32_t)(y * 1.44269504088896341f + 0.5f); /* y >= 0: round half up */
    float r = (y - n * 0.693359375f) + n * 2.12194440e-4f;
    float pe = (((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r +
                 1.6666665459e-1f) * r + 5.0000001201e-1f) * r * r + r + 1.0f;
    uint32_t ie = (uint32_t)((int32_t)n + 127) << 23;
    float p2;
    memcpy(&p2, &ie, sizeof p2);
    float pl = 1.0f - 2.0f / (pe * p2 + 1.0f);
    uint32_t bs, bl, small = (uint32_t)-(int32_t)(ia < 0x3f200000u); /* a < 0.625 */
    memcpy(&bs, &ps, sizeof bs);
    memcpy(&bl, &pl, sizeof bl);
    uint32_t it = (((bs & small) | (bl & ~small)) | sx) & ~nan;
    it |= ix & nan; /* NaN stays NaN */
    float t;
    memcpy(&t, &it, sizeof t);
    return t;
}

struct til_backbone;

enum { TIL_MGCCF_K = 10 /* user-user / item-item neighbours per node */ };

/* A directed neighbour graph, CSR: row r's neighbours col[ptr[r] .. ptr[r+1]),
 * in increasing id. */
typedef struct til_knn {
    uint64_t n;
    uint64_t *ptr; /* n + 1 */
    uint32_t *col; /* ptr[n] */
} til_knn;

/* Top-k cosine neighbours of every row of a binary matrix X (n_rows rows; CSR
 * xptr, xidx, columns sorted within a row) given its transpose (tptr, tidx:
 * for each column, the rows that have it, increasing), as described above.
 * Rows in parallel; the result does not depend on threads. */
int til_mgccf_knn(til_knn *g, uint64_t n_rows, const uint64_t *xptr, const uint32_t *xidx, const uint64_t *tptr,
                  const uint32_t *tidx, int k, int threads, til_err *e);
void til_knn_free(til_knn *g);

/* Multi-GCCF over train; k: similarity neighbours (TIL_MGCCF_K); batch_cap:
 * the largest batch forward/backward will see. */
int til_mgccf_init(struct til_backbone *bb, const til_inter *train, int dim, int k, uint64_t batch_cap, int threads,
                   til_err *e);

/* The two similarity graphs of an MGCCF backbone (users: S over node ids
 * 0..n_users; items: over item ids 0..n_items), for tests and tools. */
const til_knn *til_mgccf_user_graph(const struct til_backbone *bb);
const til_knn *til_mgccf_item_graph(const struct til_backbone *bb);

#endif
