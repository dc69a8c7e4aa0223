"""Every generated program is formatted and lint-clean, for drawn specs, not only the examples.

`ruff format --check` (black's layout at 88 columns) and `ruff check` (the project's rules) run on
both programs of batches of drawn specs, one ruff process per batch. Half the drawn specs get long
names (model, input and aliases), which is where lines outgrow the layout: the issue's 161-column
Keras line (a bidirectional `merge_mode=none` with `return_state`) and 90-column PyTorch line
(stateful buffers) came from names, not from options.
"""

from __future__ import annotations

import re
import subprocess
import sys

from hypothesis import Phase, example, given, settings
from hypothesis import strategies as st

from rnnspec.compiler import compile_source
from tests.golden import ROOT
from tests.helpers import examples, verify_spec
from tests.strategies import specs

# Long names make long lines: the layout has to wrap them as the formatter would.
LONG = "model a_rather_long_model_name_for_wrapping {\n    input some_long_input_name: float32[*, 3]\n"
WIDE_SPECS = [
    LONG + "    bidirectional(lstm(3, return_state=true), merge_mode=none) as a_long_bidirectional_name\n}\n",
    "model s(batch_size=2) {\n    input x: float32[*, 3]\n"
    "    lstm(3, stateful=true, return_sequences=true) as a_long_stateful_layer_name\n"
    "    gru(3, stateful=true, return_state=true) as another_long_stateful_layer_name\n}\n",
    LONG + "    masking(mask_value=-123456.789)\n    bidirectional(gru(4, activation=relu, reset_after=false,"
    " return_sequences=true), merge_mode=none) as wrapped_stepped_layer_with_long_name\n}\n",
    "model v1_layers {\n    input some_long_input_name: float32[12, 10]\n"
    "    batch_normalization(epsilon=0.0001, momentum=0.5, center=false)\n"
    "    conv1d(4, 3, strides=2, padding=same, activation=log_softmax) as a_long_convolution_name\n"
    "    average_pooling1d(3, strides=2, padding=same)\n    spatial_dropout1d(0.25)\n"
    "    gaussian_noise(0.123456)\n    relu(negative_slope=0.123456, max_value=12.5, threshold=0.25)\n"
    "    time_distributed(dense(6, activation=log_softmax, use_bias=false)) as a_long_time_distributed\n"
    "    reshape(3, 6, 1)\n    conv2d(3, 2, padding=same, activation=leaky_relu) as a_long_conv2d_name\n"
    "    max_pooling2d(2, strides=1, padding=same)\n    flatten()\n    repeat_vector(2)\n"
    "    global_max_pooling()\n}\n",
]


# Each name grows by a suffix (aliases stay unique, and apart from the input's name); up to ~45
# characters in all, a long but ordinary identifier.
LONG_SUFFIXES = ("", "_for_a_longer_name", "_with_a_rather_long_descriptive_name")


@st.composite
def long_named_specs(draw) -> str:
    source = draw(specs())
    suffix = draw(st.sampled_from(LONG_SUFFIXES))
    if suffix:
        source = re.sub(r"^model (\w+)", rf"model \1{suffix}", source, flags=re.MULTILINE)
        source = re.sub(r"^    input (\w+):", rf"    input \1_in{suffix}:", source, flags=re.MULTILINE)
        source = re.sub(r" as (\w+)$", rf" as \1{suffix}", source, flags=re.MULTILINE)
    return source


def assert_ruff_clean(sources: list[str], tmp_path) -> None:
    paths = []
    for number, source in enumerate(sources):
        for target in ("keras", "pytorch"):
            path = tmp_path / f"program_{number}_{target}.py"
            path.write_text(compile_source(source, target, "spec.rnn"), encoding="utf-8")
            paths.append(str(path))
    config = str(ROOT / "pyproject.toml")
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--config", config, "--no-cache", *paths],
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0, lint.stdout + specs_named(lint.stdout, sources)
    fmt = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--diff", "--line-length", "88", "--no-cache", *paths],
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr + specs_named(fmt.stdout, sources)


def specs_named(report: str, sources: list[str]) -> str:
    """The specs of the programs a ruff report names (the drawn lists are not shrunk: too slow)."""
    numbers = sorted({int(n) for n in re.findall(r"program_(\d+)_", report)})
    return "".join(f"--- spec of program_{n}_* ---\n{sources[n]}" for n in numbers)


def test_wide_specs_are_formatted(tmp_path):
    assert_ruff_clean(WIDE_SPECS, tmp_path)
    # They are wide: each program has statements that only fit wrapped.
    keras = compile_source(WIDE_SPECS[0], "keras", "spec.rnn")
    assert "    outputs = keras.layers.Bidirectional(\n        keras.layers.LSTM(" in keras
    torch = compile_source(WIDE_SPECS[1], "pytorch", "spec.rnn")
    assert '        self.register_buffer(\n            "_a_long_stateful_layer_name_h",' in torch


def test_long_named_specs_are_equivalent():
    """Wrapping is layout only: the wide programs still compute the same function."""
    for source in WIDE_SPECS:
        verify_spec(source)


# No shrinking: each step runs ruff twice, and a failure names its specs (specs_named) anyway.
@settings(max_examples=examples(8), phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(sources=st.lists(long_named_specs(), min_size=25, max_size=25))
@example(sources=WIDE_SPECS)
def test_drawn_specs_are_formatted_and_lint_clean(tmp_path_factory, sources):
    assert_ruff_clean(sources, tmp_path_factory.mktemp("style"))
