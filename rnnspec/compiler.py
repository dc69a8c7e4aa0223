"""The compile path: spec text -> checked IR -> code for one target. Imports no framework."""

from __future__ import annotations

from rnnspec.check import load_model, load_models
from rnnspec.ir import Model
from rnnspec.targets import keras as keras_target
from rnnspec.targets import pytorch as pytorch_target

GENERATORS = {"keras": keras_target.generate, "pytorch": pytorch_target.generate}


def generate(model: Model, target: str, source_name: str) -> str:
    return GENERATORS[target](model, source_name)


def compile_source(source: str, target: str, source_name: str, model_name: str | None = None) -> str:
    return generate(load_model(source, model_name), target, source_name)


__all__ = ["compile_source", "generate", "load_model", "load_models"]
