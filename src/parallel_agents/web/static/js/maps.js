// Map-reduce groups (issue 15 §4): every map group, and one group's report (each item's
// state, session, outcome, diff size and check), redrawn when one of its sessions changes.
import { api, errMsg } from "./api.js";
import { on } from "./state.js";
import { clip, debounce, h } from "./util.js";

const enc = encodeURIComponent;

function counted(obj) {
  return Object.entries(obj || {})
    .sort()
    .map(([k, n]) => `${n} ${k}`)
    .join(", ");
}

function outcomeCell(o) {
  if (!o) return h("td.muted", null, "–");
  const derived = o.source !== "record";
  return h(
    `td.outcome.o-${o.status}`,
    { title: derived ? o.note || "derived from how the turn ended" : "the agent's outcome record" },
    derived ? `${o.status}*` : o.status,
  );
}

function diffCell(d) {
  if (!d) return h("td.muted", null, "–");
  return h("td.num", null, `${d.files} `, h("span.add", null, `+${d.added}`), " ", h("span.del", null, `-${d.deleted}`));
}

function checkCell(c) {
  if (!c) return h("td.muted", null, "–");
  return h(`td.${c.ok ? "ok" : "bad"}`, null, c.ok ? "pass" : c.timed_out ? "timeout" : "fail");
}

export class MapsView {
  constructor(root, ref) {
    this.root = root;
    this.ref = ref || null;
    this.gid = null;
    this.body = h("div.maps");
    this.root.replaceChildren(this.body);
    this.refreshSoon = debounce(() => this.refresh(), 250);
    // A session of the group shown changed (its status, so maybe its outcome): redraw.
    this.off = on("session", (s) => {
      const g = s && s.options && s.options.group;
      if (!this.ref ? g && g.kind === "map" : g && g.id === this.gid) this.refreshSoon();
    });
    this.body.replaceChildren(h("div.muted", null, "loading…"));
    this.refresh();
  }

  async refresh() {
    try {
      if (this.ref) {
        const rep = await api(`/maps/${enc(this.ref)}`);
        this.gid = rep.group.id;
        this.renderReport(rep);
      } else {
        const data = await api("/maps");
        this.renderList(data.groups || []);
      }
    } catch (e) {
      this.body.replaceChildren(h("div.ev.error", null, errMsg(e)));
    }
  }

  renderList(groups) {
    if (!groups.length) {
      this.body.replaceChildren(
        h("p.muted", null, "No map groups yet. Start one: ", h("code", null, "pa map --template 'fix {item}' --items list.txt")),
      );
      return;
    }
    const rows = groups
      .slice()
      .reverse()
      .map((g) =>
        h(
          "tr",
          null,
          h("td", null, h("a", { href: `#/maps/${enc(g.id)}` }, g.name)),
          h(`td.st-${g.state}`, null, g.state),
          h("td.num", null, String(g.items)),
          h("td", null, counted(g.states)),
          h("td", null, counted(g.outcomes)),
        ),
      );
    this.body.replaceChildren(
      h("h3", null, "Map groups"),
      h("table.maps-table", null, h("thead", null, h("tr", null, ...["group", "state", "items", "states", "outcomes"].map((c) => h("th", null, c)))), h("tbody", null, ...rows)),
    );
  }

  renderReport(rep) {
    const g = rep.group;
    const spec = g.spec || {};
    const head = h(
      "div.maps-head",
      null,
      h("a", { href: "#/maps" }, "Map groups"),
      " › ",
      h("strong", null, g.name),
      h(`span.badge.st-${g.state}`, null, g.state),
      h("span.muted", null, ` ${rep.counts.items} items: ${counted(rep.counts.states)}; outcomes: ${counted(rep.counts.outcomes) || "none yet"}`),
    );
    const about = [];
    if (spec.template) about.push(h("div.maps-template", null, h("span.muted", null, "template "), h("code", null, spec.template)));
    if (spec.map) about.push(h("div", null, "reduce of ", h("a", { href: `#/maps/${enc(spec.map)}` }, spec.map_name || spec.map)));
    for (const r of rep.reduces || []) {
      about.push(
        h(
          "div.maps-reduce",
          null,
          "reduced by ",
          h("a", { href: `#/maps/${enc(r.id)}` }, r.name),
          ` (${r.state}, ${r.merged.length} merged)`,
          r.session ? [" · ", h("a", { href: `#/s/${enc(r.session)}` }, "reducer session")] : null,
        ),
      );
    }
    const rows = rep.items.map((i) =>
      h(
        "tr",
        { dataset: { key: i.key } },
        h("td.num", null, i.key),
        h("td", { title: String(i.item) }, clip(String(i.item), 60)),
        h(`td.st-${i.state}`, null, i.state),
        h("td", null, i.session ? h("a", { href: `#/s/${enc(i.session)}` }, i.session) : "–", i.status ? h("span.muted", null, ` ${i.status}`) : null),
        outcomeCell(i.outcome),
        h("td.summary", { title: (i.outcome && i.outcome.summary) || "" }, clip((i.outcome && i.outcome.summary) || "", 80)),
        diffCell(i.diff),
        checkCell(i.check),
      ),
    );
    const cols = ["#", "item", "state", "session", "outcome", "summary", "diff", "check"];
    this.body.replaceChildren(
      head,
      ...about,
      h("table.maps-table", null, h("thead", null, h("tr", null, ...cols.map((c) => h("th", null, c)))), h("tbody", null, ...rows)),
      h("p.muted.small", null, "* derived from how the turn ended: the agent wrote no valid outcome record"),
    );
  }

  destroy() {
    this.off();
  }
}
