/* The math of one row of softmax cross-entropy, written once for the C kernels
 * (fx_kernels.h includes it) and the CUDA kernels (cuda/fastxent_kernels.cu
 * includes it; fastxent._backends.cuda gives NVRTC this folder with -I). Python runs these functions
 * themselves on NumPy arrays (fastxent._dask.lse, through fastxent._backends._kernels).
 *
 * A row's normalizer is (m, r): m its max and r = sum(exp(x - m)) - 1, so that the
 * log-sum-exp is m + log1p(r), which keeps its precision when one entry dominates (r tiny).
 * All in double.
 */
#ifndef FX_ROW_MATH_H
#define FX_ROW_MATH_H

/* FX_ROW_MUL(a, b): a product rounded to a double before it is used, so that no compiler
   fuses it into the add that follows (GCC does where the target has FMA, NVCC by default):
   the rule rounds the same way in every object, on every machine and on the GPU. */
#ifdef __CUDACC__
#define FX_ROW_FN static __device__ __forceinline__
#define FX_ROW_INF __longlong_as_double(0x7ff0000000000000LL)
#define FX_ROW_NAN __longlong_as_double(0x7ff8000000000000LL)
#define FX_ROW_MUL(a, b) __dmul_rn((a), (b))
#else
#include <math.h>
#define FX_ROW_FN static inline
#define FX_ROW_INF ((double)INFINITY)
#define FX_ROW_NAN ((double)NAN)
FX_ROW_FN double fx_row_rounded(double x)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __asm__("" : "+x"(x));   /* x is in a register: the product is not fused past here */
#elif defined(__GNUC__) && defined(__aarch64__)
    __asm__("" : "+w"(x));
#else
    volatile double held = x;
    x = held;
#endif
    return x;
}
#define FX_ROW_MUL(a, b) fx_row_rounded((a) * (b))
#endif

/* Combine two partial normalizers: the log-sum-exp rule. (-inf, -1) is the empty partial;
   a NaN r stays NaN; tied maxima add as (r + 1) + rc. */
FX_ROW_FN void fx_combine(double *m, double *r, double mc, double rc)
{
    if (mc == -FX_ROW_INF && rc == -1.0)
        return;
    if (*m == -FX_ROW_INF && *r == -1.0) {
        *m = mc;
        *r = rc;
    } else if (mc > *m) {
        *r = rc + FX_ROW_MUL(1.0 + *r, exp(*m - mc));
        *m = mc;
    } else if (mc == *m) {
        *r = *r + 1.0 + rc;
    } else {
        *r = *r + FX_ROW_MUL(1.0 + rc, exp(mc - *m));
    }
}

/* The NaN rule: a row whose max is not finite (no entry above -inf, an entry of +inf, a
   NaN) is a NaN row. */
FX_ROW_FN double fx_row_r(double m, double r)
{
    return (m > -FX_ROW_INF && m < FX_ROW_INF) ? r : FX_ROW_NAN;
}

/* The sparse loss lse - x_t. */
FX_ROW_FN double fx_sparse_loss(double m, double r, double xt)
{
    return log1p(r) + (m - xt);
}

/* The dense loss sum(y') lse - sum(y' x), from log_s = log1p(r) and the sums relative to
   the max (so that the max cancels). */
FX_ROW_FN double fx_dense_loss(double sy, double log_s, double syx)
{
    return FX_ROW_MUL(sy, log_s) - syx;
}

/* The dense gradient's per-row coefficients: scale (total p - y') = scale ((ca e - y') + cb e)
   with e = exp(x - m), p = e / (1 + r). Where the max dominates (r < 1), ca = total and
   cb = -total r / (1 + r): the bracket's large part is rounded once and the small correction
   added in one fused step, so a dominant class with y' = total gives -total r / (1 + r), not
   0, and labels [0.5, 0.5] give 0.5 - r / (1 + r), not 0.5 (TensorFlow's tests ask for
   both). Elsewhere ca = total / (1 + r), cb = 0: p first, which keeps its precision when r
   is large and the first form would cancel. */
FX_ROW_FN void fx_dense_grad_coefs(double total, double r, double *ca, double *cb)
{
    if (r < 1.0) {
        *ca = total;
        *cb = -(r / (1.0 + r)) * total;
    } else {
        *ca = total / (1.0 + r);
        *cb = 0.0;
    }
}

/* The target entry of the sparse gradient, scale * (p_t - 1). */
FX_ROW_FN double fx_sparse_target_grad(double m, double r, double xt, double scale)
{
    if (xt == m)
        return -scale * (r / (1.0 + r));   /* exact when the target is the max */
    return scale * (exp(xt - m) / (1.0 + r) - 1.0);
}

#endif /* FX_ROW_MATH_H */
