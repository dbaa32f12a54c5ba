/* A small vector abstraction, one per instruction set, so that the kernels are
 * written once (fx_kernels.c) and compiled once per instruction set.
 *
 * Exactly one of FX_AVX512, FX_AVX2, FX_SSE2 or none (plain C, one lane) is
 * defined by the build for each compilation. Types: vf (float lanes), vd
 * (double lanes), mf/md (lane masks). Operation names are vf_* and vd_*.
 * Masks are kept as full-width vectors on AVX2/SSE2 and as k-registers on AVX-512.
 */
#ifndef FX_SIMD_H
#define FX_SIMD_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(FX_AVX512)
#include <immintrin.h>
#define FX_PATH "avx512"
#define VF_LANES 16
#define VD_LANES 8
typedef __m512 vf;
typedef __m512d vd;
typedef __mmask16 mf;
typedef __mmask8 md;
static inline vf vf_load(const float *p) { return _mm512_loadu_ps(p); }
static inline vd vd_load(const double *p) { return _mm512_loadu_pd(p); }
static inline void vf_store(float *p, vf v) { _mm512_storeu_ps(p, v); }
static inline void vd_store(double *p, vd v) { _mm512_storeu_pd(p, v); }
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
/* max(a, b): b when either is NaN (as x86 max); callers put the NaN-carrier second */
static inline vf vf_max(vf a, vf b) { return _mm512_max_ps(a, b); }
static inline vd vd_max(vd a, vd b) { return _mm512_max_pd(a, b); }
static inline mf vf_eq(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
static inline md vd_eq(vd a, vd b) { return _mm512_cmp_pd_mask(a, b, _CMP_EQ_OQ); }
static inline mf vf_neq(vf a, vf b) { return _mm512_cmp_ps_mask(a, b, _CMP_NEQ_UQ); }
static inline md vd_neq(vd a, vd b) { return _mm512_cmp_pd_mask(a, b, _CMP_NEQ_UQ); }
/* a where m, else 0 */
static inline vf vf_keep(mf m, vf a) { return _mm512_maskz_mov_ps(m, a); }
static inline vd vd_keep(md m, vd a) { return _mm512_maskz_mov_pd(m, a); }
/* acc + v in the lanes where m holds / does not hold */
static inline vf vf_add_if(mf m, vf acc, vf v) { return _mm512_mask_add_ps(acc, m, acc, v); }
static inline vd vd_add_if(md m, vd acc, vd v) { return _mm512_mask_add_pd(acc, m, acc, v); }
static inline vf vf_add_unless(mf m, vf acc, vf v) { return _mm512_mask_add_ps(acc, (mf)~m, acc, v); }
static inline vd vd_add_unless(md m, vd acc, vd v) { return _mm512_mask_add_pd(acc, (md)~m, acc, v); }
/* how many lanes are NOT in m (integer work, off the vector pipes) */
static inline ptrdiff_t vf_count_not(mf m) { return 16 - __builtin_popcount((unsigned)m); }
static inline ptrdiff_t vd_count_not(md m) { return 8 - __builtin_popcount((unsigned)m); }
static inline vf vf_round(vf a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline vd vd_round(vd a) { return _mm512_roundscale_pd(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
/* a * 2**n for integral n (as floats), with correct underflow to subnormals and 0 */
static inline vf vf_scale2(vf a, vf n) { return _mm512_scalef_ps(a, n); }
static inline vd vd_scale2(vd a, vd n) { return _mm512_scalef_pd(a, n); }
static inline float vf_hmax(vf a) { return _mm512_reduce_max_ps(a); }
static inline double vd_hmax(vd a) { return _mm512_reduce_max_pd(a); }
static inline double vf_hsum_d(vf a)
{
    __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(a));
    __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
    return _mm512_reduce_add_pd(_mm512_add_pd(lo, hi));
}
static inline double vd_hsum_d(vd a) { return _mm512_reduce_add_pd(a); }

#elif defined(FX_AVX2)
#include <immintrin.h>
#define FX_PATH "avx2"
#define VF_LANES 8
#define VD_LANES 4
typedef __m256 vf;
typedef __m256d vd;
typedef __m256 mf;
typedef __m256d md;
static inline vf vf_load(const float *p) { return _mm256_loadu_ps(p); }
static inline vd vd_load(const double *p) { return _mm256_loadu_pd(p); }
static inline void vf_store(float *p, vf v) { _mm256_storeu_ps(p, v); }
static inline void vd_store(double *p, vd v) { _mm256_storeu_pd(p, v); }
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
static inline mf vf_neq(vf a, vf b) { return _mm256_cmp_ps(a, b, _CMP_NEQ_UQ); }
static inline md vd_neq(vd a, vd b) { return _mm256_cmp_pd(a, b, _CMP_NEQ_UQ); }
static inline vf vf_keep(mf m, vf a) { return _mm256_and_ps(m, a); }
static inline vd vd_keep(md m, vd a) { return _mm256_and_pd(m, a); }
static inline vf vf_add_if(mf m, vf acc, vf v) { return _mm256_add_ps(acc, _mm256_and_ps(m, v)); }
static inline vd vd_add_if(md m, vd acc, vd v) { return _mm256_add_pd(acc, _mm256_and_pd(m, v)); }
static inline vf vf_add_unless(mf m, vf acc, vf v) { return _mm256_add_ps(acc, _mm256_andnot_ps(m, v)); }
static inline vd vd_add_unless(md m, vd acc, vd v) { return _mm256_add_pd(acc, _mm256_andnot_pd(m, v)); }
static inline ptrdiff_t vf_count_not(mf m) { return 8 - __builtin_popcount((unsigned)_mm256_movemask_ps(m)); }
static inline ptrdiff_t vd_count_not(md m) { return 4 - __builtin_popcount((unsigned)_mm256_movemask_pd(m)); }
static inline vf vf_round(vf a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
static inline vd vd_round(vd a) { return _mm256_round_pd(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
/* n in [-252, 0]: two normal powers of two, so the one rounding happens last */
static inline vf vf_scale2(vf a, vf n)
{
    __m256i k = _mm256_cvtps_epi32(n);
    __m256i k1 = _mm256_srai_epi32(k, 1);
    __m256i k2 = _mm256_sub_epi32(k, k1);
    vf p1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k1, _mm256_set1_epi32(127)), 23));
    vf p2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(k2, _mm256_set1_epi32(127)), 23));
    return _mm256_mul_ps(_mm256_mul_ps(a, p1), p2);
}
static inline vd vd_scale2(vd a, vd n)
{
    __m128i k = _mm256_cvtpd_epi32(n);
    __m128i k1 = _mm_srai_epi32(k, 1);
    __m128i k2 = _mm_sub_epi32(k, k1);
    __m256i e1 = _mm256_slli_epi64(_mm256_cvtepi32_epi64(_mm_add_epi32(k1, _mm_set1_epi32(1023))), 52);
    __m256i e2 = _mm256_slli_epi64(_mm256_cvtepi32_epi64(_mm_add_epi32(k2, _mm_set1_epi32(1023))), 52);
    return _mm256_mul_pd(_mm256_mul_pd(a, _mm256_castsi256_pd(e1)), _mm256_castsi256_pd(e2));
}
static inline float vf_hmax(vf a)
{
    float t[8];
    float m;
    int i;
    _mm256_storeu_ps(t, a);
    m = t[0];
    for (i = 1; i < 8; ++i) m = t[i] > m ? t[i] : m;
    return m;
}
static inline double vd_hmax(vd a)
{
    double t[4];
    _mm256_storeu_pd(t, a);
    t[0] = t[1] > t[0] ? t[1] : t[0];
    t[2] = t[3] > t[2] ? t[3] : t[2];
    return t[2] > t[0] ? t[2] : t[0];
}
static inline double vf_hsum_d(vf a)
{
    vd lo = _mm256_cvtps_pd(_mm256_castps256_ps128(a));
    vd hi = _mm256_cvtps_pd(_mm256_extractf128_ps(a, 1));
    double t[4];
    _mm256_storeu_pd(t, _mm256_add_pd(lo, hi));
    return (t[0] + t[1]) + (t[2] + t[3]);
}
static inline double vd_hsum_d(vd a)
{
    double t[4];
    _mm256_storeu_pd(t, a);
    return (t[0] + t[1]) + (t[2] + t[3]);
}

#elif defined(FX_SSE2)
#include <emmintrin.h>
#define FX_PATH "sse2"
#define VF_LANES 4
#define VD_LANES 2
typedef __m128 vf;
typedef __m128d vd;
typedef __m128 mf;
typedef __m128d md;
static inline vf vf_load(const float *p) { return _mm_loadu_ps(p); }
static inline vd vd_load(const double *p) { return _mm_loadu_pd(p); }
static inline void vf_store(float *p, vf v) { _mm_storeu_ps(p, v); }
static inline void vd_store(double *p, vd v) { _mm_storeu_pd(p, v); }
static inline vf vf_set1(float x) { return _mm_set1_ps(x); }
static inline vd vd_set1(double x) { return _mm_set1_pd(x); }
static inline vf vf_add(vf a, vf b) { return _mm_add_ps(a, b); }
static inline vd vd_add(vd a, vd b) { return _mm_add_pd(a, b); }
static inline vf vf_sub(vf a, vf b) { return _mm_sub_ps(a, b); }
static inline vd vd_sub(vd a, vd b) { return _mm_sub_pd(a, b); }
static inline vf vf_mul(vf a, vf b) { return _mm_mul_ps(a, b); }
static inline vd vd_mul(vd a, vd b) { return _mm_mul_pd(a, b); }
static inline vf vf_div(vf a, vf b) { return _mm_div_ps(a, b); }
static inline vd vd_div(vd a, vd b) { return _mm_div_pd(a, b); }
static inline vf vf_fmadd(vf a, vf b, vf c) { return _mm_add_ps(_mm_mul_ps(a, b), c); }
static inline vd vd_fmadd(vd a, vd b, vd c) { return _mm_add_pd(_mm_mul_pd(a, b), c); }
static inline vf vf_max(vf a, vf b) { return _mm_max_ps(a, b); }
static inline vd vd_max(vd a, vd b) { return _mm_max_pd(a, b); }
static inline mf vf_eq(vf a, vf b) { return _mm_cmpeq_ps(a, b); }
static inline md vd_eq(vd a, vd b) { return _mm_cmpeq_pd(a, b); }
static inline mf vf_neq(vf a, vf b) { return _mm_cmpneq_ps(a, b); }
static inline md vd_neq(vd a, vd b) { return _mm_cmpneq_pd(a, b); }
static inline vf vf_keep(mf m, vf a) { return _mm_and_ps(m, a); }
static inline vd vd_keep(md m, vd a) { return _mm_and_pd(m, a); }
static inline vf vf_add_if(mf m, vf acc, vf v) { return _mm_add_ps(acc, _mm_and_ps(m, v)); }
static inline vd vd_add_if(md m, vd acc, vd v) { return _mm_add_pd(acc, _mm_and_pd(m, v)); }
static inline vf vf_add_unless(mf m, vf acc, vf v) { return _mm_add_ps(acc, _mm_andnot_ps(m, v)); }
static inline vd vd_add_unless(md m, vd acc, vd v) { return _mm_add_pd(acc, _mm_andnot_pd(m, v)); }
static inline ptrdiff_t vf_count_not(mf m) { return 4 - __builtin_popcount((unsigned)_mm_movemask_ps(m)); }
static inline ptrdiff_t vd_count_not(md m) { return 2 - __builtin_popcount((unsigned)_mm_movemask_pd(m)); }
/* |a| < 2**22 here: adding and subtracting 1.5 * 2**23 rounds to nearest, ties even */
static inline vf vf_round(vf a)
{
    const vf magic = _mm_set1_ps(12582912.0f);
    return _mm_sub_ps(_mm_add_ps(a, magic), magic);
}
static inline vd vd_round(vd a)
{
    const vd magic = _mm_set1_pd(6755399441055744.0);
    return _mm_sub_pd(_mm_add_pd(a, magic), magic);
}
static inline vf vf_scale2(vf a, vf n)
{
    __m128i k = _mm_cvtps_epi32(n);
    __m128i k1 = _mm_srai_epi32(k, 1);
    __m128i k2 = _mm_sub_epi32(k, k1);
    vf p1 = _mm_castsi128_ps(_mm_slli_epi32(_mm_add_epi32(k1, _mm_set1_epi32(127)), 23));
    vf p2 = _mm_castsi128_ps(_mm_slli_epi32(_mm_add_epi32(k2, _mm_set1_epi32(127)), 23));
    return _mm_mul_ps(_mm_mul_ps(a, p1), p2);
}
static inline vd vd_scale2(vd a, vd n)
{
    double t[2], s[2];
    int i;
    _mm_storeu_pd(t, a);
    _mm_storeu_pd(s, n);
    for (i = 0; i < 2; ++i) {
        int k = (int)s[i], k1 = k >> 1, k2 = k - k1;
        uint64_t b1 = (uint64_t)(k1 + 1023) << 52, b2 = (uint64_t)(k2 + 1023) << 52;
        double p1, p2;
        memcpy(&p1, &b1, 8);
        memcpy(&p2, &b2, 8);
        t[i] = s[i] != s[i] ? s[i] : (t[i] * p1) * p2;
    }
    return _mm_loadu_pd(t);
}
static inline float vf_hmax(vf a)
{
    float t[4];
    _mm_storeu_ps(t, a);
    t[0] = t[1] > t[0] ? t[1] : t[0];
    t[2] = t[3] > t[2] ? t[3] : t[2];
    return t[2] > t[0] ? t[2] : t[0];
}
static inline double vd_hmax(vd a)
{
    double t[2];
    _mm_storeu_pd(t, a);
    return t[1] > t[0] ? t[1] : t[0];
}
static inline double vf_hsum_d(vf a)
{
    float t[4];
    _mm_storeu_ps(t, a);
    return ((double)t[0] + (double)t[1]) + ((double)t[2] + (double)t[3]);
}
static inline double vd_hsum_d(vd a)
{
    double t[2];
    _mm_storeu_pd(t, a);
    return t[0] + t[1];
}

#else /* plain C: one lane */
#define FX_PATH "plain"
#define VF_LANES 1
#define VD_LANES 1
typedef float vf;
typedef double vd;
typedef int mf;
typedef int md;
static inline vf vf_load(const float *p) { return *p; }
static inline vd vd_load(const double *p) { return *p; }
static inline void vf_store(float *p, vf v) { *p = v; }
static inline void vd_store(double *p, vd v) { *p = v; }
static inline vf vf_set1(float x) { return x; }
static inline vd vd_set1(double x) { return x; }
static inline vf vf_add(vf a, vf b) { return a + b; }
static inline vd vd_add(vd a, vd b) { return a + b; }
static inline vf vf_sub(vf a, vf b) { return a - b; }
static inline vd vd_sub(vd a, vd b) { return a - b; }
static inline vf vf_mul(vf a, vf b) { return a * b; }
static inline vd vd_mul(vd a, vd b) { return a * b; }
static inline vf vf_div(vf a, vf b) { return a / b; }
static inline vd vd_div(vd a, vd b) { return a / b; }
static inline vf vf_fmadd(vf a, vf b, vf c) { return a * b + c; }
static inline vd vd_fmadd(vd a, vd b, vd c) { return a * b + c; }
static inline vf vf_max(vf a, vf b) { return a > b ? a : b; }
static inline vd vd_max(vd a, vd b) { return a > b ? a : b; }
static inline mf vf_eq(vf a, vf b) { return a == b; }
static inline md vd_eq(vd a, vd b) { return a == b; }
static inline mf vf_neq(vf a, vf b) { return a != b; }
static inline md vd_neq(vd a, vd b) { return a != b; }
static inline vf vf_keep(mf m, vf a) { return m ? a : 0.0f; }
static inline vd vd_keep(md m, vd a) { return m ? a : 0.0; }
static inline vf vf_add_if(mf m, vf acc, vf v) { return m ? acc + v : acc; }
static inline vd vd_add_if(md m, vd acc, vd v) { return m ? acc + v : acc; }
static inline vf vf_add_unless(mf m, vf acc, vf v) { return m ? acc : acc + v; }
static inline vd vd_add_unless(md m, vd acc, vd v) { return m ? acc : acc + v; }
static inline ptrdiff_t vf_count_not(mf m) { return !m; }
static inline ptrdiff_t vd_count_not(md m) { return !m; }
static inline vf vf_round(vf a) { return nearbyintf(a); }
static inline vd vd_round(vd a) { return nearbyint(a); }
static inline vf vf_scale2(vf a, vf n) { return n != n ? n : ldexpf(a, (int)n); }
static inline vd vd_scale2(vd a, vd n) { return n != n ? n : ldexp(a, (int)n); }
static inline float vf_hmax(vf a) { return a; }
static inline double vd_hmax(vd a) { return a; }
static inline double vf_hsum_d(vf a) { return a; }
static inline double vd_hsum_d(vd a) { return a; }
#endif

#endif /* FX_SIMD_H */
