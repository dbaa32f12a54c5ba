/* Fused softmax cross-entropy over one row of the class axis.
 *
 * fx_rows_impl.h is the template; it is included once per element type and
 * defines, for T = float (suffix f32) and T = double (suffix f64):
 *
 *   fx_normalizer_<s>  the row's log-sum-exp as (m, r): m = max, r = sum(exp(x - m)) - 1
 *   fx_sparse_row_<s>  loss of an integer label, optionally its scaled gradient
 *   fx_dense_row_<s>   loss of a label distribution, optionally both gradients
 *
 * Keeping r = sum - 1 instead of the sum means lse = m + log1p(r) stays exact
 * when the softmax is confident (r tiny), and loss = log1p(r) + (m - x_t) is a
 * sum of two non-negative terms: no cancellation.
 */
#ifndef FX_ROWS_H
#define FX_ROWS_H

#include <math.h>
#include <stddef.h>

#define FX_T float
#define FX_SUFFIX(name) name##_f32
#define FX_EXP expf
#include "fx_rows_impl.h"
#undef FX_T
#undef FX_SUFFIX
#undef FX_EXP

#define FX_T double
#define FX_SUFFIX(name) name##_f64
#define FX_EXP exp
#include "fx_rows_impl.h"
#undef FX_T
#undef FX_SUFFIX
#undef FX_EXP

#ifdef _OPENMP
#include <omp.h>
static inline int fx_max_threads(void) { return omp_get_max_threads(); }
static inline int fx_have_openmp(void) { return 1; }
#else
static inline int fx_max_threads(void) { return 1; }
static inline int fx_have_openmp(void) { return 0; }
#endif

#endif /* FX_ROWS_H */
