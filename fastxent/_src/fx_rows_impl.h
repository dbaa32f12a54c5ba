/* Template body of fx_rows.h: needs FX_T, FX_SUFFIX and FX_EXP defined.
 *
 * Accumulation is in double for both element types. The gradient pointers may
 * alias x (the gradient written in place over the logits): every x[j] is read
 * before g[j] is written, and x is never read again after that.
 */

/* Returns 0 when the row's max is not finite (a NaN, a +inf, or every entry
   -inf, or an empty row): such a row's loss and gradient are NaN. */
static inline int FX_SUFFIX(fx_normalizer)(const FX_T *x, ptrdiff_t n, FX_T *m_out, double *r_out)
{
    FX_T m = -INFINITY;
    double acc[4] = {0.0, 0.0, 0.0, 0.0};
    ptrdiff_t j, ties = 0;

    for (j = 0; j < n; ++j) {
        FX_T v = x[j];
        if (v > m || v != v)
            m = v;
        if (m != m)
            return 0;
    }
    if (!isfinite(m))
        return 0;
    for (j = 0; j < n; ++j) {
        FX_T d = x[j] - m;
        if (d != 0)
            acc[j & 3] += (double)FX_EXP(d);
        else
            ++ties;   /* exp(0) == 1 exactly: counted, not summed */
    }
    *m_out = m;
    *r_out = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + (double)(ties - 1);
    return 1;
}

static inline void FX_SUFFIX(fx_fill_nan)(FX_T *row, ptrdiff_t n)
{
    ptrdiff_t j;
    if (row)
        for (j = 0; j < n; ++j)
            row[j] = (FX_T)NAN;
}

/* loss = lse - x[t]. When g is given it receives scale * (softmax(x) - onehot(t)).
   A label outside [0, n) gives a NaN row (never read out of bounds). */
static inline double FX_SUFFIX(fx_sparse_row)(const FX_T *x, ptrdiff_t n, ptrdiff_t t,
                                              double scale, FX_T *g)
{
    FX_T m, xt;
    double r, inv_s;
    ptrdiff_t j;

    if (t < 0 || t >= n || !FX_SUFFIX(fx_normalizer)(x, n, &m, &r)) {
        FX_SUFFIX(fx_fill_nan)(g, n);
        return NAN;
    }
    xt = x[t];
    if (g) {
        inv_s = scale / (1.0 + r);
        for (j = 0; j < n; ++j)
            g[j] = (FX_T)((double)FX_EXP(x[j] - m) * inv_s);
        /* p_t - 1 = -(sum of the other terms) / sum: exact when t is the max */
        if (xt == m)
            g[t] = (FX_T)(-scale * (r / (1.0 + r)));
        else
            g[t] = (FX_T)(scale * ((double)FX_EXP(xt - m) / (1.0 + r) - 1.0));
    }
    return log1p(r) + ((double)m - (double)xt);
}

/* Labels y' = a * y + b (a = 1, b = 0 unless label smoothing).
   loss = sum_j y'_j * (lse - x_j), a term taken as 0 wherever y'_j == 0.
   g  (if given) receives scale * (softmax(x) * sum(y') - y'), the true derivative;
   gy (if given) receives scale * a * (lse - x), the derivative w.r.t. y. */
static inline double FX_SUFFIX(fx_dense_row)(const FX_T *x, const FX_T *y, ptrdiff_t n,
                                             double a, double b, double scale,
                                             FX_T *g, FX_T *gy)
{
    FX_T m;
    double r, log_s, sum_y = 0.0, sum_yx = 0.0, inv_s;
    ptrdiff_t j;

    if (!FX_SUFFIX(fx_normalizer)(x, n, &m, &r)) {
        FX_SUFFIX(fx_fill_nan)(g, n);
        FX_SUFFIX(fx_fill_nan)(gy, n);
        return NAN;
    }
    log_s = log1p(r);
    for (j = 0; j < n; ++j) {
        double yj = a * (double)y[j] + b;
        sum_y += yj;
        if (yj != 0)   /* NaN labels pass, and poison the loss as they should */
            sum_yx += yj * ((double)x[j] - (double)m);
    }
    if (g || gy) {
        inv_s = scale * sum_y / (1.0 + r);
        for (j = 0; j < n; ++j) {
            double xj = (double)x[j];
            double yj = a * (double)y[j] + b;
            if (gy)
                gy[j] = (FX_T)(scale * a * (log_s + ((double)m - xj)));
            if (g)
                g[j] = (FX_T)((double)FX_EXP(x[j] - m) * inv_s - scale * yj);
        }
    }
    return sum_y * log_s - sum_yx;
}
