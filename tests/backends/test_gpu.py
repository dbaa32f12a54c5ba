"""The CUDA backend on CuPy arrays, against the CPU results (skipped without CuPy or a GPU)."""

import numpy as np
import pytest

import fastxent
import reference
from fastxent import losses, nn

cupy = pytest.importorskip("cupy")
try:
    cupy.cuda.runtime.getDeviceCount()
    cupy.zeros(1).sum()
except Exception as error:  # no driver or no device
    pytest.skip(f"no usable GPU: {error}", allow_module_level=True)

pytestmark = pytest.mark.gpu

# rows in registers (a warp, a block or a cluster per row; 16-byte or scalar loads) and
# rows streamed (too long to fit)
SHAPES = [(5, 1), (37, 10), (64, 1000), (7, 1001), (3, 2049), (5, 40000), (6, 50257),
          (5, 140000), (5, 300000)]
DTYPES = [np.float16, np.float32, np.float64]


def _case(rng, shape, dtype):
    logits = (rng.standard_normal(shape) * 4).astype(dtype)
    if shape[0] >= 5:
        logits[1, 0] = np.nan
        logits[2, -1] = np.inf
        logits[3, :] = -np.inf
        logits[4, 0] = -np.inf
    return logits, rng.integers(0, shape[1], shape[0])


def _on_gpu(*arrays):
    return [cupy.asarray(a) for a in arrays]


def _check(gpu_results, cpu_results, dtype):
    for got, want in zip(gpu_results, cpu_results):
        assert isinstance(got, cupy.ndarray) and got.device.id == cupy.cuda.Device().id
        reference.assert_grad_close(cupy.asnumpy(got), want, dtype,
                                    scale=np.abs(np.nan_to_num(want, posinf=1, neginf=1)).max(initial=1))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_sparse_matches_cpu(rng, shape, dtype):
    logits, labels = _case(rng, shape, dtype)
    want = nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                       return_grad=True)
    x, t = _on_gpu(logits, labels)
    got = nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x, return_grad=True)
    _check(got, want, dtype)


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_dense_matches_cpu(rng, shape, dtype):
    logits, _ = _case(rng, shape, dtype)
    labels = rng.random(shape).astype(dtype)
    want = nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits, return_grad=True,
                                                return_labels_grad=True)
    x, y = _on_gpu(logits, labels)
    got = nn.softmax_cross_entropy_with_logits(labels=y, logits=x, return_grad=True,
                                               return_labels_grad=True)
    _check(got[:2], want[:2], dtype)


@pytest.mark.parametrize("reduction", losses.Reduction.all())
@pytest.mark.parametrize("kind", ["sparse", "dense"])
def test_weighted_losses_match_cpu(rng, reduction, kind):
    logits, labels = _case(rng, (48, 30), np.float32)
    logits = np.nan_to_num(logits, nan=0.0, posinf=0.0, neginf=-5.0)
    weights = rng.random(48)
    if kind == "sparse":
        def call(x, t, w):
            return losses.sparse_softmax_cross_entropy(t, x, w, reduction=reduction,
                                                       return_grad=True)
        target = labels
    else:
        def call(x, t, w):
            return losses.softmax_cross_entropy(t, x, w, 0.1, reduction=reduction,
                                                return_grad=True)
        target = np.eye(30, dtype=np.float32)[labels]
    want = call(logits, target, weights)
    got = call(*_on_gpu(logits, target, weights))
    assert isinstance(got[0], cupy.ndarray)  # a reduced loss stays on the device
    np.testing.assert_allclose(cupy.asnumpy(got[0]), want[0], rtol=1e-5)
    np.testing.assert_allclose(cupy.asnumpy(got[1]), want[1], atol=1e-6)


def test_in_place_strided_and_moved_axis(rng):
    logits = rng.standard_normal((6, 20, 5)).astype(np.float32)
    labels = rng.random((6, 20, 5)).astype(np.float32)
    want = nn.softmax_cross_entropy_with_logits(labels=labels, logits=logits, axis=1,
                                                return_grad=True)
    x, y = _on_gpu(logits, labels)
    loss, grad = nn.softmax_cross_entropy_with_logits(labels=y, logits=x, axis=1,
                                                      return_grad=True, grad_out=x)
    assert grad is x
    np.testing.assert_allclose(cupy.asnumpy(loss), want[0], rtol=1e-5)
    np.testing.assert_allclose(cupy.asnumpy(x), want[1], atol=1e-6)


def test_invalid_labels_are_nan_rows_unless_validated(rng):
    logits, labels = _case(rng, (8, 6), np.float32)
    labels[[2, 5]] = [-1, 6]
    x, t = _on_gpu(logits, labels)
    loss, grad = nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x, return_grad=True)
    loss, grad = cupy.asnumpy(loss), cupy.asnumpy(grad)
    assert np.isnan(loss[[2, 5]]).all() and np.isnan(grad[[2, 5]]).all()
    with pytest.raises(fastxent.InvalidArgumentError, match=r"value of -1 .*\(2,\)"):
        nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x, validate=True)


def test_mixing_devices_is_a_type_error(rng):
    logits, labels = _case(rng, (4, 3), np.float32)
    with pytest.raises(TypeError, match="labels on the CPU|logits on the GPU"):
        nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=cupy.asarray(logits))


@pytest.mark.parametrize("class_chunks", [(40,), (13, 20, 7)], ids=["one", "split"])
def test_dask_with_cupy_chunks(rng, class_chunks):
    da = pytest.importorskip("dask.array")
    logits = rng.standard_normal((30, 40)).astype(np.float32)
    labels = rng.integers(0, 40, 30)
    want = nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                       return_grad=True)
    x = da.from_array(cupy.asarray(logits), chunks=((11, 19), class_chunks))
    t = da.from_array(cupy.asarray(labels), chunks=((11, 19),))
    loss, grad = nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x,
                                                             return_grad=True)
    loss, grad = loss.compute(scheduler="threads"), grad.compute(scheduler="threads")
    assert isinstance(loss, cupy.ndarray) and isinstance(grad, cupy.ndarray)
    np.testing.assert_allclose(cupy.asnumpy(loss), want[0], rtol=1e-5)
    np.testing.assert_allclose(cupy.asnumpy(grad), want[1], atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_more_rows_than_the_grid_holds(rng, dtype):
    # clusters of blocks loop over several rows each (the double-buffered exchange)
    logits, labels = _case(rng, (4500, 20000), dtype)
    want = nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                       return_grad=True)
    x, t = _on_gpu(logits, labels)
    got = nn.sparse_softmax_cross_entropy_with_logits(labels=t, logits=x, return_grad=True,
                                                      grad_out=x)
    _check(got, want, dtype)


@pytest.mark.parametrize("cols", [1000, 40000])
def test_unaligned_rows_and_in_place(rng, cols):
    # rows starting 4 bytes off a 16-byte boundary take the scalar loads
    base = (rng.standard_normal((9, cols + 1)) * 3).astype(np.float32)
    labels = rng.integers(0, cols, 9)
    want = nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=base[:, 1:],
                                                       return_grad=True)
    x = cupy.asarray(base)[:, 1:]
    loss, grad = nn.sparse_softmax_cross_entropy_with_logits(labels=cupy.asarray(labels),
                                                             logits=x, return_grad=True,
                                                             grad_out=x)
    assert grad is x
    _check([loss, x], want, np.float32)


def test_sparse_options_match_cpu(rng):
    logits, labels = _case(rng, (30, 12), np.float32)
    logits = np.nan_to_num(logits, nan=0.0, posinf=0.0, neginf=-5.0)
    labels[[2, 7]] = -100
    options = dict(ignore_index=-100, class_weight=rng.random(12) + 0.5, label_smoothing=0.2)
    want = losses.sparse_softmax_cross_entropy(labels, logits, reduction="weighted_mean",
                                               return_grad=True, **options)
    got = losses.sparse_softmax_cross_entropy(*_on_gpu(labels, logits), reduction="weighted_mean",
                                              return_grad=True, **options)
    np.testing.assert_allclose(cupy.asnumpy(got[0]), want[0], rtol=1e-5)
    np.testing.assert_allclose(cupy.asnumpy(got[1]), want[1], atol=1e-6)


@pytest.mark.parametrize("kind", ["sparse", "dense"])
def test_linear_cross_entropy_matches_cpu(rng, kind):
    X = rng.standard_normal((300, 16)).astype(np.float32)
    coef = rng.standard_normal((16, 7)).astype(np.float32)
    intercept = rng.standard_normal(7).astype(np.float32)
    labels = rng.integers(0, 7, 300) if kind == "sparse" else rng.dirichlet(np.ones(7), 300)
    want = fastxent.linear_cross_entropy(X, coef, labels, intercept=intercept, chunk_rows=64,
                                         label_smoothing=0.1)
    got = fastxent.linear_cross_entropy(*_on_gpu(X, coef, labels), intercept=cupy.asarray(intercept),
                                        chunk_rows=64, label_smoothing=0.1)
    np.testing.assert_allclose(float(got[0]), want[0], rtol=1e-5)
    for g, w in zip(got[1:], want[1:]):
        assert isinstance(g, cupy.ndarray)
        np.testing.assert_allclose(cupy.asnumpy(g), w, atol=1e-5)
