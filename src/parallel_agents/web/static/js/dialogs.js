// Modal dialogs: confirmations, the new-session form, the shortcut list.
import { api, errMsg, listOf } from "./api.js";
import { loadAgents, loadRepos, state, upsertSession } from "./state.js";
import { $, h, storeGet, storeSet } from "./util.js";

/**
 * Ask before doing something. Resolves to the dialog's form values (an object) on OK, null on cancel.
 * @param {{title: string, body?: string, ok?: string, danger?: boolean, extra?: HTMLElement}} o
 */
export function confirmDialog(o) {
  const dlg = $("#dlg-confirm");
  $(".c-title", dlg).textContent = o.title;
  $(".c-body", dlg).textContent = o.body || "";
  const extra = $(".c-extra", dlg);
  extra.replaceChildren(...(o.extra ? [o.extra] : []));
  const okBtn = $(".c-ok", dlg);
  okBtn.textContent = o.ok || "OK";
  okBtn.className = `c-ok ${o.danger ? "danger" : "primary"}`;
  dlg.returnValue = "";
  dlg.showModal();
  okBtn.focus();
  return new Promise((resolve) => {
    dlg.addEventListener(
      "close",
      () => {
        if (dlg.returnValue !== "ok") return resolve(null);
        const values = {};
        for (const el of extra.querySelectorAll("[name]")) {
          values[el.name] = el.type === "checkbox" ? el.checked : el.value;
        }
        resolve(values);
      },
      { once: true },
    );
  });
}

export function helpDialog() {
  const d = $("#dlg-help");
  if (!d.open) d.showModal();
}

export async function newSessionDialog({ onCreated }) {
  const dlg = $("#dlg-new");
  const form = $("#form-new");
  const err = $(".form-error", form);
  err.textContent = "";
  await Promise.all([loadRepos(), loadAgents()]);
  const last = storeGet("newSession", {});
  const repoSel = form.elements.repo;
  repoSel.replaceChildren(...state.repos.map((r) => h("option", { value: r.name }, `${r.name}  (${r.base || "current branch"})`)));
  if (!state.repos.length) repoSel.append(h("option", { value: "" }, "no repos: pa repo add PATH"));
  if (last.repo && state.repos.some((r) => r.name === last.repo)) repoSel.value = last.repo;
  const agentSel = form.elements.agent;
  agentSel.replaceChildren(...state.agents.map((a) => h("option", { value: a }, a)));
  if (last.agent && state.agents.includes(last.agent)) agentSel.value = last.agent;
  form.elements.cmd.value = last.cmd || "";
  form.elements.model.value = last.model || "";
  form.elements.base.value = "";
  form.elements.title.value = "";
  form.elements.count.value = "1";
  form.elements.interactive.checked = false;
  const syncCmd = () => {
    $(".cmd-row", form).hidden = agentSel.value !== "command";
  };
  agentSel.onchange = syncCmd;
  syncCmd();
  const syncBase = () => {
    const r = state.repos.find((x) => x.name === repoSel.value);
    form.elements.base.placeholder = r && r.base ? r.base : "repo's current branch";
  };
  repoSel.onchange = syncBase;
  syncBase();
  // issue 16 §4: start from an existing branch, a PR or an issue (POST /sessions from_*)
  const fromSel = form.elements.from;
  fromSel.value = "";
  form.elements.from_value.value = "";
  const syncFrom = () => {
    const kind = fromSel.value;
    $(".from-row", form).hidden = !kind;
    const v = form.elements.from_value;
    v.placeholder = { branch: "branch name", pr: "PR number", issue: "issue number" }[kind] || "";
    v.required = !!kind;
    v.inputMode = kind === "pr" || kind === "issue" ? "numeric" : "text";
  };
  fromSel.onchange = syncFrom;
  syncFrom();
  dlg.showModal();
  form.elements.prompt.focus();

  form.onkeydown = (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      $("#btn-new-ok").click();
    }
  };
  form.onsubmit = async (e) => {
    if (e.submitter && e.submitter.value === "cancel") return;
    e.preventDefault();
    const f = form.elements;
    const body = {
      prompt: f.prompt.value,
      repo: f.repo.value || undefined,
      agent: f.agent.value || undefined,
      model: f.model.value.trim() || undefined,
      base: f.base.value.trim() || undefined,
      title: f.title.value.trim() || undefined,
      interactive: f.interactive.checked,
      count: Math.max(1, Math.min(16, Number(f.count.value) || 1)),
    };
    if (body.agent === "command") body.cmd = f.cmd.value.trim() || undefined;
    const fromKind = f.from.value;
    if (fromKind) {
      const v = f.from_value.value.trim();
      body[`from_${fromKind}`] = fromKind === "branch" ? v : Number(v);
      body.count = 1;
    }
    storeSet("newSession", { repo: body.repo, agent: body.agent, model: body.model, cmd: f.cmd.value });
    const btn = $("#btn-new-ok");
    btn.disabled = true;
    err.textContent = "";
    try {
      const data = await api("/sessions", { method: "POST", body });
      const made = Array.isArray(data) ? data : data && data.id ? [data] : listOf(data, "sessions");
      for (const s of made) upsertSession(s);
      f.prompt.value = "";
      dlg.close("ok");
      if (onCreated) onCreated(made);
    } catch (x) {
      err.textContent = errMsg(x);
    } finally {
      btn.disabled = false;
    }
  };
}
