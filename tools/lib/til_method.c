/* til_method: the registry of training methods (see til_method.h). */
#include "til_method.h"

#include <stdlib.h>
#include <string.h>

#include "til_tilm.h"

int til_method_create(til_method **out, const char *name, const til_method_env *env, const void *opts,
                      til_err *e)
{
    *out = NULL;
    if (!strcmp(name, "bpr"))
        return 0;
    int v = til_tilm_variant(name);
    if (v < 0)
        return til_seterr(e, "unknown method '%s' (known: %s)", name, TIL_METHOD_NAMES);
    til_method *m = til_calloc(1, sizeof *m, e);
    if (!m)
        return -1;
    m->env = *env;
    til_tilm_opts def;
    til_tilm_defaults(&def);
    if (til_tilm_create(m, v, opts ? (const til_tilm_opts *)opts : &def, e)) {
        til_method_free(&m);
        return -1;
    }
    *out = m;
    return 0;
}

int til_method_split(const char *name, const void *opts, const til_inter *train, uint64_t seed, til_inter *inner,
                     til_inter *held, til_err *e)
{
    const til_tilm_opts *o = opts;
    if (til_tilm_variant(name) < 0 || !o || !(o->meta_holdout > 0))
        return 0;
    return til_tilm_holdout(train, o->meta_holdout, seed, inner, held, e) ? -1 : 1;
}

int til_method_known(const char *name) { return til_tilm_variant(name) >= 0; }

void til_method_free(til_method **m)
{
    if (!*m)
        return;
    if ((*m)->ops && (*m)->ops->free)
        (*m)->ops->free(*m);
    free(*m);
    *m = NULL;
}
