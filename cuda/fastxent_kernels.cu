// fastxent's CUDA kernels: fused softmax cross-entropy over the rows of 2-D arrays.
//
// Compiled at run time by CuPy (cupy.RawModule, NVRTC), one instantiation at a time
// (fastxent/_cuda.py lists them all), and by tests/test_cuda_compile.py with nvcc for
// sm_80 and sm_90 (with -DFX_CLUSTERS: thread-block clusters). One header beside what
// NVRTC has built in: the row math shared with the CPU kernels (fastxent/_backends/_src/
// fx_row_math.h, which fastxent._backends.cuda.source() writes in where it is included). float16
// travels as raw bits (unsigned short), converted by the hardware with the CPU's rounding
// (fx_half.h: to nearest even).
//
// They mirror the CPU kernels (fastxent/_backends/_src/fx_kernels_impl.h):
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
// block (a block per row, for long rows). Three kinds of kernel (docs/DESIGN.md):
// rows held in registers ("fit", the fast path, with the gradient), the loss alone
// streamed, and rows streamed twice (rows too long to hold).

#ifndef FX_CUDA_KERNELS
#define FX_CUDA_KERNELS

#define FX_INF __int_as_float(0x7f800000)
#define FX_NAN_D __longlong_as_double(0x7ff8000000000000LL)

#include "fx_row_math.h"

typedef long long fx_index;

// --- storage <-> compute --------------------------------------------------------------------

__device__ __forceinline__ float fx_half_to_float(unsigned short h)
{
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
}

// Round to nearest even, as fx_half.h on the CPU (overflow to inf, subnormals kept).
__device__ __forceinline__ unsigned short fx_float_to_half(float f)
{
    unsigned short h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
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

__device__ __forceinline__ float fx_fma(float a, float b, float c) { return fmaf(a, b, c); }
__device__ __forceinline__ double fx_fma(double a, double b, double c) { return fma(a, b, c); }

// exp for results held to an absolute error (gradient entries, and float16 work): the
// hardware's 2^x (about 2 ulp) of x * log2(e) in float: a few ulp of the result, and
// exactly 1 at 0. Double stays exact.
__device__ __forceinline__ float fx_exp_fast(float v)
{
    float r;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(v * 1.4426950408889634f));
    return r;
}
__device__ __forceinline__ double fx_exp_fast(double v) { return exp(v); }

// The terms of a row's sum: exact exp unless the logits are float16.
template <typename T> struct fx_sum_exp {
    template <typename A> __device__ __forceinline__ static A eval(A v) { return fx_exp(v); }
};
template <> struct fx_sum_exp<unsigned short> {
    __device__ __forceinline__ static float eval(float v) { return fx_exp_fast(v); }
};

// --- the normalizer ---------------------------------------------------------------------------

struct fx_norm {
    double m;  // the max (as double; exact for float inputs)
    double r;  // sum(exp(x - m)) - 1; (-inf, -1) is the empty normalizer
};

// The log-sum-exp rule of fx_row_math.h, on normalizers.
__device__ __forceinline__ fx_norm fx_combine(fx_norm a, fx_norm b)
{
    fx_combine(&a.m, &a.r, b.m, b.r);
    return a;
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
    s.r = fx_row_r(s.m, s.r);
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
        double value = (double)(fx_exp_fast((A)(fx_load(row + j) - mc)) * inv);
        if (j == t)
            value = fx_sparse_target_grad(m, r, xt, sc);
        fx_store(g + j, value);
    }
}

// One entry of the dense gradient, scale (total p - y'), in the exact form of the CPU's
// kernels: scale ((ca e - y') + cb e), e = exp(x - m), (ca, cb) = fx_dense_grad_coefs.
template <typename A>
__device__ __forceinline__ A fx_dense_grad_entry(A e, A y, A neg_a, A neg_b, A ca, A cb, A sc)
{
    return fx_fma(cb, e, fx_fma(ca, e, fx_fma(neg_a, y, neg_b))) * sc;
}

// A row's (or a block of classes') dense gradient from the whole row's normalizer (m, r)
// and total = sum(y'), y' = a y + b.
template <typename T, int TPR>
__device__ __forceinline__ void fx_dense_grad_row(const T *row, const T *yrow, fx_index cols,
                                                  int lane, double m, double r, double a,
                                                  double b, double total, double sc, T *g)
{
    typedef typename fx_compute<T>::type A;
    double ca, cb;
    fx_dense_grad_coefs(total, r, &ca, &cb);
    const A mc = (A)m, nega = (A)-a, negb = (A)-b;
    for (fx_index j = lane; j < cols; j += TPR) {
        const A e = fx_exp_fast((A)(fx_load(row + j) - mc));
        fx_store(g + j, (double)fx_dense_grad_entry<A>(e, fx_load(yrow + j), nega, negb, (A)ca,
                                                       (A)cb, (A)sc));
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
        const double xt = valid ? (double)fx_load(row + t) : FX_NAN_D;
        fx_norm s = fx_row_normalizer<TPR>(fx_thread_normalizer<T, TPR>(row, cols, lane), shared);
        if (!valid)
            s.r = FX_NAN_D;
        if (lane == 0)
            fx_store(loss + i * loss_stride, fx_sparse_loss(s.m, s.r, xt));
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
            fx_store(loss + i * loss_stride, fx_dense_loss(sum_y, log_s, sum_yx));
        if (grad)
            fx_dense_grad_row<T, TPR>(row, yrow, cols, lane, s.m, s.r, a, b, sum_y, sc,
                                      grad + i * grad_stride);
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

// --- rows held in registers ("fit" kernels) ---------------------------------------------------
//
// The fast path for rows that fit: each thread loads its E entries of a row once, as
// 16-byte vectors where V > 1 (then rows must be 16-byte aligned and cols % V == 0),
// computes the loss from the registers, and writes the gradient from them: the logits
// are read from memory once, the gradient written once. TPR threads hold a row: a warp
// (TPR == 32, several rows per block) or the whole block (TPR == blockDim.x). With
// thread-block clusters (sm_90, FX_CLUSTERS) a row is spread over the CL blocks of a
// cluster, which combine their partial normalizers through distributed shared memory.
// Thread l's k-th vector of block (rank) q is vector (q * E / V + k) * TPR + l of the row.

template <typename T, int V>
struct __align__(sizeof(T) * V) fx_pack {
    T v[V];
};

template <typename T> __device__ __forceinline__ T fx_neg_inf_bits();
template <> __device__ __forceinline__ float fx_neg_inf_bits<float>() { return -FX_INF; }
template <> __device__ __forceinline__ double fx_neg_inf_bits<double>() { return -(double)FX_INF; }
template <> __device__ __forceinline__ unsigned short fx_neg_inf_bits<unsigned short>() { return 0xfc00u; }

__device__ __forceinline__ float fx_value(float v) { return v; }
__device__ __forceinline__ double fx_value(double v) { return v; }
__device__ __forceinline__ float fx_value(unsigned short v) { return fx_half_to_float(v); }

__device__ __forceinline__ float fx_bits(float v, float) { return v; }
__device__ __forceinline__ double fx_bits(double v, double) { return v; }
__device__ __forceinline__ unsigned short fx_bits(float v, unsigned short) { return fx_float_to_half(v); }

// The thread's packs of a row segment; entries past the row read as -inf.
template <typename T, int V, int NV, int TPR>
__device__ __forceinline__ void fx_load_packs(fx_pack<T, V> (&reg)[NV], const T *row,
                                              fx_index vectors, fx_index base, int lane)
{
#pragma unroll
    for (int k = 0; k < NV; ++k) {
        const fx_index v = base + (fx_index)k * TPR + lane;
        if (v < vectors) {
            reg[k] = *reinterpret_cast<const fx_pack<T, V> *>(row + v * V);
        } else {
#pragma unroll
            for (int e = 0; e < V; ++e)
                reg[k].v[e] = fx_neg_inf_bits<T>();
        }
    }
}

// --- reductions over the threads of a row: a warp, a block, or the blocks of a cluster ---------

// K doubles summed together (one exchange for several sums).
template <int K>
struct fx_vals {
    double v[K];
};

template <typename A>
__device__ __forceinline__ A fx_max_nan(A a, A b) { return (b > a || b != b) ? b : a; }  // NaN wins

struct fx_max_op {
    template <typename A>
    __device__ __forceinline__ A operator()(A a, A b) const { return fx_max_nan(a, b); }
};

struct fx_sum_op {
    template <int K>
    __device__ __forceinline__ fx_vals<K> operator()(fx_vals<K> a, fx_vals<K> b) const
    {
#pragma unroll
        for (int k = 0; k < K; ++k)
            a.v[k] += b.v[k];
        return a;
    }
};

__device__ __forceinline__ float fx_shfl(float v, int offset) { return __shfl_xor_sync(0xffffffffu, v, offset); }
__device__ __forceinline__ double fx_shfl(double v, int offset) { return __shfl_xor_sync(0xffffffffu, v, offset); }
template <int K>
__device__ __forceinline__ fx_vals<K> fx_shfl(fx_vals<K> v, int offset)
{
#pragma unroll
    for (int k = 0; k < K; ++k)
        v.v[k] = __shfl_xor_sync(0xffffffffu, v.v[k], offset);
    return v;
}

// The reduction over the TPR threads of a row (a warp, or the block); every thread gets
// the same bits. For TPR > 32, `shared` holds TPR / 32 values.
template <int TPR, typename P, typename Op>
__device__ __forceinline__ P fx_group_reduce(P value, P *shared, Op op)
{
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1)
        value = op(value, fx_shfl(value, offset));
    if (TPR > 32) {
        if (threadIdx.x % 32 == 0)
            shared[threadIdx.x / 32] = value;
        __syncthreads();
        value = shared[0];
#pragma unroll
        for (int w = 1; w < TPR / 32; ++w)
            value = op(value, shared[w]);
        __syncthreads();
    }
    return value;
}

// The CL blocks of a cluster (CL == 1: nothing to do).
template <int CL>
struct fx_cluster {
    __device__ __forceinline__ static unsigned rank() { return 0; }
    template <typename P, typename Op>
    __device__ __forceinline__ static P reduce(P value, P *, Op) { return value; }
    __device__ __forceinline__ static void sync() {}
};

#ifdef FX_CLUSTERS
__device__ __forceinline__ void fx_cluster_barrier()
{
    asm volatile("barrier.cluster.arrive.release.aligned;\n\t"
                 "barrier.cluster.wait.acquire.aligned;" ::: "memory");
}

__device__ __forceinline__ void fx_remote_load(float &v, unsigned address)
{
    asm volatile("ld.shared::cluster.f32 %0, [%1];" : "=f"(v) : "r"(address) : "memory");
}

__device__ __forceinline__ void fx_remote_load(double &v, unsigned address)
{
    asm volatile("ld.shared::cluster.f64 %0, [%1];" : "=d"(v) : "r"(address) : "memory");
}

template <int K>
__device__ __forceinline__ void fx_remote_load(fx_vals<K> &v, unsigned address)
{
#pragma unroll
    for (int k = 0; k < K; ++k)
        fx_remote_load(v.v[k], address + 8u * k);
}

template <int CL>
struct fx_cluster_many {
    __device__ __forceinline__ static unsigned rank()
    {
        unsigned r;
        asm volatile("mov.u32 %0, %%cluster_ctarank;" : "=r"(r));
        return r;
    }
    // Every block's value, combined in rank order (so every block gets the same bits).
    // Callers alternate between two slots per row, so one barrier per exchange suffices:
    // a block rewrites a slot only after every block has passed the next exchange.
    template <typename P, typename Op>
    __device__ __forceinline__ static P reduce(P value, P *slot, Op op)
    {
        if (threadIdx.x == 0)
            *slot = value;
        fx_cluster_barrier();
        const unsigned local = (unsigned)__cvta_generic_to_shared(slot);
        P total;
#pragma unroll
        for (int q = 0; q < CL; ++q) {
            unsigned remote;
            P part;
            asm volatile("mapa.shared::cluster.u32 %0, %1, %2;" : "=r"(remote) : "r"(local), "r"(q));
            fx_remote_load(part, remote);
            total = q == 0 ? part : op(total, part);
        }
        return total;
    }
    __device__ __forceinline__ static void sync() { fx_cluster_barrier(); }
};
template <> struct fx_cluster<2> : fx_cluster_many<2> {};
template <> struct fx_cluster<4> : fx_cluster_many<4> {};
template <> struct fx_cluster<8> : fx_cluster_many<8> {};
#endif

// The reduction over every thread of a row: its group, then its cluster.
template <int TPR, int CL, typename P, typename Op>
__device__ __forceinline__ P fx_row_reduce(P value, P *group_shared, P *cluster_slot, Op op)
{
    return fx_cluster<CL>::reduce(fx_group_reduce<TPR>(value, group_shared, op), cluster_slot, op);
}

// Rows of this thread's group: a warp's rows (TPR == 32) or a cluster's (CL blocks).
template <int TPR, int CL>
__device__ __forceinline__ void fx_fit_slot(fx_index &first, fx_index &step, int &lane)
{
    if (TPR == 32) {
        fx_row_slot<32>(first, step, lane);
    } else {
        first = (fx_index)blockIdx.x / CL;
        step = (fx_index)gridDim.x / CL;
        lane = threadIdx.x;
    }
}

// The largest of the thread's entries (NaN if one is NaN).
template <typename T, int V, int NV>
__device__ __forceinline__ typename fx_compute<T>::type fx_packs_max(const fx_pack<T, V> (&reg)[NV])
{
    typedef typename fx_compute<T>::type A;
    A m = -FX_INF;
#pragma unroll
    for (int k = 0; k < NV; ++k)
#pragma unroll
        for (int e = 0; e < V; ++e)
            m = fx_max_nan(m, fx_value(reg[k].v[e]));
    return m;
}

// Adds the thread's sum of exp(x - m) over entries below the row's max m to s.v[0], and
// its count of entries equal to m to s.v[1]: r = s.v[0] + s.v[1] - 1 keeps a confident
// row's small r exactly. Terms are summed in the compute type per vector, then in double.
template <typename T, int V, int NV, int K>
__device__ __forceinline__ void fx_packs_below(fx_vals<K> &s, const fx_pack<T, V> (&reg)[NV],
                                               typename fx_compute<T>::type m)
{
    typedef typename fx_compute<T>::type A;
    int ties = 0;
#pragma unroll
    for (int k = 0; k < NV; ++k) {
        A part = 0;
#pragma unroll
        for (int e = 0; e < V; ++e) {
            const A v = fx_value(reg[k].v[e]);
            ties += v == m;
            part += v == m ? (A)0 : fx_sum_exp<T>::eval((A)(v - m));
        }
        s.v[0] += (double)part;
    }
    s.v[1] += (double)ties;
}

template <typename T, int V, int E, int TPR, int CL>
__device__ __forceinline__ void fx_sparse_fit(const T *x, fx_index rows, fx_index cols,
                                              fx_index x_stride, const long long *labels,
                                              const double *scale, fx_index scale_step,
                                              T *loss, fx_index loss_stride, T *grad,
                                              fx_index grad_stride)
{
    typedef typename fx_compute<T>::type A;
    const int NV = E / V, W = TPR > 32 ? TPR / 32 : 1, S = CL > 1 ? 2 : 1;
    __shared__ A warp_max[W], block_max[S];
    __shared__ fx_vals<2> warp_sums[W], block_sums[S];
    fx_index first, step;
    int lane;
    fx_fit_slot<TPR, CL>(first, step, lane);
    const unsigned rank = fx_cluster<CL>::rank();
    const fx_index vectors = cols / V, base = (fx_index)rank * NV * TPR;
    int slot = 0;
    for (fx_index i = first; i < rows; i += step, slot = S - 1 - slot) {
        const T *row = x + i * x_stride;
        const long long t = labels[i];
        const bool valid = t >= 0 && t < cols;
        // read before any thread may overwrite the row with its gradient
        const double xt = valid ? (double)fx_load(row + t) : FX_NAN_D;
        fx_pack<T, V> reg[NV];
        fx_load_packs<T, V, NV, TPR>(reg, row, vectors, base, lane);
        const A m = fx_row_reduce<TPR, CL>(fx_packs_max<T, V, NV>(reg), warp_max,
                                           block_max + slot, fx_max_op());
        fx_vals<2> sums = {{0.0, 0.0}};
        fx_packs_below<T, V, NV>(sums, reg, m);
        sums = fx_row_reduce<TPR, CL>(sums, warp_sums, block_sums + slot, fx_sum_op());
        const double r = valid ? fx_row_r((double)m, sums.v[0] + (sums.v[1] - 1.0)) : FX_NAN_D;
        if (lane == 0 && rank == 0)
            fx_store(loss + i * loss_stride, fx_sparse_loss((double)m, r, xt));
        if (!grad)
            continue;
        const double sc = scale[i * scale_step];
        const A inv = (A)(sc / (1.0 + r));
        const A target = (A)fx_sparse_target_grad((double)m, r, xt, sc);
        T *g = grad + i * grad_stride;
#pragma unroll
        for (int k = 0; k < NV; ++k) {
            const fx_index v = base + (fx_index)k * TPR + lane;
            if (v >= vectors)
                continue;
            fx_pack<T, V> out;
#pragma unroll
            for (int e = 0; e < V; ++e) {
                const A value = v * V + e == t ? target : fx_exp_fast((A)(fx_value(reg[k].v[e]) - m)) * inv;
                out.v[e] = fx_bits(value, T());
            }
            *reinterpret_cast<fx_pack<T, V> *>(g + v * V) = out;
        }
    }
    fx_cluster<CL>::sync();  // no block leaves while another may read its shared memory
}

template <typename T, int V, int E, int TPR, int CL>
__device__ __forceinline__ void fx_dense_fit(const T *x, fx_index rows, fx_index cols,
                                             fx_index x_stride, const T *y, fx_index y_stride,
                                             double a, double b, const double *scale,
                                             fx_index scale_step, T *loss, fx_index loss_stride,
                                             T *grad, fx_index grad_stride, T *labels_grad,
                                             fx_index labels_grad_stride)
{
    typedef typename fx_compute<T>::type A;
    const int NV = E / V, W = TPR > 32 ? TPR / 32 : 1, S = CL > 1 ? 2 : 1;
    __shared__ A warp_max[W], block_max[S];
    __shared__ fx_vals<4> warp_sums[W], block_sums[S];
    fx_index first, step;
    int lane;
    fx_fit_slot<TPR, CL>(first, step, lane);
    const unsigned rank = fx_cluster<CL>::rank();
    const fx_index vectors = cols / V, base = (fx_index)rank * NV * TPR;
    int slot = 0;
    for (fx_index i = first; i < rows; i += step, slot = S - 1 - slot) {
        const T *row = x + i * x_stride;
        const T *yrow = y + i * y_stride;
        fx_pack<T, V> reg[NV], yreg[NV];
        fx_load_packs<T, V, NV, TPR>(reg, row, vectors, base, lane);
        fx_load_packs<T, V, NV, TPR>(yreg, yrow, vectors, base, lane);
        const A m = fx_row_reduce<TPR, CL>(fx_packs_max<T, V, NV>(reg), warp_max,
                                           block_max + slot, fx_max_op());
        // below, ties, sum(y'), and the sum over y' != 0 of y' (x - m)
        fx_vals<4> sums = {{0.0, 0.0, 0.0, 0.0}};
        fx_packs_below<T, V, NV>(sums, reg, m);
#pragma unroll
        for (int k = 0; k < NV; ++k) {
            if (base + (fx_index)k * TPR + lane >= vectors)
                continue;
#pragma unroll
            for (int e = 0; e < V; ++e) {
                const double yj = a * (double)fx_value(yreg[k].v[e]) + b;
                sums.v[2] += yj;
                if (yj != 0.0)
                    sums.v[3] += yj * ((double)fx_value(reg[k].v[e]) - (double)m);
            }
        }
        sums = fx_row_reduce<TPR, CL>(sums, warp_sums, block_sums + slot, fx_sum_op());
        const double r = fx_row_r((double)m, sums.v[0] + (sums.v[1] - 1.0));
        const double log_s = log1p(r), sum_y = sums.v[2];
        if (lane == 0 && rank == 0)
            fx_store(loss + i * loss_stride, fx_dense_loss(sum_y, log_s, sums.v[3]));
        const double sc = scale[i * scale_step];
        double ca_, cb_;
        fx_dense_grad_coefs(sum_y, r, &ca_, &cb_);
        const A ca = (A)ca_, cb = (A)cb_, vs = (A)sc, nega = (A)-a, negb = (A)-b;
#pragma unroll
        for (int k = 0; k < NV; ++k) {
            const fx_index v = base + (fx_index)k * TPR + lane;
            if (v >= vectors)
                continue;
            if (grad) {
                fx_pack<T, V> out;
#pragma unroll
                for (int e = 0; e < V; ++e) {
                    const A ex = fx_exp_fast((A)(fx_value(reg[k].v[e]) - m));
                    out.v[e] = fx_bits(fx_dense_grad_entry<A>(ex, fx_value(yreg[k].v[e]), nega,
                                                              negb, ca, cb, vs), T());
                }
                *reinterpret_cast<fx_pack<T, V> *>(grad + i * grad_stride + v * V) = out;
            }
            if (labels_grad) {
                fx_pack<T, V> out;
#pragma unroll
                for (int e = 0; e < V; ++e)
                    out.v[e] = fx_bits((A)(sc * a * (log_s + ((double)m - (double)fx_value(reg[k].v[e])))), T());
                *reinterpret_cast<fx_pack<T, V> *>(labels_grad + i * labels_grad_stride + v * V) = out;
            }
        }
    }
    fx_cluster<CL>::sync();
}

// --- the loss alone, streamed: long rows without the gradient --------------------------------
//
// Without a gradient to write, nothing needs holding: each thread streams its vectors of
// the row, U loads in flight, keeping an online normalizer (its max m, the sum `below` of
// exp(x - m) over entries below m, and the count `ties` of entries equal to m); the
// block's threads then rescale to the row's max and add up. A block per row, many blocks
// per multiprocessor, so loads of one block overlap the reductions of another.

template <typename T, int V, int TPR>
__global__ void __launch_bounds__(TPR)
fx_sparse_loss_stream(const T *x, fx_index rows, fx_index cols, fx_index x_stride,
                      const long long *labels, T *loss, fx_index loss_stride)
{
    typedef typename fx_compute<T>::type A;
    const int U = 4, W = TPR / 32;
    __shared__ A warp_max[W];
    __shared__ fx_vals<2> warp_sums[W];
    const fx_index vectors = cols / V;
    for (fx_index i = blockIdx.x; i < rows; i += gridDim.x) {
        const T *row = x + i * x_stride;
        A m = -FX_INF;
        double below = 0.0;
        int ties = 0;
        for (fx_index base = 0; base < vectors; base += U * TPR) {
            fx_pack<T, V> reg[U];
            fx_load_packs<T, V, U, TPR>(reg, row, vectors, base, threadIdx.x);
            const A cm = fx_packs_max<T, V, U>(reg);
            if (cm > m || cm != cm) {  // a new max: the old terms, ties included, rescale
                below = (below + ties) * exp((double)m - (double)cm);
                ties = 0;
                m = cm;
            }
            fx_vals<2> s = {{0.0, 0.0}};
            fx_packs_below<T, V, U>(s, reg, m);
            below += s.v[0];
            ties += (int)s.v[1];
        }
        const A row_max = fx_group_reduce<TPR>(m, warp_max, fx_max_op());
        fx_vals<2> sums;
        const bool at_max = m == row_max;
        sums.v[0] = at_max ? below : (below + ties) * exp((double)m - (double)row_max);
        sums.v[1] = at_max ? (double)ties : 0.0;
        sums = fx_group_reduce<TPR>(sums, warp_sums, fx_sum_op());
        if (threadIdx.x == 0) {
            const long long t = labels[i];
            const double r = (t < 0 || t >= cols) ? FX_NAN_D
                             : fx_row_r((double)row_max, sums.v[0] + (sums.v[1] - 1.0));
            const double xt = r == r ? (double)fx_load(row + t) : r;
            fx_store(loss + i * loss_stride, fx_sparse_loss((double)row_max, r, xt));
        }
    }
}

// Entry points. A warp per row: launch with 256 threads. A block per row: TPR threads.
// Registers are budgeted for FX_FIT_THREADS_PER_SM resident threads: 64 registers a
// thread. Measured on an H100 (docs/BENCHMARKS.md), two resident blocks of 512 beat one
// by 1.3 to 1.5x although the compiler then spills a few bytes (at most 256 a thread, as
// tests/test_cuda_compile.py checks).
#ifndef FX_FIT_THREADS_PER_SM
#define FX_FIT_THREADS_PER_SM 1024
#endif
#define FX_FIT_BOUNDS(threads) \
    __launch_bounds__(threads, FX_FIT_THREADS_PER_SM > (threads) ? FX_FIT_THREADS_PER_SM / (threads) : 1)
#define FX_FIT_PARAMS_SPARSE                                                                \
    const T *x, fx_index rows, fx_index cols, fx_index x_stride, const long long *labels,     \
        const double *scale, fx_index scale_step, T *loss, fx_index loss_stride, T *grad,     \
        fx_index grad_stride
#define FX_FIT_ARGS_SPARSE \
    x, rows, cols, x_stride, labels, scale, scale_step, loss, loss_stride, grad, grad_stride
#define FX_FIT_PARAMS_DENSE                                                                 \
    const T *x, fx_index rows, fx_index cols, fx_index x_stride, const T *y,                  \
        fx_index y_stride, double a, double b, const double *scale, fx_index scale_step,      \
        T *loss, fx_index loss_stride, T *grad, fx_index grad_stride, T *labels_grad,         \
        fx_index labels_grad_stride
#define FX_FIT_ARGS_DENSE                                                                   \
    x, rows, cols, x_stride, y, y_stride, a, b, scale, scale_step, loss, loss_stride, grad,   \
        grad_stride, labels_grad, labels_grad_stride

template <typename T, int V, int E, int TPR>
__global__ void FX_FIT_BOUNDS(TPR == 32 ? 256 : TPR)
fx_sparse_fit_rows(FX_FIT_PARAMS_SPARSE)
{
    fx_sparse_fit<T, V, E, TPR, 1>(FX_FIT_ARGS_SPARSE);
}

template <typename T, int V, int E, int TPR>
__global__ void FX_FIT_BOUNDS(TPR == 32 ? 256 : TPR)
fx_dense_fit_rows(FX_FIT_PARAMS_DENSE)
{
    fx_dense_fit<T, V, E, TPR, 1>(FX_FIT_ARGS_DENSE);
}

#ifdef FX_CLUSTERS
template <typename T, int V, int E, int TPR, int CL>
__global__ void __cluster_dims__(CL, 1, 1) FX_FIT_BOUNDS(TPR)
fx_sparse_fit_cluster(FX_FIT_PARAMS_SPARSE)
{
    fx_sparse_fit<T, V, E, TPR, CL>(FX_FIT_ARGS_SPARSE);
}

template <typename T, int V, int E, int TPR, int CL>
__global__ void __cluster_dims__(CL, 1, 1) FX_FIT_BOUNDS(TPR)
fx_dense_fit_cluster(FX_FIT_PARAMS_DENSE)
{
    fx_dense_fit<T, V, E, TPR, CL>(FX_FIT_ARGS_DENSE);
}
#endif

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

// grad = scale * (total p - y') for each row's block of classes, from the whole row's
// normalizer (m, r) and total = sum(y') (the exact form: fx_dense_grad_row).
template <typename T, int TPR>
__global__ void fx_dense_grad_given(const T *x, fx_index rows, fx_index cols, fx_index x_stride,
                                    const T *y, fx_index y_stride, const double *m,
                                    const double *r, double a, double b, const double *total,
                                    const double *scale, T *grad, fx_index grad_stride)
{
    fx_index first, step;
    int lane;
    fx_row_slot<TPR>(first, step, lane);
    for (fx_index i = first; i < rows; i += step)
        fx_dense_grad_row<T, TPR>(x + i * x_stride, y + i * y_stride, cols, lane, m[i], r[i], a,
                                  b, total[i], scale[i], grad + i * grad_stride);
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
