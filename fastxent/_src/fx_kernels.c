/* The CPU kernels, compiled by setup.py once per entry of fx_isa_list.h with
 * -DFX_ISA=<name> and that entry's flags: the table fx_kernels_<name>.
 * No -ffast-math anywhere: NaN and infinities must behave as IEEE says.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fx_kernels.h"
#include "fx_math.h"
#include "fx_simd.h"

/* Rows in lanes take up to four vectors' width of classes: beyond that the row kernels,
   whose cost per row is mostly fixed, catch up (measured on AVX-512, AVX2 and SSE2). */
#define FX_BLOCK_COLS_F32 (4 * VF_LANES)
#define FX_BLOCK_COLS_F64 (4 * VD_LANES)

#define T float
#define V vf
#define M mf
#define CNT cf
#define VL VF_LANES
#define VOP(op) vf_##op
#define MOP(op) mf_##op
#define COP(op) cf_##op
#define SFX(name) name##_f32
#define CHUNK FX_CHUNK_F32
#define FX_BLOCK_COLS FX_BLOCK_COLS_F32
#define ADD_WIDE(acc, v) vd_add_f(acc, v)
#include "fx_kernels_impl.h"
#undef T
#undef V
#undef M
#undef CNT
#undef VL
#undef VOP
#undef MOP
#undef COP
#undef SFX
#undef CHUNK
#undef FX_BLOCK_COLS
#undef ADD_WIDE

#define T double
#define V vd
#define M md
#define CNT cd
#define VL VD_LANES
#define VOP(op) vd_##op
#define MOP(op) md_##op
#define COP(op) cd_##op
#define SFX(name) name##_f64
#define CHUNK FX_CHUNK_F64
#define FX_BLOCK_COLS FX_BLOCK_COLS_F64
#define ADD_WIDE(acc, v) vd_add(acc, v)
#include "fx_kernels_impl.h"

const fx_kernels FX_CAT(fx_kernels_, FX_ISA) = {
    FX_PATH,
    VF_LANES, VD_LANES,
    FX_BLOCK_COLS_F32, FX_BLOCK_COLS_F64,
    sparse_row_f32, sparse_row_f64,
    dense_row_f32, dense_row_f64,
    part_f32, part_f64,
    grad_finish_f32, grad_finish_f64,
    sparse_grad_part_f32, sparse_grad_part_f64,
    dense_sums_part_f32, dense_sums_part_f64,
    dense_grad_part_f32, dense_grad_part_f64,
    sparse_block_f32, sparse_block_f64,
    dense_block_f32, dense_block_f64,
    exp_array_f32, exp_array_f64,
    log1p_array_f32, log1p_array_f64,
};
