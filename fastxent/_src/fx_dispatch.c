/* The runtime choice among the instruction-set builds of fx_kernels.c.
   setup.py defines FX_HAVE_AVX512 / FX_HAVE_AVX2 for the builds it made. */
#include <stddef.h>

#include "fx_kernels.h"

int fx_supported_kernels(const fx_kernels **out)
{
    int count = 0;
#if defined(FX_HAVE_AVX512) || defined(FX_HAVE_AVX2)
    __builtin_cpu_init();
#endif
#ifdef FX_HAVE_AVX512
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("fma"))
        out[count++] = &fx_kernels_avx512;
#endif
#ifdef FX_HAVE_AVX2
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        out[count++] = &fx_kernels_avx2;
#endif
    out[count++] = &fx_kernels_baseline;
    out[count] = NULL;
    return count;
}
