// Panes: 2 to 4 sessions side by side, arranged by drag and drop, layout kept in localStorage.
import { ConversationView } from "./conversation.js";
import { followUpBox } from "./session_view.js";
import { on, state } from "./state.js";
import { h, storeGet, storeSet } from "./util.js";

const KEY = "panes";

function layout() {
  const l = storeGet(KEY, { n: 2, slots: [] });
  l.n = Math.max(2, Math.min(4, Number(l.n) || 2));
  l.slots = Array.from({ length: 4 }, (_, i) => (l.slots && l.slots[i]) || null);
  return l;
}

function save(l) {
  storeSet(KEY, l);
}

/** Put a session in the first empty pane (or the last one), from anywhere. */
export function addToPanes(sid) {
  const l = layout();
  if (l.slots.slice(0, l.n).includes(sid)) return;
  let i = l.slots.slice(0, l.n).indexOf(null);
  if (i < 0 && l.n < 4) {
    i = l.n;
    l.n++;
  }
  if (i < 0) i = l.n - 1;
  l.slots[i] = sid;
  save(l);
}

export class PanesView {
  constructor(root) {
    this.root = root;
    this.views = [];
    this.offs = [on("session", (s) => this.syncHead(s.id))];
    this.render();
  }

  render() {
    for (const v of this.views) v && v.destroy();
    this.views = [];
    this.l = layout();
    const sizeSel = h("select", { "aria-label": "Number of panes" }, ...[2, 3, 4].map((n) => h("option", { value: String(n) }, `${n} panes`)));
    sizeSel.value = String(this.l.n);
    sizeSel.addEventListener("change", () => {
      this.l.n = Number(sizeSel.value);
      save(this.l);
      this.render();
    });
    const bar = h("div.panes-bar", null, sizeSel, h("span.muted", null, "Drag sessions from the sidebar onto a pane; drag a pane's title bar to move it."));
    this.grid = h(`div.panes.n${this.l.n}`);
    this.heads = [];
    for (let i = 0; i < this.l.n; i++) this.grid.append(this.pane(i));
    this.root.replaceChildren(bar, this.grid);
  }

  pane(i) {
    const sid = this.l.slots[i];
    const s = sid && state.sessions.get(sid);
    const el = h("div.pane", { dataset: { slot: String(i), id: sid || "" } });
    el.addEventListener("dragover", (e) => {
      if ([...e.dataTransfer.types].some((t) => t === "text/pa-session" || t === "text/pa-pane")) {
        e.preventDefault();
        el.classList.add("drop");
      }
    });
    el.addEventListener("dragleave", () => el.classList.remove("drop"));
    el.addEventListener("drop", (e) => {
      e.preventDefault();
      el.classList.remove("drop");
      const from = e.dataTransfer.getData("text/pa-pane");
      const id = e.dataTransfer.getData("text/pa-session");
      if (from !== "") {
        const j = Number(from);
        [this.l.slots[i], this.l.slots[j]] = [this.l.slots[j], this.l.slots[i]];
      } else if (id) {
        const j = this.l.slots.indexOf(id);
        if (j >= 0 && j < this.l.n) this.l.slots[j] = this.l.slots[i];
        this.l.slots[i] = id;
      } else return;
      save(this.l);
      this.render();
    });
    if (!s) {
      el.append(h("div.pane-empty", null, "Drop a session here"));
      this.views.push(null);
      return el;
    }
    const badge = h("span.badge");
    const title = h("span.title");
    const head = h(
      "div.pane-head",
      { draggable: "true", title: "drag to move" },
      title,
      badge,
      h("a", { href: `#/s/${sid}`, title: "open" }, "open"),
      h("button.icon", { title: "remove from panes", onclick: () => this.clear(i) }, "×"),
    );
    head.addEventListener("dragstart", (e) => {
      e.dataTransfer.setData("text/pa-pane", String(i));
      e.dataTransfer.effectAllowed = "move";
    });
    this.heads[i] = { sid, badge, title };
    const convEl = h("div");
    let conv = null;
    const fu = followUpBox(sid, () => conv, { compact: true });
    el.append(head, convEl, fu.el);
    conv = new ConversationView(convEl, sid, { compact: true, onFile: () => (location.hash = `#/s/${sid}/diff`) });
    conv.load();
    this.views.push(conv);
    this.syncHead(sid);
    return el;
  }

  syncHead(sid) {
    for (const hd of this.heads) {
      if (!hd || hd.sid !== sid) continue;
      const s = state.sessions.get(sid);
      if (!s) continue;
      hd.title.textContent = s.title;
      hd.badge.textContent = s.status === "needs_input" ? "needs input" : s.status;
      hd.badge.className = `badge st-${s.status}`;
    }
  }

  clear(i) {
    this.l.slots[i] = null;
    save(this.l);
    this.render();
  }

  destroy() {
    for (const v of this.views) v && v.destroy();
    for (const off of this.offs) off();
  }
}
