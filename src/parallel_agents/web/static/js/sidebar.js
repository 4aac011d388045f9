// The session list: grouped by repo, filtered and searched, patched in place on every change.
import { ACTIVE, ENDED, LIVE, extraOf, on, refreshFiles, state } from "./state.js";
import { $, cost, duration, frameBatcher, h, storeGet, storeSet } from "./util.js";

const STATUS_LABEL = { needs_input: "needs input" };

// Virtualised (issue 14 §6): with 1,000 sessions only the rows in (or near) the viewport
// are in the DOM; every row has the same height, so a group's hidden rows are its body's
// padding, and the order, filters and keyboard work on the model, not on the DOM.
const OVERSCAN = 8; // rows drawn above and below the viewport

export class Sidebar {
  constructor(listEl, { onOpen }) {
    this.list = listEl;
    this.onOpen = onOpen;
    this.items = new Map(); // id -> {el, refs, last: {}}: the rows in the DOM only
    this.groups = new Map(); // repo -> {el, head, body, count, drawn: [ids]}
    this.layout = []; // [{repo, ids}] of the sessions the filters show, in display order
    this.order = []; // the same ids, flat
    this.shown = new Set(); // ids the filters show
    this.known = new Set(); // ids seen (a new one may bring a new agent or repo)
    this.dirty = new Set();
    this.cursor = null;
    this.rowH = 0; // measured from the first row drawn
    this.headH = 0;
    this.filesOn = false; // changed-file counts are asked for drawn rows only, after boot
    this.counts = {}; // status -> sessions, kept as rows change (the footer), not recounted
    this.counted = new Map(); // id -> the status it is counted under
    state.drawn = (id) => this.items.has(id);
    this.filter = storeGet("filter", { q: "", status: "", repo: "", agent: "", inbox: false });
    this.flush = frameBatcher(() => this.apply());
    this.redraw = frameBatcher(() => this.render());
    this.bindFilters();
    on("session", (s) => this.mark(s.id));
    on("inbox", () => this.filter.inbox && this.refilter()); // issue 17: its set changed
    on("repos", () => this.fillSelect("#f-repo", state.repos.map((r) => r.name), "all repos"));
    this.list.addEventListener("scroll", () => this.redraw(), { passive: true });
    if (window.ResizeObserver) new ResizeObserver(() => this.redraw()).observe(this.list);
    this.list.addEventListener("click", (e) => {
      const it = e.target.closest(".item");
      if (it) this.open(it.dataset.id);
    });
    this.list.addEventListener("dragstart", (e) => {
      const it = e.target.closest(".item");
      if (!it) return;
      e.dataTransfer.setData("text/pa-session", it.dataset.id);
      e.dataTransfer.effectAllowed = "copyMove";
    });
    setInterval(() => this.tick(), 1000);
  }

  bindFilters() {
    const f = this.filter;
    const search = $("#f-search");
    search.value = f.q;
    search.addEventListener("input", () => {
      f.q = search.value;
      this.refilter();
    });
    // issue 17: the Inbox button shows only the routine runs nobody has looked at yet.
    const inbox = $("#f-inbox");
    const pressed = () => inbox.setAttribute("aria-pressed", String(!!f.inbox));
    pressed();
    inbox.addEventListener("click", () => {
      f.inbox = !f.inbox;
      pressed();
      this.refilter();
    });
    for (const [sel, key] of [["#f-status", "status"], ["#f-repo", "repo"], ["#f-agent", "agent"]]) {
      const el = $(sel);
      el.value = f[key];
      el.addEventListener("change", () => {
        f[key] = el.value;
        this.refilter();
      });
    }
  }

  fillSelect(sel, values, allLabel) {
    const el = $(sel);
    const cur = el.value || this.filter[sel === "#f-repo" ? "repo" : "agent"];
    const have = new Set([...el.options].map((o) => o.value));
    const want = new Set(["", ...values]);
    if (have.size === want.size && [...want].every((v) => have.has(v))) return;
    el.replaceChildren(h("option", { value: "" }, allLabel), ...[...new Set(values)].sort().map((v) => h("option", { value: v }, v)));
    el.value = want.has(cur) ? cur : "";
  }

  refilter() {
    storeSet("filter", this.filter);
    for (const id of state.sessions.keys()) this.dirty.add(id);
    this.flush();
  }

  mark(id) {
    this.dirty.add(id);
    this.flush();
  }

  /** Render every session now (first paint), without waiting for a frame. */
  renderAll() {
    for (const id of state.sessions.keys()) this.dirty.add(id);
    this.apply();
    this.foot();
  }

  matches(s) {
    const f = this.filter;
    if (f.inbox) {
      if (!(state.inbox && state.inbox.has(s.id))) return false; // its own list: any status
    } else if (f.status === "*") {
      /* everything */
    } else if (f.status) {
      if (f.status === "running" ? !(s.status === "running" || s.status === "starting") : s.status !== f.status) return false;
    } else if (!LIVE.has(s.status)) {
      return false; // "live": the same sessions as `pa ls` (models.Status.live)
    }
    if (f.repo && s.repo_name !== f.repo) return false;
    if (f.agent && s.agent !== f.agent) return false;
    if (f.q) {
      const q = f.q.toLowerCase();
      const hay = `${s.title} ${s.id} ${s.branch || ""} ${s.agent} ${s.repo_name} ${s.model || ""}`.toLowerCase();
      if (!q.split(/\s+/).every((w) => hay.includes(w))) return false;
    }
    return true;
  }

  apply() {
    let moved = false; // a row appeared or went: the layout is rebuilt
    let newAgents = false;
    let recount = false;
    for (const id of this.dirty) {
      const s = state.sessions.get(id);
      if (this.count(id, s)) recount = true;
      const show = !!s && this.matches(s);
      if (show !== this.shown.has(id)) {
        moved = true;
        if (show) this.shown.add(id);
        else this.shown.delete(id);
      }
      if (!s) continue;
      if (!this.known.has(id)) {
        this.known.add(id);
        newAgents = true;
      }
      const it = this.items.get(id);
      if (it) this.patch(it, s);
    }
    this.dirty.clear();
    if (newAgents) {
      const agents = new Set();
      for (const s of state.sessions.values()) agents.add(s.agent);
      this.fillSelect("#f-agent", [...agents], "all agents");
      const repos = new Set(state.repos.map((r) => r.name));
      for (const s of state.sessions.values()) repos.add(s.repo_name);
      this.fillSelect("#f-repo", [...repos], "all repos");
    }
    if (moved) {
      this.relayout();
      this.render();
    }
    if (recount) this.foot();
  }

  /** Keep the footer's counts by status; true when they changed. */
  count(id, s) {
    const was = this.counted.get(id);
    const now = s ? s.status : undefined;
    if (was === now) return false;
    if (was !== undefined) this.counts[was]--;
    if (now === undefined) this.counted.delete(id);
    else {
      this.counts[now] = (this.counts[now] || 0) + 1;
      this.counted.set(id, now);
    }
    return true;
  }

  /** The shown sessions grouped by repo (by name), newest first inside a repo; the
   * sessions of one plan, best-of-N or map group (issue 15) under their own heading,
   * right after their repo's. */
  relayout() {
    const byRepo = new Map();
    for (const id of this.shown) {
      const s = state.sessions.get(id);
      if (!s) continue;
      const repo = groupKey(s);
      if (!byRepo.has(repo)) byRepo.set(repo, []);
      byRepo.get(repo).push(s);
    }
    const newest = (a, b) => (b.created_at || 0) - (a.created_at || 0) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
    this.kin = new Map(); // issue 18: id -> {level, kids} of leads and their children
    this.layout = [...byRepo.keys()].sort().map((repo) => ({ repo, ids: this.family(byRepo.get(repo).sort(newest)) }));
    this.order = this.layout.flatMap((g) => g.ids);
    const groups = this.layout.map((g) => this.group(g.repo));
    const els = groups.map((g) => g.el);
    const cur = [...this.list.children];
    if (cur.length !== els.length || cur.some((el, i) => el !== els[i])) this.list.replaceChildren(...els);
    for (let i = 0; i < groups.length; i++) groups[i].count.textContent = String(this.layout[i].ids.length);
  }

  /** Issue 18: the ids of one group in order, each session's children (``parent``) right
   * under it, oldest first, and its level in ``this.kin``; a child whose parent is not in
   * the group stays where it is (still marked as a child). */
  family(list) {
    const here = new Set(list.map((s) => s.id));
    const kids = new Map();
    for (const s of list) {
      if (s.parent && here.has(s.parent)) {
        if (!kids.has(s.parent)) kids.set(s.parent, []);
        kids.get(s.parent).unshift(s);
      }
    }
    const out = [];
    const walk = (s, level) => {
      const mine = kids.get(s.id) || [];
      if (level || mine.length) this.kin.set(s.id, { level, kids: mine.length });
      out.push(s.id);
      for (const k of mine) walk(k, level + 1);
    };
    for (const s of list) if (!(s.parent && here.has(s.parent))) walk(s, s.parent ? 1 : 0);
    return out;
  }

  /** A row's place in its family: indented under its lead, or a lead's count of children. */
  kinOf(it, id) {
    const k = (this.kin && this.kin.get(id)) || { level: 0, kids: 0 };
    const key = `${k.level}/${k.kids}`;
    if (it.last.kin === key) return;
    it.last.kin = key;
    it.el.classList.toggle("child", k.level > 0);
    it.el.classList.toggle("lead", k.kids > 0);
    it.el.style.paddingLeft = k.level ? `${14 + 14 * Math.min(k.level, 4)}px` : "";
    it.refs.kin.textContent = k.kids ? `lead · ${k.kids} child${k.kids === 1 ? "" : "ren"}` : "";
  }

  /** Draw the rows in (and near) the viewport, and pad for the rest. */
  render() {
    const rowH = this.rowH || 50;
    const headH = this.headH || 20;
    const view = this.list.clientHeight || 800;
    // The list may just have shrunk (a filter): the browser clamps scrollTop only after
    // this draw, so clamp it here or the window would lie below the last row.
    const total = this.layout.reduce((n, g) => n + headH + g.ids.length * rowH, 0);
    const scroll = Math.min(this.list.scrollTop, Math.max(0, total - view));
    const top = scroll - OVERSCAN * rowH;
    const bottom = scroll + view + OVERSCAN * rowH;
    const keep = new Set();
    let y = 0;
    for (const { repo, ids } of this.layout) {
      const g = this.group(repo);
      const y0 = y + headH; // the group's first row
      y = y0 + ids.length * rowH;
      const first = Math.max(0, Math.floor((top - y0) / rowH));
      const last = Math.min(ids.length - 1, Math.floor((bottom - y0) / rowH));
      const want = first <= last ? ids.slice(first, last + 1) : [];
      for (const id of want) {
        keep.add(id);
        this.kinOf(this.row(id), id);
      }
      g.body.style.paddingTop = `${(want.length ? first : 0) * rowH}px`;
      g.body.style.paddingBottom = `${(ids.length - (want.length ? last + 1 : 0)) * rowH}px`;
      if (want.length !== g.drawn.length || want.some((id, i) => id !== g.drawn[i])) {
        g.body.replaceChildren(...want.map((id) => this.row(id).el));
        g.drawn = want;
      }
    }
    for (const [id, it] of this.items) {
      if (!keep.has(id)) {
        it.el.remove();
        this.items.delete(id);
      }
    }
    for (const g of this.groups.values()) {
      if (!this.layout.some((l) => l.repo === g.repo)) g.drawn = [];
    }
    this.measure();
  }

  /** Row heights from the DOM once (one layout read); draw again when they differ. */
  measure() {
    if (this.rowH && this.headH) return;
    const it = this.items.values().next().value;
    const g = this.layout.length ? this.groups.get(this.layout[0].repo) : null;
    if (!it || !g) return;
    const rowH = it.el.offsetHeight;
    const headH = g.head.offsetHeight;
    if (!rowH || !headH) return; // not laid out (hidden): keep the estimates
    this.rowH = rowH;
    this.headH = headH;
    this.render();
  }

  row(id) {
    let it = this.items.get(id);
    if (!it) {
      const s = state.sessions.get(id);
      it = this.create(s);
      this.patch(it, s);
      if (this.filesOn) this.countFilesOf(s);
    }
    return it;
  }

  /** Changed-file counts from now on, starting with the rows drawn: one diff a row shown,
   * not one per session at boot (1,000 sessions would be 1,000 git diffs). */
  countFiles() {
    this.filesOn = true;
    for (const id of this.items.keys()) this.countFilesOf(state.sessions.get(id));
  }

  countFilesOf(s) {
    const x = s && extraOf(s.id);
    if (!x || (x.files !== null && !x.filesStale)) return;
    if (["discarded", "merged", "queued", "starting"].includes(s.status)) return;
    refreshFiles(s.id);
  }

  group(repo) {
    let g = this.groups.get(repo);
    if (!g) {
      const count = h("span.count");
      // A group of sessions: "repo" NUL "kind" NUL "name" NUL "id" (see groupKey).
      const [name, kind, label, gid] = repo.split("\u0000");
      const title = gid ? [h("span", null, name), h("span.group-kind", null, ` › ${kind} `), h("span.group-name", null, label)] : [h("span", null, repo)];
      const head = h("div.group-head", null, ...title, count);
      const body = h("div.group-body");
      const el = h("div.group", { dataset: gid ? { repo: name, group: gid } : { repo } }, head, body);
      g = { el, head, body, count, repo, drawn: [] };
      this.groups.set(repo, g);
    }
    return g;
  }

  create(s) {
    const refs = {
      title: h("span.title"),
      badge: h("span.badge"),
      agent: h("span.agent"),
      elapsed: h("span.elapsed"),
      cost: h("span.cost"),
      files: h("span.files"),
      check: h("span.check"),
      conflict: h("span.conflict"),
      kin: h("span.kin"), // issue 18: "lead · 2 children"
    };
    const el = h(
      "div.item",
      { role: "option", draggable: "true", dataset: { id: s.id } },
      h("span.unread-dot", { title: "unread" }),
      h("div.r1", null, refs.title, refs.badge),
      h("div.r2", null, refs.kin, refs.agent, refs.elapsed, refs.cost, refs.files, refs.check, refs.conflict),
    );
    if (this.cursor === s.id) el.classList.add("cursor");
    const it = { el, refs, last: {} };
    this.items.set(s.id, it);
    return it;
  }

  patch(it, s) {
    const x = extraOf(s.id);
    const set = (key, value, fn) => {
      if (it.last[key] === value) return;
      it.last[key] = value;
      fn(value);
    };
    const r = it.refs;
    set("title", s.title, (v) => {
      r.title.textContent = v;
      it.el.title = `${v}\n${s.id} · ${s.branch || ""}`;
    });
    set("status", s.status, (v) => {
      r.badge.textContent = STATUS_LABEL[v] || v;
      r.badge.className = `badge st-${v}`;
      it.el.dataset.status = v;
      it.el.classList.toggle("ended", ENDED.has(v));
    });
    set("unread", !!s.unread, (v) => it.el.classList.toggle("unread", v));
    set("agent", s.agent + (s.model ? ` · ${s.model}` : ""), (v) => (r.agent.textContent = v));
    set("cost", cost(s.cost_usd), (v) => (r.cost.textContent = v));
    set("files", x.files, (v) => (r.files.textContent = v === null || v === undefined ? "" : `${v} file${v === 1 ? "" : "s"}`));
    const chk = x.check ? (x.check.ok ? "ok" : "fail") : "";
    set("check", chk, (v) => {
      r.check.textContent = v === "ok" ? "✓ check" : v === "fail" ? "✗ check" : "";
      r.check.className = `check ${v}`;
    });
    const conf = x.conflicts ? `⚠ ${x.conflicts}` : x.baseConflict ? "⚠ base" : "";
    set("conflict", conf, (v) => {
      r.conflict.textContent = v;
      r.conflict.title = v ? "conflicts forecast: see the Conflicts view" : "";
    });
    it.el.classList.toggle("open", state.openId === s.id);
    this.elapsed(it, s);
  }

  elapsed(it, s) {
    const now = Date.now() / 1000;
    const start = s.created_at || now;
    const end = ACTIVE.has(s.status) ? now : s.updated_at || now;
    const text = duration(end - start);
    if (it.last.elapsed !== text) {
      it.last.elapsed = text;
      it.refs.elapsed.textContent = text;
    }
  }

  tick() {
    if (document.hidden) return;
    for (const [id, it] of this.items) {
      const s = state.sessions.get(id);
      if (s && ACTIVE.has(s.status)) this.elapsed(it, s);
    }
  }

  foot() {
    const counts = this.counts;
    const parts = ["running", "needs_input", "idle", "failed", "queued"]
      .filter((k) => counts[k])
      .map((k) => `${counts[k]} ${STATUS_LABEL[k] || k}`);
    const text = parts.join(" · ") || `${state.sessions.size} sessions`;
    const el = $("#sidebar-foot");
    if (el.textContent !== text) el.textContent = text;
  }

  /** The ids the filters show, in display order (drawn or not). */
  visibleIds() {
    return this.order.slice();
  }

  move(delta) {
    const ids = this.order;
    if (!ids.length) return;
    let i = ids.indexOf(this.cursor || state.openId);
    i = i < 0 ? (delta > 0 ? 0 : ids.length - 1) : Math.max(0, Math.min(ids.length - 1, i + delta));
    this.setCursor(ids[i]);
  }

  /** Where row ``id`` starts in the list's scroll space, or null when it is not shown. */
  offsetOf(id) {
    const rowH = this.rowH || 50;
    const headH = this.headH || 20;
    let y = 0;
    for (const { ids } of this.layout) {
      const i = ids.indexOf(id);
      if (i >= 0) return { y: y + headH + i * rowH, headH, rowH };
      y += headH + ids.length * rowH;
    }
    return null;
  }

  setCursor(id) {
    if (this.cursor) this.items.get(this.cursor)?.el.classList.remove("cursor");
    this.cursor = id;
    const at = this.offsetOf(id);
    if (at) {
      // Scroll the model's row into view, then draw: the row exists only once drawn.
      const view = this.list;
      if (at.y - at.headH < view.scrollTop) view.scrollTop = at.y - at.headH;
      else if (at.y + at.rowH > view.scrollTop + view.clientHeight) view.scrollTop = at.y + at.rowH - view.clientHeight;
      this.render();
    }
    this.items.get(id)?.el.classList.add("cursor");
  }

  openCursor() {
    if (this.cursor) this.open(this.cursor);
  }

  open(id) {
    this.setCursor(id);
    this.onOpen(id);
  }

  markOpen(prev, id) {
    if (prev) this.items.get(prev)?.el.classList.remove("open");
    if (id) this.items.get(id)?.el.classList.add("open");
  }
}

/** Where a session is listed: its repo, or its group (``options.group``: a plan, best-of-N
 * or map group, issue 15) inside its repo. Sorts right after the repo's own heading. */
function groupKey(s) {
  const repo = s.repo_name || "?";
  const g = s.options && s.options.group;
  if (!g || !g.id) return repo;
  return [repo, g.kind || "group", g.name || g.id, g.id].join("\u0000");
}
