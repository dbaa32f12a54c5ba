/* Template body of fx_kernels.c, included once for float and once for double.
 * Needs T (element type), V (vector type), M (lane mask type), VL (lanes), VOP(op) (vector
 * operation), SFX(name) (name suffix), CHUNK (elements per L1 chunk).
 *
 * Per row: the normalizer (m, r) chunk by chunk (max, then the sum of
 * exp(x - m) over entries below the max, ties counted apart, so r stays exact
 * when it is tiny), then the loss, then the gradient. Sums of float lanes are
 * flushed into double every FLUSH vectors.
 */

#define FLUSH 16

static inline V SFX(load_tail)(const T *x, ptrdiff_t n, T pad)
{
    T buf[VL];
    ptrdiff_t j;
    for (j = 0; j < VL; ++j)
        buf[j] = j < n ? x[j] : pad;
    return VOP(load)(buf);
}

static inline void SFX(store_tail)(T *x, ptrdiff_t n, V v)
{
    T buf[VL];
    VOP(store)(buf, v);
    memcpy(x, buf, (size_t)n * sizeof(T));
}

/* One L1-resident chunk: its max, then r = sum(exp(x - max)) - 1. */
static void SFX(chunk_normalizer)(const T *x, ptrdiff_t n, double *m_out, double *r_out)
{
    const V neg_inf = VOP(set1)((T)-INFINITY), zero = VOP(set1)((T)0);
    const ptrdiff_t full = n - n % VL;
    V a0 = neg_inf, a1 = neg_inf, a2 = neg_inf, a3 = neg_inf, vm;
    double sum = 0.0;
    ptrdiff_t j = 0, ties = 0;
    T m;

    for (; j + 4 * VL <= full; j += 4 * VL) {
        a0 = VOP(max)(a0, VOP(load)(x + j));
        a1 = VOP(max)(a1, VOP(load)(x + j + VL));
        a2 = VOP(max)(a2, VOP(load)(x + j + 2 * VL));
        a3 = VOP(max)(a3, VOP(load)(x + j + 3 * VL));
    }
    for (; j < full; j += VL)
        a0 = VOP(max)(a0, VOP(load)(x + j));
    if (j < n)
        a1 = VOP(max)(a1, SFX(load_tail)(x + j, n - j, (T)-INFINITY));
    m = VOP(hmax)(VOP(max)(VOP(max)(a0, a1), VOP(max)(a2, a3)));

    if (!(m > -INFINITY)) {
        /* every entry -inf (an empty part), unless a NaN hid from the max */
        *m_out = -INFINITY;
        *r_out = -1.0;
        for (j = 0; j < n; ++j)
            if (x[j] != x[j])
                *r_out = NAN;
        return;
    }

    vm = VOP(set1)(m);
    j = 0;
    while (j < full) {
        const ptrdiff_t end = j + FLUSH * VL < full ? j + FLUSH * VL : full;
        V s0 = zero, s1 = zero;
        for (; j + 2 * VL <= end; j += 2 * VL) {
            V d0 = VOP(sub)(VOP(load)(x + j), vm);
            V d1 = VOP(sub)(VOP(load)(x + j + VL), vm);
            M below0 = VOP(neq)(d0, zero), below1 = VOP(neq)(d1, zero);
            s0 = VOP(add_if)(below0, s0, VOP(exp_nonpos)(d0));
            s1 = VOP(add_if)(below1, s1, VOP(exp_nonpos)(d1));
            ties += VOP(count_not)(below0) + VOP(count_not)(below1);
        }
        for (; j < end; j += VL) {
            V d0 = VOP(sub)(VOP(load)(x + j), vm);
            M below0 = VOP(neq)(d0, zero);
            s0 = VOP(add_if)(below0, s0, VOP(exp_nonpos)(d0));
            ties += VOP(count_not)(below0);
        }
        sum += VOP(hsum_d)(VOP(add)(s0, s1));
    }
    if (j < n) {
        V d0 = VOP(sub)(SFX(load_tail)(x + j, n - j, (T)-INFINITY), vm);
        M below0 = VOP(neq)(d0, zero);
        sum += VOP(hsum_d)(VOP(keep)(below0, VOP(exp_nonpos)(d0)));
        ties += VOP(count_not)(below0);
    }
    *m_out = m;
    *r_out = sum + (double)(ties - 1);
}

/* The normalizer of up to FX_PART entries: its chunks combined in order. */
static void SFX(normalizer_part)(const T *x, ptrdiff_t n, double *m, double *r)
{
    ptrdiff_t k;
    *m = -INFINITY;
    *r = -1.0;
    for (k = 0; k < n; k += CHUNK) {
        double mc, rc;
        SFX(chunk_normalizer)(x + k, n - k < CHUNK ? n - k : CHUNK, &mc, &rc);
        fx_combine(m, r, mc, rc);
    }
}

/* A row's normalizer: its parts combined in order. A row with no entry above
   -inf (or none at all) has r = NaN, which makes its loss and gradient NaN. */
static void SFX(normalizer)(const T *x, ptrdiff_t n, double *m, double *r)
{
    ptrdiff_t k;
    *m = -INFINITY;
    *r = -1.0;
    for (k = 0; k < n; k += FX_PART) {
        double mp, rp;
        SFX(normalizer_part)(x + k, n - k < FX_PART ? n - k : FX_PART, &mp, &rp);
        fx_combine(m, r, mp, rp);
    }
    if (*m == -INFINITY)
        *r = NAN;
}

static void SFX(fill_nan)(T *row, ptrdiff_t n)
{
    ptrdiff_t j;
    if (row)
        for (j = 0; j < n; ++j)
            row[j] = (T)NAN;
}

/* g = exp(x - m) * inv, elementwise; g may be x. */
static void SFX(sparse_grad_part)(const T *x, ptrdiff_t n, double m, double inv, T *g)
{
    const V vm = VOP(set1)((T)m), vinv = VOP(set1)((T)inv);
    const ptrdiff_t full = n - n % VL;
    ptrdiff_t j;
    for (j = 0; j < full; j += VL)
        VOP(store)(g + j, VOP(mul)(VOP(exp_nonpos)(VOP(sub)(VOP(load)(x + j), vm)), vinv));
    if (j < n)
        SFX(store_tail)(g + j, n - j,
                        VOP(mul)(VOP(exp_nonpos)(VOP(sub)(SFX(load_tail)(x + j, n - j, 0), vm)), vinv));
}

static double SFX(sparse_row)(const T *x, ptrdiff_t n, ptrdiff_t t, double scale, T *g)
{
    double m, r, xt;
    if (t < 0 || t >= n) {
        SFX(fill_nan)(g, n);
        return NAN;
    }
    SFX(normalizer)(x, n, &m, &r);
    xt = (double)x[t];
    if (g) {
        SFX(sparse_grad_part)(x, n, m, scale / (1.0 + r), g);
        g[t] = (T)fx_sparse_target_grad(m, r, xt, scale);
    }
    return fx_sparse_loss(m, r, xt);
}

/* Partial sums of y' = a y + b: sum(y') and sum over y' != 0 of y' (x - m);
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
            V xj = VOP(load)(x + j);
            V yj = VOP(fmadd)(va, VOP(load)(y + j), vb);
            V diff = VOP(sub)(xj, vm);
            sy = VOP(add)(sy, yj);
            syx = VOP(add)(syx, VOP(keep)(VOP(neq)(yj, zero), VOP(mul)(yj, diff)));
            if (gy)
                VOP(store)(gy + j, VOP(mul)(vgs, VOP(sub)(vls, diff)));
        }
        if (j == full && j < n) {
            V xj = SFX(load_tail)(x + j, n - j, 0);
            V yj = VOP(fmadd)(va, SFX(load_tail)(y + j, n - j, 0), vb);
            V diff = VOP(sub)(xj, vm);
            V keep_lane = VOP(keep)(VOP(neq)(yj, zero), VOP(mul)(yj, diff));
            T lanes[VL];
            ptrdiff_t k;
            /* the padding lanes hold b, not labels: add the real ones only */
            VOP(store)(lanes, yj);
            for (k = 0; k < n - j; ++k)
                total_y += (double)lanes[k];
            VOP(store)(lanes, keep_lane);
            for (k = 0; k < n - j; ++k)
                total_yx += (double)lanes[k];
            if (gy)
                SFX(store_tail)(gy + j, n - j, VOP(mul)(vgs, VOP(sub)(vls, diff)));
            j = n;
        }
        total_y += VOP(hsum_d)(sy);
        total_yx += VOP(hsum_d)(syx);
    }
    *sum_y = total_y;
    *sum_yx = total_yx;
}

/* g = exp(x - m) * p_scale - y_scale * y'; g may be x. */
static void SFX(dense_grad_part)(const T *x, const T *y, ptrdiff_t n, double m, double a,
                                 double b, double p_scale, double y_scale, T *g)
{
    const V vm = VOP(set1)((T)m), va = VOP(set1)((T)a), vb = VOP(set1)((T)b);
    const V vps = VOP(set1)((T)p_scale), vys = VOP(set1)((T)-y_scale);
    const ptrdiff_t full = n - n % VL;
    ptrdiff_t j;
    for (j = 0; j < full; j += VL) {
        V yj = VOP(fmadd)(va, VOP(load)(y + j), vb);
        V e = VOP(exp_nonpos)(VOP(sub)(VOP(load)(x + j), vm));
        VOP(store)(g + j, VOP(fmadd)(vys, yj, VOP(mul)(e, vps)));
    }
    if (j < n) {
        V yj = VOP(fmadd)(va, SFX(load_tail)(y + j, n - j, 0), vb);
        V e = VOP(exp_nonpos)(VOP(sub)(SFX(load_tail)(x + j, n - j, 0), vm));
        SFX(store_tail)(g + j, n - j, VOP(fmadd)(vys, yj, VOP(mul)(e, vps)));
    }
}

static double SFX(dense_row)(const T *x, const T *y, ptrdiff_t n, double a, double b,
                             double scale, T *g, T *gy)
{
    double m, r, log_s, sum_y = 0.0, sum_yx = 0.0;
    ptrdiff_t k;
    SFX(normalizer)(x, n, &m, &r);
    log_s = log1p(r);
    for (k = 0; k < n; k += FX_PART) {
        const ptrdiff_t len = n - k < FX_PART ? n - k : FX_PART;
        double sy, syx;
        SFX(dense_sums_part)(x + k, y + k, len, m, a, b, scale * a, log_s, gy ? gy + k : NULL,
                             &sy, &syx);
        sum_y += sy;
        sum_yx += syx;
    }
    if (g)
        SFX(dense_grad_part)(x, y, n, m, a, b, scale * sum_y / (1.0 + r), scale, g);
    return sum_y * log_s - sum_yx;
}

static void SFX(exp_array)(const T *in, T *out, ptrdiff_t n)
{
    const ptrdiff_t full = n - n % VL;
    ptrdiff_t j;
    for (j = 0; j < full; j += VL)
        VOP(store)(out + j, VOP(exp_nonpos)(VOP(load)(in + j)));
    if (j < n)
        SFX(store_tail)(out + j, n - j, VOP(exp_nonpos)(SFX(load_tail)(in + j, n - j, 0)));
}

#undef FLUSH
