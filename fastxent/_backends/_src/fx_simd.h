/* The vector abstraction: the only code that knows an instruction set.
 *
 * The build compiles fx_kernels.c once per entry of fx_isa_list.h with -DFX_ISA=<name>
 * (and that entry's compiler flags); this header then includes fx_simd_<name>.h, which
 * defines the types and operations below. The kernels (fx_kernels_impl.h) and the
 * math (fx_math.h) are written against them only.
 *
 * Types, for float and double:
 *   vf, vd      VF_LANES floats, VD_LANES doubles
 *   mf, md      a mask: one truth value per lane
 *   cf, cd      a lane counter (integer lanes)
 *
 * Operations: X is f (float: T = float, V = vf) or d (double). Lanes are independent
 * unless said. "p" needs no alignment.
 *
 *   vX_load(p), vX_store(p, v)       VX_LANES elements
 *   vX_load_part(p, n, pad)          lanes j < n from p[j], the others pad, 0 <= n <= lanes;
 *                                    reads nothing at p[n] or beyond
 *   vX_store_part(p, n, v)           writes lanes j < n to p[j], nothing else
 *   vX_set1(s)
 *   vX_add, vX_sub, vX_mul, vX_div   IEEE, correctly rounded
 *   vX_fmadd(a, b, c)                a * b + c, fused where the ISA has FMA (one rounding),
 *                                    else a multiply then an add
 *   vX_max(a, b)                     the larger; NaN when b is NaN; when only a is NaN,
 *                                    b or NaN (x86 gives b, ARM NaN): callers put the
 *                                    value whose NaN must survive second
 *   vX_eq(a, b), vX_lt(a, b)         ordered compares (false where either is NaN)
 *   vX_neq(a, b)                     unordered: true where either is NaN
 *   mX_and(m1, m2), mX_or(m1, m2)
 *   mX_first(n)                      lanes j < n, 0 <= n <= lanes
 *   vX_select(m, a, b)               a where m, else b
 *   vX_keep(m, a)                    a where m, else +0
 *   vX_add_if(m, acc, v)             acc + v where m, else acc
 *   cX_zero(), cX_add(c, m)          a counter at 0; c + 1 in the lanes where m
 *   cX_total(c)                      the sum of the counter's lanes (ptrdiff_t)
 *   vX_exponent_bits(a)              the value whose bits are a's shifted left by the
 *                                    mantissa width (23, 52): makes 2**k from a float whose
 *                                    low bits hold k + bias (fx_math.h's exp)
 *   vX_frexp(u, &e)                  for u >= 0.75, finite: m in [0.75, 1.5) and e (integral,
 *                                    as floats) with u = m * 2**e
 *   vX_hmax(v)                       the largest lane (NaN lanes may or may not win)
 *   vX_hsum_d(v)                     the sum of the lanes in double, in a fixed order
 *   vd_add_f(acc, v)                 acc plus the float vector v's lanes, widened to double
 *                                    and added in pairs (lane i + lane i + VD_LANES): the
 *                                    double lanes take VF_LANES / VD_LANES floats each
 *   vX_transpose(r)                  r is VX_LANES vectors: lane j of r[i] <-> lane i of r[j]
 *   vX_deinterleave(a, b, &c0, &c1)  the lanes of a then b taken as VX_LANES pairs: lane i of
 *                                    c0 (c1) is pair i's first (second) entry
 *   vX_interleave(c0, c1, &a, &b)    the inverse
 *
 * Half-precision storage, float lanes (H is f16, IEEE binary16, or bf16, the high half of a
 * binary32; p points to their bits): converted in registers, rounded to nearest even on the
 * way back, NaN kept (quiet), as NumPy's and ml_dtypes' astype:
 *
 *   vf_load_H(p), vf_store_H(p, v), vf_load_part_H(p, n, pad), vf_store_part_H(p, n, v)
 *
 * An ISA header that has them defines FX_HALF_VECTORS; the others get them below, element
 * by element through fx_half.h. One float16 at a time: fx_f16_to_float(h), fx_float_to_f16(f),
 * in hardware where the header defines FX_HALF_SCALARS, else fx_half.h's.
 *
 * FX_PREFETCH(p), FX_PREFETCH_W(p) ask for the cache line at p, to read or to write
 * (never fault, any address).
 */
#ifndef FX_SIMD_H
#define FX_SIMD_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifndef FX_ISA
#error "define FX_ISA (an entry of fx_isa_list.h), as setup.py does"
#endif

#define FX_STR_(x) #x
#define FX_STR(x) FX_STR_(x)
#define FX_CAT_(a, b) a##b
#define FX_CAT(a, b) FX_CAT_(a, b)
#define FX_PATH FX_STR(FX_ISA)

#if defined(__GNUC__) || defined(__clang__)
#define FX_ALWAYS_INLINE inline __attribute__((always_inline))
#define FX_PREFETCH(p) __builtin_prefetch((const void *)(p), 0, 3)
#define FX_PREFETCH_W(p) __builtin_prefetch((const void *)(p), 1, 3)
#else
#define FX_ALWAYS_INLINE inline
#define FX_PREFETCH(p) ((void)(p))
#define FX_PREFETCH_W(p) ((void)(p))
#endif

#include FX_STR(FX_CAT(fx_simd_, FX_ISA).h)

/* Where each kernel family takes over (fx_kernels.c's plan), in classes per row, for
   float32, the half kinds and float64: rows in lanes up to FX_LANES_COLS_* (at most their
   capacity, four vectors' width) or, with a gradient, FX_LANES_GRAD_COLS_*; row batches up
   to FX_BATCH_COLS_* (FX_BATCH_GRAD_COLS_* with a gradient) or, with dense labels,
   FX_DENSE_BATCH_COLS; row kernels beyond. An
   ISA header defines those its measurements (tools/crossovers.py) moved; these defaults
   are what every x86 path measured on a Zen 4 core: rows in lanes win up to their capacity
   for every kind, row batches at every width measured up to 8192 (wider, a batch's rows
   stop fitting in L2); with dense labels, from logits and labels larger than the caches,
   the row kernels win from about 256 classes, where the batch's second pass reads the
   labels from memory while its logits come back from L2. */
#ifndef FX_LANES_COLS_F32
#define FX_LANES_COLS_F32 (4 * VF_LANES)
#endif
#ifndef FX_LANES_COLS_F16
#define FX_LANES_COLS_F16 (4 * VF_LANES)
#endif
#ifndef FX_LANES_COLS_F64
#define FX_LANES_COLS_F64 (4 * VD_LANES)
#endif
#ifndef FX_LANES_GRAD_COLS_F32
#define FX_LANES_GRAD_COLS_F32 FX_LANES_COLS_F32
#endif
#ifndef FX_LANES_GRAD_COLS_F16
#define FX_LANES_GRAD_COLS_F16 FX_LANES_COLS_F16
#endif
#ifndef FX_LANES_GRAD_COLS_F64
#define FX_LANES_GRAD_COLS_F64 FX_LANES_COLS_F64
#endif
#ifndef FX_BATCH_COLS_F32
#define FX_BATCH_COLS_F32 8192
#endif
#ifndef FX_BATCH_COLS_F16
#define FX_BATCH_COLS_F16 8192
#endif
#ifndef FX_BATCH_COLS_F64
#define FX_BATCH_COLS_F64 8192
#endif
#ifndef FX_DENSE_BATCH_COLS
#define FX_DENSE_BATCH_COLS 256
#endif
/* row batches' limit with integer labels and a gradient */
#ifndef FX_BATCH_GRAD_COLS_F32
#define FX_BATCH_GRAD_COLS_F32 FX_BATCH_COLS_F32
#endif
#ifndef FX_BATCH_GRAD_COLS_F16
#define FX_BATCH_GRAD_COLS_F16 FX_BATCH_COLS_F16
#endif
#ifndef FX_BATCH_GRAD_COLS_F64
#define FX_BATCH_GRAD_COLS_F64 FX_BATCH_COLS_F64
#endif

#include "fx_half.h"
#ifndef FX_HALF_SCALARS
#define fx_f16_to_float fx_half_to_float
#define fx_float_to_f16 fx_float_to_half
#endif
#ifndef FX_HALF_VECTORS
#define FX_HALF_BY_ELEMENT(H, TO_FLOAT, FROM_FLOAT)                                         \
    static inline vf vf_load_part_##H(const uint16_t *p, ptrdiff_t n, float pad)           \
    {                                                                                       \
        float t[VF_LANES];                                                                  \
        int j;                                                                              \
        for (j = 0; j < VF_LANES; ++j)                                                      \
            t[j] = j < n ? TO_FLOAT(p[j]) : pad;                                            \
        return vf_load(t);                                                                  \
    }                                                                                       \
    static inline vf vf_load_##H(const uint16_t *p) { return vf_load_part_##H(p, VF_LANES, 0.0f); } \
    static inline void vf_store_part_##H(uint16_t *p, ptrdiff_t n, vf v)                   \
    {                                                                                       \
        float t[VF_LANES];                                                                  \
        int j;                                                                              \
        vf_store(t, v);                                                                     \
        for (j = 0; j < VF_LANES; ++j)                                                      \
            if (j < n)                                                                      \
                p[j] = FROM_FLOAT(t[j]);                                                    \
    }                                                                                       \
    static inline void vf_store_##H(uint16_t *p, vf v) { vf_store_part_##H(p, VF_LANES, v); }
FX_HALF_BY_ELEMENT(f16, fx_half_to_float, fx_float_to_half)
FX_HALF_BY_ELEMENT(bf16, fx_bfloat16_to_float, fx_float_to_bfloat16)
#undef FX_HALF_BY_ELEMENT
#endif

#endif /* FX_SIMD_H */
