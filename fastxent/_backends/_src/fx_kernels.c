/* The CPU kernels, compiled by setup.py once per entry of fx_isa_list.h with
 * -DFX_ISA=<name> and that entry's flags: the table fx_kernels_<name>, with every kernel
 * family for every storage kind (fx_kernels_impl.h, included once per kind).
 * No -ffast-math anywhere: NaN and infinities must behave as IEEE says.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fx_half.h"
#include "fx_kernels.h"
#include "fx_math.h"
#include "fx_simd.h"

/* The stack arrays of rows in lanes: up to four vectors' width of classes. Which family
   runs where is the table's lanes_cols and batch_cols (FX_LANES_COLS_*, FX_BATCH_COLS_*:
   fx_simd.h's defaults or the ISA header's measurements). */
#define FX_BLOCK_COLS_F32 (4 * VF_LANES)
#define FX_BLOCK_COLS_F64 (4 * VD_LANES)

/* the float kinds: float32, float16, bfloat16 */
#define T float
#define V vf
#define M mf
#define CNT cf
#define VL VF_LANES
#define VOP(op) vf_##op
#define MOP(op) mf_##op
#define COP(op) cf_##op
#define CHUNK FX_CHUNK_F32
#define FX_BLOCK_COLS FX_BLOCK_COLS_F32
#define ADD_WIDE(acc, v) vd_add_f(acc, v)

#define S float
#define SFX(name) name##_f32
#define SLOAD(p) vf_load(p)
#define SLOAD_PART(p, n, pad) vf_load_part(p, n, pad)
#define SSTORE(p, v) vf_store(p, v)
#define SSTORE_PART(p, n, v) vf_store_part(p, n, v)
#define S_TO_T(s) (s)
#define T_TO_S(t) (t)
#define EXPS_IN_PLACE 1
#include "fx_kernels_impl.h"
#undef S
#undef SFX
#undef SLOAD
#undef SLOAD_PART
#undef SSTORE
#undef SSTORE_PART
#undef S_TO_T
#undef T_TO_S
#undef EXPS_IN_PLACE

#define S uint16_t
#define SFX(name) name##_f16
#define SLOAD(p) vf_load_f16(p)
#define SLOAD_PART(p, n, pad) vf_load_part_f16(p, n, pad)
#define SSTORE(p, v) vf_store_f16(p, v)
#define SSTORE_PART(p, n, v) vf_store_part_f16(p, n, v)
#define S_TO_T(s) fx_f16_to_float(s)
#define T_TO_S(t) fx_float_to_f16(t)
#define EXPS_IN_PLACE 0
#include "fx_kernels_impl.h"
#undef SFX
#undef SLOAD
#undef SLOAD_PART
#undef SSTORE
#undef SSTORE_PART
#undef S_TO_T
#undef T_TO_S

#define SFX(name) name##_bf16
#define SLOAD(p) vf_load_bf16(p)
#define SLOAD_PART(p, n, pad) vf_load_part_bf16(p, n, pad)
#define SSTORE(p, v) vf_store_bf16(p, v)
#define SSTORE_PART(p, n, v) vf_store_part_bf16(p, n, v)
#define S_TO_T(s) fx_bfloat16_to_float(s)
#define T_TO_S(t) fx_float_to_bfloat16(t)
#include "fx_kernels_impl.h"
#undef S
#undef SFX
#undef SLOAD
#undef SLOAD_PART
#undef SSTORE
#undef SSTORE_PART
#undef S_TO_T
#undef T_TO_S
#undef EXPS_IN_PLACE

#undef T
#undef V
#undef M
#undef CNT
#undef VL
#undef VOP
#undef MOP
#undef COP
#undef CHUNK
#undef FX_BLOCK_COLS
#undef ADD_WIDE

/* float64 */
#define T double
#define V vd
#define M md
#define CNT cd
#define VL VD_LANES
#define VOP(op) vd_##op
#define MOP(op) md_##op
#define COP(op) cd_##op
#define CHUNK FX_CHUNK_F64
#define FX_BLOCK_COLS FX_BLOCK_COLS_F64
#define ADD_WIDE(acc, v) vd_add(acc, v)
#define S double
#define SFX(name) name##_f64
#define SLOAD(p) vd_load(p)
#define SLOAD_PART(p, n, pad) vd_load_part(p, n, pad)
#define SSTORE(p, v) vd_store(p, v)
#define SSTORE_PART(p, n, v) vd_store_part(p, n, v)
#define S_TO_T(s) (s)
#define T_TO_S(t) (t)
#define EXPS_IN_PLACE 1
#include "fx_kernels_impl.h"

/* The vector exp and log1p over arrays, for the accuracy tests. */
#define FX_ARRAY_FUNCTION(NAME, T, V, VL, OP)                                               \
    static void NAME(const T *in, T *out, ptrdiff_t n)                                      \
    {                                                                                       \
        const ptrdiff_t full = n - n % VL;                                                  \
        ptrdiff_t j;                                                                        \
        for (j = 0; j < full; j += VL)                                                      \
            V##_store(out + j, OP(V##_load(in + j)));                                       \
        if (j < n)                                                                          \
            V##_store_part(out + j, n - j, OP(V##_load_part(in + j, n - j, 0)));            \
    }
FX_ARRAY_FUNCTION(exp_array_f32, float, vf, VF_LANES, vf_exp_nonpos)
FX_ARRAY_FUNCTION(exp_array_f64, double, vd, VD_LANES, vd_exp_nonpos)
FX_ARRAY_FUNCTION(log1p_array_f32, float, vf, VF_LANES, vf_log1p_nonneg)
FX_ARRAY_FUNCTION(log1p_array_f64, double, vd, VD_LANES, vd_log1p_nonneg)

/* every entry in fx_kind's order: float16, float32, float64, bfloat16 */
#define FX_BY_KIND(name) {name##_f16, name##_f32, name##_f64, name##_bf16}

const fx_kernels FX_CAT(fx_kernels_, FX_ISA) = {
    FX_PATH,
    {VF_LANES, VF_LANES, VD_LANES, VF_LANES},
    {FX_LANES_COLS_F16, FX_LANES_COLS_F32, FX_LANES_COLS_F64, FX_LANES_COLS_F16},
    {FX_LANES_GRAD_COLS_F16, FX_LANES_GRAD_COLS_F32, FX_LANES_GRAD_COLS_F64, FX_LANES_GRAD_COLS_F16},
    {FX_BATCH_COLS_F16, FX_BATCH_COLS_F32, FX_BATCH_COLS_F64, FX_BATCH_COLS_F16},
    {FX_BATCH_GRAD_COLS_F16, FX_BATCH_GRAD_COLS_F32, FX_BATCH_GRAD_COLS_F64,
     FX_BATCH_GRAD_COLS_F16},
    FX_DENSE_BATCH_COLS,
    FX_BY_KIND(sparse_row),
    FX_BY_KIND(dense_row),
    FX_BY_KIND(part),
    FX_BY_KIND(grad_finish),
    FX_BY_KIND(sparse_grad_part),
    FX_BY_KIND(dense_sums_part),
    FX_BY_KIND(dense_grad_part),
    FX_BY_KIND(sparse_lanes),
    FX_BY_KIND(sparse_lanes_partial),
    FX_BY_KIND(dense_lanes),
    FX_BY_KIND(dense_lanes_partial),
    FX_BY_KIND(sparse_batch),
    FX_BY_KIND(sparse_batch_partial),
    FX_BY_KIND(dense_batch),
    FX_BY_KIND(dense_batch_partial),
    FX_BY_KIND(put),
    exp_array_f32, exp_array_f64,
    log1p_array_f32, log1p_array_f64,
};
