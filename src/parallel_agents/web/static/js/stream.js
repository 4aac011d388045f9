// Live updates: one EventSource on /api/v1/stream for all sessions; no polling.
import { BASE, api } from "./api.js";
import {
  ACTIVE,
  emit,
  extraOf,
  patchSession,
  refreshFiles,
  refreshSoon,
  conflictsSoon,
  state,
  upsertSession,
  loadSessions,
} from "./state.js";

export const KINDS = [
  "message", "tool_call", "tool_result", "command", "file_change", "usage", "status", "error",
  "result", "output", "raw", "attention", "check", "conflict", "rollback", "renamed",
];
// Event names on the wire that differ from the kind (server/sse.py WIRE_NAMES): a message
// named "error" would reach es.onerror and read as a lost connection.
const WIRE = { error: "agent_error" };

let es = null;
let lastId = 0;
let buffering = true;
let buffer = [];
let retryMs = 1000;
const unknown = new Map(); // sid -> an event arrived while its first fetch was in flight

function setConn(text, cls) {
  const el = document.getElementById("conn");
  if (!el) return;
  el.textContent = text;
  el.className = `conn ${cls}`;
}

function handle(raw, kind) {
  let ev;
  try {
    ev = JSON.parse(raw.data);
  } catch {
    return;
  }
  if (!ev || typeof ev !== "object" || !ev.session_id) return;
  if (!ev.kind) ev.kind = kind;
  const id = Number(raw.lastEventId || ev.id || 0);
  if (id && id <= lastId) return; // already seen (reconnect overlap)
  if (id) lastId = id;
  if (buffering) {
    buffer.push(ev);
    return;
  }
  apply(ev);
}

/** Update the model from one event, then hand it to the views. */
function apply(ev) {
  const sid = ev.session_id;
  const s = state.sessions.get(sid);
  if (!s) {
    // A session this page has not seen yet (made elsewhere): fetch it. Events that arrive
    // while that fetch is in flight may be newer than its answer (a fast agent fails before
    // the server reads the row), so they ask for one more fetch once it lands.
    if (unknown.has(sid)) {
      unknown.set(sid, true);
    } else {
      unknown.set(sid, false);
      api(`/sessions/${encodeURIComponent(sid)}`)
        .then((full) => upsertSession(full))
        .catch(() => {})
        .finally(() => {
          const again = unknown.get(sid);
          unknown.delete(sid);
          if (again) refreshSoon(sid, 0);
        });
    }
    emit("event", ev);
    return;
  }
  const p = ev.payload || {};
  const fields = {};
  if (typeof ev.turn === "number" && ev.turn > (s.turns || 0)) fields.turns = ev.turn;
  switch (ev.kind) {
    case "status":
      if (p.to) fields.status = p.to;
      if ("error" in p) fields.error = p.error || null;
      else if (p.to && ACTIVE.has(p.to)) fields.error = null;
      fields.updated_at = ev.ts || Date.now() / 1000;
      refreshSoon(sid);
      if (p.to && !ACTIVE.has(p.to)) {
        refreshFiles(sid, true);
        conflictsSoon();
      }
      break;
    case "attention":
      if (sid !== state.openId || document.hidden) fields.unread = true;
      break;
    case "usage":
      if (typeof p.cost_usd === "number") refreshSoon(sid, 400);
      break;
    case "file_change": {
      const x = extraOf(sid);
      if (p.path) x.paths.add(p.path);
      if (x.files === null || x.files < x.paths.size) x.files = x.paths.size;
      emit("session", s, "update");
      break;
    }
    case "check":
      extraOf(sid).check = p;
      extraOf(sid).checkId = ev.id;
      emit("session", s, "update");
      break;
    case "conflict":
      conflictsSoon(300);
      break;
    case "renamed": // from any client: the dashboard, `pa rename`, another tab
      if (typeof p.to === "string") fields.title = p.to;
      break;
    case "rollback": // the worktree's files changed under the session
      refreshFiles(sid, true);
      conflictsSoon();
      break;
    default:
      break;
  }
  if (Object.keys(fields).length) patchSession(sid, fields);
  emit("event", ev);
}

function connect() {
  const url = `${BASE}/stream` + (lastId ? `?last_event_id=${lastId}` : "");
  es = new EventSource(url);
  es.onopen = () => {
    retryMs = 1000;
    setConn("live", "live");
  };
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) {
      // The browser gave up (HTTP error, e.g. server restarting or logged out): retry ourselves,
      // then resync, because a new EventSource does not send Last-Event-ID.
      setConn("offline", "down");
      es.close();
      setTimeout(async () => {
        try {
          await api("/health");
        } catch (e) {
          if (e.status === 401) {
            emit("unauthorized");
            return;
          }
        }
        connect();
        resync();
      }, retryMs);
      retryMs = Math.min(retryMs * 2, 15000);
    } else {
      setConn("reconnecting…", "down");
    }
  };
  es.onmessage = (m) => handle(m, "message");
  for (const k of KINDS) if (k !== "message") es.addEventListener(WIRE[k] || k, (m) => handle(m, k));
  es.addEventListener("reset", onReset);
}

/** The server no longer has the events we resumed from (its database was reset, see
 *  server/sse.py): ids and sessions held here mean nothing there any more, so start over
 *  from a fresh page (filters and layout are kept in localStorage). */
function onReset() {
  if (es) es.close();
  setConn("reloading…", "down");
  location.reload();
}

async function resync() {
  try {
    await loadSessions();
    emit("resync");
  } catch {
    /* next reconnect tries again */
  }
}

/** Open the stream now; events are held until release() (after the first load). */
export function start() {
  connect();
}

export function release() {
  buffering = false;
  const held = buffer;
  buffer = [];
  for (const ev of held) apply(ev);
}

export function lastEventId() {
  return lastId;
}
