"""Issue 12.1: every install path yields the whole dashboard.

The dashboard's third-party files (diff2html, xterm.js, marked, DOMPurify) come from npm
and are gitignored; ``hatch_build.py`` builds them into every wheel and sdist. These tests
build packages the way users do, from a copy of this checkout that holds only what a
fresh clone holds (no node_modules, no built vendor files, no venv), with real pip,
``python -m build``, npm and a real server started from a fresh venv.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from parallel_agents.server.routes import web

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
VENDOR = "src/parallel_agents/web/static/vendor"
# What the dashboard's code loads from vendor/: the crawl below must reach every one.
VENDOR_USED = {
    "/static/vendor/diff2html/diff2html-ui-slim.min.js",
    "/static/vendor/diff2html/diff2html.min.css",
    "/static/vendor/xterm/xterm.mjs",
    "/static/vendor/xterm/xterm.css",
    "/static/vendor/xterm/addon-fit.mjs",
    "/static/vendor/marked/marked.esm.js",
    "/static/vendor/dompurify/purify.es.mjs",
}
CTYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css"}

needs_npm = pytest.mark.skipif(
    shutil.which("npm") is None or shutil.which("node") is None,
    reason="building the dashboard's assets from a clone needs node and npm",
)


def run(
    cmd: list[str], env: dict[str, str] | None = None, timeout: float = 300, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    full.update(env or {})
    return subprocess.run(
        cmd, capture_output=True, text=True, env=full, timeout=timeout, cwd=cwd, check=False
    )


def fresh_clone(dest: Path) -> Path:
    """This checkout's files as a clone has them: tracked and untracked-but-not-ignored
    regular files. Symlinks are skipped: a linked node_modules would be emptied by npm ci."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for rel in out.split("\0"):
        src = ROOT / rel
        if not rel or src.is_symlink() or not src.is_file():
            continue
        if rel.split("/")[0] in ("node_modules", ".venv"):
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel)
    assert not (dest / VENDOR).exists() and not (dest / "node_modules").exists()
    return dest


def no_node_path(tmp: Path) -> str:
    """A PATH with the shell and git but without node and npm."""
    bin_dir = tmp / "bin-without-node"
    bin_dir.mkdir(exist_ok=True)
    for tool in ("bash", "sh", "git"):
        found = shutil.which(tool)
        if found and not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def fresh_venv(where: Path) -> Path:
    """A new venv whose only parallel_agents is what gets installed into it; the test
    venv's site-packages are appended (as a path, so its editable-install .pth that
    points at this checkout is not processed) to supply fastapi, uvicorn and the rest."""
    r = run([PY, "-m", "venv", "--without-pip", str(where)])
    assert r.returncode == 0, r.stderr
    py = where / "bin" / "python"
    site = run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    Path(site.stdout.strip(), "_outer_deps.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n"
    )
    return where


def pip_into(venv: Path, *args: str, env: dict[str, str] | None = None) -> str:
    r = run(
        [PY, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps", *args],
        env=env,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout + r.stderr


def vendor_in_wheel(whl: Path) -> set[str]:
    with zipfile.ZipFile(whl) as z:
        names = z.namelist()
    pre = "parallel_agents/web/static"
    return {"/static" + n[len(pre) :] for n in names if n.startswith(pre + "/vendor/")}


def crawl(client: httpx.Client, base: str) -> dict[str, httpx.Response]:
    """GET the dashboard page and, transitively, every file it loads: the page's
    href/src, modules' static and dynamic imports, the URLs in their strings, CSS url()."""
    page = client.get(base + "/")
    assert page.status_code == 200, page.text
    todo = [urljoin(base + "/", u) for u in re.findall(r'(?:href|src)="(/static/[^"]+)"', page.text)]
    seen: dict[str, httpx.Response] = {"/": page}
    js_ref = re.compile(r"""(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)["']([^"']+)["']|["'](/static/[^"'?#]+)""")
    css_ref = re.compile(r"""url\(\s*["']?([^"')]+)""")
    while todo:
        url = todo.pop()
        path = urlsplit(url).path
        if path in seen:
            continue
        r = client.get(url)
        seen[path] = r
        if r.status_code != 200:
            continue
        if path.endswith((".js", ".mjs")):
            refs = [a or b for a, b in js_ref.findall(r.text)]
        elif path.endswith(".css"):
            refs = css_ref.findall(r.text)
        else:
            refs = []
        todo += [urljoin(url, x) for x in refs if x.startswith(("./", "../", "/static/"))]
    return seen


@needs_npm
def test_wheel_from_clone_serves_the_whole_dashboard(tmp_path: Path, pa_home: Path) -> None:
    """Issue 12.1: `pip install .` from a clone (nothing built beside it) gives a wheel
    whose server answers every file the dashboard page loads, third-party ones included,
    with 200 and the right content type, and shows no missing-files banner."""
    clone = fresh_clone(tmp_path / "clone")
    r = run([PY, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(clone)])
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = (tmp_path / "dist").glob("parallel_agents-*.whl")
    assert vendor_in_wheel(whl) >= VENDOR_USED

    venv = fresh_venv(tmp_path / "venv")
    pip_into(venv, str(whl))
    where = run([str(venv / "bin/python"), "-c", "import parallel_agents; print(parallel_agents.__file__)"], cwd=tmp_path)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr

    pa = str(venv / "bin" / "pa")
    started = run([pa, "server", "start", "--port", "0", "--json"], cwd=tmp_path, timeout=120)
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        info = json.loads(started.stdout)
        cmdline = Path(f"/proc/{info['pid']}/cmdline").read_bytes().split(b"\0")
        assert cmdline[0].decode().startswith(str(venv)), cmdline
        token = (pa_home / "token").read_text().strip()
        with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
            seen = crawl(client, info["url"])
            assert 'class="banner"' not in seen["/"].text
            assert set(seen) >= VENDOR_USED, sorted(set(seen))
            bad = {}
            for path, resp in seen.items():
                want = CTYPES.get(Path(path).suffix, "text/html")
                got = resp.headers.get("content-type", "").split(";")[0]
                if resp.status_code != 200 or got != want or not resp.content:
                    bad[path] = (resp.status_code, got)
            assert not bad, bad

            # Without them, the banner tells a wheel user what they can do: no script to run.
            installed = Path(where.stdout.strip()).parent / "web" / "static" / "vendor"
            installed.rename(installed.with_name("vendor-aside"))
            page = client.get(info["url"] + "/").text
            assert "reinstall parallel-agents" in page and "build-web.sh" not in page, page[:600]
    finally:
        run([pa, "server", "stop"], cwd=tmp_path, timeout=60)


@needs_npm
def test_sdist_carries_the_assets_so_its_wheel_needs_no_node(tmp_path: Path) -> None:
    """Issue 12.1: the sdist built from a clone contains the built vendor files, and a
    wheel built from that sdist on a machine without node or npm has them all."""
    clone = fresh_clone(tmp_path / "clone")
    r = run([PY, "-m", "build", "--sdist", "-o", str(tmp_path / "sdist"), str(clone)])
    assert r.returncode == 0, r.stdout + r.stderr
    (sdist,) = (tmp_path / "sdist").glob("parallel_agents-*.tar.gz")
    with tarfile.open(sdist) as tar:
        if hasattr(tarfile, "data_filter"):  # 3.11.4+; later versions warn without it
            tar.extractall(tmp_path / "unpacked", filter="data")
        else:
            tar.extractall(tmp_path / "unpacked")
        names = tar.getnames()
    assert not any("/node_modules/" in n for n in names)
    (src,) = (tmp_path / "unpacked").iterdir()
    built = {f"/static/vendor/{p.relative_to(src / VENDOR)}" for p in (src / VENDOR).rglob("*") if p.is_file()}
    assert VENDOR_USED | {"/static/vendor/versions.json"} <= built

    r = run(
        [PY, "-m", "build", "--wheel", "-o", str(tmp_path / "dist"), str(src)],
        env={"PATH": no_node_path(tmp_path)},
    )
    assert r.returncode == 0, r.stdout + r.stderr
    (whl,) = (tmp_path / "dist").glob("parallel_agents-*.whl")
    assert vendor_in_wheel(whl) == built


def test_wheel_without_npm_or_assets_fails_with_a_clear_message(tmp_path: Path) -> None:
    """Issue 12.1: building a wheel from a clone where npm is missing fails, saying why
    and what to install, instead of producing a package whose dashboard cannot work."""
    clone = fresh_clone(tmp_path / "clone")
    r = run(
        [PY, "-m", "pip", "wheel", "--no-deps", "-w", str(tmp_path / "dist"), str(clone)],
        env={"PATH": no_node_path(tmp_path)},
    )
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "error: cannot build parallel-agents: the dashboard's third-party files" in out, out
    assert "hint: install Node.js and npm" in out, out
    assert not list((tmp_path / "dist").glob("*.whl"))


@needs_npm
def test_editable_install_builds_the_assets_in_the_checkout(tmp_path: Path) -> None:
    """Issue 12.1: `pip install -e .` in a fresh clone with npm builds the vendor files in
    place (the editable package serves them from the checkout), pinned by the lock."""
    clone = fresh_clone(tmp_path / "clone")
    venv = fresh_venv(tmp_path / "venv")
    pip_into(venv, "-e", str(clone))
    built = {p.relative_to(clone / VENDOR).as_posix() for p in (clone / VENDOR).rglob("*")}
    assert {u.removeprefix("/static/vendor/") for u in VENDOR_USED} <= built, built
    lock = json.loads((clone / "package-lock.json").read_text())["packages"]
    versions = json.loads((clone / VENDOR / "versions.json").read_text())
    assert versions["marked"] == lock["node_modules/marked"]["version"]


def test_editable_install_without_npm_succeeds_and_says_how(tmp_path: Path) -> None:
    """Issue 12.1: `pip install -e .` where npm is missing still installs (the CLI and
    server work) and prints one line naming scripts/build-web.sh."""
    clone = fresh_clone(tmp_path / "clone")
    venv = fresh_venv(tmp_path / "venv")
    out = pip_into(venv, "-v", "-e", str(clone), env={"PATH": no_node_path(tmp_path)})
    lines = [x for x in out.splitlines() if "until you run scripts/build-web.sh" in x]
    assert len(lines) >= 1, out
    assert "node, npm not found" in lines[0], lines
    r = run([str(venv / "bin" / "pa"), "--help"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr


def test_banner_in_a_checkout_names_the_script() -> None:
    """Issue 12.1: running from a source checkout, the missing-files hint names
    scripts/build-web.sh in that checkout (a wheel user gets the reinstall hint above)."""
    assert web.vendor_hint().startswith(f"run scripts/build-web.sh in {ROOT} ")


@needs_npm
def test_build_web_leaves_a_symlinked_node_modules_alone(tmp_path: Path) -> None:
    """Issue 12.1 (found while testing it): scripts/build-web.sh, which builds now run,
    used `npm ci` through a node_modules symlink and so emptied the checkout it points
    to; it now copies from the linked folder and leaves it as it was."""
    shared = fresh_clone(tmp_path / "shared")
    r = run(["bash", str(shared / "scripts" / "build-web.sh")])
    assert r.returncode == 0, r.stdout + r.stderr
    sentinel = shared / "node_modules" / "kept-by-build-web"
    sentinel.write_text("mine\n")

    other = fresh_clone(tmp_path / "other")
    (other / "node_modules").symlink_to(shared / "node_modules")
    r = run(["bash", str(other / "scripts" / "build-web.sh")])
    assert r.returncode == 0, r.stdout + r.stderr
    assert sentinel.read_text() == "mine\n"
    assert (other / "node_modules").is_symlink()
    assert (other / VENDOR / "versions.json").read_text() == (
        shared / VENDOR / "versions.json"
    ).read_text()
