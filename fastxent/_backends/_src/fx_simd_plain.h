/* fx_simd.h's operations in portable C: one lane, masks as 0/1. Builds on any machine; on
 * x86-64 it is tested beside the vector paths, so that other machines get tested code. */

#define VF_LANES 1
#define VD_LANES 1

/* The planner's crossovers are fx_simd.h's defaults (rows in lanes of one lane take up to
   four classes). */
typedef float vf;
typedef double vd;
typedef int mf;
typedef int md;
typedef ptrdiff_t cf;
typedef ptrdiff_t cd;

static inline vf vf_load(const float *p) { return *p; }
static inline vd vd_load(const double *p) { return *p; }
static inline void vf_store(float *p, vf v) { *p = v; }
static inline void vd_store(double *p, vd v) { *p = v; }
static inline vf vf_load_part(const float *p, ptrdiff_t n, float pad) { return n > 0 ? *p : pad; }
static inline vd vd_load_part(const double *p, ptrdiff_t n, double pad) { return n > 0 ? *p : pad; }
static inline void vf_store_part(float *p, ptrdiff_t n, vf v) { if (n > 0) *p = v; }
static inline void vd_store_part(double *p, ptrdiff_t n, vd v) { if (n > 0) *p = v; }
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
static inline mf vf_lt(vf a, vf b) { return a < b; }
static inline md vd_lt(vd a, vd b) { return a < b; }
static inline mf vf_neq(vf a, vf b) { return a != b; }
static inline md vd_neq(vd a, vd b) { return a != b; }
static inline mf mf_and(mf a, mf b) { return a & b; }
static inline md md_and(md a, md b) { return a & b; }
static inline mf mf_or(mf a, mf b) { return a | b; }
static inline md md_or(md a, md b) { return a | b; }
static inline mf mf_first(ptrdiff_t n) { return n > 0; }
static inline md md_first(ptrdiff_t n) { return n > 0; }
static inline vf vf_select(mf m, vf a, vf b) { return m ? a : b; }
static inline vd vd_select(md m, vd a, vd b) { return m ? a : b; }
static inline vf vf_keep(mf m, vf a) { return m ? a : 0.0f; }
static inline vd vd_keep(md m, vd a) { return m ? a : 0.0; }
static inline vf vf_add_if(mf m, vf acc, vf v) { return m ? acc + v : acc; }
static inline vd vd_add_if(md m, vd acc, vd v) { return m ? acc + v : acc; }
static inline cf cf_zero(void) { return 0; }
static inline cd cd_zero(void) { return 0; }
static inline cf cf_add(cf c, mf m) { return c + (m != 0); }
static inline cd cd_add(cd c, md m) { return c + (m != 0); }
static inline ptrdiff_t cf_total(cf c) { return c; }
static inline ptrdiff_t cd_total(cd c) { return c; }
static inline vf vf_exponent_bits(vf a)
{
    uint32_t b;
    memcpy(&b, &a, sizeof b);
    b <<= 23;
    memcpy(&a, &b, sizeof b);
    return a;
}
static inline vd vd_exponent_bits(vd a)
{
    uint64_t b;
    memcpy(&b, &a, sizeof b);
    b <<= 52;
    memcpy(&a, &b, sizeof b);
    return a;
}
static inline vf vf_frexp(vf u, vf *e)
{
    uint32_t b, k;
    memcpy(&b, &u, sizeof b);
    k = (b - 0x3f400000u) >> 23;
    *e = (float)k;
    b -= k << 23;
    memcpy(&u, &b, sizeof b);
    return u;
}
static inline vd vd_frexp(vd u, vd *e)
{
    uint64_t b, k;
    memcpy(&b, &u, sizeof b);
    k = (b - 0x3fe8000000000000u) >> 52;
    *e = (double)k;
    b -= k << 52;
    memcpy(&u, &b, sizeof b);
    return u;
}
static inline float vf_hmax(vf a) { return a; }
static inline double vd_hmax(vd a) { return a; }
static inline double vf_hsum_d(vf a) { return a; }
static inline double vd_hsum_d(vd a) { return a; }
static inline vd vd_add_f(vd acc, vf a) { return acc + (double)a; }
static FX_ALWAYS_INLINE void vf_transpose(vf *r) { (void)r; }
static FX_ALWAYS_INLINE void vd_transpose(vd *r) { (void)r; }

/* pairs (one lane: a is the row's first entry, b its second) */
static inline void vf_deinterleave(vf a, vf b, vf *c0, vf *c1) { *c0 = a; *c1 = b; }
static inline void vd_deinterleave(vd a, vd b, vd *c0, vd *c1) { *c0 = a; *c1 = b; }
static inline void vf_interleave(vf c0, vf c1, vf *a, vf *b) { *a = c0; *b = c1; }
static inline void vd_interleave(vd c0, vd c1, vd *a, vd *b) { *a = c0; *b = c1; }
