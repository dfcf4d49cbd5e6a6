// Every label with its counts; rename (or merge into another), delete, or look at its frames.

import { api } from "../api.js";
import { attempt, fmtCount, h, toast } from "../dom.js";
import { exportLink } from "../export.js";

export async function labelsView(root) {
  root.append(h("h1", {}, "Labels"));
  const { labels } = await api("/api/labels");
  if (labels.length === 0) {
    root.append(h("p.empty", {}, "No labels yet. Open a robot, pick frames and label them."));
    return;
  }
  const rerender = () => dispatchEvent(new HashChangeEvent("hashchange"));
  async function rename(from, input) {
    const to = input.value.trim();
    if (!to || to === from) return;
    try {
      await api("/api/labels/rename", { method: "POST", body: { from, to } });
    } catch (error) {
      if (error.status !== 409 || !confirm(`${to} exists already. Merge ${from} into ${to}?`)) {
        if (error.status !== 409) toast(error.message, "error");
        return;
      }
      if (
        !await attempt(() => api("/api/labels/rename", { method: "POST", body: { from, to, merge: true } }))
      ) return;
    }
    toast(`renamed ${from} to ${to}`);
    rerender();
  }
  async function remove(name) {
    if (!confirm(`Delete the label ${name} from every frame and clip?`)) return;
    const r = await attempt(() => api(`/api/labels/${encodeURIComponent(name)}`, { method: "DELETE" }));
    if (!r) return;
    toast(`deleted ${name} (${r.frames} frames, ${r.clips} clips)`);
    rerender();
  }
  root.append(
    h(
      "table.list",
      {},
      h("thead", {}, h("tr", {}, ["label", "frames", "clips", ""].map((t) => h("th", {}, t)))),
      h(
        "tbody",
        {},
        labels.map((l) => {
          const input = h("input", { value: l.name, size: 18, "aria-label": `new name for ${l.name}` });
          return h(
            "tr",
            {},
            h("td", {}, h("a", { href: `#/search?label=${encodeURIComponent(l.name)}` }, l.name)),
            h("td.num", {}, fmtCount(l.frames)),
            h("td.num", {}, fmtCount(l.clips)),
            h(
              "td",
              {},
              h(
                "div.actions",
                {},
                input,
                h("button.quiet", { type: "button", onclick: () => rename(l.name, input) }, "Rename"),
                h("button.danger", { type: "button", onclick: () => remove(l.name) }, "Delete"),
                exportLink({ label: l.name }, { text: "Export" }),
              ),
            ),
          );
        }),
      ),
    ),
  );
}
