/* fx_simd.h's operations for AArch64 Advanced SIMD (NEON, part of every ARMv8-A CPU):
 * 4 floats, 2 doubles, masks as all-ones lanes, fused multiply-add. */
#include <arm_neon.h>

#define VF_LANES 4
#define VD_LANES 2

/* The planner's crossovers are fx_simd.h's defaults: not measured on an ARM CPU (this
   path is tested under emulation only), so the x86 paths' values. */
typedef float32x4_t vf;
typedef float64x2_t vd;
typedef uint32x4_t mf;
typedef uint64x2_t md;
typedef uint32x4_t cf;
typedef uint64x2_t cd;

static inline vf vf_load(const float *p) { return vld1q_f32(p); }
static inline vd vd_load(const double *p) { return vld1q_f64(p); }
static inline void vf_store(float *p, vf v) { vst1q_f32(p, v); }
static inline void vd_store(double *p, vd v) { vst1q_f64(p, v); }
/* lane by lane: NEON has no masked loads */
static inline vf vf_load_part(const float *p, ptrdiff_t n, float pad)
{
    vf v = vdupq_n_f32(pad);
    if (n > 0)
        v = vld1q_lane_f32(p, v, 0);
    if (n > 1)
        v = vld1q_lane_f32(p + 1, v, 1);
    if (n > 2)
        v = vld1q_lane_f32(p + 2, v, 2);
    if (n > 3)
        v = vld1q_lane_f32(p + 3, v, 3);
    return v;
}
static inline vd vd_load_part(const double *p, ptrdiff_t n, double pad)
{
    vd v = vdupq_n_f64(pad);
    if (n > 0)
        v = vld1q_lane_f64(p, v, 0);
    if (n > 1)
        v = vld1q_lane_f64(p + 1, v, 1);
    return v;
}
static inline void vf_store_part(float *p, ptrdiff_t n, vf v)
{
    if (n > 0)
        vst1q_lane_f32(p, v, 0);
    if (n > 1)
        vst1q_lane_f32(p + 1, v, 1);
    if (n > 2)
        vst1q_lane_f32(p + 2, v, 2);
    if (n > 3)
        vst1q_lane_f32(p + 3, v, 3);
}
static inline void vd_store_part(double *p, ptrdiff_t n, vd v)
{
    if (n > 0)
        vst1q_lane_f64(p, v, 0);
    if (n > 1)
        vst1q_lane_f64(p + 1, v, 1);
}
static inline vf vf_set1(float x) { return vdupq_n_f32(x); }
static inline vd vd_set1(double x) { return vdupq_n_f64(x); }
static inline vf vf_add(vf a, vf b) { return vaddq_f32(a, b); }
static inline vd vd_add(vd a, vd b) { return vaddq_f64(a, b); }
static inline vf vf_sub(vf a, vf b) { return vsubq_f32(a, b); }
static inline vd vd_sub(vd a, vd b) { return vsubq_f64(a, b); }
static inline vf vf_mul(vf a, vf b) { return vmulq_f32(a, b); }
static inline vd vd_mul(vd a, vd b) { return vmulq_f64(a, b); }
static inline vf vf_div(vf a, vf b) { return vdivq_f32(a, b); }
static inline vd vd_div(vd a, vd b) { return vdivq_f64(a, b); }
static inline vf vf_fmadd(vf a, vf b, vf c) { return vfmaq_f32(c, a, b); }
static inline vd vd_fmadd(vd a, vd b, vd c) { return vfmaq_f64(c, a, b); }
/* FMAX: NaN when either is NaN */
static inline vf vf_max(vf a, vf b) { return vmaxq_f32(a, b); }
static inline vd vd_max(vd a, vd b) { return vmaxq_f64(a, b); }
static inline mf vf_eq(vf a, vf b) { return vceqq_f32(a, b); }
static inline md vd_eq(vd a, vd b) { return vceqq_f64(a, b); }
static inline mf vf_lt(vf a, vf b) { return vcltq_f32(a, b); }
static inline md vd_lt(vd a, vd b) { return vcltq_f64(a, b); }
static inline mf vf_neq(vf a, vf b) { return vmvnq_u32(vceqq_f32(a, b)); }
static inline md vd_neq(vd a, vd b)
{
    return vreinterpretq_u64_u32(vmvnq_u32(vreinterpretq_u32_u64(vceqq_f64(a, b))));
}
static inline mf mf_and(mf a, mf b) { return vandq_u32(a, b); }
static inline md md_and(md a, md b) { return vandq_u64(a, b); }
static inline mf mf_or(mf a, mf b) { return vorrq_u32(a, b); }
static inline md md_or(md a, md b) { return vorrq_u64(a, b); }
static inline mf mf_first(ptrdiff_t n)
{
    static const uint32_t iota[4] = {0, 1, 2, 3};
    return vcltq_u32(vld1q_u32(iota), vdupq_n_u32((uint32_t)n));
}
static inline md md_first(ptrdiff_t n)
{
    static const uint64_t iota[2] = {0, 1};
    return vcltq_u64(vld1q_u64(iota), vdupq_n_u64((uint64_t)n));
}
static inline vf vf_select(mf m, vf a, vf b) { return vbslq_f32(m, a, b); }
static inline vd vd_select(md m, vd a, vd b) { return vbslq_f64(m, a, b); }
static inline vf vf_keep(mf m, vf a) { return vreinterpretq_f32_u32(vandq_u32(m, vreinterpretq_u32_f32(a))); }
static inline vd vd_keep(md m, vd a) { return vreinterpretq_f64_u64(vandq_u64(m, vreinterpretq_u64_f64(a))); }
static inline vf vf_add_if(mf m, vf acc, vf v) { return vaddq_f32(acc, vf_keep(m, v)); }
static inline vd vd_add_if(md m, vd acc, vd v) { return vaddq_f64(acc, vd_keep(m, v)); }
/* a true lane is all ones: subtracting it adds one */
static inline cf cf_zero(void) { return vdupq_n_u32(0); }
static inline cd cd_zero(void) { return vdupq_n_u64(0); }
static inline cf cf_add(cf c, mf m) { return vsubq_u32(c, m); }
static inline cd cd_add(cd c, md m) { return vsubq_u64(c, m); }
static inline ptrdiff_t cf_total(cf c) { return (ptrdiff_t)vaddvq_u32(c); }
static inline ptrdiff_t cd_total(cd c) { return (ptrdiff_t)vaddvq_u64(c); }
static inline vf vf_exponent_bits(vf a)
{
    return vreinterpretq_f32_u32(vshlq_n_u32(vreinterpretq_u32_f32(a), 23));
}
static inline vd vd_exponent_bits(vd a)
{
    return vreinterpretq_f64_u64(vshlq_n_u64(vreinterpretq_u64_f64(a), 52));
}
static inline vf vf_frexp(vf u, vf *e)
{
    uint32x4_t b = vreinterpretq_u32_f32(u);
    uint32x4_t k = vshrq_n_u32(vsubq_u32(b, vdupq_n_u32(0x3f400000u)), 23);
    *e = vcvtq_f32_u32(k);
    return vreinterpretq_f32_u32(vsubq_u32(b, vshlq_n_u32(k, 23)));
}
static inline vd vd_frexp(vd u, vd *e)
{
    uint64x2_t b = vreinterpretq_u64_f64(u);
    uint64x2_t k = vshrq_n_u64(vsubq_u64(b, vdupq_n_u64(0x3fe8000000000000u)), 52);
    *e = vcvtq_f64_u64(k);
    return vreinterpretq_f64_u64(vsubq_u64(b, vshlq_n_u64(k, 52)));
}
static inline float vf_hmax(vf a) { return vmaxvq_f32(a); }
static inline double vd_hmax(vd a) { return vmaxvq_f64(a); }
static inline double vf_hsum_d(vf a)
{
    return vaddvq_f64(vaddq_f64(vcvt_f64_f32(vget_low_f32(a)), vcvt_high_f64_f32(a)));
}
static inline double vd_hsum_d(vd a) { return vaddvq_f64(a); }
static inline vd vd_add_f(vd acc, vf a)
{
    return vaddq_f64(acc, vaddq_f64(vcvt_f64_f32(vget_low_f32(a)), vcvt_high_f64_f32(a)));
}
static FX_ALWAYS_INLINE void vf_transpose(vf r[4])
{
    float64x2_t t0 = vreinterpretq_f64_f32(vtrn1q_f32(r[0], r[1]));
    float64x2_t t1 = vreinterpretq_f64_f32(vtrn2q_f32(r[0], r[1]));
    float64x2_t t2 = vreinterpretq_f64_f32(vtrn1q_f32(r[2], r[3]));
    float64x2_t t3 = vreinterpretq_f64_f32(vtrn2q_f32(r[2], r[3]));
    r[0] = vreinterpretq_f32_f64(vtrn1q_f64(t0, t2));
    r[1] = vreinterpretq_f32_f64(vtrn1q_f64(t1, t3));
    r[2] = vreinterpretq_f32_f64(vtrn2q_f64(t0, t2));
    r[3] = vreinterpretq_f32_f64(vtrn2q_f64(t1, t3));
}
static FX_ALWAYS_INLINE void vd_transpose(vd r[2])
{
    vd t = vtrn1q_f64(r[0], r[1]);
    r[1] = vtrn2q_f64(r[0], r[1]);
    r[0] = t;
}

/* pairs: lane i of *c0 and *c1 = the pair i of a's and b's lanes together (rows of two) */
static inline void vf_deinterleave(vf a, vf b, vf *c0, vf *c1)
{
    *c0 = vuzp1q_f32(a, b);
    *c1 = vuzp2q_f32(a, b);
}
static inline void vd_deinterleave(vd a, vd b, vd *c0, vd *c1)
{
    *c0 = vuzp1q_f64(a, b);
    *c1 = vuzp2q_f64(a, b);
}
static inline void vf_interleave(vf c0, vf c1, vf *a, vf *b)
{
    *a = vzip1q_f32(c0, c1);
    *b = vzip2q_f32(c0, c1);
}
static inline void vd_interleave(vd c0, vd c1, vd *a, vd *b)
{
    *a = vzip1q_f64(c0, c1);
    *b = vzip2q_f64(c0, c1);
}

/* float16 (FCVTL/FCVTN: every AArch64 CPU) and bfloat16 (a shift into the float's high
   half) storage, converted in registers; partial accesses lane by lane. */
#define FX_HALF_VECTORS 1
static inline uint16x4_t fx_bits_part(const uint16_t *p, ptrdiff_t n)
{
    uint16x4_t h = vdup_n_u16(0);
    if (n > 0)
        h = vld1_lane_u16(p, h, 0);
    if (n > 1)
        h = vld1_lane_u16(p + 1, h, 1);
    if (n > 2)
        h = vld1_lane_u16(p + 2, h, 2);
    if (n > 3)
        h = vld1_lane_u16(p + 3, h, 3);
    return h;
}
static inline void fx_bits_store_part(uint16_t *p, ptrdiff_t n, uint16x4_t h)
{
    if (n > 0)
        vst1_lane_u16(p, h, 0);
    if (n > 1)
        vst1_lane_u16(p + 1, h, 1);
    if (n > 2)
        vst1_lane_u16(p + 2, h, 2);
    if (n > 3)
        vst1_lane_u16(p + 3, h, 3);
}
static inline vf fx_from_f16_bits(uint16x4_t h) { return vcvt_f32_f16(vreinterpret_f16_u16(h)); }
static inline uint16x4_t fx_to_f16_bits(vf v) { return vreinterpret_u16_f16(vcvt_f16_f32(v)); }
static inline vf vf_load_f16(const uint16_t *p) { return fx_from_f16_bits(vld1_u16(p)); }
static inline vf vf_load_part_f16(const uint16_t *p, ptrdiff_t n, float pad)
{
    return vbslq_f32(mf_first(n), fx_from_f16_bits(fx_bits_part(p, n)), vdupq_n_f32(pad));
}
static inline void vf_store_f16(uint16_t *p, vf v) { vst1_u16(p, fx_to_f16_bits(v)); }
static inline void vf_store_part_f16(uint16_t *p, ptrdiff_t n, vf v) { fx_bits_store_part(p, n, fx_to_f16_bits(v)); }
static inline vf fx_from_bf16_bits(uint16x4_t h) { return vreinterpretq_f32_u32(vshll_n_u16(h, 16)); }
/* round to nearest even; a NaN is made quiet (fx_half.h's fx_float_to_bfloat16) */
static inline uint16x4_t fx_to_bf16_bits(vf v)
{
    const uint32x4_t b = vreinterpretq_u32_f32(v);
    const uint32x4_t odd = vandq_u32(vshrq_n_u32(b, 16), vdupq_n_u32(1));
    const uint32x4_t rounded = vaddq_u32(b, vaddq_u32(odd, vdupq_n_u32(0x7fff)));
    const uint32x4_t quiet = vorrq_u32(b, vdupq_n_u32(0x400000));
    return vshrn_n_u32(vbslq_u32(vceqq_f32(v, v), rounded, quiet), 16);
}
static inline vf vf_load_bf16(const uint16_t *p) { return fx_from_bf16_bits(vld1_u16(p)); }
static inline vf vf_load_part_bf16(const uint16_t *p, ptrdiff_t n, float pad)
{
    return vbslq_f32(mf_first(n), fx_from_bf16_bits(fx_bits_part(p, n)), vdupq_n_f32(pad));
}
static inline void vf_store_bf16(uint16_t *p, vf v) { vst1_u16(p, fx_to_bf16_bits(v)); }
static inline void vf_store_part_bf16(uint16_t *p, ptrdiff_t n, vf v) { fx_bits_store_part(p, n, fx_to_bf16_bits(v)); }
