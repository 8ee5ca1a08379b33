/* til_cuda_stub: the til_cuda.h functions in a build without CUDA (no nvcc, or
 * make CUDA=0): each fails with a message saying so. With CUDA=1 this file
 * compiles to nothing and tools/cuda/ (*.cu) provide the functions. */
#include "til_cuda.h"

#ifndef TIL_HAVE_CUDA
#define NOCUDA(e) til_seterr(e, "this build has no CUDA backend (built with CUDA=0 or without nvcc)")

int til_cuda_built(void) { return 0; }
int til_cuda_check(til_err *e) { return NOCUDA(e); }
int til_cuda_describe(char *buf, int n, til_err *e)
{
    (void)buf, (void)n;
    return NOCUDA(e);
}
int til_cuda_train_init(til_cuda_train **out, const struct til_train_cfg *c, struct til_backbone *bb,
                        struct til_adam *a, til_err *e)
{
    (void)c, (void)bb, (void)a;
    *out = NULL;
    return NOCUDA(e);
}
int til_cuda_train_upload(til_cuda_train *d, til_err *e)
{
    (void)d;
    return NOCUDA(e);
}
int til_cuda_train_step(til_cuda_train *d, const struct til_batch *b, double *loss, til_err *e)
{
    (void)d, (void)b, (void)loss;
    return NOCUDA(e);
}
int til_cuda_train_download(til_cuda_train *d, int moments, til_err *e)
{
    (void)d, (void)moments;
    return NOCUDA(e);
}
void til_cuda_train_free(til_cuda_train **d) { *d = NULL; }
int til_cuda_eval_run(const struct til_scorer *s, const struct til_inter *train, const struct til_inter *exclude,
                      const struct til_inter *test, const struct til_eval_opts *o, struct til_eval_result *res,
                      struct til_eval_per_user *per_user, til_err *e)
{
    (void)s, (void)train, (void)exclude, (void)test, (void)o, (void)res, (void)per_user;
    return NOCUDA(e);
}
int til_cuda_k_bpr(const float *U, const float *V, uint32_t n_users, uint32_t n_items, int d, const uint32_t *u,
                   const uint32_t *i, const uint32_t *j, uint64_t n, float *s_pos, float *s_neg, float *loss,
                   float *g, til_err *e)
{
    (void)U, (void)V, (void)n_users, (void)n_items, (void)d, (void)u, (void)i, (void)j, (void)n, (void)s_pos,
        (void)s_neg, (void)loss, (void)g;
    return NOCUDA(e);
}
int til_cuda_k_adam(float *p, float *m, float *v, const float *G, const int32_t *slot, uint64_t rows, int d,
                    float b1, float b2, float ns, float bc2s, float eps, til_err *e)
{
    (void)p, (void)m, (void)v, (void)G, (void)slot, (void)rows, (void)d, (void)b1, (void)b2, (void)ns, (void)bc2s,
        (void)eps;
    return NOCUDA(e);
}
int til_cuda_k_topk(const float *scores, uint64_t n, uint32_t n_items, int k, const uint64_t *kt, uint32_t *items,
                    float *top_scores, int *counts, uint64_t *better, uint64_t *nan, til_err *e)
{
    (void)scores, (void)n, (void)n_items, (void)k, (void)kt, (void)items, (void)top_scores, (void)counts,
        (void)better, (void)nan;
    return NOCUDA(e);
}
#else
typedef int til_cuda_stub_empty; /* ISO C wants a declaration */
#endif
