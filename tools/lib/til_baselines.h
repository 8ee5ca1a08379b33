/* til_baselines: the seven baseline methods of the TIL paper as til-train methods.
 *
 * They touch only the negatives and the loss, so they work on every backbone
 * through til_backbone (prepare/forward/backward) and the dot-product head:
 *
 *   wbpr     BPR, negatives j ~ pop_j^a among the user's non-positives
 *            (Gantner et al. 2012): alias table over all items + rejection of
 *            positives; a = --pop-exponent (1). Drawn with the epoch, chunked.
 *   aobpr    BPR, adaptive oversampling (Rendle & Freudenthaler, WSDM 2014):
 *            rank r ~ exp(-r/lambda) on 0..|I|-1 (truncated geometric, exact
 *            inverse CDF), factor f ~ |p_uf| sigma_f, j = the item at rank r of
 *            the items ordered by v_.f (descending if p_uf > 0, else ascending);
 *            the user's positives are rejected (the whole draw is redone).
 *            The orderings and sigma_f, and the p_u used, come from a snapshot
 *            of the scored representations (U, V after forward over all rows),
 *            refreshed at the start of every epoch and every R batches, R =
 *            round(|I| ln|I| / batch) (>= 1) unless --aobpr-refresh gives the
 *            number of draws: the paper refreshes every |I| log |I| draws.
 *   pris     PRIS (Lian, Liu & Chen, WWW 2020): N = --negatives negatives per
 *            positive from a cluster proposal Q(j|u) = P(k|u) P(j|k):
 *            items are clustered by k-means (til_kmeans, K = --pris-clusters)
 *            on their scored vectors V at the start of every epoch; with item
 *            masses m_j (1: uniform within a cluster; pop_j^a with
 *            --pris-within pop) and w_k = sum_{j in k} m_j,
 *              P(k|u) ∝ w_k exp(p_u . c_k),   P(j|k) = m_j / w_k,
 *            so log Q(j|u) = p_u . c_k(j) + log m_j - log Z_u. Positives are
 *            rejected (the draw is redone). Each sampled negative gets the
 *            importance weight w_uj = softmax over the positive's N negatives
 *            of (s_uj - log Q(j|u)) (log Z_u cancels), detached, and the loss
 *            is sum_j w_uj BPR(s_ui - s_uj), averaged over positives.
 *            Layout: a PRIS step of B positives is expanded into B x N
 *            triplets (u, i, j_k) (index b*N + k) with per-triplet weight
 *            N * w_uj and the usual mean over the B*N triplets, so the mean is
 *            over positives. L2 stays reg*0.5*|e0|^2/(B N) per occurrence: u and
 *            i count N times, i.e. reg/B as in BPR, and the negatives' term is
 *            their mean.
 *   tce, rce point-wise binary cross-entropy on the positive (label 1) and the
 *            sampled negative (label 0) of each triplet (Wang et al., WSDM
 *            2021), averaged over the 2B elements of the batch, as the paper's
 *            code (WenjieWang/DenoisingRec, loss.py):
 *            T-CE: sort the 2B elements by loss * label (negatives 0), keep the
 *            int((1 - eps(T)) * 2B) smallest, mean BCE over the kept: the
 *            dropped are the largest-loss positives, eps*2B of them (--drop-rate
 *            is capped at 0.5 so no negative is dropped).
 *            R-CE: loss * weight, weight = sigmoid(y)^beta for positives and
 *            (1 - sigmoid(y))^beta for negatives, detached; mean over 2B.
 *   tce-bpr  BPR, the batch's int(eps(T) ... ) triplets with the largest BPR loss
 *            dropped: keep int((1 - eps(T)) * B) smallest, mean over the kept.
 *   rce-bpr  BPR, each triplet's loss times sigmoid(x_uij)^beta (detached).
 *
 * Drop schedule (the paper's code: np.linspace(0, drop_rate, num_gradual)[T]):
 *   eps(T) = eps_max * T / (N_w - 1) for T < N_w, eps_max after,
 * T = optimisation steps done before this batch (0-based), eps_max =
 * --drop-rate (0.2), N_w = --drop-warmup (30000); beta = --rce-beta (0.2).
 *
 * Randomness: adaptive samplers (aobpr, pris) draw per batch from the
 * generator (seed, TIL_STREAM_BL, epoch, batch index); the epoch's shuffle is the
 * trainer's. The snapshot is taken after til_adam_sync (exact, so it does not
 * change the trajectory). Resuming from a checkpoint written at an epoch end
 * is bit-identical; one written mid-epoch (a signal) re-takes the snapshot
 * from the resumed model, so the rest of that epoch may differ. */
#ifndef TIL_BASELINES_H
#define TIL_BASELINES_H

#include <stdint.h>

#include "til_inter.h"
#include "til_util.h"

struct til_rng;
struct til_backbone;
struct til_batch;
struct til_adam;
struct til_model;

enum { TIL_M_BPR = 0, TIL_M_WBPR, TIL_M_AOBPR, TIL_M_PRIS, TIL_M_TCE, TIL_M_RCE, TIL_M_TCE_BPR, TIL_M_RCE_BPR };

/* Random-stream tag of the per-batch draws (see til_stream in til_sampler.h). */
#define TIL_STREAM_BL 0x10u

typedef struct til_bl_cfg {
    int negatives;          /* PRIS negatives per positive (5) */
    double drop_rate;       /* eps_max of T-CE / TCE-BPR (0.2), <= 0.5 */
    uint64_t drop_warmup;   /* steps to reach eps_max (30000) */
    double beta;            /* R-CE / RCE-BPR exponent (0.2) */
    double aobpr_lambda;    /* rank scale (500) */
    uint64_t aobpr_refresh; /* draws between refreshes; 0: |I| ln |I| */
    int pris_clusters;      /* K (16) */
    int pris_pop;           /* 1: within a cluster by pop^a; 0: uniform (default) */
    double pop_exp;         /* a of WBPR and PRIS-pop (1) */
} til_bl_cfg;

void til_bl_defaults(til_bl_cfg *c);
/* "bpr", "wbpr", ...; -1 if unknown. */
int til_bl_method_parse(const char *s);
const char *til_bl_method_name(int m);
#define TIL_BL_METHODS "bpr, wbpr, aobpr, pris, tce, rce, tce-bpr, rce-bpr"

/* ---- alias table (Vose): draws k with probability p_k / sum p */
typedef struct til_alias {
    uint32_t n;
    float *prob;    /* n */
    uint32_t *alias; /* n */
} til_alias;
/* p: n >= 1 non-negative weights with a positive sum. */
int til_alias_build(til_alias *a, const double *p, uint32_t n, til_err *e);
uint32_t til_alias_draw(const til_alias *a, struct til_rng *r);
void til_alias_free(til_alias *a);

/* ---- the drop schedule and the losses (pure functions, for the tests) */
double til_bl_drop_rate(double eps_max, uint64_t warmup, uint64_t T);
/* Elements kept of n by the paper's code: int((1 - eps) * n). */
uint64_t til_bl_n_keep(double eps, uint64_t n);
/* One batch of n triplets: fills loss[b] (so that sum(loss)/n is the batch's
 * loss) and g_pos, g_neg (dL/ds_pos, dL/ds_neg of that batch loss). w: per-
 * triplet weights (PRIS) or NULL. kept (n bytes, or NULL): 1 if the triplet's
 * positive (T-CE) / triplet (TCE-BPR) was kept. Ties in the drop order go to
 * the lower index (kept first). idx: n scratch u32 (T-CE, TCE-BPR). */
void til_bl_loss(int method, const til_bl_cfg *c, uint64_t T, const float *s_pos, const float *s_neg,
                 const float *w, uint64_t n, float *loss, float *g_pos, float *g_neg, uint8_t *kept, uint32_t *idx);

/* ---- AOBPR pieces */
/* V: n x d -> ord: d x n (column f: item ids by V[., f] descending, ties by
 * id), sigma: d (population std of each column). */
int til_aobpr_order(const float *V, uint32_t n, int d, int threads, uint32_t *ord, float *sigma, til_err *e);
/* Rank in 0..n-1 with P(r) ∝ exp(-r/lambda). */
uint32_t til_aobpr_rank(struct til_rng *r, uint32_t n, double lambda);
/* One draw for user vector p (d): factor (written to *f) then rank; no
 * rejection. */
uint32_t til_aobpr_draw(struct til_rng *r, const float *p, const uint32_t *ord, const float *sigma, uint32_t n,
                        int d, double lambda, int *f);

/* ---- PRIS pieces */
typedef struct til_pris {
    int K, d;
    uint32_t n_items;
    float *centers;    /* K x d */
    uint32_t *assign;  /* n_items: cluster of each item */
    uint32_t *list;    /* n_items: items grouped by cluster */
    uint64_t *start;   /* K + 1 */
    double *cum;       /* n_items + 1: cumulative item mass along list */
    double *logw;      /* K: log w_k (-inf for an empty cluster) */
    float *logm;       /* n_items: log m_j */
    const double *mass; /* n_items, or NULL (uniform) */
} til_pris;
/* Clusters V (n x d) into K clusters (k-means, max 20 Lloyd steps, seed). */
int til_pris_build(til_pris *p, const float *V, uint32_t n, int d, int K, const double *mass, uint64_t seed,
                   int threads, til_err *e);
void til_pris_free(til_pris *p);
/* The cluster distribution of user vector pu: prob (K) = P(k|u); a (K) the
 * logits p_u . c_k + log w_k. */
void til_pris_user(const til_pris *p, const float *pu, double *a, double *prob);
/* Draws j from Q(.|u) given prob (K), returns j and *logq = log Q(j|u) + log Z_u
 * = a[k] - log w_k + log m_j (no rejection). */
uint32_t til_pris_draw(const til_pris *p, struct til_rng *r, const double *a, const double *prob, double *logq);
/* Importance weights of N negatives: w = softmax(s - logq), s, logq: N. */
void til_pris_weights(const float *s, const double *logq, int N, float *w);

/* ---- the method's state in the trainer */
typedef struct til_bl {
    int method;
    til_bl_cfg cfg;
    const til_inter *train;
    uint64_t seed, batch;
    int d;
    uint64_t T; /* steps done before the current one (set by the trainer) */
    double *pop; /* n_items: count^a (WBPR, PRIS-pop) */
    til_alias alias;
    /* adaptive: the snapshot of U (n_users x d) and V (n_items x d) */
    float *snap;
    int have_snap;
    uint64_t refresh_batches;
    uint32_t *ord;
    float *sigma;
    til_pris pris;
    /* per-batch scratch: expanded PRIS batch and loss scratch */
    uint64_t cap;
    uint32_t *eu, *ei, *ej, *idx;
    float *w;
    uint8_t *kept;
    double *scratch; /* PRIS: per negative log Q */
} til_bl;

int til_bl_init(til_bl *b, int method, const til_bl_cfg *c, const til_inter *train, int dim, uint64_t batch,
                uint64_t seed, til_err *e);
void til_bl_free(til_bl *b);
/* Triplets per positive in a step (N for PRIS, else 1). */
int til_bl_expand(const til_bl *b);
/* Whether negatives are drawn per batch (aobpr, pris). */
int til_bl_per_batch(const til_bl *b);
/* WBPR: a negative from the popularity alias (for til_sampler's draw hook). */
uint32_t til_bl_pop_draw(const void *ctx, struct til_rng *r);

/* Per-batch path: for batch `bidx` of epoch `epoch` whose positives are
 * in->u, in->i (in->n of them), refreshes the snapshot when due (syncs adam,
 * forward over all rows), draws the negatives into j (AOBPR: in->n; PRIS: the
 * expanded batch, returned in *out with weights in b->w). */
int til_bl_batch(til_bl *b, struct til_backbone *bb, struct til_adam *adam, uint64_t epoch, uint64_t bidx,
                 const struct til_batch *in, uint32_t *j, struct til_batch *out, int threads, til_err *e);
/* Per-triplet weights of the current step (PRIS, after til_bl_step_loss) or NULL. */
const float *til_bl_weights(const til_bl *b);
/* The method's loss over the step's n triplets (the batch til_bl_batch gave),
 * at step b->T: PRIS weights from s_neg, then til_bl_loss. */
int til_bl_step_loss(til_bl *b, uint64_t n, const float *s_pos, const float *s_neg, float *loss, float *g_pos,
                     float *g_neg, til_err *e);

/* Meta entries describing the method (sampler, negatives, hyper-parameters). */
int til_bl_meta(struct til_model *m, const til_bl *b, til_err *e);

#endif
