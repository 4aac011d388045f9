"""Issue 13: a ratchet over the package's import graph, read without importing it.

Every module under src/parallel_agents is parsed with ``ast``; ``ast.walk`` also sees the
lazy imports inside functions and the ``TYPE_CHECKING`` blocks, which is where cycles hide.
Relative imports are resolved, ``from pkg import x`` counts as importing ``pkg.x`` when that
is a module (else ``pkg``), and only edges inside the package are kept.

The KNOWN_* constants below are today's debts. They may only shrink: a test fails when a
new entry appears (fix the code, do not extend the list) and also when an entry is paid off
(then delete it from the list, so it cannot come back unnoticed). The plan that pays them
off is docs/plans/architecture-move-map.md.
"""

from __future__ import annotations

import ast
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PKG = "parallel_agents"
MAX_LINES = 600
# A module may stay over MAX_LINES when its docstring says why, with these words.
SIZE_REASON = re.compile(r"over 600 lines because", re.IGNORECASE)

# Import cycles (strongly connected components of more than one module). Issue 13 broke the
# last one on 2026-12-03: there are none, and a new one fails the test. Never add to it.
KNOWN_CYCLES: set[tuple[str, ...]] = set()

# The package that owns the database: it and its modules may import sqlite3.
STORE = f"{PKG}.store"
# Modules outside STORE that import sqlite3 themselves. ONLY SHRINKS: SQL belongs in store.
KNOWN_SQLITE: set[str] = set()

# Modules over MAX_LINES whose docstring gives no reason. ONLY SHRINKS: split them.
KNOWN_LARGE: set[str] = set()

PLAN = "docs/plans/architecture-move-map.md"


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    tree: ast.Module
    lines: int
    # target module -> the first line that imports it (for the failure messages)
    imports: dict[str, int] = field(default_factory=dict)
    sqlite_line: int | None = None

    @property
    def where(self) -> str:
        return str(self.path.relative_to(SRC.parent))


def _name_of(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _parse() -> dict[str, Module]:
    mods: dict[str, Module] = {}
    for path in sorted((SRC / PKG).rglob("*.py")):
        name, is_package = _name_of(path)
        text = path.read_text(encoding="utf-8")
        mods[name] = Module(name, path, is_package, ast.parse(text), len(text.splitlines()))
    for mod in mods.values():
        _collect_imports(mod, mods)
    return mods


def _in_package(target: str, mods: dict[str, Module]) -> str | None:
    """The module ``target`` names, or its closest existing parent (None if outside)."""
    parts = target.split(".")
    while parts:
        name = ".".join(parts)
        if name in mods:
            return name
        parts.pop()
    return None


def _collect_imports(mod: Module, mods: dict[str, Module]) -> None:
    def add(target: str | None, line: int) -> None:
        if target is not None and target != mod.name:
            mod.imports.setdefault(target, line)

    for node in ast.walk(mod.tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "sqlite3":
                    mod.sqlite_line = mod.sqlite_line or node.lineno
                add(_in_package(alias.name, mods), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base = node.module or ""
            else:
                parts = mod.name.split(".")
                if not mod.is_package:
                    parts.pop()
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join(parts + ([node.module] if node.module else []))
            if base.split(".")[0] == "sqlite3":
                mod.sqlite_line = mod.sqlite_line or node.lineno
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                add(sub if sub in mods else _in_package(base, mods), node.lineno)


def _cycles(mods: dict[str, Module]) -> set[tuple[str, ...]]:
    """Strongly connected components with more than one module, as sorted tuples."""
    reach: dict[str, set[str]] = {}
    for start in mods:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for nxt in mods[todo.pop()].imports:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        reach[start] = seen
    out: set[tuple[str, ...]] = set()
    for a in mods:
        comp = {a} | {b for b in reach[a] if a in reach[b]}
        if len(comp) > 1:
            out.add(tuple(sorted(comp)))
    return out


def _path(a: str, b: str, comp: tuple[str, ...], mods: dict[str, Module]) -> list[str]:
    """A shortest import chain from ``a`` to ``b`` inside ``comp`` (a loop when a == b)."""
    prev: dict[str, str] = {}
    todo = [a]
    while todo and b not in prev:
        nxt: list[str] = []
        for m in todo:
            for t in sorted(mods[m].imports):
                if t in comp and t not in prev:
                    prev[t] = m
                    nxt.append(t)
        todo = nxt
    chain = [b, prev[b]]
    while chain[-1] != a:
        chain.append(prev[chain[-1]])
    return chain[::-1]


def _loop(chain: list[str], mods: dict[str, Module]) -> str:
    """``chain`` as the import lines that make it."""
    return "\n".join(
        f"    {mods[a].where}:{mods[a].imports[b]} imports {b}"
        for a, b in itertools.pairwise(chain)
    )


MODS = _parse()


def test_the_graph_is_read() -> None:
    """Issue 13: the parser sees top-level, relative, lazy and TYPE_CHECKING imports."""
    assert len(MODS) > 50, "no modules found: is SRC right?"
    assert f"{PKG}.cli" in MODS[f"{PKG}.__main__"].imports  # from .cli import main
    # `from parallel_agents.sessions import review as review_service` in server/routes/review.py
    assert f"{PKG}.sessions.review" in MODS[f"{PKG}.server.routes.review"].imports
    # `from parallel_agents.server.app import create_app` inside LocalTransport (lazy)
    assert f"{PKG}.server.app" in MODS[f"{PKG}.client._local"].imports


def test_no_new_import_cycles() -> None:
    """Issue 13: the set of import cycles equals KNOWN_CYCLES, which may only shrink."""
    found = _cycles(MODS)
    if found == KNOWN_CYCLES:
        return
    msgs: list[str] = []
    for comp in sorted(found - KNOWN_CYCLES):
        near = [k for k in KNOWN_CYCLES if set(k) & set(comp)]
        if not near:
            first = _loop(_path(comp[0], comp[0], comp, MODS), MODS)
            msgs.append(f"NEW import cycle {comp}; one loop in it:\n{first}")
            continue
        was: set[str] = set().union(*map(set, near))
        grown = sorted(set(comp) - was)
        left = sorted(was - set(comp))
        # One loop through what is new shows the import that closed it.
        if grown:
            g = grown[0]
            loop = _path(g, g, comp, MODS)
        elif len(near) > 1:
            a, b = near[0][0], near[1][0]
            loop = _path(a, b, comp, MODS) + _path(b, a, comp, MODS)[1:]
        else:
            loop = []
        msgs.append(
            f"known cycle(s) changed; now one cycle {comp}"
            + (f"\n  merged from known cycles: {sorted(near)}" if len(near) > 1 else "")
            + (f"\n  newly drawn in: {grown}" if grown else "")
            + (f"\n  no longer in it: {left}" if left else "")
            + (
                f"\n  one loop through the change (one of these imports is new):\n"
                f"{_loop(loop, MODS)}"
                if loop
                else ""
            )
        )
    for comp in sorted(KNOWN_CYCLES - found):
        if not any(set(comp) & set(f) for f in found):
            msgs.append(f"known cycle {comp} is gone")
    raise AssertionError(
        "\n\n".join(msgs)
        + "\n\nIf you removed or shrank a cycle: good, write the cycles the test finds into "
        "KNOWN_CYCLES in tests/test_architecture.py (it may only shrink). If you made a new "
        "or bigger one: do not list it; break it by moving the shared code one floor down "
        f"(see {PLAN}) rather than hiding it behind a lazy import (those count too)."
        f"\nFound: {sorted(found)}"
    )


def test_only_known_modules_import_sqlite3() -> None:
    """Issue 13: only the store package and the modules in KNOWN_SQLITE import sqlite3."""
    found = {
        m.name
        for m in MODS.values()
        if m.sqlite_line is not None and not (m.name == STORE or m.name.startswith(STORE + "."))
    }
    new = sorted(found - KNOWN_SQLITE)
    gone = sorted(KNOWN_SQLITE - found)
    assert not new, (
        "these modules now import sqlite3: "
        + ", ".join(f"{MODS[n].where}:{MODS[n].sqlite_line}" for n in new)
        + ". Put the SQL in a Store method in the store package and call that instead."
    )
    assert not gone, (
        f"{gone} no longer import sqlite3: good, remove them from KNOWN_SQLITE in "
        "tests/test_architecture.py so they stay clean."
    )


def test_no_new_modules_over_600_lines() -> None:
    """Issue 13: a module over 600 lines is listed in KNOWN_LARGE or says why it is long."""
    found = {
        m.name
        for m in MODS.values()
        if m.lines > MAX_LINES and not SIZE_REASON.search(ast.get_docstring(m.tree) or "")
    }
    new = sorted(found - KNOWN_LARGE)
    gone = sorted(KNOWN_LARGE - found)
    assert not new, (
        "these modules grew over "
        f"{MAX_LINES} lines: "
        + ", ".join(f"{MODS[n].where} ({MODS[n].lines})" for n in new)
        + ". Split the module by idea (see "
        f"{PLAN}), or, if its size is right, say why at the top of its docstring in the words "
        "'Over 600 lines because ...'. Do not add it to KNOWN_LARGE."
    )
    assert not gone, (
        f"{gone} are now at most {MAX_LINES} lines or state their reason: good, remove them "
        "from KNOWN_LARGE in tests/test_architecture.py."
    )


def _strings(tree: ast.Module) -> Iterator[ast.Constant]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node


def test_dash_m_strings_name_runnable_modules() -> None:
    """Issue 13: every ``"-m", "parallel_agents…"`` in src names a module python can run.

    A module moved or renamed without its ``-m`` string would start a child process that
    dies at once (the server, the pool filler), far from the change that broke it.
    """
    bad: list[str] = []
    seen = 0
    for mod in MODS.values():
        for node in ast.walk(mod.tree):
            if not isinstance(node, ast.List | ast.Tuple):
                continue
            for flag, arg in itertools.pairwise(node.elts):
                if not (
                    isinstance(flag, ast.Constant)
                    and flag.value == "-m"
                    and isinstance(arg, ast.Constant)
                    and isinstance(arg.value, str)
                    and arg.value.split(".")[0] == PKG
                ):
                    continue
                seen += 1
                target = MODS.get(arg.value)
                where = f"{mod.where}:{arg.lineno}"
                if target is None:
                    bad.append(f"{where}: -m {arg.value}: no such module")
                elif target.is_package:
                    if f"{arg.value}.__main__" not in MODS:
                        bad.append(f"{where}: -m {arg.value}: the package has no __main__.py")
                elif "__main__" not in {
                    s.value for s in _strings(target.tree)
                }:  # `if __name__ == "__main__":`
                    bad.append(f"{where}: -m {arg.value}: the module has no __main__ guard")
    assert seen >= 3, "found too few -m strings: has the way argv is written changed?"
    assert not bad, "\n".join(bad) + "\nPoint the string at the module's new place."


def test_module_strings_name_existing_modules() -> None:
    """Issue 13 §5: every ``"parallel_agents.x"``/``"parallel_agents.x:attr"`` string exists.

    Modules loaded from strings (the server's OPTIONAL_ROUTERS, the built-in agents'
    registry) fail silently or late when the name is wrong; OPTIONAL_ROUTERS listed two
    modules that never existed.
    """
    pattern = re.compile(rf"{PKG}(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*)?")
    bad: list[str] = []
    for mod in MODS.values():
        for node in _strings(mod.tree):
            if not isinstance(node.value, str) or not pattern.fullmatch(node.value):
                continue
            name, _, attr = node.value.partition(":")
            where = f"{mod.where}:{node.lineno}"
            if name not in MODS:
                bad.append(f"{where}: {node.value!r}: no module {name}")
            elif attr and not any(
                isinstance(d, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
                and d.name == attr
                for d in MODS[name].tree.body
            ):
                bad.append(f"{where}: {node.value!r}: {name} defines no {attr}")
    assert not bad, "\n".join(bad) + "\nFix the string or remove it."


def test_wrapper_paths_exist() -> None:
    """Issue 13 §6: ``Path(__file__).with_name("x.py")`` in src names a file that exists.

    The turn wrappers are run by file path, so a rename would only show when a turn starts.
    """
    bad: list[str] = []
    seen = 0
    for mod in MODS.values():
        for node in ast.walk(mod.tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "with_name"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and node.args[0].value.endswith(".py")
            ):
                seen += 1
                if not mod.path.with_name(node.args[0].value).is_file():
                    bad.append(f"{mod.where}:{node.lineno}: {node.args[0].value} does not exist")
    assert seen >= 2, "found no wrapper paths: has the way they are written changed?"
    assert not bad, "\n".join(bad)
