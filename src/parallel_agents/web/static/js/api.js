// The REST client: same-origin fetch with the session cookie, JSON in and out.

export const BASE = "/api/v1";

export class ApiError extends Error {
  constructor(status, message, hint) {
    super(message);
    this.status = status;
    this.hint = hint;
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

function errorText(status, body) {
  if (body && typeof body === "object") {
    const e = body.error ?? body.detail ?? body.message;
    if (typeof e === "string") return [e, body.hint];
    if (e && typeof e === "object") {
      if (Array.isArray(e)) return [e.map((x) => x.msg || JSON.stringify(x)).join("; "), null];
      return [e.message || e.msg || JSON.stringify(e), e.hint || body.hint];
    }
  }
  if (typeof body === "string" && body.trim()) return [body.trim().slice(0, 500), null];
  return [`HTTP ${status}`, null];
}

/** api("/sessions", {method: "POST", body: {...}}) → parsed JSON (or text for text/*). */
export async function api(path, { method = "GET", body, signal, raw = false } = {}) {
  const init = { method, signal, headers: { Accept: raw ? "text/plain" : "application/json" } };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const res = await fetch(BASE + path, init);
  const type = res.headers.get("content-type") || "";
  const data = type.includes("json") ? await res.json().catch(() => null) : await res.text();
  if (!res.ok) {
    if (res.status === 401) onUnauthorized();
    const [msg, hint] = errorText(res.status, data);
    throw new ApiError(res.status, msg, hint);
  }
  return data;
}

/** A list out of either a bare array or {key: [...]}/{items: [...]}. */
export function listOf(data, key) {
  if (Array.isArray(data)) return data;
  if (data && typeof data === "object") {
    for (const k of [key, "items", "data", "results"]) if (Array.isArray(data[k])) return data[k];
  }
  return [];
}

export function errMsg(e) {
  if (e instanceof ApiError) return e.hint ? `${e.message} (${e.hint})` : e.message;
  return String(e && e.message ? e.message : e);
}
