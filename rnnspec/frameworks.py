"""Keras (TensorFlow backend) and PyTorch, imported quietly, for the commands that run programs."""

from __future__ import annotations

import contextlib
import os
import sys
import warnings

from rnnspec.equivalence.harness import configure_frameworks


class VerifyError(Exception):
    """Code that does not load or run, or frameworks that are missing (exit 2)."""


@contextlib.contextmanager
def quiet_stderr():
    """TensorFlow's C++ start-up chatter goes straight to fd 2; hide it while importing."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_frameworks() -> None:
    configure_frameworks()
    # The one-timestep batch makes attention pooling's softmax run over a single value, on purpose.
    warnings.filterwarnings("ignore", message="You are using a softmax over axis")
    try:
        with quiet_stderr():
            import keras  # noqa: F401
            import torch  # noqa: F401
    except ImportError as exc:
        raise VerifyError(
            f"verify needs Keras (TensorFlow backend) and PyTorch: {exc}; "
            "install them with `pip install 'rnnspec[keras,torch]'`"
        ) from None
