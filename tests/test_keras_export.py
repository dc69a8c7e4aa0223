"""Every example's generated Keras program saves as `.keras`, loads back in a fresh process that only
imports the program (no `custom_objects`), and exports a SavedModel; all three give the same
outputs on a padded batch (the .keras reload exactly, the SavedModel to float32 round-off)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rnnspec.compiler import compile_source
from tests.golden import ROOT, example_models

SAVE = r"""
import json, sys
import numpy as np
import keras
sys.path.insert(0, sys.argv[1])
results = {}
for name in json.loads(sys.argv[2]):
    program = __import__(name)
    model = program.build_model()
    rng = np.random.default_rng(0)
    model.set_weights([rng.normal(size=w.shape).astype("float32") for w in model.get_weights()])
    shape = [d if d is not None else 5 for d in model.inputs[0].shape]
    shape[0] = shape[0] or 3
    if model.inputs[0].dtype.startswith("int"):
        x = rng.integers(1, 20, size=shape).astype(model.inputs[0].dtype)
        x[0, -2:] = 0  # right padding
        x[1, :2] = 0  # left padding
    else:
        x = rng.normal(size=shape).astype("float32")
    np.save(f"{sys.argv[1]}/{name}.npy", x)
    model.save(f"{sys.argv[1]}/{name}.keras")
    model.export(f"{sys.argv[1]}/{name}_saved", format="tf_saved_model", verbose=False)
    outputs = model.predict_on_batch(x)
    results[name] = [np.asarray(o).tolist() for o in (outputs if isinstance(outputs, list) else [outputs])]
print(json.dumps(results))
"""

LOAD = r"""
import json, sys
import numpy as np
import keras
import tensorflow as tf
sys.path.insert(0, sys.argv[1])
results = {}
for name in json.loads(sys.argv[2]):
    __import__(name)  # registers the program's own layer classes, as a user's import would
    x = np.load(f"{sys.argv[1]}/{name}.npy")
    model = keras.saving.load_model(f"{sys.argv[1]}/{name}.keras")
    outputs = model.predict_on_batch(x)
    restored = tf.saved_model.load(f"{sys.argv[1]}/{name}_saved")  # keep it: its variables live there
    served = restored.serve(x)
    listed = lambda o: [np.asarray(v).tolist() for v in (o if isinstance(o, (list, tuple)) else [o])]
    results[name] = {"keras": listed(outputs), "saved_model": listed(served)}
print(json.dumps(results))
"""


def run(script: str, folder, names: list[str]) -> dict:
    # TensorFlow's autograph writes the code it converts (and, where Python writes bytecode, its
    # __pycache__) under TMPDIR while exporting a SavedModel: this script's own doing, not
    # rnnspec's, so it gets a TMPDIR of its own inside the test's folder.
    scratch = folder / "tmp"
    scratch.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "TMPDIR": str(scratch),
        "KERAS_BACKEND": "tensorflow",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "CUDA_VISIBLE_DEVICES": "",
    }
    done = subprocess.run(
        [sys.executable, "-c", script, str(folder), json.dumps(names)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# Slow (a fresh TensorFlow process saving and exporting, ~8 s a run): the example with rnnspec's own
# Keras layer (AttentionPooling), then every example.
@pytest.mark.parametrize(
    "which",
    [pytest.param("attention.rnn", marks=pytest.mark.slow), pytest.param("*.rnn", marks=pytest.mark.slow)],
)
def test_every_example_saves_loads_and_exports(tmp_path, which):
    names = []
    for spec, model in example_models():
        if not spec.match(which):
            continue
        if "stateful=true" in spec.read_text():
            continue  # a SavedModel has no place for carried state
        if "extern layer" in spec.read_text():
            continue  # a user's own layer saves as the user's class lets it
        if "input " in spec.read_text().split("input ", 1)[1]:
            continue  # several inputs: the export harness feeds one array
        name = f"{spec.stem}_keras"
        (tmp_path / f"{name}.py").write_text(compile_source(spec.read_text(), "keras", spec.name, model))
        names.append(name)
    saved = run(SAVE, tmp_path, names)
    loaded = run(LOAD, tmp_path, names)
    assert sorted(saved) == sorted(names) and "attention_keras" in names
    for name in names:
        assert loaded[name]["keras"] == saved[name], name  # the same bytes of float32, position by position
        # The SavedModel runs as a traced graph, whose fused kernels round differently: float32
        # round-off, not exact (largest here 8e-6 on outputs of size 20).
        for served, original in zip(loaded[name]["saved_model"], saved[name], strict=True):
            assert np.allclose(served, original, rtol=1e-5, atol=1e-5), name
