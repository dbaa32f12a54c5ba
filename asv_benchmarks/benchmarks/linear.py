"""asv benchmarks of the linear model objective (fastxent.linear_cross_entropy)."""

import numpy as np

import fastxent


class LinearCrossEntropy:
    """Loss and gradients of X @ coef + intercept, with and without PyTorch's options."""

    params = (["200000x100x20:float64", "200000x100x20:float32", "20000x256x1000:float32"],
              ["plain", "smoothing+class_weight"])
    param_names = ["shape", "options"]
    timeout = 300

    def setup(self, shape, options):
        dims, _, dtype = shape.partition(":")
        n, d, c = (int(v) for v in dims.split("x"))
        rng = np.random.default_rng(0)
        self.X = rng.standard_normal((n, d), dtype=np.float32).astype(dtype)
        self.coef = (rng.standard_normal((d, c)) * 0.1).astype(dtype)
        self.intercept = np.zeros(c, dtype)
        self.labels = rng.integers(0, c, n)
        self.options = ({} if options == "plain"
                        else {"label_smoothing": 0.1, "class_weight": rng.random(c) + 0.5})

    def time_loss_grad(self, shape, options):
        fastxent.linear_cross_entropy(self.X, self.coef, self.labels, intercept=self.intercept,
                                      **self.options)

    def peakmem_loss_grad(self, shape, options):
        fastxent.linear_cross_entropy(self.X, self.coef, self.labels, intercept=self.intercept,
                                      **self.options)
