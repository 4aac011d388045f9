// The dashboard's model: sessions by id, repos, derived per-session facts, and a tiny pub/sub.
import { api, listOf } from "./api.js";

export const ACTIVE = new Set(["queued", "starting", "running", "needs_input"]);
export const ENDED = new Set(["merged", "discarded"]);
// "live" is the server's definition (models.Status.live, GET /api/v1/statuses), shared with
// `pa ls` and GET /api/v1/sessions; this copy only serves until loadStatuses() answers.
export const LIVE = new Set(["queued", "starting", "running", "needs_input", "idle", "failed", "stopped", "interrupted"]);
export const ATTENTION = new Set(["needs_input", "idle", "failed", "interrupted"]);
export const DEFAULT_AGENTS = ["claude", "codex", "gemini", "opencode", "aider", "mini", "command"];

export const state = {
  /** @type {Map<string, any>} session JSON from the API, kept up to date by events */
  sessions: new Map(),
  repos: [],
  agents: DEFAULT_AGENTS.slice(),
  /** @type {Map<string, {files: number|null, paths: Set<string>, check: any, conflicts: number, baseConflict: boolean}>} */
  extra: new Map(),
  conflicts: null,
  openId: null,
  /** @type {((id: string) => boolean) | null} whether a session's row is drawn (the sidebar's) */
  drawn: null,
  features: { diff: true, conflicts: true },
};

const topics = new Map();
export function on(topic, fn) {
  if (!topics.has(topic)) topics.set(topic, new Set());
  topics.get(topic).add(fn);
  return () => topics.get(topic).delete(fn);
}
export function emit(topic, ...args) {
  const fns = topics.get(topic);
  if (!fns) return;
  for (const fn of fns) {
    try {
      fn(...args);
    } catch (e) {
      console.error(`listener of ${topic} failed`, e);
    }
  }
}

export function extraOf(id) {
  let x = state.extra.get(id);
  if (!x) {
    x = { files: null, paths: new Set(), check: null, conflicts: 0, baseConflict: false };
    state.extra.set(id, x);
  }
  return x;
}

/** Merge fresh session JSON into the model and tell the views. */
export function upsertSession(s) {
  if (!s || !s.id) return null;
  const old = state.sessions.get(s.id);
  const merged = old ? Object.assign(old, s) : { ...s };
  if (Array.isArray(merged.turns)) merged.turns = merged.turns.length;
  state.sessions.set(s.id, merged);
  const x = extraOf(s.id);
  for (const k of ["changed_files", "files_changed", "n_files"]) {
    if (typeof s[k] === "number") x.files = s[k];
  }
  const chk = s.check ?? s.last_check ?? (s.options && s.options.check);
  if (chk && typeof chk === "object" && "ok" in chk) x.check = chk;
  emit("session", merged, old ? "update" : "new");
  return merged;
}

/** Patch one session locally (from an event) without a round trip. */
export function patchSession(id, fields) {
  const s = state.sessions.get(id);
  if (!s) return;
  Object.assign(s, fields);
  emit("session", s, "update");
}

export async function loadSessions() {
  const data = await api("/sessions?all=1");
  const list = listOf(data, "sessions");
  const seen = new Set();
  for (const s of list) {
    seen.add(s.id);
    upsertSession(s);
  }
  return list;
}

export async function loadRepos() {
  try {
    state.repos = listOf(await api("/repos"), "repos");
  } catch {
    state.repos = [];
  }
  emit("repos", state.repos);
  return state.repos;
}

export async function loadAgents() {
  try {
    const data = await api("/agents");
    const names = listOf(data, "agents").map((a) => (typeof a === "string" ? a : a.name)).filter(Boolean);
    if (names.length) state.agents = names;
  } catch {
    /* no /agents route: keep the built-in list */
  }
  return state.agents;
}

/** The status vocabulary from the server: which statuses are live and which active. */
export async function loadStatuses() {
  try {
    const data = await api("/statuses");
    const live = listOf(data, "statuses").filter((x) => x && x.live).map((x) => x.name);
    if (live.length) {
      LIVE.clear();
      for (const name of live) LIVE.add(name);
    }
  } catch {
    /* an older server: keep the built-in copy */
  }
  return LIVE;
}

// Debounced per-session refresh from the API: events say *that* something changed,
// the session JSON says what it is now (cost, turns, error…).
const refreshTimers = new Map();
const inflight = new Set();
export function refreshSoon(id, ms = 150) {
  if (refreshTimers.has(id)) return;
  refreshTimers.set(
    id,
    setTimeout(async () => {
      refreshTimers.delete(id);
      if (inflight.has(id)) {
        refreshSoon(id, ms);
        return;
      }
      inflight.add(id);
      try {
        upsertSession(await api(`/sessions/${encodeURIComponent(id)}`));
      } catch {
        /* the next event will try again */
      } finally {
        inflight.delete(id);
      }
    }, ms),
  );
}

/** Changed-file counts come from the diff route; fetch them slowly, a few at a time.
 * Only for a session on screen (its row drawn, or open): with 1,000 sessions most rows are
 * not drawn, and a git diff per ending session nobody sees is server time taken from the
 * ones that run. Its count is marked stale and asked for when its row is drawn. */
const fileQueue = [];
let fileWorkers = 0;
export function refreshFiles(id, front = false) {
  if (!state.features.diff) return;
  if (id !== state.openId && state.drawn && !state.drawn(id)) {
    extraOf(id).filesStale = true;
    return;
  }
  if (fileQueue.includes(id)) return;
  if (front) fileQueue.unshift(id);
  else fileQueue.push(id);
  while (fileWorkers < 2 && fileQueue.length) {
    fileWorkers++;
    (async () => {
      while (fileQueue.length && state.features.diff) {
        const sid = fileQueue.shift();
        const s = state.sessions.get(sid);
        if (!s || s.status === "discarded") continue;
        try {
          const d = await api(`/sessions/${encodeURIComponent(sid)}/diff?format=json`);
          const x = extraOf(sid);
          x.files = listOf(d, "files").length;
          x.filesStale = false;
          emit("session", s, "update");
        } catch (e) {
          // FastAPI's bare "Not Found" means the route is missing (older server): stop asking.
          if ((e.status === 404 && e.message === "Not Found") || e.status === 405) state.features.diff = false;
        }
      }
      fileWorkers--;
    })();
  }
}

/** The latest check of every session, from the check events (one request, at boot). */
export async function loadChecks() {
  let after = 0;
  for (;;) {
    let data;
    try {
      data = await api(`/events?kinds=check&after_id=${after}&limit=10000`);
    } catch {
      return;
    }
    const evs = listOf(data, "events");
    for (const ev of evs) {
      const x = extraOf(ev.session_id);
      if (!x.check || (x.checkId || 0) < ev.id) {
        x.check = ev.payload;
        x.checkId = ev.id;
      }
    }
    for (const id of new Set(evs.map((e) => e.session_id))) {
      const s = state.sessions.get(id);
      if (s) emit("session", s, "update");
    }
    if (evs.length < 10000) return;
    after = evs[evs.length - 1].id;
  }
}

export async function loadConflicts() {
  if (!state.features.conflicts) return null;
  const t0 = performance.now();
  try {
    const data = await api("/conflicts");
    state.conflicts = data;
    const sessions = (data && data.sessions) || {};
    const counts = new Map();
    for (const p of (data && data.pairs) || []) {
      if (!p.paths || !p.paths.length) continue;
      counts.set(p.a, (counts.get(p.a) || 0) + 1);
      counts.set(p.b, (counts.get(p.b) || 0) + 1);
    }
    // Tell the views about the sessions whose figures changed only (not all 1,000).
    const set = (id, conflicts, baseConflict) => {
      const x = extraOf(id);
      if (x.conflicts === conflicts && x.baseConflict === baseConflict) return;
      x.conflicts = conflicts;
      x.baseConflict = baseConflict;
      const s = state.sessions.get(id);
      if (s) emit("session", s, "update");
    };
    for (const id of state.extra.keys()) {
      set(id, counts.get(id) || 0, !!sessions[id] && sessions[id].clean_with_base === false);
    }
    for (const [id, info] of Object.entries(sessions)) set(id, counts.get(id) || 0, info.clean_with_base === false);
    for (const [id, n] of counts) set(id, n, !!sessions[id] && sessions[id].clean_with_base === false);
    emit("conflicts", data);
    return data;
  } catch (e) {
    if (e.status === 404 || e.status === 405) state.features.conflicts = false;
    return null;
  } finally {
    conflictCost = performance.now() - t0;
  }
}

// The forecast covers every live session (seconds of server time at 1,000): asked for at
// most once per `ms` however many sessions end (a steady stream of endings neither pushes
// it back forever nor asks again and again), one at a time, and spaced by a few times
// what the last one took.
let conflictTimer = null;
let conflictBusy = false;
let conflictAgain = false;
let conflictCost = 0;
export function conflictsSoon(ms = 2000) {
  if (conflictBusy) {
    conflictAgain = true;
    return;
  }
  if (conflictTimer) return;
  conflictTimer = setTimeout(async () => {
    conflictBusy = true;
    try {
      await loadConflicts();
    } finally {
      conflictTimer = null;
      conflictBusy = false;
      if (conflictAgain) {
        conflictAgain = false;
        conflictsSoon();
      }
    }
  }, Math.max(ms, 4 * conflictCost));
}

/** Sessions waiting for the person: needs input, or finished and not yet looked at. */
export function waitingCount() {
  let n = 0;
  for (const s of state.sessions.values()) {
    if (s.status === "needs_input" || (s.unread && ATTENTION.has(s.status))) n++;
  }
  return n;
}
