// The export link: a plain download (the browser streams the .tar to disk, however large), with a fresh export id
// in each click's URL, so the page can ask the server how that export ended (GET /api/exports/{id}) and say so
// next to the link. A download alone cannot tell: a tar cut short by a failing store, or one with frames listed
// in MISSING.txt, lands in the downloads folder looking like any other.

import { api, qs } from "./api.js";
import { fmtCount, h } from "./dom.js";

const newId = () => crypto.randomUUID();

function describe(s) {
  const of = `${fmtCount(s.frames)} of ${fmtCount(s.total)} frames`;
  switch (s.state) {
    case "running":
      return `Exporting… ${of}`;
    case "complete":
      return `Export complete: ${fmtCount(s.frames)} frames, ${fmtCount(s.files)} files.`;
    case "incomplete":
      return `Export INCOMPLETE: ${fmtCount(s.missing)} of ${fmtCount(s.total)} frames are in no store and ` +
        `were left out; the .tar lists them in MISSING.txt.`;
    default:
      return `Export FAILED after ${of}: ${s.error}. The download is incomplete: do not use it.`;
  }
}

/**
 * An "Export" link for `query` (label, all_labels, robot, from, to, tier: the search's filters) and the line that
 * reports the outcome of each click. Returns the element holding both.
 */
export function exportLink(query, { id = undefined, text = "Export as .tar", hidden = false } = {}) {
  const status = h("span.export-status", { role: "status", "aria-live": "polite" });
  const link = h("a.button", { href: `/api/export${qs(query)}`, download: "", hidden }, text);
  if (id) link.id = id;
  let polling = 0;
  link.addEventListener("click", () => {
    // A new id per click, set before the browser follows the link.
    const exportId = newId();
    link.href = `/api/export${qs({ ...query, export_id: exportId })}`;
    const run = ++polling;
    status.dataset.state = "running";
    status.className = "export-status";
    status.textContent = "Exporting…";
    const started = Date.now();
    const poll = async () => {
      if (run !== polling) return; // a newer click took over
      let s = null;
      try {
        s = await api(`/api/exports/${encodeURIComponent(exportId)}`);
      } catch (error) {
        // 404: the download request has not reached the server yet; keep asking for a while.
        if (error.status !== 404 || Date.now() - started > 60_000) {
          status.textContent = `Cannot tell how the export went: ${error.message}`;
          status.dataset.state = "unknown";
          return;
        }
      }
      if (s) {
        status.dataset.state = s.state;
        status.textContent = describe(s);
        status.className = `export-status ${s.state}`;
        if (s.state !== "running") return;
      }
      setTimeout(poll, 500);
    };
    setTimeout(poll, 300);
  });
  return h("span.export", {}, link, " ", status);
}
