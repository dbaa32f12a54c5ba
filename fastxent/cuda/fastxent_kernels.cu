// fastxent's CUDA kernels: fused softmax cross-entropy over the rows of 2-D arrays.
//
// Compiled at run time by CuPy (cupy.RawModule, NVRTC) with the name expressions
// listed in fastxent/_cuda.py, and by tests/test_cuda_compile.py with nvcc for
// sm_80 and sm_90. No header beyond what NVRTC has built in: float16 is handled
// as raw bits (unsigned short) with the same conversions as the CPU's fx_half.h.
//
// They mirror the CPU kernels (fastxent/_src/fx_kernels_impl.h):
//   * a row's normalizer is (m, r) with sum(exp(x - m)) = 1 + r, entries equal to
//     the max counted apart, so that loss = log1p(r) + (m - x_t) keeps the
//     precision of a confident row; partial normalizers combine with the one
//     log-sum-exp rule (fx_combine);
//   * a row whose max is not finite (NaN, +inf, all -inf) is a NaN row;
//   * a label outside [0, C) gives a NaN row, never an out-of-bounds read;
//   * float16 is computed in float32, float32 in float32 with sums in double,
//     float64 in float64;
//   * the gradient may be written over the logits (in place).
//
// Layout: row i of the logits starts at x + i * x_stride and is contiguous.
// TPR threads work on one row: 32 (a warp per row, for short rows) or the whole
// block (a block per row, for long rows).

#ifndef FX_CUDA_KERNELS
#define FX_CUDA_KERNELS

#define FX_INF __int_as_float(0x7f800000)

typedef long long fx_index;

// --- storage <-> compute --------------------------------------------------------------------

__device__ __forceinline__ float fx_half_to_float(unsigned short h)
{
    unsigned int sign = (unsigned int)(h & 0x8000u) << 16;
    unsigned int exponent = (h >> 10) & 0x1fu;
    unsigned int mantissa = h & 0x3ffu;
    if (exponent == 0x1fu)
        return __uint_as_float(sign | 0x7f800000u | (mantissa << 13));
    if (exponent != 0)
        return __uint_as_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
    float f = (float)mantissa * 5.9604644775390625e-08f;
    return sign ? -f : f;
}

__device__ __forceinline__ unsigned short fx_float_to_half(float f)
{
    unsigned int bits = __float_as_uint(f);
    unsigned short sign = (unsigned short)((bits >> 16) & 0x8000u);
    unsigned int magnitude = bits & 0x7fffffffu;
    if (magnitude >= 0x7f800000u)
        return sign | (magnitude > 0x7f800000u ? 0x7e00u : 0x7c00u);
    if (magnitude >= 0x477ff000u)
        return sign | 0x7c00u;
    if (magnitude >= 0x38800000u) {
        unsigned int odd = (magnitude >> 13) & 1u;
        magnitude += 0xfffu + odd - 0x38000000u;
        return sign | (unsigned short)(magnitude >> 13);
    }
    float units = __fadd_rn(__fmul_rn(__uint_as_float(magnitude), 16777216.0f), 8388608.0f);
    units = __fsub_rn(units, 8388608.0f);
    return sign | (unsigned short)units;
}

template <typename T> struct fx_compute { typedef T type; };
template <> struct fx_compute<unsigned short> { typedef float type; };

__device__ __forceinline__ float fx_load(const float *p) { return *p; }
__device__ __forceinline__ double fx_load(const double *p) { return *p; }
__device__ __forceinline__ float fx_load(const unsigned short *p) { return fx_half_to_float(*p); }

__device__ __forceinline__ void fx_store(float *p, double v) { *p = (float)v; }
__device__ __forceinline__ void fx_store(double *p, double v) { *p = v; }
__device__ __forceinline__ void fx_store(unsigned short *p, double v) { *p = fx_float_to_half((float)v); }

__device__ __forceinline__ float fx_exp(float v) { return expf(v); }
__device__ __forceinline__ double fx_exp(double v) { return exp(v); }

// --- the normalizer ---------------------------------------------------------------------------

struct fx_norm {
    double m;  // the max (as double; exact for float inputs)
    double r;  // sum(exp(x - m)) - 1; (-inf, -1) is the empty normalizer
};

// The log-sum-exp rule, as fx_combine in fastxent/_src/fx_kernels.h.
__device__ __forceinline__ fx_norm fx_combine(fx_norm a, fx_norm b)
{
    if (b.m == -FX_INF && b.r == -1.0)
        return a;
    if (a.m == -FX_INF && a.r == -1.0)
        return b;
    fx_norm out;
    if (b.m > a.m) {
        out.m = b.m;
        out.r = b.r + (1.0 + a.r) * exp(a.m - b.m);
    } else if (b.m == a.m) {
        out.m = a.m;
        out.r = a.r + 1.0 + b.r;
    } else {
        out.m = a.m;
        out.r = a.r + (1.0 + b.r) * exp(b.m - a.m);
    }
    return out;
}

// Add one entry to a thread's running normalizer.
template <typename A>
__device__ __forceinline__ void fx_add(fx_norm &s, A v)
{
    if (v == -FX_INF)
        return;  // contributes exp(-inf) = 0
    if ((double)v > s.m) {
        s.r = (1.0 + s.r) * exp(s.m - (double)v);  // the old terms, rescaled; v is the new 1
        s.m = (double)v;
    } else if ((double)v == s.m) {
        s.r += 1.0;
    } else {
        s.r += (double)fx_exp((A)((double)v - s.m));  // a NaN v lands here and poisons r
    }
}

// This thread's running normalizer over its entries of a row (every TPR-th, from lane).
template <typename T, int TPR>
__device__ __forceinline__ fx_norm fx_thread_normalizer(const T *row, fx_index cols, int lane)
{
    fx_norm s;
    s.m = -FX_INF;
    s.r = -1.0;
    for (fx_index j = lane; j < cols; j += TPR)
        fx_add<typename fx_compute<T>::type>(s, fx_load(row + j));
    return s;
}

// Combine the normalizers of the TPR threads of a row; every thread gets the result
// (a partial: an empty row stays empty). For TPR > 32, `shared` holds TPR / 32
// normalizers (per row: one row per block).
template <int TPR>
__device__ __forceinline__ fx_norm fx_row_combine(fx_norm s, fx_norm *shared)
{
    for (int offset = 16; offset > 0; offset >>= 1) {
        fx_norm o;
        o.m = __shfl_xor_sync(0xffffffffu, s.m, offset);
        o.r = __shfl_xor_sync(0xffffffffu, s.r, offset);
        s = fx_combine(s, o);
    }
    if (TPR > 32) {
        const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
        if (lane == 0)
            shared[warp] = s;
        __syncthreads();
        fx_norm total = shared[0];
        for (int w = 1; w < TPR / 32; ++w)
            total = fx_combine(total, shared[w]);
        __syncthreads();
        s = total;
    }
    return s;
}

// A whole row's normalizer: a row whose max is not finite is a NaN row.
template <int TPR>
__device__ __forceinline__ fx_norm fx_row_normalizer(fx_norm s, fx_norm *shared)
{
    s = fx_row_combine<TPR>(s, shared);
    if (!(s.m > -FX_INF && s.m < FX_INF))
        s.r = __longlong_as_double(0x7ff8000000000000LL);
    return s;
}

template <int TPR>
__device__ __forceinline__ double fx_row_sum(double v, double *shared)
{
    for (int offset = 16; offset > 0; offset >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, offset);
    if (TPR > 32) {
        const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
        if (lane == 0)
            shared[warp] = v;
        __syncthreads();
        double total = shared[0];
        for (int w = 1; w < TPR / 32; ++w)
            total += shared[w];
        __syncthreads();
        v = total;
    }
    return v;
}

// --- a row's gradient from its normalizer (shared by the fused and the split-axis kernels) -------

// g = scale * (exp(x - m) / (1 + r) - onehot(t)); a t outside [0, cols) adds no onehot.
template <typename T, int TPR>
__device__ __forceinline__ void fx_sparse_grad_row(const T *row, fx_index cols, int lane,
                                                   double m, double r, double xt, long long t,
                                                   double sc, T *g)
{
    typedef typename fx_compute<T>::type A;
    const A inv = (A)(sc / (1.0 + r));
    const A mc = (A)m;
    for (fx_index j = lane; j < cols; j += TPR) {
        double value = (double)(fx_exp((A)(fx_load(row + j) - mc)) * inv);
        if (j == t)  // p_t - 1, exact when the target is the max
            value = xt == m ? -sc * (r / (1.0 + r)) : sc * (exp(xt - m) / (1.0 + r) - 1.0);
        fx_store(g + j, value);
    }
}

// g = exp(x - m) * p_scale - y_scale * (a y + b)
template <typename T, int TPR>
__device__ __forceinline__ void fx_dense_grad_row(const T *row, const T *yrow, fx_index cols,
                                                  int lane, double m, double a, double b,
                                                  double p_scale, double y_scale, T *g)
{
    typedef typename fx_compute<T>::type A;
    const A mc = (A)m, ps = (A)p_scale, ys = (A)y_scale;
    for (fx_index j = lane; j < cols; j += TPR) {
        const A yj = (A)(a * (double)fx_load(yrow + j) + b);
        fx_store(g + j, (double)(fx_exp((A)(fx_load(row + j) - mc)) * ps - ys * yj));
    }
}

// --- the kernels ------------------------------------------------------------------------------

// Rows handled by one block: blockDim.x / TPR (TPR == 32) or 1 (TPR == blockDim.x).
template <int TPR>
__device__ __forceinline__ void fx_row_slot(fx_index &first, fx_index &step, int &lane)
{
    const int rows_per_block = blockDim.x / TPR;
    first = (fx_index)blockIdx.x * rows_per_block + threadIdx.x / TPR;
    step = (fx_index)gridDim.x * rows_per_block;
    lane = threadIdx.x % TPR;
}

// loss[i] = logsumexp(x_i) - x_i[t_i]; grad (if not null) = scale_i * (softmax(x_i) - onehot(t_i)).
template <typename T, int TPR>
__device__ void fx_sparse(const T *x, fx_index rows, fx_index cols, fx_index x_stride,
                          const long long *labels, const double *scale, fx_index scale_step,
                          T *loss, fx_index loss_stride, T *grad, fx_index grad_stride)
{
    __shared__ fx_norm shared[TPR > 32 ? TPR / 32 : 1];
    fx_index first, step;
    int lane;
    fx_row_slot<TPR>(first, step, lane);
    for (fx_index i = first; i < rows; i += step) {
        const T *row = x + i * x_stride;
        const long long t = labels[i];
        const bool valid = t >= 0 && t < cols;
        // read before any thread may overwrite the row with its gradient
        const double xt = valid ? (double)fx_load(row + t) : __longlong_as_double(0x7ff8000000000000LL);
        fx_norm s = fx_row_normalizer<TPR>(fx_thread_normalizer<T, TPR>(row, cols, lane), shared);
        if (!valid)
            s.r = __longlong_as_double(0x7ff8000000000000LL);
        if (lane == 0)
            fx_store(loss + i * loss_stride, log1p(s.r) + (s.m - xt));
        if (grad)
            fx_sparse_grad_row<T, TPR>(row, cols, lane, s.m, s.r, xt, t, scale[i * scale_step],
                                       grad + i * grad_stride);
        if (TPR > 32)
            __syncthreads();
    }
}

// Labels y' = a y + b. loss[i] = sum_j y'_j (lse - x_j), a term taken as 0 where y'_j == 0;
// grad = scale * (softmax * sum(y') - y'); labels_grad = scale * a * (lse - x).
template <typename T, int TPR>
__device__ void fx_dense(const T *x, fx_index rows, fx_index cols, fx_index x_stride,
                         const T *y, fx_index y_stride, double a, double b,
                         const double *scale, fx_index scale_step, T *loss, fx_index loss_stride,
                         T *grad, fx_index grad_stride, T *labels_grad, fx_index labels_grad_stride)
{
    __shared__ fx_norm shared[TPR > 32 ? TPR / 32 : 1];
    __shared__ double shared_sums[TPR > 32 ? TPR / 32 : 1];
    fx_index first, step;
    int lane;
    fx_row_slot<TPR>(first, step, lane);
    for (fx_index i = first; i < rows; i += step) {
        const T *row = x + i * x_stride;
        const T *yrow = y + i * y_stride;
        const fx_norm s = fx_row_normalizer<TPR>(fx_thread_normalizer<T, TPR>(row, cols, lane),
                                                 shared);
        const double log_s = log1p(s.r);
        const double sc = scale[i * scale_step];
        double sum_y = 0.0, sum_yx = 0.0;
        for (fx_index j = lane; j < cols; j += TPR) {
            const double xj = (double)fx_load(row + j);
            const double yj = a * (double)fx_load(yrow + j) + b;
            sum_y += yj;
            if (yj != 0.0)
                sum_yx += yj * (xj - s.m);
            if (labels_grad)
                fx_store(labels_grad + i * labels_grad_stride + j, sc * a * (log_s + (s.m - xj)));
        }
        sum_y = fx_row_sum<TPR>(sum_y, shared_sums);
        sum_yx = fx_row_sum<TPR>(sum_yx, shared_sums);
        if (lane == 0)
            fx_store(loss + i * loss_stride, sum_y * log_s - sum_yx);
        if (grad)
            fx_dense_grad_row<T, TPR>(row, yrow, cols, lane, s.m, a, b, sc * sum_y / (1.0 + s.r),
                                      sc, grad + i * grad_stride);
        if (TPR > 32)
            __syncthreads();
    }
}

// Entry points: a warp per row (launch with blockDim.x a multiple of 32) or a block
// per row (launch with blockDim.x == TPR).
template <typename T, int TPR>
__global__ void fx_sparse_rows(const T *x, fx_index rows, fx_index cols, fx_index x_stride,
                               const long long *labels, const double *scale,
                               fx_index scale_step, T *loss, fx_index loss_stride, T *grad,
                               fx_index grad_stride)
{
    fx_sparse<T, TPR>(x, rows, cols, x_stride, labels, scale, scale_step, loss, loss_stride,
                      grad, grad_stride);
}

template <typename T, int TPR>
__global__ void fx_dense_rows(const T *x, fx_index rows, fx_index cols, fx_index x_stride,
                              const T *y, fx_index y_stride, double a, double b,
                              const double *scale, fx_index scale_step, T *loss,
                              fx_index loss_stride, T *grad, fx_index grad_stride,
                              T *labels_grad, fx_index labels_grad_stride)
{
    fx_dense<T, TPR>(x, rows, cols, x_stride, y, y_stride, a, b, scale, scale_step, loss,
                     loss_stride, grad, grad_stride, labels_grad, labels_grad_stride);
}

// --- a class axis split across blocks (the Dask backend): the same steps, from given
// normalizers. Rows here hold one block of a row's classes; per-row arrays have one
// entry per row.

// The partial normalizer (m, r) of each row's block of classes.
template <typename T, int TPR>
__global__ void fx_row_partials(const T *x, fx_index rows, fx_index cols, fx_index x_stride,
                                double *m_out, double *r_out)
{
    __shared__ fx_norm shared[TPR > 32 ? TPR / 32 : 1];
    fx_index first, step;
    int lane;
    fx_row_slot<TPR>(first, step, lane);
    for (fx_index i = first; i < rows; i += step) {
        const T *row = x + i * x_stride;
        const fx_norm s = fx_row_combine<TPR>(fx_thread_normalizer<T, TPR>(row, cols, lane),
                                              shared);
        if (lane == 0) {
            m_out[i] = s.m;
            r_out[i] = s.r;
        }
        if (TPR > 32)
            __syncthreads();
    }
}

// grad = scale * (exp(x - m) / (1 + r) - onehot(local)) for a block of classes;
// a local label outside [0, cols) means the target is in another block.
template <typename T, int TPR>
__global__ void fx_sparse_grad_given(const T *x, fx_index rows, fx_index cols,
                                     fx_index x_stride, const double *m, const double *r,
                                     const double *xt, const long long *local,
                                     const double *scale, T *grad, fx_index grad_stride)
{
    fx_index first, step;
    int lane;
    fx_row_slot<TPR>(first, step, lane);
    for (fx_index i = first; i < rows; i += step)
        fx_sparse_grad_row<T, TPR>(x + i * x_stride, cols, lane, m[i], r[i], xt[i], local[i],
                                   scale[i], grad + i * grad_stride);
}

// sum(y') and sum over y' != 0 of y' (x - m) for each row's block of classes.
template <typename T, int TPR>
__global__ void fx_dense_sums_given(const T *x, fx_index rows, fx_index cols, fx_index x_stride,
                                    const T *y, fx_index y_stride, const double *m, double a,
                                    double b, double *sum_y_out, double *sum_yx_out)
{
    __shared__ double shared_sums[TPR > 32 ? TPR / 32 : 1];
    fx_index first, step;
    int lane;
    fx_row_slot<TPR>(first, step, lane);
    for (fx_index i = first; i < rows; i += step) {
        const T *row = x + i * x_stride;
        const T *yrow = y + i * y_stride;
        double sum_y = 0.0, sum_yx = 0.0;
        for (fx_index j = lane; j < cols; j += TPR) {
            const double yj = a * (double)fx_load(yrow + j) + b;
            sum_y += yj;
            if (yj != 0.0)
                sum_yx += yj * ((double)fx_load(row + j) - m[i]);
        }
        sum_y = fx_row_sum<TPR>(sum_y, shared_sums);
        sum_yx = fx_row_sum<TPR>(sum_yx, shared_sums);
        if (lane == 0) {
            sum_y_out[i] = sum_y;
            sum_yx_out[i] = sum_yx;
        }
        if (TPR > 32)
            __syncthreads();
    }
}

// grad = exp(x - m) * p_scale - y_scale * y' for each row's block of classes.
template <typename T, int TPR>
__global__ void fx_dense_grad_given(const T *x, fx_index rows, fx_index cols, fx_index x_stride,
                                    const T *y, fx_index y_stride, const double *m, double a,
                                    double b, const double *p_scale, const double *y_scale,
                                    T *grad, fx_index grad_stride)
{
    fx_index first, step;
    int lane;
    fx_row_slot<TPR>(first, step, lane);
    for (fx_index i = first; i < rows; i += step)
        fx_dense_grad_row<T, TPR>(x + i * x_stride, y + i * y_stride, cols, lane, m[i], a, b,
                                  p_scale[i], y_scale[i], grad + i * grad_stride);
}

// The first position of a label outside [0, cols), as an atomic minimum (rows if none).
__global__ void fx_first_invalid_label(const long long *labels, fx_index rows, fx_index cols,
                                       unsigned long long *first)
{
    for (fx_index i = (fx_index)blockIdx.x * blockDim.x + threadIdx.x; i < rows;
         i += (fx_index)gridDim.x * blockDim.x) {
        if (labels[i] < 0 || labels[i] >= cols)
            atomicMin(first, (unsigned long long)i);
    }
}

#endif  // FX_CUDA_KERNELS
