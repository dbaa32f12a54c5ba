/* The kernel families, written once over fx_simd.h; included by fx_kernels.c for float
 * and for double. Needs T (element type), V, M, CNT (vector, mask and counter types),
 * VL (lanes), VOP(op), MOP(op), COP(op) (vector, mask and counter operations), SFX(name)
 * (name suffix), CHUNK (elements of a row reduced at a time; divides FX_PART) and
 * ADD_WIDE(acc, v) (a vd accumulator plus the lanes of a V).
 *
 * Long rows, one part (<= FX_PART entries) at a time, chunk by chunk:
 *   1. the chunk's max (read from memory: the only read that leaves the cache);
 *   2. one pass over the chunk, from L1: r = sum(exp(x - max)) - 1 over the entries below
 *      the max, ties counted apart (so that r keeps its relative precision when tiny),
 *      float lanes added into double lanes every FLUSH vectors; dense labels y' = a y + b add
 *      sum(y') and sum over y' != 0 of y' (x - max); with a gradient, exp(x - max) is
 *      stored in g; meanwhile the next chunk is prefetched, so that memory streams while
 *      the exps are computed.
 * Chunks and parts combine with fx_combine_partial (the log-sum-exp rule); a row's
 * gradient is then finished in place, a chunk at a time: g *= p_scale * exp(max_chunk - m).
 * Rows split over threads run these same part functions, so the bits do not depend on
 * the thread count.
 *
 * Rows in lanes, for short rows: a block of VL rows is loaded row-wise and turned into
 * column vectors by an in-register transpose, VL columns at a time (the last tile overlaps
 * the one before it, or is a partial load when the row is shorter than VL), so that max,
 * exp, sums and log are vertical operations: lane i is row i. The gradient goes back the
 * same way.
 */

#define FLUSH 16

/* ---- long rows ---------------------------------------------------------------------- */

static FX_ALWAYS_INLINE T SFX(max_of)(const T *x, ptrdiff_t n)
{
    const V neg_inf = VOP(set1)((T)-INFINITY);
    const ptrdiff_t full = n - n % VL;
    V a0 = neg_inf, a1 = neg_inf, a2 = neg_inf, a3 = neg_inf;
    ptrdiff_t j = 0;
    for (; j + 4 * VL <= full; j += 4 * VL) {
        a0 = VOP(max)(a0, VOP(load)(x + j));
        a1 = VOP(max)(a1, VOP(load)(x + j + VL));
        a2 = VOP(max)(a2, VOP(load)(x + j + 2 * VL));
        a3 = VOP(max)(a3, VOP(load)(x + j + 3 * VL));
    }
    for (; j < full; j += VL)
        a0 = VOP(max)(a0, VOP(load)(x + j));
    if (j < n)
        a1 = VOP(max)(a1, VOP(load_part)(x + j, n - j, (T)-INFINITY));
    return VOP(hmax)(VOP(max)(VOP(max)(a0, a1), VOP(max)(a2, a3)));
}

/* Elements per step of the chunk pass: a 64-byte cache line, or one vector if wider. */
#define LINE (64 / (ptrdiff_t)sizeof(T) > VL ? 64 / (ptrdiff_t)sizeof(T) : VL)

/* One step of the chunk pass over the VL entries at x[j] (see chunk_pass). */
#define CHUNK_STEP(X, Y, G, S, SY, SYX, COUNT)                                            \
    do {                                                                                  \
        const V d_ = VOP(sub)(X, vm);                                                     \
        const M below_ = VOP(neq)(d_, zero);                                              \
        const V e_ = VOP(exp_nonpos)(d_);                                                 \
        S = VOP(add_if)(below_, S, e_);                                                   \
        COUNT = COP(add)(COUNT, below_);                                                  \
        if (g)                                                                            \
            G;                                                                            \
        if (y) {                                                                          \
            const V y_ = Y;                                                               \
            SY = VOP(add)(SY, y_);                                                        \
            SYX = VOP(add)(SYX, VOP(keep)(VOP(neq)(y_, zero), VOP(mul)(y_, d_)));         \
        }                                                                                 \
    } while (0)

/* The partial of one chunk (n <= CHUNK). y and g may be NULL: the inlined copies are
   specialized on that. `ahead` is how far ahead to prefetch. A chunk with no entry
   above -inf (or whose max is NaN) has m = -inf and its dense sums relative to 0. */
static FX_ALWAYS_INLINE void SFX(chunk_pass)(const T *x, const T *y, ptrdiff_t n, T a, T b,
                                             T *g, ptrdiff_t ahead, fx_partial *out)
{
    const V zero = VOP(set1)((T)0), va = VOP(set1)(a), vb = VOP(set1)(b);
    const ptrdiff_t full = n - n % VL;
    const T m = SFX(max_of)(x, n);
    const int finite_max = m > -INFINITY;
    const V vm = VOP(set1)(finite_max ? m : (T)0);
    vd sum = vd_set1(0.0), sum_y = vd_set1(0.0), sum_yx = vd_set1(0.0);
    CNT below = COP(zero)();
    ptrdiff_t j = 0, lanes = full;

    while (j < full) {
        const ptrdiff_t end = j + FLUSH * VL < full ? j + FLUSH * VL : full;
        V s0 = zero, sy0 = zero, syx0 = zero;
        /* a cache line per step, one accumulator: the adds' latency is below the exps'
           throughput, and 16-register ISAs keep every constant in a register */
        for (; j + LINE <= end; j += LINE) {
            ptrdiff_t k;
            FX_PREFETCH(x + j + ahead);
            if (y)
                FX_PREFETCH(y + j + ahead);
            if (g)
                FX_PREFETCH_W(g + j + ahead);
            for (k = j; k < j + LINE; k += VL)
                CHUNK_STEP(VOP(load)(x + k), VOP(fmadd)(va, VOP(load)(y + k), vb),
                           VOP(store)(g + k, e_), s0, sy0, syx0, below);
        }
        for (; j < end; j += VL)
            CHUNK_STEP(VOP(load)(x + j), VOP(fmadd)(va, VOP(load)(y + j), vb),
                       VOP(store)(g + j, e_), s0, sy0, syx0, below);
        sum = ADD_WIDE(sum, s0);
        if (y) {
            sum_y = ADD_WIDE(sum_y, sy0);
            sum_yx = ADD_WIDE(sum_yx, syx0);
        }
    }
    if (j < n) {
        /* the tail: -inf pads add exp(-inf) = 0 below the max; the labels' pads are masked */
        const M real = MOP(first)(n - j);
        V s0 = zero, sy0 = zero, syx0 = zero;
        lanes += VL;
        CHUNK_STEP(VOP(load_part)(x + j, n - j, (T)-INFINITY),
                   VOP(keep)(real, VOP(fmadd)(va, VOP(load_part)(y + j, n - j, 0), vb)),
                   VOP(store_part)(g + j, n - j, e_), s0, sy0, syx0, below);
        sum = ADD_WIDE(sum, s0);
        if (y) {
            sum_y = ADD_WIDE(sum_y, sy0);
            sum_yx = ADD_WIDE(sum_yx, syx0);
        }
    }
    out->m = finite_max ? (double)m : -INFINITY;
    out->r = vd_hsum_d(sum) + (double)(lanes - COP(total)(below) - 1);
    out->sy = y ? vd_hsum_d(sum_y) : 0.0;
    out->syx = y ? vd_hsum_d(sum_yx) : 0.0;
}

static FX_ALWAYS_INLINE void SFX(part_pass)(const T *x, const T *y, ptrdiff_t n, double a,
                                            double b, T *g, double *chunk_max, fx_partial *out)
{
    ptrdiff_t k;
    fx_partial_empty(out);
    for (k = 0; k < n; k += CHUNK) {
        const ptrdiff_t len = n - k < CHUNK ? n - k : CHUNK;
        fx_partial chunk;
        SFX(chunk_pass)(x + k, y ? y + k : NULL, len, (T)a, (T)b, g ? g + k : NULL, len, &chunk);
        if (g)
            chunk_max[k / CHUNK] = chunk.m;
        fx_combine_partial(out, &chunk);
    }
}

/* The partial of up to FX_PART entries of a row: the specializations of part_pass. */
static void SFX(part)(const T *x, const T *y, ptrdiff_t n, double a, double b, T *g,
                      double *chunk_max, fx_partial *out)
{
    if (y && g)
        SFX(part_pass)(x, y, n, a, b, g, chunk_max, out);
    else if (y)
        SFX(part_pass)(x, y, n, a, b, NULL, NULL, out);
    else if (g)
        SFX(part_pass)(x, NULL, n, 0, 0, g, chunk_max, out);
    else
        SFX(part_pass)(x, NULL, n, 0, 0, NULL, NULL, out);
}

/* The dense gradient scale ((ca e - y') + cb e) of fx_dense_grad_coefs; NY is -y', formed
   directly from the labels. */
#define EXACT_GRAD(E, NY, VCA, VCB, VS) VOP(mul)(VOP(fmadd)(VCB, E, VOP(fmadd)(VCA, E, NY)), VS)

/* The gradient of a part from the exps part() stored in g, relative to their chunk's max
   (EXACT_GRAD); without labels g * scale * total / (1 + r) * exp(max_chunk - m). */
static void SFX(grad_finish)(T *g, const T *y, ptrdiff_t n, double a, double b,
                             const double *chunk_max, double m, double scale, double total,
                             double r)
{
    const V vna = VOP(set1)((T)-a), vnb = VOP(set1)((T)-b);
    const V vs = VOP(set1)((T)scale);
    const double p_scale = scale * total / (1.0 + r);
    double ca, cb;
    V vca, vcb;
    fx_dense_grad_coefs(total, r, &ca, &cb);
    vca = VOP(set1)((T)ca);
    vcb = VOP(set1)((T)cb);
    ptrdiff_t k, j;
    for (k = 0; k < n; k += CHUNK) {
        const ptrdiff_t len = n - k < CHUNK ? n - k : CHUNK, full = len - len % VL;
        const double shift = chunk_max[k / CHUNK] == m ? 1.0 : exp(chunk_max[k / CHUNK] - m);
        T *gc = g + k;
        if (y) {
            const T *yc = y + k;
            const V f = VOP(set1)((T)shift);
            if (shift == 1.0) {
                for (j = 0; j < full; j += VL)
                    VOP(store)(gc + j, EXACT_GRAD(VOP(load)(gc + j),
                                                  VOP(fmadd)(vna, VOP(load)(yc + j), vnb),
                                                  vca, vcb, vs));
            } else {
                for (j = 0; j < full; j += VL)
                    VOP(store)(gc + j, EXACT_GRAD(VOP(mul)(VOP(load)(gc + j), f),
                                                  VOP(fmadd)(vna, VOP(load)(yc + j), vnb),
                                                  vca, vcb, vs));
            }
            if (j < len)
                VOP(store_part)(gc + j, len - j,
                                EXACT_GRAD(VOP(mul)(VOP(load_part)(gc + j, len - j, 0), f),
                                           VOP(fmadd)(vna, VOP(load_part)(yc + j, len - j, 0), vnb),
                                           vca, vcb, vs));
        } else {
            const V f = VOP(set1)((T)(shift == 1.0 ? p_scale : p_scale * shift));
            for (j = 0; j < full; j += VL)
                VOP(store)(gc + j, VOP(mul)(VOP(load)(gc + j), f));
            if (j < len)
                VOP(store_part)(gc + j, len - j, VOP(mul)(VOP(load_part)(gc + j, len - j, 0), f));
        }
    }
}

/* g = exp(x - m) * inv, given the whole row's m; g may be x (a class-axis block). */
static void SFX(sparse_grad_part)(const T *x, ptrdiff_t n, double m, double inv, T *g)
{
    const V vm = VOP(set1)((T)m), vinv = VOP(set1)((T)inv);
    const ptrdiff_t full = n - n % VL;
    ptrdiff_t j;
    for (j = 0; j < full; j += VL)
        VOP(store)(g + j, VOP(mul)(VOP(exp_nonpos)(VOP(sub)(VOP(load)(x + j), vm)), vinv));
    if (j < n)
        VOP(store_part)(g + j, n - j,
                        VOP(mul)(VOP(exp_nonpos)(VOP(sub)(VOP(load_part)(x + j, n - j, 0), vm)), vinv));
}

/* Given the whole row's m: sum(y') and sum over y' != 0 of y' (x - m), y' = a y + b;
   gy (if given) = gy_scale * (log_s + (m - x)), the labels' gradient. */
static void SFX(dense_sums_part)(const T *x, const T *y, ptrdiff_t n, double m, double a,
                                 double b, double gy_scale, double log_s, T *gy,
                                 double *sum_y, double *sum_yx)
{
    const V vm = VOP(set1)((T)m), va = VOP(set1)((T)a), vb = VOP(set1)((T)b);
    const V zero = VOP(set1)((T)0), vls = VOP(set1)((T)log_s), vgs = VOP(set1)((T)gy_scale);
    const ptrdiff_t full = n - n % VL;
    double total_y = 0.0, total_yx = 0.0;
    ptrdiff_t j = 0;
    while (j < n) {
        const ptrdiff_t end = j + FLUSH * VL < full ? j + FLUSH * VL : full;
        V sy = zero, syx = zero;
        for (; j < end; j += VL) {
            const V diff = VOP(sub)(VOP(load)(x + j), vm);
            const V yj = VOP(fmadd)(va, VOP(load)(y + j), vb);
            sy = VOP(add)(sy, yj);
            syx = VOP(add)(syx, VOP(keep)(VOP(neq)(yj, zero), VOP(mul)(yj, diff)));
            if (gy)
                VOP(store)(gy + j, VOP(mul)(vgs, VOP(sub)(vls, diff)));
        }
        if (j == full && j < n) {
            const M real = MOP(first)(n - j);
            const V diff = VOP(sub)(VOP(load_part)(x + j, n - j, 0), vm);
            const V yj = VOP(keep)(real, VOP(fmadd)(va, VOP(load_part)(y + j, n - j, 0), vb));
            sy = VOP(add)(sy, yj);
            syx = VOP(add)(syx, VOP(keep)(VOP(neq)(yj, zero), VOP(mul)(yj, diff)));
            if (gy)
                VOP(store_part)(gy + j, n - j, VOP(mul)(vgs, VOP(sub)(vls, diff)));
            j = n;
        }
        total_y += VOP(hsum_d)(sy);
        total_yx += VOP(hsum_d)(syx);
    }
    *sum_y = total_y;
    *sum_yx = total_yx;
}

/* The gradient EXACT_GRAD given the whole row's m; g may be x. */
static void SFX(dense_grad_part)(const T *x, const T *y, ptrdiff_t n, double m, double a,
                                 double b, double scale, double total, double r, T *g)
{
    const V vm = VOP(set1)((T)m), vna = VOP(set1)((T)-a), vnb = VOP(set1)((T)-b);
    const V vs = VOP(set1)((T)scale);
    const ptrdiff_t full = n - n % VL;
    double ca, cb;
    V vca, vcb;
    ptrdiff_t j;
    fx_dense_grad_coefs(total, r, &ca, &cb);
    vca = VOP(set1)((T)ca);
    vcb = VOP(set1)((T)cb);
    for (j = 0; j < full; j += VL) {
        const V ny = VOP(fmadd)(vna, VOP(load)(y + j), vnb);
        const V e = VOP(exp_nonpos)(VOP(sub)(VOP(load)(x + j), vm));
        VOP(store)(g + j, EXACT_GRAD(e, ny, vca, vcb, vs));
    }
    if (j < n) {
        const V ny = VOP(fmadd)(vna, VOP(load_part)(y + j, n - j, 0), vnb);
        const V e = VOP(exp_nonpos)(VOP(sub)(VOP(load_part)(x + j, n - j, 0), vm));
        VOP(store_part)(g + j, n - j, EXACT_GRAD(e, ny, vca, vcb, vs));
    }
}

static void SFX(fill_nan)(T *row, ptrdiff_t n)
{
    ptrdiff_t j;
    if (row)
        for (j = 0; j < n; ++j)
            row[j] = (T)NAN;
}

/* A whole row's partial, part by part in order. */
static FX_ALWAYS_INLINE void SFX(row_partial)(const T *x, const T *y, ptrdiff_t n, double a,
                                              double b, T *g, double *chunk_max,
                                              fx_partial *row)
{
    ptrdiff_t k;
    fx_partial_empty(row);
    for (k = 0; k < n; k += FX_PART) {
        fx_partial part;
        SFX(part)(x + k, y ? y + k : NULL, n - k < FX_PART ? n - k : FX_PART, a, b,
                  g ? g + k : NULL, g ? chunk_max + k / CHUNK : NULL, &part);
        fx_combine_partial(row, &part);
    }
    fx_partial_finish(row);
}

/* The generalized sparse row (every option of the integer labels is a coefficient of it):
   loss = c (lse - x_t) + sum_j y'_j (lse - x_j) and gradient
   scale ((c + sum y') p - c onehot_t - y'), with the spread y' = a u + b over the classes
   (none where u is NULL; the plain row is c = 1 without a spread). The spread rides in the dense labels'
   place of the one pass; the target entry is written last, exactly when it is the max. */
static FX_ALWAYS_INLINE double SFX(sparse_row_with)(const T *x, ptrdiff_t n, ptrdiff_t t,
                                                   double c, const T *u, double a, double b,
                                                   double scale, T *g, double *work)
{
    fx_partial row;
    double xt, loss;
    ptrdiff_t k;
    if (t < 0 || t >= n) {
        SFX(fill_nan)(g, n);
        return NAN;
    }
    xt = (double)x[t];   /* before g, which may be x, is written */
    SFX(row_partial)(x, u, n, a, b, g, work, &row);
    loss = c * fx_sparse_loss(row.m, row.r, xt);   /* exact for the plain row's c = 1 */
    if (u)
        loss += fx_dense_loss(row.sy, log1p(row.r), row.syx);
    if (g) {
        double target = fx_sparse_target_grad(row.m, row.r, xt, scale * c);
        for (k = 0; k < n; k += FX_PART)
            SFX(grad_finish)(g + k, u ? u + k : NULL, n - k < FX_PART ? n - k : FX_PART, a, b,
                             work + k / CHUNK, row.m, scale, c + row.sy, row.r);
        if (u)
            target += scale * (row.sy * exp(xt - row.m) / (1.0 + row.r) - ((T)a * u[t] + (T)b));
        g[t] = (T)target;
    }
    return loss;
}

/* Specialized on the spread: the plain row's copy has none of its work inlined. */
static double SFX(sparse_row)(const T *x, ptrdiff_t n, ptrdiff_t t, double c, const T *u,
                              double a, double b, double scale, T *g, double *work)
{
    if (u)
        return SFX(sparse_row_with)(x, n, t, c, u, a, b, scale, g, work);
    return SFX(sparse_row_with)(x, n, t, c, NULL, 0.0, 0.0, scale, g, work);
}

/* With the labels' gradient the exps are not stored: gy needs the logits, which g may be. */
static double SFX(dense_row)(const T *x, const T *y, ptrdiff_t n, double a, double b,
                             double scale, T *g, T *gy, double *work)
{
    T *stored = gy ? NULL : g;
    fx_partial row;
    double log_s, sum_y, sum_yx;
    ptrdiff_t k;
    SFX(row_partial)(x, y, n, a, b, stored, work, &row);
    log_s = log1p(row.r);
    for (k = 0; gy && k < n; k += FX_PART)
        SFX(dense_sums_part)(x + k, y + k, n - k < FX_PART ? n - k : FX_PART, row.m, a, b,
                             scale * a, log_s, gy + k, &sum_y, &sum_yx);
    if (stored)
        for (k = 0; k < n; k += FX_PART)
            SFX(grad_finish)(g + k, y + k, n - k < FX_PART ? n - k : FX_PART, a, b, work + k / CHUNK,
                             row.m, scale, row.sy, row.r);
    else if (g)
        SFX(dense_grad_part)(x, y, n, row.m, a, b, scale, row.sy, row.r, g);
    return fx_dense_loss(row.sy, log_s, row.syx);
}

static void SFX(exp_array)(const T *in, T *out, ptrdiff_t n)
{
    const ptrdiff_t full = n - n % VL;
    ptrdiff_t j;
    for (j = 0; j < full; j += VL)
        VOP(store)(out + j, VOP(exp_nonpos)(VOP(load)(in + j)));
    if (j < n)
        VOP(store_part)(out + j, n - j, VOP(exp_nonpos)(VOP(load_part)(in + j, n - j, 0)));
}

static void SFX(log1p_array)(const T *in, T *out, ptrdiff_t n)
{
    const ptrdiff_t full = n - n % VL;
    ptrdiff_t j;
    for (j = 0; j < full; j += VL)
        VOP(store)(out + j, VOP(log1p_nonneg)(VOP(load)(in + j)));
    if (j < n)
        VOP(store_part)(out + j, n - j, VOP(log1p_nonneg)(VOP(load_part)(in + j, n - j, 0)));
}

/* ---- rows in lanes ------------------------------------------------------------------ */

/* cols[j] lane i = x[i * xs + j] for j < n, i < VL. cols has room for max(n, VL) vectors
   (FX_BLOCK_COLS >= VL):
   each tile is transposed where it lands; an overlapping last tile reloads the columns it
   shares with the tile before it, with the same values. */
static FX_ALWAYS_INLINE void SFX(load_columns)(const T *x, ptrdiff_t xs, ptrdiff_t n, V *cols)
{
    ptrdiff_t i, tile;
    if (n < VL) {
        for (i = 0; i < VL; ++i)
            cols[i] = VOP(load_part)(x + i * xs, n, 0);
        VOP(transpose)(cols);
        return;
    }
    for (tile = 0; tile < n; tile += VL) {
        const ptrdiff_t at = tile + VL <= n ? tile : n - VL;
        for (i = 0; i < VL; ++i)
            cols[at + i] = VOP(load)(x + i * xs + at);
        VOP(transpose)(cols + at);
    }
}

/* g[i * gs + j] = cols[j] lane i; an overlapping last tile writes the same values twice */
static FX_ALWAYS_INLINE void SFX(store_columns)(T *g, ptrdiff_t gs, ptrdiff_t n, const V *cols)
{
    V r[VL];
    ptrdiff_t i, j, tile;
    if (n < VL) {
        for (j = 0; j < VL; ++j)
            r[j] = j < n ? cols[j] : VOP(set1)((T)0);
        VOP(transpose)(r);
        for (i = 0; i < VL; ++i)
            VOP(store_part)(g + i * gs, n, r[i]);
        return;
    }
    for (tile = 0; tile < n; tile += VL) {
        const ptrdiff_t at = tile + VL <= n ? tile : n - VL;
        for (j = 0; j < VL; ++j)
            r[j] = cols[at + j];
        VOP(transpose)(r);
        for (i = 0; i < VL; ++i)
            VOP(store)(g + i * gs + at, r[i]);
    }
}

/* per-row numbers of a block as lanes */
static FX_ALWAYS_INLINE V SFX(lanes_of)(const double *v, ptrdiff_t step)
{
    T t[VL];
    ptrdiff_t i;
    if (step == 0)
        return VOP(set1)((T)v[0]);
    for (i = 0; i < VL; ++i)
        t[i] = (T)v[i * step];
    return VOP(load)(t);
}

static FX_ALWAYS_INLINE void SFX(store_lanes)(T *out, ptrdiff_t step, V v)
{
    T t[VL];
    ptrdiff_t i;
    if (step == 1) {
        VOP(store)(out, v);
        return;
    }
    VOP(store)(t, v);
    for (i = 0; i < VL; ++i)
        out[i * step] = t[i];
}

/* max m, r = sum(exp(x - m)) - 1 with ties apart; e[j] keeps the exps. Two accumulators
   each, so that a block's chain of dependent operations stays short and consecutive
   blocks overlap. */
static FX_ALWAYS_INLINE void SFX(block_normalizer)(const V *x, ptrdiff_t n, V *e, V *m_out,
                                                   V *r_out)
{
    const V zero = VOP(set1)((T)0), one = VOP(set1)((T)1);
    V m = x[0], m1 = x[0], s0 = zero, s1 = zero, below0 = zero, below1 = zero;
    ptrdiff_t j;
    for (j = 1; j + 1 < n; j += 2) {
        m = VOP(max)(m, x[j]);
        m1 = VOP(max)(m1, x[j + 1]);
    }
    if (j < n)
        m = VOP(max)(m, x[j]);
    m = VOP(max)(m, m1);
    for (j = 0; j + 1 < n; j += 2) {
        const V d0 = VOP(sub)(x[j], m), d1 = VOP(sub)(x[j + 1], m);
        const M under0 = VOP(neq)(d0, zero), under1 = VOP(neq)(d1, zero);
        e[j] = VOP(exp_nonpos)(d0);
        e[j + 1] = VOP(exp_nonpos)(d1);
        s0 = VOP(add_if)(under0, s0, e[j]);
        s1 = VOP(add_if)(under1, s1, e[j + 1]);
        below0 = VOP(add_if)(under0, below0, one);
        below1 = VOP(add_if)(under1, below1, one);
    }
    if (j < n) {
        const V d0 = VOP(sub)(x[j], m);
        const M under0 = VOP(neq)(d0, zero);
        e[j] = VOP(exp_nonpos)(d0);
        s0 = VOP(add_if)(under0, s0, e[j]);
        below0 = VOP(add_if)(under0, below0, one);
    }
    *m_out = m;
    /* the ties are the n - below entries at the max */
    *r_out = VOP(add)(VOP(add)(s0, s1), VOP(sub)(VOP(set1)((T)(n - 1)), VOP(add)(below0, below1)));
}

/* The target logits are read, and the target gradients written, row by row with scalar
   accesses: that leaves the vector units to the columns. */
static void SFX(sparse_block)(const T *x, ptrdiff_t xs, ptrdiff_t n, const int64_t *t,
                              const double *scale, ptrdiff_t scale_step, T *g, ptrdiff_t gs,
                              T *loss, ptrdiff_t ls)
{
    const V one = VOP(set1)((T)1);
    V cols[FX_BLOCK_COLS], e[FX_BLOCK_COLS], m, r, xt;
    T targets[VL], bad[VL];
    ptrdiff_t i, j;
    /* a label outside [0, n) makes its row NaN: xt, and the gradient through `bad` */
    for (i = 0; i < VL; ++i) {
        const int ok = (uint64_t)t[i] < (uint64_t)n;
        const T v = x[i * xs + (ok ? t[i] : 0)];
        targets[i] = ok ? v : (T)NAN;
        bad[i] = ok ? (T)0 : (T)NAN;
    }
    xt = VOP(load)(targets);
    SFX(load_columns)(x, xs, n, cols);
    SFX(block_normalizer)(cols, n, e, &m, &r);
    SFX(store_lanes)(loss, ls, VOP(add)(VOP(log1p_nonneg)(r), VOP(sub)(m, xt)));
    if (g) {
        const V sc = SFX(lanes_of)(scale, scale_step);
        const V inv = VOP(add)(VOP(div)(sc, VOP(add)(one, r)), VOP(load)(bad));
        /* p_t - 1, exact when the target is the max */
        const V target = VOP(select)(
            VOP(eq)(xt, m), VOP(mul)(VOP(sub)(VOP(set1)((T)0), sc), VOP(div)(r, VOP(add)(one, r))),
            VOP(sub)(VOP(mul)(VOP(exp_nonpos)(VOP(sub)(xt, m)), inv), sc));
        for (j = 0; j < n; ++j)
            cols[j] = VOP(mul)(e[j], inv);
        SFX(store_columns)(g, gs, n, cols);
        VOP(store)(targets, target);
        for (i = 0; i < VL; ++i)
            if ((uint64_t)t[i] < (uint64_t)n)
                g[i * gs + t[i]] = targets[i];
    }
}

static void SFX(dense_block)(const T *x, ptrdiff_t xs, const T *y, ptrdiff_t ys, ptrdiff_t n,
                             double a, double b, const double *scale, ptrdiff_t scale_step,
                             T *g, ptrdiff_t gs, T *gy, ptrdiff_t gys, T *loss, ptrdiff_t ls)
{
    const V zero = VOP(set1)((T)0), one = VOP(set1)((T)1);
    const V va = VOP(set1)((T)a), vb = VOP(set1)((T)b);
    V cols[FX_BLOCK_COLS], ycols[FX_BLOCK_COLS], e[FX_BLOCK_COLS], m, r, log_s;
    V sy = zero, syx = zero;
    ptrdiff_t j;
    SFX(load_columns)(x, xs, n, cols);
    SFX(load_columns)(y, ys, n, ycols);
    SFX(block_normalizer)(cols, n, e, &m, &r);
    for (j = 0; j < n; ++j) {
        ycols[j] = VOP(fmadd)(va, ycols[j], vb);
        sy = VOP(add)(sy, ycols[j]);
        syx = VOP(add)(syx, VOP(keep)(VOP(neq)(ycols[j], zero), VOP(mul)(ycols[j], VOP(sub)(cols[j], m))));
    }
    log_s = VOP(log1p_nonneg)(r);
    SFX(store_lanes)(loss, ls, VOP(sub)(VOP(mul)(sy, log_s), syx));
    if (gy) {
        const V gscale = VOP(mul)(SFX(lanes_of)(scale, scale_step), va);
        V out[FX_BLOCK_COLS];
        for (j = 0; j < n; ++j)
            out[j] = VOP(mul)(gscale, VOP(sub)(log_s, VOP(sub)(cols[j], m)));
        SFX(store_columns)(gy, gys, n, out);
    }
    if (g) {
        /* fx_dense_grad_coefs, lane by lane */
        const V sc = SFX(lanes_of)(scale, scale_step), one_r = VOP(add)(one, r);
        const M dominant = VOP(lt)(r, one);
        const V ca = VOP(select)(dominant, sy, VOP(div)(sy, one_r));
        const V cb = VOP(keep)(dominant, VOP(mul)(VOP(div)(VOP(sub)(zero, r), one_r), sy));
        for (j = 0; j < n; ++j)
            cols[j] = EXACT_GRAD(e[j], VOP(sub)(zero, ycols[j]), ca, cb, sc);
        SFX(store_columns)(g, gs, n, cols);
    }
}

#undef FLUSH
#undef EXACT_GRAD
#undef CHUNK_STEP
#undef LINE
