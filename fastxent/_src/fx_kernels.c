/* The CPU kernels, compiled once per instruction set by setup.py:
 *   -DFX_AVX512 (with -mavx512f -mavx512dq -mavx512vl -mavx512bw -mfma) -> fx_kernels_avx512
 *   -DFX_AVX2   (with -mavx2 -mfma)                                      -> fx_kernels_avx2
 *   neither     (SSE2 on x86-64, plain C elsewhere)                      -> fx_kernels_baseline
 * (-DFX_PLAIN forces the plain C baseline on x86-64 too, for testing.)
 * No -ffast-math anywhere: NaN and infinities must behave as IEEE says.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if !defined(FX_AVX512) && !defined(FX_AVX2) && !defined(FX_PLAIN) && \
    (defined(__SSE2__) || defined(_M_X64))
#define FX_SSE2
#endif

#include "fx_kernels.h"
#include "fx_math.h"
#include "fx_simd.h"

#if defined(FX_AVX512)
#define FX_TABLE fx_kernels_avx512
#elif defined(FX_AVX2)
#define FX_TABLE fx_kernels_avx2
#else
#define FX_TABLE fx_kernels_baseline
#endif

#define T float
#define V vf
#define VL VF_LANES
#define VOP(op) vf_##op
#define SFX(name) name##_f32
#define CHUNK 2048
#include "fx_kernels_impl.h"
#undef T
#undef V
#undef VL
#undef VOP
#undef SFX
#undef CHUNK

#define T double
#define V vd
#define VL VD_LANES
#define VOP(op) vd_##op
#define SFX(name) name##_f64
#define CHUNK 1024
#include "fx_kernels_impl.h"
#undef T
#undef V
#undef VL
#undef VOP
#undef SFX
#undef CHUNK

#if defined(FX_AVX512)
/* Rows in lanes, for small rows: lane i holds row i of a block of 16 (float)
 * or 8 (double) rows, so max, exp, sum and log are vertical operations.
 * Row i starts at x + i * xs; entries are gathered column by column and
 * gradient columns scattered back. Requires (lanes - 1) * stride < 2**31.
 */

static inline __m512i fx_lane_offsets16(ptrdiff_t stride)
{
    return _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                              _mm512_set1_epi32((int)stride));
}

static inline __m256i fx_lane_offsets8(ptrdiff_t stride)
{
    return _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7), _mm256_set1_epi32((int)stride));
}

/* Labels of 16 rows as int32 lanes, with the mask of those in [0, n). */
static inline __m512i fx_labels16(const int64_t *t, ptrdiff_t n, __mmask16 *valid)
{
    __m512i lo = _mm512_loadu_si512(t), hi = _mm512_loadu_si512(t + 8);
    __m512i top = _mm512_set1_epi64(n);
    __mmask8 vlo = _mm512_cmplt_epi64_mask(lo, top) & _mm512_cmpge_epi64_mask(lo, _mm512_setzero_si512());
    __mmask8 vhi = _mm512_cmplt_epi64_mask(hi, top) & _mm512_cmpge_epi64_mask(hi, _mm512_setzero_si512());
    *valid = (__mmask16)(vlo | ((unsigned)vhi << 8));
    lo = _mm512_maskz_mov_epi64(vlo, lo);
    hi = _mm512_maskz_mov_epi64(vhi, hi);
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvtepi64_epi32(lo)), _mm512_cvtepi64_epi32(hi), 1);
}

static inline __m256i fx_labels8(const int64_t *t, ptrdiff_t n, __mmask8 *valid)
{
    __m512i v = _mm512_loadu_si512(t);
    *valid = _mm512_cmplt_epi64_mask(v, _mm512_set1_epi64(n)) &
             _mm512_cmpge_epi64_mask(v, _mm512_setzero_si512());
    return _mm512_cvtepi64_epi32(_mm512_maskz_mov_epi64(*valid, v));
}

static inline vf fx_scale16(const double *scale, ptrdiff_t step)
{
    if (step == 0)
        return _mm512_set1_ps((float)scale[0]);
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(_mm512_loadu_pd(scale))),
                              _mm512_cvtpd_ps(_mm512_loadu_pd(scale + 8)), 1);
}

static inline vd fx_scale8(const double *scale, ptrdiff_t step)
{
    return step == 0 ? _mm512_set1_pd(scale[0]) : _mm512_loadu_pd(scale);
}

static inline void fx_store_loss16(double *loss, vf v)
{
    _mm512_storeu_pd(loss, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    _mm512_storeu_pd(loss + 8, _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
}

#define BLOCK_IMPL(T, S, V, VOP, M, IDX, LANE_OFFSETS, LABELS, SCALE, GATHER, MGATHER, SCATTER,   \
                   IDX_SET1, IDX_EQ, STORE_LOSS, MASK_MOV)                               \
    /* pass 1: max; pass 2: r = sum(exp(x - m)) - 1 with ties apart */                            \
    static inline void block_normalizer_##S(const T *x, IDX ix, ptrdiff_t n, V *m_out,             \
                                            V *r_out)                                              \
    {                                                                                              \
        const V zero = VOP(set1)(0), one = VOP(set1)(1);                                           \
        V m = VOP(set1)((T)-INFINITY), s = zero, ties = zero;                                      \
        ptrdiff_t j;                                                                               \
        for (j = 0; j < n; ++j)                                                                    \
            m = VOP(max)(m, GATHER(ix, x + j));                                                    \
        for (j = 0; j < n; ++j) {                                                                  \
            V d = VOP(sub)(GATHER(ix, x + j), m);                                                  \
            s = VOP(add)(s, VOP(keep)(VOP(neq)(d, zero), VOP(exp_nonpos)(d)));                     \
            ties = VOP(add)(ties, VOP(keep)(VOP(eq)(d, zero), one));                               \
        }                                                                                          \
        *m_out = m;                                                                                \
        *r_out = VOP(add)(s, VOP(sub)(ties, one));                                                 \
    }                                                                                              \
                                                                                                   \
    static void sparse_block_##S(const T *x, ptrdiff_t xs, ptrdiff_t n, const int64_t *t,         \
                                 const double *scale, ptrdiff_t scale_step, T *g, ptrdiff_t gs,    \
                                 double *loss)                                                     \
    {                                                                                              \
        const V one = VOP(set1)(1), nan = VOP(set1)((T)NAN);                                       \
        const IDX ix = LANE_OFFSETS(xs);                                                           \
        M valid;                                                                                   \
        const IDX tv = LABELS(t, n, &valid);                                                       \
        V m, r, xt, value;                                                                         \
        ptrdiff_t j;                                                                               \
        block_normalizer_##S(x, ix, n, &m, &r);                                                    \
        xt = MGATHER(nan, valid, IDX_ADD(ix, tv), x);                                              \
        value = VOP(add)(VOP(log1p_nonneg)(r), VOP(sub)(m, xt));                                   \
        STORE_LOSS(loss, value);                                                                   \
        if (g) {                                                                                   \
            const IDX ig = LANE_OFFSETS(gs);                                                       \
            const V sc = SCALE(scale, scale_step);                                                 \
            const V inv = MASK_MOV(nan, valid, VOP(div)(sc, VOP(add)(one, r)));                    \
            /* p_t - 1, exact when the target is the max */                                        \
            const V target = MASK_MOV(VOP(sub)(VOP(mul)(VOP(exp_nonpos)(VOP(sub)(xt, m)), inv), sc),\
                                      VOP(eq)(xt, m) & valid,                                      \
                                      VOP(mul)(VOP(sub)(VOP(set1)(0), sc), VOP(div)(r, VOP(add)(one, r)))); \
            for (j = 0; j < n; ++j) {                                                              \
                V p = VOP(mul)(VOP(exp_nonpos)(VOP(sub)(GATHER(ix, x + j), m)), inv);              \
                p = MASK_MOV(p, IDX_EQ(tv, IDX_SET1(j)) & valid, target);                           \
                SCATTER(g + j, ig, p);                                                             \
            }                                                                                      \
        }                                                                                          \
    }                                                                                              \
                                                                                                   \
    static void dense_block_##S(const T *x, ptrdiff_t xs, const T *y, ptrdiff_t ys, ptrdiff_t n,  \
                                double a, double b, const double *scale, ptrdiff_t scale_step,     \
                                T *g, ptrdiff_t gs, T *gy, ptrdiff_t gys, double *loss)           \
    {                                                                                              \
        const V zero = VOP(set1)(0), one = VOP(set1)(1);                                           \
        const V va = VOP(set1)((T)a), vb = VOP(set1)((T)b);                                        \
        const IDX ix = LANE_OFFSETS(xs), iy = LANE_OFFSETS(ys);                                    \
        V m, r, log_s, sy = zero, syx = zero;                                                      \
        ptrdiff_t j;                                                                               \
        block_normalizer_##S(x, ix, n, &m, &r);                                                    \
        for (j = 0; j < n; ++j) {                                                                  \
            V yj = VOP(fmadd)(va, GATHER(iy, y + j), vb);                                          \
            V d = VOP(sub)(GATHER(ix, x + j), m);                                                  \
            sy = VOP(add)(sy, yj);                                                                 \
            syx = VOP(add)(syx, VOP(keep)(VOP(neq)(yj, zero), VOP(mul)(yj, d)));                   \
        }                                                                                          \
        log_s = VOP(log1p_nonneg)(r);                                                              \
        STORE_LOSS(loss, VOP(sub)(VOP(mul)(sy, log_s), syx));                                      \
        if (gy) {                                                                                  \
            const IDX igy = LANE_OFFSETS(gys);                                                     \
            const V gscale = VOP(mul)(SCALE(scale, scale_step), va);                               \
            for (j = 0; j < n; ++j) {                                                              \
                V d = VOP(sub)(GATHER(ix, x + j), m);                                              \
                SCATTER(gy + j, igy, VOP(mul)(gscale, VOP(sub)(log_s, d)));                        \
            }                                                                                      \
        }                                                                                          \
        if (g) {                                                                                   \
            const IDX ig = LANE_OFFSETS(gs);                                                       \
            const V sc = SCALE(scale, scale_step);                                                 \
            const V p_scale = VOP(div)(VOP(mul)(sc, sy), VOP(add)(one, r));                        \
            const V neg_sc = VOP(sub)(zero, sc);                                                   \
            for (j = 0; j < n; ++j) {                                                              \
                V yj = VOP(fmadd)(va, GATHER(iy, y + j), vb);                                      \
                V e = VOP(exp_nonpos)(VOP(sub)(GATHER(ix, x + j), m));                             \
                SCATTER(g + j, ig, VOP(fmadd)(neg_sc, yj, VOP(mul)(e, p_scale)));                  \
            }                                                                                      \
        }                                                                                          \
    }

#define VF_(op) vf_##op
#define VD_(op) vd_##op
#define G16(ix, p) _mm512_i32gather_ps(ix, p, 4)
#define MG16(src, k, ix, p) _mm512_mask_i32gather_ps(src, k, ix, p, 4)
#define S16(p, ix, v) _mm512_i32scatter_ps(p, ix, v, 4)
#define G8(ix, p) _mm512_i32gather_pd(ix, p, 8)
#define MG8(src, k, ix, p) _mm512_mask_i32gather_pd(src, k, ix, p, 8)
#define S8(p, ix, v) _mm512_i32scatter_pd(p, ix, v, 8)
#define IDX_ADD16(a, b) _mm512_add_epi32(a, b)
#define IDX_ADD8(a, b) _mm256_add_epi32(a, b)

#define IDX_ADD IDX_ADD16
BLOCK_IMPL(float, f32, vf, VF_, __mmask16, __m512i, fx_lane_offsets16, fx_labels16, fx_scale16,
           G16, MG16, S16, _mm512_set1_epi32, _mm512_cmpeq_epi32_mask, fx_store_loss16,
           _mm512_mask_mov_ps)
#undef IDX_ADD
#define IDX_ADD IDX_ADD8
BLOCK_IMPL(double, f64, vd, VD_, __mmask8, __m256i, fx_lane_offsets8, fx_labels8, fx_scale8,
           G8, MG8, S8, _mm256_set1_epi32, _mm256_cmpeq_epi32_mask, _mm512_storeu_pd,
           _mm512_mask_mov_pd)
#undef IDX_ADD
#define FX_BLOCKS 1
#endif /* FX_AVX512 */

const fx_kernels FX_TABLE = {
    FX_PATH,
#ifdef FX_BLOCKS
    16, 8,
#else
    0, 0,
#endif
    sparse_row_f32, sparse_row_f64,
    dense_row_f32, dense_row_f64,
    normalizer_part_f32, normalizer_part_f64,
    sparse_grad_part_f32, sparse_grad_part_f64,
    dense_sums_part_f32, dense_sums_part_f64,
    dense_grad_part_f32, dense_grad_part_f64,
#ifdef FX_BLOCKS
    sparse_block_f32, sparse_block_f64,
    dense_block_f32, dense_block_f64,
#else
    NULL, NULL, NULL, NULL,
#endif
    exp_array_f32, exp_array_f64,
};
