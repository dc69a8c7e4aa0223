"""What both targets share: the Jinja environment, expressions and statements, and their
black-compatible layout (a target builds statements, decides on them, and renders them last)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import jinja2

from rnnspec.graph import shown
from rnnspec.ir import Model
from rnnspec.resources import resource_dir

LINE_LENGTH = 88


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The templates, precompiled into the package while they match their sources (a cold compile
    skips ~6 ms); nothing is cached at run time. See rnnspec/prebuild.py."""
    from rnnspec.prebuild import JINJA_OPTIONS, TEMPLATES, sha256, template_sources

    loader: jinja2.BaseLoader = jinja2.FileSystemLoader(str(resource_dir("templates")))
    try:
        from rnnspec._prebuilt.manifest import TEMPLATE_SHA256
    except ImportError:  # pragma: no cover - a checkout whose prebuilt files were deleted
        TEMPLATE_SHA256 = {}
    sources = template_sources()
    if sources and all(TEMPLATE_SHA256.get(name) == sha256(text) for name, text in sources.items()):
        loader = jinja2.ModuleLoader(str(TEMPLATES))
    return jinja2.Environment(loader=loader, **JINJA_OPTIONS)


def render(template: str, context: dict[str, Any]) -> str:
    return environment().get_template(template).render(**context)


def py_literal(value: Any) -> str:
    """A Python literal for a checked spec value: bools, numbers, and identifier-safe strings only."""
    if isinstance(value, bool):
        return "True" if value else "False"
    if value is None:
        return "None"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, tuple):
        items = [py_literal(one) for one in value]
        return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
    if isinstance(value, str):
        if not all(ch.isalnum() or ch in "_." for ch in value):  # names and keywords only
            raise ValueError(f"refusing to place {value!r} in generated code")
        return f'"{value}"'
    raise TypeError(type(value))


def import_lines(paths: list[tuple[str, str]]) -> list[str]:
    """`from module import A, B` per module, sorted as ruff's isort sorts them; wrapped when long
    (one statement per item, possibly of several lines).

    Every module path and class name was checked to be a dotted Python identifier (ir.build_externs).
    """
    modules: dict[str, set[str]] = {}
    for module, name in paths:
        modules.setdefault(module, set()).add(name)
    lines = []
    for module in sorted(modules, key=lambda m: (m.lower(), m)):
        names = sorted(modules[module], key=_member_order)
        line = f"from {module} import {', '.join(names)}"
        if len(line) <= LINE_LENGTH:
            lines.append(line)
        else:
            lines.append("\n".join([f"from {module} import ("] + [f"    {name}," for name in names] + [")"]))
    return lines


def _member_order(name: str) -> tuple[int, str]:
    """isort's order-by-type: CONSTANTS, then Classes, then functions and modules."""
    if name.isupper() and len(name) > 1:
        return (0, name)
    return (1 if name[0].isupper() else 2, name)


@dataclass(frozen=True)
class PyCall:
    """A call expression to lay out: `head(args...)tail`; args are strings or nested calls."""

    head: str
    args: tuple[str | PyCall, ...]
    tail: str = ""

    def flat(self) -> str:
        return f"{self.head}({', '.join(_flat(a) for a in self.args)}){self.tail}"


def _flat(item: str | PyCall) -> str:
    return item if isinstance(item, str) else item.flat()


def layout(item: str | PyCall, indent: int, suffix: str = "") -> list[str]:
    """Lay out an expression the way black/ruff format does: one line, hugged, or one arg a line."""
    pad = " " * indent
    one_line = f"{pad}{_flat(item)}{suffix}"
    if isinstance(item, str) or len(one_line) <= LINE_LENGTH:
        return [one_line]
    if item.tail[:1] + item.tail[-1:] in ("()", "[]"):
        # `layer(args)(x)`, `call(args)[0]`: like the formatter, split the last brackets when the
        # rest fits.
        head = f"{pad}{item.head}({', '.join(_flat(a) for a in item.args)}){item.tail[0]}"
        if len(head) <= LINE_LENGTH:
            return [head, f"{pad}    {item.tail[1:-1]}", f"{pad}{item.tail[-1]}{suffix}"]
    hugged = f"{pad}    {', '.join(_flat(a) for a in item.args)}"
    if len(hugged) <= LINE_LENGTH:
        return [f"{pad}{item.head}(", hugged, f"{pad}){item.tail}{suffix}"]
    lines = [f"{pad}{item.head}("]
    for arg in item.args:
        lines += layout(arg, indent + 4, ",")
    return lines + [f"{pad}){item.tail}{suffix}"]


# --- statements: what a target builds, decides on, and only then renders --------------------


@dataclass(frozen=True)
class PyTuple:
    """`a, b` as the value of an assignment; parenthesised one item a line when too long."""

    items: tuple[str, ...]


@dataclass(frozen=True)
class PyChoice:
    """`then if condition else otherwise`, laid out as ruff formats it."""

    then: PyCall
    condition: str
    otherwise: str


Value = str | PyCall | PyTuple | PyChoice


@dataclass(frozen=True)
class Assign:
    """`targets = value`. `inline` is the expression a following statement may take in place of
    the one target, when the value feeds nothing else (None: it may not be inlined)."""

    targets: tuple[str, ...]
    value: Value
    inline: str | PyCall | None = None

    def lines(self, indent: int) -> list[str]:
        pad = " " * indent
        lhs = ", ".join(self.targets)
        value = self.value
        if isinstance(value, str):
            return [f"{pad}{lhs} = {value}"]
        if isinstance(value, PyCall):
            return layout(PyCall(f"{lhs} = {value.head}", value.args, value.tail), indent)
        if isinstance(value, PyTuple):
            line = f"{pad}{lhs} = {', '.join(value.items)}"
            if len(line) <= LINE_LENGTH:
                return [line]
            return [f"{pad}{lhs} = (", *[f"{pad}    {item}," for item in value.items], f"{pad})"]
        choice = f"{value.then.flat()} if {value.condition} else {value.otherwise}"
        if len(f"{pad}{lhs} = {choice}") <= LINE_LENGTH:
            return [f"{pad}{lhs} = {choice}"]
        if len(f"{pad}    {choice}") <= LINE_LENGTH:
            return [f"{pad}{lhs} = (", f"{pad}    {choice}", f"{pad})"]
        return [
            f"{pad}{lhs} = (",
            *layout(value.then, indent + 4),
            f"{pad}    if {value.condition}",
            f"{pad}    else {value.otherwise}",
            f"{pad})",
        ]

    def one_line(self, indent: int) -> bool:
        return len(self.lines(indent)) == 1


@dataclass(frozen=True)
class Expr:
    """An expression statement: a call made for its effect."""

    value: str | PyCall

    def lines(self, indent: int) -> list[str]:
        return layout(self.value, indent)


@dataclass(frozen=True)
class Return:
    """`return value`."""

    value: str | PyCall

    def lines(self, indent: int) -> list[str]:
        value = self.value
        if isinstance(value, str):
            return [f"{' ' * indent}return {value}"]
        return layout(PyCall(f"return {value.head}", value.args, value.tail), indent)


@dataclass(frozen=True)
class Stepping:
    """`target = module`, and in training mode `target = call`: the layer stepped over the
    module's parameters, which draws Keras's dropout masks. Only eagerly: a module built in
    `forward` does not compile, so a scripted program refuses training mode there."""

    target: str
    module: str
    call: PyCall

    def lines(self, indent: int) -> list[str]:
        pad = " " * indent
        swap = PyCall(f"{self.target} = {self.call.head}", self.call.args, self.call.tail)
        return [
            f"{pad}{self.target} = {self.module}",
            f"{pad}if self.training:",
            f"{pad}    if torch.jit.is_scripting():",
            f'{pad}        raise RuntimeError("Keras\'s recurrent dropout runs eagerly only")',
            f"{pad}    else:",
            *layout(swap, indent + 8),
        ]


Statement = Assign | Expr | Return | Stepping


def render_statements(statements: list[Statement], indent: int) -> list[str]:
    return [line for statement in statements for line in statement.lines(indent)]


# --- a graph's values as local variables (both targets) ----------------------------------


class Locals:
    """Fresh local names: none taken twice, none of the names given as taken."""

    def __init__(self, taken: set[str]) -> None:
        self.taken = set(taken)

    def fresh(self, base: str) -> str:
        name, n = base, 1
        while name in self.taken:
            n += 1
            name = f"{base}_{n}"
        self.taken.add(name)
        return name


class Variables(Locals):
    """Python names for a graph's values: the spec's own where they are free.

    A name bound again in the spec (`y = ...(y)`) is bound again in Python, unless the earlier
    value is still needed by then (an input, or a model output), which gets a fresh name.
    """

    def __init__(self, model: Model, taken: set[str]) -> None:
        super().__init__(taken)
        self.names: dict[str, str] = {}
        self.keep = {value.name for value in model.inputs} | set(model.outputs)
        self.holder: dict[str, str] = {}  # Python name -> the key it holds now
        self.used = set(model.outputs)
        for node in model.nodes:
            self.used.update(node.inputs + node.initial_state + ([node.mask] if node.mask else []))

    def bind(self, key: str) -> str:
        """The Python name for a new value `key`."""
        if key.startswith("_#") or key not in self.used:
            return "_"  # dropped, or (a warning) never used
        base = shown(key).replace(".", "_")
        held = self.holder.get(base)
        if held is not None and shown(held) == shown(key) and held not in self.keep:
            name = base  # the spec rebinds it; nothing needs the old value any more
        else:
            name = self.fresh(base)
        self.holder[name] = key
        self.names[key] = name
        return name

    def __getitem__(self, key: str) -> str:
        return self.names[key]
