"""`labkit course build DIR`: the lab's notebooks as an nbgrader course.

For each notebook whose exercises all have a reference answer in `labkit.exercises.answers`, it writes
DIR/source/<notebook>/<notebook>.ipynb: every exercise cell becomes a solution cell (the stub's `def` line, then
the answer key's body between `### BEGIN SOLUTION` and `### END SOLUTION`) followed by a locked, autograded test
cell (the check call, with points). Then nbgrader itself (`nbgrader generate_assignment`) makes the student
release in DIR/release/, with the solutions replaced by the lab's own stub (`# YOUR CODE` and `...`).

While nbgrader grades, NBGRADER_EXECUTION is set: labkit then runs in smoke mode (`labkit.env.mode`), so the
measurements shrink, and an untouched exercise raises instead of printing "not attempted".
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import json
import os
import re
import subprocess
import symtable
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

from labkit.errors import LabkitError
from labkit.exercises import SKIP_MARK
from labkit.paths import NOTEBOOK_DIR

STUB = "# YOUR CODE\n..."
CHECK_IMPORT = re.compile(r"^from labkit\.exercises import (\w+) as check\s*$", re.MULTILINE)
CONFIG = f'''# nbgrader configuration written by `labkit course build` (edit freely; a rebuild overwrites it).
c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "labkit"
c.ClearSolutions.code_stub = {{"python": {STUB!r}}}  # the lab's own stub: checks call it "not attempted"
c.Execute.timeout = 900  # seconds per cell; graded runs are in smoke mode (NBGRADER_EXECUTION is set)
'''


@dataclass(frozen=True)
class ExerciseCell:
    """A notebook cell holding an exercise: the stub's `def` and the check call on it."""
    index: int
    function: str
    check: str


def check_module(nb: dict) -> str | None:
    """The exercises module a notebook imports as `check` ('welcome'), or None."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            found = CHECK_IMPORT.search("".join(cell["source"]))
            if found:
                return found.group(1)
    return None


def exercise_cells(nb: dict) -> list[ExerciseCell]:
    """Every code cell made of one `def NAME(...)` and a `check.KEY(NAME)` call."""
    found = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code" or "check." not in "".join(cell["source"]):
            continue
        try:
            body = ast.parse("".join(cell["source"])).body
        except SyntaxError:
            continue
        defs = [n.name for n in body if isinstance(n, ast.FunctionDef)]
        calls = [n.value for n in body if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
                 and ast.unparse(n.value.func).startswith("check.")]
        if len(defs) == 1 and len(calls) == 1 and [ast.unparse(a) for a in calls[0].args] == defs:
            found.append(ExerciseCell(i, defs[0], ast.unparse(calls[0].func).split(".", 1)[1]))
    return found


def answer_key(module: str) -> dict:
    """The KEY of labkit.exercises.answers.<module>: {check name: reference function}, {} where none."""
    try:
        return importlib.import_module(f"labkit.exercises.answers.{module}").KEY
    except ModuleNotFoundError:
        return {}


def gradable(notebook: Path) -> bool:
    """Whether every exercise of the notebook has a reference answer (only those become course notebooks)."""
    nb = json.loads(notebook.read_text())
    module, cells = check_module(nb), exercise_cells(nb)
    return bool(module and cells) and all(c.check in answer_key(module) for c in cells)


def solution_source(stub_source: str, reference) -> str:
    """The stub's `def` line, then the reference's body inside nbgrader's solution markers."""
    stub_def = next(n for n in ast.parse(stub_source).body if isinstance(n, ast.FunctionDef))
    ref = textwrap.dedent(inspect.getsource(reference))
    ref_def = ast.parse(ref).body[0]
    if ast.unparse(stub_def.args) != ast.unparse(ref_def.args):
        raise LabkitError(f"the answer key's {ref_def.name}({ast.unparse(ref_def.args)}) does not take the "
                          f"notebook stub's arguments ({ast.unparse(stub_def.args)})")
    lines = ref.splitlines()
    body = lines[ref_def.body[0].lineno - 1:]
    header = stub_source.splitlines()[stub_def.lineno - 1:stub_def.body[0].lineno - 1]
    while header[-1].strip().startswith("#") or not header[-1].strip():  # the stub's `# YOUR CODE`
        header.pop()
    indent = re.match(r"\s*", body[0]).group(0)
    return "\n".join([*header, f"{indent}### BEGIN SOLUTION", *body, f"{indent}### END SOLUTION"])


def _meta(grade_id: str, *, solution: bool, grade: bool, locked: bool, points: int = 0) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if grade:
        meta["points"] = points
    return {"nbgrader": meta}


def _code_cell(source: str, metadata: dict) -> dict:
    lines = source.splitlines(keepends=True)
    return {"cell_type": "code", "execution_count": None, "metadata": metadata, "outputs": [], "source": lines}


def _names(source: str) -> tuple[set[str], set[str]]:
    """(names a cell defines at top level, global names it reads, in functions too, not its own)."""
    try:
        table = symtable.symtable(source, "<cell>", "exec")
    except SyntaxError:  # IPython syntax (magics): treat as needed by nothing, needing nothing
        return set(), set()
    defined = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    read: set[str] = set()

    def walk(scope: symtable.SymbolTable) -> None:
        top = scope.get_type() == "module"
        read.update(s.get_name() for s in scope.get_symbols() if s.is_referenced() and (top or s.is_global()))
        for child in scope.get_children():
            walk(child)

    walk(table)
    return defined, read - defined


def needed_cells(nb: dict, keep: set[int]) -> set[int]:
    """`keep` plus every code cell that defines a name a kept cell reads, repeated until nothing is added."""
    code = {i: _names("".join(c["source"])) for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"}
    keep = set(keep)
    while True:
        wanted = set().union(*(code[i][1] for i in keep))
        more = {i for i, (defined, _) in code.items() if i not in keep and defined & wanted
                and i < max(keep)}
        if not more:
            return keep
        keep |= more


def course_notebook(notebook: Path) -> dict:
    """The nbgrader source version of one lab notebook (exercise cells split into solution + test cells)."""
    nb = json.loads(notebook.read_text())
    module = check_module(nb)
    key = answer_key(module) if module else {}
    cells = {c.index: c for c in exercise_cells(nb)}
    keys = {i: answer_key(module)[c.check] for i, c in cells.items()}
    setup = next(i for i, c in enumerate(nb["cells"]) if c["cell_type"] == "code"
                 and CHECK_IMPORT.search("".join(c["source"])))
    # the exercises read the names of their reference answers too (time, torch, ...): count them as read
    reads = {i: "".join(nb["cells"][i]["source"]) + "\n" + inspect.getsource(keys[i]) for i in cells}
    probe = {**nb, "cells": [{**c, "source": reads.get(i, "".join(c["source"]))} for i, c in enumerate(nb["cells"])]}
    needed = needed_cells(probe, {*cells, setup})
    out = []
    for i, cell in enumerate(nb["cells"]):
        if i not in cells:
            source = "".join(cell["source"])
            if cell["cell_type"] == "code" and i > setup and i not in needed and not source.startswith("%%"):
                note = f"{SKIP_MARK}: the exercises do not need this cell\n"
                cell = {**cell, "source": (note + source).splitlines(keepends=True)}
            out.append(cell)
            continue
        ex = cells[i]
        source = "".join(cell["source"])
        stub = source[:source.index(f"check.{ex.check}(")].rstrip() + "\n"
        points = getattr(importlib.import_module(f"labkit.exercises.{module}"), ex.check).exercise.points
        out.append(_code_cell(solution_source(stub, key[ex.check]),
                              _meta(f"{ex.check}_answer", solution=True, grade=False, locked=False)))
        out.append(_code_cell(f"check.{ex.check}({ex.function})",
                              _meta(ex.check, solution=False, grade=True, locked=True, points=points)))
    return {**nb, "cells": out}


def build(dest: Path, names: list[str] | None = None, release: bool = True) -> list[Path]:
    """Write the course's source notebooks (every gradable notebook, or `names`) and nbgrader_config.py
    under `dest`; with `release`, run `nbgrader generate_assignment` for each. Returns the source notebooks."""
    available = {p.stem: p for p in sorted(NOTEBOOK_DIR.glob("*.ipynb"))}
    unknown = [n for n in names or [] if n not in available]
    if unknown:
        raise LabkitError(f"No notebook {unknown[0]!r}: choose from {', '.join(available)}.")
    chosen = [available[n] for n in names] if names else [p for p in available.values() if gradable(p)]
    not_ready = [p.stem for p in chosen if not gradable(p)]
    if not_ready:
        raise LabkitError(f"{', '.join(not_ready)}: some exercises have no reference answer in "
                          "labkit.exercises.answers yet, so they cannot be graded.")
    dest = Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "nbgrader_config.py").write_text(CONFIG)
    written = []
    for path in chosen:
        target = dest / "source" / path.stem / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(course_notebook(path), indent=1, ensure_ascii=False) + "\n")
        written.append(target)
        if release:
            nbgrader(dest, "generate_assignment", path.stem, "--force")
    return written


def nbgrader(course_dir: Path, *args: str) -> str:
    """Run one nbgrader command in the course folder; its output, or a LabkitError with its last lines."""
    if importlib.util.find_spec("nbgrader") is None:
        raise LabkitError("nbgrader is not installed: pip install 'labkit[course]'")
    # nbgrader calls `alembic` by name: put this Python's scripts first on PATH (a venv not activated)
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course_dir, text=True,
                          capture_output=True, env={**os.environ, "PATH": path})
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise LabkitError(f"nbgrader {' '.join(args)} failed:\n{tail}")
    return done.stdout + done.stderr
