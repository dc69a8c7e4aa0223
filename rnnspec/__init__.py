"""rnnspec: compile one RNN model spec to Keras and PyTorch programs that compute the same function."""

__version__ = "0.1.0"
