"""docs/plugins.md, the hook reference, against the code.

Every hook of core/hookspecs.py is documented with the signature of the code (parameter names,
annotations, return annotation, ``firstresult``); the doc names no hook the code lacks, in a
signature block or in its text; its example implementations take only arguments of their hook
and no default; and every type a hook takes or returns is listed with the fields and
annotations of its dataclass. Annotations
are compared as text (``from __future__ import annotations`` keeps them as strings), in one
spelling: ``ast.unparse``, so that only spacing and quotes may differ.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import sys
from pathlib import Path

import pluggy
import pytest

from core import PROJECT, hookspecs

DOC = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"

# A signature block: "@hookspec" or "@hookspec(firstresult=True)", then the "def" line, no colon.
_SPEC = re.compile(r"^@hookspec(?:\((?P<options>[^)\n]*)\))?\n(?P<line>def (?P<name>univers_\w+)\(.*)$", re.M)
# A "def univers_..." line that ends without a colon is a signature, whatever comes before it.
_SIGNATURE = re.compile(r"^def univers_\w+\(.*[^:\s]$", re.M)
# An example implementation.
_IMPL = re.compile(r"^[ \t]*@hookimpl\b.*\n[ \t]*(?P<line>def (?P<name>univers_\w+)\(.*:)$", re.M)
_TYPE_SECTION = r"^#{{2,4}} `{name}`\n(?P<body>.*?)(?=^#{{2,4}} |\Z)"
_FIELD = re.compile(r"^- `(?P<name>\w+): (?P<annotation>[^`]+)`", re.M)
_MENTION = re.compile(r"\bunivers_\w+")
_NOT_HOOKS = {"univers_provison"}  # the doc's example of a misspelt hook name


@dataclasses.dataclass(frozen=True)
class Signature:
    parameters: tuple[tuple[str, str | None], ...]  # (name, annotation)
    returns: str | None
    options: tuple[tuple[str, object], ...]  # the hookspec options that are set: (("firstresult", True),)
    defaults: bool = False

    def names(self) -> list[str]:
        return [name for name, _ in self.parameters]


def _text(annotation: str | None) -> str | None:
    """One spelling of an annotation."""
    return None if annotation is None else ast.unparse(ast.parse(annotation, mode="eval"))


def code_hooks() -> dict[str, Signature]:
    """Every hook specification of core/hookspecs.py, by name."""
    out = {}
    for name, function in vars(hookspecs).items():
        options = getattr(function, f"{PROJECT}_spec", None)
        if not name.startswith("univers_") or options is None:
            continue
        signature = inspect.signature(function)
        empty = inspect.Parameter.empty
        out[name] = Signature(
            tuple((p.name, _text(None if p.annotation is empty else p.annotation)) for p in signature.parameters.values()),
            _text(None if signature.return_annotation is empty else signature.return_annotation),
            tuple(sorted((k, v) for k, v in options.items() if v)),
        )
    return out


def _parse_def(line: str, options: str | None = None) -> Signature:
    """A ``def`` line of the doc as a :class:`Signature` (raises SyntaxError)."""
    function = ast.parse(line.rstrip(":") + ": ...").body[0]
    args = function.args
    every = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    call = ast.parse(f"f({options or ''})", mode="eval").body
    return Signature(
        tuple((a.arg, ast.unparse(a.annotation) if a.annotation else None) for a in every),
        ast.unparse(function.returns) if function.returns else None,
        tuple(sorted((k.arg, ast.literal_eval(k.value)) for k in call.keywords if ast.literal_eval(k.value))),
        bool(args.defaults or any(args.kw_defaults) or args.vararg or args.kwarg),
    )


def hook_problems(doc: str) -> list[str]:
    """What the doc says of the hooks that the code does not."""
    code = code_hooks()
    problems: list[str] = []
    documented: dict[str, Signature] = {}
    for match in _SPEC.finditer(doc):
        name = match["name"]
        if name in documented:
            problems.append(f"{name}: documented twice")
            continue
        try:
            documented[name] = _parse_def(match["line"], match["options"])
        except SyntaxError as exc:
            problems.append(f"{name}: the signature line does not parse: {exc.msg}")
            documented[name] = None
    in_blocks = {match["line"] for match in _SPEC.finditer(doc)}
    for line in _SIGNATURE.findall(doc):
        if line not in in_blocks:
            problems.append(f"signature without its @hookspec line: {line}")
    for name in sorted(code.keys() - documented.keys()):
        problems.append(f"{name}: not documented (no signature block)")
    for name in sorted(documented.keys() - code.keys()):
        problems.append(f"{name}: documented, but core/hookspecs.py no longer has it")
    for name in sorted(set(_MENTION.findall(doc)) - code.keys() - documented.keys() - _NOT_HOOKS):
        problems.append(f"{name}: mentioned, but core/hookspecs.py has no such hook")
    for name in sorted(code.keys() & documented.keys()):
        want, got = code[name], documented[name]
        if got is None:
            continue
        if got.names() != want.names():
            problems.append(f"{name}: parameters {got.names()} in the doc, {want.names()} in the code")
        else:
            for (param, annotation), (_, expected) in zip(got.parameters, want.parameters):
                if annotation != expected:
                    problems.append(f"{name}: annotation of {param} is {annotation!r} in the doc, {expected!r} in the code")
        if got.returns != want.returns:
            problems.append(f"{name}: return annotation is {got.returns!r} in the doc, {want.returns!r} in the code")
        if got.options != want.options:
            problems.append(f"{name}: hookspec options {dict(got.options)} in the doc, {dict(want.options)} in the code")
    for match in _IMPL.finditer(doc):
        name = match["name"]
        if name not in code:
            problems.append(f"example implements {name}, which core/hookspecs.py does not have")
            continue
        example = _parse_def(match["line"])
        unknown = [a for a in example.names() if a != "self" and a not in code[name].names()]
        if unknown:
            problems.append(f"example of {name} takes {unknown}, which the hook does not pass")
        if example.defaults:
            problems.append(f"example of {name} has a default argument (pluggy ignores defaults)")
    return problems


def _names_in(annotation: str) -> set[str]:
    return {node.id for node in ast.walk(ast.parse(annotation, mode="eval")) if isinstance(node, ast.Name)}


def hook_types() -> dict[str, type]:
    """The dataclasses the hooks take or return, and those their fields hold, by name."""
    found: dict[str, type] = {}
    todo = [(annotation, vars(hookspecs)) for signature in code_hooks().values()
            for annotation in [signature.returns, *(a for _, a in signature.parameters)] if annotation]
    while todo:
        annotation, namespace = todo.pop()
        for name in _names_in(annotation):
            kind = namespace.get(name)
            if dataclasses.is_dataclass(kind) and name not in found:
                found[name] = kind
                module = vars(sys.modules[kind.__module__])
                todo.extend((f.type, module) for f in dataclasses.fields(kind))
    return found


def type_problems(doc: str) -> list[str]:
    """Types missing from the doc, and fields the doc and the dataclass disagree on."""
    problems = []
    for name, kind in sorted(hook_types().items()):
        section = re.search(_TYPE_SECTION.format(name=re.escape(name)), doc, re.M | re.S)
        if section is None:
            problems.append(f"type {name}: not documented (no heading `{name}`)")
            continue
        documented = {m["name"]: _text(m["annotation"]) for m in _FIELD.finditer(section["body"])}
        fields = {f.name: _text(f.type) for f in dataclasses.fields(kind)}
        for field in fields.keys() - documented.keys():
            problems.append(f"type {name}.{field}: not documented")
        for field in documented.keys() - fields.keys():
            problems.append(f"type {name}.{field}: documented, but {name} has no such field")
        for field in fields.keys() & documented.keys():
            if fields[field] != documented[field]:
                problems.append(f"type {name}.{field}: {documented[field]!r} in the doc, {fields[field]!r} in the code")
    return problems


def test_the_check_sees_every_hook_pluggy_sees():
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    assert sorted(code_hooks()) == sorted(name for name in vars(pm.hook) if name.startswith("univers_"))


def test_every_hook_is_documented_with_the_signature_of_the_code():
    assert hook_problems(DOC.read_text(encoding="utf-8")) == []


def test_every_type_the_hooks_meet_is_documented_with_its_fields():
    assert {"PluginContext", "ServiceContext", "EventContext", "ActionResult", "ProductSpec", "PlanSpec"} <= hook_types().keys()
    assert type_problems(DOC.read_text(encoding="utf-8")) == []


_PROVISION = "@hookspec(firstresult=True)\ndef univers_provision(ctx: ServiceContext) -> ActionResult | None\n"
_GONE = "\n```python\n@hookspec\ndef univers_on_order_created(ctx: EventContext, order_ids: list[int]) -> None\n```\n"


@pytest.mark.parametrize("old, new, words", [
    (_PROVISION, "", ["univers_provision", "not documented"]),
    ("def univers_suspend(ctx: ServiceContext)", "def univers_suspend(context: ServiceContext)",
     ["univers_suspend", "parameters ['context']"]),
    ("def univers_resume(ctx: ServiceContext)", "def univers_resume(ctx: OrderLineContext)",
     ["univers_resume", "annotation of ctx", "'OrderLineContext'"]),
    ("def univers_delete(ctx: ServiceContext) -> ActionResult | None\n", "def univers_delete(ctx: ServiceContext) -> ActionResult\n",
     ["univers_delete", "return annotation"]),
    ("@hookspec(firstresult=True)\ndef univers_terminate", "@hookspec\ndef univers_terminate", ["univers_terminate", "firstresult"]),
    ("@hookspec\ndef univers_on_orders_paid", "@hookspec(firstresult=True)\ndef univers_on_orders_paid",
     ["univers_on_orders_paid", "firstresult"]),
    ("def univers_on_invoices_issued(ctx: EventContext, invoice_ids: list[int])",
     "def univers_on_invoices_issued(ctx: EventContext, invoice_ids: list[int], lines: list[int])",
     ["univers_on_invoices_issued", "'lines'"]),
    ("\n## Types\n", _GONE + "\n## Types\n", ["univers_on_order_created", "no longer has it"]),
    ("`univers_on_invoices_issued`,\n  `univers_on_orders_paid`", "`univers_on_invoice_issued`,\n  `univers_on_orders_paid`",
     ["univers_on_invoice_issued: mentioned"]),
    ("@hookspec\ndef univers_register_metrics", "def univers_register_metrics", ["univers_register_metrics", "without its @hookspec"]),
    ("order_ids: list[int]) -> None:", "order_ids: list[int] = None) -> None:", ["univers_on_orders_paid", "default argument"]),
    ("def univers_technical_actions(self, universe: str, product_kind: str)", "def univers_technical_actions(self, universe: str, kind: str)",
     ["univers_technical_actions", "['kind']"]),
])
def test_a_drifted_signature_is_caught(old, new, words):
    doc = DOC.read_text(encoding="utf-8")
    assert doc.count(old) == 1, "the mutation must apply to the doc as it is"
    found = "\n".join(hook_problems(doc.replace(old, new)))
    for word in words:
        assert word in found


@pytest.mark.parametrize("old, new, words", [
    ("- `idempotency_key: str`", "- `idempotency: str`", ["ServiceContext.idempotency_key: not documented", "ServiceContext.idempotency:"]),
    ("- `quantity: int`", "- `quantity: str`", ["OrderLineContext.quantity", "'str' in the doc"]),
    ("#### `StateChange`", "#### `Change`", ["type StateChange: not documented"]),
])
def test_a_drifted_type_is_caught(old, new, words):
    doc = DOC.read_text(encoding="utf-8")
    assert doc.count(old) == 1, "the mutation must apply to the doc as it is"
    found = "\n".join(type_problems(doc.replace(old, new)))
    for word in words:
        assert word in found
