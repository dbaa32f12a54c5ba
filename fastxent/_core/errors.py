"""Exceptions of fastxent."""


class InvalidArgumentError(ValueError):
    """An argument's values are invalid (TensorFlow's ``InvalidArgumentError``).

    Raised, for example, for a sparse label outside ``[0, num_classes)``.
    It subclasses ValueError, so ``except ValueError`` catches it too.
    """
