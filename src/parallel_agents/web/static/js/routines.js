// Routines (issue 17): every routine with its triggers, next run and last runs (status,
// cost, diff size, unread), and Run now / Pause / Resume. GET /inbox/routines gives the
// runs' cost and diff size (the routes' own /routines has their status only).
import { api, errMsg } from "./api.js";
import { on } from "./state.js";
import { cost, debounce, h, toast } from "./util.js";

const enc = encodeURIComponent;
// A run's diff size comes from its turn's checkpoint, a moment after the status event that
// redraws the page, and due times pass with no event at all: a slow look now and then.
const BACKSTOP_MS = 3000;

function when(ts) {
  if (!ts) return "–";
  return new Date(ts * 1000).toLocaleString(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
}

function runChip(x) {
  const label = x.status || x.state;
  const parts = [h("strong", null, `#${x.run}`), " ", h(`span.st-${label}`, null, label)];
  if (x.cost_usd) parts.push(" ", h("span.muted", null, cost(x.cost_usd)));
  if (x.diff) parts.push(" ", h("span.add", null, `+${x.diff.additions}`), " ", h("span.del", null, `-${x.diff.deletions}`));
  const title = x.error || `${x.reason} · ${when(x.created_at)}`;
  const cls = `span.run-chip${x.read === false ? ".unread" : ""}`;
  const chip = h(cls, { title, dataset: { run: x.run } }, ...parts);
  return x.session ? h("a.run-link", { href: `#/s/${enc(x.session)}` }, chip) : chip;
}

export class RoutinesView {
  constructor(root) {
    this.root = root;
    this.body = h("div.maps.routines");
    this.root.replaceChildren(this.body);
    this.refreshSoon = debounce(() => this.refresh(), 250);
    // A run's session changed (started, ended, merged): its row's runs change.
    this.off = on("session", (s) => s && s.options && s.options.routine && this.refreshSoon());
    this.offInbox = on("inbox", () => this.refreshSoon());
    this.body.replaceChildren(h("div.muted", null, "loading…"));
    this.timer = setInterval(() => !document.hidden && this.refresh(), BACKSTOP_MS);
    this.refresh();
  }

  async refresh() {
    try {
      const data = await api("/inbox/routines");
      if (!this.gone) this.render(data.routines || []);
    } catch (e) {
      this.body.replaceChildren(h("div.ev.error", null, errMsg(e)));
    }
  }

  render(rs) {
    if (!rs.length) {
      this.body.replaceChildren(
        h("p.muted", null, "No routines yet. Add one: ", h("code", null, 'pa routine add nightly --prompt "bump deps" --cron "0 3 * * *"')),
      );
      return;
    }
    const rows = rs.map((r) =>
      h(
        "tr",
        { dataset: { routine: r.name } },
        h("td", null, h("strong", null, r.name), h("div.muted.small", { title: r.prompt }, `${r.repo} · ${r.agent}`)),
        h("td", null, r.triggers.join(", ")),
        h("td.next", null, r.paused ? h("span.badge.st-stopped", null, "paused") : when(r.next_due)),
        h("td", null, h("div.runs", null, ...(r.runs.length ? r.runs.map(runChip) : [h("span.muted", null, "no runs yet")]))),
        h(
          "td.run-actions",
          null,
          h("button.run-now", { onclick: () => this.act(r, "run", "started a run of") }, "Run now"),
          r.paused
            ? h("button.resume", { onclick: () => this.act(r, "resume", "resumed") }, "Resume")
            : h("button.pause", { onclick: () => this.act(r, "pause", "paused") }, "Pause"),
        ),
      ),
    );
    const cols = ["routine", "triggers", "next run", "last runs (status, cost, diff)", ""];
    this.body.replaceChildren(
      h("h3", null, "Routines"),
      h("table.maps-table.routines-table", null, h("thead", null, h("tr", null, ...cols.map((c) => h("th", null, c)))), h("tbody", null, ...rows)),
      h("p.muted.small", null, "Bold runs are unread: they wait in the inbox (the sidebar's Inbox button)."),
    );
  }

  async act(r, verb, done) {
    try {
      const out = await api(`/routines/${enc(r.name)}/${verb}`, { method: "POST", body: {} });
      if (verb === "run" && out.state !== "started") toast(`run #${out.run} of ${r.name} failed: ${out.error}`, "error");
      else toast(`${done} ${r.name}`);
    } catch (e) {
      toast(errMsg(e), "error");
    }
    this.refresh();
  }

  destroy() {
    this.gone = true;
    clearInterval(this.timer);
    this.off();
    this.offInbox();
  }
}
