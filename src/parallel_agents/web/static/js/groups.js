// Best-of-N attempts (issue 15 §2): the groups, and one group's attempts side by side: the
// comparison table (GET /groups/{ref}/compare) above, each attempt's diff in a column below,
// and a Pick button per attempt (POST /groups/{ref}/pick, after a confirmation).
import { api, errMsg } from "./api.js";
import { confirmDialog } from "./dialogs.js";
import { clip, cost, duration, h, toast } from "./util.js";

const seg = (s) => encodeURIComponent(s);

function checkCell(c) {
  if (!c) return "-";
  return c.ok ? "pass" : c.timed_out ? "timeout" : "fail";
}

function conflictCell(c) {
  if (!c) return "-";
  const parts = [];
  if (c.clean_with_base === false) parts.push("base");
  for (const id of c.with || []) parts.push(id);
  return parts.length ? parts.join(", ") : "none";
}

export class GroupsView {
  constructor(root, ref) {
    this.root = root;
    this.ref = ref;
    this.body = h("div.groups");
    this.root.replaceChildren(this.body);
    this.refresh();
  }

  destroy() {
    this.gone = true;
  }

  async refresh() {
    try {
      if (this.ref) await this.renderGroup();
      else await this.renderList();
    } catch (e) {
      this.body.replaceChildren(h("div.ev.error", null, errMsg(e)));
    }
  }

  async renderList() {
    const data = await api("/groups");
    const gs = data.groups || [];
    const rows = gs.map((g) =>
      h(
        "tr",
        null,
        h("td", null, h("a", { href: `#/groups/${seg(g.id)}` }, g.name)),
        h("td", null, g.kind),
        h("td", null, g.state),
        h("td", null, Object.entries(g.tasks || {}).map(([s, n]) => `${n} ${s}`).join(", ")),
      ),
    );
    this.body.replaceChildren(
      h("h2", null, "Groups"),
      gs.length
        ? h("table.cmp", null, h("thead", null, h("tr", null, ...["name", "kind", "state", "tasks"].map((c) => h("th", null, c)))), h("tbody", null, ...rows))
        : h("p.muted", null, "No groups yet: pa new PROMPT --attempts N starts one."),
    );
  }

  async renderGroup() {
    const d = await api(`/groups/${seg(this.ref)}/compare`);
    if (this.gone) return;
    const g = d.group;
    const picked = g.spec.picked;
    const cols = ["#", "agent", "status", "check", "files", "lines", "time", "tokens", "cost", "conflicts", "score", ""];
    const rows = d.attempts.map((a) =>
      h(
        "tr",
        { dataset: { attempt: a.attempt }, class: picked === a.attempt ? "picked" : null },
        h("td", null, a.attempt),
        h("td", null, a.agent || "-"),
        h("td", null, a.session ? h("a", { href: `#/s/${seg(a.session)}` }, a.status || a.task) : a.task),
        h("td", null, checkCell(a.check)),
        h("td", null, a.files ?? "-"),
        h("td", null, a.additions == null ? "-" : `+${a.additions} -${a.deletions}`),
        h("td", null, a.duration_s == null ? "-" : duration(a.duration_s)),
        h("td", null, (a.input_tokens || 0) + (a.output_tokens || 0) || "-"),
        h("td", null, cost(a.cost_usd) || "-"),
        h("td", null, conflictCell(a.conflicts)),
        h("td", { title: a.reason || "" }, a.score == null ? "-" : `${a.score}/10`),
        h(
          "td",
          null,
          picked
            ? picked === a.attempt
              ? h("strong", null, "picked")
              : a.task
            : a.session && a.status !== "discarded"
              ? h("button.primary.pick", { onclick: () => this.pick(g, a) }, "Pick")
              : "",
        ),
      ),
    );
    const judge = d.judge;
    const verdict = judge
      ? judge.ranking
        ? h("ol.judge", null, ...judge.ranking.map((r) => h("li", null, `attempt ${r.attempt} (${r.score}/10): ${r.reason}`)))
        : h("p.muted", null, judge.state === "running" ? `judge (${judge.agent}) at work…` : `judge: ${judge.error || judge.state}`)
      : null;
    const diffs = h("div.attempt-diffs");
    this.body.replaceChildren(
      h("h2", null, `${g.name} `, h("span.muted", null, picked ? `picked attempt ${picked}` : g.state)),
      h("p.muted", null, clip(g.spec.prompt || "", 300)),
      h("table.cmp", null, h("thead", null, h("tr", null, ...cols.map((c) => h("th", null, c)))), h("tbody", null, ...rows)),
      ...(verdict ? [verdict] : []),
      diffs,
    );
    for (const a of d.attempts) {
      const pre = h("pre.diff-text", null, a.session ? "loading…" : a.error || "no session");
      diffs.append(h("div.attempt-col", { dataset: { attempt: a.attempt } }, h("h3", null, `attempt ${a.attempt} · ${a.agent || ""}`), pre));
      if (a.session) {
        api(`/sessions/${seg(a.session)}/diff?format=patch`, { raw: true })
          .then((t) => (pre.textContent = t || "(no changes)"))
          .catch((e) => (pre.textContent = errMsg(e)));
      }
    }
  }

  async pick(g, a) {
    const ok = await confirmDialog({
      title: `Pick attempt ${a.attempt}?`,
      body: "It is merged through the merge queue; the other attempts are discarded (archived: pa restore brings one back).",
      ok: "Pick and merge",
      extra: h("label.inline", null, h("input", { type: "checkbox", name: "nomerge" }), " only mark it, do not merge"),
    });
    if (!ok) return;
    try {
      const res = await api(`/groups/${seg(g.id)}/pick`, { method: "POST", body: { attempt: a.attempt, merge: !ok.nomerge } });
      toast(`picked attempt ${a.attempt}; discarded ${res.discarded.length}`);
    } catch (e) {
      toast(errMsg(e), "error");
    }
    this.refresh();
  }
}
