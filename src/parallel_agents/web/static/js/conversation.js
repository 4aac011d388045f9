// One session's conversation, rendered incrementally: each event appends a node, nothing re-renders.
import { api, errMsg, listOf } from "./api.js";
import { loadMarkdown, renderMarkdown } from "./markdown.js";
import { on, state } from "./state.js";
import { argSummary, clip, cost, frameBatcher, h, jsonText } from "./util.js";

const PAGE = 5000;
const TAIL = 300; // events drawn on open (an output event: its lines); older ones on request

/** Lines an event draws: an output event holds a run of lines (issue 14 §5). */
function linesOf(ev) {
  const k = ev.kind;
  if (k !== "output" && k !== "raw") return 1;
  const text = String((ev.payload || {}).text ?? "");
  let n = 1;
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) n++;
  return n;
}

export class ConversationView {
  /**
   * @param {HTMLElement} root  scroll container
   * @param {string} sid
   * @param {{compact?: boolean, onFile?: (path: string, turn: number) => void}} opts
   */
  constructor(root, sid, opts = {}) {
    this.root = root;
    this.sid = sid;
    this.opts = opts;
    this.lastSeq = 0;
    this.loading = true;
    this.held = [];
    this.turns = new Map(); // n -> {el, body, promptEl, headEl, lastOut, openTools: []}
    this.prompts = new Map();
    this.stick = true;
    this.queue = [];
    this.flushSoon = frameBatcher(() => this.flush());
    this.root.classList.add("convo");
    this.root.addEventListener("scroll", () => {
      const r = this.root;
      this.stick = r.scrollHeight - r.scrollTop - r.clientHeight < 60;
    });
    this.off = on("event", (ev) => {
      if (ev.session_id === this.sid) this.onEvent(ev);
    });
  }

  destroy() {
    this.off();
    this.dead = true;
  }

  async load() {
    this.root.replaceChildren(h("div.loading", null, "loading…"));
    this.all = [];
    try {
      const page = (after) => api(`/sessions/${encodeURIComponent(this.sid)}/events?after_seq=${after}&limit=${PAGE}`);
      const [detail, , firstPage] = await Promise.all([
        api(`/sessions/${encodeURIComponent(this.sid)}`).catch(() => null),
        loadMarkdown(),
        page(0),
      ]);
      if (this.dead) return;
      if (detail && Array.isArray(detail.turns)) {
        for (const t of detail.turns) this.prompts.set(t.n, t);
      }
      let data = firstPage;
      for (;;) {
        const evs = listOf(data, "events");
        for (const ev of evs) this.all.push(ev);
        // A page also ends at about 8 MB: output events of many lines fill it sooner.
        const more = data && typeof data.more === "boolean" ? data.more : evs.length >= PAGE;
        if (!more || !evs.length) break;
        data = await page(this.all[this.all.length - 1].seq);
        if (this.dead) return;
      }
      this.draw(this.tailStart());
    } catch (e) {
      this.root.replaceChildren(h("div.ev.error", null, `could not load the conversation: ${errMsg(e)}`));
    }
    this.loading = false;
    const held = this.held;
    this.held = [];
    for (const ev of held) this.take(ev);
    this.scrollEnd(true);
  }

  /** Where the tail drawn on open starts: the newest events that hold TAIL lines. */
  tailStart() {
    let i = this.all.length;
    for (let rows = 0; i > 0 && rows < TAIL; ) rows += linesOf(this.all[--i]);
    return i;
  }

  /** Render this.all from index `start` (older events wait behind a button). */
  draw(start) {
    this.turns = new Map();
    this.lastSeq = 0;
    const frag = document.createDocumentFragment();
    this.mount = frag;
    if (start > 0) {
      frag.append(
        h("button.earlier", { onclick: () => {
          const fromBottom = this.root.scrollHeight - this.root.scrollTop;
          this.draw(0);
          this.root.scrollTop = this.root.scrollHeight - fromBottom;
        } }, `Show ${start} earlier event${start === 1 ? "" : "s"}`),
      );
    }
    for (let i = start; i < this.all.length; i++) this.append(this.all[i]);
    const firstTurn = start < this.all.length ? this.all[start].turn || 1 : 1;
    for (const [n, t] of this.prompts) if (n >= firstTurn) this.turn(n, t);
    this.mount = null;
    this.root.replaceChildren(frag);
  }

  /** A live event: remember it and draw it. */
  take(ev) {
    if (ev.seq <= this.lastSeq) return;
    this.all.push(ev);
    this.append(ev);
  }

  onEvent(ev) {
    if (this.loading) {
      this.held.push(ev);
      return;
    }
    // Live events are drawn once per frame, however many arrived: one layout, one scroll.
    this.queue.push(ev);
    this.flushSoon();
  }

  flush() {
    if (this.dead) return;
    const evs = this.queue;
    this.queue = [];
    const stick = this.stick;
    for (const ev of evs) this.take(ev);
    if (stick) this.scrollEnd(true);
    if (typeof window.__paOnEvent === "function") for (const ev of evs) window.__paOnEvent(ev);
  }

  scrollEnd(force = false) {
    if (!force && !this.stick) return;
    const tail = this.tail;
    if (tail && tail.follow && tail.pre.isConnected) tail.pre.scrollTop = tail.pre.scrollHeight;
    this.root.scrollTop = this.root.scrollHeight;
  }

  /** Note a prompt we just sent, so its turn shows it before the API says so. */
  expectTurn(n, prompt) {
    this.prompts.set(n, { n, prompt });
    this.turn(n, { n, prompt });
    this.scrollEnd(true);
  }

  turn(n, info) {
    let t = this.turns.get(n);
    if (!t) {
      const headEl = h("div.turn-head", null, h("span.n", null, `Turn ${n}`), h("span.tmeta"));
      const promptEl = h("div.prompt");
      promptEl.hidden = true;
      const body = h("div.turn-body");
      const el = h("div.turn", { dataset: { turn: String(n) } }, headEl, promptEl, body);
      t = { el, body, headEl, promptEl, lastOut: null, openTools: [] };
      this.turns.set(n, t);
      // Keep turns in order even if a later one arrived first.
      const parent = this.mount || this.root;
      if (!this.mount && parent.querySelector(".loading")) parent.replaceChildren();
      const after = [...this.turns.keys()].filter((k) => k > n).sort((a, b) => a - b)[0];
      const before = after !== undefined ? this.turns.get(after).el : null;
      if (before && before.parentNode === parent) parent.insertBefore(el, before);
      else parent.append(el);
      if (!this.prompts.has(n) && !this.loading) this.fetchPrompt(n);
    }
    const p = info || this.prompts.get(n);
    if (p && p.prompt !== undefined && t.promptEl.hidden) {
      t.promptEl.textContent = p.prompt;
      t.promptEl.hidden = !String(p.prompt).trim();
    }
    return t;
  }

  async fetchPrompt(n) {
    this.prompts.set(n, null);
    try {
      const d = await api(`/sessions/${encodeURIComponent(this.sid)}`);
      for (const t of d.turns || []) {
        if (!this.prompts.get(t.n)) this.prompts.set(t.n, t);
        if (this.turns.has(t.n)) this.turn(t.n, t);
      }
    } catch {
      /* prompt stays hidden */
    }
  }

  /** Agents may report absolute paths inside the worktree; the diff knows repo paths. */
  relPath(path) {
    const s = state.sessions.get(this.sid);
    const wt = s && s.worktree ? String(s.worktree).replace(/\/+$/, "") + "/" : null;
    return wt && typeof path === "string" && path.startsWith(wt) ? path.slice(wt.length) : path;
  }

  /** Drop the worktree prefix from text that mentions paths inside it. */
  short(text) {
    const s = state.sessions.get(this.sid);
    return s && s.worktree ? String(text).split(String(s.worktree).replace(/\/+$/, "") + "/").join("") : text;
  }

  append(ev) {
    if (ev.seq <= this.lastSeq) return;
    this.lastSeq = ev.seq;
    const t = this.turn(ev.turn || 1);
    const node = this.render(ev, t);
    if (node) {
      node.dataset.seq = String(ev.seq);
      t.body.append(node);
    }
  }

  render(ev, t) {
    const p = ev.payload || {};
    const k = ev.kind;
    if (k !== "output" && k !== "raw") t.lastOut = null;
    switch (k) {
      case "message": {
        const md = h("div.md");
        renderMarkdown(md, p.text);
        t.lastMsg = String(p.text ?? "").trim();
        return h("div.ev.message", null, md);
      }
      case "result": {
        // Agents often end with the same text they just said: do not show it twice.
        if (p.ok !== false && p.text && String(p.text).trim() === t.lastMsg) {
          return h("div.ev.done", null, "✓ turn finished");
        }
        const md = h("div.md");
        renderMarkdown(md, p.text || (p.ok === false ? "_the turn failed_" : "_done_"));
        const el = h("div.ev.result", null, md);
        if (p.ok === false) el.classList.add("fail");
        return el;
      }
      case "output":
      case "raw": {
        // One event may hold a run of lines ("\n" between them): count them all.
        const text = String(p.text ?? "");
        const lines = linesOf(ev);
        if (t.lastOut && t.lastOut.kind === k && t.lastOut.lines < 5000) {
          t.lastOut.pre.append("\n" + text);
          t.lastOut.lines += lines;
          this.tail = t.lastOut;
          return null;
        }
        const pre = h(`pre.out${k === "raw" ? ".raw" : ""}`, null, text);
        // The block scrolls on its own (max-height): it follows its newest line, like the
        // conversation, until the person scrolls it up.
        const out = { kind: k, pre, lines, follow: true };
        pre.addEventListener("scroll", () => (out.follow = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 24), { passive: true });
        t.lastOut = this.tail = out;
        return h(`div.ev.${k}`, null, pre);
      }
      case "tool_call": {
        const body = h("div.body", null, h("pre", null, jsonText(p.input)));
        const d = h(
          "details.tool",
          null,
          h("summary", null, "→ ", h("span.name", null, p.name || "tool"), " ", h("span.arg", null, this.short(argSummary(p.input)))),
          body,
        );
        t.openTools.push({ id: p.id, body });
        return h("div.ev.tool_call", null, d);
      }
      case "tool_result": {
        const out = h("pre", null, clip(jsonText(p.output ?? ""), 20000));
        // Pair with its call: by id when the agent gives one, else the oldest open call.
        let i = p.id ? t.openTools.findIndex((x) => x.id === p.id) : -1;
        if (i < 0) i = t.openTools.length ? 0 : -1;
        const target = i >= 0 ? t.openTools.splice(i, 1)[0].body : null;
        if (target) {
          const label = h("div.muted", null, p.ok === false ? "← error" : "← result");
          if (p.ok === false) label.classList.add("exit-bad");
          target.append(label, out);
          if (p.ok === false) target.parentElement.querySelector("summary").classList.add("exit-bad");
          return null;
        }
        return h("div.ev.tool_result", null, h("details.tool", null, h("summary", null, p.ok === false ? "← error" : "← result"), h("div.body", null, out)));
      }
      case "command": {
        const code = p.exit_code;
        const status = code === undefined || code === null ? "" : code === 0 ? "exit 0" : `exit ${code}`;
        return h(
          "div.ev.command",
          null,
          h(
            "details.cmd",
            null,
            h("summary", null, "$ ", h("span.name", null, clip(p.command, 200)), " ", h(`span.${code ? "exit-bad" : "exit-ok"}`, null, status)),
            h("div.body", null, h("pre", null, clip(p.output ?? "", 20000))),
          ),
        );
      }
      case "file_change": {
        const path = this.relPath(p.path);
        const a = h("a", { href: `#/s/${this.sid}/diff`, title: "show in the diff" }, path || "?");
        a.addEventListener("click", (e) => {
          if (this.opts.onFile) {
            e.preventDefault();
            this.opts.onFile(path, ev.turn);
          }
        });
        return h("div.ev.file", null, "✎ ", h("span.muted", null, `${p.kind || "changed"} `), a);
      }
      case "usage": {
        if (this.opts.compact) return null;
        const c = cost(p.cost_usd);
        t.headEl.querySelector(".tmeta").textContent =
          `${p.input_tokens ?? 0} in · ${p.output_tokens ?? 0} out` + (c ? ` · ${c}` : "");
        return null;
      }
      case "status": {
        // Getting going (queued → starting → running) is noise; endings and errors are not.
        if (!p.error && ["queued", "starting", "running"].includes(p.to)) return null;
        if (p.merged_into) {
          return h("div.ev.status.merged", null, `✓ merged into ${p.merged_into}${p.commit ? ` as ${String(p.commit).slice(0, 10)}` : ""}`);
        }
        if (p.rollback_to_turn !== undefined) return this.render({ ...ev, kind: "rollback" }, t);
        if (!p.to) {
          // An agent's own status line (e.g. its init message): say which model, if any.
          return p.model ? h("div.ev.status", null, `${p.state || "started"} · model ${p.model}`) : null;
        }
        const extra = p.error ? `: ${p.error}` : "";
        return h("div.ev.status", null, `${p.from ?? "?"} → ${p.to ?? "?"}${clip(extra, 300)}`);
      }
      case "error":
        return h("div.ev.error", null, String(p.message ?? jsonText(p)));
      case "attention":
        return null;
      case "check": {
        const ok = p.ok === true;
        return h(
          "div.ev.check",
          null,
          h(
            "details.check",
            null,
            h(
              "summary",
              null,
              h(`span.${ok ? "exit-ok" : "exit-bad"}`, null, ok ? "✓ check passed" : p.timed_out ? "✗ check timed out" : "✗ check failed"),
              " ",
              h("span.arg", null, `${p.command || ""}${typeof p.duration_s === "number" ? ` · ${p.duration_s.toFixed(1)} s` : ""}`),
            ),
            h("div.body", null, h("pre", null, clip(p.output_tail ?? p.output ?? jsonText(p), 20000))),
          ),
        );
      }
      case "rollback": {
        // The worktree went back to an earlier turn: the next turn starts from there.
        const undo = p.undo_ref ? ` (the state before is kept at ${p.undo_ref})` : "";
        return h("div.ev.status.rollback", null, `↺ rolled back to turn ${p.rollback_to_turn ?? "?"}${undo}`);
      }
      case "renamed":
        return h("div.ev.status", null, `renamed: “${p.from ?? ""}” → “${p.to ?? ""}”`);
      case "conflict": {
        const other = p.with ? state.sessions.get(p.with) : null;
        const who = p.with ? h("a", { href: `#/s/${p.with}` }, other ? other.title : p.with) : "another session";
        return h("div.ev.conflict", null, "⚠ would conflict with ", who, " on ", (p.paths || []).join(", ") || "?");
      }
      default:
        return h("div.ev.raw", null, h("pre.out.raw", null, `${k}: ${jsonText(p)}`));
    }
  }
}

export function sessionTitle(id) {
  const s = state.sessions.get(id);
  return s ? s.title : id;
}
