/* fx_simd.h's operations for AVX2 with FMA: 8 floats, 4 doubles, masks as all-ones lanes. */
#include <immintrin.h>

#define VF_LANES 8
#define VD_LANES 4

/* The planner's crossovers are fx_simd.h's defaults, measured on a Zen 4 core run as
   AVX2 (tools/crossovers.py). */
typedef __m256 vf;
typedef __m256d vd;
typedef __m256 mf;
typedef __m256d md;
/* lane counters are scalars: the population count of a mask's sign bits (vmovmskps) */
typedef ptrdiff_t cf;
typedef ptrdiff_t cd;

static inline vf vf_load(const float *p) { return _mm256_loadu_ps(p); }
static inline vd vd_load(const double *p) { return _mm256_loadu_pd(p); }
static inline void vf_store(float *p, vf v) { _mm256_storeu_ps(p, v); }
static inline void vd_store(double *p, vd v) { _mm256_storeu_pd(p, v); }
static inline mf mf_first(ptrdiff_t n)
{
    return _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)n),
                                                  _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
}
static inline md md_first(ptrdiff_t n)
{
    return _mm256_castsi256_pd(_mm256_cmpgt_epi64(_mm256_set1_epi64x(n),
                                                  _mm256_setr_epi64x(0, 1, 2, 3)));
}
/* vmaskmov: masked-off lanes are not read (no fault) and not written */
static inline vf vf_load_part(const float *p, ptrdiff_t n, float pad)
{
    mf m = mf_first(n);
    return _mm256_blendv_ps(_mm256_set1_ps(pad), _mm256_maskload_ps(p, _mm256_castps_si256(m)), m);
}
static inline vd vd_load_part(const double *p, ptrdiff_t n, double pad)
{
    md m = md_first(n);
    return _mm256_blendv_pd(_mm256_set1_pd(pad), _mm256_maskload_pd(p, _mm256_castpd_si256(m)), m);
}
static inline void vf_store_part(float *p, ptrdiff_t n, vf v)
{
    _mm256_maskstore_ps(p, _mm256_castps_si256(mf_first(n)), v);
}
static inline void vd_store_part(double *p, ptrdiff_t n, vd v)
{
    _mm256_maskstore_pd(p, _mm256_castpd_si256(md_first(n)), v);
}
static inline vf vf_set1(float x) { return _mm256_set1_ps(x); }
static inline vd vd_set1(double x) { return _mm256_set1_pd(x); }
static inline vf vf_add(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vd vd_add(vd a, vd b) { return _mm256_add_pd(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vd vd_sub(vd a, vd b) { return _mm256_sub_pd(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vd vd_mul(vd a, vd b) { return _mm256_mul_pd(a, b); }
static inline vf vf_div(vf a, vf b) { return _mm256_div_ps(a, b); }
static inline vd vd_div(vd a, vd b) { return _mm256_div_pd(a, b); }
static inline vf vf_fmadd(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
static inline vd vd_fmadd(vd a, vd b, vd c) { return _mm256_fmadd_pd(a, b, c); }
static inline vf vf_max(vf a, vf b) { return _mm256_max_ps(a, b); }
static inline vd vd_max(vd a, vd b) { return _mm256_max_pd(a, b); }
static inline mf vf_eq(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_EQ_OQ); }
static inline md vd_eq(vd a, vd b) { return _mm256_cmp_pd(a, b, _CMP_EQ_OQ); }
static inline mf vf_lt(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
static inline md vd_lt(vd a, vd b) { return _mm256_cmp_pd(a, b, _CMP_LT_OQ); }
static inline mf vf_neq(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_NEQ_UQ); }
static inline md vd_neq(vd a, vd b) { return _mm256_cmp_pd(a, b, _CMP_NEQ_UQ); }
static inline mf mf_and(mf a, mf b) { return _mm256_and_ps(a, b); }
static inline md md_and(md a, md b) { return _mm256_and_pd(a, b); }
static inline mf mf_or(mf a, mf b) { return _mm256_or_ps(a, b); }
static inline md md_or(md a, md b) { return _mm256_or_pd(a, b); }
static inline vf vf_select(mf m, vf a, vf b) { return _mm256_blendv_ps(b, a, m); }
static inline vd vd_select(md m, vd a, vd b) { return _mm256_blendv_pd(b, a, m); }
static inline vf vf_keep(mf m, vf a) { return _mm256_and_ps(m, a); }
static inline vd vd_keep(md m, vd a) { return _mm256_and_pd(m, a); }
static inline vf vf_add_if(mf m, vf acc, vf v) { return _mm256_add_ps(acc, _mm256_and_ps(m, v)); }
static inline vd vd_add_if(md m, vd acc, vd v) { return _mm256_add_pd(acc, _mm256_and_pd(m, v)); }
static inline cf cf_zero(void) { return 0; }
static inline cd cd_zero(void) { return 0; }
static inline cf cf_add(cf c, mf m) { return c + __builtin_popcount((unsigned)_mm256_movemask_ps(m)); }
static inline cd cd_add(cd c, md m) { return c + __builtin_popcount((unsigned)_mm256_movemask_pd(m)); }
static inline ptrdiff_t cf_total(cf c) { return c; }
static inline ptrdiff_t cd_total(cd c) { return c; }
static inline vf vf_exponent_bits(vf a)
{
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_castps_si256(a), 23));
}
static inline vd vd_exponent_bits(vd a)
{
    return _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_castpd_si256(a), 52));
}
/* k = (bits(u) - bits(0.75)) >> 23 is the exponent that brings u into [0.75, 1.5) */
static inline vf vf_frexp(vf u, vf *e)
{
    __m256i b = _mm256_castps_si256(u);
    __m256i k = _mm256_srli_epi32(_mm256_sub_epi32(b, _mm256_set1_epi32(0x3f400000)), 23);
    *e = _mm256_cvtepi32_ps(k);
    return _mm256_castsi256_ps(_mm256_sub_epi32(b, _mm256_slli_epi32(k, 23)));
}
static inline vd vd_frexp(vd u, vd *e)
{
    __m256i b = _mm256_castpd_si256(u);
    __m256i k = _mm256_srli_epi64(_mm256_sub_epi64(b, _mm256_set1_epi64x(0x3fe8000000000000)), 52);
    /* k < 2**11: its bits under 2**52's are 2**52 + k */
    *e = _mm256_sub_pd(_mm256_castsi256_pd(_mm256_or_si256(k, _mm256_set1_epi64x(0x4330000000000000))),
                       _mm256_set1_pd(4503599627370496.0));
    return _mm256_castsi256_pd(_mm256_sub_epi64(b, _mm256_slli_epi64(k, 52)));
}
static inline float vf_hmax(vf a)
{
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}
static inline double vd_hmax(vd a)
{
    __m128d m = _mm_max_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
    m = _mm_max_sd(m, _mm_unpackhi_pd(m, m));
    return _mm_cvtsd_f64(m);
}
static inline double vf_hsum_d(vf a)
{
    __m256d s = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a)),
                              _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1)));
    __m128d t = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    return _mm_cvtsd_f64(_mm_add_sd(t, _mm_unpackhi_pd(t, t)));
}
static inline vd vd_add_f(vd acc, vf a)
{
    return _mm256_add_pd(acc, _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(a)),
                                            _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1))));
}
static inline double vd_hsum_d(vd a)
{
    __m128d t = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
    return _mm_cvtsd_f64(_mm_add_sd(t, _mm_unpackhi_pd(t, t)));
}

static FX_ALWAYS_INLINE void vf_transpose(vf r[8])
{
    vf t[8], u[8];
    int i;
    for (i = 0; i < 4; ++i) {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (i = 0; i < 2; ++i) {
        u[4 * i + 0] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
        u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xee);
        u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
        u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xee);
    }
    for (i = 0; i < 4; ++i) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

static FX_ALWAYS_INLINE void vd_transpose(vd r[4])
{
    vd t0 = _mm256_unpacklo_pd(r[0], r[1]), t1 = _mm256_unpackhi_pd(r[0], r[1]);
    vd t2 = _mm256_unpacklo_pd(r[2], r[3]), t3 = _mm256_unpackhi_pd(r[2], r[3]);
    r[0] = _mm256_permute2f128_pd(t0, t2, 0x20);
    r[1] = _mm256_permute2f128_pd(t1, t3, 0x20);
    r[2] = _mm256_permute2f128_pd(t0, t2, 0x31);
    r[3] = _mm256_permute2f128_pd(t1, t3, 0x31);
}

/* pairs: lane i of *c0 and *c1 = the pair i of a's and b's lanes together (rows of two) */
static inline void vf_deinterleave(vf a, vf b, vf *c0, vf *c1)
{
    *c0 = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0x88)), 0xd8));
    *c1 = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(a, b, 0xdd)), 0xd8));
}
static inline void vd_deinterleave(vd a, vd b, vd *c0, vd *c1)
{
    *c0 = _mm256_permute4x64_pd(_mm256_unpacklo_pd(a, b), 0xd8);
    *c1 = _mm256_permute4x64_pd(_mm256_unpackhi_pd(a, b), 0xd8);
}
static inline void vf_interleave(vf c0, vf c1, vf *a, vf *b)
{
    const vf lo = _mm256_unpacklo_ps(c0, c1), hi = _mm256_unpackhi_ps(c0, c1);
    *a = _mm256_permute2f128_ps(lo, hi, 0x20);
    *b = _mm256_permute2f128_ps(lo, hi, 0x31);
}
static inline void vd_interleave(vd c0, vd c1, vd *a, vd *b)
{
    const vd lo = _mm256_unpacklo_pd(c0, c1), hi = _mm256_unpackhi_pd(c0, c1);
    *a = _mm256_permute2f128_pd(lo, hi, 0x20);
    *b = _mm256_permute2f128_pd(lo, hi, 0x31);
}

/* float16 (F16C's vcvtph2ps/vcvtps2ph) and bfloat16 (a shift into the float's high half)
   storage, converted in registers; partial accesses through a small buffer (no 16-bit
   masked loads before AVX-512). */
#define FX_HALF_VECTORS 1

/* one float16, converted by F16C (fx_half.h's conversions, in hardware) */
#define FX_HALF_SCALARS 1
static inline float fx_f16_to_float(uint16_t h) { return _cvtsh_ss(h); }
static inline uint16_t fx_float_to_f16(float f) { return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT); }
static inline __m128i fx_bits_part(const uint16_t *p, ptrdiff_t n)
{
    /* element by element at constant positions (a jump into the run of inserts) */
    __m128i h = _mm_setzero_si128();
    switch (n < 8 ? n : 8) {
    case 8: return _mm_loadu_si128((const __m128i *)p);
    case 7: h = _mm_insert_epi16(h, p[6], 6); /* fall through */
    case 6: h = _mm_insert_epi16(h, p[5], 5); /* fall through */
    case 5: h = _mm_insert_epi16(h, p[4], 4); /* fall through */
    case 4: h = _mm_insert_epi16(h, p[3], 3); /* fall through */
    case 3: h = _mm_insert_epi16(h, p[2], 2); /* fall through */
    case 2: h = _mm_insert_epi16(h, p[1], 1); /* fall through */
    case 1: h = _mm_insert_epi16(h, p[0], 0); /* fall through */
    default: break;
    }
    return h;
}
static inline void fx_bits_store_part(uint16_t *p, ptrdiff_t n, __m128i h)
{
    switch (n < 8 ? n : 8) {
    case 8: _mm_storeu_si128((__m128i *)p, h); return;
    case 7: p[6] = (uint16_t)_mm_extract_epi16(h, 6); /* fall through */
    case 6: p[5] = (uint16_t)_mm_extract_epi16(h, 5); /* fall through */
    case 5: p[4] = (uint16_t)_mm_extract_epi16(h, 4); /* fall through */
    case 4: p[3] = (uint16_t)_mm_extract_epi16(h, 3); /* fall through */
    case 3: p[2] = (uint16_t)_mm_extract_epi16(h, 2); /* fall through */
    case 2: p[1] = (uint16_t)_mm_extract_epi16(h, 1); /* fall through */
    case 1: p[0] = (uint16_t)_mm_extract_epi16(h, 0); /* fall through */
    default: break;
    }
}
static inline vf vf_load_f16(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
static inline vf vf_load_part_f16(const uint16_t *p, ptrdiff_t n, float pad)
{
    return _mm256_blendv_ps(_mm256_set1_ps(pad), _mm256_cvtph_ps(fx_bits_part(p, n)), mf_first(n));
}
static inline __m128i fx_to_f16_bits(vf v) { return _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline void vf_store_f16(uint16_t *p, vf v) { _mm_storeu_si128((__m128i *)p, fx_to_f16_bits(v)); }
static inline void vf_store_part_f16(uint16_t *p, ptrdiff_t n, vf v) { fx_bits_store_part(p, n, fx_to_f16_bits(v)); }
static inline vf fx_from_bf16_bits(__m128i h) { return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16)); }
static inline vf vf_load_bf16(const uint16_t *p) { return fx_from_bf16_bits(_mm_loadu_si128((const __m128i *)p)); }
static inline vf vf_load_part_bf16(const uint16_t *p, ptrdiff_t n, float pad)
{
    const vf v = fx_from_bf16_bits(fx_bits_part(p, n));
    return pad == 0.0f ? v : _mm256_blendv_ps(_mm256_set1_ps(pad), v, mf_first(n));   /* zeros are +0 */
}
/* round to nearest even; a NaN is made quiet (fx_half.h's fx_float_to_bfloat16) */
static inline __m128i fx_to_bf16_bits(vf v)
{
    const __m256i b = _mm256_castps_si256(v);
    const __m256i odd = _mm256_and_si256(_mm256_srli_epi32(b, 16), _mm256_set1_epi32(1));
    const __m256i rounded = _mm256_add_epi32(b, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7fff)));
    const __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
    __m256i r = rounded;
    if (__builtin_expect(_mm256_movemask_ps(nan) != 0, 0))
        r = _mm256_blendv_epi8(rounded, _mm256_or_si256(b, _mm256_set1_epi32(0x400000)), _mm256_castps_si256(nan));
    r = _mm256_srli_epi32(r, 16);
    return _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
}
static inline void vf_store_bf16(uint16_t *p, vf v) { _mm_storeu_si128((__m128i *)p, fx_to_bf16_bits(v)); }
static inline void vf_store_part_bf16(uint16_t *p, ptrdiff_t n, vf v) { fx_bits_store_part(p, n, fx_to_bf16_bits(v)); }
