/* The table of CPU kernels that each instruction-set build of fx_kernels.c fills, the
 * runtime choice among them (fx_dispatch.c), and the row math every build shares: the
 * combine rule and the finishing of a row from its normalizer.
 */
#ifndef FX_KERNELS_H
#define FX_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Elements per super-chunk of a row: the unit in which a long row is split
   across threads. Rows are always reduced part by part, in order, so a result
   is the same whether the parts ran on one thread or many. */
#define FX_PART 32768

/* Entries per chunk of a row for float and double: the unit of the row kernels' one
   L1-resident pass; FX_PART is a multiple of both. A row kernel with a gradient needs
   fx_work_size(n) doubles of work space (the chunks' maxes). */
#define FX_CHUNK_F32 2048
#define FX_CHUNK_F64 1024
#define fx_work_size(n) ((n) / FX_CHUNK_F64 + 1)

/* A row's normalizer, or a part's: max m and r = sum(exp(x - m)) - 1; for dense labels
   y' also sy = sum(y') and syx = sum over y' != 0 of y' (x - m) (x itself where m = -inf). */
typedef struct fx_partial {
    double m, r, sy, syx;
} fx_partial;

#define FX_DECLARE_KERNELS(T, S)                                                           \
    typedef double (*fx_sparse_row_##S)(const T *x, ptrdiff_t n, ptrdiff_t t, double c,      \
                                        const T *u, double a, double b, double scale, T *g, \
                                        double *work);                                      \
    typedef double (*fx_dense_row_##S)(const T *x, const T *y, ptrdiff_t n, double a,        \
                                       double b, double scale, T *g, T *gy, double *work);  \
    typedef void (*fx_part_##S)(const T *x, const T *y, ptrdiff_t n, double a, double b,    \
                                T *g, double *chunk_max, fx_partial *out);                 \
    typedef void (*fx_grad_finish_##S)(T *g, const T *y, ptrdiff_t n, double a, double b,   \
                                       const double *chunk_max, double m, double inv,       \
                                       double total, double r);                             \
    typedef void (*fx_sparse_grad_part_##S)(const T *x, ptrdiff_t n, double m, double inv,  \
                                            T *g);                                          \
    typedef void (*fx_dense_sums_part_##S)(const T *x, const T *y, ptrdiff_t n, double m,   \
                                           double a, double b, double gy_scale,             \
                                           double log_s, T *gy, double *sum_y,              \
                                           double *sum_yx);                                 \
    typedef void (*fx_dense_grad_part_##S)(const T *x, const T *y, ptrdiff_t n, double m,   \
                                           double a, double b, double inv, double total,    \
                                           double r, T *g);                                 \
    typedef void (*fx_sparse_block_##S)(const T *x, ptrdiff_t xs, ptrdiff_t n,              \
                                        const int64_t *t, const double *scale,              \
                                        ptrdiff_t scale_step, T *g, ptrdiff_t gs,           \
                                        T *loss, ptrdiff_t ls);                             \
    typedef void (*fx_dense_block_##S)(const T *x, ptrdiff_t xs, const T *y, ptrdiff_t ys,  \
                                       ptrdiff_t n, double a, double b,                     \
                                       const double *scale, ptrdiff_t scale_step, T *g,     \
                                       ptrdiff_t gs, T *gy, ptrdiff_t gys, T *loss,         \
                                       ptrdiff_t ls);                                       \
    typedef void (*fx_array_##S)(const T *in, T *out, ptrdiff_t n);

FX_DECLARE_KERNELS(float, f32)
FX_DECLARE_KERNELS(double, f64)

/* One instruction set's kernels (fx_kernels.c fills one per entry of fx_isa_list.h).
   Row kernels take one contiguous row of n logits. Block kernels ("rows in lanes") take
   block_rows rows of at most block_cols classes, row i at x + i * xs, and write row i's
   loss at loss[i * ls]; strides are in elements. Gradient pointers may equal the logits
   pointers (in place). */
typedef struct fx_kernels {
    const char *name;
    int block_rows_f32;   /* the lanes of a vector */
    int block_rows_f64;
    int block_cols_f32;   /* up to where rows in lanes beat the row kernels */
    int block_cols_f64;
    fx_sparse_row_f32 sparse_row_f32;
    fx_sparse_row_f64 sparse_row_f64;
    fx_dense_row_f32 dense_row_f32;
    fx_dense_row_f64 dense_row_f64;
    fx_part_f32 part_f32;                       /* the pieces of a row split over threads */
    fx_part_f64 part_f64;
    fx_grad_finish_f32 grad_finish_f32;
    fx_grad_finish_f64 grad_finish_f64;
    fx_sparse_grad_part_f32 sparse_grad_part_f32;   /* given a whole row's max: Dask's blocks */
    fx_sparse_grad_part_f64 sparse_grad_part_f64;
    fx_dense_sums_part_f32 dense_sums_part_f32;
    fx_dense_sums_part_f64 dense_sums_part_f64;
    fx_dense_grad_part_f32 dense_grad_part_f32;
    fx_dense_grad_part_f64 dense_grad_part_f64;
    fx_sparse_block_f32 sparse_block_f32;
    fx_sparse_block_f64 sparse_block_f64;
    fx_dense_block_f32 dense_block_f32;
    fx_dense_block_f64 dense_block_f64;
    fx_array_f32 exp_f32;       /* exp of non-positive inputs, log1p of non-negative ones: */
    fx_array_f64 exp_f64;       /* the vector math, for the accuracy tests */
    fx_array_f32 log1p_f32;
    fx_array_f64 log1p_f64;
} fx_kernels;

/* The kernels this CPU supports, best first, NULL-terminated (out has room for 16). */
int fx_supported_kernels(const fx_kernels **out);
/* Every build in the extension, in the list's order, whether this CPU runs it or not. */
int fx_built_kernels(const fx_kernels **out);

#include <math.h>

/* Combine two partial normalizers (m, r), r = sum(exp(x - m)) - 1: the log-sum-exp
   rule. (-inf, -1) is the empty partial; a NaN r stays NaN. */
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

static inline void fx_partial_empty(fx_partial *p)
{
    p->m = -INFINITY;
    p->r = -1.0;
    p->sy = 0.0;
    p->syx = 0.0;
}

/* The dense sum syx, relative to a partial's max, moved to the max `to` (>= it). */
static inline double fx_shift_syx(double syx, double sy, double from, double to)
{
    return (from > -INFINITY && from < INFINITY && sy != 0.0) ? syx + sy * (from - to) : syx;
}

/* acc = acc combined with p: the log-sum-exp rule on (m, r), the dense sums added at the
   common max. */
static inline void fx_combine_partial(fx_partial *acc, const fx_partial *p)
{
    const double before = acc->m;
    fx_combine(&acc->m, &acc->r, p->m, p->r);
    acc->syx = fx_shift_syx(acc->syx, acc->sy, before, acc->m) +
               fx_shift_syx(p->syx, p->sy, p->m, acc->m);
    acc->sy += p->sy;
}

/* A whole row: no entry above -inf (or none at all) makes r NaN, so the row is NaN. */
static inline void fx_partial_finish(fx_partial *row)
{
    if (row->m == -INFINITY)
        row->r = NAN;
}

/* Finishing a row from its normalizer: shared by every instruction set and by
   the class-axis split, so that both give the same bits. */
static inline double fx_sparse_loss(double m, double r, double xt)
{
    return log1p(r) + (m - xt);
}

/* The dense loss sum(y') lse - sum(y' x), from log_s = log1p(r) and the sums relative to
   the max (so that the max cancels). */
static inline double fx_dense_loss(double sy, double log_s, double syx)
{
    return sy * log_s - syx;
}

/* The dense gradient's per-row coefficients: scale (total p - y') = scale ((ca e - y') + cb e)
   with e = exp(x - m), p = e / (1 + r). Where the max dominates (r < 1), ca = total and
   cb = -total r / (1 + r): the bracket's large part is rounded once and the small correction
   added in one fused step, so a dominant class with y' = total gives -total r / (1 + r), not
   0, and labels [0.5, 0.5] give 0.5 - r / (1 + r), not 0.5 (TensorFlow's tests ask for
   both). Elsewhere ca = total / (1 + r), cb = 0: p first, which keeps its precision when r
   is large and the first form would cancel. */
static inline void fx_dense_grad_coefs(double total, double r, double *ca, double *cb)
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
static inline double fx_sparse_target_grad(double m, double r, double xt, double scale)
{
    if (xt == m)
        return -scale * (r / (1.0 + r));   /* exact when the target is the max */
    return scale * (exp(xt - m) / (1.0 + r) - 1.0);
}

#endif /* FX_KERNELS_H */
