/* til_scorers: a model file's scorer (dot or NeuMF); see til_scorers.h. */
#include "til_scorers.h"

#include <string.h>

#include "til_neumf.h"

int til_scorer_from_model(const til_model *m, const char *file, til_scorer *s, til_err *e)
{
    memset(s, 0, sizeof *s);
    const char *mk = til_model_get(m, "kind");
    if (!mk || strcmp(mk, "model") != 0)
        return til_seterr(e, "%s: not a model file (kind = %s; checkpoints are evaluated after export)", file,
                          mk ? mk : "missing");
    uint64_t nu, ni, d;
    if (til_model_get_u64(m, "n_users", &nu, e) || til_model_get_u64(m, "n_items", &ni, e) ||
        til_model_get_u64(m, "dim", &d, e))
        return til_errctx(e, "%s", file);
    if (nu > UINT32_MAX || ni > UINT32_MAX || d < 1 || d > 1024)
        return til_seterr(e, "%s: n_users %llu, n_items %llu or dim %llu out of range", file,
                          (unsigned long long)nu, (unsigned long long)ni, (unsigned long long)d);
    const til_tensor *U = til_model_need(m, "user", TIL_F32, nu, d, file, e);
    const til_tensor *V = U ? til_model_need(m, "item", TIL_F32, ni, d, file, e) : NULL;
    if (!V)
        return -1;
    const char *kind = til_model_get(m, "scorer");
    if (!kind || !strcmp(kind, "dot")) {
        *s = til_scorer_dot(U->data, V->data, (uint32_t)nu, (uint32_t)ni, (int)d);
        return 0;
    }
    if (strcmp(kind, "neumf"))
        return til_seterr(e, "%s: unknown scorer '%s' (known: dot, neumf)", file, kind);
    if (d % 4)
        return til_seterr(e, "%s: neumf dim %llu not a multiple of 4", file, (unsigned long long)d);
    uint64_t h = d / 2, h2 = h / 2;
    static const char *nm[6] = {"neumf.W1", "neumf.b1", "neumf.W2", "neumf.b2", "neumf.wp", "neumf.bp"};
    uint64_t rows[6] = {d, 1, h, 1, 1, 1}, cols[6] = {h, h, h2, h2, h + h2, 1};
    const float *p[6];
    for (int k = 0; k < 6; k++) {
        const til_tensor *t = til_model_need(m, nm[k], TIL_F32, rows[k], cols[k], file, e);
        if (!t)
            return -1;
        p[k] = t->data;
    }
    til_neumf_net net = {(int)d, (int)h, p[0], p[1], p[2], p[3], p[4], p[5]};
    return til_neumf_scorer(s, &net, U->data, V->data, (uint32_t)nu, (uint32_t)ni, 1, e);
}

void til_scorer_release(til_scorer *s)
{
    if (s->score)
        til_neumf_scorer_free(s);
    memset(s, 0, sizeof *s);
}
