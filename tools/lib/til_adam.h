/* til_adam: the Adam optimizer over a table of parameter rows (rows x dim,
 * float32, row-major), with three semantics:
 *
 *   TIL_ADAM_DENSE  (default) PyTorch torch.optim.Adam on nn.Embedding with dense
 *                   gradients: EVERY row moves at every step; a row without
 *                   gradient has g = 0 and still decays m, v and moves p. Done
 *                   lazily and exactly: each row remembers the last step it was
 *                   brought up to (last[r]); before the row is read at step t
 *                   the zero-gradient steps last+1..t-1 are replayed on it with
 *                   the same per-step constants and the same operations, so the
 *                   result is bit-identical to the eager update (tested), while
 *                   the row stays in L1 instead of streaming 3 tables per step.
 *                   til_adam_sync brings every row up to date (before
 *                   evaluation, checkpoints and saving).
 *   TIL_ADAM_EAGER  the plain reference for DENSE: every row updated every step.
 *   TIL_ADAM_SPARSE torch.optim.SparseAdam ("lazy Adam"): only rows with a
 *                   gradient move; a different algorithm, not an optimisation.
 *
 * Per element at step t (PyTorch 1.13 single-tensor Adam, float32 arithmetic,
 * constants computed in double and rounded to float):
 *   m = m*b1 + (1-b1)*g;  v = v*b2 + ((1-b2)*g)*g
 *   denom = sqrt(v) / sqrt(1 - b2^t) + eps
 *   p = p + (-lr / (1 - b1^t)) * m / denom
 * SparseAdam (rows with a gradient only):
 *   m = m + (g - m)*(1-b1);  v = v + (g*g - v)*(1-b2)
 *   p = p + (-lr * sqrt(1 - b2^t) / (1 - b1^t)) * m / (sqrt(v) + eps)
 * Rows are updated in parallel; each row's arithmetic does not depend on the
 * thread count. */
#ifndef TIL_ADAM_H
#define TIL_ADAM_H

#include <stdint.h>

#include "til_util.h"

enum { TIL_ADAM_DENSE = 0, TIL_ADAM_EAGER = 1, TIL_ADAM_SPARSE = 2 };

typedef struct til_adam {
    int mode;
    uint64_t rows;
    int dim;
    double lr, b1, b2, eps;
    float *p;       /* rows x dim, the parameters (not owned) */
    float *m, *v;   /* rows x dim, moments (owned) */
    uint64_t *last; /* rows: last step applied to the row (DENSE only) */
    uint64_t t;     /* steps done */
    float *c_ns, *c_bc2s; /* per step s (index s): -lr/(1-b1^s) (-lr*sqrt(bc2)/bc1 for SPARSE), sqrt(1-b2^s) */
    uint64_t cap;
    int32_t *slot; /* EAGER: rows -> index into the step's gradient, or -1 */
} til_adam;

const char *til_adam_mode_name(int mode);
/* Parses "adam" (DENSE), "adam-eager" (EAGER), "lazy-adam" (SPARSE); -1 if unknown. */
int til_adam_mode_parse(const char *s);

/* p: rows x dim parameters, updated in place. b1 .9, b2 .999, eps 1e-8 as in PyTorch. */
int til_adam_init(til_adam *a, int mode, float *p, uint64_t rows, int dim, double lr, double b1, double b2,
                  double eps, til_err *e);
void til_adam_free(til_adam *a);

/* DENSE: brings rows[0..n) up to step a->t (the last step done) before they are
 * read; no-op otherwise. rows unique. */
void til_adam_catch_up(til_adam *a, const uint32_t *rows, uint64_t n, int threads);
/* Step t = a->t + 1: rows[k] has gradient G[k*dim .. k*dim+dim) (rows unique;
 * DENSE: rows must have been caught up); every other row has zero gradient
 * (DENSE: applied later by catch-up; EAGER: applied now; SPARSE: no update). */
int til_adam_step(til_adam *a, const uint32_t *rows, const float *G, uint64_t n, int threads, til_err *e);
/* DENSE: brings every row up to step a->t. */
void til_adam_sync(til_adam *a, int threads);
/* Makes the per-step constants exist up to step t (used by resume). */
int til_adam_reserve(til_adam *a, uint64_t t, til_err *e);

#endif
