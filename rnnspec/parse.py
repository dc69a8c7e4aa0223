"""Text -> AST. The grammar is grammars/rnnspec.lark; this module only shapes its tree and words its errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken

from rnnspec.errors import Diagnostic, Pos, SpecError
from rnnspec.resources import resource_dir
from rnnspec.text import escape_unprintable, normalize, split_lines


@dataclass(frozen=True)
class Number:
    text: str
    pos: Pos

    @property
    def is_int(self) -> bool:
        return self.text.lstrip("+-").isdigit()

    @property
    def value(self) -> int | float:
        return int(self.text) if self.is_int else float(self.text)


@dataclass(frozen=True)
class Bool:
    value: bool
    pos: Pos


@dataclass(frozen=True)
class Ident:
    name: str
    pos: Pos


@dataclass(frozen=True)
class Star:
    pos: Pos


@dataclass(frozen=True)
class Arg:
    name: str | None  # None for a positional argument
    value: Value
    pos: Pos  # of the keyword, or of the value when positional


@dataclass(frozen=True)
class Call:
    kind: str
    args: tuple[Arg, ...]
    pos: Pos


@dataclass(frozen=True)
class ListValue:
    """`[a, b]`: `initial_state=[h, c]` in a layer's inputs (v1)."""

    items: tuple[Value, ...]
    pos: Pos


Value = Number | Bool | Ident | Call | ListValue


@dataclass(frozen=True)
class InputDecl:
    name: str
    dtype: Ident
    dims: tuple[Number | Star, ...]
    pos: Pos
    name_pos: Pos
    end_line: int = 0


@dataclass(frozen=True)
class LayerStmt:
    """`[targets =] call[(inputs)] [as alias]`.

    v0 writes only `call [as alias]`. In v1, `targets` name the values the layer returns (`_`
    drops one), and `inputs` are the values it is applied to, with `mask=` and
    `initial_state=[...]` as keywords; `inputs` is None when the statement has no second
    parenthesis (the layer takes the previous statement's value, as in v0). A call whose kind is
    an earlier layer's name (`enc(x)`) applies that layer again, sharing its weights; the
    parser does not know layer names, so that call's arguments are its inputs.
    """

    call: Call
    alias: Ident | None
    pos: Pos
    end_line: int = 0
    targets: tuple[Ident, ...] = ()
    inputs: tuple[Arg, ...] | None = None


@dataclass(frozen=True)
class OutputStmt:
    """`output a, b`: the model's outputs, in order (v1)."""

    names: tuple[Ident, ...]
    pos: Pos
    end_line: int = 0


Statement = InputDecl | LayerStmt | OutputStmt


@dataclass(frozen=True)
class ModelAST:
    name: str
    name_pos: Pos
    options: tuple[Arg, ...]
    statements: tuple[Statement, ...]
    pos: Pos
    end_pos: Pos


@dataclass(frozen=True)
class Dotted:
    """`a.b.c`: a module path, a parameter path, or (one part) a plain name."""

    parts: tuple[str, ...]
    pos: Pos

    @property
    def text(self) -> str:
        return ".".join(self.parts)


@dataclass(frozen=True)
class ClassRef:
    """`package.module:Class`, where an extern layer's class lives."""

    module: Dotted
    name: Ident
    pos: Pos


@dataclass(frozen=True)
class Wrapped:
    """`transpose(proj.weight)` in a weight table."""

    func: Ident
    target: Dotted
    pos: Pos


@dataclass(frozen=True)
class FieldList:
    items: tuple[Number | Star | Dotted | Wrapped, ...]
    pos: Pos


FieldValue = Dotted | ClassRef | FieldList


@dataclass(frozen=True)
class ExternField:
    """`key = value` inside an extern block."""

    name: str
    value: FieldValue
    pos: Pos
    end_line: int = 0


@dataclass(frozen=True)
class ExternArg:
    """`name: type [= default]` inside an extern block: one argument of the user's layer."""

    name: str
    type: Value
    default: Value | None
    pos: Pos
    end_line: int = 0


@dataclass(frozen=True)
class ExternAST:
    name: str
    name_pos: Pos
    items: tuple[ExternField | ExternArg, ...]
    pos: Pos
    end_pos: Pos


@dataclass
class SpecFile:
    models: list[ModelAST] = field(default_factory=list)
    externs: list[ExternAST] = field(default_factory=list)


@lru_cache(maxsize=1)
def _parser() -> Lark:
    """The LALR parser: from the tables shipped in the package while they match the grammar.

    Nothing is cached at run time (a cache in a shared temp directory is a place to plant a
    pickle); see rnnspec/prebuild.py.
    """
    from rnnspec.prebuild import GRAMMAR_FILE, LARK_OPTIONS, sha256

    grammar = (resource_dir("grammars") / GRAMMAR_FILE).read_text(encoding="utf-8")
    try:
        from rnnspec._prebuilt import grammar as prebuilt
    except ImportError:  # pragma: no cover - a checkout whose prebuilt files were deleted
        prebuilt = None
    if prebuilt is not None and prebuilt.GRAMMAR_SHA256 == sha256(grammar):
        return Lark._load_from_dict(prebuilt.TABLES["data"], prebuilt.TABLES["memo"])
    return Lark(grammar, **LARK_OPTIONS)


def _pos(item: Token | Tree) -> Pos:
    if isinstance(item, Token):
        return Pos(item.line, item.column)
    return Pos(item.meta.line, item.meta.column)


# A layer nests inside `bidirectional(...)`; deeper nesting than this is a mistake, and refusing it
# keeps the tree walks below far from Python's recursion limit.
MAX_NESTING = 16
# Python refuses to convert integers of more than 4,300 digits; no size in a model needs 20.
MAX_INT_DIGITS = 20


def parse(source: str) -> SpecFile:
    """Parse `.rnn` text; raise SpecError with a worded diagnostic on a syntax error."""
    source = normalize(source)
    try:
        tree = _parser().parse(source)
    except UnexpectedInput as exc:
        raise SpecError([_syntax_diagnostic(exc, source)]) from None
    models = [_model(child) for child in tree.children if child.data == "model"]
    externs = [_extern(child) for child in tree.children if child.data == "extern"]
    return SpecFile(models, externs)


def _extern(tree: Tree) -> ExternAST:
    name, *items = tree.children
    return ExternAST(
        name=str(name),
        name_pos=_pos(name),
        items=tuple(_extern_item(item) for item in items),
        pos=_pos(tree),
        end_pos=Pos(tree.meta.end_line, max(tree.meta.end_column - 1, 1)),
    )


def _extern_item(tree: Tree) -> ExternField | ExternArg:
    key = tree.children[0]
    if tree.data == "extern_field":
        return ExternField(str(key), _field_value(tree.children[1]), _pos(key), tree.meta.end_line)
    type_, *default = tree.children[1:]
    return ExternArg(
        name=str(key),
        type=_value(type_),
        default=_value(default[0]) if default else None,
        pos=_pos(key),
        end_line=tree.meta.end_line,
    )


def _dotted(tree: Tree) -> Dotted:
    return Dotted(tuple(str(t) for t in tree.children), _pos(tree.children[0]))


def _field_value(tree: Tree) -> FieldValue:
    if tree.data == "class_ref":
        module, name = tree.children
        return ClassRef(_dotted(module), Ident(str(name), _pos(name)), _pos(tree))
    if tree.data == "field_list":
        return FieldList(tuple(_field_item(item) for item in tree.children), _pos(tree))
    return _dotted(tree)


def _field_item(item: Token | Tree) -> Number | Star | Dotted | Wrapped:
    if isinstance(item, Token):
        return Star(_pos(item))
    if item.data == "number":
        return Number(str(item.children[0]), _pos(item))
    if item.data == "wrapped":
        func, target = item.children
        return Wrapped(Ident(str(func), _pos(func)), _dotted(target), _pos(func))
    return _dotted(item)


def field_text(value: FieldValue | Number | Star | Wrapped) -> str:
    """An extern block's field value as it is written in a spec."""
    if isinstance(value, Dotted):
        return value.text
    if isinstance(value, ClassRef):
        return f"{value.module.text}:{value.name.name}"
    if isinstance(value, FieldList):
        return "[" + ", ".join(field_text(item) for item in value.items) + "]"
    if isinstance(value, Wrapped):
        return f"{value.func.name}({value.target.text})"
    if isinstance(value, Star):
        return "*"
    return value.text


def _model(tree: Tree) -> ModelAST:
    children = list(tree.children)
    name = children.pop(0)
    options: tuple[Arg, ...] = ()
    if children and isinstance(children[0], Tree) and children[0].data == "model_options":
        options = tuple(_arg(a) for a in children.pop(0).children)
    statements = tuple(_statement(s) for s in children)
    return ModelAST(
        name=str(name),
        name_pos=_pos(name),
        options=options,
        statements=statements,
        pos=_pos(tree),
        end_pos=Pos(tree.meta.end_line, max(tree.meta.end_column - 1, 1)),
    )


def _statement(tree: Tree) -> Statement:
    if tree.data == "output_stmt":
        return OutputStmt(
            names=tuple(Ident(str(t), _pos(t)) for t in tree.children),
            pos=_pos(tree),
            end_line=tree.meta.end_line,
        )
    if tree.data == "input_decl":
        name, dtype, *dims = tree.children
        return InputDecl(
            name=str(name),
            dtype=Ident(str(dtype), _pos(dtype)),
            dims=tuple(_dim(d) for d in dims),
            pos=_pos(tree),
            name_pos=_pos(name),
            end_line=tree.meta.end_line,
        )
    children = list(tree.children)
    targets: tuple[Ident, ...] = ()
    if isinstance(children[0], Tree) and children[0].data == "targets":
        targets = tuple(Ident(str(t), _pos(t)) for t in children.pop(0).children)
    call = _call(children.pop(0))
    inputs = None
    if children and isinstance(children[0], Tree) and children[0].data == "call_inputs":
        inputs = tuple(_arg(a, 1) for a in children.pop(0).children)
    return LayerStmt(
        call=call,
        alias=Ident(str(children[0]), _pos(children[0])) if children else None,
        pos=_pos(tree),
        end_line=tree.meta.end_line,
        targets=targets,
        inputs=inputs,
    )


def _dim(item: Token | Tree) -> Number | Star:
    if isinstance(item, Token):
        return Star(_pos(item))
    return Number(str(item.children[0]), _pos(item))


def _call(tree: Tree, depth: int = 1) -> Call:
    kind, *args = tree.children
    if depth > MAX_NESTING:
        raise SpecError.single(
            f"layers nest more than {MAX_NESTING} deep here; a spec nests one layer in `bidirectional(...)`",
            _pos(kind),
        )
    return Call(kind=str(kind), args=tuple(_arg(a, depth) for a in args), pos=_pos(kind))


def _arg(tree: Tree, depth: int = 0) -> Arg:
    if tree.data == "keyword":
        key, value = tree.children
        return Arg(name=str(key), value=_value(value, depth), pos=_pos(key))
    value = _value(tree.children[0], depth)
    return Arg(name=None, value=value, pos=value.pos)


def _value(tree: Tree, depth: int = 0) -> Value:
    if tree.data == "call":
        return _call(tree, depth + 1)
    if tree.data == "number":
        text = str(tree.children[0])
        digits = len(text.lstrip("+-").split(".")[0].split("e")[0].split("E")[0])
        if digits > MAX_INT_DIGITS:
            raise SpecError.single(
                f"the number `{text[:12]}...` has {digits} digits before its point; "
                f"rnnspec reads at most {MAX_INT_DIGITS}",
                _pos(tree),
            )
        return Number(text, _pos(tree))
    if tree.data == "list":
        if depth > MAX_NESTING:
            raise SpecError.single(f"lists nest more than {MAX_NESTING} deep here", _pos(tree))
        return ListValue(tuple(_value(item, depth + 1) for item in tree.children), _pos(tree))
    if tree.data == "true":
        return Bool(True, _pos(tree))
    if tree.data == "false":
        return Bool(False, _pos(tree))
    token = tree.children[0]
    return Ident(str(token), _pos(token))


def value_text(value: Value) -> str:
    """A value as it is written in a spec (nested calls included)."""
    if isinstance(value, Number):
        return value.text
    if isinstance(value, Bool):
        return "true" if value.value else "false"
    if isinstance(value, Ident):
        return value.name
    if isinstance(value, ListValue):
        return "[" + ", ".join(value_text(item) for item in value.items) + "]"
    return f"{value.kind}({', '.join(arg_text(a) for a in value.args)})"


def arg_text(arg: Arg) -> str:
    """An argument as it is written in a spec: `value` or `name=value`."""
    return f"{arg.name}={value_text(arg.value)}" if arg.name else value_text(arg.value)


# --- syntax errors in words -------------------------------------------------------------

_TERMINAL_WORDS = {
    "NAME": "a name",
    "NUMBER": "a number",
    "STAR": "`*`",
    "$END": "the end of the file",
}


def _describe_terminal(name: str) -> str:
    if name in _TERMINAL_WORDS:
        return _TERMINAL_WORDS[name]
    try:
        pattern = _parser().get_terminal(name).pattern
    except KeyError:
        return name
    return f"`{pattern.value}`"


def _expected_words(expected: set[str]) -> str:
    words = sorted({_describe_terminal(t) for t in expected})
    if len(words) == 1:
        return words[0]
    return ", ".join(words[:-1]) + " or " + words[-1]


def _found(exc: UnexpectedInput, source: str) -> str:
    if isinstance(exc, UnexpectedToken):
        if exc.token.type == "$END":
            return "the end of the file"
        return f"`{exc.token}`"
    if isinstance(exc, UnexpectedCharacters):
        char = source[exc.pos_in_stream]
        if char.isascii():
            return f"`{escape_unprintable(char)}`"
        # A look-alike (a Cyrillic e for a Latin one, a full-width letter) is invisible in the excerpt.
        import unicodedata

        return f"`{escape_unprintable(char)}` (U+{ord(char):04X} {unicodedata.name(char, 'an unnamed character')})"
    return "the end of the file"


def _syntax_diagnostic(exc: UnexpectedInput, source: str) -> Diagnostic:
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        lines = split_lines(source) or [""]
        pos = Pos(len(lines), len(lines[-1]) + 1)
    else:
        pos = Pos(exc.line, exc.column)
    expected = set(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or ())
    found = _found(exc, source)
    hint = _common_mistake(exc, expected, source)
    if hint:
        return Diagnostic(pos, hint)
    if isinstance(exc, UnexpectedCharacters) and not expected:
        return Diagnostic(pos, f"unexpected character {found}")
    return Diagnostic(pos, f"expected {_expected_words(expected)}, found {found}")


def _unclosed(source: str) -> str | None:
    """The bracket left open at the end of the text, innermost first (the language has no strings;
    comments are skipped)."""
    stack = []
    for line in split_lines(source):
        for ch in line.split("#", 1)[0]:
            if ch in "({[":
                stack.append({"(": ")", "{": "}", "[": "]"}[ch])
            elif ch in ")}]" and stack and stack[-1] == ch:
                stack.pop()
    return stack[-1] if stack else None


def _common_mistake(exc: UnexpectedInput, expected: set[str], source: str) -> str | None:
    """Name, in words, the mistakes people make most often."""
    token = getattr(exc, "token", None)
    text = str(token) if token is not None else ""
    if token is not None and token.type == "$END":
        unclosed = _unclosed(source)
        if unclosed:
            return f"expected `{unclosed}`, found the end of the file: is a `{unclosed}` missing?"
    if isinstance(exc, UnexpectedCharacters):
        char = source[exc.pos_in_stream]
        if char in "\"'":
            return "strings are not part of the language: write names and numbers without quotes"
        if char == ":" and "EQUAL" in expected:
            return "expected `=` between an argument name and its value, found `:`"
        if char == ";":
            return "a statement ends at the end of its line: drop the `;`"
        return None
    if token is not None and token.type in ("EQUAL", "COMMA", "LPAR") and expected == {"NAME"}:
        before = split_lines(source)[token.line - 1][: token.column - 1].rstrip()
        word = before.rsplit(None, 1)[-1] if before.split() else ""
        if word in ("input", "output"):
            return (
                f"`{word}` starts an `{word}` statement and cannot name a value or a layer here; "
                "choose another name"
            )
    if "MODEL" in expected and expected <= {"MODEL", "EXTERN", "$END"}:
        if token is not None and token.type == "NAME":
            return (
                f"expected `model NAME {{ ... }}`, found `{text}`: "
                "every layer and input belongs inside a model block"
            )
    if text == "None" and "STAR" in expected:
        return "expected `*` or a number, found `None`: a length that varies (Keras's None) is written `*`"
    if token is not None and token.type == "COLON" and "EQUAL" in expected:
        return "expected `=` between an argument name and its value, found `:`"
    if "RPAR" in expected and "COMMA" in expected and token is not None:
        if token.type in ("NAME", "NUMBER", "TRUE", "FALSE"):
            return f"expected `,` or `)` before `{text}`: is a comma missing between arguments?"
        return f"expected `,` or `)`, found {_found(exc, source)}: is a `)` missing?"
    return None
