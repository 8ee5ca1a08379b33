/* til_split: per-user train/validation/test split of an interaction file.
 *
 * For a ratio a:b:c (exact integers or decimals, total s = a + b + c), a user
 * with n records gets
 *   n_tr = min(n, max(1, floor(n*a/s)))     training records
 *   n_va = min(floor(n*b/s), n - n_tr)      validation records
 *   n_te = n - n_tr - n_va                  test records
 * in integer arithmetic. Which records go where depends only on (seed, user):
 * the user's records, in item order, are shuffled by a generator seeded with
 * til_rng_seed(seed, user) and the first n_tr go to training, the next n_va to
 * validation, the rest to test. The temporal mode orders them by (timestamp,
 * item) instead: earliest to training, latest to test. Every user with at
 * least one record keeps at least one training record; with 8:1:1 every user
 * with >= 2 records gets >= 1 test record and one with >= 10 records gets >= 1
 * validation record. Outputs keep n_users, n_items and the rating/timestamp
 * columns of the input. */
#ifndef TIL_SPLIT_H
#define TIL_SPLIT_H

#include <stdint.h>

#include "til_inter.h"
#include "til_util.h"

enum { TIL_SPLIT_TRAIN = 0, TIL_SPLIT_VALID = 1, TIL_SPLIT_TEST = 2 };

typedef struct til_split_opts {
    uint64_t parts[3]; /* a:b:c, exact integers; a >= 1, total <= 2^31 */
    uint64_t seed;
    int temporal; /* 1: by timestamp instead of shuffling (input needs timestamps) */
} til_split_opts;

typedef struct til_split_stats {
    uint64_t nnz[3];               /* records per part */
    uint64_t users;                /* users with >= 1 record */
    uint64_t users_empty_valid;    /* of those, with no validation record */
    uint64_t users_empty_test;     /* of those, with no test record */
} til_split_stats;

/* Parses a ratio "a:b:c" of three non-negative decimals (at most 6 fractional
 * digits, e.g. "8:1:1" or "0.8:0.1:0.1") into exact integer parts scaled to a
 * common denominator. The first part must be positive. */
int til_split_parse_ratio(const char *s, uint64_t parts[3], til_err *e);

/* Per-user part sizes for n records (the rule above). */
void til_split_counts(uint64_t n, const uint64_t parts[3], uint64_t out[3]);

/* Splits in into out[TIL_SPLIT_TRAIN..TIL_SPLIT_TEST] (allocated here, freed
 * with til_inter_free). st may be NULL. */
int til_split_run(const til_inter *in, const til_split_opts *o, til_inter out[3], til_split_stats *st, til_err *e);

#endif
