(() => {
  // Arrival: each SSE message the page gets, stamped when the browser dispatches it to
  // the dashboard's listener (before any of the dashboard's own code runs).
  const rx = (window.__rx = {});
  const wrap = (fn) => function (m) {
    const at = Date.now();
    try {
      const d = JSON.parse(m.data);
      const t = d && d.payload && d.payload.text;
      if (typeof t === "string" && t.startsWith("bench-")) { const w = t.split(" "); rx[w[0]] = [at, d.ts * 1000, Number(w[1]) || null]; }
    } catch {}
    return fn.apply(this, arguments);
  };
  const add = EventSource.prototype.addEventListener;
  EventSource.prototype.addEventListener = function (type, fn, opts) {
    return add.call(this, type, typeof fn === "function" ? wrap(fn) : fn, opts);
  };
  const desc = Object.getOwnPropertyDescriptor(EventSource.prototype, "onmessage");
  Object.defineProperty(EventSource.prototype, "onmessage", {
    set(fn) { desc.set.call(this, typeof fn === "function" ? wrap(fn) : fn); },
    get() { return desc.get.call(this); },
    configurable: true,
  });
  // Shown: a marker's text is in the open conversation's DOM and inside its visible box;
  // stamped at the next animation frame, i.e. once the frame that drew it was painted.
  const shown = (window.__shown = {});
  const seen = new Set();
  let pending = [];
  // In view: the text's box meets the box of every clipping ancestor (the output block,
  // the conversation, the page) and the window.
  const inView = (node) => {
    if (!node.isConnected) return false;
    const r = document.createRange();
    r.selectNodeContents(node);
    const a = r.getBoundingClientRect();
    if (!(a.height > 0) || a.bottom <= 0 || a.top >= innerHeight) return false;
    for (let el = node.nodeType === 3 ? node.parentElement : node; el; el = el.parentElement) {
      if (getComputedStyle(el).overflowY === "visible") continue;
      const b = el.getBoundingClientRect();
      if (a.bottom <= b.top || a.top >= b.bottom) return false;
    }
    return true;
  };
  const frame = () => {
    const now = Date.now();
    const later = [];
    for (const [k, n] of pending) {
      if (inView(n)) shown[k] = now;
      else if (n.isConnected) later.push([k, n]);
      else seen.delete(k);
    }
    pending = later;
    if (pending.length) requestAnimationFrame(frame);
  };
  new MutationObserver((muts) => {
    const had = pending.length;
    for (const m of muts) {
      const nodes = m.type === "characterData" ? [m.target] : m.addedNodes;
      for (const n of nodes) {
        const el = n.nodeType === 3 ? n.parentElement : n;
        if (!el || !el.closest || !el.closest(".convo")) continue;
        const text = n.nodeType === 3 ? n.data : n.textContent || "";
        if (!text.includes("bench-")) continue;
        for (const x of text.matchAll(/bench-[\w-]+/g)) {
          if (!seen.has(x[0])) {
            seen.add(x[0]);
            pending.push([x[0], n]);
          }
        }
      }
    }
    if (!had && pending.length) requestAnimationFrame(frame);
  }).observe(document, { childList: true, subtree: true, characterData: true });
})();
