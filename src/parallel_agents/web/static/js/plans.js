// Plans (issue 15 §1): every plan, and one plan as a graph: its tasks as nodes in columns
// by dependency depth, coloured by state, an arrow per depends_on and a dashed line per
// conflicts_with pair. Drawn as inline SVG here (no graph library: a plan is a few dozen
// tasks at most). Redrawn when one of the plan's sessions changes.
import { api, errMsg } from "./api.js";
import { on } from "./state.js";
import { clip, debounce, h } from "./util.js";

const enc = encodeURIComponent;
const NS = "http://www.w3.org/2000/svg";
const W = 200; // node size and spacing, in SVG units (= CSS pixels)
const H = 62;
const COL_GAP = 70;
const ROW_GAP = 24;
const PAD = 14;
const ARC = 46; // how far a conflicts_with arc between nodes of one column bulges out
// The task moves (done, merged) come from the server's plan driver a moment after the
// session event that caused them; a slow look now and then catches what no event names.
const BACKSTOP_MS = 3000;

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== null && v !== undefined) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

function counted(obj) {
  return Object.entries(obj || {})
    .sort()
    .map(([k, n]) => `${n} ${k}`)
    .join(", ");
}

/** Column = longest chain of dependencies below the task; rows in the plan file's order. */
export function layout(tasks) {
  const byKey = new Map(tasks.map((t) => [t.key, t]));
  const deps = (t) => ((t.spec && t.spec.depends_on) || []).filter((d) => byKey.has(d) && d !== t.key);
  const depth = new Map();
  const visit = (key, path) => {
    if (depth.has(key)) return depth.get(key);
    if (path.has(key)) return 0; // a cycle: the plan file refuses them, never loop on one
    path.add(key);
    const ds = deps(byKey.get(key)).map((d) => visit(d, path));
    path.delete(key);
    const d = ds.length ? 1 + Math.max(...ds) : 0;
    depth.set(key, d);
    return d;
  };
  const cols = [];
  for (const t of [...tasks].sort((a, b) => a.position - b.position)) {
    const d = visit(t.key, new Set());
    (cols[d] ||= []).push(t);
  }
  const pos = new Map();
  cols.forEach((col, c) => col.forEach((t, r) => pos.set(t.key, { x: PAD + c * (W + COL_GAP), y: PAD + r * (H + ROW_GAP) })));
  const rows = Math.max(1, ...cols.map((c) => (c ? c.length : 0)));
  return { pos, deps, width: PAD * 2 + cols.length * W + (cols.length - 1) * COL_GAP + ARC, height: PAD * 2 + rows * H + (rows - 1) * ROW_GAP };
}

function depEdge(from, to, a, b) {
  const x1 = a.x + W;
  const y1 = a.y + H / 2;
  const x2 = b.x - 4; // the arrow head ends at the node's edge
  const y2 = b.y + H / 2;
  const mx = (x1 + x2) / 2;
  return svg("path", { class: "edge dep", d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, "marker-end": "url(#plan-arrow)", "data-from": from, "data-to": to });
}

function conflictEdge(a, b, ka, kb) {
  let d;
  if (a.x === b.x) {
    // Same column: an arc out to the right, clear of the nodes between them.
    const x = a.x + W;
    d = `M${x},${a.y + H / 2} C${x + ARC},${a.y + H / 2} ${x + ARC},${b.y + H / 2} ${x},${b.y + H / 2}`;
  } else {
    const [l, r] = a.x < b.x ? [a, b] : [b, a];
    const x1 = l.x + W / 2;
    const y1 = l.y + H;
    const x2 = r.x + W / 2;
    const y2 = r.y + H;
    d = `M${x1},${y1} Q${(x1 + x2) / 2},${Math.max(y1, y2) + ROW_GAP * 1.6} ${x2},${y2}`;
  }
  return svg("path", { class: "edge conflict", d, "data-from": ka, "data-to": kb }, svg("title", null, `${ka} and ${kb} never run at the same time (conflicts_with)`));
}

/** Why a task is where it is, from its outcome: the line under its session, and its tooltip. */
function why(t) {
  const o = t.outcome || {};
  return o.error || o.skipped || o.held || o.waiting || o.note || "";
}

/** The conflict forecast's flags on a task (issue 15 §1: "flagged before they start"):
 * its notes, or "" when the forecast sees no collision. */
function flags(t) {
  const o = t.outcome || {};
  return [o.forecast_start && `flagged before it started: ${o.forecast_start.note}`, o.forecast && o.forecast.note].filter(Boolean).join("\n");
}

function node(t, p, onOpen) {
  const merged = t.merged || t.state === "merged";
  const flagged = flags(t);
  const sess = t.session_status && t.session_status !== t.state ? `${t.state} · ${t.session_status}` : t.state;
  const third = t.session ? t.session : clip(why(t), 28) || "no session yet";
  const tip = [`${t.key}: ${(t.spec && t.spec.title) || ""}`, `state: ${t.state}`, t.session ? `session ${t.session} (click to open)` : "", why(t), flagged].filter(Boolean).join("\n");
  const g = svg(
    "g",
    {
      class: `pnode st-${t.state}${t.session ? " has-session" : ""}${flagged ? " flagged" : ""}`,
      transform: `translate(${p.x},${p.y})`,
      "data-key": t.key,
      "data-state": t.state,
      "data-session": t.session || null,
      tabindex: t.session ? 0 : null,
      role: t.session ? "link" : null,
      "aria-label": `task ${t.key}, ${t.state}`,
    },
    svg("title", null, tip),
    svg("rect", { width: W, height: H, rx: 7 }),
    svg("text", { x: 10, y: 19, class: "pn-key" }, clip(t.key, 20)),
    merged ? svg("text", { x: W - 10, y: 20, class: "pn-merged", "text-anchor": "end" }, svg("title", null, "merged"), "✓") : null,
    flagged ? svg("text", { x: W - (merged ? 26 : 10), y: 20, class: "pn-flag", "text-anchor": "end" }, svg("title", null, flagged), "⚠") : null,
    svg("text", { x: 10, y: 37, class: "pn-state" }, sess),
    svg("text", { x: 10, y: 54, class: t.session ? "pn-session" : "pn-why" }, third),
  );
  if (t.session) {
    g.addEventListener("click", () => onOpen(t.session));
    g.addEventListener("keydown", (e) => {
      if (e.key === "Enter") onOpen(t.session);
    });
  }
  return g;
}

/** The plan's graph as one <svg>. */
export function planGraph(tasks, onOpen) {
  const { pos, deps, width, height } = layout(tasks);
  const edges = [];
  const pairs = new Set();
  for (const t of tasks) {
    for (const d of deps(t)) edges.push(depEdge(d, t.key, pos.get(d), pos.get(t.key)));
    for (const c of (t.spec && t.spec.conflicts_with) || []) {
      const key = [t.key, c].sort().join("\u0000");
      if (!pos.has(c) || c === t.key || pairs.has(key)) continue; // either side naming it is one pair
      pairs.add(key);
      edges.push(conflictEdge(pos.get(t.key), pos.get(c), t.key, c));
    }
  }
  const bottom = pairs.size ? ROW_GAP * 1.6 : 0; // room for the conflicts' curves under the nodes
  return svg(
    "svg",
    { class: "plan-graph", width, height: height + bottom, viewBox: `0 0 ${width} ${height + bottom}`, role: "img", "aria-label": "plan graph" },
    svg("defs", null, svg("marker", { id: "plan-arrow", viewBox: "0 0 10 10", refX: 9, refY: 5, markerWidth: 8, markerHeight: 8, orient: "auto-start-reverse" }, svg("path", { d: "M0,0 L10,5 L0,10 z" }))),
    svg("g", { class: "edges" }, edges),
    svg(
      "g",
      { class: "nodes" },
      tasks.map((t) => node(t, pos.get(t.key), onOpen)),
    ),
  );
}

const LEGEND = ["waiting", "running", "done", "merged", "failed", "stopped", "skipped"];

export class PlansView {
  constructor(root, ref) {
    this.root = root;
    this.ref = ref || null;
    this.gid = null;
    this.live = false;
    this.body = h("div.plans");
    this.root.replaceChildren(this.body);
    this.refreshSoon = debounce(() => this.refresh(), 250);
    this.off = on("session", (s) => {
      const g = s && s.options && s.options.group;
      if (!g) return;
      if (this.ref ? g.id === this.gid : g.kind === "plan" || !g.kind) this.refreshSoon();
    });
    this.timer = setInterval(() => {
      if (this.live && !document.hidden) this.refresh();
    }, BACKSTOP_MS);
    this.body.replaceChildren(h("div.muted", null, "loading…"));
    this.refresh();
  }

  async refresh() {
    try {
      if (this.ref) {
        const rep = await api(`/plans/${enc(this.ref)}`);
        if (this.gone) return;
        this.gid = rep.plan.id;
        this.live = rep.plan.state === "running";
        this.renderPlan(rep);
      } else {
        const data = await api("/plans");
        if (this.gone) return;
        const plans = data.plans || [];
        this.live = plans.some((p) => p.state === "running");
        this.renderList(plans);
      }
    } catch (e) {
      if (!this.gone) this.body.replaceChildren(h("div.ev.error", null, errMsg(e)));
    }
  }

  renderList(plans) {
    if (!plans.length) {
      this.body.replaceChildren(h("p.muted", null, "No plans yet. Run one: ", h("code", null, "pa plan run plan.toml"), " (the README's Plans section)."));
      return;
    }
    const rows = plans
      .slice()
      .reverse()
      .map((p) =>
        h(
          "tr",
          { dataset: { plan: p.id } },
          h("td", null, h("a", { href: `#/plans/${enc(p.id)}` }, p.name)),
          h(`td.st-${p.state}`, null, p.state),
          h("td.num", null, String(p.tasks)),
          h("td", null, counted(p.counts)),
        ),
      );
    this.body.replaceChildren(
      h("h3", null, "Plans"),
      h("table.maps-table.plans-table", null, h("thead", null, h("tr", null, ...["plan", "state", "tasks", "by state"].map((c) => h("th", null, c)))), h("tbody", null, ...rows)),
    );
  }

  renderPlan(rep) {
    const p = rep.plan;
    const head = h(
      "div.maps-head.plan-head",
      null,
      h("a", { href: "#/plans" }, "Plans"),
      " › ",
      h("strong", null, p.name),
      h(`span.badge.st-${p.state}`, null, p.state),
      h("span.muted", null, ` ${rep.tasks.length} tasks: ${counted(rep.counts)}`),
    );
    const about = p.spec && p.spec.description ? h("p.muted", null, p.spec.description) : null;
    const legend = h(
      "div.plan-legend.muted",
      null,
      ...LEGEND.map((s) => h("span", null, h(`i.sw.st-${s}`), s)),
      h("span", null, h("i.ln"), "depends on"),
      h("span", null, h("i.ln.dashed"), "conflicts with"),
    );
    const open = (sid) => (location.hash = `#/s/${enc(sid)}`);
    this.body.replaceChildren(...[head, about, h("div.plan-graph-wrap", null, planGraph(rep.tasks, open)), legend].filter(Boolean));
  }

  destroy() {
    this.gone = true;
    clearInterval(this.timer);
    this.off();
  }
}
