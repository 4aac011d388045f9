// The session list: grouped by repo, filtered and searched, patched in place on every change.
import { ACTIVE, ENDED, LIVE, extraOf, on, state } from "./state.js";
import { $, cost, duration, frameBatcher, h, storeGet, storeSet } from "./util.js";

const STATUS_LABEL = { needs_input: "needs input" };

export class Sidebar {
  constructor(listEl, { onOpen }) {
    this.list = listEl;
    this.onOpen = onOpen;
    this.items = new Map(); // id -> {el, refs, last: {}}
    this.groups = new Map(); // repo -> {el, head, body, count}
    this.dirty = new Set();
    this.cursor = null;
    this.filter = storeGet("filter", { q: "", status: "", repo: "", agent: "" });
    this.flush = frameBatcher(() => this.apply());
    this.bindFilters();
    on("session", (s) => this.mark(s.id));
    on("repos", () => this.fillSelect("#f-repo", state.repos.map((r) => r.name), "all repos"));
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
    for (const id of this.items.keys()) this.dirty.add(id);
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
  }

  matches(s) {
    const f = this.filter;
    if (f.status === "*") {
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
    const agents = new Set();
    let newAgents = false;
    // Groups are counted once all items are placed: counting while a repo's first items are
    // hidden and its visible ones not created yet would hide the whole group.
    const recount = new Set();
    for (const id of this.dirty) {
      const s = state.sessions.get(id);
      if (!s) continue;
      let it = this.items.get(id);
      if (!it) {
        it = this.create(s);
        newAgents = true;
        recount.add(it.repo);
      }
      this.patch(it, s);
      const show = this.matches(s);
      if (it.el.hidden === show) {
        it.el.hidden = !show;
        recount.add(it.repo);
      }
    }
    for (const repo of recount) this.groupCount(repo);
    this.dirty.clear();
    if (newAgents) {
      for (const s of state.sessions.values()) agents.add(s.agent);
      this.fillSelect("#f-agent", [...agents], "all agents");
      const repos = new Set(state.repos.map((r) => r.name));
      for (const s of state.sessions.values()) repos.add(s.repo_name);
      this.fillSelect("#f-repo", [...repos], "all repos");
    }
    this.foot();
  }

  group(repo) {
    let g = this.groups.get(repo);
    if (!g) {
      const count = h("span.count");
      const head = h("div.group-head", null, h("span", null, repo), count);
      const body = h("div.group-body");
      const el = h("div.group", { dataset: { repo } }, head, body);
      g = { el, head, body, count };
      this.groups.set(repo, g);
      const names = [...this.groups.keys()].sort();
      const next = names[names.indexOf(repo) + 1];
      this.list.insertBefore(el, next ? this.groups.get(next).el : null);
    }
    return g;
  }

  groupCount(repo) {
    const g = this.groups.get(repo);
    if (!g) return;
    let n = 0;
    for (const c of g.body.children) if (!c.hidden) n++;
    g.count.textContent = String(n);
    g.el.hidden = n === 0;
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
    };
    const el = h(
      "div.item",
      { role: "option", draggable: "true", dataset: { id: s.id } },
      h("span.unread-dot", { title: "unread" }),
      h("div.r1", null, refs.title, refs.badge),
      h("div.r2", null, refs.agent, refs.elapsed, refs.cost, refs.files, refs.check, refs.conflict),
    );
    const repo = s.repo_name || "?";
    const it = { el, refs, last: {}, repo, created: s.created_at || 0 };
    this.items.set(s.id, it);
    const g = this.group(repo);
    // Newest first inside a repo.
    let before = null;
    for (const c of g.body.children) {
      const other = this.items.get(c.dataset.id);
      if (other && other.created < it.created) {
        before = c;
        break;
      }
    }
    g.body.insertBefore(el, before);
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
      if (s && ACTIVE.has(s.status) && !it.el.hidden) this.elapsed(it, s);
    }
  }

  foot() {
    const counts = {};
    for (const s of state.sessions.values()) counts[s.status] = (counts[s.status] || 0) + 1;
    const parts = ["running", "needs_input", "idle", "failed", "queued"]
      .filter((k) => counts[k])
      .map((k) => `${counts[k]} ${STATUS_LABEL[k] || k}`);
    $("#sidebar-foot").textContent = parts.join(" · ") || `${state.sessions.size} sessions`;
  }

  visible() {
    return [...this.list.querySelectorAll(".group:not([hidden]) .item:not([hidden])")];
  }

  move(delta) {
    const items = this.visible();
    if (!items.length) return;
    let i = items.findIndex((el) => el.dataset.id === (this.cursor || state.openId));
    i = i < 0 ? (delta > 0 ? 0 : items.length - 1) : Math.max(0, Math.min(items.length - 1, i + delta));
    this.setCursor(items[i].dataset.id);
  }

  setCursor(id) {
    if (this.cursor) this.items.get(this.cursor)?.el.classList.remove("cursor");
    this.cursor = id;
    const it = this.items.get(id);
    if (it) {
      it.el.classList.add("cursor");
      it.el.scrollIntoView({ block: "nearest" });
    }
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
