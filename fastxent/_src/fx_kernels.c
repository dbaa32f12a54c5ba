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
#define M mf
#define VL VF_LANES
#define VOP(op) vf_##op
#define SFX(name) name##_f32
#define CHUNK 2048
#include "fx_kernels_impl.h"
#undef T
#undef V
#undef M
#undef VL
#undef VOP
#undef SFX
#undef CHUNK

#define T double
#define V vd
#define M md
#define VL VD_LANES
#define VOP(op) vd_##op
#define SFX(name) name##_f64
#define CHUNK 1024
#include "fx_kernels_impl.h"
#undef T
#undef V
#undef M
#undef VL
#undef VOP
#undef SFX
#undef CHUNK

#if defined(FX_AVX512)
/* Rows in lanes, for small rows: lane i holds row i of a block of 16 (float)
 * or 8 (double) rows, so max, exp, sum and log are vertical operations. Rows
 * are read with masked loads (masked-off lanes never touch memory) and turned
 * into columns by an in-register transpose, a tile of 16 (8) columns at a
 * time; gradients go back the same way. At most two tiles: n <= 2 * lanes.
 */

static inline void fx_transpose16(__m512 r[16])
{
    __m512 t[16];
    int i, k;
    for (i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (i = 0; i < 4; ++i) {
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 1]);
        __m512d c = _mm512_castps_pd(t[4 * i + 2]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i + 0] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for (i = 0; i < 2; ++i)
        for (k = 0; k < 4; ++k) {
            t[8 * i + k] = _mm512_shuffle_f32x4(r[8 * i + k], r[8 * i + k + 4], 0x88);
            t[8 * i + k + 4] = _mm512_shuffle_f32x4(r[8 * i + k], r[8 * i + k + 4], 0xdd);
        }
    for (k = 0; k < 8; ++k) {
        r[k] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0x88);
        r[k + 8] = _mm512_shuffle_f32x4(t[k], t[k + 8], 0xdd);
    }
}

static inline void fx_transpose8(__m512d r[8])
{
    __m512d t[8];
    int i;
    for (i = 0; i < 4; ++i) {
        t[2 * i] = _mm512_unpacklo_pd(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_pd(r[2 * i], r[2 * i + 1]);
    }
    for (i = 0; i < 2; ++i) {
        r[4 * i + 0] = _mm512_shuffle_f64x2(t[4 * i + 0], t[4 * i + 2], 0x88);
        r[4 * i + 1] = _mm512_shuffle_f64x2(t[4 * i + 1], t[4 * i + 3], 0x88);
        r[4 * i + 2] = _mm512_shuffle_f64x2(t[4 * i + 0], t[4 * i + 2], 0xdd);
        r[4 * i + 3] = _mm512_shuffle_f64x2(t[4 * i + 1], t[4 * i + 3], 0xdd);
    }
    for (i = 0; i < 4; ++i) {
        t[i] = _mm512_shuffle_f64x2(r[i], r[i + 4], 0x88);
        t[i + 4] = _mm512_shuffle_f64x2(r[i], r[i + 4], 0xdd);
    }
    for (i = 0; i < 8; ++i)
        r[i] = t[i];
}

#define FX_COLUMN_IO(T, S, V, L, MASK, MASKZ_LOAD, MASK_STORE, TRANSPOSE, ZERO)                  \
    /* cols[j] lane i = x[i * xs + j], for j < n */                                              \
    static inline void load_columns_##S(const T *x, ptrdiff_t xs, ptrdiff_t n, V *cols)          \
    {                                                                                            \
        ptrdiff_t tile, i, j;                                                                    \
        for (tile = 0; tile < n; tile += L) {                                                    \
            const ptrdiff_t w = n - tile < L ? n - tile : L;                                     \
            const MASK m = (MASK)((1u << w) - 1u);                                               \
            V r[L];                                                                              \
            for (i = 0; i < L; ++i)                                                              \
                r[i] = MASKZ_LOAD(m, x + i * xs + tile);                                         \
            TRANSPOSE(r);                                                                        \
            for (j = 0; j < w; ++j)                                                              \
                cols[tile + j] = r[j];                                                           \
        }                                                                                        \
    }                                                                                            \
    /* g[i * gs + j] = cols[j] lane i, for j < n */                                              \
    static inline void store_columns_##S(T *g, ptrdiff_t gs, ptrdiff_t n, const V *cols)         \
    {                                                                                            \
        ptrdiff_t tile, i, j;                                                                    \
        for (tile = 0; tile < n; tile += L) {                                                    \
            const ptrdiff_t w = n - tile < L ? n - tile : L;                                     \
            const MASK m = (MASK)((1u << w) - 1u);                                               \
            V r[L];                                                                              \
            for (j = 0; j < L; ++j)                                                              \
                r[j] = j < w ? cols[tile + j] : ZERO;                                             \
            TRANSPOSE(r);                                                                        \
            for (i = 0; i < L; ++i)                                                              \
                MASK_STORE(g + i * gs + tile, m, r[i]);                                          \
        }                                                                                        \
    }

FX_COLUMN_IO(float, f32, vf, 16, __mmask16, _mm512_maskz_loadu_ps, _mm512_mask_storeu_ps,
             fx_transpose16, _mm512_setzero_ps())
FX_COLUMN_IO(double, f64, vd, 8, __mmask8, _mm512_maskz_loadu_pd, _mm512_mask_storeu_pd,
             fx_transpose8, _mm512_setzero_pd())

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

static inline void fx_store_loss16(float *loss, ptrdiff_t ls, vf v)
{
    float t[16];
    int i;
    if (ls == 1) {
        _mm512_storeu_ps(loss, v);
        return;
    }
    _mm512_storeu_ps(t, v);
    for (i = 0; i < 16; ++i)
        loss[i * ls] = t[i];
}

static inline void fx_store_loss8(double *loss, ptrdiff_t ls, vd v)
{
    double t[8];
    int i;
    if (ls == 1) {
        _mm512_storeu_pd(loss, v);
        return;
    }
    _mm512_storeu_pd(t, v);
    for (i = 0; i < 8; ++i)
        loss[i * ls] = t[i];
}

#define VF_(op) vf_##op
#define VD_(op) vd_##op

#define BLOCK_IMPL(T, S, V, VOP, L, M, IDX, LABELS, SCALE, IDX_SET1, IDX_EQ, STORE_LOSS, MASK_MOV) \
    /* max, then r = sum(exp(x - m)) - 1 with ties apart; e[j] keeps the exps */                  \
    static inline void block_normalizer_##S(const V *x, ptrdiff_t n, V *e, V *m_out, V *r_out)   \
    {                                                                                            \
        const V zero = VOP(set1)(0), one = VOP(set1)(1);                                         \
        V m = VOP(set1)((T)-INFINITY), s = zero, ties = zero;                                    \
        ptrdiff_t j;                                                                             \
        for (j = 0; j < n; ++j)                                                                  \
            m = VOP(max)(m, x[j]);                                                               \
        for (j = 0; j < n; ++j) {                                                                \
            const V d = VOP(sub)(x[j], m);                                                       \
            const M below = VOP(neq)(d, zero);                                                   \
            e[j] = VOP(exp_nonpos)(d);                                                           \
            s = VOP(add_if)(below, s, e[j]);                                                     \
            ties = VOP(add_unless)(below, ties, one);                                            \
        }                                                                                        \
        *m_out = m;                                                                              \
        *r_out = VOP(add)(s, VOP(sub)(ties, one));                                               \
    }                                                                                            \
                                                                                                 \
    static void sparse_block_##S(const T *x, ptrdiff_t xs, ptrdiff_t n, const int64_t *t,       \
                                 const double *scale, ptrdiff_t scale_step, T *g, ptrdiff_t gs,  \
                                 T *loss, ptrdiff_t ls)                                          \
    {                                                                                            \
        const V one = VOP(set1)(1), nan = VOP(set1)((T)NAN);                                     \
        V cols[2 * L], e[2 * L], m, r, xt = nan;                                                 \
        M valid;                                                                                 \
        const IDX tv = LABELS(t, n, &valid);                                                     \
        ptrdiff_t j;                                                                             \
        load_columns_##S(x, xs, n, cols);                                                        \
        block_normalizer_##S(cols, n, e, &m, &r);                                                \
        for (j = 0; j < n; ++j)                                                                  \
            xt = MASK_MOV(xt, IDX_EQ(tv, IDX_SET1(j)) & valid, cols[j]);                         \
        STORE_LOSS(loss, ls, VOP(add)(VOP(log1p_nonneg)(r), VOP(sub)(m, xt)));                   \
        if (g) {                                                                                 \
            const V sc = SCALE(scale, scale_step);                                               \
            const V inv = MASK_MOV(nan, valid, VOP(div)(sc, VOP(add)(one, r)));                  \
            /* p_t - 1, exact when the target is the max */                                      \
            const V target = MASK_MOV(                                                           \
                VOP(sub)(VOP(mul)(VOP(exp_nonpos)(VOP(sub)(xt, m)), inv), sc),                   \
                VOP(eq)(xt, m) & valid,                                                          \
                VOP(mul)(VOP(sub)(VOP(set1)(0), sc), VOP(div)(r, VOP(add)(one, r))));            \
            for (j = 0; j < n; ++j)                                                              \
                cols[j] = MASK_MOV(VOP(mul)(e[j], inv), IDX_EQ(tv, IDX_SET1(j)) & valid, target);\
            store_columns_##S(g, gs, n, cols);                                                   \
        }                                                                                        \
    }                                                                                            \
                                                                                                 \
    static void dense_block_##S(const T *x, ptrdiff_t xs, const T *y, ptrdiff_t ys, ptrdiff_t n,\
                                double a, double b, const double *scale, ptrdiff_t scale_step,   \
                                T *g, ptrdiff_t gs, T *gy, ptrdiff_t gys, T *loss, ptrdiff_t ls)\
    {                                                                                            \
        const V zero = VOP(set1)(0), one = VOP(set1)(1);                                         \
        const V va = VOP(set1)((T)a), vb = VOP(set1)((T)b);                                      \
        V cols[2 * L], ycols[2 * L], e[2 * L], m, r, log_s, sy = zero, syx = zero;               \
        ptrdiff_t j;                                                                             \
        load_columns_##S(x, xs, n, cols);                                                        \
        load_columns_##S(y, ys, n, ycols);                                                       \
        block_normalizer_##S(cols, n, e, &m, &r);                                                \
        for (j = 0; j < n; ++j) {                                                                \
            ycols[j] = VOP(fmadd)(va, ycols[j], vb);                                             \
            sy = VOP(add)(sy, ycols[j]);                                                         \
            syx = VOP(add)(syx, VOP(keep)(VOP(neq)(ycols[j], zero),                              \
                                          VOP(mul)(ycols[j], VOP(sub)(cols[j], m))));            \
        }                                                                                        \
        log_s = VOP(log1p_nonneg)(r);                                                            \
        STORE_LOSS(loss, ls, VOP(sub)(VOP(mul)(sy, log_s), syx));                                \
        if (gy) {                                                                                \
            const V gscale = VOP(mul)(SCALE(scale, scale_step), va);                             \
            V out[2 * L];                                                                        \
            for (j = 0; j < n; ++j)                                                              \
                out[j] = VOP(mul)(gscale, VOP(sub)(log_s, VOP(sub)(cols[j], m)));                \
            store_columns_##S(gy, gys, n, out);                                                  \
        }                                                                                        \
        if (g) {                                                                                 \
            const V sc = SCALE(scale, scale_step);                                               \
            const V p_scale = VOP(div)(VOP(mul)(sc, sy), VOP(add)(one, r));                      \
            const V neg_sc = VOP(sub)(zero, sc);                                                 \
            for (j = 0; j < n; ++j)                                                              \
                cols[j] = VOP(fmadd)(neg_sc, ycols[j], VOP(mul)(e[j], p_scale));                 \
            store_columns_##S(g, gs, n, cols);                                                   \
        }                                                                                        \
    }

BLOCK_IMPL(float, f32, vf, VF_, 16, __mmask16, __m512i, fx_labels16, fx_scale16,
           _mm512_set1_epi32, _mm512_cmpeq_epi32_mask, fx_store_loss16, _mm512_mask_mov_ps)
BLOCK_IMPL(double, f64, vd, VD_, 8, __mmask8, __m256i, fx_labels8, fx_scale8,
           _mm256_set1_epi32, _mm256_cmpeq_epi32_mask, fx_store_loss8, _mm512_mask_mov_pd)
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
