// The change journal, newest first: who labelled, renamed, deleted or clipped what, and when.

import { api } from "../api.js";
import { fmtTime, h } from "../dom.js";

function describe(c) {
  const d = c.detail ?? {};
  switch (c.action) {
    case "label.add":
    case "label.remove": {
      const what = d.keys ? `${d.keys.length} frames` : d.robot ? `${d.robot} ${d.from} – ${d.to}` : c.target;
      const n = c.action === "label.add" ? d.added : d.removed;
      return `${(d.labels ?? []).join(", ")} on ${what} (${n} changed)`;
    }
    case "label.rename":
      return `${d.from} → ${d.to}${d.merged ? " (merged)" : ""}`;
    case "label.delete":
      return `${d.name} (${d.frames} frames, ${d.clips} clips)`;
    default: {
      const clip = d.clip ?? d.after;
      return clip
        ? `${clip.name}: ${clip.robot} ${clip.from} – ${clip.to} [${(clip.labels ?? []).join(", ")}]`
        : c.target;
    }
  }
}

export async function changesView(root) {
  root.append(h("h1", {}, "History"));
  const { changes } = await api("/api/changes", { query: { order: "newest", limit: 200 } });
  if (changes.length === 0) {
    root.append(h("p.empty", {}, "No changes yet."));
    return;
  }
  root.append(
    h(
      "table.list",
      {},
      h("thead", {}, h("tr", {}, ["when (UTC)", "who", "action", "what"].map((t) => h("th", {}, t)))),
      h(
        "tbody",
        {},
        changes.map((c) =>
          h(
            "tr",
            {},
            h("td", {}, fmtTime(c.at_ms, { millis: false })),
            h("td", {}, c.author ?? "—"),
            h("td", {}, h("code", {}, c.action)),
            h("td", {}, describe(c)),
          )
        ),
      ),
    ),
  );
  if (changes.length === 200) {
    root.append(h("p.muted", {}, "The newest 200 changes; GET /api/changes pages through all of them."));
  }
}
