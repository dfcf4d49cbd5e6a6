// The export link: a plain download (the browser streams the .tar to disk, however large), with a fresh export id
// in each click's URL, so the page can ask the server how that export ended (GET /api/exports/{id}) and say so
// next to the link. A download alone cannot tell: a tar cut short by a failing store, or one with frames listed
// in MISSING.txt, lands in the downloads folder looking like any other.
//
// MP4 and MCAP (format=mp4|mcap) download one file: the video (with a button for its frame list, the sidecar
// JSON, sidecar=true) or the log; clip=ID and collection=ID in the query export a clip or a collection.
//
// The link is only shown when the export can work: GET /api/export refuses a search with a label nobody has; an
// ImageFolder export (the default format) also one without a label, or with two labels whose folders would clash
// (they differ only in case); and an export of no frames fails ("no matching frame can be read"). Instead of the
// link the page then says why there is nothing to export.

import { api, qs } from "./api.js";
import { fmtCount, h } from "./dom.js";

const newId = () => crypto.randomUUID();

function describe(s) {
  const of = `${fmtCount(s.frames)} of ${fmtCount(s.total)} frames`;
  switch (s.state) {
    case "running":
      return `Exporting… ${of}`;
    case "complete":
      return s.format === "mp4" || s.format === "mcap"
        ? `Export complete: ${fmtCount(s.frames)} frames in the .${s.format}.`
        : `Export complete: ${fmtCount(s.frames)} frames, ${fmtCount(s.files)} files.`;
    case "incomplete":
      return `Export INCOMPLETE: ${fmtCount(s.missing)} of ${fmtCount(s.total)} frames are in no store and ` +
        (s.format === "mp4" || s.format === "mcap"
          ? `were left out (${s.missing_keys.slice(0, 3).join(", ")}…).`
          : `were left out; the .tar lists them in MISSING.txt.`);
    default:
      return `Export FAILED after ${of}: ${s.error}. The download is incomplete: do not use it.`;
  }
}

/** Why an export of `query` cannot work, or null. `total`: frames the search matches; `error`: its failure. */
export function exportProblem(query, total, error) {
  const labels = [query.label ?? []].flat().filter(Boolean);
  // Only ImageFolder writes a folder per label; the box formats take any search.
  const folders = (query.format || "imagefolder") === "imagefolder";
  if (folders && labels.length === 0) return "Pick a label to export a dataset.";
  if (error) return `Nothing to export: ${error.message}`;
  const seen = new Map();
  for (const label of folders ? labels : []) {
    const other = seen.get(label.toUpperCase());
    if (other !== undefined && other !== label) {
      return `Cannot export ${other} and ${label} together: they differ only in case, so their folders would be ` +
        "one on Windows and macOS. Export them one at a time.";
    }
    seen.set(label.toUpperCase(), label);
  }
  if (total === 0) return "Nothing to export: no frame matches.";
  return null;
}

/**
 * An "Export" link for `query` (label, all_labels, robot, from, to, tier: the search's filters) and the line that
 * reports the outcome of each click. Returns the element holding both, with `setMatches(total, error)`: the
 * link shows only once the search is known to match frames. Without `total` (undefined), the element asks the
 * server how many frames match by itself.
 */
export function exportLink(query, { id = undefined, text = undefined, total = undefined } = {}) {
  const status = h("span.export-status", { role: "status", "aria-live": "polite" });
  const media = query.format === "mp4" || query.format === "mcap";
  text ??= media ? `Export as .${query.format}` : "Export as .tar";
  const link = h("a.button", { href: `/api/export${qs(query)}`, download: "", hidden: true }, text);
  // The video's frame list (each frame's key, capture time and time in the video), a JSON file to save: a button
  // that opens its URL (an attachment, so the page stays), so the export keeps one link.
  const sidecar = query.format === "mp4"
    ? h("button.sidecar", {
      type: "button",
      hidden: true,
      title: "the video's frames: key, capture time, time in the video (JSON)",
      onclick: () => (location.href = `/api/export${qs({ ...query, sidecar: true })}`),
    }, "Frame list")
    : null;
  const note = h("span.export-note.muted");
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
  const el = h("span.export", {}, link, ...(sidecar ? [" ", sidecar] : []), note, " ", status);
  /** Shows the link when an export of `total` matching frames can work, else says why not. */
  el.setMatches = (matching, error = null) => {
    const problem = matching === null && !error ? "" : exportProblem(query, matching, error);
    link.hidden = problem !== null;
    if (sidecar) sidecar.hidden = link.hidden;
    note.textContent = problem ?? "";
  };
  if (total !== undefined) el.setMatches(total);
  else if (exportProblem(query, 1, null)) el.setMatches(1);
  else {
    el.setMatches(null);
    // The search's filters only: format and split are the export's own.
    const { format: _format, split: _split, fps: _fps, ...filters } = query;
    api("/api/frames", { query: { ...filters, limit: 1, count: true } }).then(
      (page) => el.setMatches(page.total ?? page.frames.length),
      (error) => el.setMatches(null, error),
    );
  }
  return el;
}
