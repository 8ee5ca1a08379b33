/* til_device: per-element arithmetic shared by the CPU and the CUDA paths.
 *
 * Every function here is `static inline` and marked TIL_HD, which is
 * __host__ __device__ under nvcc and nothing under the C compiler, so the
 * same source line runs in gcc-built code (where tests/unit/test_device.c
 * checks it bit for bit against the CPU modules: til_dot, til_loss_bpr,
 * til_adam's row kernels, til_eval's tie order) and in the kernels of
 * tools/cuda/. The CUDA objects are compiled with --fmad=false (no fused
 * multiply-add contraction, as -std=c11 keeps it off on the host) and IEEE
 * division and square root, so an expression here gives the same bits on both
 * sides whenever its inputs do; only expf/log1pf (the BPR loss) may differ by
 * an ulp between glibc and the CUDA math library.
 *
 * Also the device selector (TIL_DEVICE_*) used by til_train_cfg and
 * til_eval_opts. */
#ifndef TIL_DEVICE_H
#define TIL_DEVICE_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define TIL_HD __host__ __device__
#else
#define TIL_HD
#endif

enum { TIL_DEVICE_CPU = 0, TIL_DEVICE_CUDA = 1 };

/* "cpu" -> TIL_DEVICE_CPU, "cuda" -> TIL_DEVICE_CUDA, else -1. */
static inline int til_device_parse(const char *s)
{
    if (s[0] == 'c' && s[1] == 'p' && s[2] == 'u' && !s[3])
        return TIL_DEVICE_CPU;
    if (s[0] == 'c' && s[1] == 'u' && s[2] == 'd' && s[3] == 'a' && !s[4])
        return TIL_DEVICE_CUDA;
    return -1;
}

/* Fixed-order dot product, til_dot (til_train.h) is this function: 16 lane
 * accumulators (lane l sums k = l, l+16, ...), then a tree 8, 4, 2, 1.
 * a, b: [d]. */
TIL_HD static inline float til_dot_hd(const float *a, const float *b, int d)
{
    float acc[16];
    for (int l = 0; l < 16; l++)
        acc[l] = 0.0f;
    int k = 0;
    for (; k + 16 <= d; k += 16)
        for (int l = 0; l < 16; l++)
            acc[l] += a[k + l] * b[k + l];
    for (; k < d; k++)
        acc[k & 15] += a[k] * b[k];
    for (int w = 8; w; w >>= 1)
        for (int l = 0; l < w; l++)
            acc[l] += acc[l + w];
    return acc[0];
}

/* BPR on one triplet, x = s_pos - s_neg (the arithmetic of til_loss_bpr):
 *   loss = w * softplus(-x) = -w log sigmoid(x)
 *   g    = dL/ds_pos = -sigmoid(-x) * scale * w;  dL/ds_neg = -g */
TIL_HD static inline float til_softplus_hd(float z) { return (z > 0 ? z : 0.0f) + log1pf(expf(-(z < 0 ? -z : z))); }
TIL_HD static inline float til_sigmoid_hd(float z)
{
    if (z >= 0)
        return 1.0f / (1.0f + expf(-z));
    float ez = expf(z);
    return ez / (1.0f + ez);
}
TIL_HD static inline void til_bpr_hd(float s_pos, float s_neg, float w, float scale, float *loss, float *g)
{
    float x = s_pos - s_neg;
    *loss = w * til_softplus_hd(-x);
    *g = -til_sigmoid_hd(-x) * scale * w;
}

/* One element of a dense (PyTorch torch.optim.Adam) step, the operation order
 * of til_adam's adam_row:
 *   m = m*b1 + omb1*g;  v = v*b2 + (omb2*g)*g;  den = sqrt(v)/bc2s + eps;  p = p + (ns*m)/den
 * ns = -lr/(1-b1^t), bc2s = sqrt(1-b2^t) (til_adam c_ns, c_bc2s). */
TIL_HD static inline void til_adam_elem_hd(float *p, float *m, float *v, float g, float b1, float omb1, float b2,
                                           float omb2, float ns, float bc2s, float eps)
{
    float mk = *m * b1 + omb1 * g;
    float vk = *v * b2 + (omb2 * g) * g;
    float den = sqrtf(vk) / bc2s + eps;
    *m = mk;
    *v = vk;
    *p = *p + (ns * mk) / den;
}

/* One element of a SparseAdam step (til_adam's sparse_row):
 *   m += (g - m)*omb1;  v += (g*g - v)*omb2;  p += (ns*m)/(sqrt(v) + eps) */
TIL_HD static inline void til_sparse_adam_elem_hd(float *p, float *m, float *v, float g, float omb1, float omb2,
                                                  float ns, float eps)
{
    float mk = *m + (g - *m) * omb1;
    float vk = *v + (g * g - *v) * omb2;
    *m = mk;
    *v = vk;
    *p = *p + (ns * mk) / (sqrtf(vk) + eps);
}

/* Evaluation order as one unsigned key: a larger key is a better candidate,
 * exactly til_eval's order (higher score first, ties to the lower item id;
 * -0 ties +0). key32 is 0 for an excluded item: NaN, or -inf (the value the
 * CUDA mask kernel writes over train/excluded items); any other float maps
 * above 0, monotonically. */
TIL_HD static inline uint32_t til_score_key32(float s)
{
    if (s != s || s == -INFINITY)
        return 0;
    if (s == 0.0f)
        s = 0.0f; /* -0 -> +0 */
    union {
        float f;
        uint32_t u;
    } x;
    x.f = s;
    return (x.u & 0x80000000u) ? ~x.u : (x.u | 0x80000000u);
}
TIL_HD static inline uint64_t til_score_key64(float s, uint32_t item)
{
    return ((uint64_t)til_score_key32(s) << 32) | (uint64_t)(0xFFFFFFFFu - item);
}

#endif
