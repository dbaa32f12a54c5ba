/* The kernel families, written once over fx_simd.h; included by fx_kernels.c once per
 * storage kind. Needs:
 *   S                   the element type of the arrays in memory
 *   T, V, M, CNT, VL    the compute type (float for the half kinds) and its vector, mask and
 *                       counter types and lanes; VOP(op), MOP(op), COP(op) their operations
 *   SFX(name)           the kind's name suffix (_f32, _f64, _f16, _bf16)
 *   SLOAD(p), SLOAD_PART(p, n, pad), SSTORE(p, v), SSTORE_PART(p, n, v)
 *                       VL elements of S as a V and back, converted in registers
 *   S_TO_T(s), T_TO_S(t) one element
 *   EXPS_IN_PLACE       1 when S is T: a row's exps are kept in its gradient until they are
 *                       scaled; 0: in the work space, in T (a half would round them twice)
 *   CHUNK               elements of a row reduced at a time (divides FX_PART)
 *   ADD_WIDE(acc, v)    a vd accumulator plus the lanes of a V
 *   FX_BLOCK_COLS       the most classes of rows in lanes (their columns live on the stack)
 *
 * Row kernels, for long rows, one part (<= FX_PART entries) at a time, chunk by chunk:
 *   1. the chunk's max (read from memory: the only read that leaves the cache);
 *   2. one pass over the chunk, from L1: r = sum(exp(x - max)) - 1 over the entries below
 *      the max, ties counted apart (so that r keeps its relative precision when tiny),
 *      float lanes added into double lanes every FLUSH vectors; dense labels y' = a y + b add
 *      sum(y') and sum over y' != 0 of y' (x - max); with a gradient, exp(x - max) is
 *      stored; meanwhile the next chunk is prefetched, so that memory streams while the exps
 *      are computed.
 * Chunks and parts combine with fx_combine_partial (the log-sum-exp rule); a row's
 * gradient is then finished from the stored exps, a chunk at a time:
 * g = e * p_scale * exp(max_chunk - m). Rows split over threads run these same part
 * functions, so the bits do not depend on the thread count.
 *
 * Row batches, for rows of up to a few thousand classes: VL rows, each read along its row
 * as above but whole (no chunks), with the work that a row kernel does once per row done
 * for the VL rows together in vector lanes: the rows' maxes and sums reduced across lanes
 * by one transpose each, one vector log1p, one vector of target gradients. The rows' maxes
 * are found first, for the whole batch, so that no row waits on its own reduction; the
 * next batch is prefetched while the exps are computed.
 *
 * Rows in lanes, for short rows: a block of VL rows is loaded row-wise and turned into
 * column vectors by an in-register transpose, VL columns at a time (the last tile overlaps
 * the one before it, or is a partial load when the row is shorter than VL), so that max,
 * exp, sums and log are vertical operations: lane i is row i. The gradient goes back the
 * same way.
 *
 * Both block families take the number of rows of their block, 1 to VL (a call's last block
 * may be partial): the lanes past them repeat the last row (a row batch copies its sums
 * rather than computing them again) and nothing of theirs is written. A row's lane is
 * computed as in a full block, so its bits never depend on the other rows of the call.
 */

#define FLUSH 16

/* ---- row kernels --------------------------------------------------------------------- */

/* The largest lane of each position: a row's max before the lanes are reduced. */
static FX_ALWAYS_INLINE V SFX(lane_max_of)(const S *x, ptrdiff_t n)
{
    const V neg_inf = VOP(set1)((T)-INFINITY);
    const ptrdiff_t full = n - n % VL;
    V a0 = neg_inf, a1 = neg_inf, a2 = neg_inf, a3 = neg_inf;
    ptrdiff_t j = 0;
    for (; j + 4 * VL <= full; j += 4 * VL) {
        a0 = VOP(max)(a0, SLOAD(x + j));
        a1 = VOP(max)(a1, SLOAD(x + j + VL));
        a2 = VOP(max)(a2, SLOAD(x + j + 2 * VL));
        a3 = VOP(max)(a3, SLOAD(x + j + 3 * VL));
    }
    for (; j < full; j += VL)
        a0 = VOP(max)(a0, SLOAD(x + j));
    if (j < n)
        a1 = VOP(max)(a1, SLOAD_PART(x + j, n - j, (T)-INFINITY));
    return VOP(max)(VOP(max)(a0, a1), VOP(max)(a2, a3));
}

static FX_ALWAYS_INLINE T SFX(max_of)(const S *x, ptrdiff_t n)
{
    return VOP(hmax)(SFX(lane_max_of)(x, n));
}

/* Elements per step of the chunk pass: a 64-byte cache line of T, or one vector if wider. */
#define LINE (64 / (ptrdiff_t)sizeof(T) > VL ? 64 / (ptrdiff_t)sizeof(T) : VL)

/* One step of a pass over the VL entries X at x[j] (chunk_pass, batch_row_pass). */
#define PASS_STEP(X, Y, E, S_, SY, SYX, COUNT)                                            \
    do {                                                                                  \
        const V d_ = VOP(sub)(X, vm);                                                     \
        const M below_ = VOP(neq)(d_, zero);                                              \
        const V e_ = VOP(exp_nonpos)(d_);                                                 \
        S_ = VOP(add_if)(below_, S_, e_);                                                 \
        COUNT = COP(add)(COUNT, below_);                                                  \
        if (e)                                                                            \
            E;                                                                            \
        if (y) {                                                                          \
            const V y_ = Y;                                                               \
            SY = VOP(add)(SY, y_);                                                        \
            SYX = VOP(add)(SYX, VOP(keep)(VOP(neq)(y_, zero), VOP(mul)(y_, d_)));         \
        }                                                                                 \
    } while (0)

/* The partial of one chunk (n <= CHUNK). y and e may be NULL: the inlined copies are
   specialized on that. e receives exp(x - max). `ahead` is how far ahead to prefetch. A
   chunk with no entry above -inf (or whose max is NaN) has m = -inf and its dense sums
   relative to 0. */
static FX_ALWAYS_INLINE void SFX(chunk_pass)(const S *x, const S *y, ptrdiff_t n, T a, T b,
                                             T *e, ptrdiff_t ahead, fx_partial *out)
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
            if (e)
                FX_PREFETCH_W(e + j + ahead);
            for (k = j; k < j + LINE; k += VL)
                PASS_STEP(SLOAD(x + k), VOP(fmadd)(va, SLOAD(y + k), vb),
                          VOP(store)(e + k, e_), s0, sy0, syx0, below);
        }
        for (; j < end; j += VL)
            PASS_STEP(SLOAD(x + j), VOP(fmadd)(va, SLOAD(y + j), vb),
                      VOP(store)(e + j, e_), s0, sy0, syx0, below);
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
        PASS_STEP(SLOAD_PART(x + j, n - j, (T)-INFINITY),
                  VOP(keep)(real, VOP(fmadd)(va, SLOAD_PART(y + j, n - j, 0), vb)),
                  VOP(store_part)(e + j, n - j, e_), s0, sy0, syx0, below);
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

static FX_ALWAYS_INLINE void SFX(part_pass)(const S *x, const S *y, ptrdiff_t n, double a,
                                            double b, T *e, double *chunk_max, fx_partial *out)
{
    ptrdiff_t k;
    fx_partial_empty(out);
    for (k = 0; k < n; k += CHUNK) {
        const ptrdiff_t len = n - k < CHUNK ? n - k : CHUNK;
        fx_partial chunk;
        SFX(chunk_pass)(x + k, y ? y + k : NULL, len, (T)a, (T)b, e ? e + k : NULL, len, &chunk);
        if (e)
            chunk_max[k / CHUNK] = chunk.m;
        fx_combine_partial(out, &chunk);
    }
}

/* The partial of up to FX_PART entries of a row: the specializations of part_pass. */
static void SFX(part)(const void *xv, const void *yv, ptrdiff_t n, double a, double b, void *ev,
                      double *chunk_max, fx_partial *out)
{
    const S *x = (const S *)xv, *y = (const S *)yv;
    T *e = (T *)ev;
    if (y && e)
        SFX(part_pass)(x, y, n, a, b, e, chunk_max, out);
    else if (y)
        SFX(part_pass)(x, y, n, a, b, NULL, NULL, out);
    else if (e)
        SFX(part_pass)(x, NULL, n, 0, 0, e, chunk_max, out);
    else
        SFX(part_pass)(x, NULL, n, 0, 0, NULL, NULL, out);
}

/* The dense gradient scale ((ca e - y') + cb e) of fx_dense_grad_coefs; NY is -y', formed
   directly from the labels. */
#define EXACT_GRAD(E, NY, VCA, VCB, VS) VOP(mul)(VOP(fmadd)(VCB, E, VOP(fmadd)(VCA, E, NY)), VS)

/* The gradient of a part from the exps e that part() stored, relative to their chunk's max
   (EXACT_GRAD); without labels e * scale * total / (1 + r) * exp(max_chunk - m). e may be g
   (EXPS_IN_PLACE). */
static void SFX(grad_finish)(void *gv, const void *ev, const void *yv, ptrdiff_t n, double a,
                             double b, const double *chunk_max, double m, double scale,
                             double total, double r)
{
    S *g = (S *)gv;
    const T *e = (const T *)ev;
    const S *y = (const S *)yv;
    const V vna = VOP(set1)((T)-a), vnb = VOP(set1)((T)-b);
    const V vs = VOP(set1)((T)scale);
    const double p_scale = scale * total / (1.0 + r);
    double ca, cb;
    V vca, vcb;
    ptrdiff_t k, j;
    fx_dense_grad_coefs(total, r, &ca, &cb);
    vca = VOP(set1)((T)ca);
    vcb = VOP(set1)((T)cb);
    for (k = 0; k < n; k += CHUNK) {
        const ptrdiff_t len = n - k < CHUNK ? n - k : CHUNK, full = len - len % VL;
        const double shift = chunk_max[k / CHUNK] == m ? 1.0 : exp(chunk_max[k / CHUNK] - m);
        S *gc = g + k;
        const T *ec = e + k;
        if (y) {
            const S *yc = y + k;
            const V f = VOP(set1)((T)shift);
            if (shift == 1.0) {
                for (j = 0; j < full; j += VL)
                    SSTORE(gc + j, EXACT_GRAD(VOP(load)(ec + j), VOP(fmadd)(vna, SLOAD(yc + j), vnb),
                                              vca, vcb, vs));
            } else {
                for (j = 0; j < full; j += VL)
                    SSTORE(gc + j, EXACT_GRAD(VOP(mul)(VOP(load)(ec + j), f),
                                              VOP(fmadd)(vna, SLOAD(yc + j), vnb), vca, vcb, vs));
            }
            if (j < len)
                SSTORE_PART(gc + j, len - j,
                            EXACT_GRAD(VOP(mul)(VOP(load_part)(ec + j, len - j, 0), f),
                                       VOP(fmadd)(vna, SLOAD_PART(yc + j, len - j, 0), vnb),
                                       vca, vcb, vs));
        } else {
            const V f = VOP(set1)((T)(shift == 1.0 ? p_scale : p_scale * shift));
            for (j = 0; j < full; j += VL)
                SSTORE(gc + j, VOP(mul)(VOP(load)(ec + j), f));
            if (j < len)
                SSTORE_PART(gc + j, len - j, VOP(mul)(VOP(load_part)(ec + j, len - j, 0), f));
        }
    }
}

/* g = exp(x - m) * inv, given the whole row's m; g may be x (a class-axis block). */
static void SFX(sparse_grad_part)(const void *xv, ptrdiff_t n, double m, double inv, void *gv)
{
    const S *x = (const S *)xv;
    S *g = (S *)gv;
    const V vm = VOP(set1)((T)m), vinv = VOP(set1)((T)inv);
    const ptrdiff_t full = n - n % VL;
    ptrdiff_t j;
    for (j = 0; j < full; j += VL)
        SSTORE(g + j, VOP(mul)(VOP(exp_nonpos)(VOP(sub)(SLOAD(x + j), vm)), vinv));
    if (j < n)
        SSTORE_PART(g + j, n - j,
                    VOP(mul)(VOP(exp_nonpos)(VOP(sub)(SLOAD_PART(x + j, n - j, 0), vm)), vinv));
}

/* Given the whole row's m: sum(y') and sum over y' != 0 of y' (x - m), y' = a y + b;
   gy (if given) = gy_scale * (log_s + (m - x)), the labels' gradient. */
static void SFX(dense_sums_part)(const void *xv, const void *yv, ptrdiff_t n, double m,
                                 double a, double b, double gy_scale, double log_s, void *gyv,
                                 double *sum_y, double *sum_yx)
{
    const S *x = (const S *)xv, *y = (const S *)yv;
    S *gy = (S *)gyv;
    const V vm = VOP(set1)((T)m), va = VOP(set1)((T)a), vb = VOP(set1)((T)b);
    const V zero = VOP(set1)((T)0), vls = VOP(set1)((T)log_s), vgs = VOP(set1)((T)gy_scale);
    const ptrdiff_t full = n - n % VL;
    double total_y = 0.0, total_yx = 0.0;
    ptrdiff_t j = 0;
    while (j < n) {
        const ptrdiff_t end = j + FLUSH * VL < full ? j + FLUSH * VL : full;
        V sy = zero, syx = zero;
        for (; j < end; j += VL) {
            const V diff = VOP(sub)(SLOAD(x + j), vm);
            const V yj = VOP(fmadd)(va, SLOAD(y + j), vb);
            sy = VOP(add)(sy, yj);
            syx = VOP(add)(syx, VOP(keep)(VOP(neq)(yj, zero), VOP(mul)(yj, diff)));
            if (gy)
                SSTORE(gy + j, VOP(mul)(vgs, VOP(sub)(vls, diff)));
        }
        if (j == full && j < n) {
            const M real = MOP(first)(n - j);
            const V diff = VOP(sub)(SLOAD_PART(x + j, n - j, 0), vm);
            const V yj = VOP(keep)(real, VOP(fmadd)(va, SLOAD_PART(y + j, n - j, 0), vb));
            sy = VOP(add)(sy, yj);
            syx = VOP(add)(syx, VOP(keep)(VOP(neq)(yj, zero), VOP(mul)(yj, diff)));
            if (gy)
                SSTORE_PART(gy + j, n - j, VOP(mul)(vgs, VOP(sub)(vls, diff)));
            j = n;
        }
        total_y += VOP(hsum_d)(sy);
        total_yx += VOP(hsum_d)(syx);
    }
    *sum_y = total_y;
    *sum_yx = total_yx;
}

/* The gradient EXACT_GRAD given the whole row's m; g may be x. */
static void SFX(dense_grad_part)(const void *xv, const void *yv, ptrdiff_t n, double m, double a,
                                 double b, double scale, double total, double r, void *gv)
{
    const S *x = (const S *)xv, *y = (const S *)yv;
    S *g = (S *)gv;
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
        const V ny = VOP(fmadd)(vna, SLOAD(y + j), vnb);
        const V e = VOP(exp_nonpos)(VOP(sub)(SLOAD(x + j), vm));
        SSTORE(g + j, EXACT_GRAD(e, ny, vca, vcb, vs));
    }
    if (j < n) {
        const V ny = VOP(fmadd)(vna, SLOAD_PART(y + j, n - j, 0), vnb);
        const V e = VOP(exp_nonpos)(VOP(sub)(SLOAD_PART(x + j, n - j, 0), vm));
        SSTORE_PART(g + j, n - j, EXACT_GRAD(e, ny, vca, vcb, vs));
    }
}

static void SFX(fill_nan)(S *row, ptrdiff_t n)
{
    ptrdiff_t j;
    if (row)
        for (j = 0; j < n; ++j)
            row[j] = T_TO_S((T)NAN);
}

/* Where a row kernel keeps a row's exps: in the gradient itself, or after the chunks'
   maxes in the work space. */
static FX_ALWAYS_INLINE T *SFX(exps_of)(S *g, double *work, ptrdiff_t n)
{
    if (!g)
        return NULL;
    return EXPS_IN_PLACE ? (T *)(void *)g : (T *)(void *)(work + fx_work_maxes(n));
}

/* A whole row's partial, part by part in order. */
static FX_ALWAYS_INLINE void SFX(row_partial)(const S *x, const S *y, ptrdiff_t n, double a,
                                              double b, T *e, double *chunk_max,
                                              fx_partial *row)
{
    ptrdiff_t k;
    fx_partial_empty(row);
    for (k = 0; k < n; k += FX_PART) {
        fx_partial part;
        SFX(part)(x + k, y ? y + k : NULL, n - k < FX_PART ? n - k : FX_PART, a, b,
                  e ? e + k : NULL, e ? chunk_max + k / CHUNK : NULL, &part);
        fx_combine_partial(row, &part);
    }
    fx_partial_finish(row);
}

/* The generalized sparse row (every option of the integer labels is a coefficient of it):
   loss = c (lse - x_t) + sum_j y'_j (lse - x_j) and gradient
   scale ((c + sum y') p - c onehot_t - y'), with the spread y' = a u + b over the classes
   (none where u is NULL; the plain row is c = 1 without a spread). The spread rides in the
   dense labels' place of the one pass, so it is of the storage kind (the callers pass none
   for the half kinds); the target entry is written last, exactly when it is the max. */
static FX_ALWAYS_INLINE double SFX(sparse_row_with)(const S *x, ptrdiff_t n, ptrdiff_t t,
                                                   double c, const S *u, double a, double b,
                                                   double scale, S *g, double *work)
{
    T *e = SFX(exps_of)(g, work, n);
    fx_partial row;
    double xt, loss;
    ptrdiff_t k;
    if (t < 0 || t >= n) {
        SFX(fill_nan)(g, n);
        return NAN;
    }
    xt = (double)S_TO_T(x[t]);   /* before g, which may be x, is written */
    SFX(row_partial)(x, u, n, a, b, e, work, &row);
    loss = c * fx_sparse_loss(row.m, row.r, xt);   /* exact for the plain row's c = 1 */
    if (u)
        loss += fx_dense_loss(row.sy, log1p(row.r), row.syx);
    if (g) {
        double target = fx_sparse_target_grad(row.m, row.r, xt, scale * c);
        for (k = 0; k < n; k += FX_PART)
            SFX(grad_finish)(g + k, e + k, u ? u + k : NULL, n - k < FX_PART ? n - k : FX_PART,
                             a, b, work + k / CHUNK, row.m, scale, c + row.sy, row.r);
        if (u)
            target += scale * (row.sy * exp(xt - row.m) / (1.0 + row.r) -
                               ((T)a * S_TO_T(u[t]) + (T)b));
        g[t] = T_TO_S((T)target);
    }
    return loss;
}

/* Specialized on the spread: the plain row's copy has none of its work inlined. */
static double SFX(sparse_row)(const void *x, ptrdiff_t n, ptrdiff_t t, double c, const void *u,
                              double a, double b, double scale, void *g, double *work)
{
    if (u)
        return SFX(sparse_row_with)((const S *)x, n, t, c, (const S *)u, a, b, scale, (S *)g,
                                    work);
    return SFX(sparse_row_with)((const S *)x, n, t, c, NULL, 0.0, 0.0, scale, (S *)g, work);
}

/* With the labels' gradient the exps are not stored: gy needs the logits, which g may be. */
static double SFX(dense_row)(const void *xv, const void *yv, ptrdiff_t n, double a, double b,
                             double scale, void *gv, void *gyv, double *work)
{
    const S *x = (const S *)xv, *y = (const S *)yv;
    S *g = (S *)gv, *gy = (S *)gyv;
    T *stored = gy ? NULL : SFX(exps_of)(g, work, n);
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
            SFX(grad_finish)(g + k, stored + k, y + k, n - k < FX_PART ? n - k : FX_PART, a, b,
                             work + k / CHUNK, row.m, scale, row.sy, row.r);
    else if (g)
        SFX(dense_grad_part)(x, y, n, row.m, a, b, scale, row.sy, row.r, g);
    return fx_dense_loss(row.sy, log_s, row.syx);
}

/* n values of the compute type (a block's losses) into an array of the kind, step elements
   apart: converted as the kernels convert (in hardware where the ISA has it). */
static void SFX(put)(const void *values, ptrdiff_t n, void *outv, ptrdiff_t step)
{
    const T *v = (const T *)values;
    S *out = (S *)outv;
    ptrdiff_t i;
    for (i = 0; i < n; ++i)
        out[i * step] = T_TO_S(v[i]);
}

/* ---- shared by the block families ---------------------------------------------------- */

/* A block holds `rows` rows (1 to VL: the last block of a call may be partial); the lanes
   past them repeat the last row, and nothing of theirs is written. Each row's lane is
   computed as in a full block, so a row's result never depends on how many rows the call
   has or where the row sits in it. */
#define ROW_OF(i, rows) ((i) < (rows) ? (i) : (rows) - 1)

/* per-row numbers of a block as lanes */
static FX_ALWAYS_INLINE V SFX(lanes_of)(const double *v, ptrdiff_t step, ptrdiff_t rows)
{
    T t[VL];
    ptrdiff_t i;
    if (step == 0)
        return VOP(set1)((T)v[0]);
    for (i = 0; i < VL; ++i)
        t[i] = (T)v[ROW_OF(i, rows) * step];
    return VOP(load)(t);
}

static FX_ALWAYS_INLINE void SFX(store_lanes)(T *out, ptrdiff_t step, V v, ptrdiff_t rows)
{
    T t[VL];
    ptrdiff_t i;
    if (step == 1 && rows == VL) {
        VOP(store)(out, v);
        return;
    }
    VOP(store)(t, v);
    for (i = 0; i < rows; ++i)
        out[i * step] = t[i];
}

/* The target logits of a block's rows as lanes: a label outside [0, n) makes its row NaN,
   through xt and through `bad`, which is added to the gradient's factor. */
static FX_ALWAYS_INLINE V SFX(block_targets)(const S *x, ptrdiff_t xs, ptrdiff_t n,
                                             const int64_t *t, V *bad, ptrdiff_t rows)
{
    T targets[VL], nan_if_bad[VL];
    ptrdiff_t i;
    for (i = 0; i < VL; ++i) {
        const ptrdiff_t k = ROW_OF(i, rows);
        const int ok = (uint64_t)t[k] < (uint64_t)n;
        const T v = S_TO_T(x[k * xs + (ok ? t[k] : 0)]);
        targets[i] = ok ? v : (T)NAN;
        nan_if_bad[i] = ok ? (T)0 : (T)NAN;
    }
    *bad = VOP(load)(nan_if_bad);
    return VOP(load)(targets);
}

/* The sparse target gradient scale (p_t - 1) of a block's rows, exact when the target is
   the max (fx_sparse_target_grad, lane by lane); inv = scale / (1 + r). */
static FX_ALWAYS_INLINE V SFX(block_target_grad)(V xt, V m, V r, V sc, V inv)
{
    const V one = VOP(set1)((T)1), zero = VOP(set1)((T)0);
    return VOP(select)(VOP(eq)(xt, m),
                       VOP(mul)(VOP(sub)(zero, sc), VOP(div)(r, VOP(add)(one, r))),
                       VOP(sub)(VOP(mul)(VOP(exp_nonpos)(VOP(sub)(xt, m)), inv), sc));
}

/* fx_dense_grad_coefs, lane by lane */
static FX_ALWAYS_INLINE void SFX(block_dense_coefs)(V sy, V r, V *ca, V *cb)
{
    const V one_r = VOP(add)(VOP(set1)((T)1), r);
    const M dominant = VOP(lt)(r, VOP(set1)((T)1));
    *ca = VOP(select)(dominant, sy, VOP(div)(sy, one_r));
    *cb = VOP(keep)(dominant, VOP(mul)(VOP(div)(VOP(sub)(VOP(set1)((T)0), r), one_r), sy));
}

/* ---- row batches --------------------------------------------------------------------- */

/* Lane i = the largest lane of v[i], and the sum of v[i]'s lanes (v is overwritten): a
   transpose, then a tree over the vectors, in a fixed order. */
static FX_ALWAYS_INLINE V SFX(lane_maxes)(V *v)
{
    ptrdiff_t k, step;
    VOP(transpose)(v);
    for (step = 1; step < VL; step *= 2)
        for (k = 0; k + step < VL; k += 2 * step)
            v[k] = VOP(max)(v[k], v[k + step]);
    return v[0];
}

static FX_ALWAYS_INLINE V SFX(lane_sums)(V *v)
{
    ptrdiff_t k, step;
    VOP(transpose)(v);
    for (step = 1; step < VL; step *= 2)
        for (k = 0; k + step < VL; k += 2 * step)
            v[k] = VOP(add)(v[k], v[k + step]);
    return v[0];
}

/* One row of a batch given its max vm: per lane, the sum of exp(x - m) below the max, and
   for dense labels y' = a y + b the sums of y' and of y' (x - m) where y' != 0; and the
   number of ties at the max (the lanes taken, pads included, less those below it). e (may be
   NULL: the inlined copies are specialized on that) receives exp(x - m). Float lanes take
   FLUSH vectors each; a longer row's sums go on in double (as a row kernel's do) and come
   back whole in lane 0. The row's entries in the next batch, `ahead` further, are
   prefetched, and with e their exps' place (e_ahead further, when not 0). */
static FX_ALWAYS_INLINE void SFX(batch_row_pass)(const S *x, const S *y, ptrdiff_t n, V vm, V va,
                                                 V vb, T *e, ptrdiff_t ahead, ptrdiff_t y_ahead,
                                                 ptrdiff_t e_ahead, V *sum, T *ties, V *sum_y,
                                                 V *sum_yx)
{
    const V zero = VOP(set1)((T)0);
    const ptrdiff_t full = n - n % VL, group = 2 * FLUSH * VL;
    const int long_row = n > group;
    V s0 = zero, s1 = zero, sy0 = zero, sy1 = zero, sx0 = zero, sx1 = zero;
    vd wide_s = vd_set1(0.0), wide_sy = vd_set1(0.0), wide_sx = vd_set1(0.0);
    CNT count = COP(zero)();
    ptrdiff_t j = 0, lanes = full;
    do {
        const ptrdiff_t end = j + group < full ? j + group : full;
        for (; j + 2 * VL <= end; j += 2 * VL) {
            FX_PREFETCH(x + j + ahead);
            if (y)
                FX_PREFETCH(y + j + y_ahead);
            if (e && e_ahead)
                FX_PREFETCH_W(e + j + e_ahead);
            PASS_STEP(SLOAD(x + j), VOP(fmadd)(va, SLOAD(y + j), vb), VOP(store)(e + j, e_),
                      s0, sy0, sx0, count);
            PASS_STEP(SLOAD(x + j + VL), VOP(fmadd)(va, SLOAD(y + j + VL), vb),
                      VOP(store)(e + j + VL, e_), s1, sy1, sx1, count);
        }
        if (j < end) {
            PASS_STEP(SLOAD(x + j), VOP(fmadd)(va, SLOAD(y + j), vb), VOP(store)(e + j, e_),
                      s0, sy0, sx0, count);
            j += VL;
        }
        if (j == full && j < n) {
            /* -inf pads add exp(-inf) = 0 below the max; the labels' pads are masked */
            const M real = MOP(first)(n - j);
            lanes += VL;
            PASS_STEP(SLOAD_PART(x + j, n - j, (T)-INFINITY),
                      VOP(keep)(real, VOP(fmadd)(va, SLOAD_PART(y + j, n - j, 0), vb)),
                      VOP(store_part)(e + j, n - j, e_), s1, sy1, sx1, count);
            j = n;
        }
        if (long_row) {
            wide_s = ADD_WIDE(wide_s, VOP(add)(s0, s1));
            s0 = s1 = zero;
            if (y) {
                wide_sy = ADD_WIDE(wide_sy, VOP(add)(sy0, sy1));
                wide_sx = ADD_WIDE(wide_sx, VOP(add)(sx0, sx1));
                sy0 = sy1 = sx0 = sx1 = zero;
            }
        }
    } while (j < n);
    *ties = (T)(lanes - COP(total)(count));
    if (long_row) {
        const T whole[3] = {(T)vd_hsum_d(wide_s), (T)vd_hsum_d(wide_sy), (T)vd_hsum_d(wide_sx)};
        *sum = VOP(load_part)(whole, 1, 0);
        if (sum_y) {
            *sum_y = VOP(load_part)(whole + 1, 1, 0);
            *sum_yx = VOP(load_part)(whole + 2, 1, 0);
        }
        return;
    }
    *sum = VOP(add)(s0, s1);
    if (sum_y) {
        *sum_y = VOP(add)(sy0, sy1);
        *sum_yx = VOP(add)(sx0, sx1);
    }
}

/* The maxes of a batch's rows as lanes, from the rows' lane maxes. A row of -inf keeps
   m = -inf: its pass gives NaN, as a row kernel's does. */
static FX_ALWAYS_INLINE V SFX(batch_maxes)(const S *x, ptrdiff_t xs, ptrdiff_t n, T *maxes,
                                           ptrdiff_t rows)
{
    V v[VL], m;
    ptrdiff_t i;
    for (i = 0; i < VL; ++i)
        v[i] = i < rows ? SFX(lane_max_of)(x + i * xs, n) : v[rows - 1];
    m = SFX(lane_maxes)(v);
    VOP(store)(maxes, m);
    return m;
}

/* r = sum(exp(x - m)) - 1 of a batch's rows as lanes: the sums below the max plus the ties,
   less the max itself. */
static FX_ALWAYS_INLINE V SFX(batch_r)(V *sums, const T *ties)
{
    return VOP(add)(SFX(lane_sums)(sums), VOP(sub)(VOP(load)(ties), VOP(set1)((T)1)));
}

/* Where a batch keeps row i's exps: in the gradient, or in the work space. */
static FX_ALWAYS_INLINE T *SFX(batch_exps)(S *g, ptrdiff_t gs, T *work, ptrdiff_t n, ptrdiff_t i)
{
    if (!g)
        return NULL;
    return EXPS_IN_PLACE ? (T *)(void *)(g + i * gs) : work + i * n;
}

static FX_ALWAYS_INLINE void SFX(sparse_batch_of)(const void *xv, ptrdiff_t xs, ptrdiff_t n,
                                                  const int64_t *t, const double *scale,
                                                  ptrdiff_t scale_step, void *gv, ptrdiff_t gs,
                                                  void *lossv, ptrdiff_t ls, void *workv,
                                                  ptrdiff_t rows)
{
    const S *x = (const S *)xv;
    S *g = (S *)gv;
    T *work = (T *)workv;
    const V zero = VOP(set1)((T)0), one = VOP(set1)((T)1);
    V sums[VL], bad, xt, m, r;
    T maxes[VL], ties[VL];
    ptrdiff_t i, j;
    const ptrdiff_t ahead = VL * xs;
    xt = SFX(block_targets)(x, xs, n, t, &bad, rows);   /* before g (maybe x) is written */
    m = SFX(batch_maxes)(x, xs, n, maxes, rows);
    for (i = 0; i < VL; ++i) {
        T *e = SFX(batch_exps)(g, gs, work, n, i);
        if (i >= rows) {
            sums[i] = sums[rows - 1];
            ties[i] = ties[rows - 1];
            continue;
        }
        if (e)
            SFX(batch_row_pass)(x + i * xs, NULL, n, VOP(set1)(maxes[i]), zero, zero, e, ahead,
                                0, EXPS_IN_PLACE ? VL * gs : 0, &sums[i], &ties[i], NULL, NULL);
        else
            SFX(batch_row_pass)(x + i * xs, NULL, n, VOP(set1)(maxes[i]), zero, zero, NULL,
                                ahead, 0, 0, &sums[i], &ties[i], NULL, NULL);
    }
    r = SFX(batch_r)(sums, ties);
    SFX(store_lanes)((T *)lossv, ls, VOP(add)(VOP(log1p_nonneg)(r), VOP(sub)(m, xt)), rows);
    if (g) {
        const V sc = SFX(lanes_of)(scale, scale_step, rows);
        const V inv = VOP(add)(VOP(div)(sc, VOP(add)(one, r)), bad);
        const ptrdiff_t full = n - n % VL;
        T factor[VL], target[VL];
        VOP(store)(factor, inv);
        VOP(store)(target, SFX(block_target_grad)(xt, m, r, sc, inv));
        for (i = 0; i < rows; ++i) {
            S *gr = g + i * gs;
            const T *e = SFX(batch_exps)(g, gs, work, n, i);
            const V f = VOP(set1)(factor[i]);
            for (j = 0; j < full; j += VL)
                SSTORE(gr + j, VOP(mul)(VOP(load)(e + j), f));
            if (j < n)
                SSTORE_PART(gr + j, n - j, VOP(mul)(VOP(load_part)(e + j, n - j, 0), f));
            if ((uint64_t)t[i] < (uint64_t)n)
                gr[t[i]] = T_TO_S(target[i]);
        }
    }
}

/* With the labels' gradient the exps are not kept (as dense_row): the gradients are formed
   from the logits, gy before g, vector by vector, so that g may be x. */
static FX_ALWAYS_INLINE void SFX(dense_batch_of)(const void *xv, ptrdiff_t xs, const void *yv,
                                                 ptrdiff_t ys, ptrdiff_t n, double a, double b,
                                                 const double *scale, ptrdiff_t scale_step,
                                                 void *gv, ptrdiff_t gs, void *gyv,
                                                 ptrdiff_t gys, void *lossv, ptrdiff_t ls,
                                                 void *workv, ptrdiff_t rows)
{
    const S *x = (const S *)xv, *y = (const S *)yv;
    S *g = (S *)gv, *gy = (S *)gyv;
    S *keep_exps = gy ? NULL : g;
    T *work = (T *)workv;
    const V va = VOP(set1)((T)a), vb = VOP(set1)((T)b), vna = VOP(set1)((T)-a),
            vnb = VOP(set1)((T)-b);
    V sums[VL], sy[VL], syx[VL], r, log_s, total, sub_m;
    T maxes[VL], ties[VL];
    ptrdiff_t i, j;
    SFX(batch_maxes)(x, xs, n, maxes, rows);
    for (i = 0; i < VL; ++i) {
        T *e = SFX(batch_exps)(keep_exps, gs, work, n, i);
        if (i >= rows) {
            sums[i] = sums[rows - 1];
            ties[i] = ties[rows - 1];
            sy[i] = sy[rows - 1];
            syx[i] = syx[rows - 1];
            continue;
        }
        if (e)
            SFX(batch_row_pass)(x + i * xs, y + i * ys, n, VOP(set1)(maxes[i]), va, vb, e,
                                VL * xs, ys, EXPS_IN_PLACE ? VL * gs : 0, &sums[i],
                                &ties[i], &sy[i], &syx[i]);
        else
            SFX(batch_row_pass)(x + i * xs, y + i * ys, n, VOP(set1)(maxes[i]), va, vb, NULL,
                                VL * xs, ys, 0, &sums[i], &ties[i], &sy[i], &syx[i]);
    }
    r = SFX(batch_r)(sums, ties);
    total = SFX(lane_sums)(sy);
    sub_m = SFX(lane_sums)(syx);
    log_s = VOP(log1p_nonneg)(r);
    SFX(store_lanes)((T *)lossv, ls, VOP(sub)(VOP(mul)(total, log_s), sub_m), rows);
    if (g || gy) {
        const V sc = SFX(lanes_of)(scale, scale_step, rows);
        const ptrdiff_t full = n - n % VL;
        T ca_[VL], cb_[VL], sc_[VL], gys_[VL], ls_[VL];
        V ca, cb;
        SFX(block_dense_coefs)(total, r, &ca, &cb);
        VOP(store)(ca_, ca);
        VOP(store)(cb_, cb);
        VOP(store)(sc_, sc);
        VOP(store)(gys_, VOP(mul)(sc, va));
        VOP(store)(ls_, log_s);
        for (i = 0; i < rows; ++i) {
            const S *xr = x + i * xs, *yr = y + i * ys;
            S *gr = g ? g + i * gs : NULL, *gyr = gy ? gy + i * gys : NULL;
            const T *e = SFX(batch_exps)(keep_exps, gs, work, n, i);
            const V vca = VOP(set1)(ca_[i]), vcb = VOP(set1)(cb_[i]), vs = VOP(set1)(sc_[i]);
            const V vm = VOP(set1)(maxes[i]), vls = VOP(set1)(ls_[i]), vgs = VOP(set1)(gys_[i]);
            for (j = 0; j < full; j += VL) {
                const V ny = VOP(fmadd)(vna, SLOAD(yr + j), vnb);
                if (gyr) {
                    const V d = VOP(sub)(SLOAD(xr + j), vm);
                    SSTORE(gyr + j, VOP(mul)(vgs, VOP(sub)(vls, d)));
                    if (gr)
                        SSTORE(gr + j, EXACT_GRAD(VOP(exp_nonpos)(d), ny, vca, vcb, vs));
                } else {
                    SSTORE(gr + j, EXACT_GRAD(VOP(load)(e + j), ny, vca, vcb, vs));
                }
            }
            if (j < n) {
                const ptrdiff_t left = n - j;
                const V ny = VOP(fmadd)(vna, SLOAD_PART(yr + j, left, 0), vnb);
                if (gyr) {
                    const V d = VOP(sub)(SLOAD_PART(xr + j, left, 0), vm);
                    SSTORE_PART(gyr + j, left, VOP(mul)(vgs, VOP(sub)(vls, d)));
                    if (gr)
                        SSTORE_PART(gr + j, left, EXACT_GRAD(VOP(exp_nonpos)(d), ny, vca, vcb, vs));
                } else {
                    SSTORE_PART(gr + j, left,
                                EXACT_GRAD(VOP(load_part)(e + j, left, 0), ny, vca, vcb, vs));
                }
            }
        }
    }
}

/* ---- rows in lanes ------------------------------------------------------------------- */

/* cols[j] lane i = x[i * xs + j] for j < n, i < VL. cols has room for max(n, VL) vectors
   (FX_BLOCK_COLS >= VL): contiguous rows of two are deinterleaved; otherwise each tile is
   transposed where it lands; an overlapping last tile
   reloads the columns it shares with the tile before it, with the same values. Rows of a
   vector's width or more prefetch the next block's (VL rows further). */
static FX_ALWAYS_INLINE void SFX(load_columns)(const S *x, ptrdiff_t xs, ptrdiff_t n, V *cols,
                                               ptrdiff_t rows)
{
    const S *next = x + VL * xs;
    ptrdiff_t i, tile;
    if (n == 2 && xs == 2 && rows == VL) {   /* contiguous pairs: two loads, a deinterleave */
        VOP(deinterleave)(SLOAD(x), SLOAD(x + VL), &cols[0], &cols[1]);
        return;
    }
    if (n < VL) {
        for (i = 0; i < VL; ++i)
            cols[i] = SLOAD_PART(x + ROW_OF(i, rows) * xs, n, 0);
        VOP(transpose)(cols);
        return;
    }
    for (tile = 0; tile < n; tile += VL) {
        const ptrdiff_t at = tile + VL <= n ? tile : n - VL;
        for (i = 0; i < VL; ++i) {
            FX_PREFETCH(next + i * xs + at);
            cols[at + i] = SLOAD(x + ROW_OF(i, rows) * xs + at);
        }
        VOP(transpose)(cols + at);
    }
}

/* g[i * gs + j] = cols[j] lane i (contiguous rows of two interleaved); an overlapping last
   tile writes the same values twice.
   Rows of a vector's width or more prefetch the next block's for writing. */
static FX_ALWAYS_INLINE void SFX(store_columns)(S *g, ptrdiff_t gs, ptrdiff_t n, const V *cols,
                                                ptrdiff_t rows)
{
    S *next = g + VL * gs;
    V r[VL];
    ptrdiff_t i, j, tile;
    if (n == 2 && gs == 2 && rows == VL) {
        V first, second;
        VOP(interleave)(cols[0], cols[1], &first, &second);
        SSTORE(g, first);
        SSTORE(g + VL, second);
        return;
    }
    if (n < VL) {
        for (j = 0; j < VL; ++j)
            r[j] = j < n ? cols[j] : VOP(set1)((T)0);
        VOP(transpose)(r);
        for (i = 0; i < rows; ++i)
            SSTORE_PART(g + i * gs, n, r[i]);
        return;
    }
    for (tile = 0; tile < n; tile += VL) {
        const ptrdiff_t at = tile + VL <= n ? tile : n - VL;
        for (j = 0; j < VL; ++j)
            r[j] = cols[at + j];
        VOP(transpose)(r);
        for (i = 0; i < rows; ++i) {
            FX_PREFETCH_W(next + i * gs + at);
            SSTORE(g + i * gs + at, r[i]);
        }
    }
}

/* max m, r = sum(exp(x - m)) - 1 with ties apart; e[j] keeps the exps. Two accumulators
   each, so that a block's chain of dependent operations stays short and consecutive
   blocks overlap. */
static FX_ALWAYS_INLINE void SFX(lanes_normalizer)(const V *x, ptrdiff_t n, V *e, V *m_out,
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
static FX_ALWAYS_INLINE void SFX(sparse_lanes_of)(const void *xv, ptrdiff_t xs, ptrdiff_t n,
                                                  const int64_t *t, const double *scale,
                                                  ptrdiff_t scale_step, void *gv, ptrdiff_t gs,
                                                  void *lossv, ptrdiff_t ls, void *work,
                                                  ptrdiff_t rows)
{
    const S *x = (const S *)xv;
    S *g = (S *)gv;
    const V one = VOP(set1)((T)1);
    V cols[FX_BLOCK_COLS], e[FX_BLOCK_COLS], m, r, xt, bad;
    ptrdiff_t i, j;
    (void)work;
    xt = SFX(block_targets)(x, xs, n, t, &bad, rows);
    SFX(load_columns)(x, xs, n, cols, rows);
    SFX(lanes_normalizer)(cols, n, e, &m, &r);
    SFX(store_lanes)((T *)lossv, ls, VOP(add)(VOP(log1p_nonneg)(r), VOP(sub)(m, xt)), rows);
    if (g) {
        const V sc = SFX(lanes_of)(scale, scale_step, rows);
        const V inv = VOP(add)(VOP(div)(sc, VOP(add)(one, r)), bad);
        T target[VL];
        VOP(store)(target, SFX(block_target_grad)(xt, m, r, sc, inv));
        for (j = 0; j < n; ++j)
            cols[j] = VOP(mul)(e[j], inv);
        SFX(store_columns)(g, gs, n, cols, rows);
        for (i = 0; i < rows; ++i)
            if ((uint64_t)t[i] < (uint64_t)n)
                g[i * gs + t[i]] = T_TO_S(target[i]);
    }
}

static FX_ALWAYS_INLINE void SFX(dense_lanes_of)(const void *xv, ptrdiff_t xs, const void *yv,
                                                 ptrdiff_t ys, ptrdiff_t n, double a, double b,
                                                 const double *scale, ptrdiff_t scale_step,
                                                 void *gv, ptrdiff_t gs, void *gyv,
                                                 ptrdiff_t gys, void *lossv, ptrdiff_t ls,
                                                 void *work, ptrdiff_t rows)
{
    const S *x = (const S *)xv, *y = (const S *)yv;
    S *g = (S *)gv, *gy = (S *)gyv;
    const V zero = VOP(set1)((T)0);
    const V va = VOP(set1)((T)a), vb = VOP(set1)((T)b);
    V cols[FX_BLOCK_COLS], ycols[FX_BLOCK_COLS], e[FX_BLOCK_COLS], m, r, log_s;
    V sy = zero, syx = zero;
    ptrdiff_t j;
    (void)work;
    SFX(load_columns)(x, xs, n, cols, rows);
    SFX(load_columns)(y, ys, n, ycols, rows);
    SFX(lanes_normalizer)(cols, n, e, &m, &r);
    for (j = 0; j < n; ++j) {
        ycols[j] = VOP(fmadd)(va, ycols[j], vb);
        sy = VOP(add)(sy, ycols[j]);
        syx = VOP(add)(syx, VOP(keep)(VOP(neq)(ycols[j], zero), VOP(mul)(ycols[j], VOP(sub)(cols[j], m))));
    }
    log_s = VOP(log1p_nonneg)(r);
    SFX(store_lanes)((T *)lossv, ls, VOP(sub)(VOP(mul)(sy, log_s), syx), rows);
    if (gy) {
        const V gscale = VOP(mul)(SFX(lanes_of)(scale, scale_step, rows), va);
        V out[FX_BLOCK_COLS];
        for (j = 0; j < n; ++j)
            out[j] = VOP(mul)(gscale, VOP(sub)(log_s, VOP(sub)(cols[j], m)));
        SFX(store_columns)(gy, gys, n, out, rows);
    }
    if (g) {
        const V sc = SFX(lanes_of)(scale, scale_step, rows);
        V ca, cb;
        SFX(block_dense_coefs)(sy, r, &ca, &cb);
        for (j = 0; j < n; ++j)
            cols[j] = EXACT_GRAD(e[j], VOP(sub)(zero, ycols[j]), ca, cb, sc);
        SFX(store_columns)(g, gs, n, cols, rows);
    }
}

/* ---- the block kernels of the table: a full block, and a partial one ------------------- */

/* A full block's kernel has its row count fixed at VL (the clamps of the row count fold
   away); a call's last, partial block runs the `_partial` kernel with its count. */
#define SPARSE_BLOCK_ENTRY(NAME, BODY)                                                        \
    static void SFX(NAME)(const void *x, ptrdiff_t xs, ptrdiff_t n, const int64_t *t,         \
                          const double *scale, ptrdiff_t scale_step, void *g, ptrdiff_t gs,   \
                          void *loss, ptrdiff_t ls, void *work)                               \
    {                                                                                         \
        SFX(BODY)(x, xs, n, t, scale, scale_step, g, gs, loss, ls, work, VL);                 \
    }                                                                                         \
    static void SFX(NAME##_partial)(const void *x, ptrdiff_t xs, ptrdiff_t n,                 \
                                    const int64_t *t, const double *scale,                    \
                                    ptrdiff_t scale_step, void *g, ptrdiff_t gs, void *loss,  \
                                    ptrdiff_t ls, void *work, ptrdiff_t rows)                 \
    {                                                                                         \
        if (rows >= 1 && rows < VL)   /* always: said for the compiler's flow analysis */     \
            SFX(BODY)(x, xs, n, t, scale, scale_step, g, gs, loss, ls, work, rows);           \
    }

#define DENSE_BLOCK_ENTRY(NAME, BODY)                                                         \
    static void SFX(NAME)(const void *x, ptrdiff_t xs, const void *y, ptrdiff_t ys,           \
                          ptrdiff_t n, double a, double b, const double *scale,               \
                          ptrdiff_t scale_step, void *g, ptrdiff_t gs, void *gy,              \
                          ptrdiff_t gys, void *loss, ptrdiff_t ls, void *work)                \
    {                                                                                         \
        SFX(BODY)(x, xs, y, ys, n, a, b, scale, scale_step, g, gs, gy, gys, loss, ls, work,   \
                  VL);                                                                        \
    }                                                                                         \
    static void SFX(NAME##_partial)(const void *x, ptrdiff_t xs, const void *y, ptrdiff_t ys, \
                                    ptrdiff_t n, double a, double b, const double *scale,     \
                                    ptrdiff_t scale_step, void *g, ptrdiff_t gs, void *gy,    \
                                    ptrdiff_t gys, void *loss, ptrdiff_t ls, void *work,      \
                                    ptrdiff_t rows)                                           \
    {                                                                                         \
        if (rows >= 1 && rows < VL)   /* always: said for the compiler's flow analysis */     \
            SFX(BODY)(x, xs, y, ys, n, a, b, scale, scale_step, g, gs, gy, gys, loss, ls,     \
                      work, rows);                                                            \
    }

SPARSE_BLOCK_ENTRY(sparse_lanes, sparse_lanes_of)
SPARSE_BLOCK_ENTRY(sparse_batch, sparse_batch_of)
DENSE_BLOCK_ENTRY(dense_lanes, dense_lanes_of)
DENSE_BLOCK_ENTRY(dense_batch, dense_batch_of)

#undef SPARSE_BLOCK_ENTRY
#undef DENSE_BLOCK_ENTRY
#undef ROW_OF
#undef FLUSH
#undef EXACT_GRAD
#undef PASS_STEP
#undef LINE
