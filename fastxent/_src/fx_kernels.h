/* The table of CPU kernels that each instruction-set build of fx_kernels.c fills,
 * and the runtime choice among them (fx_dispatch.c).
 *
 * Row kernels take one contiguous row of n logits. Block kernels ("rows in
 * lanes", for small n) take block_lanes rows at once, row i at x + i * xs,
 * and write row i's loss at loss[i * ls]. Strides are in elements.
 * Gradient pointers may equal the logits pointers (in place).
 */
#ifndef FX_KERNELS_H
#define FX_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Elements per super-chunk of a row: the unit in which a long row is split
   across threads. Rows are always reduced part by part, in order, so a result
   is the same whether the parts ran on one thread or many. */
#define FX_PART 32768

#define FX_DECLARE_KERNELS(T, S)                                                           \
    typedef double (*fx_sparse_row_##S)(const T *x, ptrdiff_t n, ptrdiff_t t, double scale,  \
                                        T *g);                                              \
    typedef double (*fx_dense_row_##S)(const T *x, const T *y, ptrdiff_t n, double a,        \
                                       double b, double scale, T *g, T *gy);                \
    typedef void (*fx_normalizer_##S)(const T *x, ptrdiff_t n, double *m, double *r);      \
    typedef void (*fx_sparse_grad_part_##S)(const T *x, ptrdiff_t n, double m, double inv,  \
                                            T *g);                                          \
    typedef void (*fx_dense_sums_part_##S)(const T *x, const T *y, ptrdiff_t n, double m,   \
                                           double a, double b, double gy_scale,             \
                                           double log_s, T *gy, double *sum_y,              \
                                           double *sum_yx);                                 \
    typedef void (*fx_dense_grad_part_##S)(const T *x, const T *y, ptrdiff_t n, double m,   \
                                           double a, double b, double p_scale,              \
                                           double y_scale, T *g);                           \
    typedef void (*fx_sparse_block_##S)(const T *x, ptrdiff_t xs, ptrdiff_t n,              \
                                        const int64_t *t, const double *scale,              \
                                        ptrdiff_t scale_step, T *g, ptrdiff_t gs,           \
                                        T *loss, ptrdiff_t ls);                             \
    typedef void (*fx_dense_block_##S)(const T *x, ptrdiff_t xs, const T *y, ptrdiff_t ys,  \
                                       ptrdiff_t n, double a, double b,                     \
                                       const double *scale, ptrdiff_t scale_step, T *g,     \
                                       ptrdiff_t gs, T *gy, ptrdiff_t gys, T *loss,         \
                                       ptrdiff_t ls);                                       \
    typedef void (*fx_exp_##S)(const T *in, T *out, ptrdiff_t n);

FX_DECLARE_KERNELS(float, f32)
FX_DECLARE_KERNELS(double, f64)

typedef struct fx_kernels {
    const char *name;
    int block_lanes_f32; /* 0 where this instruction set has no block kernels */
    int block_lanes_f64;
    fx_sparse_row_f32 sparse_row_f32;
    fx_sparse_row_f64 sparse_row_f64;
    fx_dense_row_f32 dense_row_f32;
    fx_dense_row_f64 dense_row_f64;
    fx_normalizer_f32 normalizer_part_f32;
    fx_normalizer_f64 normalizer_part_f64;
    fx_sparse_grad_part_f32 sparse_grad_part_f32;
    fx_sparse_grad_part_f64 sparse_grad_part_f64;
    fx_dense_sums_part_f32 dense_sums_part_f32;
    fx_dense_sums_part_f64 dense_sums_part_f64;
    fx_dense_grad_part_f32 dense_grad_part_f32;
    fx_dense_grad_part_f64 dense_grad_part_f64;
    fx_sparse_block_f32 sparse_block_f32;
    fx_sparse_block_f64 sparse_block_f64;
    fx_dense_block_f32 dense_block_f32;
    fx_dense_block_f64 dense_block_f64;
    fx_exp_f32 exp_f32; /* exp of non-positive inputs, for the accuracy tests */
    fx_exp_f64 exp_f64;
} fx_kernels;

extern const fx_kernels fx_kernels_avx512;
extern const fx_kernels fx_kernels_avx2;
extern const fx_kernels fx_kernels_baseline;

/* The kernels this CPU supports, best first (NULL-terminated); fills at most 4. */
int fx_supported_kernels(const fx_kernels **out);

/* Combine two partial normalizers (m, r), r = sum(exp(x - m)) - 1: the
   log-sum-exp rule. (-inf, -1) is the empty partial; a NaN r stays NaN. */
static inline void fx_combine(double *m, double *r, double mc, double rc);

#include <math.h>
static inline void fx_combine(double *m, double *r, double mc, double rc)
{
    if (mc == -INFINITY && rc == -1.0)
        return;
    if (*m == -INFINITY && *r == -1.0) {
        *m = mc;
        *r = rc;
    } else if (mc > *m) {
        *r = rc + (1.0 + *r) * exp(*m - mc);
        *m = mc;
    } else if (mc == *m) {
        *r = *r + 1.0 + rc;
    } else {
        *r = *r + (1.0 + rc) * exp(mc - *m);
    }
}

/* Finishing a row from its normalizer: shared by every instruction set and by
   the class-axis split, so that both give the same bits. */
static inline double fx_sparse_loss(double m, double r, double xt)
{
    return log1p(r) + (m - xt);
}

/* The target entry of the sparse gradient, scale * (p_t - 1). */
static inline double fx_sparse_target_grad(double m, double r, double xt, double scale)
{
    if (xt == m)
        return -scale * (r / (1.0 + r));   /* exact when the target is the max */
    return scale * (exp(xt - m) / (1.0 + r) - 1.0);
}

#endif /* FX_KERNELS_H */
