// The inbox (issue 17): the sessions of routine runs nobody has looked at yet. The sidebar's
// Inbox button filters the list down to them and shows their count; opening one marks it
// read (session_view.js posts /sessions/ID/read, which marks its run read on the server).
import { api } from "./api.js";
import { emit, on, state } from "./state.js";
import { $, debounce } from "./util.js";

state.inbox = new Set();

export async function loadInbox() {
  try {
    const data = await api("/inbox");
    state.inbox = new Set((data.runs || []).map((r) => r.session));
  } catch {
    return; // the count stays as it was; the next change asks again
  }
  badge();
  emit("inbox");
}

/** The person looked at session ``id``: it leaves the inbox at once (the server agrees). */
export function inboxRead(id) {
  if (!state.inbox.delete(id)) return;
  badge();
  emit("inbox");
}

function badge() {
  const n = state.inbox.size;
  const el = $("#inbox-count");
  if (el) {
    el.textContent = String(n);
    el.hidden = n === 0;
  }
}

export function initInbox() {
  const soon = debounce(loadInbox, 300);
  // A routine run's session appeared or changed (merged, discarded): the inbox may differ.
  on("session", (s) => s && s.options && s.options.routine && soon());
  loadInbox();
}
