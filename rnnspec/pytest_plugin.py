"""pytest plugin: `pytest --rnnspec` collects `*.rnn` files and verifies every model in them.

Registered through the `pytest11` entry point, so it loads in every pytest run, and stays inert
unless `--rnnspec` is given. With it, each `.rnn` file yields one test item per model (named after
the model) that runs what `rnnspec verify FILE` runs: the generated Keras and PyTorch programs,
the default seed, tolerances and batches. A failing item shows verify's one-line report; a spec
with errors yields one failing item that shows the diagnostics (`FILE:LINE:COL: error: ...`).
Nothing here imports Keras or PyTorch until an item runs.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from rnnspec.ir import Model

SPEC_ERRORS_ITEM = "spec"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("rnnspec")
    group.addoption(
        "--rnnspec",
        action="store_true",
        default=False,
        help="collect *.rnn files: one test per model, proving its Keras and PyTorch programs agree",
    )


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    if file_path.suffix == ".rnn" and parent.config.getoption("rnnspec"):
        return RnnSpecFile.from_parent(parent, path=file_path)
    return None


class RnnSpecRoundoff(UserWarning):
    """float32 outputs differ beyond tolerance, but the programs agree in float64."""


class RnnSpecFailure(Exception):
    """A verification mismatch or a spec error; its text is the whole report."""


class RnnSpecFile(pytest.File):
    def collect(self):
        from rnnspec.check import load_models
        from rnnspec.errors import SpecError
        from rnnspec.errors import UserError as UsageError
        from rnnspec.files import read_spec

        shown = self.shown_path()
        try:
            source = read_spec(str(self.path))
            models = load_models(source)
        except UsageError as exc:
            yield SpecErrorItem.from_parent(
                self, name=SPEC_ERRORS_ITEM, report=str(exc).replace(str(self.path), shown)
            )
            return
        except SpecError as exc:
            yield SpecErrorItem.from_parent(self, name=SPEC_ERRORS_ITEM, report=exc.render(shown, source))
            return
        for model in models:
            yield ModelItem.from_parent(self, name=model.name, model=model)

    def shown_path(self) -> str:
        """The spec's path as the user would type it: relative to where pytest was started."""
        start = self.config.invocation_params.dir
        try:
            return os.path.relpath(self.path, start)
        except ValueError:  # another drive on Windows
            return str(self.path)


class RnnSpecItem(pytest.Item):
    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, RnnSpecFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)


class SpecErrorItem(RnnSpecItem):
    """Stands for a spec that does not load: it fails with the rendered diagnostics."""

    def __init__(self, *, report: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.report = report

    def runtest(self) -> None:
        raise RnnSpecFailure(self.report)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"{self.path.name}: spec errors"


class ModelItem(RnnSpecItem):
    """One model of a spec file: its generated Keras and PyTorch programs must agree."""

    def __init__(self, *, model: Model, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.model = model

    def runtest(self) -> None:
        from rnnspec.equivalence.extern import user_code_path
        from rnnspec.options import VerifyOptions
        from rnnspec.verify import VerifyError, describe, import_frameworks, roundoff_warning, verify_one

        shown = self.parent.shown_path() if isinstance(self.parent, RnnSpecFile) else str(self.path)
        try:
            import_frameworks()
            # The defaults of `rnnspec verify FILE`: its parser takes them from VerifyOptions too.
            with user_code_path(self.path, self.model):  # a spec's user layers come from its directory
                result, _ = verify_one(self.model, self.path.name, VerifyOptions())
        except VerifyError as exc:
            raise RnnSpecFailure(f"{shown}: {self.name}: {exc}") from None
        if not result.passed:
            raise RnnSpecFailure(describe(result, shown))
        if result.roundoff:
            warnings.warn(roundoff_warning(result, shown), RnnSpecRoundoff, stacklevel=1)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, self.model.pos.line - 1, f"rnnspec model {self.name}"
