// One open session: header with status and actions, tabs (conversation, diff, terminal), follow-up box.
import { api, errMsg } from "./api.js";
import { ConversationView } from "./conversation.js";
import { DiffView } from "./diff.js";
import { confirmDialog } from "./dialogs.js";
import { inboxRead } from "./inbox.js";
import { ACTIVE, extraOf, on, patchSession, refreshSoon, state, upsertSession } from "./state.js";
import { TerminalView } from "./terminal.js";
import { cost, duration, h, toast } from "./util.js";

const TABS = ["conversation", "diff", "terminal", "shell"]; // shell: issue 16 §2, any session

/** POST an action; update the model from the answer. Returns the answer or null after a toast. */
export async function act(sid, path, body, label) {
  try {
    const data = await api(`/sessions/${encodeURIComponent(sid)}/${path}`, { method: "POST", body: body || {} });
    if (data && data.id === sid && data.status) upsertSession(data);
    else if (data && data.session && data.session.id === sid) upsertSession(data.session);
    else refreshSoon(sid, 50);
    if (label) toast(label);
    return data ?? {};
  } catch (e) {
    toast(`${path} failed: ${errMsg(e)}`, "err");
    return null;
  }
}

/** Send a follow-up prompt; true when the server took it. */
export async function sendFollowUp(sid, prompt, conv) {
  const text = prompt.trim();
  if (!text) return false;
  const data = await act(sid, "send", { prompt: text });
  if (!data) return false;
  const s = state.sessions.get(sid);
  const n = (data && data.turns) || (s && s.turns);
  if (conv && typeof n === "number") conv.expectTurn(n, text);
  return true;
}

export function followUpBox(sid, getConv, { compact = false } = {}) {
  const ta = h("textarea", { rows: compact ? "1" : "2", placeholder: compact ? "Follow-up…  Ctrl+Enter sends" : "Follow-up for the agent…  (Ctrl+Enter sends)", "aria-label": "Follow-up" });
  const btn = h("button.primary", { title: "Ctrl+Enter" }, "Send");
  const send = async () => {
    if (!ta.value.trim()) return;
    btn.disabled = true;
    try {
      if (await sendFollowUp(sid, ta.value, getConv())) ta.value = "";
    } finally {
      btn.disabled = false;
    }
  };
  ta.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      send();
    } else if (e.key === "Escape") {
      ta.blur();
    }
  });
  btn.addEventListener("click", send);
  const parts = [ta, btn];
  if (!compact) parts.push(h("div.hint", null, "Ctrl+Enter"));
  return { el: h("div.followup", null, ...parts), ta };
}

export class SessionView {
  constructor(root, sid, { tab = "conversation", onClose } = {}) {
    this.root = root;
    this.sid = sid;
    this.tab = TABS.includes(tab) ? tab : "conversation";
    this.onClose = onClose;
    this.offs = [];
    this.build();
    this.offs.push(on("session", (s) => s.id === this.sid && this.sync()));
    this.offs.push(on("session", (s) => s.parent === this.sid && this.syncKin())); // issue 18
    this.offs.push(
      on("event", (ev) => {
        if (ev.session_id !== this.sid) return;
        if (ev.kind === "file_change" || ev.kind === "rollback" || (ev.kind === "status" && !ACTIVE.has(ev.payload?.to))) this.diffStale = true;
      }),
    );
    this.offs.push(on("resync", () => this.conv.load()));
    this.ticks = 0;
    this.timer = setInterval(() => {
      this.syncMeta();
      if (++this.ticks % 3 === 0) this.loadRun();
    }, 1000);
  }

  get s() {
    return state.sessions.get(this.sid) || { id: this.sid, title: this.sid, status: "?" };
  }

  build() {
    const s = this.s;
    this.titleEl = h("h2");
    this.badge = h("span.badge");
    this.meta = h("div.meta");
    const b = (label, fn, title, cls = "") => h(`button${cls}`, { onclick: fn, title, dataset: { action: label.toLowerCase() } }, label);
    this.btn = {
      stop: b("Stop", () => this.stop(), "Stop the agent's current turn"),
      check: b("Check", () => this.check(), "Run the repo's check command in the worktree"),
      rollback: b("Rollback", () => this.rollback(), "Reset the worktree to the end of an earlier turn"),
      merge: b("Merge", () => this.merge(), "Merge the session's branch into its base", ".primary"),
      pr: b("PR", () => this.pr(), "Push the branch and open a pull request"),
      discard: b("Discard", () => this.discard(), "Remove the worktree and branch (archived first)", ".danger"),
      restore: b("Restore", () => this.restore(), "Bring a discarded session back"),
      pane: b("Pane", () => this.toPane(), "Show this session in the panes view"),
      rename: b("Rename", () => this.rename(), "Give the session a new title (the branch keeps its name)"),
      open: b("Open", () => this.openEditor(), "Open the worktree in your editor (VS Code, Cursor, Zed, JetBrains…) on this machine"),
    };
    const actions = h("div.actions", null, ...Object.values(this.btn));
    this.tabBtns = TABS.map((t) => h("button", { dataset: { tab: t }, role: "tab", onclick: () => this.show(t) }, t[0].toUpperCase() + t.slice(1)));
    this.runEl = h("div.run", { hidden: true }); // issue 16 §1: the run script
    this.kinEl = h("div.kin", { hidden: true }); // issue 18: its lead and its children
    const head = h("div.s-head", null, h("div.r1", null, this.titleEl, this.badge, actions), this.meta, this.kinEl, this.runEl, h("div.tabs", { role: "tablist" }, ...this.tabBtns));
    this.convEl = h("div");
    this.fu = followUpBox(this.sid, () => this.conv);
    this.panels = {
      conversation: h("div.tab-body", { dataset: { panel: "conversation" } }, this.convEl, this.fu.el),
      diff: h("div.tab-body", { dataset: { panel: "diff" } }),
      terminal: h("div.tab-body", { dataset: { panel: "terminal" } }),
      shell: h("div.tab-body", { dataset: { panel: "shell" } }),
    };
    this.root.replaceChildren(head, ...Object.values(this.panels));
    this.conv = new ConversationView(this.convEl, this.sid, { onFile: (path) => this.showDiffFile(path) });
    this.conv.load();
    this.loadRun();
    this.sync();
    this.show(this.tab);
    // A routine run's session is marked read when opened even if its turn still runs
    // (issue 17: the inbox); the server writes only when something was unread.
    if (s.unread || (s.options && s.options.routine)) this.markRead();
  }

  // issue 16 §3: the server starts the editor (it runs on this machine: 127.0.0.1 only).
  async openEditor() {
    const data = await act(this.sid, "open", {});
    if (data && data.editor) toast(`opened the worktree in ${data.editor}`);
  }

  markRead() {
    patchSession(this.sid, { unread: false });
    inboxRead(this.sid);
    api(`/sessions/${encodeURIComponent(this.sid)}/read`, { method: "POST", body: {} }).catch(() => {});
  }

  show(tab) {
    this.tab = tab;
    for (const b of this.tabBtns) b.classList.toggle("active", b.dataset.tab === tab);
    for (const [k, p] of Object.entries(this.panels)) p.hidden = k !== tab;
    if (tab === "diff") {
      if (!this.diff) {
        this.diff = new DiffView(this.panels.diff, this.sid, {
          onSend: async (p) => {
            const ok = await sendFollowUp(this.sid, p, this.conv);
            if (ok) this.show("conversation");
            return ok;
          },
        });
        this.diff.load();
      } else if (this.diffStale) this.diff.load();
      this.diffStale = false;
    }
    if (tab === "terminal") {
      if (!this.term) {
        this.term = new TerminalView(this.panels.terminal, this.sid);
        this.term.open();
      } else this.term.shown();
    }
    if (tab === "shell") {
      if (!this.shellTerm) {
        this.shellTerm = new TerminalView(this.panels.shell, this.sid, { shell: true });
        this.shellTerm.open();
      } else this.shellTerm.shown();
    }
    const want = `#/s/${this.sid}${tab === "conversation" ? "" : `/${tab}`}`;
    if (location.hash !== want) history.replaceState(null, "", want);
  }

  async showDiffFile(path) {
    this.show("diff");
    if (!this.diff.files.length) await this.diff.load();
    this.diff.showFile(path);
  }

  focusFollowUp() {
    this.show("conversation");
    this.fu.ta.focus();
  }

  sync() {
    const s = this.s;
    this.titleEl.textContent = s.title;
    this.titleEl.title = s.title;
    this.badge.textContent = s.status === "needs_input" ? "needs input" : s.status;
    this.badge.className = `badge st-${s.status}`;
    const active = ACTIVE.has(s.status);
    const ended = s.status === "merged" || s.status === "discarded";
    const show = (k, v) => (this.btn[k].hidden = !v);
    show("stop", active);
    show("check", !active && !ended);
    show("rollback", !active && !ended && (s.turns || 0) >= 1);
    show("merge", !active && !ended);
    show("pr", !active && !ended);
    show("discard", s.status !== "discarded");
    show("restore", s.status === "discarded");
    show("open", s.status !== "discarded");
    this.fu.el.hidden = s.status === "discarded";
    this.tabBtns[2].hidden = !s.interactive;
    this.tabBtns[3].hidden = s.status === "discarded"; // a shell needs the worktree
    this.syncMeta();
    this.syncKin();
    if (s.unread && state.openId === this.sid && !document.hidden) this.markRead();
  }

  /** Issue 18: links to the session that started this one and to the ones it started. */
  syncKin() {
    const s = this.s;
    const kids = [...state.sessions.values()].filter((c) => c.parent === this.sid).sort((a, b) => (a.created_at || 0) - (b.created_at || 0));
    const parent = s.parent ? state.sessions.get(s.parent) || { id: s.parent, title: s.parent, status: "?" } : null;
    const link = (x, rel) => h("a", { href: `#/s/${encodeURIComponent(x.id)}`, dataset: { kin: rel, id: x.id }, title: x.id }, x.title, h(`span.badge.st-${x.status}`, null, x.status === "needs_input" ? "needs input" : x.status));
    const key = JSON.stringify([parent && [parent.id, parent.title, parent.status], kids.map((c) => [c.id, c.title, c.status])]);
    if (key === this.kinKey) return;
    this.kinKey = key;
    const parts = [];
    if (parent) parts.push(h("span.kin-label", null, "started by"), link(parent, "parent"));
    if (kids.length) parts.push(h("span.kin-label", null, `started ${kids.length} session${kids.length === 1 ? "" : "s"}:`), ...kids.map((c) => link(c, "child")));
    this.kinEl.replaceChildren(...parts);
    this.kinEl.hidden = !parts.length;
  }

  syncMeta() {
    const s = this.s;
    const x = extraOf(this.sid);
    const now = Date.now() / 1000;
    const end = ACTIVE.has(s.status) ? now : s.updated_at || now;
    const parts = [
      s.repo_name,
      s.branch && `${s.branch} ← ${s.base_ref || "?"}`,
      s.agent + (s.model ? ` (${s.model})` : ""),
      `${s.turns || 0} turn${s.turns === 1 ? "" : "s"}`,
      s.created_at && duration(end - s.created_at),
      cost(s.cost_usd),
      x.files !== null && x.files !== undefined ? `${x.files} file${x.files === 1 ? "" : "s"} changed` : "",
      x.check ? (x.check.ok ? "✓ check passed" : "✗ check failed") : "",
      x.conflicts ? `⚠ conflicts with ${x.conflicts} session${x.conflicts === 1 ? "" : "s"}` : x.baseConflict ? "⚠ conflicts with its base" : "",
    ].filter(Boolean);
    const key = parts.join("|") + (s.error || "");
    if (key === this.metaKey) return;
    this.metaKey = key;
    this.meta.replaceChildren(...parts.map((p) => h("span", null, p)), ...(s.error ? [h("span.err", null, s.error)] : []));
    this.meta.title = s.worktree || "";
  }

  // -- the run script (issue 16 §1): Run/Stop, a preview link per answering port, its log --
  async loadRun() {
    if (this.s.status === "discarded") return void (this.runEl.hidden = true);
    let r;
    try {
      r = await api(`/sessions/${encodeURIComponent(this.sid)}/run`);
    } catch {
      return;
    }
    this.renderRun(r);
  }

  renderRun(r) {
    const key = JSON.stringify([r.configured, r.running, r.pid, r.urls, r.log_tail]);
    if (key === this.runKey) return;
    this.runKey = key;
    this.runEl.hidden = !r.configured && !r.log;
    const btn = r.running
      ? h("button", { dataset: { action: "run-stop" }, title: "End the run script (its whole process group)", onclick: () => this.runAct("run/stop", "run script stopped") }, "Stop run")
      : h("button", { dataset: { action: "run" }, title: "Start the repo's run script in this worktree, on the session's ports", onclick: () => this.runAct("run", "run script started") }, "Run");
    const links = (r.urls || []).map((u) => h("a.preview", { href: u, target: "_blank", rel: "noopener" }, u.replace("http://", "")));
    const state = r.running ? (links.length ? "running" : "running, not answering yet") : r.log ? "stopped" : "";
    // The log keeps the open/closed state the user gave it across refreshes.
    const log = r.log ? h("details.run-log", { open: this.runLogOpen ?? (!r.running && !!r.log_tail) }, h("summary", null, "run log"), h("pre", null, r.log_tail || "(empty)")) : "";
    if (log) log.addEventListener("toggle", () => (this.runLogOpen = log.open));
    this.runEl.replaceChildren(btn, h("span.run-state", null, state), ...links, log);
  }

  async runAct(path, label) {
    for (const b of this.runEl.querySelectorAll("button")) b.disabled = true;
    const data = await act(this.sid, path, {}, null);
    if (data && data.session) {
      toast(label);
      this.renderRun(data);
    } else this.runKey = null;
    this.loadRun();
  }

  // -- actions --------------------------------------------------------------------------
  async stop() {
    const ok = await confirmDialog({ title: "Stop this session?", body: `The agent's current turn in “${this.s.title}” is interrupted. Its changes so far stay in the worktree.`, ok: "Stop", danger: true });
    if (ok) await act(this.sid, "stop", {}, "stopping…");
  }

  async check() {
    this.btn.check.disabled = true;
    const data = await act(this.sid, "check", {}, "check started");
    this.btn.check.disabled = false;
    if (data && typeof data.ok === "boolean") {
      extraOf(this.sid).check = data;
      toast(data.ok ? "check passed" : "check failed", data.ok ? "" : "err");
      this.syncMeta();
    }
  }

  async rename() {
    const input = h("input", { name: "title", value: this.s.title || "", maxlength: "200", required: "" });
    const values = await confirmDialog({
      title: "Rename the session",
      body: "The new title shows in the sidebar and in `pa ls`. The branch keeps its name.",
      ok: "Rename",
      extra: h("label", null, "Title", input),
    });
    const title = values && values.title.trim();
    if (title && title !== this.s.title) await act(this.sid, "rename", { title }, "renamed");
  }

  async rollback() {
    const n = this.s.turns || 1;
    const sel = h("select", { name: "turn" }, ...Array.from({ length: n }, (_, i) => h("option", { value: String(i + 1) }, `end of turn ${i + 1}`)));
    sel.value = String(Math.max(1, n - 1));
    const values = await confirmDialog({
      title: "Roll back the worktree?",
      body: "The worktree is reset to the checkpoint taken at the end of the chosen turn. Changes made after it are lost from the worktree.",
      ok: "Roll back",
      danger: true,
      extra: h("label", null, "Roll back to", sel),
    });
    if (values) await act(this.sid, "rollback", { turn: Number(values.turn) }, `rolled back to turn ${values.turn}`);
    this.diffStale = true;
  }

  async merge() {
    const s = this.s;
    const extra = h(
      "div",
      null,
      h("label", null, "Strategy", h("select", { name: "strategy" }, ...["merge", "squash", "rebase"].map((v) => h("option", { value: v }, v)))),
      h("label", null, "Into branch", h("input", { name: "into", value: s.base_ref && s.base_ref !== "HEAD" ? s.base_ref : "", placeholder: "the session's base" })),
      h("label", null, "Commit message", h("input", { name: "message", value: s.title || "", placeholder: "default: the session title" })),
    );
    const values = await confirmDialog({ title: "Merge this session?", body: `Merge ${s.branch || s.id} into its base branch.`, ok: "Merge", extra });
    if (!values) return;
    const body = { strategy: values.strategy };
    if (values.into.trim()) body.into = values.into.trim();
    if (values.message.trim()) body.message = values.message.trim();
    const data = await act(this.sid, "merge", body);
    if (!data) return;
    const item = (data.items || []).find((x) => x.session_id === this.sid) || data;
    if (data.ok === false || (item.status && !["merged", "up_to_date"].includes(item.status))) {
      const why = item.conflict_paths && item.conflict_paths.length ? `conflicts in ${item.conflict_paths.join(", ")}` : item.detail || item.status || "not merged";
      toast(`merge refused: ${why}`, "err");
    } else {
      toast(item.commit ? `merged as ${String(item.commit).slice(0, 10)}` : "merged");
    }
    for (const note of data.notes || []) if (note) toast(note);
  }

  async pr() {
    const extra = h("label.inline", null, h("input", { type: "checkbox", name: "draft", checked: true }), "draft pull request");
    const values = await confirmDialog({ title: "Open a pull request?", body: "The session's uncommitted work is committed onto its branch, the branch is pushed to the repo's remote and a pull request is opened for it.", ok: "Open PR", extra });
    if (!values) return;
    // Errors (gh missing or not logged in, no remote, push refused) come back as a toast from act().
    const data = await act(this.sid, "pr", { draft: !!values.draft });
    if (!data) return;
    toast(data.url ? `pull request: ${data.url}` : data.message || "pushed; no pull request was opened", data.created === false ? "err" : "");
    for (const note of data.notes || []) if (note) toast(note);
  }

  async discard() {
    const s = this.s;
    const active = ACTIVE.has(s.status);
    const ok = await confirmDialog({
      title: "Discard this session?",
      body: `${active ? "The agent is stopped, then t" : "T"}he worktree and branch of “${s.title}” are removed. Its final state is archived first (commits, uncommitted, untracked and ignored files, the staging area, empty folders and nested repos; caches such as node_modules are not kept); Restore brings it back.`,
      ok: "Discard",
      danger: true,
    });
    if (ok) await act(this.sid, "discard", {}, "discarded");
  }

  async restore() {
    await act(this.sid, "restore", {}, "restored");
  }

  toPane() {
    import("./panes.js").then((m) => {
      m.addToPanes(this.sid);
      location.hash = "#/panes";
    });
  }

  destroy() {
    clearInterval(this.timer);
    for (const off of this.offs) off();
    this.conv.destroy();
    if (this.term) this.term.close();
    if (this.shellTerm) this.shellTerm.close();
  }
}
