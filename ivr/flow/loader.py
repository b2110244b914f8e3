"""Load a directory of YAML flows and validate all of it before anything runs.

Every problem is collected, with the file and line of the offending key, so a store editing its
flows sees the whole list at once (`driveline flows check`). A directory with any problem raises
`FlowLoadError` and yields nothing: a bad flow never half-loads or replaces a good one.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jinja2 import TemplateSyntaxError
from pydantic import ValidationError

from ivr.flow.schema import RETURN, Flow, FlowSet, Step
from ivr.flow.steps import STEP_TYPES
from ivr.flow.templates import condition, template, undefined_names

STEP_KEYS = ("next", "on_error")  # allowed on every step besides its type
FLOW_KEYS = ("name", "start", "steps", "description")


@dataclass(frozen=True, order=True)
class Problem:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


class FlowLoadError(Exception):
    """The flows did not load; `problems` lists every one found."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = sorted(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


# --- YAML that remembers where things are -----------------------------------------------------


class _Map(dict[Any, Any]):
    line = 0
    key_lines: dict[Any, int]


class _Seq(list[Any]):
    line = 0
    item_lines: list[int]


class _MarkedLoader(yaml.SafeLoader):
    """SafeLoader whose mappings and lists carry the line of each key / item (1-based)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[tuple[int, str]] = []


def _construct_map(loader: _MarkedLoader, node: yaml.MappingNode) -> Iterator[_Map]:
    data = _Map()
    data.line, data.key_lines = node.start_mark.line + 1, {}
    yield data
    loader.flatten_mapping(node)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool | None):
            key = str(key)
        if key in data:
            loader.duplicates.append((key_node.start_mark.line + 1, str(key)))
        data[key] = loader.construct_object(value_node, deep=True)
        data.key_lines[key] = key_node.start_mark.line + 1


def _construct_seq(loader: _MarkedLoader, node: yaml.SequenceNode) -> Iterator[_Seq]:
    data = _Seq()
    data.line, data.item_lines = (
        node.start_mark.line + 1,
        [n.start_mark.line + 1 for n in node.value],
    )
    yield data
    data.extend(loader.construct_object(n, deep=True) for n in node.value)


_MarkedLoader.add_constructor("tag:yaml.org,2002:map", _construct_map)
_MarkedLoader.add_constructor("tag:yaml.org,2002:seq", _construct_seq)


def line_of(node: Any, path: Iterable[str | int], line: int) -> int:
    """Line of the deepest key along `path`.

    Parts the YAML does not spell (the field a shorthand fills, like `say: "Hi"` → `text`)
    are skipped, so an error still points at the step's key.
    """
    for part in path:
        if isinstance(node, _Map):
            if part in node:
                line, node = node.key_lines.get(part, line), node[part]
        elif isinstance(node, _Seq):
            if isinstance(part, int) and 0 <= part < len(node):
                line, node = node.item_lines[part], node[part]
        else:
            break
    return line


def _split(field: str) -> list[str | int]:
    return [int(p) if p.isdigit() else p for p in field.split(".")]


# --- one file ---------------------------------------------------------------------------------


@dataclass
class _Parsed:
    flow: Flow
    raw: _Map  # the YAML, for line numbers in the cross-checks
    complete: bool  # False when some steps did not parse: check templates, not the wiring


def _pydantic_message(error: Any) -> str:
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "missing":
        return "required"
    return str(error["msg"]).removeprefix("Value error, ")


def _parse_step(file: str, name: str, body: Any, line: int, out: list[Problem]) -> Step | None:
    where = f"steps.{name}"
    if not isinstance(body, _Map):
        out.append(Problem(file, line, where, "a step is a mapping like {say: ..., next: ...}"))
        return None
    kinds = [k for k in body if k in STEP_TYPES]
    others = [k for k in body if k not in STEP_TYPES and k not in STEP_KEYS]
    known = ", ".join(STEP_TYPES)
    for key in others:
        what = "unknown field" if kinds else f"unknown step type {key!r} (known: {known})"
        out.append(Problem(file, body.key_lines[key], f"{where}.{key}", what))
    if not kinds:
        if not others:
            out.append(Problem(file, line, where, f"no step type (one of: {known})"))
        return None
    if len(kinds) > 1:
        message = f"one step type per step, found {' and '.join(kinds)}"
        out.append(Problem(file, body.key_lines[kinds[1]], where, message))
    for key in STEP_KEYS:
        if key in body and not isinstance(body[key], str):
            out.append(Problem(file, body.key_lines[key], f"{where}.{key}", "must be a step name"))
    kind = kinds[0]
    schema = STEP_TYPES[kind].schema
    try:
        spec = schema.model_validate(schema.from_body(body[kind]))
    except ValidationError as exc:
        for error in exc.errors():
            loc = [p for p in error["loc"]]
            at = line_of(body, [kind, *loc], body.key_lines[kind])
            field = ".".join(str(p) for p in [where, kind, *loc])
            out.append(Problem(file, at, field, _pydantic_message(error)))
        return None
    nxt, on_error = body.get("next"), body.get("on_error")
    return Step(
        name=name,
        kind=kind,
        spec=spec,
        next=nxt if isinstance(nxt, str) else None,
        on_error=on_error if isinstance(on_error, str) else None,
        line=line,
    )


def _parse_file(path: Path, out: list[Problem]) -> _Parsed | None:
    """The flow in one file (maybe incomplete), or None; problems are added to `out`."""
    file = str(path)
    loader = _MarkedLoader(path.read_text(encoding="utf-8"))
    try:
        raw = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        out.append(Problem(file, line, "yaml", f"{exc.problem or exc}"))
        return None
    finally:
        loader.dispose()
    for line, key in loader.duplicates:
        out.append(Problem(file, line, key, "duplicate key"))
    if not isinstance(raw, _Map):
        out.append(Problem(file, 1, "flow", "a flow file is a mapping with name, start and steps"))
        return None
    before = len(out)
    for key in raw:
        if key not in FLOW_KEYS:
            out.append(Problem(file, raw.key_lines[key], str(key), "unknown field"))
    for key in ("name", "start"):
        if not isinstance(raw.get(key), str) or not raw[key]:
            out.append(Problem(file, raw.key_lines.get(key, 1), key, "required (a name)"))
    steps = raw.get("steps")
    if not isinstance(steps, _Map) or not steps:
        out.append(Problem(file, raw.key_lines.get("steps", 1), "steps", "required (a mapping)"))
        return None
    parsed: dict[str, Step] = {}
    for name, body in steps.items():
        line = steps.key_lines[name]
        if not isinstance(name, str) or name == RETURN:
            out.append(Problem(file, line, f"steps.{name}", f"{name!r} cannot name a step"))
            continue
        step = _parse_step(file, name, body, line, out)
        if step is not None:
            parsed[name] = step
    if len(out) > before and not (isinstance(raw.get("name"), str) and raw.get("start")):
        return None
    flow = Flow(
        name=raw["name"],
        start=raw["start"],
        steps=parsed,
        file=file,
        description=str(raw.get("description") or ""),
    )
    return _Parsed(flow, raw, complete=len(out) == before)


# --- the whole set ----------------------------------------------------------------------------


def _links(step: Step) -> list[tuple[str, str]]:
    """(field under steps.NAME, target) for every jump out of a step."""
    found = [(key, t) for key, t in (("next", step.next), ("on_error", step.on_error)) if t]
    return found + [(f"{step.kind}.{f}", t) for f, t in step.spec.targets()]


def _flows_with_input(flows: dict[str, Flow]) -> set[str]:
    """Flows that wait for the caller somewhere, directly or in a sub-flow they call."""
    result: set[str] = set()
    changed = True
    while changed:
        changed = False
        for flow in flows.values():
            if flow.name in result:
                continue
            for step in flow.steps.values():
                calls = {sub for _, sub in step.spec.subflows()}
                if step.spec.waits_for_caller or calls & result:
                    result.add(flow.name)
                    changed = True
                    break
    return result


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components that contain a cycle (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in graph[node]:
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1 or node in graph[node]:
                found.append(component)

    for node in graph:
        if node not in index:
            visit(node)
    return found


def _check_templates(
    file: str,
    step: Step,
    raw_steps: _Map,
    known: tuple[set[str], set[str]],
    out: list[Problem],
) -> None:
    """Compile every template and condition of a step and look for names nothing provides."""
    sources = [(f, s, False) for f, s in step.spec.templates()]
    sources += [(f, s, True) for f, s in step.spec.conditions()]
    for field, source, is_expression in sources:
        field = f"{step.kind}.{field}"
        line = line_of(raw_steps, [step.name, *_split(field)], step.line)
        try:
            (condition if is_expression else template)(source)
            messages = undefined_names(
                source, expression=is_expression, known_vars=known[0], known_slots=known[1]
            )
        except TemplateSyntaxError as exc:
            messages = [f"template syntax error: {exc.message}"]
        out.extend(Problem(file, line, f"steps.{step.name}.{field}", m) for m in messages)


def _check_audio_files(flow: Flow, step: Step, raw_steps: _Map, out: list[Problem]) -> None:
    """A file path written out (no template) must stay in the flows folder; a templated one is
    checked when it is rendered (`Call.audio_file`)."""
    for field, source in step.spec.audio_files():
        if "{{" in source or "{%" in source:
            continue
        try:
            flow.audio_file(source)
        except ValueError as exc:
            field = f"{step.kind}.{field}"
            line = line_of(raw_steps, [step.name, *_split(field)], step.line)
            out.append(Problem(flow.file, line, f"steps.{step.name}.{field}", str(exc)))


def _check_flow(
    parsed: _Parsed,
    flow_names: set[str],
    with_input: set[str],
    known: tuple[set[str], set[str]],
    out: list[Problem],
) -> None:
    flow, raw = parsed.flow, parsed.raw
    file, raw_steps = flow.file, raw["steps"]
    for step in flow.steps.values():
        _check_templates(file, step, raw_steps, known, out)
        _check_audio_files(flow, step, raw_steps, out)
    if not parsed.complete:
        return  # targets of steps that did not parse would all look missing
    if flow.start not in flow.steps:
        out.append(Problem(file, raw.key_lines["start"], "start", f"no step named {flow.start!r}"))
    graph: dict[str, list[str]] = {}
    broken_links = False
    for step in flow.steps.values():

        def at(field: str, step: Step = step) -> int:
            return line_of(raw_steps, [step.name, *_split(field)], step.line)

        graph[step.name] = []
        for field, target in _links(step):
            if target == RETURN:
                continue
            if target not in flow.steps:
                close = difflib.get_close_matches(target, list(flow.steps), n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                message = f"no step named {target!r} in flow {flow.name}{hint}"
                out.append(Problem(file, at(field), f"steps.{step.name}.{field}", message))
                broken_links = True
            else:
                graph[step.name].append(target)
        for field, sub in step.spec.subflows():
            if sub not in flow_names:
                field = f"{step.kind}.{field}"
                out.append(
                    Problem(file, at(field), f"steps.{step.name}.{field}", f"no flow named {sub!r}")
                )
    if flow.start in flow.steps and not broken_links:  # else everything after looks unreachable
        seen, todo = {flow.start}, [flow.start]
        while todo:
            for succ in graph[todo.pop()]:
                if succ not in seen:
                    seen.add(succ)
                    todo.append(succ)
        for step in flow.steps.values():
            if step.name not in seen:
                out.append(Problem(file, step.line, f"steps.{step.name}", "unreachable from start"))

    def waits(step: Step) -> bool:
        calls = {sub for _, sub in step.spec.subflows()}
        return step.spec.waits_for_caller or bool(calls & with_input)

    quiet = {
        n: [s for s in succ if not waits(flow.steps[s])]
        for n, succ in graph.items()
        if not waits(flow.steps[n])
    }
    order = list(flow.steps)
    for component in _cycles(quiet):
        members = sorted(component, key=order.index)
        loop = " → ".join([*members, members[0]])
        first = flow.steps[members[0]]
        message = f"loop with no caller input (add a gather or a way out): {loop}"
        out.append(Problem(file, first.line, f"steps.{first.name}", message))


def load_flows(directory: str | Path) -> FlowSet:
    """Every `*.yaml` in `directory` (not sub-folders: `tests/` holds flow tests)."""
    folder = Path(directory)
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise FlowLoadError([Problem(str(folder), 0, "flows", "no *.yaml flow files here")])
    return load_flow_files(files)


def load_flow_files(files: Iterable[Path]) -> FlowSet:
    out: list[Problem] = []
    parsed: list[_Parsed] = []
    for path in files:
        result = _parse_file(Path(path), out)
        if result is not None:
            parsed.append(result)
    flows: dict[str, Flow] = {}
    for item in parsed:
        name = item.flow.name
        if name in flows:
            message = f"flow {name!r} is also defined in {flows[name].file}"
            out.append(Problem(item.flow.file, item.raw.key_lines["name"], "name", message))
        flows[name] = item.flow
    steps = [s for f in flows.values() for s in f.steps.values()]
    known = (
        {v for s in steps for v in s.spec.assigns()},
        {k for s in steps for k in s.spec.fills()},
    )
    with_input = _flows_with_input(flows)
    for item in parsed:
        _check_flow(item, set(flows), with_input, known, out)
    if out:
        raise FlowLoadError(out)
    return FlowSet(flows)
