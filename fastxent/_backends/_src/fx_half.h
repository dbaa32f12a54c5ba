/* IEEE binary16 <-> binary32 conversions, portable C (no F16C needed).
 *
 * float -> half rounds to nearest, ties to even, as NumPy's astype does;
 * NaN stays NaN (quiet), infinities and signed zeros are kept.
 */
#ifndef FX_HALF_H
#define FX_HALF_H

#include <stdint.h>
#include <string.h>

static inline float fx_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    uint32_t bits;
    float f;

    if (exponent == 0x1fu) {                 /* inf or NaN */
        bits = sign | 0x7f800000u | (mantissa << 13);
    } else if (exponent != 0) {              /* normal: rebias 15 -> 127 */
        bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    } else if (mantissa == 0) {              /* signed zero */
        bits = sign;
    } else {                                 /* subnormal: mantissa * 2**-24, exact */
        f = (float)mantissa * 5.9604644775390625e-08f;
        return sign ? -f : f;
    }
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline uint16_t fx_float_to_half(float f)
{
    uint32_t bits, magnitude;
    uint16_t sign;

    memcpy(&bits, &f, sizeof bits);
    sign = (uint16_t)((bits >> 16) & 0x8000u);
    magnitude = bits & 0x7fffffffu;

    if (magnitude >= 0x7f800000u)            /* inf, or NaN made quiet */
        return sign | (magnitude > 0x7f800000u ? 0x7e00u : 0x7c00u);
    if (magnitude >= 0x477ff000u)            /* >= 65520 rounds to inf */
        return sign | 0x7c00u;
    if (magnitude >= 0x38800000u) {          /* normal half: >= 2**-14 */
        uint32_t odd = (magnitude >> 13) & 1u;
        magnitude += 0xfffu + odd - 0x38000000u;   /* round half even, rebias */
        return sign | (uint16_t)(magnitude >> 13);
    }
    {
        /* Subnormal half (or zero): count units of 2**-24. Adding and
           subtracting 2**23 rounds to an integer, half to even; a result of
           1024 is the smallest normal half, which is the right encoding. */
        volatile float units;
        float a;
        memcpy(&a, &magnitude, sizeof a);
        units = a * 16777216.0f + 8388608.0f;
        units = units - 8388608.0f;
        return sign | (uint16_t)units;
    }
}

/* bfloat16 (ml_dtypes.bfloat16: the top 16 bits of a binary32) <-> binary32. */
static inline float fx_bfloat16_to_float(uint16_t h)
{
    const uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static inline uint16_t fx_float_to_bfloat16(float f)
{
    uint32_t bits;
    memcpy(&bits, &f, sizeof bits);
    if ((bits & 0x7fffffffu) > 0x7f800000u)   /* NaN, made quiet */
        return (uint16_t)((bits >> 16) | 0x0040u);
    bits += 0x7fffu + ((bits >> 16) & 1u);    /* round half to even; overflow gives inf */
    return (uint16_t)(bits >> 16);
}

#endif /* FX_HALF_H */
