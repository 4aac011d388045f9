"""Issue 14 §4: `pa diff` as close to `git diff` as it can be, printing the same text.

The light client path (no click, no client package) and pa's own untracked cache (one
`git diff BASE` while nothing untracked can have appeared) are checked against what the
throwaway-index diff prints, through changes that must reach the output.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from parallel_agents.git import archive, diffs, untracked_cache
from tests.conftest import git, make_repo, pa
from tests.foundation.test_cli_sessions import new_json, script, wait_ok
from tests.foundation.test_startup import _imported

FORMS = ({}, {"stat": True}, {"name_only": True})


def _worktree(tmp_path: Path) -> tuple[Path, str]:
    files = {
        "a.txt": "a\n",
        "src/b.py": "b = 1\n",
        "old.txt": "a file long enough to be found again after its rename\n" * 3,
        ".gitignore": "*.log\n",
    }
    repo = make_repo(tmp_path / "repo", files)
    wt = tmp_path / "wt"
    git(repo, "worktree", "add", "-q", "-b", "s", str(wt))
    (wt / "a.txt").write_text("a, edited\n")
    (wt / "keep.log").write_text("ignored\n")
    return wt, git(repo, "rev-parse", "HEAD").strip()


def _same(wt: Path, base: str) -> list[str]:
    """The live diff in every form equals the throwaway-index diff; its nested list
    equals the nested scan's. Returns the names it printed."""
    names: list[str] = []
    for form in FORMS:
        chunks, nested = diffs.live_stream(wt, base, **form)
        got = "".join(chunks)
        assert got == "".join(diffs.worktree_stream(wt, base, **form)), form
        assert nested == diffs.nested_scan(wt)() == archive.scan(wt)[0]
        if form.get("name_only"):
            names = got.splitlines()
    return names


def _until_clean(wt: Path, base: str) -> None:
    """Diff until the cache keeps the worktree: times within RACY seconds of a look are
    not trusted, so this takes about a second after the last change."""
    deadline = time.monotonic() + 30
    while not untracked_cache.clean(wt):
        assert time.monotonic() < deadline, "the untracked cache never kept the worktree"
        _same(wt, base)


def test_live_diff_follows_every_change_that_adds_or_hides_a_file(tmp_path: Path) -> None:
    """issue 14 §4: while the worktree is known to hold nothing untracked, `pa diff` is a
    plain `git diff BASE`; a new file (in an old or a new folder), a rule that stops
    ignoring a file (.gitignore or info/exclude edited in place), a staged new file and
    a nested repository all reach the output at once, byte for byte as the throwaway
    index shows them."""
    wt, base = _worktree(tmp_path)
    assert _same(wt, base) == ["a.txt"]
    _until_clean(wt, base)
    assert _same(wt, base) == ["a.txt"]  # served from the cache

    (wt / "src" / "new.py").write_text("new\n")
    assert untracked_cache.known(wt)  # the diff starts, then finds the folder changed
    assert _same(wt, base) == ["a.txt", "src/new.py"]
    (wt / "src" / "new.py").unlink()
    _until_clean(wt, base)

    (wt / "fresh" / "deep").mkdir(parents=True)
    (wt / "fresh" / "deep" / "f.txt").write_text("f\n")
    assert _same(wt, base) == ["a.txt", "fresh/deep/f.txt"]
    (wt / "fresh" / "deep" / "f.txt").unlink()
    (wt / "fresh" / "deep").rmdir()
    (wt / "fresh").rmdir()
    _until_clean(wt, base)

    with open(wt / ".gitignore", "r+") as f:  # in place: the folder's times stay
        f.write("*.nope\n")
    assert _same(wt, base) == [".gitignore", "a.txt", "keep.log"]
    with open(wt / ".gitignore", "r+") as f:
        f.write("*.log \n")
    _until_clean(wt, base)

    (wt / "scratch.tmp").write_text("kept out by info/exclude\n")
    exclude = Path(git(wt, "rev-parse", "--git-common-dir").strip())
    exclude = (exclude if exclude.is_absolute() else wt / exclude) / "info" / "exclude"
    exclude.parent.mkdir(exist_ok=True)
    exclude.write_text("*.tmp\n")
    assert _same(wt, base) == [".gitignore", "a.txt"]
    _until_clean(wt, base)
    exclude.write_text("# no rule\n")  # the same file, rewritten: no folder changes
    assert _same(wt, base) == [".gitignore", "a.txt", "scratch.tmp"]
    (wt / "scratch.tmp").unlink()
    _until_clean(wt, base)

    (wt / "old.txt").rename(wt / "renamed.txt")
    git(wt, "add", "-A")  # the worktree's own index changes: what is tracked moves
    assert _same(wt, base) == [".gitignore", "a.txt", "renamed.txt"]
    _until_clean(wt, base)

    make_repo(wt / "inner", {"x.txt": "x\n"})
    assert not untracked_cache.clean(wt)
    assert _same(wt, base) == [".gitignore", "a.txt", "inner", "renamed.txt"]


def test_nested_repositories_from_the_look_match_the_scan(tmp_path: Path) -> None:
    """issue 14 §4: the one walk of a live diff names the nested repositories as
    ``archive.scan`` does (not in caches, not inside another one, links not followed)."""
    wt = make_repo(tmp_path / "wt")
    for d in ("lib/one", "lib/one/inner", "node_modules/pkg", "deep/a/b/c", "venv2/x", "sp ace"):
        (wt / d / ".git").mkdir(parents=True)
    (wt / "gitfile").mkdir()
    (wt / "gitfile" / ".git").write_text("gitdir: /elsewhere\n")
    (wt / "target" / ".git").mkdir(parents=True)
    os.symlink(wt / "target", wt / "link")
    (wt / "build" / ".venv" / "r" / ".git").mkdir(parents=True)
    look = untracked_cache.Look(wt, wt / ".git")
    assert look.nested() == archive.scan(wt)[0]
    look.keep_if_clean(False)
    assert not untracked_cache.clean(wt), "a worktree with nested repositories is not kept"


@pytest.mark.usefixtures("server_mode")
def test_pa_diff_through_the_server_is_a_light_client(tmp_path: Path) -> None:
    """issue 14 §4: `pa diff` through a running server imports neither click, the client
    package, http.client nor httpx/fastapi, and prints what the click command prints
    (patch, --stat, --name-only, --turn; the note on stderr); an unknown session still
    gets the click command's error and exit code."""
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n"})
    agent = "import pathlib\npathlib.Path('a.txt').write_text('two\\n')\n"
    s = new_json("edit", "--cmd", script(tmp_path, agent), cwd=repo)
    sid = str(s["id"])
    assert wait_ok(sid).returncode == 0
    mods, out = _imported(["-m", "parallel_agents", "diff", sid, "--name-only"], cwd=repo)
    assert out == "a.txt\n"
    for heavy in ("click", "parallel_agents.client", "http.client", "httpx", "fastapi"):
        assert heavy not in mods, f"`pa diff` imported {heavy}"
    make_repo(Path(str(s["worktree"])) / "inner", {"x.txt": "x\n"})  # a note on stderr
    for flags in ([], ["--stat"], ["--name-only"], ["--turn", "1"], ["--turn=1", "--stat"]):
        quick = pa("diff", sid, *flags)
        assert (quick.returncode, quick.stdout, quick.stderr) == _click(sid, flags), flags
    assert "note: nested repo inner/" in pa("diff", sid).stderr
    bad = pa("diff", "nosuch")
    assert bad.returncode == _click("nosuch", [])[0] != 0
    assert "error: no session matches 'nosuch'" in bad.stderr


def _click(sid: str, flags: list[str]) -> tuple[int, str, str]:
    """`pa diff` through the click command (what the light path stands in for)."""
    launch = "import sys\nfrom parallel_agents.cli import main\nsys.argv[0] = 'pa'\nmain()\n"
    p = subprocess.run(
        [sys.executable, "-c", launch, "diff", sid, *flags],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
    )
    return p.returncode, p.stdout, p.stderr


@pytest.mark.usefixtures("server_mode")
def test_pa_diff_is_git_itself_once_the_worktree_is_known_clean(tmp_path: Path) -> None:
    """issue 14 §4: once the server's untracked cache vouches for the worktree, the light
    client runs the one `git diff BASE` itself (exec: the same process, so git's output
    reaches the terminal with no copy through the server), and prints what the click
    command prints; a worktree with an untracked file goes through the server again."""
    repo = make_repo(tmp_path / "repo", {"a.txt": "one\n", "b.txt": "b\n"})
    agent = "import pathlib\npathlib.Path('a.txt').write_text('two\\n')\n"
    s = new_json("edit", "--cmd", script(tmp_path, agent), cwd=repo)
    sid, wt = str(s["id"]), Path(str(s["worktree"]))
    assert wait_ok(sid).returncode == 0
    log = tmp_path / "git-runs.log"
    shim = tmp_path / "bin" / "git"
    shim.parent.mkdir()
    # The shim notes which process runs it (an exec keeps the pid) and runs the real git.
    real = subprocess.run(["sh", "-c", "command -v git"], capture_output=True, text=True)
    shim.write_text(f'#!/bin/sh\necho "$$ $PWD" >> {log}\nexec {real.stdout.strip()} "$@"\n')
    shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{shim.parent}{os.pathsep}{os.environ['PATH']}"}

    def run(*flags: str) -> tuple[subprocess.CompletedProcess[bytes], bool]:
        """`pa diff` with ``flags``, and whether git ran in that very process."""
        log.write_text("")
        p = subprocess.Popen(
            [sys.executable, "-m", "parallel_agents", "diff", sid, *flags],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        out, err = p.communicate(timeout=120)
        done = subprocess.CompletedProcess(p.args, p.returncode, out, err)
        return done, f"{p.pid} {wt}" in log.read_text().splitlines()

    deadline = time.monotonic() + 30
    while not run()[1]:  # the cache keeps a worktree a second after its last change
        assert time.monotonic() < deadline, "`pa diff` never ran git itself"
    for flags in ([], ["--stat"]):
        done, itself = run(*flags)
        assert itself, flags
        got = (done.returncode, done.stdout.decode(), done.stderr.decode())
        assert got == _click(sid, list(flags)), flags
    assert "+two" in run()[0].stdout.decode()
    # The installed `pa` (launcher/pa, not pip's generated script) imports no `re`.
    pa_script = Path(sys.executable).with_name("pa")
    env["PYTHONPROFILEIMPORTTIME"] = "1"
    timed = subprocess.run([pa_script, "diff", sid], capture_output=True, env=env, timeout=120)
    imported = {ln.rsplit("|", 1)[-1].strip() for ln in timed.stderr.decode().splitlines()}
    assert timed.stdout == run()[0].stdout and "parallel_agents._quick" in imported
    assert "re" not in imported and "enum" not in imported, timed.stderr.decode()[-3000:]
    del env["PYTHONPROFILEIMPORTTIME"]
    (wt / "new.txt").write_text("new\n")  # untracked: only the server's look shows it
    done, itself = run()
    assert not itself and "new.txt" in done.stdout.decode()


def test_the_cache_trusts_fine_grained_times_after_a_few_ticks(tmp_path: Path) -> None:
    """issue 14 §4: where the file system keeps fractions of a second, a look 100 ms after
    the newest change is kept (the cache vouched only a second later, so the first
    `pa diff`s after an agent's turn all walked the worktree); where times are whole
    seconds, not even after one second (FAT keeps even seconds)."""
    wt, _ = _worktree(tmp_path)
    look = untracked_cache.Look(wt, diffs.git_dir(wt)).wait()
    times = [max(s[1], s[2]) for s in {**look.rules, **look.stamps}.values()]
    if not any(t % 1_000_000_000 for t in times):
        pytest.skip("this file system keeps whole-second times")
    look.started = max(times) / 1e9 + 0.1
    look.keep_if_clean(False)
    assert untracked_cache.clean(wt)

    untracked_cache.forget(wt)
    coarse = untracked_cache.Look(wt, diffs.git_dir(wt)).wait()
    whole = 1_000_000_000
    coarse.rules = {p: (s[0], s[1] // whole * whole, s[2] // whole * whole) for p, s in coarse.rules.items()}
    coarse.stamps = {p: (s[0], s[1] // whole * whole, s[2] // whole * whole) for p, s in coarse.stamps.items()}
    newest = max(max(s[1], s[2]) for s in {**coarse.rules, **coarse.stamps}.values())
    coarse.started = newest / 1e9 + 1.5
    coarse.keep_if_clean(False)
    assert not untracked_cache.known(wt)
    coarse.started = newest / 1e9 + 2.5
    coarse.keep_if_clean(False)
    assert untracked_cache.known(wt)
