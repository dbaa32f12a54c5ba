/* OpenMP facts, with serial stand-ins when the compiler has no OpenMP. */
#ifndef FX_OMP_H
#define FX_OMP_H
#ifdef _OPENMP
#include <omp.h>
static inline int fx_max_threads(void) { return omp_get_max_threads(); }
static inline int fx_have_openmp(void) { return 1; }
#else
static inline int fx_max_threads(void) { return 1; }
static inline int fx_have_openmp(void) { return 0; }
#endif
#endif
