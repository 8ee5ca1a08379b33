/* til_scorers: the evaluation scorer of a model file, whatever its backbone.
 *
 * Meta "scorer" absent or "dot": score(u, i) = user[u] . item[i] (MF,
 * LightGCN, MGCCF: the tensors are the final representations). "neumf": the
 * NeuMF head over user, item and the neumf.* tensors (til_neumf.h). The
 * scorer points into the model's tensors: keep the model until
 * til_scorer_release. Used by til-train --test, til-eval and til-recommend. */
#ifndef TIL_SCORERS_H
#define TIL_SCORERS_H

#include "til_eval.h"
#include "til_model.h"
#include "til_util.h"

/* Builds the scorer of model m (read from `file`, named in messages): checks
 * kind = model, sizes and the scorer's tensors. */
int til_scorer_from_model(const til_model *m, const char *file, til_scorer *s, til_err *e);
void til_scorer_release(til_scorer *s);

#endif
