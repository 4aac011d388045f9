"""`pa diff` without click, the client package or ``http.client``: issue 14 §4.

`pa diff` is read often and should cost little more than `git diff` itself. Through the
click command it paid ~75 ms of imports (click, the client, ``http.client`` with its
``email`` and ``ssl`` modules) before the first byte; this path imports only built-in
modules, sends one HTTP/1.1 GET over a plain socket to the running server of this
PA_HOME and copies the body to stdout as it arrives (bytes as the server sent them: no
decoding, no re-parsing of the patch). The note header goes to stderr first, as the
click command prints it. When the server's untracked cache vouches for the worktree, the
answer is instead the one `git diff` that prints the same text, and this process becomes
that git (exec): nothing stands between git and the terminal.

It serves only the plain case: ``pa diff ID`` with ``--stat``, ``--name-only`` and
``--turn N``, a server that runs, and a 200 answer. Anything else (``--json``, ``--help``,
an unknown option, no server, an error status, a connection refused) returns before a
byte is written and the click command does the work, with its messages and exit codes.
"""

from __future__ import annotations

import _socket
import os
import sys

TYPE_CHECKING = False  # typing itself costs an import; mypy reads this name as usual
if TYPE_CHECKING:
    from collections.abc import Callable

_API = "/api/v1"
_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")


def diff(argv: list[str]) -> None:
    """Serve `pa diff` with ``argv`` (the words after ``diff``) and exit; return when
    the click command has to."""
    query = _parse(argv)
    if query is None or (sys.stdout.encoding or "").lower().replace("-", "") != "utf8":
        return
    sid, params = query
    server = _server()
    if server is None:
        return
    host, port, prefix, token = server
    target = f"{prefix}{_API}/sessions/{_quote(sid)}/diff?{params}"
    runnable = "turn=" not in params and "name-only" not in params
    try:
        sock, head, rest = _get(host, port, target + ("&run=git" if runnable else ""), token)
        if head.get(":status") == "200" and head.get("x-pa-run") == "git":
            _run_git(_body(sock, head, rest))  # does not return when git runs
            sock, head, rest = _get(host, port, target, token)  # the text after all
    except (OSError, ValueError):
        return  # the click command connects again and says what is wrong
    if head.get(":status") != "200":
        sock.close()
        return
    note = head.get("x-pa-note")
    if note:
        from urllib.parse import unquote

        print(unquote(note), file=sys.stderr, flush=True)
    code = _copy(sock, head, rest, f"http://{host}:{port}")
    sys.exit(code)


def _body(sock: _socket.socket, head: dict[str, str], rest: bytes) -> bytes:
    """The whole (short, ``Content-Length``) body of an answer; the socket closed."""
    try:
        want = int(head.get("content-length", "-1"))
        while 0 <= len(rest) < want:
            data = sock.recv(65536)
            if not data:
                raise ValueError("the response ended early")
            rest += data
    finally:
        sock.close()
    return rest


def _run_git(plan: bytes) -> None:
    """Become the git command the server answered with (its worktree, then its argv,
    NUL-separated): the patch goes from git to the terminal with nothing in between, and
    git's exit code is ours. Returns when it cannot run here (no such folder: the server
    sees another file system), and the caller asks for the text instead."""
    import _signal  # not `signal`: it builds enums (3 ms)

    from parallel_agents.gitenv import BASE_ENV, REPO_ENV

    fields = plan.decode("utf-8", "surrogateescape").split("\0")
    if len(fields) < 3 or fields[1] != "git" or not os.path.isabs(fields[0]):
        return
    env = {k: v for k, v in os.environ.items() if k not in REPO_ENV}
    env.update(BASE_ENV)
    env["COLUMNS"] = "80"  # --stat's width, as git makes it for the server's pipe
    here = os.getcwd()
    try:
        os.chdir(fields[0])
        sys.stdout.flush()
        # Python ignores SIGPIPE and exec keeps that: `pa diff | head` should end git
        # quietly, as the shell's own `git diff | head` does.
        _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)
        os.execvpe("git", fields[1:], env)
    except OSError:
        _signal.signal(_signal.SIGPIPE, _signal.SIG_IGN)
        os.chdir(here)


def _parse(argv: list[str]) -> tuple[str, str] | None:
    """(session id, query string) of a plain `pa diff`, else None."""
    sid: str | None = None
    turn: str | None = None
    stat = name_only = False
    it = iter(argv)
    for word in it:
        if word == "--stat":
            stat = True
        elif word == "--name-only":
            name_only = True
        elif word == "--turn" or word.startswith("--turn="):
            value = word[7:] if "=" in word else next(it, None)
            if value is None or not value.isascii() or not value.isdigit():
                return None  # click says what is wrong with it
            turn = str(int(value))
        elif word.startswith("-") or sid is not None:
            return None
        else:
            sid = word
    if not sid or "/" in sid or sid in (".", ".."):
        return None
    # name_only wins over stat, as in Client.diff_text.
    fmt = "name-only" if name_only else ("stat" if stat else "patch")
    return sid, (f"turn={turn}&" if turn else "") + f"format={fmt}"


def _quote(value: str) -> str:
    return "".join(chr(b) if b in _SAFE else f"%{b:02X}" for b in value.encode("utf-8"))


def _home() -> str:
    env = os.environ.get("PA_HOME")
    if env:
        return os.path.expanduser(env)
    xdg = os.environ.get("XDG_DATA_HOME") or os.path.join(
        os.path.expanduser("~"), ".local", "share"
    )
    return os.path.join(xdg, "parallel-agents")


def _server() -> tuple[str, int, str, str] | None:
    """(host, port, path prefix, token) of this PA_HOME's running server, or None
    (the same test as ``daemon.status``: its lock is held; a token with loose
    permissions is left for ``auth.read_token`` to tighten)."""
    import fcntl

    url: str | None
    home = _home()
    try:
        with open(os.path.join(home, "server.json"), encoding="utf-8") as f:
            url = _url(f.read(65536))
        fd = os.open(os.path.join(home, "server.lock"), os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return None  # nobody holds it: no server
        except BlockingIOError:
            pass
        finally:
            os.close(fd)
        tfd = os.open(os.path.join(home, "token"), os.O_RDONLY)
        try:
            if os.fstat(tfd).st_mode & 0o077:
                return None
            token = os.read(tfd, 4096).decode("utf-8").strip()
        finally:
            os.close(tfd)
    except (OSError, ValueError):
        return None
    if not token or not url or not url.startswith("http://"):
        return None
    netloc, _, path = url[7:].partition("/")
    host, _, port = netloc.rpartition(":")
    if not host or "[" in host or not port.isdigit():
        return None
    return host, int(port), ("/" + path).rstrip("/") if path else "", token


def _url(text: str) -> str | None:
    """The ``url`` of ``server.json`` (pa writes it: one plain string), read without the
    json module and its ``re``; None when it is not that simple."""
    _, key, rest = text.partition('"url"')
    rest = rest.lstrip()
    if not key or not rest.startswith(":"):
        return None
    rest = rest[1:].lstrip()
    value, quote, _ = rest[1:].partition('"')
    if not rest.startswith('"') or not quote or "\\" in value:
        return None
    return value


def _get(
    host: str, port: int, target: str, token: str
) -> tuple[_socket.socket, dict[str, str], bytes]:
    """Send the request; (socket, headers with ``:status``, body bytes read so far).
    ``_socket`` itself: ``socket`` would import ``enum`` and ``selectors``."""
    sock = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
    try:
        sock.settimeout(600)
        sock.connect((host, port))
        sock.sendall(
            (
                f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Authorization: Bearer {token}\r\nAccept-Encoding: identity\r\n"
                "Connection: close\r\n\r\n"
            ).encode("latin-1")
        )
        buf = b""
        while b"\r\n\r\n" not in buf:
            data = sock.recv(65536)
            if not data or len(buf) > 1 << 20:
                raise ValueError("no response head")
            buf += data
    except BaseException:
        sock.close()
        raise
    raw, _, rest = buf.partition(b"\r\n\r\n")
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    head = {":status": parts[1] if len(parts) > 1 else ""}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        head[name.strip().lower()] = value.strip()
    return sock, head, rest


def _copy(sock: _socket.socket, head: dict[str, str], rest: bytes, url: str) -> int:
    """Copy the body to stdout as it arrives; the exit code."""
    out = sys.stdout.buffer
    chunked = "chunked" in head.get("transfer-encoding", "").lower()
    try:
        try:
            if chunked:
                _dechunk(sock, rest, out.write)
            else:
                want = int(head["content-length"]) if "content-length" in head else -1
                got = len(rest)
                out.write(rest)
                while want < 0 or got < want:
                    data = sock.recv(65536)
                    if not data:
                        if want >= 0:
                            raise ConnectionError("the response ended early")
                        break
                    got += len(data)
                    out.write(data)
        finally:
            sock.close()
        out.flush()
    except BrokenPipeError:
        # A reader that stopped early (`pa diff | head`): quietly done, as git is.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except (OSError, ValueError) as e:
        out.flush()
        print(f"error: cannot reach the pa server at {url}: {e}", file=sys.stderr)
        print("hint: is it running? pa server status", file=sys.stderr)
        return 1
    return 0


def _dechunk(sock: _socket.socket, buf: bytes, write: Callable[[bytes], object]) -> None:
    """HTTP/1.1 chunked transfer coding from ``sock`` (``buf``: bytes already read) to
    ``write``; raises ConnectionError when the body ends before its last chunk."""

    def more() -> bytes:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("the response ended early")
        return data

    while True:
        while b"\r\n" not in buf:
            buf += more()
        size_line, _, buf = buf.partition(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            return  # trailers, if any, are not needed
        while len(buf) < size + 2:
            buf += more()
        write(buf[:size])
        buf = buf[size + 2 :]
