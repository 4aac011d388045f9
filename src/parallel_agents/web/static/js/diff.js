// The diff tab: file list + diff2html (side-by-side or unified), whole session or one turn,
// and comments on diff lines gathered into one "review comments" follow-up. A reviewer
// agent's comments (`pa review ID --agent …`, kept by the server) join the person's own
// there, marked as the agent's; each can be left out of the follow-up.
import { api, errMsg, listOf } from "./api.js";
import { on, state } from "./state.js";
import { $$, clip, h, storeGet, storeSet, toast } from "./util.js";

let d2hReady = null;
function loadDiff2Html() {
  if (!d2hReady) {
    d2hReady = new Promise((resolve, reject) => {
      document.head.append(h("link", { rel: "stylesheet", href: "/static/vendor/diff2html/diff2html.min.css" }));
      const s = h("script", { src: "/static/vendor/diff2html/diff2html-ui-slim.min.js" });
      s.onload = () => resolve(window.Diff2HtmlUI);
      s.onerror = () => reject(new Error("diff2html is missing: run scripts/build-web.sh"));
      document.head.append(s);
    });
  }
  return d2hReady;
}

const LAZY_BYTES = 1_500_000; // render bigger diffs file by file, on demand
const STATUS_MARK = { added: "A", modified: "M", deleted: "D", renamed: "R", copied: "C", typechange: "T" };

/** Split a unified patch into per-file chunks ("diff --git" boundaries). */
function splitPatch(text) {
  const out = [];
  const re = /^diff --git /gm;
  let m;
  let last = -1;
  while ((m = re.exec(text))) {
    if (last >= 0) out.push(text.slice(last, m.index));
    last = m.index;
  }
  if (last >= 0) out.push(text.slice(last));
  else if (text.trim()) out.push(text);
  return out;
}

function chunkPath(chunk) {
  const m = /^\+\+\+ b\/(.*)$/m.exec(chunk) || /^diff --git a\/.* b\/(.*)$/m.exec(chunk);
  return m ? m[1].trim() : "";
}

export class DiffView {
  /**
   * @param {HTMLElement} root
   * @param {string} sid
   * @param {{onSend: (prompt: string) => Promise<boolean>}} opts
   */
  constructor(root, sid, opts) {
    this.root = root;
    this.sid = sid;
    this.opts = opts;
    this.mode = storeGet("diffMode", "side-by-side");
    this.turn = "";
    this.comments = storeGet(`comments.${sid}`, []);
    this.agentComments = []; // the reviewer agent's unsent comments, from the server
    // A reviewer's answer is read when it ends, and then it is discarded: any session's
    // discard fetches them again (a small GET), while this view is on the page.
    const off = on("event", (ev) => {
      if (!this.root.isConnected) return off();
      if (ev.kind === "status" && ev.payload && ev.payload.to === "discarded") this.refreshAgentComments();
    });
    this.files = [];
    this.chunks = new Map();
    this.build();
  }

  build() {
    this.turnSel = h("select", { "aria-label": "Turn", onchange: () => this.load(this.turnSel.value) });
    this.modeBtns = ["side-by-side", "line-by-line"].map((m) =>
      h("button", { dataset: { mode: m }, onclick: () => this.setMode(m) }, m === "side-by-side" ? "Side by side" : "Unified"),
    );
    this.summary = h("span.muted");
    const bar = h("div.diff-bar", null, "Changes in ", this.turnSel, ...this.modeBtns, this.summary, h("span.spacer"), h("button", { onclick: () => this.load(this.turn), title: "reload the diff" }, "Reload"));
    this.fileList = h("nav.diff-files", { "aria-label": "Changed files" });
    this.out = h("div.diff-out");
    this.out.addEventListener("click", (e) => this.onClick(e));
    this.commentList = h("ol");
    this.sendBtn = h("button.primary", { onclick: () => this.sendComments() }, "Send review comments");
    this.reviewBar = h("div.review-bar", null, h("strong", null, "Review"), this.commentList, h("button", { onclick: () => this.clearComments() }, "Clear"), this.sendBtn);
    this.root.replaceChildren(bar, h("div.diff-wrap", null, this.fileList, this.out), this.reviewBar);
    this.syncMode();
    this.renderComments();
  }

  fillTurns() {
    const s = state.sessions.get(this.sid);
    const n = (s && s.turns) || 0;
    const want = ["", ...Array.from({ length: n }, (_, i) => String(i + 1))];
    const have = [...this.turnSel.options].map((o) => o.value);
    if (want.join() !== have.join()) {
      this.turnSel.replaceChildren(...want.map((v) => h("option", { value: v }, v ? `turn ${v}` : "the whole session")));
    }
    this.turnSel.value = this.turn;
  }

  setMode(m) {
    this.mode = m;
    storeSet("diffMode", m);
    this.syncMode();
    this.draw();
  }

  syncMode() {
    for (const b of this.modeBtns) b.classList.toggle("primary", b.dataset.mode === this.mode);
  }

  async load(turn = this.turn) {
    this.turn = turn || "";
    this.fillTurns();
    const q = this.turn ? `&turn=${encodeURIComponent(this.turn)}` : "";
    const base = `/sessions/${encodeURIComponent(this.sid)}/diff`;
    this.out.replaceChildren(h("div.muted", null, "loading the diff…"));
    try {
      const [meta, patch, UI] = await Promise.all([
        api(`${base}?format=json${q}`),
        api(`${base}?format=patch${q}`, { raw: true }),
        loadDiff2Html(),
        this.loadAgentComments(),
      ]);
      this.UI = UI;
      this.files = listOf(meta, "files");
      this.patch = typeof patch === "string" ? patch : "";
      this.chunks = new Map();
      for (const c of splitPatch(this.patch)) this.chunks.set(chunkPath(c), c);
      this.lazy = this.patch.length > LAZY_BYTES;
      this.shown = new Set();
      this.renderFiles(meta);
      this.draw();
    } catch (e) {
      this.out.replaceChildren(h("div.ev.error", null, `could not load the diff: ${errMsg(e)}`));
      this.fileList.replaceChildren();
      this.summary.textContent = "";
    }
  }

  renderFiles(meta) {
    let add = 0;
    let del = 0;
    const links = this.files.map((f) => {
      add += f.additions || 0;
      del += f.deletions || 0;
      const st = STATUS_MARK[f.status] || (f.status ? f.status[0].toUpperCase() : "M");
      return h(
        "a",
        { href: "#", dataset: { path: f.path }, title: f.old_path && f.old_path !== f.path ? `${f.old_path} → ${f.path}` : f.path, onclick: (e) => {
          e.preventDefault();
          this.showFile(f.path);
        } },
        h("span.st", null, st),
        h("span.path", null, f.path),
        f.binary ? h("span.muted", null, "bin") : [h("span.add", null, `+${f.additions || 0}`), h("span.del", null, `−${f.deletions || 0}`)],
      );
    });
    this.fileList.replaceChildren(...links);
    const note = meta && meta.note ? ` · ${meta.note}` : "";
    this.summary.textContent = this.files.length
      ? `${this.files.length} file${this.files.length === 1 ? "" : "s"}, +${add} −${del}${note}`
      : `no changes${note}`;
  }

  draw() {
    if (!this.UI) return;
    if (!this.patch.trim()) {
      this.out.replaceChildren(h("div.muted", null, this.turn ? "This turn changed nothing." : "This session has not changed anything yet."));
      return;
    }
    const text = this.lazy ? [...this.shown].map((p) => this.chunks.get(p) || "").join("") : this.patch;
    const target = h("div");
    this.out.replaceChildren(target);
    if (this.lazy) {
      this.out.prepend(h("div.muted", null, `This diff is large (${(this.patch.length / 1e6).toFixed(1)} MB): pick files on the left to show them.`));
      if (!text) return;
    }
    const ui = new this.UI(target, text, {
      outputFormat: this.mode,
      drawFileList: false,
      matching: "lines",
      highlight: true,
      synchronisedScroll: true,
      fileContentToggle: true,
      stickyFileHeaders: true,
      colorScheme: "auto",
    });
    ui.draw();
    ui.highlightCode();
    for (const c of this.allComments()) this.placeComment(c);
  }

  /** The reviewer agent's unsent comments, in the shape of the person's own. */
  async loadAgentComments() {
    try {
      const data = await api(`/sessions/${encodeURIComponent(this.sid)}/review-comments?unsent=true`);
      const picked = new Map(this.agentComments.map((c) => [c.id, c.picked]));
      this.agentComments = listOf(data, "comments").map((c) => ({
        id: c.id, path: c.path, line: c.line, side: c.side, code: c.code, text: c.body,
        author: c.author, agent: true, picked: picked.get(c.id) ?? true,
      }));
    } catch {
      this.agentComments = []; // an older server: no reviewer comments to show
    }
    this.renderComments();
  }

  async refreshAgentComments() {
    const before = this.agentComments.map((c) => c.id).join();
    await this.loadAgentComments();
    if (this.agentComments.map((c) => c.id).join() !== before) this.draw();
  }

  allComments() {
    return [...this.comments, ...this.agentComments];
  }

  /** What "Send" sends: the person's comments and the reviewer's that stay picked. */
  toSend() {
    return [...this.comments, ...this.agentComments.filter((c) => c.picked)];
  }

  wrapperOf(path) {
    return $$(".d2h-file-wrapper", this.out).find((w) => this.pathOf(w) === path);
  }

  pathOf(wrapper) {
    const name = wrapper.querySelector(".d2h-file-name");
    const t = name ? name.textContent.trim() : "";
    const arrow = t.lastIndexOf("→");
    return arrow >= 0 ? t.slice(arrow + 1).trim() : t;
  }

  showFile(path) {
    if (this.lazy && !this.shown.has(path)) {
      this.shown.add(path);
      this.draw();
    }
    const w = this.wrapperOf(path);
    if (w) w.scrollIntoView({ block: "start" });
    for (const a of this.fileList.children) a.classList.toggle("active", a.dataset.path === path);
  }

  // -- comments ------------------------------------------------------------------------
  lineAt(cell) {
    const wrapper = cell.closest(".d2h-file-wrapper");
    if (!wrapper) return null;
    const path = this.pathOf(wrapper);
    const row = cell.closest("tr");
    let line = null;
    let side = "new";
    if (cell.classList.contains("d2h-code-side-linenumber")) {
      line = parseInt(cell.textContent.trim(), 10);
      const sides = [...wrapper.querySelectorAll(".d2h-file-side-diff")];
      side = sides.indexOf(cell.closest(".d2h-file-side-diff")) === 0 ? "old" : "new";
    } else {
      const n2 = cell.querySelector(".line-num2");
      const n1 = cell.querySelector(".line-num1");
      if (n2 && n2.textContent.trim()) line = parseInt(n2.textContent.trim(), 10);
      else if (n1 && n1.textContent.trim()) {
        line = parseInt(n1.textContent.trim(), 10);
        side = "old";
      }
    }
    if (!line || Number.isNaN(line)) return null;
    const ctn = row.querySelector(".d2h-code-line-ctn");
    return { path, line, side, code: ctn ? ctn.textContent : "", row, wrapper };
  }

  onClick(e) {
    const cell = e.target.closest("td.d2h-code-linenumber, td.d2h-code-side-linenumber");
    if (!cell) return;
    const at = this.lineAt(cell);
    if (!at) return;
    this.openEditor(at);
  }

  /** Insert a full-width row after `row`; in side-by-side, a spacer row on the other side too. */
  insertRows(at, content) {
    const rows = [];
    const make = (el) => {
      const tr = h("tr.comment-row", null, h("td", { colspan: "2" }, el));
      return tr;
    };
    const mine = make(content);
    at.row.after(mine);
    rows.push(mine);
    const sides = [...at.wrapper.querySelectorAll(".d2h-file-side-diff")];
    if (sides.length === 2) {
      const tbody = at.row.parentElement;
      const idx = [...tbody.children].indexOf(at.row);
      const other = sides.find((s) => !s.contains(at.row));
      const otherRow = other && other.querySelector("tbody").children[idx];
      if (otherRow) {
        // Same content, invisible and inert: keeps both sides' rows aligned.
        const spacer = make(h("div", { style: "visibility:hidden", inert: "", "aria-hidden": "true" }, content.cloneNode(true)));
        otherRow.after(spacer);
        rows.push(spacer);
      }
    }
    return rows;
  }

  openEditor(at) {
    const ta = h("textarea", { rows: "3", placeholder: `Comment on ${at.path}:${at.line}` });
    let rows = [];
    const close = () => rows.forEach((r) => r.remove());
    const save = () => {
      const text = ta.value.trim();
      close();
      if (!text) return;
      const c = { path: at.path, line: at.line, side: at.side, code: clip(at.code.trim(), 200), text, turn: this.turn };
      this.comments.push(c);
      this.saveComments();
      this.placeComment(c);
    };
    const box = h(
      "div.comment-box",
      null,
      ta,
      h("div.row", null, h("button", { onclick: close }, "Cancel"), h("button.primary", { onclick: save }, "Add comment")),
    );
    ta.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        save();
      } else if (e.key === "Escape") {
        e.stopPropagation();
        close();
      }
    });
    rows = this.insertRows(at, box);
    ta.focus();
  }

  placeComment(c) {
    const w = this.wrapperOf(c.path);
    if (!w) return;
    const cells = [...w.querySelectorAll("td.d2h-code-linenumber, td.d2h-code-side-linenumber")];
    for (const cell of cells) {
      const at = this.lineAt(cell);
      if (at && at.line === c.line && at.side === c.side) {
        // Below the comments already on this line, so they read in the order they were made.
        let row = at.row;
        while (row.nextElementSibling && row.nextElementSibling.classList.contains("comment-row")) row = row.nextElementSibling;
        const who = c.agent ? h("div.comment-by", null, c.author || "reviewer agent") : null;
        this.insertRows({ ...at, row }, h(c.agent ? "div.comment-saved.comment-agent" : "div.comment-saved", null, who, c.text));
        return;
      }
    }
  }

  saveComments() {
    storeSet(`comments.${this.sid}`, this.comments);
    this.renderComments();
  }

  renderComments() {
    const agentItem = (c) => {
      const box = h("input", { type: "checkbox", "aria-label": `send ${c.path}:${c.line}`, onchange: () => {
        c.picked = box.checked;
        this.renderComments();
      } });
      box.checked = c.picked;
      return h("li.agent", null, box, " ", h("span.badge", { title: c.author || "" }, "reviewer"), " ", h("code", null, `${c.path}:${c.line}`), " ", clip(c.text, 120));
    };
    this.commentList.replaceChildren(
      ...this.comments.map((c) => h("li", null, h("code", null, `${c.path}:${c.line}`), " ", clip(c.text, 120))),
      ...this.agentComments.map(agentItem),
    );
    const n = this.toSend().length;
    this.reviewBar.hidden = this.allComments().length === 0;
    this.sendBtn.disabled = n === 0;
    this.sendBtn.textContent = `Send ${n} review comment${n === 1 ? "" : "s"}`;
  }

  clearComments() {
    this.comments = [];
    this.saveComments();
    for (const r of $$("tr.comment-row", this.out)) r.remove();
    for (const c of this.agentComments) this.placeComment(c); // the reviewer's stay on the server
  }

  // The same text as the server's (sessions/reviewer.py review_prompt, `pa review --send`).
  reviewPrompt(comments = this.comments) {
    const lines = ["Review comments on your changes:", ""];
    comments.forEach((c, i) => {
      lines.push(`${i + 1}. ${c.path} line ${c.line}${c.side === "old" ? " (old version)" : ""}:`);
      if (c.code) lines.push(`   > ${c.code}`);
      for (const l of c.text.split("\n")) lines.push(`   ${l}`);
      lines.push("");
    });
    lines.push("Please address each comment.");
    return lines.join("\n");
  }

  async sendComments() {
    const sending = this.toSend();
    if (!sending.length) return;
    this.sendBtn.disabled = true;
    try {
      if (await this.opts.onSend(this.reviewPrompt(sending))) {
        this.comments = [];
        const ids = sending.filter((c) => c.agent).map((c) => c.id);
        if (ids.length) {
          await api(`/sessions/${encodeURIComponent(this.sid)}/review-comments/sent`, { method: "POST", body: { ids } })
            .catch((e) => toast(`could not mark the reviewer's comments sent: ${errMsg(e)}`));
          this.agentComments = this.agentComments.filter((c) => !ids.includes(c.id));
        }
        this.saveComments();
        for (const r of $$("tr.comment-row", this.out)) r.remove();
        for (const c of this.agentComments) this.placeComment(c);
        toast("review comments sent");
      }
    } finally {
      this.sendBtn.disabled = this.toSend().length === 0;
    }
  }
}
