"""Propose a role for every code cell from what its code does (`nb2prod tag`), without a kernel.

Start from the served model's last fit and keep the cells that the model, its fit input and its
metrics depend on (reaching definitions between cells, see `flow`). Everything else only
displays, plots or explores and is proposed as `skip`, and so is everything after the last cell
that is needed. Among the kept cells: reading data is `load`, fitting the served model `train`,
scoring it `evaluate`, and the definitions the pickled model refers to (with the imports and
constants they need) `preprocess`. Cells tagged `skip`, the parameters cell and roles written as
`#| nb2prod:` lines are the user's choice and are kept.
"""

from __future__ import annotations

import ast
import re
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from nb2prod.analysis import names as analysis
from nb2prod.analysis.findings import Finding
from nb2prod.analysis.fitchain import analyse_fits
from nb2prod.analysis.flow import CellFacts, cell_facts, dotted, reads_data, with_containers
from nb2prod.analysis.joins import joined_file
from nb2prod.analysis.raw_origin import RawOrigin, changed_after, find_raw_origin
from nb2prod.analysis.reasons import describe_unneeded, listed
from nb2prod.analysis.served import ServedModel, find_served_model
from nb2prod.analysis.service_input import ServiceInput, blocker, replay_errors, service_input, with_roles
from nb2prod.analysis.shipped import ShippedCode, ShippedCodeFinder, unshippable_line
from nb2prod.analysis.targets import model_candidates
from nb2prod.notebook.spec import ROLE_LINE, NotebookSpec, Role

METRIC_CALL = re.compile(
    r"(^|\.)(\w+_score|\w+_error|\w+_loss|score|classification_report|confusion_matrix|cross_validate)$"
)
STATE_CALL = re.compile(r"(^|\.)(seed|set_seed|manual_seed|set_random_seed|set_config|chdir)$|^sys\.path\.")
STATE_MAGIC = re.compile(r"^\s*%(cd|run|env|set_env|load_ext)\b")
GLOBAL_RANDOM = re.compile(
    r"^(np|numpy)\.random\.(?!(seed|default_rng|RandomState|Generator|SeedSequence|PCG64|MT19937)$)\w+$"
    r"|^random\.(?!(seed|Random|SystemRandom)$)\w+$"
)
RANDOM_STATE_CALL = re.compile(r"(^|\.)(sample|train_test_split|shuffle|permutation)$")
DISPLAY_MODULES = frozenset({"plt", "matplotlib", "mpl", "sns", "seaborn", "px", "plotly"})
FIT_INPUT = "prepares the fit input: "
DISPLAY_SETTING = re.compile(r"\.options\.display\.|\brcParams\b")


@dataclass(frozen=True)
class RoleProposal:
    """The proposed role of one code cell. `roles` holds all of them (a cell that fits and scores
    gets `train` and `evaluate`); `role` is the first, or None for a cell that runs untagged.
    `fixed` marks a role the user set (a `skip` tag, the parameters tag, a `#| nb2prod:` line)."""

    cell_index: int
    role: str | None
    reason: str
    roles: tuple[str, ...] = ()
    fixed: bool = False


@dataclass(frozen=True)
class RolePlan:
    """The proposal for a whole notebook, and what the user should know about it."""

    proposals: tuple[RoleProposal, ...]
    model: str
    convert_needs_model: bool  # the proposed train cells also fit other estimators
    warnings: tuple[str, ...]
    service_input: ServiceInput | None = None  # what the service will take, with these roles


def propose_roles(spec: NotebookSpec, model: str | None = None) -> RolePlan:
    """A role per code cell, from the def-use analysis of the cells (see the module docstring)."""
    facts = with_containers([cell_facts(c) for c in spec.code_cells()])
    running = [f for f in facts if not f.cell.has(Role.SKIP)]
    served = find_served_model(spec, running, model)
    evaluate = _evaluate_cells(spec, running, served)
    fixed = {f.cell.index: _fixed_roles(f) for f in facts if _fixed_roles(f) is not None}
    roots = [served.fit, *(f for f in running if f.cell.index in evaluate or f.cell.index in fixed)]
    state = _state_cells(running, served)
    roots += [f for f in running if f.cell.index in state]
    needed = _needed(running, roots)
    shipped = ShippedCodeFinder(running).find(served.root, served.start, served.calls_preprocess)
    last = max(needed)
    context = _Context(spec, served, evaluate, needed, shipped, _input_cells(running, served), last, state)
    proposals = [_propose(context, f, fixed.get(f.cell.index)) for f in facts]
    features = served.fit_call.features if served.fit_call is not None else None
    origin = find_raw_origin(running, served.fit.cell.index, features)
    proposals = _after_the_origin(proposals, origin)
    proposals = _choose_parameters(running, proposals, needed, served)
    needs_model = _convert_needs_model(spec, facts, proposals, served)
    chosen = model or spec.config.model or (served.variable if needs_model else None)
    loads = sorted(p.cell_index for p in proposals if Role.LOAD.value in p.roles)
    joined = joined_file(spec, running, loads)
    proposals, service = raw_or_engineered(spec, running, proposals, context.input_cells, chosen, joined)
    proposals = _read_cell_note(proposals, origin, _changed_after(spec, running, served, origin), service)
    return RolePlan(
        proposals=tuple(proposals),
        model=served.variable,
        convert_needs_model=needs_model,
        warnings=tuple(_warnings(context, running, facts)),
        service_input=service,
    )


@dataclass(frozen=True)
class _Context:
    spec: NotebookSpec
    served: ServedModel
    evaluate: dict[int, str]  # cell index -> what it computes
    needed: dict[int, tuple[int, str] | None]  # cell index -> (a cell that needs it, the name)
    shipped: ShippedCode
    input_cells: set[int]
    last_needed: int
    state: dict[int, str]  # cell index -> the global state it changes


def _fixed_roles(facts: CellFacts) -> tuple[tuple[Role, ...], str] | None:
    cell = facts.cell
    lines = cell.source.splitlines()
    if lines and ROLE_LINE.match(lines[0]):
        return cell.roles, "its role is set by its `#| nb2prod:` line; kept"
    if cell.has(Role.SKIP):
        return (Role.SKIP,), "tagged `skip` already; kept"
    if cell.has(Role.PARAMETERS):
        return (Role.PARAMETERS,), "tagged `parameters` already; kept"
    return None


def _evaluate_cells(spec: NotebookSpec, running: Sequence[CellFacts], served: ServedModel) -> dict[int, str]:
    """Cells that score the served model: they read it (or what it predicted) and call a metric,
    or set the `metrics` dict (notebook metadata `nb2prod.metrics` may name another variable)."""
    metrics_name = spec.config.metrics or "metrics"
    derived = {served.root}
    others = {c.variable for c in model_candidates(running)} - {served.root}
    found: dict[int, str] = {}
    for facts in running:
        index = facts.cell.index
        if index < served.birth.cell.index:
            continue
        if index > served.fit.cell.index and (
            served.root in _assigned(facts) or any(c.receiver == served.root for c in facts.fits)
        ):
            break  # from here on the name holds another model, or another fit
        if others & set(facts.uses) and index != served.fit.cell.index:
            derived -= facts.binds  # it scores other models too: a report, not the served model's metrics
            continue
        if derived & set(facts.uses) or index in (served.birth.cell.index, served.fit.cell.index):
            metric = _metric_call(facts, derived | facts.binds)
            parts = [f"computes `{metric}` for the served model"] if metric else []
            if _sets_dict(facts, metrics_name):
                parts.append(f"sets the `{metrics_name}` dict")
            if parts:
                found[index] = " and ".join(parts)
            derived |= facts.binds
        else:
            derived -= facts.binds
    return found


def _metric_call(facts: CellFacts, derived: set[str]) -> str | None:
    """The first metric call in the cell that reads the served model or what it predicted."""
    tree = analysis.parse_cell(facts.cell)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)] if tree is not None else []
    for node in sorted(calls, key=lambda n: (n.lineno, n.col_offset)):
        if METRIC_CALL.search(dotted(node.func) or ""):
            read = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
            if read & derived:
                return (dotted(node.func) or "").split(".")[-1]
    return None


def _assigned(facts: CellFacts) -> set[str]:
    tree = analysis.parse_cell(facts.cell)
    return analysis.top_level_names(tree) if tree is not None else set()


def _sets_dict(facts: CellFacts, name: str) -> bool:
    for statement in facts.statements:
        node = statement.node
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            value = node.value
            if isinstance(value, (ast.Dict, ast.DictComp)):
                return True
            if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "dict":
                return True
    return False


def _state_cells(running: Sequence[CellFacts], served: ServedModel) -> dict[int, str]:
    """Cells above the fit that change global state the run depends on (seeds, config, paths,
    the global random generators, names a star import may bring), each with what it changes;
    display settings (`plt.rcParams[...]`, `pd.options.display...`) are not such state."""
    imported = {n for f in running for n in _imported_names(f)} - DISPLAY_MODULES
    found: dict[int, str] = {}
    for facts in running:
        if facts.cell.index >= served.fit.cell.index:
            break
        magics = [m for m in analysis.find_magics(facts.cell) if STATE_MAGIC.match(m.line)]
        changed = facts.mutates & imported and not DISPLAY_SETTING.search(analysis.to_python(facts.cell))
        calls = [c for c in facts.calls if STATE_CALL.search(c)]
        draw = _random_draw(facts)
        star = _star_import(facts)
        if calls:
            found[facts.cell.index] = f"changes state the run depends on (`{calls[0]}`)"
        elif star:
            found[facts.cell.index] = f"`{star}` may define any name later cells use"
        elif draw:
            found[facts.cell.index] = (
                f"draws from the global random generator (`{draw}`), which changes every later random result"
            )
        elif changed or magics:
            found[facts.cell.index] = "changes state the run depends on"
    return found


def _star_import(facts: CellFacts) -> str | None:
    for statement in facts.statements:
        node = statement.node
        if isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names):
            return f"from {'.' * node.level}{node.module or ''} import *"
    return None


def _random_draw(facts: CellFacts) -> str | None:
    """The first call that draws from NumPy's or Python's global random generator (the run seeds
    them once, before the first cell): `np.random.rand(...)`, `random.choice(...)`, and
    `df.sample(...)`, `train_test_split(...)` or `shuffle(...)` without `random_state`."""
    tree = analysis.parse_cell(facts.cell)
    for node in ast.walk(tree) if tree is not None else ():
        if not isinstance(node, ast.Call):
            continue
        callee = dotted(node.func) or ""
        if GLOBAL_RANDOM.search(callee):
            return callee
        seeded = any(k.arg == "random_state" for k in node.keywords)
        if RANDOM_STATE_CALL.search(callee) and not seeded:
            return callee
    return None


def _needed(running: Sequence[CellFacts], roots: Sequence[CellFacts]) -> dict[int, tuple[int, str] | None]:
    """The roots and every cell they depend on, each with the first cell found needing it."""
    position = {f.cell.index: i for i, f in enumerate(running)}
    binders: dict[str, list[int]] = {}
    for i, facts in enumerate(running):
        for name in facts.binds:
            binders.setdefault(name, []).append(i)
    needed: dict[int, tuple[int, str] | None] = {r.cell.index: None for r in roots}
    work = list(roots)
    while work:
        facts = work.pop()
        for name in facts.uses:
            above = binders.get(name, [])
            at = bisect_left(above, position[facts.cell.index])
            if at == 0:
                continue
            definer = running[above[at - 1]].cell.index
            if definer not in needed:
                needed[definer] = (facts.cell.index, name)
                work.append(running[above[at - 1]])
            elif (first := needed[definer]) is not None and facts.cell.index < first[0]:
                needed[definer] = (facts.cell.index, name)  # name the earliest cell that needs it
    return needed


def _input_cells(running: Sequence[CellFacts], served: ServedModel) -> set[int]:
    """Cells that build the model's fit input (its lineage back to the data)."""
    if served.fit_call is None or not served.fit_call.features:
        return set()
    names = {n.id for n in ast.walk(ast.parse(served.fit_call.features)) if isinstance(n, ast.Name)}
    if names & served.fit.binds:  # `X = train[[...]]` in the fit cell itself: what that cell reads
        names = (names - served.fit.binds) | set(served.fit.uses)
    start = CellFacts(served.fit.cell, True, tuple(sorted(names)), frozenset(), frozenset(), frozenset(), (), (), ())
    above = [f for f in running if f.cell.index < served.fit.cell.index] + [start]
    return set(_needed(above, [start])) - {served.fit.cell.index}


def _propose(context: _Context, facts: CellFacts, fixed: tuple[tuple[Role, ...], str] | None) -> RoleProposal:
    index = facts.cell.index
    if fixed is not None:
        return _proposal(index, fixed[0], fixed[1], fixed=True)
    if index not in context.needed:
        return _proposal(index, (Role.SKIP,), describe_unneeded(facts, context.served.root, context.last_needed))
    if index in context.shipped.cells and unshippable_line(facts) is None:
        return _proposal(index, (Role.PREPROCESS,), _preprocess_reason(context, facts))
    roles: list[Role] = []
    reasons: list[str] = []
    source = reads_data(facts)
    if source:
        roles.append(Role.LOAD)
        reasons.append(f"reads data with `{source}`" if "make_" not in source else f"builds the data with `{source}`")
    if any(c.receiver == context.served.root for c in facts.fits) or facts is context.served.fit:
        roles.append(Role.TRAIN)
        reasons.append(f"fits `{context.served.root}` (the served model)")
    if index in context.evaluate:
        roles.append(Role.EVALUATE)
        reasons.append(context.evaluate[index])
    if roles:
        return _proposal(index, tuple(roles), "; ".join(reasons))
    if index in context.input_cells and facts.binds - _imported_names(facts):
        return _proposal(index, fit_input_roles(facts), _runs_reason(context, facts, FIT_INPUT))
    return _proposal(index, (), _runs_reason(context, facts, ""))


def fit_input_roles(facts: CellFacts) -> tuple[Role, ...]:
    """The role of a cell that turns the raw data into the fit input (pandas feature engineering):
    `preprocess`, so that its statements are replayed per request and the service takes raw rows.
    A cell that reads files never is (it is `load`); `raw_or_engineered` takes the role back when
    the proposed cells cannot be replayed."""
    return () if reads_data(facts) else (Role.PREPROCESS,)


def raw_or_engineered(
    spec: NotebookSpec,
    facts: Sequence[CellFacts],
    proposals: list[RoleProposal],
    input_cells: set[int],
    model: str | None,
    joined: Finding | None = None,
) -> tuple[list[RoleProposal], ServiceInput]:
    """Keep the `preprocess` role of the fit-input cells if lint accepts the replay they make (the
    service then takes raw rows); else run them untagged, and say which line stops the replay.
    `joined` is a cell that joins a second data file into the prepared frame: it stops the replay."""
    replayed = {p.cell_index for p in proposals if _fit_input_preprocess(p) and p.cell_index in input_cells}
    engineered = with_roles(  # the replayed cells untagged, whatever tags the notebook has now
        spec, {p.cell_index: () if p.cell_index in replayed else p.roles for p in proposals if not p.fixed}
    )
    if joined is not None and replayed:
        new = [joined]
    else:
        support = _support_cells(spec, facts, proposals, replayed)
        trial_proposals = [support.get(p.cell_index, p) for p in proposals]
        trial = with_roles(spec, {p.cell_index: p.roles for p in trial_proposals if not p.fixed})
        errors = replay_errors(trial, model) if replayed else []
        if not errors:
            found = service_input(trial, model=model)
            if found.kind == "raw" or not replayed:
                return trial_proposals, found
            # nothing in them is replayed (a split, displays): they run untagged, as written
            kept = [_untagged(p) if p.cell_index in replayed else p for p in proposals]
            return kept, service_input(engineered, model=model)
        before = {f.message for f in replay_errors(engineered, model)}
        new = [f for f in errors if f.message not in before]
        if not new:
            return trial_proposals, service_input(trial, model=model)
    why = "; runs untagged: " + _why(new[0])
    kept = [p if p.cell_index not in replayed else _proposal(p.cell_index, (), p.reason + why) for p in proposals]
    return kept, service_input(engineered, model=model, blocking=blocker(spec, new[0]))


def _fit_input_preprocess(proposal: RoleProposal) -> bool:
    return proposal.roles == (Role.PREPROCESS.value,) and proposal.reason.startswith(FIT_INPUT)


def _after_the_origin(proposals: list[RoleProposal], origin: RawOrigin | None) -> list[RoleProposal]:
    """Only fit-input cells below the cell where the raw frame begins are replayed (see
    `raw_origin`); that cell is `load`. Without an origin, the first cell that reads data is it."""
    if origin is None:
        return _after_the_load(proposals)
    found = []
    for p in proposals:
        if p.cell_index == origin.cell_index and not p.fixed:
            if not p.roles or _fit_input_preprocess(p):
                made = f"makes the raw frame `{origin.frame}` (line {origin.line} {origin.how})"
                p = _proposal(p.cell_index, (Role.LOAD,), f"{made}; the service takes its columns")
        elif _fit_input_preprocess(p) and p.cell_index < origin.cell_index:
            p = _untagged(p)
        found.append(p)
    return found


def _read_cell_note(
    proposals: list[RoleProposal],
    origin: RawOrigin | None,
    changed: tuple[int, str] | None,
    service: ServiceInput | None,
) -> list[RoleProposal]:
    """What happens to the lines that change the raw frame after the read, in the read's own cell:
    replayed per request with the preprocess cells below it when the service takes raw columns
    (see `read_tail`), else part of the data."""
    if origin is None or changed is None:
        return proposals
    below = any(Role.PREPROCESS.value in p.roles and p.cell_index > origin.cell_index for p in proposals)
    replayed = below and service is not None and service.kind == "raw"
    note = _replayed_note(changed) if replayed else _changed_note(changed)
    return [
        _proposal(p.cell_index, tuple(Role(r) for r in p.roles), p.reason + note, fixed=p.fixed)
        if p.cell_index == origin.cell_index
        else p
        for p in proposals
    ]


def _replayed_note(changed: tuple[int, str]) -> str:
    line, text = changed
    return (
        f"; the lines after the read (line {line}, `{text}`, on) change the frame: they run as written "
        "here, and are replayed per request with the preprocess cells, so the service takes the file's columns"
    )


def _changed_note(changed: tuple[int, str]) -> str:
    line, text = changed
    return (
        f"; line {line} (`{text}`) changes the frame after the read, so the service takes the frame as this "
        "cell leaves it: move such lines into a cell of their own to have them replayed per request"
    )


def _changed_after(
    spec: NotebookSpec, running: Sequence[CellFacts], served: ServedModel, origin: RawOrigin | None
) -> tuple[int, str] | None:
    """The line of the origin cell that changes the raw frame after reading it, if any."""
    if origin is None:
        return None
    trained = with_roles(spec, {served.fit.cell.index: (Role.TRAIN.value,)})
    labels = analyse_fits(trained, (served.root,)).label_columns
    facts = next(f for f in running if f.cell.index == origin.cell_index)
    return changed_after(origin, facts, labels)


def _after_the_load(proposals: list[RoleProposal]) -> list[RoleProposal]:
    """Only cells after the one that reads the data are replayed: the raw frame is what it read."""
    loads = [p.cell_index for p in proposals if Role.LOAD.value in p.roles]
    return [
        _untagged(p) if _fit_input_preprocess(p) and not (loads and p.cell_index > min(loads)) else p for p in proposals
    ]


def _support_cells(
    spec: NotebookSpec, facts: Sequence[CellFacts], proposals: Sequence[RoleProposal], replayed: set[int]
) -> dict[int, RoleProposal]:
    """Untagged cells above the replayed ones holding only imports, definitions and literal
    constants that the replayed statements use (`import numpy as np` for `np.log1p`): they ship too."""
    if not replayed:
        return {}
    by_index = {p.cell_index: p for p in proposals}
    used: dict[str, int] = {}
    for f in facts:
        if f.cell.index in replayed:
            for name in f.uses:
                used.setdefault(name, f.cell.index)
    found: dict[int, RoleProposal] = {}
    for f in facts:
        proposal = by_index[f.cell.index]
        if f.cell.index > max(replayed) or proposal.roles or proposal.fixed or f.star_import:
            continue
        needed = sorted(f.binds & set(used))
        if needed and unshippable_line(f) is None and not reads_data(f):
            verb = "imports" if set(needed) <= _imported_names(f) else "defines"
            user = spec.cells[used[needed[0]]].number
            reason = f"{verb} {listed(needed)} for the preprocess code in cell {user}"
            found[f.cell.index] = _proposal(f.cell.index, (Role.PREPROCESS,), reason)
    return found


def _untagged(proposal: RoleProposal) -> RoleProposal:
    return _proposal(proposal.cell_index, (), proposal.reason)


def _why(finding: Finding) -> str:
    where = f"cell {finding.cell_index + 1}" if finding.cell_index is not None else "a preprocess cell"
    line = f", line {finding.line}" if finding.line else ""
    return f"its statements cannot be replayed per request ({where}{line})"


def _proposal(index: int, roles: tuple[Role, ...], reason: str, *, fixed: bool = False) -> RoleProposal:
    values = tuple(r.value for r in roles)
    return RoleProposal(index, values[0] if values else None, reason, values, fixed)


def _imported_names(facts: CellFacts) -> frozenset[str]:
    return frozenset(n for s in facts.statements if isinstance(s.node, ast.Import | ast.ImportFrom) for n in s.binds)


def _preprocess_reason(context: _Context, facts: CellFacts) -> str:
    index = facts.cell.index
    used = context.shipped.definitions.get(index)
    if used:
        return f"defines {listed(used)}, used by `{context.served.root}`"
    support = sorted(context.shipped.support.get(index, ()))
    verb = "imports" if set(support) <= _imported_names(facts) else "defines"
    user = context.spec.cells[context.shipped.needed_by[index]]
    return f"{verb} {listed(support)} for the preprocess code in cell {user.number}"


def _runs_reason(context: _Context, facts: CellFacts, prefix: str) -> str:
    need = context.needed.get(facts.cell.index)
    if need is None:
        return prefix + context.state.get(facts.cell.index, "changes state the run depends on")
    user, name = need
    verb = "imports" if name in _imported_names(facts) else "defines"
    if name in facts.mutates and name not in _assigned(facts):
        verb = "changes"  # in place: `df["a"] = ...`, `for row in records: row["a"] = ...`
    return f"{prefix}{verb} `{name}`, used by cell {context.spec.cells[user].number}"


def _choose_parameters(
    running: Sequence[CellFacts],
    proposals: list[RoleProposal],
    needed: Mapping[int, object],
    served: ServedModel,
) -> list[RoleProposal]:
    """The first needed, untagged cell above the fit holding only literal settings becomes the
    parameters cell (papermill's convention), unless the notebook has one already."""
    if any(Role.PARAMETERS.value in p.roles for p in proposals):
        return proposals
    by_index = {p.cell_index: p for p in proposals}
    for facts in running:
        index = facts.cell.index
        if index >= served.fit.cell.index:
            break
        if index in needed and not by_index[index].roles and _only_literal_settings(facts):
            names = [n for s in facts.statements for n in sorted(s.binds)]
            reason = f"only literal settings ({listed(names)}); `-p NAME VALUE` can override them"
            by_index[index] = _proposal(index, (Role.PARAMETERS,), reason)
            break
    return [by_index[p.cell_index] for p in proposals]


def _only_literal_settings(facts: CellFacts) -> bool:
    settings = 0
    for statement in facts.statements:
        node = statement.node
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            return False
        try:
            ast.literal_eval(node.value)
        except ValueError:
            return False
        settings += 1
    return settings > 0


def _convert_needs_model(
    spec: NotebookSpec, facts: Sequence[CellFacts], proposals: Sequence[RoleProposal], served: ServedModel
) -> bool:
    """Would `convert` find the served model by itself in the proposed train cells?"""
    if spec.config.model:
        return False
    train = [f for f, p in zip(facts, proposals, strict=True) if Role.TRAIN.value in p.roles]
    found = model_candidates(train)
    return [c.variable for c in found] != [served.root]


def _warnings(context: _Context, running: Sequence[CellFacts], facts: Sequence[CellFacts]) -> list[str]:
    """What the tags alone cannot fix: shipped code mixed with other code, needed skip cells."""
    name = context.spec.path.name
    found = []
    served = context.served
    if served.fit_call is None:
        found.append(
            f"{name}: no cell that runs fits `{served.variable}`, so its training input cannot be told from a "
            "`fit` call: name it for `nb2prod lint` and `convert` with --features VAR (or notebook metadata "
            "`nb2prod.features`), or check that the model's name is right."
        )
    for index in sorted(context.shipped.cells):
        cell_facts_ = next(f for f in running if f.cell.index == index)
        problem = unshippable_line(cell_facts_)
        if problem is None:
            continue
        line, text = problem
        needs = context.shipped.definitions.get(index) or sorted(context.shipped.support.get(index, ()))
        found.append(
            f"{name}, {cell_facts_.cell.label}: the model needs {listed(needs)} from this cell, but line {line} "
            f"(`{text}`) is not a definition, import or constant, so the cell cannot be shipped as `preprocess`. "
            "Move the definitions (and the imports they need) into a cell of their own, then run `nb2prod tag` again."
        )
    skipped = {f.cell.index: f for f in facts if f.cell.has(Role.SKIP)}
    for facts_ in running:
        if facts_.cell.index not in context.needed:
            continue
        for use in facts_.immediate_uses:
            definer = next((s for s in skipped.values() if use in s.binds), None)
            if definer is not None and not any(use in f.binds for f in running if f.cell.index < facts_.cell.index):
                found.append(
                    f"{name}, {facts_.cell.label} needs `{use}`, which only {definer.cell.label} defines, and that "
                    "cell is tagged `skip`: remove its `skip` tag or define the name in a cell that runs."
                )
    return found
