"""A scripted model API on 127.0.0.1 that real agent CLIs can talk to offline.

It speaks the Anthropic Messages API, the OpenAI Responses and Chat Completions APIs and the
Gemini API, and answers each request from a :class:`~.script.Script`: the session is found by a
token in the API key or in the conversation's first prompt, and the turn by counting the model
turns already in the request's history. The server keeps no conversation state, so retries,
parallel sessions and resumed conversations (a follow-up prompt) all land on the right turn.

    with ScriptedModelServer(script) as server:
        env = {"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": "my-session"}
        ...
        assert server.requests[-1].session == "my-session"

Command line: ``python -m parallel_agents.testing.model_server --script FILE --port N``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import signal
import sys
import threading
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from parallel_agents.testing import anthropic_api, gemini_api, openai_api
from parallel_agents.testing.conversation import Conversation, HttpResponse, Reply
from parallel_agents.testing.script import (
    ErrorTurn,
    ModelTurn,
    Script,
    ScriptSession,
    Usage,
    load_script,
)
from parallel_agents.testing.sse import json_from_schema, json_response, stable_id
from parallel_agents.testing.tools import TranslationError, translate_actions

__all__ = ["RequestRecord", "ScriptSource", "ScriptedModelServer", "main", "serve_forever"]

ScriptSource = Script | Path | str | Mapping[str, Any] | Sequence[Any]

_SECRET_HEADERS = {"authorization", "x-api-key", "x-goog-api-key", "api-key", "cookie"}
EXHAUSTED_TEXT = "(the scripted model has no more turns)"
_EMPTY = HttpResponse(200, "application/json", b"{}")


@dataclass(frozen=True)
class RequestRecord:
    """One request the server saw, and how it answered it."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # secrets redacted
    body: Any  # parsed JSON, or None
    dialect: str | None = None  # anthropic | responses | chat | gemini
    # turn | error | exhausted | unmatched | utility | count_tokens | models | other
    kind: str = "other"
    session: str | None = None
    turn: int | None = None  # index into the session's answer turns
    matched_by: str | None = None  # key | prompt | default
    status: int = 200
    tool_calls: tuple[str, ...] = ()  # names of the tools the reply called
    text: str | None = None  # text the reply carried
    usage: Usage | None = None
    stream: bool = False
    time: float = field(default_factory=time.time)


@dataclass(frozen=True)
class _Outcome:
    response: HttpResponse
    kind: str
    dialect: str | None = None
    session: str | None = None
    turn: int | None = None
    matched_by: str | None = None
    reply: Reply | None = None
    stream: bool = False
    delay: float = 0.0


class ScriptedModelServer:
    """The scripted model API. Binds 127.0.0.1 on a free port unless told otherwise."""

    def __init__(self, script: ScriptSource, host: str = "127.0.0.1", port: int = 0) -> None:
        self._script_path = Path(script) if isinstance(script, Path | str) else None
        self._script_mtime = self._mtime()
        self._script = script if isinstance(script, Script) else load_script(script)
        self._host = host
        self._requested_port = port
        self._lock = threading.Condition()
        self._requests: list[RequestRecord] = []
        self._served: dict[tuple[str, int], int] = {}  # transient error -> times served
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> ScriptedModelServer:
        if self._httpd is not None:
            return self
        handler = type("_BoundHandler", (_Handler,), {"model_server": self})
        httpd = ThreadingHTTPServer((self._host, self._requested_port), handler)
        httpd.daemon_threads = True
        httpd.block_on_close = False
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="scripted-model",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> ScriptedModelServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------------

    @property
    def host(self) -> str:
        return self._host

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the model server is not running; call start() first")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Base URL without a path: ANTHROPIC_BASE_URL, GOOGLE_GEMINI_BASE_URL."""
        return f"http://{self._host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """Base URL with ``/v1``: Codex providers, litellm ``api_base``, OpenAI SDKs."""
        return f"{self.url}/v1"

    # -- script and log --------------------------------------------------------------------

    @property
    def script(self) -> Script:
        return self._script

    def set_script(self, script: ScriptSource) -> None:
        """Replace the script (and forget transient-error counts)."""
        loaded = script if isinstance(script, Script) else load_script(script)
        with self._lock:
            self._script = loaded
            self._served.clear()

    @property
    def requests(self) -> list[RequestRecord]:
        """Every request so far, oldest first (a copy)."""
        with self._lock:
            return list(self._requests)

    def turns(self, session: str | None = None) -> list[RequestRecord]:
        """Requests answered from the script (turns, scripted errors), optionally of one session."""
        return [
            r
            for r in self.requests
            if r.kind in ("turn", "error", "exhausted")
            and (session is None or r.session == session)
        ]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def wait_for(
        self, predicate: Callable[[RequestRecord], bool], timeout: float = 10.0
    ) -> RequestRecord:
        """Block until a logged request satisfies ``predicate``; TimeoutError after ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for record in self._requests:
                    if predicate(record):
                        return record
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no matching request within {timeout}s")
                self._lock.wait(remaining)

    def _mtime(self) -> float | None:
        if self._script_path is None:
            return None
        try:
            return self._script_path.stat().st_mtime
        except OSError:
            return None

    def _reload_if_changed(self) -> None:
        if self._script_path is None:
            return
        mtime = self._mtime()
        if mtime is not None and mtime != self._script_mtime:
            self._script_mtime = mtime
            try:
                self.set_script(self._script_path)
            except ValueError as exc:  # keep the old script; say why once
                print(f"model-server: keeping the old script: {exc}", file=sys.stderr)

    # -- answering -------------------------------------------------------------------------

    def handle(
        self, method: str, raw_path: str, headers: Mapping[str, str], raw_body: bytes
    ) -> HttpResponse:
        """Answer one HTTP request (usable without a socket, e.g. from a unit test)."""
        split = urlsplit(raw_path)
        path = unquote(split.path)
        query = dict(parse_qsl(split.query))
        lowered = {k.lower(): v for k, v in headers.items()}
        body: Any = None
        if raw_body:
            try:
                body = json.loads(raw_body)
            except ValueError:
                body = None
        self._reload_if_changed()
        outcome = self._route(method, path, query, lowered, body)
        if outcome.delay:
            time.sleep(outcome.delay)  # scripted latency, for demos and "busy" states
        reply = outcome.reply
        record = RequestRecord(
            method=method,
            path=path,
            query=query,
            headers={k: ("<redacted>" if k in _SECRET_HEADERS else v) for k, v in lowered.items()},
            body=body,
            dialect=outcome.dialect,
            kind=outcome.kind,
            session=outcome.session,
            turn=outcome.turn,
            matched_by=outcome.matched_by,
            status=outcome.response.status,
            tool_calls=tuple(c.name for c in reply.calls) if reply else (),
            text=reply.text if reply else None,
            usage=reply.usage if reply else None,
            stream=outcome.stream,
        )
        with self._lock:
            self._requests.append(record)
            self._lock.notify_all()
        return outcome.response

    def _route(
        self,
        method: str,
        path: str,
        query: Mapping[str, str],
        headers: Mapping[str, str],
        body: Any,
    ) -> _Outcome:
        if method in ("GET", "HEAD"):
            if path.rstrip("/").endswith("/models"):
                return _Outcome(_model_list(), "models")
            if path in ("", "/"):
                return _Outcome(json_response(200, {"ok": True}), "other")
            return _Outcome(_not_found(path), "other")
        if method != "POST":
            return _Outcome(_not_found(path), "other")
        data: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
        if path.endswith("/messages/count_tokens"):
            return _Outcome(anthropic_api.count_tokens(data), "count_tokens", "anthropic")
        if path.endswith("/messages"):
            conv = anthropic_api.parse(data, headers)
            return self._answer(conv, anthropic_api.render, anthropic_api.error)
        if path.endswith("/responses"):
            conv = openai_api.parse_responses(data, headers)
            return self._answer(conv, openai_api.render_responses, openai_api.error)
        if path.endswith("/chat/completions"):
            conv = openai_api.parse_chat(data, headers)
            return self._answer(conv, openai_api.render_chat, openai_api.error)
        if "/models/" in path and ":" in path:
            model, _, action = path.rsplit("/", 1)[-1].partition(":")
            if action == "countTokens":
                return _Outcome(gemini_api.count_tokens(data), "count_tokens", "gemini")
            if action in ("generateContent", "streamGenerateContent"):
                stream = action == "streamGenerateContent"
                conv = gemini_api.parse(data, headers, query, model, stream)
                return self._answer(conv, gemini_api.render, gemini_api.error)
        return _Outcome(_not_found(path), "other")

    def _answer(
        self,
        conv: Conversation,
        render: Callable[[Reply, Conversation], HttpResponse],
        error: Callable[[int, str], HttpResponse],
    ) -> _Outcome:
        base = _Outcome(_EMPTY, "turn", dialect=conv.dialect, stream=conv.stream)
        with self._lock:
            script = self._script
        if not conv.tools and not conv.is_mini_swe_agent:
            # A side request (title, summary, routing, next-speaker check): not a script turn.
            text = script.utility_text
            if conv.wants_json is not None:
                text = json.dumps(json_from_schema(conv.wants_json, script.utility_text))
            reply = _reply(conv, text, (), None, "utility")
            return replace(base, response=render(reply, conv), kind="utility", reply=reply)
        session, matched_by = _match(script, conv)
        if session is None:
            message = (
                "no script session matches this request (api key or first prompt); "
                f"sessions: {[s.match for s in script.sessions]}"
            )
            return replace(base, response=error(400, message), kind="unmatched")
        index = conv.model_turns
        base = replace(base, session=session.name, matched_by=matched_by, turn=index)
        entries = session.answer_turns()
        if index >= len(entries):
            final = ModelTurn(text=EXHAUSTED_TEXT)
            calls = translate_actions(final, conv, _call_prefix(session, index))
            reply = _reply(conv, EXHAUSTED_TEXT, calls, None, session.name, index)
            return replace(base, response=render(reply, conv), kind="exhausted", reply=reply)
        transients, turn = entries[index]
        with self._lock:
            for position, transient in transients:
                served = self._served.get((session.name, position), 0)
                if served < (transient.times or 0):
                    self._served[(session.name, position)] = served + 1
                    response = _retryable(error(transient.status, transient.message))
                    return replace(base, response=response, kind="error", delay=transient.delay)
        if isinstance(turn, ErrorTurn):
            response = error(turn.status, turn.message)
            return replace(base, response=response, kind="error", delay=turn.delay)
        try:
            calls = translate_actions(turn, conv, _call_prefix(session, index))
        except TranslationError as exc:
            response = error(400, f"scripted turn {index}: {exc}")
            return replace(base, response=response, kind="unmatched")
        reply = _reply(conv, turn.text, calls, turn.usage, session.name, index)
        return replace(base, response=render(reply, conv), reply=reply, delay=turn.delay)


def _retryable(response: HttpResponse) -> HttpResponse:
    """A transient error invites the client to retry at once (Stainless SDKs read these)."""
    headers = {**response.headers, "x-should-retry": "true", "retry-after-ms": "10"}
    return replace(response, headers=headers)


def _call_prefix(session: ScriptSession, index: int) -> str:
    return f"pa{stable_id(session.name, length=8)}{index:03d}"


def _reply(
    conv: Conversation,
    text: str | None,
    calls: tuple[Any, ...],
    usage: Usage | None,
    *identity: object,
) -> Reply:
    if usage is None:
        size = len(conv.system) + len(conv.first_prompt) + 200 * conv.model_turns
        produced = len(text or "") + sum(len(json.dumps(dict(c.arguments))) for c in calls)
        usage = Usage(input_tokens=100 + size // 4, output_tokens=10 + produced // 4)
    response_id = stable_id(conv.dialect, conv.model_turns, *identity)
    return Reply(text=text, calls=tuple(calls), usage=usage, response_id=response_id)


def _match(script: Script, conv: Conversation) -> tuple[ScriptSession | None, str | None]:
    for session in script.sessions:
        if session.match and conv.api_key and session.match in conv.api_key:
            return session, "key"
    for session in script.sessions:
        if session.match and session.match in conv.first_prompt:
            return session, "prompt"
    for session in script.sessions:
        if not session.match:
            return session, "default"
    return None, None


def _model_list() -> HttpResponse:
    names = ["claude-sonnet-4-5", "gpt-5.5", "gemini-2.5-pro", "gemini-2.5-flash", "scripted"]
    data = [
        {
            "id": name,
            "object": "model",
            "type": "model",
            "display_name": name,
            "created": 0,
            "created_at": "2025-01-01T00:00:00Z",
            "owned_by": "parallel-agents",
        }
        for name in names
    ]
    return json_response(
        200,
        {
            "object": "list",
            "data": data,
            "has_more": False,
            "first_id": names[0],
            "last_id": names[-1],
        },
    )


def _not_found(path: str) -> HttpResponse:
    return json_response(
        404, {"error": {"message": f"the scripted model server has no {path}", "code": 404}}
    )


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "pa-scripted-model/1"
    model_server: ScriptedModelServer  # set on the bound subclass

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the request log is in memory; stderr stays quiet

    def _body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            raw = b"".join(chunks)
        else:
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        encoding = self.headers.get("content-encoding", "").lower()
        if encoding == "gzip":
            raw = gzip.decompress(raw)
        elif encoding == "deflate":
            raw = zlib.decompress(raw)
        return raw

    def _serve(self) -> None:
        body = self._body() if self.command in ("POST", "PUT", "PATCH") else b""
        headers = {k: v for k, v in self.headers.items()}
        try:
            response = self.model_server.handle(self.command, self.path, headers, body)
        except Exception as exc:  # a bug here must show up in the CLI, not hang it
            response = json_response(500, {"error": {"message": f"model server bug: {exc!r}"}})
        self.send_response(response.status)
        self.send_header("content-type", response.content_type)
        self.send_header("content-length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = _serve


def serve_forever(script_path: Path, host: str = "127.0.0.1", port: int = 0) -> None:
    """Run the server in the foreground until SIGINT/SIGTERM; the script reloads when edited."""
    server = ScriptedModelServer(script_path, host=host, port=port).start()
    stop = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, _on_signal)
    print(f"scripted model server listening on {server.url}", flush=True)
    print(f"  ANTHROPIC_BASE_URL={server.url}  GOOGLE_GEMINI_BASE_URL={server.url}", flush=True)
    print(f"  OpenAI base_url={server.openai_base_url}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m parallel_agents.testing.model_server",
        description="Scripted model API (Anthropic, OpenAI, Gemini) for offline agent runs.",
    )
    parser.add_argument("--script", required=True, type=Path, help="YAML or JSON script file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    args = parser.parse_args(argv)
    try:
        load_script(args.script)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    serve_forever(args.script, args.host, args.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
