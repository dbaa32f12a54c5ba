/* Vector exp (and, on AVX-512, log1p) over the fx_simd.h abstraction.
 *
 * vf_exp_nonpos / vd_exp_nonpos take d <= 0 (the kernels feed x - max(x)),
 * -inf and NaN included: exp(-inf) is exactly 0, NaN stays NaN, results that
 * underflow become subnormals or 0 with one final rounding. Cody-Waite range
 * reduction d = n ln2 + r, |r| <= ln2/2, then a polynomial (float: degree-5
 * minimax; double: degree-11 Chebyshev) and a scale by 2**n. Measured maximum errors are in docs/ACCURACY.md and asserted by
 * tests/test_simd.py.
 */
#ifndef FX_MATH_H
#define FX_MATH_H

#include "fx_simd.h"

static inline vf vf_exp_nonpos(vf d)
{
    /* below -104, exp(d) < 2**-150 rounds to 0; max(lo, d) keeps a NaN d */
    vf x = vf_max(vf_set1(-104.0f), d);
    vf n = vf_round(vf_mul(x, vf_set1(0x1.715476p+0f)));
    /* ln2 = 0.693359375 - 2.12194440e-4: the high part has 9 bits, so n * hi is
       exact even where fmadd is a multiply and an add (SSE2) */
    vf r = vf_fmadd(n, vf_set1(-0.693359375f), x);
    vf p;
    r = vf_fmadd(n, vf_set1(2.12194440e-4f), r);
    /* degree-5 minimax polynomial for exp on [-ln2/2, ln2/2] (the published
       coefficients of XNNPACK's p5 kernels) */
    p = vf_set1(0x1.0F9F9Cp-7f);
    p = vf_fmadd(p, r, vf_set1(0x1.573A1Ap-5f));
    p = vf_fmadd(p, r, vf_set1(0x1.555A80p-3f));
    p = vf_fmadd(p, r, vf_set1(0x1.FFFDC6p-2f));
    p = vf_fmadd(p, r, vf_set1(0x1.FFFFF6p-1f));
    p = vf_fmadd(p, r, vf_set1(1.0f));
    return vf_scale2(p, n);
}

static inline vd vd_exp_nonpos(vd d)
{
    vd x = vd_max(vd_set1(-746.0), d);
    vd n = vd_round(vd_mul(x, vd_set1(1.4426950408889634074)));
    vd r = vd_fmadd(n, vd_set1(-6.93147180369123816490e-01), x);   /* fdlibm's ln2 hi/lo */
    vd p;
    r = vd_fmadd(n, vd_set1(-1.90821492927058770002e-10), r);
    /* degree-11 Chebyshev interpolant of exp on [-ln2/2, ln2/2], computed in
       50-digit arithmetic and rounded: 0.15 ulp from exp before rounding */
    p = vd_set1(2.5110037605963777e-08);
    p = vd_fmadd(p, r, vd_set1(2.763263963904103e-07));
    p = vd_fmadd(p, r, vd_set1(2.755724091857897e-06));
    p = vd_fmadd(p, r, vd_set1(2.4801485482328494e-05));
    p = vd_fmadd(p, r, vd_set1(0.00019841269890047113));
    p = vd_fmadd(p, r, vd_set1(0.0013888888952314775));
    p = vd_fmadd(p, r, vd_set1(0.008333333333319601));
    p = vd_fmadd(p, r, vd_set1(0.0416666666664881));
    p = vd_fmadd(p, r, vd_set1(0.1666666666666668));
    p = vd_fmadd(p, r, vd_set1(0.5000000000000019));
    p = vd_fmadd(p, r, vd_set1(1.0));
    p = vd_fmadd(p, r, vd_set1(1.0));
    return vd_scale2(p, n);
}

#if defined(FX_AVX512)
/* log1p(r) for r >= 0 (or NaN, +inf): log(u) + (r - (u - 1)) / u with u = 1 + r,
   log(u) = e ln2 + 2 atanh(s), s = (m - 1) / (m + 1), m in [0.75, 1.5). */
static inline vf vf_log1p_nonneg(vf r)
{
    vf one = vf_set1(1.0f);
    vf u = vf_add(one, r);
    /* exact division: the correction is below one ulp of u but, for a tiny r,
       a large part of the result */
    vf correction = vf_div(vf_sub(r, vf_sub(u, one)), u);
    vf m = _mm512_getmant_ps(u, _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_zero);
    vf e = _mm512_getexp_ps(u);   /* floor(log2 u); one more when m came from [1.5, 2) */
    e = _mm512_mask_add_ps(e, _mm512_cmp_ps_mask(m, one, _CMP_LT_OQ), e, one);
    vf s = vf_div(vf_sub(m, one), vf_add(m, one));
    vf z = vf_mul(s, s);
    vf p = vf_set1(2.0f / 11.0f);
    p = vf_fmadd(p, z, vf_set1(2.0f / 9.0f));
    p = vf_fmadd(p, z, vf_set1(2.0f / 7.0f));
    p = vf_fmadd(p, z, vf_set1(2.0f / 5.0f));
    p = vf_fmadd(p, z, vf_set1(2.0f / 3.0f));
    p = vf_mul(vf_mul(p, z), s);
    p = vf_fmadd(s, vf_set1(2.0f), p);
    p = vf_fmadd(e, vf_set1(0.693147180559945309f), p);
    return _mm512_mask_mov_ps(vf_add(p, correction), _mm512_cmp_ps_mask(u, u, _CMP_UNORD_Q) |
                              _mm512_cmp_ps_mask(u, vf_set1(INFINITY), _CMP_EQ_OQ), u);
}

static inline vd vd_log1p_nonneg(vd r)
{
    vd one = vd_set1(1.0);
    vd u = vd_add(one, r);
    vd correction = vd_div(vd_sub(r, vd_sub(u, one)), u);
    vd m = _mm512_getmant_pd(u, _MM_MANT_NORM_p75_1p5, _MM_MANT_SIGN_zero);
    vd e = _mm512_getexp_pd(u);
    e = _mm512_mask_add_pd(e, _mm512_cmp_pd_mask(m, one, _CMP_LT_OQ), e, one);
    vd s = vd_div(vd_sub(m, one), vd_add(m, one));
    vd z = vd_mul(s, s);
    vd p = vd_set1(2.0 / 25.0);
    p = vd_fmadd(p, z, vd_set1(2.0 / 23.0));
    p = vd_fmadd(p, z, vd_set1(2.0 / 21.0));
    p = vd_fmadd(p, z, vd_set1(2.0 / 19.0));
    p = vd_fmadd(p, z, vd_set1(2.0 / 17.0));
    p = vd_fmadd(p, z, vd_set1(2.0 / 15.0));
    p = vd_fmadd(p, z, vd_set1(2.0 / 13.0));
    p = vd_fmadd(p, z, vd_set1(2.0 / 11.0));
    p = vd_fmadd(p, z, vd_set1(2.0 / 9.0));
    p = vd_fmadd(p, z, vd_set1(2.0 / 7.0));
    p = vd_fmadd(p, z, vd_set1(2.0 / 5.0));
    p = vd_fmadd(p, z, vd_set1(2.0 / 3.0));
    p = vd_mul(vd_mul(p, z), s);
    p = vd_fmadd(s, vd_set1(2.0), p);
    p = vd_fmadd(e, vd_set1(0.693147180559945309417), p);
    return _mm512_mask_mov_pd(vd_add(p, correction), _mm512_cmp_pd_mask(u, u, _CMP_UNORD_Q) |
                              _mm512_cmp_pd_mask(u, vd_set1(INFINITY), _CMP_EQ_OQ), u);
}
#endif

#endif /* FX_MATH_H */
