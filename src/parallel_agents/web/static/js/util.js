// Small DOM and formatting helpers shared by the dashboard's modules.

/** Create an element: h("div.cls#id", {attr: v, onclick: fn}, child, "text", ...). */
export function h(tag, props, ...children) {
  const m = /^([a-z0-9-]+)?((?:[.#][\w-]+)*)$/i.exec(tag);
  const el = document.createElement((m && m[1]) || "div");
  if (m && m[2]) {
    for (const part of m[2].match(/[.#][\w-]+/g)) {
      if (part[0] === ".") el.classList.add(part.slice(1));
      else el.id = part.slice(1);
    }
  }
  if (props) {
    for (const [k, v] of Object.entries(props)) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
      else if (k === "text") el.textContent = v;
      else if (k === "dataset") Object.assign(el.dataset, v);
      else if (k in el && typeof v !== "string") el[k] = v;
      else el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

/** "42s", "3m", "1h05m", "2d". */
export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${(s / 86400).toFixed(1)}d`;
}

export function cost(usd) {
  if (!usd) return "";
  return usd < 0.01 ? `$${usd.toFixed(4)}` : `$${usd.toFixed(2)}`;
}

export function clip(text, n) {
  const s = String(text ?? "");
  return s.length > n ? s.slice(0, n - 1) + "…" : s;
}

export function jsonText(v) {
  if (typeof v === "string") return v;
  try {
    return JSON.stringify(v, null, 2);
  } catch {
    return String(v);
  }
}

/** One-line summary of a tool input: its most telling argument. */
export function argSummary(input) {
  if (input === null || input === undefined) return "";
  if (typeof input !== "object") return clip(String(input), 120);
  for (const k of ["command", "cmd", "file_path", "path", "pattern", "url", "query", "description"]) {
    if (typeof input[k] === "string") return clip(input[k].replace(/\s+/g, " "), 120);
  }
  return clip(JSON.stringify(input), 120);
}

export function toast(msg, kind = "") {
  const box = document.getElementById("toasts");
  const el = h("div.toast", { role: "status" }, msg);
  if (kind) el.classList.add(kind);
  box.append(el);
  setTimeout(() => el.remove(), kind === "err" ? 8000 : 3500);
}

/** Run fn at most once per animation frame (or every 200 ms while the tab is hidden). */
export function frameBatcher(fn) {
  let pending = false;
  const run = () => {
    pending = false;
    fn();
  };
  return () => {
    if (pending) return;
    pending = true;
    if (document.hidden) setTimeout(run, 200);
    else requestAnimationFrame(run);
  };
}

export function debounce(fn, ms) {
  let t = null;
  return (...args) => {
    clearTimeout(t);
    t = setTimeout(() => fn(...args), ms);
  };
}

export function storeGet(key, fallback) {
  try {
    const v = localStorage.getItem(`pa.${key}`);
    return v === null ? fallback : JSON.parse(v);
  } catch {
    return fallback;
  }
}

export function storeSet(key, value) {
  try {
    localStorage.setItem(`pa.${key}`, JSON.stringify(value));
  } catch {
    /* private mode or full: not worth failing for */
  }
}

export function isTyping(ev) {
  const t = ev.target;
  return t instanceof HTMLElement && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName) || t.closest(".xterm"));
}
