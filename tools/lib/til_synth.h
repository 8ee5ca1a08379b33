/* til_synth: the embedded synthetic implicit-feedback dataset (real datasets
 * cannot ship with the project), with planted structure the models can find.
 *
 * Generative model (all draws seeded from opts.seed; stream 0 for items,
 * stream 1 + u for user u, so a user's records depend only on the seed, the
 * item layout and u):
 *   items   a random permutation deals the items round-robin into K clusters
 *           (sizes differ by at most 1); the item dealt j-th has popularity rank
 *           r = j / K inside its cluster and weight 1 / (r + 1)^zipf.
 *   users   each mixes m = 1 + below(min(mix_max, K)) distinct clusters with weights
 *           drawn from a flat Dirichlet (normalised exponentials); its number
 *           of records is log-normal, round(exp(mu + 0.8 N)) with mu set so the
 *           mean is mean_len, clamped to [min_len, n_items / 2].
 *   records with probability `noise` a uniform random item, otherwise a
 *           cluster drawn from the user's mix and an item drawn from the
 *           cluster's Zipf popularity; repeats are redrawn (at most 50 tries per
 *           record, so a user may end up a little short).
 *   ratings affinity a = w_u[cluster(i)] / max_c w_u[c] (0 outside the mix);
 *           rating = clamp(round(1.8 + 3a + 0.8 N), 1, 5): items of the user's
 *           main cluster are mostly rated 4-5 (the "true" positives), off-mix
 *           items mostly 1-3 (the weaker ones of the paper's Fig. 4).
 *   time    a user starts at T0 + U[0, 180 days) and each record follows the
 *           previous one by an exponential gap of mean 2 days; records are
 *           kept in time order. */
#ifndef TIL_SYNTH_H
#define TIL_SYNTH_H

#include <stdint.h>

#include "til_io.h"
#include "til_util.h"

#define TIL_SYNTH_T0 874000000 /* seconds; about the start of MovieLens-100K */

typedef struct til_synth_opts {
    uint32_t n_users, n_items, n_clusters;
    double mean_len; /* mean records per user before the clamp and dedup */
    uint32_t min_len;
    double zipf;     /* popularity exponent inside a cluster */
    int mix_max;     /* clusters per user: 1..min(mix_max, n_clusters) */
    double noise;    /* probability of an off-structure uniform record */
    uint64_t seed;
} til_synth_opts;

/* Defaults: 1500 users, 1000 items, 10 clusters, mean 40 records (~60k in
 * all), min 5, zipf 1.0, mix_max 3, noise 0.1, seed 1. */
til_synth_opts til_synth_defaults(void);

typedef struct til_synth {
    uint32_t n_users, n_items, n_clusters;
    uint32_t *item_cluster; /* n_items */
    uint32_t *item_rank;    /* n_items: popularity rank inside the cluster (0 = most popular) */
    float *user_w;          /* n_users x n_clusters mixture weights (sum 1) */
    uint64_t n;             /* records */
    uint64_t *indptr;       /* n_users + 1 */
    uint32_t *items;        /* n, per user in time order (0-based ids) */
    uint8_t *rating;        /* n, 1..5 */
    int64_t *ts;            /* n, increasing within a user */
} til_synth;

/* Checks the options (messages name the flag). */
int til_synth_check(const til_synth_opts *o, til_err *e);
int til_synth_generate(const til_synth_opts *o, til_synth *s, til_err *e);
void til_synth_free(til_synth *s);

/* Writes "user<TAB>item[<TAB>rating[<TAB>timestamp]]" lines (columns 2, 3 or
 * 4; MovieLens u.data layout at 4) with raw ids = dense id + 1. */
int til_synth_write(const til_synth *s, til_wr *w, int columns, til_err *e);
/* Writes the planted structure: header "item<TAB>cluster<TAB>rank", then one
 * line per item (raw item id, 0-based cluster, popularity rank). */
int til_synth_write_truth(const til_synth *s, til_wr *w, til_err *e);

#endif
