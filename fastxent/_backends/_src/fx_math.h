/* Vector exp and log1p, written once over fx_simd.h.
 *
 * vX_exp_nonpos(d) takes d <= 0 (the kernels feed x - max(x)), -inf and NaN included:
 * exp(-inf) is exactly 0, exp(0) exactly 1, NaN stays NaN, and results that underflow
 * are subnormals or 0, rounded once. Cody-Waite reduction d = n ln2 + r, |r| <= ln2/2,
 * with n rounded by a magic-number add whose low bits also hold n's exponent; then a
 * polynomial (float: degree-5 minimax; double: degree-11 Chebyshev) with every coefficient
 * scaled by 2**-64, times 2**(n + 64). The scaled polynomial is exactly 2**-64 times the
 * unscaled one (a power of two commutes with rounding), 2**(n + 64) is a normal number
 * (or, at the clamp, +0), and the product rounds once: the same result as p * 2**n
 * without a two-step scale for subnormals. Only a result that is subnormal (float:
 * d between about -132 and -87) makes an underflowing multiply, which costs a microcode
 * assist on x86 CPUs; -inf and the padding of partial vectors never do.
 *
 * vX_log1p_nonneg(r) takes r >= 0 (and NaN, +inf): log(u) + (r - (u - 1)) / u with
 * u = 1 + r = m 2**e, m in [0.75, 1.5), log(u) = e ln2 + log(m).
 *
 * Measured errors: docs/ACCURACY.md, asserted by tests/kernels/test_accuracy.py.
 */
#ifndef FX_MATH_H
#define FX_MATH_H

#include "fx_simd.h"

#ifdef FX_EXP_TABLE
/* Where the ISA looks 2**(j/N) up in a register (N = FX_EXP_TABLE, vf_exp_table): d = (n/N)
   ln2 + r with |r| <= ln2/(2N), so a degree-3 polynomial suffices, and the table entry,
   with k = floor(n/N) + 64 added to its exponent bits, is the scale 2**(n/N + 64). The
   polynomial (coefficients times 2**-64) times that scale rounds once, subnormals included,
   as below. At the clamp (-140, and -inf) k + 64 is below -127 and the scale is +0: an exact
   0 without an underflowing multiply, as below. */
static inline vf vf_exp_nonpos(vf d)
{
    const float n_per_ln2 = (float)FX_EXP_TABLE * 0x1.715476p+0f;
    const vf magic = vf_set1(12582912.0f + 64.0f * FX_EXP_TABLE);
    const vf x = vf_max(vf_set1(-140.0f), d);
    const vf biased = vf_fmadd(x, vf_set1(n_per_ln2), magic);
    const vf n = vf_sub(biased, magic);
    vf r = vf_fmadd(n, vf_set1(-0.693359375f / FX_EXP_TABLE), x);
    vf p;
    r = vf_fmadd(n, vf_set1(2.12194440e-4f / FX_EXP_TABLE), r);
    /* minimax on [-ln2/(2N), ln2/(2N)] (relative error 1.1e-9 for N = 16, 1.8e-8 for 8) */
    p = vf_set1((FX_EXP_TABLE >= 16 ? 0x1.555348p-3f : 0x1.554d22p-3f) * 0x1p-64f);
    p = vf_fmadd(p, r, vf_set1((FX_EXP_TABLE >= 16 ? 0x1.000290p-1f : 0x1.000a40p-1f) * 0x1p-64f));
    p = vf_fmadd(p, r, vf_set1(0x1p-64f));
    p = vf_fmadd(p, r, vf_set1(0x1p-64f));
    return vf_mul(p, vf_exp_table(biased));
}
#else
static inline vf vf_exp_nonpos(vf d)
{
    /* 1.5 * 2**23 makes the add round to an integer; 191 = 127 + 64 is the exponent bias
       of 2**(n + 64). At the clamp, n = -191 and 2**(n + 64) is +0: -inf (and anything
       below -104, whose exp rounds to 0) gives an exact 0 without an underflowing
       multiply, which would cost a microcode assist on x86. max keeps a NaN d. */
    const vf magic = vf_set1(12582912.0f + 191.0f);
    const vf x = vf_max(vf_set1(-132.5f), d);
    const vf biased = vf_fmadd(x, vf_set1(0x1.715476p+0f), magic);
    const vf n = vf_sub(biased, magic);
    /* ln2 = 0.693359375 - 2.12194440e-4: the high part has 9 bits, so n * hi is exact
       even where fmadd is a multiply and an add (SSE2) */
    vf r = vf_fmadd(n, vf_set1(-0.693359375f), x);
    vf p;
    r = vf_fmadd(n, vf_set1(2.12194440e-4f), r);
    /* XNNPACK's published degree-5 minimax coefficients for exp on [-ln2/2, ln2/2], times 2**-64 */
    p = vf_set1(0x1.0F9F9Cp-71f);
    p = vf_fmadd(p, r, vf_set1(0x1.573A1Ap-69f));
    p = vf_fmadd(p, r, vf_set1(0x1.555A80p-67f));
    p = vf_fmadd(p, r, vf_set1(0x1.FFFDC6p-66f));
    p = vf_fmadd(p, r, vf_set1(0x1.FFFFF6p-65f));
    p = vf_fmadd(p, r, vf_set1(0x1p-64f));
    return vf_mul(p, vf_exponent_bits(biased));
}
#endif

static inline vd vd_exp_nonpos(vd d)
{
    /* 1.5 * 2**52, plus the bias 1023 + 64; at the clamp n = -1087 and 2**(n + 64) is +0 */
    const vd magic = vd_set1(6755399441055744.0 + 1087.0);
    const vd x = vd_max(vd_set1(-753.5), d);
    const vd biased = vd_fmadd(x, vd_set1(1.4426950408889634074), magic);
    const vd n = vd_sub(biased, magic);
    vd r = vd_fmadd(n, vd_set1(-6.93147180369123816490e-01), x);   /* fdlibm's ln2 hi/lo */
    vd p;
    r = vd_fmadd(n, vd_set1(-1.90821492927058770002e-10), r);
    /* degree-11 Chebyshev interpolant of exp on [-ln2/2, ln2/2], computed in 50-digit
       arithmetic and rounded (0.15 ulp from exp before rounding), times 2**-64 */
    p = vd_set1(2.5110037605963777e-08 * 0x1p-64);
    p = vd_fmadd(p, r, vd_set1(2.763263963904103e-07 * 0x1p-64));
    p = vd_fmadd(p, r, vd_set1(2.755724091857897e-06 * 0x1p-64));
    p = vd_fmadd(p, r, vd_set1(2.4801485482328494e-05 * 0x1p-64));
    p = vd_fmadd(p, r, vd_set1(0.00019841269890047113 * 0x1p-64));
    p = vd_fmadd(p, r, vd_set1(0.0013888888952314775 * 0x1p-64));
    p = vd_fmadd(p, r, vd_set1(0.008333333333319601 * 0x1p-64));
    p = vd_fmadd(p, r, vd_set1(0.0416666666664881 * 0x1p-64));
    p = vd_fmadd(p, r, vd_set1(0.1666666666666668 * 0x1p-64));
    p = vd_fmadd(p, r, vd_set1(0.5000000000000019 * 0x1p-64));
    p = vd_fmadd(p, r, vd_set1(0x1p-64));
    p = vd_fmadd(p, r, vd_set1(0x1p-64));
    return vd_mul(p, vd_exponent_bits(biased));
}

/* fdlibm's arrangement: with f = m - 1 (exact) and s = f / (2 + f),
   log(m) = f - hfsq + s (hfsq + R(s^2)), hfsq = f^2 / 2, R(z) = 2z/3 + 2z^2/5 + ...;
   the exact f leads and only the small terms carry rounding errors. */
static inline vf vf_log1p_nonneg(vf r)
{
    const vf one = vf_set1(1.0f), half = vf_set1(0.5f);
    const vf u = vf_add(one, r);
    /* exact division: the correction is below one ulp of u but, for a tiny r, most of
       the result */
    const vf correction = vf_div(vf_sub(r, vf_sub(u, one)), u);
    vf e, f, s, z, hfsq, q, low;
    f = vf_sub(vf_frexp(u, &e), one);
    s = vf_div(f, vf_add(vf_set1(2.0f), f));
    z = vf_mul(s, s);
    hfsq = vf_mul(vf_mul(half, f), f);
    q = vf_set1(2.0f / 11.0f);
    q = vf_fmadd(q, z, vf_set1(2.0f / 9.0f));
    q = vf_fmadd(q, z, vf_set1(2.0f / 7.0f));
    q = vf_fmadd(q, z, vf_set1(2.0f / 5.0f));
    q = vf_fmadd(q, z, vf_set1(2.0f / 3.0f));
    /* ln2 = 0.693359375 - 2.12194440e-4, the high part exact in e * hi */
    low = vf_fmadd(e, vf_set1(-2.12194440e-4f), correction);
    low = vf_fmadd(s, vf_fmadd(q, z, hfsq), low);
    low = vf_add(vf_sub(f, hfsq), low);
    /* NaN and +inf are their own log1p */
    return vf_select(mf_or(vf_neq(u, u), vf_eq(u, vf_set1(INFINITY))), u,
                     vf_fmadd(e, vf_set1(0.693359375f), low));
}

static inline vd vd_log1p_nonneg(vd r)
{
    const vd one = vd_set1(1.0), half = vd_set1(0.5);
    const vd u = vd_add(one, r);
    const vd correction = vd_div(vd_sub(r, vd_sub(u, one)), u);
    vd e, f, s, z, hfsq, q, low;
    f = vd_sub(vd_frexp(u, &e), one);
    s = vd_div(f, vd_add(vd_set1(2.0), f));
    z = vd_mul(s, s);
    hfsq = vd_mul(vd_mul(half, f), f);
    {
        /* q = sum_k 2/(2k+3) z^k, k < 12, by Estrin's scheme: a short dependency chain,
           since the rows-in-lanes kernels wait on it once per block */
        const vd z2 = vd_mul(z, z), z4 = vd_mul(z2, z2), z8 = vd_mul(z4, z4);
        const vd q01 = vd_fmadd(vd_set1(2.0 / 5.0), z, vd_set1(2.0 / 3.0));
        const vd q23 = vd_fmadd(vd_set1(2.0 / 9.0), z, vd_set1(2.0 / 7.0));
        const vd q45 = vd_fmadd(vd_set1(2.0 / 13.0), z, vd_set1(2.0 / 11.0));
        const vd q67 = vd_fmadd(vd_set1(2.0 / 17.0), z, vd_set1(2.0 / 15.0));
        const vd q89 = vd_fmadd(vd_set1(2.0 / 21.0), z, vd_set1(2.0 / 19.0));
        const vd qab = vd_fmadd(vd_set1(2.0 / 25.0), z, vd_set1(2.0 / 23.0));
        const vd q03 = vd_fmadd(q23, z2, q01), q47 = vd_fmadd(q67, z2, q45);
        const vd q8b = vd_fmadd(qab, z2, q89);
        q = vd_fmadd(q8b, z8, vd_fmadd(q47, z4, q03));
    }
    /* fdlibm's ln2 hi/lo: e * hi is exact */
    low = vd_fmadd(e, vd_set1(1.90821492927058770002e-10), correction);
    low = vd_fmadd(s, vd_fmadd(q, z, hfsq), low);
    low = vd_add(vd_sub(f, hfsq), low);
    return vd_select(md_or(vd_neq(u, u), vd_eq(u, vd_set1(INFINITY))), u,
                     vd_fmadd(e, vd_set1(6.93147180369123816490e-01), low));
}

#endif /* FX_MATH_H */
