/* til_method: the hook through which a training method (TIL's til-ui, til-mi,
 * til-mik; later the baselines) changes the trainer's step without if-chains in
 * til_train.c.
 *
 * Plain BPR has no method object (til_method_create gives NULL): the trainer then
 * runs exactly its own loop. Otherwise, one step of til_train on batch b is
 *
 *   bb.prepare(b); adam.catch_up(bb.rows)
 *   before_grad(b)     may read the backbone (its rows of b are up to date; any
 *                      other row must be caught up first, or til_adam_sync'd),
 *                      update the method's own parameters (TIL: the meta step
 *                      on Lambda) and set env.sb->w to B per-triplet weights of
 *                      the loss (NULL: 1) and env.sb->xr to an extra gradient
 *                      w.r.t. item representations (NULL: none; til_train.h).
 *                      It may prepare other batches but must
 *                      leave the backbone prepared for b (call prepare(b) again).
 *   til_batch_grad(b)  G = dJ_in/dparam[bb.rows] of the (weighted) loss + L2
 *                      (+ the xr term, carried to the parameters by backward)
 *   after_grad(b)      may add further inner terms into env.sb->G (same rows)
 *                      and into *loss (TIL-MI: gamma * KL(T||Q)), and step its
 *                      own parameters (TIL-MI: the centers Phi); should reset
 *                      env.sb->xr if it set one
 *   adam.step(bb.rows, G)
 *
 * Other hooks: epoch_begin (before the epoch's first step, after sampling),
 * log columns (log_header: extra TSV column names, each preceded by a tab;
 * log_row: the values for the epoch just finished, then the per-epoch
 * statistics restart), put_meta (hyper-parameters into the model, the
 * checkpoint and, through the trainer, the log header), save/load (all the
 * method's state in the checkpoint, so that resume stays bit-identical; load
 * also checks that the hyper-parameters match), finish (after the last epoch:
 * dumps). Every hook is optional (NULL). */
#ifndef TIL_METHOD_H
#define TIL_METHOD_H

#include <stdint.h>
#include <stdio.h>

#include "til_inter.h"
#include "til_model.h"
#include "til_util.h"

struct til_train_cfg;
struct til_backbone;
struct til_adam;
struct til_step_buf;
struct til_sampler;
struct til_triplets;
struct til_batch;

/* What the trainer lends a method (pointers stay valid for the whole run). */
typedef struct til_method_env {
    const struct til_train_cfg *c;
    const til_inter *train;
    struct til_backbone *bb;
    struct til_adam *adam;      /* the backbone's optimizer: adam->t = steps done */
    struct til_step_buf *sb;    /* the step's buffers; the method sets sb->w */
    struct til_sampler *sampler;
    struct til_triplets *trip;  /* the epoch's triplets */
    const int *epoch;           /* the epoch in progress (1-based) */
    /* with a held-out split (til_method_split): train is the inner part, held the
     * held-out pairs, full the whole training set; otherwise held = NULL and
     * full = train */
    const til_inter *held, *full;
} til_method_env;

typedef struct til_method til_method;

typedef struct til_method_ops {
    const char *name;
    int (*epoch_begin)(til_method *m, til_err *e);
    int (*before_grad)(til_method *m, const struct til_batch *b, til_err *e);
    int (*after_grad)(til_method *m, const struct til_batch *b, double *loss, til_err *e);
    void (*log_header)(til_method *m, FILE *f);
    void (*log_row)(til_method *m, FILE *f);
    int (*put_meta)(til_method *m, til_model *md, til_err *e);
    int (*save)(til_method *m, til_model *ck, til_err *e);
    int (*load)(til_method *m, const til_model *ck, const char *path, til_err *e);
    int (*finish)(til_method *m, til_err *e);
    void (*free)(til_method *m);
} til_method_ops;

struct til_method {
    const til_method_ops *ops;
    til_method_env env;
    void *impl;
};

/* By name: "bpr" gives *out = NULL (no hooks); "til-ui", "til-mi", "til-mik"
 * (opts: a const til_tilm_opts *, or NULL for the defaults). -1 if unknown. */
int til_method_create(til_method **out, const char *name, const til_method_env *env, const void *opts,
                      til_err *e);
void til_method_free(til_method **m);

/* Methods that train on part of the training set (TIL's --meta-holdout): returns
 * 1 with inner and held filled (the caller frees them with til_inter_free), 0 if
 * the method trains on all of train, -1 on error. */
int til_method_split(const char *name, const void *opts, const til_inter *train, uint64_t seed, til_inter *inner,
                     til_inter *held, til_err *e);

/* 1 if name is a method with hooks (til-ui, til-mi, til-mik). */
int til_method_known(const char *name);
/* The names with hooks, for messages. */
#define TIL_METHOD_NAMES "til-ui, til-mi, til-mik"

#endif
