"""asv benchmarks of the linear model objective (fastxent.linear_cross_entropy) and its fit."""

import numpy as np

import fastxent


def _problem(shape, seed=0):
    dims, _, dtype = shape.partition(":")
    n, d, c = (int(v) for v in dims.split("x"))
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d), dtype=np.float32).astype(dtype)
    coef = (rng.standard_normal((d, c)) * 0.1).astype(dtype)
    return X, coef, np.zeros(c, dtype), rng.integers(0, c, n)


class LinearCrossEntropy:
    """Loss and gradients of X @ coef + intercept, with and without PyTorch's options, on one
    thread and on all of them (the results are the same bits)."""

    params = (["200000x100x20:float64", "200000x100x20:float32", "20000x256x1000:float32"],
              ["plain", "smoothing+class_weight"], [1, 0])
    param_names = ["shape", "options", "threads (0: all)"]
    timeout = 300

    def setup(self, shape, options, threads):
        self.X, self.coef, self.intercept, self.labels = _problem(shape)
        rng = np.random.default_rng(1)
        c = self.coef.shape[1]
        self.options = ({} if options == "plain"
                        else {"label_smoothing": 0.1, "class_weight": rng.random(c) + 0.5})
        self.options["n_threads"] = threads or None

    def time_loss_grad(self, shape, options, threads):
        fastxent.linear_cross_entropy(self.X, self.coef, self.labels, intercept=self.intercept,
                                      **self.options)

    def peakmem_loss_grad(self, shape, options, threads):
        fastxent.linear_cross_entropy(self.X, self.coef, self.labels, intercept=self.intercept,
                                      **self.options)


class SoftmaxRegressionFit:
    """SoftmaxRegression.fit (L-BFGS to tol 1e-4) on a small and a mid-sized problem."""

    params = (["2000x64x10:float64", "50000x100x20:float64", "50000x100x20:float32"],)
    param_names = ["shape"]
    timeout = 300

    def setup(self, shape):
        try:
            from fastxent.sklearn import SoftmaxRegression
        except ImportError:
            raise NotImplementedError("needs scikit-learn and SciPy") from None
        X, coef, _, _ = _problem(shape)
        rng = np.random.default_rng(2)
        logits = X @ coef * 10 + rng.gumbel(size=(X.shape[0], coef.shape[1]))
        self.X, self.y = X, logits.argmax(axis=1)
        self.model = SoftmaxRegression(max_iter=200)

    def time_fit(self, shape):
        self.model.fit(self.X, self.y)
