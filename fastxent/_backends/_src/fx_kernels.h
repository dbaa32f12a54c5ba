/* The table of CPU kernels that each instruction-set build of fx_kernels.c fills, the
 * runtime choice among them (fx_dispatch.c), and the partials every build combines (the row
 * math itself, shared with the CUDA kernels, is fx_row_math.h).
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
   L1-resident pass; FX_PART is a multiple of both. */
#define FX_CHUNK_F32 2048
#define FX_CHUNK_F64 1024

/* The work space of a row kernel with a gradient, in doubles: the chunks' maxes, then (for
   the half kinds, whose exps are kept in float, not in the gradient) room for n floats,
   64-byte aligned. */
#define fx_work_maxes(n) (((n) / FX_CHUNK_F64 + 2 + 7) / 8 * 8)
#define fx_work_size(n) (fx_work_maxes(n) + ((n) + 15) / 16 * 8)

/* The storage kinds of the arrays the kernels read and write, each computed in float
   (float64: in double): the index of every per-kind entry of the table. */
enum fx_kind { FX_F16 = 0, FX_F32 = 1, FX_F64 = 2, FX_BF16 = 3, FX_KINDS = 4 };

/* A row's normalizer, or a part's: max m and r = sum(exp(x - m)) - 1; for dense labels
   y' also sy = sum(y') and syx = sum over y' != 0 of y' (x - m) (x itself where m = -inf). */
typedef struct fx_partial {
    double m, r, sy, syx;
} fx_partial;

/* The kernels' signatures. x, y (dense labels), g and gy (their gradients) are arrays of
   the kernel's storage kind; u, e, loss and block work space are of its compute type
   (double for FX_F64, float otherwise). */
typedef double (*fx_sparse_row_fn)(const void *x, ptrdiff_t n, ptrdiff_t t, double c,
                                   const void *u, double a, double b, double scale, void *g,
                                   double *work);
typedef double (*fx_dense_row_fn)(const void *x, const void *y, ptrdiff_t n, double a, double b,
                                  double scale, void *g, void *gy, double *work);
typedef void (*fx_part_fn)(const void *x, const void *y, ptrdiff_t n, double a, double b,
                           void *e, double *chunk_max, fx_partial *out);
typedef void (*fx_grad_finish_fn)(void *g, const void *e, const void *y, ptrdiff_t n, double a,
                                  double b, const double *chunk_max, double m, double scale,
                                  double total, double r);
typedef void (*fx_sparse_grad_part_fn)(const void *x, ptrdiff_t n, double m, double inv, void *g);
typedef void (*fx_dense_sums_part_fn)(const void *x, const void *y, ptrdiff_t n, double m,
                                      double a, double b, double gy_scale, double log_s,
                                      void *gy, double *sum_y, double *sum_yx);
typedef void (*fx_dense_grad_part_fn)(const void *x, const void *y, ptrdiff_t n, double m,
                                      double a, double b, double scale, double total, double r,
                                      void *g);
typedef void (*fx_sparse_block_fn)(const void *x, ptrdiff_t xs, ptrdiff_t n, const int64_t *t,
                                   const double *scale, ptrdiff_t scale_step, void *g,
                                   ptrdiff_t gs, void *loss, ptrdiff_t ls, void *work);
typedef void (*fx_sparse_partial_fn)(const void *x, ptrdiff_t xs, ptrdiff_t n,
                                     const int64_t *t, const double *scale,
                                     ptrdiff_t scale_step, void *g, ptrdiff_t gs, void *loss,
                                     ptrdiff_t ls, void *work, ptrdiff_t rows);
typedef void (*fx_dense_block_fn)(const void *x, ptrdiff_t xs, const void *y, ptrdiff_t ys,
                                  ptrdiff_t n, double a, double b, const double *scale,
                                  ptrdiff_t scale_step, void *g, ptrdiff_t gs, void *gy,
                                  ptrdiff_t gys, void *loss, ptrdiff_t ls, void *work);
typedef void (*fx_dense_partial_fn)(const void *x, ptrdiff_t xs, const void *y, ptrdiff_t ys,
                                    ptrdiff_t n, double a, double b, const double *scale,
                                    ptrdiff_t scale_step, void *g, ptrdiff_t gs, void *gy,
                                    ptrdiff_t gys, void *loss, ptrdiff_t ls, void *work,
                                    ptrdiff_t rows);
typedef void (*fx_put_fn)(const void *values, ptrdiff_t n, void *out, ptrdiff_t step);
typedef void (*fx_array_f32)(const float *in, float *out, ptrdiff_t n);
typedef void (*fx_array_f64)(const double *in, double *out, ptrdiff_t n);

/* One instruction set's kernels (fx_kernels.c fills one per entry of fx_isa_list.h), each
   for every storage kind. Three families take a call's rows, by the number of classes n:
   - rows in lanes (n <= lanes_cols, lanes_grad_cols with a gradient): a block of
     block_rows rows transposed so that lane i of a vector is row i;
   - row batches (n <= batch_cols, dense_batch_cols with dense labels): a block of
     block_rows rows, each read along its row,
     with the per-row reductions, the log and the gradient's scaling done for the block at
     once in vector lanes;
   - row kernels: one row at a time, chunk by chunk (any n; the parts of a long row may run
     on several threads).
   Block kernels take block_rows rows; a call's last block may be partial, and runs the
   `_partial` kernel of the family with its row count (each row's result is the same as in
   a full block). Row i is at x + i * xs, and write row
   i's loss at loss[i * ls]; strides are in elements. A row batch with a gradient of a half kind needs
   block_rows * n floats of work space. Gradient pointers may equal the logits pointers (in
   place). A row kernel's work space is fx_work_size(n) doubles. */
typedef struct fx_kernels {
    const char *name;
    int block_rows[FX_KINDS];   /* the lanes of a vector of the compute type */
    int lanes_cols[FX_KINDS];   /* measured crossovers: fx_simd_<name>.h */
    int lanes_grad_cols[FX_KINDS];   /* rows in lanes' limit with a gradient */
    int batch_cols[FX_KINDS];
    int batch_grad_cols[FX_KINDS];   /* theirs with integer labels and a gradient */
    int dense_batch_cols;       /* the row batches' limit with dense labels */
    fx_sparse_row_fn sparse_row[FX_KINDS];
    fx_dense_row_fn dense_row[FX_KINDS];
    fx_part_fn part[FX_KINDS];               /* the pieces of a row split over threads */
    fx_grad_finish_fn grad_finish[FX_KINDS];
    fx_sparse_grad_part_fn sparse_grad_part[FX_KINDS];   /* given a whole row's max: Dask */
    fx_dense_sums_part_fn dense_sums_part[FX_KINDS];
    fx_dense_grad_part_fn dense_grad_part[FX_KINDS];
    fx_sparse_block_fn sparse_lanes[FX_KINDS];
    fx_sparse_partial_fn sparse_lanes_partial[FX_KINDS];
    fx_dense_block_fn dense_lanes[FX_KINDS];
    fx_dense_partial_fn dense_lanes_partial[FX_KINDS];
    fx_sparse_block_fn sparse_batch[FX_KINDS];
    fx_sparse_partial_fn sparse_batch_partial[FX_KINDS];
    fx_dense_block_fn dense_batch[FX_KINDS];
    fx_dense_partial_fn dense_batch_partial[FX_KINDS];
    fx_put_fn put[FX_KINDS];    /* n values of the compute type into the kind, step apart */
    fx_array_f32 exp_f32;       /* exp of non-positive inputs, log1p of non-negative ones: */
    fx_array_f64 exp_f64;       /* the vector math, for the accuracy tests */
    fx_array_f32 log1p_f32;
    fx_array_f64 log1p_f64;
} fx_kernels;

/* The kernels this CPU supports, best first, NULL-terminated (out has room for 16). */
int fx_supported_kernels(const fx_kernels **out);
/* Every build in the extension, in the list's order, whether this CPU runs it or not. */
int fx_built_kernels(const fx_kernels **out);

#include "fx_row_math.h"

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

/* A whole row: the NaN rule (fx_row_r). */
static inline void fx_partial_finish(fx_partial *row)
{
    row->r = fx_row_r(row->m, row->r);
}

#endif /* FX_KERNELS_H */
