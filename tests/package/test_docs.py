"""The examples in the README and in the docstrings run and print what they show."""

import doctest
import pathlib

import pytest

import fastxent
from fastxent import losses, nn

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize("module", [nn, losses, fastxent.compat.v1.nn, fastxent.linear],
                         ids=lambda m: m.__name__)
def test_docstring_examples(module):
    failures, _ = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert failures == 0


@pytest.mark.skipif(not README.exists(), reason="README.md is not beside the tests")
def test_readme_examples():
    failures, tried = doctest.testfile(str(README), module_relative=False,
                                       optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried > 0 and failures == 0
