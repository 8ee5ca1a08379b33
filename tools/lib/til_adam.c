/* til_adam: dense-exact lazy Adam, its eager reference, and SparseAdam. */
#include "til_adam.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "til_par.h"

const char *til_adam_mode_name(int mode)
{
    switch (mode) {
    case TIL_ADAM_DENSE: return "adam";
    case TIL_ADAM_EAGER: return "adam-eager";
    case TIL_ADAM_SPARSE: return "lazy-adam";
    }
    return "?";
}

int til_adam_mode_parse(const char *s)
{
    if (!strcmp(s, "adam"))
        return TIL_ADAM_DENSE;
    if (!strcmp(s, "adam-eager"))
        return TIL_ADAM_EAGER;
    if (!strcmp(s, "lazy-adam"))
        return TIL_ADAM_SPARSE;
    return -1;
}

int til_adam_reserve(til_adam *a, uint64_t t, til_err *e)
{
    if (t < a->cap)
        return 0;
    uint64_t cap = a->cap ? a->cap : 1024;
    while (cap <= t)
        cap *= 2;
    float *ns = til_realloc(a->c_ns, cap, sizeof *ns, e);
    if (!ns)
        return -1;
    a->c_ns = ns;
    float *bs = til_realloc(a->c_bc2s, cap, sizeof *bs, e);
    if (!bs)
        return -1;
    a->c_bc2s = bs;
    for (uint64_t s = a->cap; s < cap; s++) {
        /* as Python computes them: bias corrections in double, then rounded to
         * float32 when they meet the float32 tensors */
        double bc1 = 1.0 - pow(a->b1, (double)s), bc2 = 1.0 - pow(a->b2, (double)s);
        if (s == 0) {
            ns[s] = 0;
            bs[s] = 1;
        } else if (a->mode == TIL_ADAM_SPARSE) {
            ns[s] = (float)(-(a->lr * sqrt(bc2) / bc1));
            bs[s] = 1;
        } else {
            ns[s] = (float)(-(a->lr / bc1));
            bs[s] = (float)sqrt(bc2);
        }
    }
    a->cap = cap;
    return 0;
}

int til_adam_init(til_adam *a, int mode, float *p, uint64_t rows, int dim, double lr, double b1, double b2,
                  double eps, til_err *e)
{
    memset(a, 0, sizeof *a);
    a->mode = mode;
    a->p = p;
    a->rows = rows;
    a->dim = dim;
    a->lr = lr;
    a->b1 = b1;
    a->b2 = b2;
    a->eps = eps;
    a->m = til_aligned_calloc(rows * (uint64_t)dim, sizeof(float), e);
    a->v = til_aligned_calloc(rows * (uint64_t)dim, sizeof(float), e);
    if (mode == TIL_ADAM_DENSE)
        a->last = til_calloc(rows, sizeof *a->last, e);
    if (mode == TIL_ADAM_EAGER) {
        a->slot = til_malloc(rows, sizeof *a->slot, e);
        if (a->slot)
            for (uint64_t r = 0; r < rows; r++)
                a->slot[r] = -1;
    }
    if (!a->m || !a->v || (mode == TIL_ADAM_DENSE && !a->last) || (mode == TIL_ADAM_EAGER && !a->slot) ||
        til_adam_reserve(a, 1, e)) {
        til_adam_free(a);
        return -1;
    }
    return 0;
}

void til_adam_free(til_adam *a)
{
    free(a->m);
    free(a->v);
    free(a->last);
    free(a->c_ns);
    free(a->c_bc2s);
    free(a->slot);
    memset(a, 0, sizeof *a);
}

/* The row kernels are written once over a vector type VF of VW lanes (AVX-512,
 * AVX, or scalar), each lane doing exactly the scalar IEEE operations in the
 * same order (no FMA: -std=c11 keeps contraction off and the intrinsics are
 * separate mul/add), so every path gives the same bits. Explicit intrinsics
 * because GCC will not vectorise sqrtf without -fno-math-errno. */
#include <immintrin.h>
#if defined(__AVX512F__)
#define VW 16
typedef __m512 VF;
#define V_LD _mm512_loadu_ps
#define V_ST _mm512_storeu_ps
#define V_SET1 _mm512_set1_ps
#define V_ADD _mm512_add_ps
#define V_SUB _mm512_sub_ps
#define V_MUL _mm512_mul_ps
#define V_DIV _mm512_div_ps
#define V_SQRT _mm512_sqrt_ps
#elif defined(__AVX__)
#define VW 8
typedef __m256 VF;
#define V_LD _mm256_loadu_ps
#define V_ST _mm256_storeu_ps
#define V_SET1 _mm256_set1_ps
#define V_ADD _mm256_add_ps
#define V_SUB _mm256_sub_ps
#define V_MUL _mm256_mul_ps
#define V_DIV _mm256_div_ps
#define V_SQRT _mm256_sqrt_ps
#else
#define VW 0
#endif

/* One dense Adam step on one row, gradient g. p, m, v, g: [d].
 * The operation order is the contract of bit-exactness:
 *   m = m*b1 + omb1*g;  v = v*b2 + (omb2*g)*g;  den = sqrt(v)/bc2s + eps;  p = p + (ns*m)/den */
static void adam_row(float *restrict p, float *restrict m, float *restrict v, const float *restrict g, int d,
                     float b1, float omb1, float b2, float omb2, float ns, float bc2s, float eps)
{
    int k = 0;
#if VW
    VF vb1 = V_SET1(b1), vo1 = V_SET1(omb1), vb2 = V_SET1(b2), vo2 = V_SET1(omb2), vns = V_SET1(ns),
       vbs = V_SET1(bc2s), veps = V_SET1(eps);
    for (; k + VW <= d; k += VW) {
        VF gk = V_LD(g + k);
        VF mk = V_ADD(V_MUL(V_LD(m + k), vb1), V_MUL(vo1, gk));
        VF vk = V_ADD(V_MUL(V_LD(v + k), vb2), V_MUL(V_MUL(vo2, gk), gk));
        VF den = V_ADD(V_DIV(V_SQRT(vk), vbs), veps);
        V_ST(m + k, mk);
        V_ST(v + k, vk);
        V_ST(p + k, V_ADD(V_LD(p + k), V_DIV(V_MUL(vns, mk), den)));
    }
#endif
    for (; k < d; k++) {
        float mk = m[k] * b1 + omb1 * g[k];
        float vk = v[k] * b2 + (omb2 * g[k]) * g[k];
        float den = sqrtf(vk) / bc2s + eps;
        m[k] = mk;
        v[k] = vk;
        p[k] = p[k] + (ns * mk) / den;
    }
}

/* The same step with g = 0, for steps s0..s1 in a row (the lazy replay). The
 * "+ 0.0f" terms are what omb*g evaluates to for g = 0 (+0), kept so that the
 * signs of zeros match adam_row exactly. Each chunk of VW lanes stays in
 * registers across all the replayed steps. */
static void adam_row_zero(float *restrict p, float *restrict m, float *restrict v, int d, float b1, float b2,
                          const float *restrict ns, const float *restrict bc2s, float eps, uint64_t s0, uint64_t s1)
{
    int k = 0;
#if VW
    VF vb1 = V_SET1(b1), vb2 = V_SET1(b2), veps = V_SET1(eps), z = V_SET1(0.0f);
    for (; k + VW <= d; k += VW) {
        VF mk = V_LD(m + k), vk = V_LD(v + k), pk = V_LD(p + k);
        for (uint64_t s = s0; s <= s1; s++) {
            mk = V_ADD(V_MUL(mk, vb1), z);
            vk = V_ADD(V_MUL(vk, vb2), z);
            VF den = V_ADD(V_DIV(V_SQRT(vk), V_SET1(bc2s[s])), veps);
            pk = V_ADD(pk, V_DIV(V_MUL(V_SET1(ns[s]), mk), den));
        }
        V_ST(m + k, mk);
        V_ST(v + k, vk);
        V_ST(p + k, pk);
    }
#endif
    for (; k < d; k++) {
        float mk = m[k], vk = v[k], pk = p[k];
        for (uint64_t s = s0; s <= s1; s++) {
            mk = mk * b1 + 0.0f;
            vk = vk * b2 + 0.0f;
            float den = sqrtf(vk) / bc2s[s] + eps;
            pk = pk + (ns[s] * mk) / den;
        }
        m[k] = mk;
        v[k] = vk;
        p[k] = pk;
    }
}

/* SparseAdam on one row: m += (g - m)*omb1; v += (g*g - v)*omb2; p += (ns*m)/(sqrt(v) + eps) */
static void sparse_row(float *restrict p, float *restrict m, float *restrict v, const float *restrict g, int d,
                       float omb1, float omb2, float ns, float eps)
{
    int k = 0;
#if VW
    VF vo1 = V_SET1(omb1), vo2 = V_SET1(omb2), vns = V_SET1(ns), veps = V_SET1(eps);
    for (; k + VW <= d; k += VW) {
        VF gk = V_LD(g + k), m0 = V_LD(m + k), v0 = V_LD(v + k);
        VF mk = V_ADD(m0, V_MUL(V_SUB(gk, m0), vo1));
        VF vk = V_ADD(v0, V_MUL(V_SUB(V_MUL(gk, gk), v0), vo2));
        V_ST(m + k, mk);
        V_ST(v + k, vk);
        V_ST(p + k, V_ADD(V_LD(p + k), V_DIV(V_MUL(vns, mk), V_ADD(V_SQRT(vk), veps))));
    }
#endif
    for (; k < d; k++) {
        float mk = m[k] + (g[k] - m[k]) * omb1;
        float vk = v[k] + (g[k] * g[k] - v[k]) * omb2;
        m[k] = mk;
        v[k] = vk;
        p[k] = p[k] + (ns * mk) / (sqrtf(vk) + eps);
    }
}

typedef struct {
    til_adam *a;
    const uint32_t *rows; /* NULL: all rows */
    const float *G;
    uint64_t upto; /* catch up to this step */
} job;

static void replay(til_adam *a, uint64_t r, uint64_t upto)
{
    uint64_t last = a->last[r];
    if (last >= upto)
        return;
    int d = a->dim;
    float *p = a->p + r * d, *m = a->m + r * d, *v = a->v + r * d;
    float b1 = (float)a->b1, b2 = (float)a->b2, eps = (float)a->eps;
    adam_row_zero(p, m, v, d, b1, b2, a->c_ns, a->c_bc2s, eps, last + 1, upto);
    a->last[r] = upto;
}

static void catch_up_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    (void)part;
    job *j = ctx;
    for (uint64_t k = lo; k < hi; k++)
        replay(j->a, j->rows ? j->rows[k] : k, j->upto);
}

void til_adam_catch_up(til_adam *a, const uint32_t *rows, uint64_t n, int threads)
{
    if (a->mode != TIL_ADAM_DENSE || a->t == 0)
        return;
    job j = {a, rows, NULL, a->t};
    til_par_for(n < 256 ? 1 : threads, n, catch_up_part, &j);
}

void til_adam_sync(til_adam *a, int threads) { til_adam_catch_up(a, NULL, a->rows, threads); }

static void step_part(void *ctx, int part, uint64_t lo, uint64_t hi)
{
    (void)part;
    job *j = ctx;
    til_adam *a = j->a;
    int d = a->dim;
    uint64_t t = a->t; /* already incremented */
    float b1 = (float)a->b1, b2 = (float)a->b2, eps = (float)a->eps;
    float omb1 = (float)(1.0 - a->b1), omb2 = (float)(1.0 - a->b2);
    float ns = a->c_ns[t], bs = a->c_bc2s[t];
    static const float zero[1024];
    for (uint64_t k = lo; k < hi; k++) {
        uint64_t r;
        const float *g;
        if (a->mode == TIL_ADAM_EAGER) { /* every row; gradient or zeros */
            r = k;
            g = a->slot[r] >= 0 ? j->G + (uint64_t)a->slot[r] * d : zero;
        } else {
            r = j->rows[k];
            g = j->G + k * d;
        }
        float *p = a->p + r * d, *m = a->m + r * d, *v = a->v + r * d;
        if (a->mode == TIL_ADAM_SPARSE) {
            sparse_row(p, m, v, g, d, omb1, omb2, ns, eps);
        } else {
            adam_row(p, m, v, g, d, b1, omb1, b2, omb2, ns, bs, eps);
            if (a->mode == TIL_ADAM_DENSE)
                a->last[r] = t;
        }
    }
}

int til_adam_step(til_adam *a, const uint32_t *rows, const float *G, uint64_t n, int threads, til_err *e)
{
    if (a->dim > 1024)
        return til_seterr(e, "adam: dim %d > 1024", a->dim);
    if (til_adam_reserve(a, a->t + 1, e))
        return -1;
    a->t++;
    job j = {a, rows, G, a->t};
    if (a->mode == TIL_ADAM_EAGER) {
        for (uint64_t k = 0; k < n; k++)
            a->slot[rows[k]] = (int32_t)k;
        til_par_for(threads, a->rows, step_part, &j);
        for (uint64_t k = 0; k < n; k++)
            a->slot[rows[k]] = -1;
    } else {
        til_par_for(n < 256 ? 1 : threads, n, step_part, &j);
    }
    return 0;
}
