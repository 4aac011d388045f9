// The terminal tab: xterm.js over a websocket to the session's tmux pane.
import { state } from "./state.js";
import { h } from "./util.js";

let xtermReady = null;
function loadXterm() {
  if (!xtermReady) {
    document.head.append(h("link", { rel: "stylesheet", href: "/static/vendor/xterm/xterm.css" }));
    xtermReady = Promise.all([
      import("/static/vendor/xterm/xterm.mjs"),
      import("/static/vendor/xterm/addon-fit.mjs"),
    ]).then(([x, f]) => ({ Terminal: x.Terminal, FitAddon: f.FitAddon }));
  }
  return xtermReady;
}

export class TerminalView {
  // shell: the session's own shell in its worktree (issue 16 §2) instead of the agent's TUI.
  constructor(root, sid, { shell = false } = {}) {
    this.root = root;
    this.sid = sid;
    this.shell = shell;
    this.closed = false;
  }

  async open() {
    const s = state.sessions.get(this.sid);
    this.note = h("div.term-note", { hidden: true });
    const box = h("div.term");
    this.root.replaceChildren(this.note, h("div.term-wrap", null, box));
    if (s && !s.interactive && !this.shell) {
      this.setNote("This session runs headless: its output is in the Conversation tab; the Shell tab opens a shell in its worktree. Start a session with “interactive” to get a terminal.");
      return;
    }
    let lib;
    try {
      lib = await loadXterm();
    } catch (e) {
      this.setNote(`xterm.js is missing (${e.message}): run scripts/build-web.sh`);
      return;
    }
    if (this.closed) return;
    const term = new lib.Terminal({
      cursorBlink: true,
      fontFamily: 'ui-monospace, "DejaVu Sans Mono", Menlo, monospace',
      fontSize: 13,
      scrollback: 5000,
      allowProposedApi: false,
    });
    const fit = new lib.FitAddon();
    term.loadAddon(fit);
    term.open(box);
    this.term = term;
    this.fit = fit;
    window.__paTerm = term; // for tests and debugging
    this.safeFit();
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const size = `cols=${term.cols}&rows=${term.rows}`;
    const ws = new WebSocket(`${proto}//${location.host}/api/v1/sessions/${encodeURIComponent(this.sid)}/${this.shell ? "shell" : "terminal"}?${size}`);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    let told = false;
    ws.onopen = () => {
      this.sendSize();
      term.focus();
    };
    ws.onmessage = (m) => {
      if (typeof m.data !== "string") {
        term.write(new Uint8Array(m.data));
        return;
      }
      // Text frames are control messages: {"type": "exit"|"error", ...}.
      let ctl = null;
      if (m.data.startsWith("{")) {
        try {
          ctl = JSON.parse(m.data);
        } catch {
          ctl = null;
        }
      }
      if (ctl && (ctl.type === "error" || ctl.type === "exit")) {
        told = true;
        this.setNote(ctl.type === "error" ? `${ctl.error}${ctl.hint ? ` (${ctl.hint})` : ""}` : `terminal closed: ${ctl.reason || "the session ended"}`);
      } else term.write(m.data);
    };
    ws.onclose = (e) => {
      if (this.closed) return;
      if (!told) this.setNote(`terminal disconnected${e.reason ? `: ${e.reason}` : e.code === 1006 ? " (refused or dropped by the server)" : ""}`);
      term.write("\r\n\x1b[2m[disconnected]\x1b[0m\r\n");
    };
    term.onData((d) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(d);
    });
    term.onBinary((d) => {
      if (ws.readyState !== WebSocket.OPEN) return;
      const buf = new Uint8Array(d.length);
      for (let i = 0; i < d.length; i++) buf[i] = d.charCodeAt(i) & 0xff;
      ws.send(buf);
    });
    this.ro = new ResizeObserver(() => {
      clearTimeout(this.rt);
      this.rt = setTimeout(() => {
        this.safeFit();
        this.sendSize();
      }, 60);
    });
    this.ro.observe(box);
  }

  setNote(text) {
    this.note.textContent = text;
    this.note.hidden = !text;
  }

  safeFit() {
    try {
      if (this.root.offsetParent !== null) this.fit.fit();
    } catch {
      /* not visible yet */
    }
  }

  sendSize() {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || !this.term) return;
    const { cols, rows } = this.term;
    if (cols === this.lastCols && rows === this.lastRows) return;
    this.lastCols = cols;
    this.lastRows = rows;
    this.ws.send(JSON.stringify({ type: "resize", cols, rows }));
  }

  shown() {
    this.safeFit();
    this.sendSize();
    if (this.term) this.term.focus();
  }

  close() {
    this.closed = true;
    if (this.ro) this.ro.disconnect();
    if (this.ws) this.ws.close();
    if (this.term) this.term.dispose();
    if (window.__paTerm === this.term) window.__paTerm = null;
  }
}
