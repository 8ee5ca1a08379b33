/* til_cuda_dev: device discovery and the shared cuBLAS handle. */
#include <stdio.h>

#include "til_cuda_common.cuh"

extern "C" int til_cuda_built(void) { return 1; }

extern "C" int til_cuda_check(til_err *e)
{
    static int ok = -1; /* 1 checked and fine */
    if (ok == 1)
        return 0;
    int n = 0;
    cudaError_t st = cudaGetDeviceCount(&n);
    if (st != cudaSuccess || n < 1)
        return til_seterr(e, "no CUDA device visible (cudaGetDeviceCount: %s, %d devices)",
                          st != cudaSuccess ? cudaGetErrorString(st) : "cudaSuccess", n);
    CK(e, cudaSetDevice(0));
    ok = 1;
    return 0;
}

extern "C" int til_cuda_describe(char *buf, int n, til_err *e)
{
    if (til_cuda_check(e))
        return -1;
    cudaDeviceProp p;
    CK(e, cudaGetDeviceProperties(&p, 0));
    snprintf(buf, (size_t)n, "%s, %.1f GiB, compute capability %d.%d, %d SMs", p.name,
             (double)p.totalGlobalMem / (1u << 30), p.major, p.minor, p.multiProcessorCount);
    return 0;
}

int til_cuda_blas(cublasHandle_t *h, til_err *e)
{
    static cublasHandle_t handle;
    static int have;
    if (!have) {
        if (til_cuda_check(e))
            return -1;
        CKB(e, cublasCreate(&handle));
        /* plain FP32 (no TF32 tensor-core rounding), fixed results run to run */
        CKB(e, cublasSetMathMode(handle, CUBLAS_PEDANTIC_MATH));
        have = 1;
    }
    *h = handle;
    return 0;
}
