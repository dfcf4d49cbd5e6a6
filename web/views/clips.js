// Every clip (a robot's time span with a name, labels and a note): look at its frames, edit its labels, delete it.

import { api } from "../api.js";
import { attempt, fmtCount, fmtTime, h, labelChips, toast } from "../dom.js";
import { addToCollection } from "./collections.js";
import { playHref } from "./player.js";

export async function clipsView(root) {
  root.append(h("h1", {}, "Clips"));
  const [{ clips }, { collections }] = await Promise.all([api("/api/clips"), api("/api/collections")]);
  if (clips.length === 0) {
    root.append(h("p.empty", {}, "No clips yet. In a robot's view, pick a span or frames and make a clip."));
    return;
  }
  const rerender = () => dispatchEvent(new HashChangeEvent("hashchange"));
  const patch = async (c, body, done) => {
    if (!await attempt(() => api(`/api/clips/${c.id}`, { method: "PATCH", body }))) return;
    toast(done);
    rerender();
  };
  async function remove(c) {
    if (!confirm(`Delete the clip ${c.name}? Its frames stay.`)) return;
    if (await attempt(() => api(`/api/clips/${c.id}`, { method: "DELETE" }))) {
      toast(`deleted clip ${c.name}`);
      rerender();
    }
  }
  root.append(
    h(
      "table.list",
      {},
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          ["clip", "robot", "span (UTC)", "frames", "labels", "note", ""].map((t) => h("th", {}, t)),
        ),
      ),
      h(
        "tbody",
        {},
        clips.map((c) => {
          const add = h("input", {
            placeholder: "add label",
            size: 12,
            "aria-label": `add a label to ${c.name}`,
          });
          const span = `?from=${encodeURIComponent(c.from)}&to=${encodeURIComponent(c.to)}`;
          return h(
            "tr",
            {},
            h("td", {}, h("a", { href: `#/robot/${encodeURIComponent(c.robot_id)}${span}` }, c.name)),
            h("td", {}, c.robot_id),
            h("td", {}, `${fmtTime(c.from_ms)} – ${fmtTime(c.to_ms)}`),
            h("td.num", {}, fmtCount(c.frames)),
            h(
              "td",
              {},
              labelChips(c.labels, {
                onRemove: (l) => patch(c, { remove_labels: [l] }, `label ${l} removed from clip ${c.name}`),
              }),
            ),
            h("td.note", {}, c.note),
            h(
              "td",
              {},
              h(
                "div.actions",
                {},
                h(
                  "form.inline",
                  {
                    onsubmit: (e) => {
                      e.preventDefault();
                      const label = add.value.trim();
                      if (label) patch(c, { add_labels: [label] }, `clip ${c.name} labelled ${label}`);
                    },
                  },
                  add,
                  h("button.quiet", { type: "submit" }, "Add"),
                ),
                h("button.quiet.play", {
                  type: "button",
                  title: `play the clip ${c.name}`,
                  onclick: () => (location.hash = playHref({ clip: c.id })),
                }, "Play"),
                addToCollection(c, collections),
                h("button.danger", { type: "button", onclick: () => remove(c) }, "Delete"),
              ),
            ),
          );
        }),
      ),
    ),
  );
}
