// The change journal, newest first: who labelled, renamed, deleted or clipped what, and when.

import { api } from "../api.js";
import { attempt, fmtTime, h, toast } from "../dom.js";

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
    case "label.define": {
      const a = d.after ?? {};
      return `${d.name}: colour ${a.color ?? "from the name"}, key ${a.hotkey ?? "none"}${
        d.created ? " (new)" : ""
      }`;
    }
    case "box.add":
    case "box.delete":
    case "box.update": {
      const boxes = d.boxes ?? d.after ?? [];
      const classes = [...new Set(boxes.map((b) => b.label))].join(", ");
      return `${boxes.length} box${boxes.length === 1 ? "" : "es"} (${classes}) on ${c.target}`;
    }
    case "review.set":
      return `${d.status ?? "review cleared"} on ${Object.keys(d.before ?? {}).length} frame(s)`;
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
  // Entries undone by a later entry (its detail names them with undoOf).
  const undoneBy = new Map(changes.filter((c) => c.detail?.undoOf).map((c) => [c.detail.undoOf, c.id]));
  async function undo(c) {
    const r = await attempt(() => api(`/api/changes/${c.id}/undo`, { method: "POST", body: {} }));
    if (!r) return;
    toast(`undid #${c.id} (${c.action})`);
    dispatchEvent(new HashChangeEvent("hashchange"));
  }
  if (changes.length === 0) {
    root.append(h("p.empty", {}, "No changes yet."));
    return;
  }
  root.append(
    h(
      "table.list",
      {},
      h("thead", {}, h("tr", {}, ["when (UTC)", "who", "action", "what", ""].map((t) => h("th", {}, t)))),
      h(
        "tbody",
        {},
        changes.map((c) =>
          h(
            "tr",
            { class: undoneBy.has(c.id) ? "undone" : null, dataset: { id: String(c.id) } },
            h("td", {}, fmtTime(c.at_ms, { millis: false })),
            h("td", {}, c.author ?? "—"),
            h("td", {}, h("code", {}, c.action)),
            h("td", {}, describe(c), c.detail?.undoOf ? ` (undo of #${c.detail.undoOf})` : ""),
            h(
              "td",
              {},
              undoneBy.has(c.id)
                ? h("span.undone-note", {}, `undone by #${undoneBy.get(c.id)}`)
                : h("button.quiet.undo", {
                  type: "button",
                  title: `undo #${c.id}`,
                  onclick: () => undo(c),
                }, "Undo"),
            ),
          )
        ),
      ),
    ),
  );
  if (changes.length === 200) {
    root.append(h("p.muted", {}, "The newest 200 changes; GET /api/changes pages through all of them."));
  }
}
