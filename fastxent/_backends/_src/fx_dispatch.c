/* The run-time choice among the instruction-set builds of fx_kernels.c.
 *
 * setup.py defines FX_BUILT as the list of builds it made, X(avx512) X(avx2) ...; the
 * order and the CPU tests come from fx_isa_list.h. */
#include <stddef.h>
#include <string.h>

#include "fx_kernels.h"

#ifndef FX_BUILT
#error "define FX_BUILT (the builds of fx_kernels.c), as setup.py does"
#endif

#define X(name) extern const fx_kernels fx_kernels_##name;
FX_BUILT
#undef X

static const fx_kernels *const built[] = {
#define X(name) &fx_kernels_##name,
    FX_BUILT
#undef X
    NULL};

#if defined(__x86_64__) || defined(__i386__) || defined(_M_X64)
#if defined(__GNUC__) || defined(__clang__)
#define FX_X86_HAS(feature) __builtin_cpu_supports(feature)
#define FX_CPU_INIT() __builtin_cpu_init()
#endif
#endif
#ifndef FX_X86_HAS
#define FX_X86_HAS(feature) 0
#define FX_CPU_INIT() ((void)0)
#endif

static const fx_kernels *find_built(const char *name)
{
    int k;
    for (k = 0; built[k] != NULL; ++k)
        if (strcmp(built[k]->name, name) == 0)
            return built[k];
    return NULL;
}

int fx_built_kernels(const fx_kernels **out)
{
    int count = 0;
#define FX_ISA(name, machines, flags, test)                             \
    if ((out[count] = find_built(#name)) != NULL && count < 15)          \
        ++count;
#include "fx_isa_list.h"
#undef FX_ISA
    out[count] = NULL;
    return count;
}

int fx_supported_kernels(const fx_kernels **out)
{
    const fx_kernels *kernels;
    int count = 0;
    FX_CPU_INIT();
#define FX_ISA(name, machines, flags, test)                          \
    if ((kernels = find_built(#name)) != NULL && count < 15 && (test)) \
        out[count++] = kernels;
#include "fx_isa_list.h"
#undef FX_ISA
    out[count] = NULL;
    return count;
}
