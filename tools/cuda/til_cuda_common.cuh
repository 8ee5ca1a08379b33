/* til_cuda_common: what every file of tools/cuda/ shares: status checks that turn
 * a CUDA or cuBLAS failure into a til_err naming file:line and the status
 * string, device buffers, and the device check. Host code only returns errors
 * (never exits), as in the rest of the library. */
#ifndef TIL_CUDA_COMMON_CUH
#define TIL_CUDA_COMMON_CUH

/* the C11 headers of tools/lib in C++: */
#ifndef _Noreturn
#define _Noreturn __attribute__((noreturn))
#endif
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdint.h>

extern "C" { /* the library headers are C */
#include "til_cuda.h"
#include "til_util.h"
}

/* CK(e, call): on failure fills e with "file:line: call: cudaGetErrorString"
 * and returns -1 from the enclosing function. CKG: the same, jumping to fail. */
#define TIL_CU_FAILED(e, st, what)                                                                               \
    til_seterr(e, "%s:%d: %s: %s (%s)", __FILE__, __LINE__, what, cudaGetErrorString(st), cudaGetErrorName(st))
#define CK(e, call)                                                                                              \
    do {                                                                                                         \
        cudaError_t st_ = (call);                                                                                \
        if (st_ != cudaSuccess)                                                                                  \
            return TIL_CU_FAILED(e, st_, #call);                                                                 \
    } while (0)
#define CKG(e, call)                                                                                             \
    do {                                                                                                         \
        cudaError_t st_ = (call);                                                                                \
        if (st_ != cudaSuccess) {                                                                                \
            TIL_CU_FAILED(e, st_, #call);                                                                        \
            goto fail;                                                                                           \
        }                                                                                                        \
    } while (0)
/* after a kernel launch: launch errors (bad configuration) now, faults at the next sync */
#define CK_LAUNCH(e) CK(e, cudaGetLastError())
#define CKG_LAUNCH(e) CKG(e, cudaGetLastError())
#define CKB(e, call)                                                                                             \
    do {                                                                                                         \
        cublasStatus_t st_ = (call);                                                                             \
        if (st_ != CUBLAS_STATUS_SUCCESS)                                                                        \
            return til_seterr(e, "%s:%d: %s: %s", __FILE__, __LINE__, #call, cublasGetStatusString(st_));       \
    } while (0)

/* cudaMalloc of n elements of T (n may be 0) */
template <typename T> static inline int dev_alloc(T **p, size_t n, til_err *e)
{
    *p = NULL;
    cudaError_t st = cudaMalloc((void **)p, (n ? n : 1) * sizeof(T));
    if (st != cudaSuccess)
        return til_seterr(e, "cudaMalloc of %zu bytes: %s", (n ? n : 1) * sizeof(T), cudaGetErrorString(st));
    return 0;
}
template <typename T> static inline void dev_free(T **p)
{
    if (*p)
        cudaFree(*p);
    *p = NULL;
}
template <typename T> static inline int to_dev(T *d, const T *h, size_t n, til_err *e)
{
    if (n)
        CK(e, cudaMemcpy(d, h, n * sizeof(T), cudaMemcpyHostToDevice));
    return 0;
}
template <typename T> static inline int to_host(T *h, const T *d, size_t n, til_err *e)
{
    if (n)
        CK(e, cudaMemcpy(h, d, n * sizeof(T), cudaMemcpyDeviceToHost));
    return 0;
}

/* shared cuBLAS handle of the process (created on first use) */
int til_cuda_blas(cublasHandle_t *h, til_err *e);

#endif
