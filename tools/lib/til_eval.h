/* til_eval: full-ranking evaluation (Recall, NDCG, Precision, HitRate @k, MRR).
 *
 * For every user with at least one test item, all items are scored, the user's
 * training items (and, when given, a second excluded set such as validation
 * items) are removed from the candidates, and the top max(k) are selected with
 * ties broken by lower item id. Metrics are averaged over those users:
 *   Recall@k    = hits@k / |test_u|
 *   NDCG@k      = sum over hits at rank r (1-based) of 1/log2(r+1), divided by
 *                 the ideal DCG over min(|test_u|, k) positions
 *   Precision@k = hits@k / k;  HitRate@k = [hits@k > 0]
 *   MRR         = 1 / rank of the first test item in the full candidate ranking
 * Scoring is blocked over users (sgemm for dot-product models) and runs on
 * opts->threads threads; results do not depend on the thread count.
 *
 * CONTRACT used by til-train (early stopping) and til-eval; implemented in
 * til_eval.c. */
#ifndef TIL_EVAL_H
#define TIL_EVAL_H

#include <stdint.h>

#include "til_inter.h"
#include "til_util.h"

#define TIL_EVAL_MAXK 16

/* Scores a block of users against all items: out is n x n_items, row-major.
 * Must be safe to call from several threads at once (distinct out buffers). */
typedef int (*til_score_fn)(void *ctx, const uint32_t *users, int n, float *out, til_err *e);

typedef struct til_scorer {
    uint32_t n_users, n_items;
    til_score_fn score; /* NULL for a dot-product scorer over U and V below */
    void *ctx;
    const float *U, *V; /* dot-product scorer: U n_users x dim, V n_items x dim */
    int dim;
} til_scorer;

typedef struct til_eval_opts {
    int ks[TIL_EVAL_MAXK];
    int n_k;      /* number of cutoffs, >= 1 */
    int threads;  /* >= 1 */
    int block;    /* users per block; 0 = automatic */
    int device;   /* TIL_DEVICE_CPU (0) or TIL_DEVICE_CUDA: til_cuda_eval_run */
} til_eval_opts;

typedef struct til_eval_result {
    int n_k;
    int ks[TIL_EVAL_MAXK];
    double recall[TIL_EVAL_MAXK], ndcg[TIL_EVAL_MAXK], precision[TIL_EVAL_MAXK], hitrate[TIL_EVAL_MAXK];
    double mrr;
    uint64_t n_users; /* users evaluated (with >= 1 test item) */
} til_eval_result;

/* Per-user metrics, optional output of til_eval_run: for each evaluated user,
 * recall/ndcg/precision/hitrate per cutoff and mrr. Arrays are n_users long,
 * indexed by user id; users not evaluated have evaluated[u] = 0. */
typedef struct til_eval_per_user {
    uint8_t *evaluated;
    double *recall, *ndcg, *precision, *hitrate; /* n_users x n_k */
    double *mrr;                                 /* n_users */
} til_eval_per_user;

/* A dot-product scorer over U (n_users x dim) and V (n_items x dim). */
til_scorer til_scorer_dot(const float *U, const float *V, uint32_t n_users, uint32_t n_items, int dim);

/* Evaluates. exclude may be NULL. train/exclude/test must have the scorer's
 * n_users and n_items (checked). per_user may be NULL; if given it is allocated
 * here and freed with til_eval_per_user_free. */
int til_eval_run(const til_scorer *s, const til_inter *train, const til_inter *exclude, const til_inter *test,
                 const til_eval_opts *o, til_eval_result *res, til_eval_per_user *per_user, til_err *e);
void til_eval_per_user_free(til_eval_per_user *p);

/* Pieces of til_eval_run shared with the CUDA evaluator (til_cuda_eval_run):
 * idcg[0..maxk] (idcg[n] = sum_{r=1..n} 1/log2(r+1));
 * one user's values v (recall[n_k] ndcg[n_k] precision[n_k] hitrate[n_k] mrr)
 * from its top list ids[r * stride], r < hn (best first) and its mrr;
 * the averages (sums in evaluation order) and per-user arrays from the
 * n_eval x (4 n_k + 1) values of users[0..n_eval). */
void til_eval_idcg(int maxk, double *idcg);
void til_eval_user_metrics(const til_eval_opts *o, const double *idcg, const til_inter *test, uint32_t u,
                           const uint32_t *ids, size_t stride, int hn, double mrr, double *v);
int til_eval_collect(const uint32_t *users, uint64_t n_eval, const double *vals, const til_eval_opts *o,
                     uint32_t n_users, til_eval_result *res, til_eval_per_user *per_user, til_err *e);

/* Top-k recommendation: for users[0..n) (any ids, any order), the k best items
 * not in exclude (may be NULL), best first, ties to the lower id, into
 * items/scores (n x k, row x for users[x]) and counts[x] (< k when the user
 * has fewer candidates). Same blocking and threading as til_eval_run. */
int til_recommend(const til_scorer *s, const til_inter *exclude, const uint32_t *users, uint64_t n, int k,
                  int threads, uint32_t *items, float *scores, int *counts, til_err *e);

/* Checks that data (name dname) has the scorer's n_users x n_items; the
 * message names both files. */
int til_scorer_check_data(const til_scorer *s, const char *mname, const til_inter *t, const char *dname,
                          til_err *e);

/* Scores users[0..n) into out (n x n_items): the scorer's own function, or for
 * a dot-product scorer sgemm over U rows gathered into ubuf (n x dim floats).
 * Exposed for til-eval --bench-sgemm-only (the arithmetic floor). */
int til_scorer_block(const til_scorer *s, const uint32_t *users, int n, float *ubuf, float *out, til_err *e);
/* The arithmetic floor of til_eval_run: scores exactly the same blocks on the
 * same threads and discards them (no masking, selection or metrics). */
int til_eval_score_only(const til_scorer *s, const til_inter *train, const til_inter *test, const til_eval_opts *o,
                        til_err *e);
/* Users per scoring block that til_eval_run uses for these options (depends
 * on n_items and o->block only, never on the thread count). */
int til_eval_block_size(const til_scorer *s, const til_eval_opts *o);

#endif
