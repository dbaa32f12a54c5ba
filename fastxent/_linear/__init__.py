"""The linear layer's problem (``core``): X, labels and options checked once, one pass per call."""
