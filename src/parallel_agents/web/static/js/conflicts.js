// The conflict forecast: a matrix of live sessions per repo; a cell lists the paths both touch.
import { errMsg } from "./api.js";
import { loadConflicts, on, state } from "./state.js";
import { clip, h } from "./util.js";

export class ConflictsView {
  constructor(root) {
    this.root = root;
    this.body = h("div.conf");
    this.root.replaceChildren(this.body);
    this.off = on("conflicts", () => this.render());
    this.refresh();
  }

  async refresh() {
    this.body.replaceChildren(h("div.muted", null, "computing the forecast…"));
    try {
      const data = await loadConflicts();
      if (!data) {
        this.body.replaceChildren(
          h("div.muted", null, state.features.conflicts ? "could not load the forecast" : "this server has no conflict forecast (GET /api/v1/conflicts)"),
        );
        return;
      }
      this.render();
    } catch (e) {
      this.body.replaceChildren(h("div.ev.error", null, errMsg(e)));
    }
  }

  render() {
    const data = state.conflicts || { sessions: {}, pairs: [] };
    const info = data.sessions || {};
    const pairs = new Map();
    for (const p of data.pairs || []) {
      pairs.set(`${p.a}|${p.b}`, p);
      pairs.set(`${p.b}|${p.a}`, p);
    }
    const ids = Object.keys(info).filter((id) => state.sessions.has(id));
    for (const p of data.pairs || []) for (const id of [p.a, p.b]) if (!ids.includes(id) && state.sessions.has(id)) ids.push(id);
    const byRepo = new Map();
    for (const id of ids) {
      const s = state.sessions.get(id);
      const r = s.repo_name || "?";
      if (!byRepo.has(r)) byRepo.set(r, []);
      byRepo.get(r).push(s);
    }
    this.detail = h("div.conf-paths");
    const nConf = (data.pairs || []).filter((p) => p.paths && p.paths.length).length;
    const head = h(
      "div.row",
      null,
      h("strong", null, nConf ? `${nConf} conflicting pair${nConf === 1 ? "" : "s"}` : "No conflicts forecast between live sessions"),
      " ",
      h("button", { onclick: () => this.refresh() }, "Recompute"),
    );
    const tables = [];
    for (const [repo, list] of [...byRepo].sort()) {
      list.sort((a, b) => (a.created_at || 0) - (b.created_at || 0));
      const thead = h("thead", null, h("tr", null, h("th"), ...list.map((s) => h("th", { title: s.title }, clip(s.title, 28)))));
      const rows = list.map((a) =>
        h(
          "tr",
          null,
          h("th", { title: `${a.title} (${a.id})` }, h("a", { href: `#/s/${a.id}` }, clip(a.title, 32))),
          ...list.map((b) => this.cell(a, b, pairs, info)),
        ),
      );
      tables.push(h("h3", null, repo), h("table.matrix", null, thead, h("tbody", null, ...rows)));
    }
    if (!tables.length) tables.push(h("p.muted", null, "No live sessions with changes."));
    // A repository that is missing (moved or deleted) is left out, not silently clean.
    for (const sk of data.skipped || []) {
      tables.push(h("p.ev.error", null, `repo ${sk.repo} not forecast: ${sk.reason}. ${sk.hint || ""}`));
    }
    this.body.replaceChildren(head, ...tables, this.detail);
  }

  cell(a, b, pairs, info) {
    if (a.id === b.id) {
      const bad = info[a.id] && info[a.id].clean_with_base === false;
      const paths = (info[a.id] && info[a.id].base_conflict_paths) || [];
      const td = h(`td.self${bad ? ".base-bad" : ""}`, { title: bad ? "conflicts with its base branch" : "merges cleanly into its base" }, bad ? "B" : "");
      if (bad) td.addEventListener("click", () => this.show(`${a.title} × its base (${a.base_ref || "base"})`, paths, [a]));
      return td;
    }
    const p = pairs.get(`${a.id}|${b.id}`);
    if (!p || !p.paths || !p.paths.length) return h("td.clean", { title: "no conflict" });
    const td = h("td.bad", { title: p.paths.join("\n"), dataset: { a: a.id, b: b.id } }, String(p.paths.length));
    td.addEventListener("click", () => this.show(`${a.title} × ${b.title}`, p.paths, [a, b]));
    return td;
  }

  show(title, paths, sessions) {
    this.detail.replaceChildren(
      h("h4", null, title),
      h("ul", null, ...paths.map((p) => h("li", null, h("code", null, p)))),
      h("p", null, "Open: ", ...sessions.flatMap((s, i) => [i ? " · " : "", h("a", { href: `#/s/${s.id}/diff` }, `${s.title} (diff)`)])),
    );
  }

  destroy() {
    this.off();
  }
}
