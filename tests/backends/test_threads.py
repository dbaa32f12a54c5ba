"""Results are bit-for-bit the same for any thread count, and under concurrent Python threads."""

import threading

import numpy as np
import pytest

from fastxent import losses, nn


@pytest.fixture
def big_case(rng):
    logits = rng.standard_normal((3000, 37)).astype(np.float32) * 5
    labels = rng.integers(0, 37, 3000)
    return labels, logits


def _all_results(labels, logits, n_threads):
    onehot = np.eye(37, dtype=np.float32)[labels]
    return [
        *nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits,
                                                     return_grad=True, n_threads=n_threads),
        *nn.softmax_cross_entropy_with_logits(labels=onehot, logits=logits, return_grad=True,
                                              return_labels_grad=True, n_threads=n_threads),
        *losses.sparse_softmax_cross_entropy(labels, logits, weights=np.linspace(0, 1, 3000),
                                             reduction=losses.Reduction.MEAN, return_grad=True,
                                             n_threads=n_threads),
        *losses.softmax_cross_entropy(onehot, logits, label_smoothing=0.1, return_grad=True,
                                      n_threads=n_threads),
    ]


@pytest.mark.parametrize("n_threads", [2, 4])
def test_bit_identical_for_any_thread_count(big_case, n_threads):
    serial = _all_results(*big_case, n_threads=1)
    parallel = _all_results(*big_case, n_threads=n_threads)
    for a, b in zip(serial, parallel):
        np.testing.assert_array_equal(np.atleast_1d(a).view(np.uint8), np.atleast_1d(b).view(np.uint8))


def test_python_threads_share_inputs_safely(big_case):
    want = _all_results(*big_case, n_threads=1)
    results = [None] * 4

    def work(k):
        results[k] = _all_results(*big_case, n_threads=1)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for got in results:
        for a, b in zip(want, got):
            np.testing.assert_array_equal(a, b)
