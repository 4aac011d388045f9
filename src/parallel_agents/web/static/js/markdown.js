// Markdown to safe HTML: marked parses, DOMPurify sanitizes. Loaded on first use.
let ready = null;
let marked = null;
let purify = null;

export function loadMarkdown() {
  if (!ready) {
    ready = Promise.all([
      import("/static/vendor/marked/marked.esm.js"),
      import("/static/vendor/dompurify/purify.es.mjs"),
    ]).then(([m, p]) => {
      marked = new m.Marked({ gfm: true, breaks: false, async: false });
      purify = p.default;
      purify.addHook("afterSanitizeAttributes", (node) => {
        if (node.tagName === "A") {
          node.setAttribute("target", "_blank");
          node.setAttribute("rel", "noopener noreferrer");
        }
      });
    });
  }
  return ready;
}

/** Render text as sanitized HTML into el. Falls back to plain text before the libraries load. */
export function renderMarkdown(el, text) {
  const src = String(text ?? "");
  if (!marked) {
    el.textContent = src;
    el.style.whiteSpace = "pre-wrap";
    loadMarkdown().then(() => renderMarkdown(el, src));
    return;
  }
  el.style.whiteSpace = "";
  const html = marked.parse(src);
  el.innerHTML = purify.sanitize(html, { USE_PROFILES: { html: true }, FORBID_TAGS: ["style", "form", "input", "button"] });
}
