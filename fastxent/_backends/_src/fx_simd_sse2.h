/* fx_simd.h's operations for SSE2 (every x86-64 CPU): 4 floats, 2 doubles, masks as
 * all-ones lanes. No FMA: vX_fmadd is a multiply then an add. */
#include <emmintrin.h>

#define VF_LANES 4
#define VD_LANES 2

/* The planner's crossovers are fx_simd.h's defaults, measured on a Zen 4 core run as
   SSE2 (tools/crossovers.py). */
typedef __m128 vf;
typedef __m128d vd;
typedef __m128 mf;
typedef __m128d md;
typedef __m128i cf;
typedef __m128i cd;

static inline vf vf_load(const float *p) { return _mm_loadu_ps(p); }
static inline vd vd_load(const double *p) { return _mm_loadu_pd(p); }
static inline void vf_store(float *p, vf v) { _mm_storeu_ps(p, v); }
static inline void vd_store(double *p, vd v) { _mm_storeu_pd(p, v); }
/* element by element (a fixed-length loop, not a call to memcpy) */
static inline vf vf_load_part(const float *p, ptrdiff_t n, float pad)
{
    float t[4] = {pad, pad, pad, pad};
    int j;
    for (j = 0; j < 4; ++j)
        if (j < n)
            t[j] = p[j];
    return _mm_loadu_ps(t);
}
static inline vd vd_load_part(const double *p, ptrdiff_t n, double pad)
{
    return n > 1 ? _mm_loadu_pd(p) : n == 1 ? _mm_setr_pd(p[0], pad) : _mm_set1_pd(pad);
}
static inline void vf_store_part(float *p, ptrdiff_t n, vf v)
{
    float t[4];
    int j;
    _mm_storeu_ps(t, v);
    for (j = 0; j < 4; ++j)
        if (j < n)
            p[j] = t[j];
}
static inline void vd_store_part(double *p, ptrdiff_t n, vd v)
{
    if (n > 1)
        _mm_storeu_pd(p, v);
    else if (n == 1)
        _mm_store_sd(p, v);
}
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
static inline mf vf_lt(vf a, vf b) { return _mm_cmplt_ps(a, b); }
static inline md vd_lt(vd a, vd b) { return _mm_cmplt_pd(a, b); }
static inline mf vf_neq(vf a, vf b) { return _mm_cmpneq_ps(a, b); }
static inline md vd_neq(vd a, vd b) { return _mm_cmpneq_pd(a, b); }
static inline mf mf_and(mf a, mf b) { return _mm_and_ps(a, b); }
static inline md md_and(md a, md b) { return _mm_and_pd(a, b); }
static inline mf mf_or(mf a, mf b) { return _mm_or_ps(a, b); }
static inline md md_or(md a, md b) { return _mm_or_pd(a, b); }
static inline mf mf_first(ptrdiff_t n) { return _mm_cmplt_ps(_mm_setr_ps(0, 1, 2, 3), _mm_set1_ps((float)n)); }
static inline md md_first(ptrdiff_t n) { return _mm_cmplt_pd(_mm_setr_pd(0, 1), _mm_set1_pd((double)n)); }
static inline vf vf_select(mf m, vf a, vf b) { return _mm_or_ps(_mm_and_ps(m, a), _mm_andnot_ps(m, b)); }
static inline vd vd_select(md m, vd a, vd b) { return _mm_or_pd(_mm_and_pd(m, a), _mm_andnot_pd(m, b)); }
static inline vf vf_keep(mf m, vf a) { return _mm_and_ps(m, a); }
static inline vd vd_keep(md m, vd a) { return _mm_and_pd(m, a); }
static inline vf vf_add_if(mf m, vf acc, vf v) { return _mm_add_ps(acc, _mm_and_ps(m, v)); }
static inline vd vd_add_if(md m, vd acc, vd v) { return _mm_add_pd(acc, _mm_and_pd(m, v)); }
static inline cf cf_zero(void) { return _mm_setzero_si128(); }
static inline cd cd_zero(void) { return _mm_setzero_si128(); }
static inline cf cf_add(cf c, mf m) { return _mm_sub_epi32(c, _mm_castps_si128(m)); }
static inline cd cd_add(cd c, md m) { return _mm_sub_epi64(c, _mm_castpd_si128(m)); }
static inline ptrdiff_t cf_total(cf c)
{
    int32_t t[4];
    _mm_storeu_si128((__m128i *)t, c);
    return (ptrdiff_t)t[0] + t[1] + t[2] + t[3];
}
static inline ptrdiff_t cd_total(cd c)
{
    int64_t t[2];
    _mm_storeu_si128((__m128i *)t, c);
    return (ptrdiff_t)(t[0] + t[1]);
}
static inline vf vf_exponent_bits(vf a) { return _mm_castsi128_ps(_mm_slli_epi32(_mm_castps_si128(a), 23)); }
static inline vd vd_exponent_bits(vd a) { return _mm_castsi128_pd(_mm_slli_epi64(_mm_castpd_si128(a), 52)); }
static inline vf vf_frexp(vf u, vf *e)
{
    __m128i b = _mm_castps_si128(u);
    __m128i k = _mm_srli_epi32(_mm_sub_epi32(b, _mm_set1_epi32(0x3f400000)), 23);
    *e = _mm_cvtepi32_ps(k);
    return _mm_castsi128_ps(_mm_sub_epi32(b, _mm_slli_epi32(k, 23)));
}
static inline vd vd_frexp(vd u, vd *e)
{
    __m128i b = _mm_castpd_si128(u);
    __m128i k = _mm_srli_epi64(_mm_sub_epi64(b, _mm_set1_epi64x(0x3fe8000000000000)), 52);
    *e = _mm_sub_pd(_mm_castsi128_pd(_mm_or_si128(k, _mm_set1_epi64x(0x4330000000000000))),
                    _mm_set1_pd(4503599627370496.0));
    return _mm_castsi128_pd(_mm_sub_epi64(b, _mm_slli_epi64(k, 52)));
}
static inline float vf_hmax(vf a)
{
    vf m = _mm_max_ps(a, _mm_movehl_ps(a, a));
    m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
    return _mm_cvtss_f32(m);
}
static inline double vd_hmax(vd a) { return _mm_cvtsd_f64(_mm_max_sd(a, _mm_unpackhi_pd(a, a))); }
static inline double vf_hsum_d(vf a)
{
    vd s = _mm_add_pd(_mm_cvtps_pd(a), _mm_cvtps_pd(_mm_movehl_ps(a, a)));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}
static inline double vd_hsum_d(vd a) { return _mm_cvtsd_f64(_mm_add_sd(a, _mm_unpackhi_pd(a, a))); }
static inline vd vd_add_f(vd acc, vf a)
{
    return _mm_add_pd(acc, _mm_add_pd(_mm_cvtps_pd(a), _mm_cvtps_pd(_mm_movehl_ps(a, a))));
}
static FX_ALWAYS_INLINE void vf_transpose(vf r[4]) { _MM_TRANSPOSE4_PS(r[0], r[1], r[2], r[3]); }
static FX_ALWAYS_INLINE void vd_transpose(vd r[2])
{
    vd t = _mm_unpacklo_pd(r[0], r[1]);
    r[1] = _mm_unpackhi_pd(r[0], r[1]);
    r[0] = t;
}

/* pairs: lane i of *c0 and *c1 = the pair i of a's and b's lanes together (rows of two) */
static inline void vf_deinterleave(vf a, vf b, vf *c0, vf *c1)
{
    *c0 = _mm_shuffle_ps(a, b, 0x88);
    *c1 = _mm_shuffle_ps(a, b, 0xdd);
}
static inline void vd_deinterleave(vd a, vd b, vd *c0, vd *c1)
{
    *c0 = _mm_unpacklo_pd(a, b);
    *c1 = _mm_unpackhi_pd(a, b);
}
static inline void vf_interleave(vf c0, vf c1, vf *a, vf *b)
{
    *a = _mm_unpacklo_ps(c0, c1);
    *b = _mm_unpackhi_ps(c0, c1);
}
static inline void vd_interleave(vd c0, vd c1, vd *a, vd *b)
{
    *a = _mm_unpacklo_pd(c0, c1);
    *b = _mm_unpackhi_pd(c0, c1);
}
