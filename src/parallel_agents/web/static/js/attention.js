// Attention: browser notifications and an optional sound when a session needs the person,
// and the tab title counts the sessions waiting.
import { ATTENTION, on, state, waitingCount } from "./state.js";
import { $, frameBatcher, storeGet, storeSet } from "./util.js";

const prefs = storeGet("attention", { notify: false, sound: false });
let audio = null;

function beep(kind) {
  try {
    audio = audio || new AudioContext();
    const o = audio.createOscillator();
    const g = audio.createGain();
    o.type = "sine";
    o.frequency.value = kind === "needs_input" ? 880 : kind === "failed" ? 330 : 660;
    g.gain.setValueAtTime(0.0001, audio.currentTime);
    g.gain.exponentialRampToValueAtTime(0.2, audio.currentTime + 0.02);
    g.gain.exponentialRampToValueAtTime(0.0001, audio.currentTime + 0.35);
    o.connect(g).connect(audio.destination);
    o.start();
    o.stop(audio.currentTime + 0.4);
  } catch {
    /* no audio device */
  }
}

const WHAT = {
  needs_input: "needs your input",
  idle: "finished its turn",
  failed: "failed",
  interrupted: "was interrupted",
};

function notify(s, status) {
  const looking = !document.hidden && state.openId === s.id;
  if (looking) return;
  if (prefs.sound) beep(status);
  if (!prefs.notify || typeof Notification === "undefined" || Notification.permission !== "granted") return;
  const n = new Notification(`${s.title}`, {
    body: `${s.repo_name} · ${s.agent}: ${WHAT[status] || status}`,
    tag: `pa-${s.id}`,
  });
  n.onclick = () => {
    window.focus();
    location.hash = `#/s/${s.id}`;
    n.close();
  };
}

export function initAttention() {
  const nBox = $("#opt-notify");
  const sBox = $("#opt-sound");
  nBox.checked = prefs.notify && typeof Notification !== "undefined" && Notification.permission === "granted";
  sBox.checked = prefs.sound;
  nBox.addEventListener("change", async () => {
    if (nBox.checked && typeof Notification !== "undefined" && Notification.permission !== "granted") {
      const p = await Notification.requestPermission();
      if (p !== "granted") nBox.checked = false;
    }
    prefs.notify = nBox.checked;
    storeSet("attention", prefs);
  });
  sBox.addEventListener("change", () => {
    prefs.sound = sBox.checked;
    storeSet("attention", prefs);
    if (prefs.sound) beep("idle");
  });

  on("event", (ev) => {
    if (ev.kind !== "attention") return;
    const s = state.sessions.get(ev.session_id);
    const status = ev.payload && ev.payload.status;
    if (s && ATTENTION.has(status)) notify(s, status);
  });

  const title = frameBatcher(() => {
    const n = waitingCount();
    const t = n ? `(${n}) pa — ${n} waiting` : "pa";
    if (document.title !== t) document.title = t;
  });
  on("session", title);
  document.addEventListener("visibilitychange", title);
  title();
}
