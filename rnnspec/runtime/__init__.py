"""Runtime helpers of the generated programs, kept as real modules and inlined at render time.

`torch_rnn.py` is linted, formatted and unit-tested as the package's own code; a generated
PyTorch program gets the text of the definitions it uses (and of those they use), so that it
still imports only torch. Reading the text imports no framework.
"""

from __future__ import annotations

import ast
import hashlib
from functools import lru_cache
from pathlib import Path

TORCH_RUNTIME = Path(__file__).resolve().parent / "torch_rnn.py"

# The module-level imports a definition may use, by the name it uses, as the program writes them.
IMPORTS = {
    "math": "import math",
    "torch": "import torch",
    "F": "import torch.nn.functional as F",
    "nn": "from torch import nn",
}


@lru_cache(maxsize=1)
def definitions() -> dict[str, tuple[str, frozenset[str]]]:
    """Every top-level definition of the torch runtime, in file order: name -> (its text, the
    module-level names it refers to).

    Parsing the runtime costs ~10 ms, so `python -m rnnspec.prebuild` stores the result in
    rnnspec/_prebuilt/runtime.py, used only while the runtime's SHA-256 matches (as the
    compiled templates are).
    """
    text = TORCH_RUNTIME.read_text(encoding="utf-8")
    try:
        from rnnspec._prebuilt.runtime import DEFINITIONS, RUNTIME_SHA256
    except (
        ImportError
    ):  # pragma: no cover - a checkout whose prebuilt files were deleted
        DEFINITIONS, RUNTIME_SHA256 = {}, None
    if RUNTIME_SHA256 == hashlib.sha256(text.encode("utf-8")).hexdigest():
        return {
            name: (body, frozenset(used)) for name, (body, used) in DEFINITIONS.items()
        }
    return parse_definitions(text)


def parse_definitions(text: str) -> dict[str, tuple[str, frozenset[str]]]:
    """`definitions()` of the runtime's text, read with ast."""
    lines = text.splitlines(keepends=True)
    tree = ast.parse(text)
    found: dict[str, tuple[str, frozenset[str]]] = {}
    for node in tree.body:
        if not isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            continue
        start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
        body = "".join(lines[start : node.end_lineno]).rstrip("\n")
        used = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        found[node.name] = (body, frozenset(used))
    return found


def needed(names: set[str]) -> list[str]:
    """`names` and every runtime definition they refer to, in the runtime's order."""
    defs = definitions()
    wanted, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in wanted:
            continue
        wanted.add(name)
        todo += [used for used in defs[name][1] if used in defs and used != name]
    return [name for name in defs if name in wanted]


def source(names: set[str]) -> tuple[str, set[str]]:
    """The text of `names` and what they need, separated as ruff formats top-level
    definitions, and the modules (keys of IMPORTS) that text uses."""
    defs = definitions()
    chosen = needed(names)
    imports = {name for n in chosen for name in defs[n][1] if name in IMPORTS}
    return "\n\n\n".join(defs[n][0] for n in chosen), imports


def module_names() -> frozenset[str]:
    """Every name the runtime can bind in a program: its definitions and its imports."""
    return frozenset(definitions()) | frozenset(IMPORTS)
