"""Issue 11 F.6: the conflict forecast blames a session only for what it changed itself.

After one session is merged, the base carries its changes. Sessions forked before the
merge and sessions forked after it then differ by those changes; a merge of two such
heads "conflicts" on them although neither session made them. The forecast compares
each pair on the sessions' own changes (each taken as merged into the current base when
it is behind), and reports base changes as the older session's base conflict only.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from parallel_agents.git import forecast
from tests.test_review import MODES, branch_commit, commit, git, make_repo

SHARED = "".join(f"row {i}\n" for i in range(20))


def _merge_into_main(repo: Path, branch: str, how: str) -> str:
    """Merge ``branch`` into main the way `pa merge` can: a merge commit or a squash."""
    if how == "merge":
        git(repo, "merge", "-q", "--no-ff", "-m", f"merge {branch}", branch)
    else:
        git(repo, "merge", "-q", "--squash", branch)
        git(repo, "commit", "-q", "-m", f"squash {branch}")
    return git(repo, "rev-parse", "HEAD")


@pytest.mark.parametrize("how", ["merge", "squash"])
@pytest.mark.parametrize("use_stdin", MODES)
def test_sessions_forked_after_a_merge_are_not_blamed_for_it(
    tmp_path: Path, use_stdin: bool, how: str
) -> None:
    """Issue 11 F.6: after A is merged, a session that changed nothing (and one that changed
    an unrelated file) forked from the new base is not reported conflicting with C, whose
    edit clashes with A's: that is C's conflict with the base, not a pair."""
    repo = make_repo(tmp_path / "r", {"shared.py": SHARED, "g.py": "g\n", "h.py": "h\n"})
    x = git(repo, "rev-parse", "HEAD")
    branch_commit(repo, "a", x, {"shared.py": SHARED.replace("row 3", "row 3 by A")}, "A")
    c = branch_commit(repo, "c", x, {"shared.py": SHARED.replace("row 3", "row 3 by C")}, "C")
    b = branch_commit(repo, "b", x, {"g.py": "g by B\n"}, "B")
    y = _merge_into_main(repo, "a", how)
    y_tree = git(repo, "rev-parse", f"{y}^{{tree}}")
    d = git(repo, "commit-tree", y_tree, "-p", y, "-m", "D: a turn that changed nothing")
    e = branch_commit(repo, "e", y, {"h.py": "h by E\n"}, "E")
    heads = {"b": b, "c": c, "d": d, "e": e}

    cache: dict[tuple[str, str], list[str]] = {}
    f = forecast.ConflictForecast(repo, cache, use_stdin=use_stdin).forecast(y, heads)
    assert f.pairs() == set(), f.conflicts
    assert f.sessions["c"].base_conflict_paths == ["shared.py"]
    assert not f.sessions["c"].clean_with_base
    for sid in ("b", "d", "e"):
        assert f.sessions[sid].clean_with_base and f.sessions[sid].conflicts_with == []
    assert f.sessions["d"].changed_paths == 0
    assert f.sessions["e"].changed_paths == 1


@pytest.mark.parametrize("use_stdin", MODES)
def test_a_real_conflict_across_forks_is_still_found(tmp_path: Path, use_stdin: bool) -> None:
    """Issue 11 F.6: sessions forked from different base commits whose own edits clash are
    still a conflicting pair, with the path; the answer is cached under keys that do not
    depend on the throw-away commits, so a new process reuses it."""
    repo = make_repo(tmp_path / "r", {"shared.py": SHARED, "z.py": "z\n"})
    x = git(repo, "rev-parse", "HEAD")
    old = branch_commit(repo, "old", x, {"shared.py": SHARED.replace("row 3", "ROW 3 old")}, "o")
    y = commit(repo, {"z.py": "z on main\n"}, "main moves on elsewhere")
    new = branch_commit(repo, "new", y, {"shared.py": SHARED.replace("row 3", "row three")}, "n")
    other = branch_commit(repo, "other", y, {"shared.py": SHARED.replace("row 19", "end")}, "t")
    heads = {"old": old, "new": new, "other": other}

    cache: dict[tuple[str, str], list[str]] = {}
    f = forecast.ConflictForecast(repo, cache, use_stdin=use_stdin).forecast(y, heads)
    assert f.pairs() == {frozenset({"old", "new"})}
    assert f.conflicts[0].paths == ["shared.py"]
    assert all(s.clean_with_base for s in f.sessions.values())
    assert f.stats.candidate_pairs == 3 and f.stats.merges_run == 3

    forecast._MB_CACHE.clear()  # a new process: only the persisted pair cache is left
    forecast._DIFF_CACHE.clear()
    again = forecast.ConflictForecast(repo, dict(cache), use_stdin=use_stdin).forecast(y, heads)
    assert again.pairs() == f.pairs() and again.stats.merges_run == 0
    assert all(":" not in a for a, _ in cache)  # `pa conflicts` stores keys as "a:b"
    # The projections went to a throw-away object directory, not into the repository.
    assert "pa forecast" not in git(repo, "log", "--all", "--format=%s")


def test_bench_correctness_check_with_a_merged_session(tmp_path: Path) -> None:
    """Issue 11 F.6: bench/bench_conflicts.py, at a tiny size, finds exactly the planted
    pairs after a session was merged (its correctness check asserts it)."""
    import importlib.util

    from tests.conftest import ROOT

    spec = importlib.util.spec_from_file_location(
        "bench_conflicts", ROOT / "bench" / "bench_conflicts.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    row = bench.bench_one(tmp_path, 1000, 12, measure_naive=False)
    assert row["false_pairs"] == 0 and row["expected_pairs_found"]
    assert row["conflicting_pairs"] == 1  # s010 × s011; s000 × s001 left with the merge
