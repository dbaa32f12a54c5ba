/* fx_simd.h's operations for AVX-512 (F, DQ, VL, BW) with FMA: 16 floats, 8 doubles,
 * masks in k-registers. */
#include <immintrin.h>

#define VF_LANES 16
#define VD_LANES 8

/* The planner's crossovers (fx_simd.h) that differ here, measured on a Zen 4 core
   (tools/crossovers.py): with a gradient and logits larger than the caches, rows in lanes
   write a line of each of their rows per tile and lose to row batches from about 2.5
   vectors' width. */
#define FX_LANES_GRAD_COLS_F32 40
#define FX_LANES_GRAD_COLS_F16 40
#define FX_LANES_GRAD_COLS_F64 20
/* With a gradient, a float32 batch's 16 rows of exps (written to the gradient, then
   scaled) outgrow the first-level cache, and from about 640 classes the row kernels win
   whenever the logits do not fit the caches (row batches' time over the row kernels', one
   Zen 4 core: 1.03 to 1.15 from 768 to 4000 classes at 2,000,000 logits a call, 1.15 to
   1.47 at 8192 x 1000; in the caches, 500,000 logits, 0.83 to 0.96, which this gives up).
   The choice depends on the class count only: a row's bits never depend on its call. */
#define FX_BATCH_GRAD_COLS_F32 640
typedef __m512 vf;
typedef __m512d vd;
typedef __mmask16 mf;
typedef __mmask8 md;
/* lane counters are scalars: a mask's population count, on the integer units */
typedef ptrdiff_t cf;
typedef ptrdiff_t cd;

static inline vf vf_load(const float *p) { return _mm512_loadu_ps(p); }
static inline vd vd_load(const double *p) { return _mm512_loadu_pd(p); }
static inline void vf_store(float *p, vf v) { _mm512_storeu_ps(p, v); }
static inline void vd_store(double *p, vd v) { _mm512_storeu_pd(p, v); }
static inline mf mf_first(ptrdiff_t n) { return (mf)((1u << n) - 1u); }
static inline md md_first(ptrdiff_t n) { return (md)((1u << n) - 1u); }
/* masked-off lanes are not read (no fault, no access) */
static inline vf vf_load_part(const float *p, ptrdiff_t n, float pad)
{
    return _mm512_mask_loadu_ps(_mm512_set1_ps(pad), mf_first(n), p);
}
static inline vd vd_load_part(const double *p, ptrdiff_t n, double pad)
{
    return _mm512_mask_loadu_pd(_mm512_set1_pd(pad), md_first(n), p);
}
static inline void vf_store_part(float *p, ptrdiff_t n, vf v) { _mm512_mask_storeu_ps(p, mf_first(n), v); }
static inline void vd_store_part(double *p, ptrdiff_t n, vd v) { _mm512_mask_storeu_pd(p, md_first(n), v); }
static inline vf vf_set1(float x) { return _mm512_set1_ps(x); }
static inline vd vd_set1(double x) { return _mm512_set1_pd(x); }
static inline vf vf_add(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vd vd_add(vd a, vd b) { return _mm512_add_pd(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vd vd_sub(vd a, vd b) { return _mm512_sub_pd(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
static inline vd vd_mul(vd a, vd b) { return _mm512_mul_pd(a, b); }
static inline vf vf_div(vf a, vf b) { return _mm512_div_ps(a, b); }
static inline vd vd_div(vd a, vd b) { return _mm512_div_pd(a, b); }
static inline vf vf_fmadd(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
static inline vd vd_fmadd(vd a, vd b, vd c) { return _mm512_fmadd_pd(a, b, c); }
static inline vf vf_max(vf a, vf b) { return _mm512_max_ps(a, b); }
static inline vd vd_max(vd a, vd b) { return _mm512_max_pd(a, b); }
static inline mf vf_eq(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
static inline md vd_eq(vd a, vd b) { return _mm512_cmp_pd_mask(a, b, _CMP_EQ_OQ); }
static inline mf vf_lt(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
static inline md vd_lt(vd a, vd b) { return _mm512_cmp_pd_mask(a, b, _CMP_LT_OQ); }
static inline mf vf_neq(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_NEQ_UQ); }
static inline md vd_neq(vd a, vd b) { return _mm512_cmp_pd_mask(a, b, _CMP_NEQ_UQ); }
static inline mf mf_and(mf a, mf b) { return (mf)(a & b); }
static inline md md_and(md a, md b) { return (md)(a & b); }
static inline mf mf_or(mf a, mf b) { return (mf)(a | b); }
static inline md md_or(md a, md b) { return (md)(a | b); }
static inline vf vf_select(mf m, vf a, vf b) { return _mm512_mask_mov_ps(b, m, a); }
static inline vd vd_select(md m, vd a, vd b) { return _mm512_mask_mov_pd(b, m, a); }
static inline vf vf_keep(mf m, vf a) { return _mm512_maskz_mov_ps(m, a); }
static inline vd vd_keep(md m, vd a) { return _mm512_maskz_mov_pd(m, a); }
static inline vf vf_add_if(mf m, vf acc, vf v) { return _mm512_mask_add_ps(acc, m, acc, v); }
static inline vd vd_add_if(md m, vd acc, vd v) { return _mm512_mask_add_pd(acc, m, acc, v); }
static inline cf cf_zero(void) { return 0; }
static inline cd cd_zero(void) { return 0; }
static inline cf cf_add(cf c, mf m) { return c + __builtin_popcount((unsigned)m); }
static inline cd cd_add(cd c, md m) { return c + __builtin_popcount((unsigned)m); }
static inline ptrdiff_t cf_total(cf c) { return c; }
static inline ptrdiff_t cd_total(cd c) { return c; }
static inline vf vf_exponent_bits(vf a)
{
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_castps_si512(a), 23));
}
static inline vd vd_exponent_bits(vd a)
{
    return _mm512_castsi512_pd(_mm512_slli_epi64(_mm512_castpd_si512(a), 52));
}
/* The exp's scale 2**(k + j/16) from the integer i = 16 k + j in a's low bits: the table
   entry 2**(j/16) (vpermps takes the low 4 bits) with k added to its exponent bits
   (fx_math.h). A k below the normal exponents wraps the sum's sign bit: +0 (not a
   subnormal, whose product would cost a microcode assist). */
#define FX_EXP_TABLE 16
static inline vf vf_exp_table(vf a)
{
    static const float table[16] = {
        0x1.000000p+0f, 0x1.0b5586p+0f, 0x1.172b84p+0f, 0x1.2387a6p+0f,
        0x1.306fe0p+0f, 0x1.3dea64p+0f, 0x1.4bfdaep+0f, 0x1.5ab07ep+0f,
        0x1.6a09e6p+0f, 0x1.7a1148p+0f, 0x1.8ace54p+0f, 0x1.9c4918p+0f,
        0x1.ae89fap+0f, 0x1.c199bep+0f, 0x1.d5818ep+0f, 0x1.ea4afap+0f};
    const __m512i i = _mm512_castps_si512(a);
    const __m512 t = _mm512_permutexvar_ps(i, _mm512_loadu_ps(table));
    const __m512i scaled = _mm512_add_epi32(_mm512_castps_si512(t),
                                            _mm512_slli_epi32(_mm512_srai_epi32(i, 4), 23));
    return _mm512_castsi512_ps(_mm512_max_epi32(scaled, _mm512_setzero_si512()));
}
/* getexp is floor(log2 u); getmant folds [1.5, 2) onto [0.75, 1), one exponent up */
static inline vf vf_frexp(vf u, vf *e)
{
    vf m = _mm512_getmant_ps(u, _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_zero);
    vf x = _mm512_getexp_ps(u);
    *e = _mm512_mask_add_ps(x, vf_lt(m, vf_set1(1.0f)), x, vf_set1(1.0f));
    return m;
}
static inline vd vd_frexp(vd u, vd *e)
{
    vd m = _mm512_getmant_pd(u, _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_zero);
    vd x = _mm512_getexp_pd(u);
    *e = _mm512_mask_add_pd(x, vd_lt(m, vd_set1(1.0)), x, vd_set1(1.0));
    return m;
}
static inline float vf_hmax(vf a) { return _mm512_reduce_max_ps(a); }
static inline double vd_hmax(vd a) { return _mm512_reduce_max_pd(a); }
static inline double vf_hsum_d(vf a)
{
    __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(a));
    __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
    return _mm512_reduce_add_pd(_mm512_add_pd(lo, hi));
}
static inline double vd_hsum_d(vd a) { return _mm512_reduce_add_pd(a); }
static inline vd vd_add_f(vd acc, vf a)
{
    __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(a));
    __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
    return _mm512_add_pd(acc, _mm512_add_pd(lo, hi));
}

static FX_ALWAYS_INLINE void vf_transpose(vf r[16])
{
    vf t[16];
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

static FX_ALWAYS_INLINE void vd_transpose(vd r[8])
{
    vd t[8];
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

/* pairs: lane i of *c0 and *c1 = the pair i of a's and b's lanes together (rows of two) */
static inline void vf_deinterleave(vf a, vf b, vf *c0, vf *c1)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    *c0 = _mm512_permutex2var_ps(a, even, b);
    *c1 = _mm512_permutex2var_ps(a, _mm512_add_epi32(even, _mm512_set1_epi32(1)), b);
}
static inline void vd_deinterleave(vd a, vd b, vd *c0, vd *c1)
{
    const __m512i even = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
    *c0 = _mm512_permutex2var_pd(a, even, b);
    *c1 = _mm512_permutex2var_pd(a, _mm512_add_epi64(even, _mm512_set1_epi64(1)), b);
}
static inline void vf_interleave(vf c0, vf c1, vf *a, vf *b)
{
    const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    *a = _mm512_permutex2var_ps(c0, lo, c1);
    *b = _mm512_permutex2var_ps(c0, _mm512_add_epi32(lo, _mm512_set1_epi32(8)), c1);
}
static inline void vd_interleave(vd c0, vd c1, vd *a, vd *b)
{
    const __m512i lo = _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11);
    *a = _mm512_permutex2var_pd(c0, lo, c1);
    *b = _mm512_permutex2var_pd(c0, _mm512_add_epi64(lo, _mm512_set1_epi64(4)), c1);
}

/* float16 (vcvtph2ps, vcvtps2ph: every AVX-512 CPU has them) and bfloat16 (a shift into
   the float's high half) storage, converted in registers; masked 16-bit accesses (BW). */
#define FX_HALF_VECTORS 1

/* one float16, converted by F16C (fx_half.h's conversions, in hardware) */
#define FX_HALF_SCALARS 1
static inline float fx_f16_to_float(uint16_t h) { return _cvtsh_ss(h); }
static inline uint16_t fx_float_to_f16(float f) { return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT); }
static inline vf vf_load_f16(const uint16_t *p) { return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)); }
static inline vf vf_load_part_f16(const uint16_t *p, ptrdiff_t n, float pad)
{
    return _mm512_mask_cvtph_ps(_mm512_set1_ps(pad), mf_first(n), _mm256_maskz_loadu_epi16(mf_first(n), p));
}
static inline __m256i fx_to_f16_bits(vf v) { return _mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline void vf_store_f16(uint16_t *p, vf v) { _mm256_storeu_si256((__m256i *)p, fx_to_f16_bits(v)); }
static inline void vf_store_part_f16(uint16_t *p, ptrdiff_t n, vf v) { _mm256_mask_storeu_epi16(p, mf_first(n), fx_to_f16_bits(v)); }
static inline vf fx_from_bf16_bits(__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); }
static inline vf vf_load_bf16(const uint16_t *p) { return fx_from_bf16_bits(_mm256_loadu_si256((const __m256i *)p)); }
static inline vf vf_load_part_bf16(const uint16_t *p, ptrdiff_t n, float pad)
{
    const vf v = fx_from_bf16_bits(_mm256_maskz_loadu_epi16(mf_first(n), p));
    return pad == 0.0f ? v : _mm512_mask_blend_ps(mf_first(n), _mm512_set1_ps(pad), v);   /* zeros are +0 */
}
/* round to nearest even; a NaN is made quiet (fx_half.h's fx_float_to_bfloat16) */
static inline __m256i fx_to_bf16_bits(vf v)
{
    const __m512i b = _mm512_castps_si512(v);
    const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(b, 16), _mm512_set1_epi32(1));
    const __m512i rounded = _mm512_add_epi32(b, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff)));
    const __m512i quiet = _mm512_or_si512(b, _mm512_set1_epi32(0x400000));
    const __m512i r = _mm512_mask_mov_epi32(rounded, _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q), quiet);
    return _mm512_cvtepi32_epi16(_mm512_srli_epi32(r, 16));
}
static inline void vf_store_bf16(uint16_t *p, vf v) { _mm256_storeu_si256((__m256i *)p, fx_to_bf16_bits(v)); }
static inline void vf_store_part_bf16(uint16_t *p, ptrdiff_t n, vf v) { _mm256_mask_storeu_epi16(p, mf_first(n), fx_to_bf16_bits(v)); }
