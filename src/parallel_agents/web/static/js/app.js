// Boot: load sessions, render the sidebar, open the live stream, route between views.
import { setUnauthorizedHandler } from "./api.js";
import { initAttention } from "./attention.js";
import { initInbox } from "./inbox.js";
import { helpDialog, newSessionDialog } from "./dialogs.js";
import { Sidebar } from "./sidebar.js";
import { ATTENTION, emit, loadChecks, loadConflicts, loadRepos, loadSessions, loadStatuses, on, state } from "./state.js";
import * as stream from "./stream.js";
import { $, $$, h, isTyping } from "./util.js";

const t0 = performance.now();
window.__pa = { state, ready: false };

let sidebar = null;
let current = null; // {kind, view, id}

function showView(name) {
  for (const v of ["empty", "session", "panes", "conflicts", "plans", "groups", "maps", "routines"]) $(`#view-${v}`).hidden = v !== name;
  for (const a of $$(".views a")) {
    const on = a.dataset.view === (name === "empty" || name === "session" ? "sessions" : name);
    a.classList.toggle("active", on);
  }
}

function closeCurrent() {
  if (current && current.view) current.view.destroy();
  current = null;
}

async function route() {
  const hash = location.hash.replace(/^#\/?/, "");
  const parts = hash.split("/").filter(Boolean);
  if (parts[0] === "s" && parts[1]) {
    const id = decodeURIComponent(parts[1]);
    const tab = parts[2] || "conversation";
    if (current && current.kind === "session" && current.id === id) {
      current.view.show(tab);
      return;
    }
    closeCurrent();
    const prev = state.openId;
    state.openId = id;
    sidebar.markOpen(prev, id);
    showView("session");
    const { SessionView } = await import("./session_view.js");
    current = { kind: "session", id, view: new SessionView($("#view-session"), id, { tab }) };
    return;
  }
  closeCurrent();
  sidebar.markOpen(state.openId, null);
  state.openId = null;
  if (parts[0] === "panes") {
    showView("panes");
    const { PanesView } = await import("./panes.js");
    current = { kind: "panes", view: new PanesView($("#view-panes")) };
  } else if (parts[0] === "conflicts") {
    showView("conflicts");
    const { ConflictsView } = await import("./conflicts.js");
    current = { kind: "conflicts", view: new ConflictsView($("#view-conflicts")) };
  } else if (parts[0] === "plans") {
    showView("plans"); // issue 15 §1: the plans, or one plan as a graph of its tasks
    const { PlansView } = await import("./plans.js");
    current = { kind: "plans", view: new PlansView($("#view-plans"), parts[1] && decodeURIComponent(parts[1])) };
  } else if (parts[0] === "groups") {
    // Best-of-N attempts (issue 15 §2): the groups, or one group's attempts side by side.
    showView("groups");
    const { GroupsView } = await import("./groups.js");
    const ref = parts[1] ? decodeURIComponent(parts[1]) : null;
    current = { kind: "groups", view: new GroupsView($("#view-groups"), ref) };
  } else if (parts[0] === "maps") {
    showView("maps"); // issue 15 §4: map groups and a group's report
    const { MapsView } = await import("./maps.js");
    current = { kind: "maps", view: new MapsView($("#view-maps"), parts[1] && decodeURIComponent(parts[1])) };
  } else if (parts[0] === "routines") {
    showView("routines"); // issue 17: routines, their next and last runs
    const { RoutinesView } = await import("./routines.js");
    current = { kind: "routines", view: new RoutinesView($("#view-routines")) };
  } else {
    showView("empty");
  }
}

function openSession(id) {
  location.hash = `#/s/${encodeURIComponent(id)}`;
}

function nextWaiting() {
  const items = sidebar.visibleIds().map((id) => state.sessions.get(id)).filter(Boolean);
  const waiting = items.filter((s) => s.status === "needs_input" || (s.unread && ATTENTION.has(s.status)));
  if (!waiting.length) return;
  const i = waiting.findIndex((s) => s.id === state.openId);
  openSession(waiting[(i + 1) % waiting.length].id);
}

function onKey(e) {
  if (e.defaultPrevented || e.altKey) return;
  if (document.querySelector("dialog[open]")) return;
  if (e.key === "Escape" && isTyping(e)) {
    e.target.blur();
    return;
  }
  if (isTyping(e) || e.ctrlKey || e.metaKey) return;
  const k = e.key;
  const sv = current && current.kind === "session" ? current.view : null;
  const handled = {
    j: () => sidebar.move(1),
    ArrowDown: () => sidebar.move(1),
    k: () => sidebar.move(-1),
    ArrowUp: () => sidebar.move(-1),
    Enter: () => sidebar.openCursor(),
    "/": () => $("#f-search").focus(),
    "?": () => helpDialog(),
    n: () => newSession(),
    p: () => (location.hash = "#/panes"),
    c: () => (location.hash = "#/conflicts"),
    u: () => nextWaiting(),
    f: () => sv && sv.focusFollowUp(),
    1: () => sv && sv.show("conversation"),
    2: () => sv && sv.show("diff"),
    3: () => sv && sv.show("terminal"),
  }[k];
  if (!handled) return;
  if ((k === "ArrowDown" || k === "ArrowUp" || k === "Enter") && document.activeElement !== $("#session-list") && document.activeElement !== document.body) return;
  e.preventDefault();
  handled();
}

function newSession() {
  newSessionDialog({ onCreated: (made) => made[0] && openSession(made[0].id) });
}

function loggedOut() {
  if ($(".banner")) return;
  document.body.prepend(
    h("div.banner", null, "Not logged in (or the server restarted with a new token). Open the login URL from ", h("code", null, "pa server status"), "."),
  );
}

async function boot() {
  setUnauthorizedHandler(loggedOut);
  on("unauthorized", loggedOut);
  sidebar = new Sidebar($("#session-list"), { onOpen: openSession });
  stream.start(); // events are held until the first load is on screen
  try {
    await Promise.all([loadSessions(), loadRepos(), loadStatuses()]);
  } catch (e) {
    $("#session-list").replaceChildren(h("div.ev.error", null, `could not load sessions: ${e.message}`));
  }
  sidebar.renderAll();
  window.__pa.firstRenderMs = performance.now() - t0;
  window.__pa.ready = true;
  performance.mark("pa-first-render");
  stream.release();
  initAttention();
  initInbox(); // issue 17: routine runs nobody has looked at yet
  $("#btn-new").addEventListener("click", newSession);
  $("#btn-help").addEventListener("click", helpDialog);
  document.addEventListener("keydown", onKey);
  window.addEventListener("hashchange", route);
  await route();
  emit("booted");
  // Background facts, after first paint: conflict forecast, changed-file counts.
  const later = window.requestIdleCallback || ((fn) => setTimeout(fn, 200));
  later(() => {
    // Warm the modules a session view needs, so the first click does not wait for them.
    import("./session_view.js").catch(() => {});
    import("./markdown.js").then((m) => m.loadMarkdown()).catch(() => {});
    loadConflicts();
    loadChecks();
    sidebar.countFiles(); // of the rows drawn, and of each row when it is drawn
  });
}

boot();
