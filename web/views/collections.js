// Collections: named, ordered groups of clips ("docking attempts, week 47"). Each is shown with its clips in its
// order: make one, rename it or change its note, add clips, move them, take them out, delete it, and export the
// whole collection as one dataset (GET /api/export?collection=ID, in the format picked beside the link).

import { api } from "../api.js";
import { attempt, fmtCount, fmtTime, h, labelChips, toast } from "../dom.js";
import { exportLink } from "../export.js";

/**
 * The formats a collection exports in, first the default. ImageFolder needs labels picked (a folder per label):
 * that is the search page's export.
 */
const FORMATS = [
  ["mp4", "MP4 video"],
  ["mcap", "MCAP (Foxglove, ROS)"],
  ["coco", "COCO"],
  ["yolo", "YOLO"],
  ["cvat", "CVAT"],
  ["label-studio", "Label Studio"],
];

const rerender = () => dispatchEvent(new HashChangeEvent("hashchange"));

/** PATCH a collection; toast `done` and re-render when it worked. */
async function patch(collection, body, done) {
  if (!await attempt(() => api(`/api/collections/${collection.id}`, { method: "PATCH", body }))) return;
  toast(done);
  rerender();
}

/**
 * A control for a clip's row on the Clips page: a select of the collections the clip is not in yet, and "new
 * collection…" (asks for a name). Picking one adds the clip at the end of it.
 */
export function addToCollection(clip, collections) {
  const others = collections.filter((c) => !c.clip_ids.includes(clip.id));
  const select = h(
    "select.add-to-collection",
    {
      "aria-label": `add ${clip.name} to a collection`,
      onchange: async () => {
        const value = select.value;
        select.value = "";
        if (value === "new") {
          const name = prompt(`A name for the new collection of ${clip.name}:`)?.trim();
          if (!name) return;
          const made = await attempt(() =>
            api("/api/collections", { method: "POST", body: { name, clip_ids: [clip.id] } })
          );
          if (made) {
            toast(`made collection ${made.name} with ${clip.name}`);
            rerender();
          }
        } else if (value) {
          const c = collections.find((x) => String(x.id) === value);
          await patch(c, { add_clip_ids: [clip.id] }, `added ${clip.name} to ${c.name}`);
        }
      },
    },
    h("option", { value: "" }, "add to collection…"),
    others.map((c) => h("option", { value: String(c.id) }, c.name)),
    h("option", { value: "new" }, "new collection…"),
  );
  return select;
}

export async function collectionsView(root) {
  root.append(h("h1", {}, "Collections"));
  const [{ collections }, { clips }] = await Promise.all([api("/api/collections"), api("/api/clips")]);
  const byId = new Map(clips.map((c) => [c.id, c]));

  const name = h("input", { name: "name", required: true, size: 30, "aria-label": "collection name" });
  const note = h("input", { name: "note", size: 40, "aria-label": "collection note" });
  root.append(
    h(
      "form#new-collection.inline.panel",
      {
        onsubmit: async (e) => {
          e.preventDefault();
          const body = { name: name.value.trim(), note: note.value.trim() };
          const made = await attempt(() => api("/api/collections", { method: "POST", body }));
          if (made) {
            toast(`made collection ${made.name}`);
            rerender();
          }
        },
      },
      h("label", {}, "New collection ", name),
      h("label", {}, " note ", note),
      h("button", { type: "submit" }, "Create"),
    ),
  );
  if (collections.length === 0) {
    root.append(
      h(
        "p.empty",
        {},
        "No collections yet. Name one above, then add clips to it here or from the Clips page.",
      ),
    );
    return;
  }
  for (const c of collections) root.append(collectionPanel(c, byId, clips));
}

/** One collection: its clips in order with their controls, adding clips, export, rename, delete. */
function collectionPanel(c, byId, clips) {
  // A clip deleted meanwhile has left the collection already; the list is the server's.
  const members = c.clip_ids.map((id) => byId.get(id)).filter(Boolean);
  const frames = members.reduce((n, m) => n + m.frames, 0);
  const move = (i, by) => {
    const ids = [...c.clip_ids];
    [ids[i], ids[i + by]] = [ids[i + by], ids[i]];
    return patch(c, { clip_ids: ids }, `moved ${byId.get(c.clip_ids[i])?.name ?? "the clip"} in ${c.name}`);
  };

  const rows = members.map((m, i) =>
    h(
      "tr",
      { dataset: { clip: String(m.id) } },
      h("td.num", {}, String(i + 1)),
      h(
        "td",
        {},
        h("a", {
          href: `#/robot/${encodeURIComponent(m.robot_id)}?from=${encodeURIComponent(m.from)}&to=${
            encodeURIComponent(m.to)
          }`,
        }, m.name),
      ),
      h("td", {}, m.robot_id),
      h("td", {}, `${fmtTime(m.from_ms)} – ${fmtTime(m.to_ms)}`),
      h("td.num", {}, fmtCount(m.frames)),
      h("td", {}, labelChips(m.labels)),
      h(
        "td",
        {},
        h(
          "div.actions",
          {},
          h("button.quiet", {
            type: "button",
            disabled: i === 0,
            title: "move up",
            "aria-label": `move ${m.name} up`,
            onclick: () => move(i, -1),
          }, "↑"),
          h("button.quiet", {
            type: "button",
            disabled: i === members.length - 1,
            title: "move down",
            "aria-label": `move ${m.name} down`,
            onclick: () => move(i, 1),
          }, "↓"),
          h("button.quiet", {
            type: "button",
            "aria-label": `take ${m.name} out of ${c.name}`,
            onclick: () => patch(c, { remove_clip_ids: [m.id] }, `took ${m.name} out of ${c.name}`),
          }, "Remove"),
        ),
      ),
    )
  );

  const pick = h(
    "select",
    { "aria-label": `clip to add to ${c.name}` },
    h("option", { value: "" }, "add a clip…"),
    clips.filter((x) => !c.clip_ids.includes(x.id)).map((x) =>
      h(
        "option",
        { value: String(x.id) },
        `${x.name} (${x.robot_id}, ${fmtTime(x.from_ms, { millis: false })})`,
      )
    ),
  );
  const adder = h(
    "form.inline.add-clip",
    {
      onsubmit: (e) => {
        e.preventDefault();
        const id = Number(pick.value);
        if (id) patch(c, { add_clip_ids: [id] }, `added ${byId.get(id)?.name} to ${c.name}`);
      },
    },
    pick,
    h("button.quiet", { type: "submit" }, "Add"),
  );

  // Export: the format picked rebuilds the link.
  const format = h(
    "select",
    { "aria-label": `export format of ${c.name}` },
    FORMATS.map(([value, text]) => h("option", { value }, text)),
  );
  const exportSlot = h("span.collection-export");
  const paintExport = () =>
    exportSlot.replaceChildren(
      exportLink({ collection: c.id, format: format.value }, { text: "Export", total: frames }),
    );
  format.addEventListener("change", paintExport);
  paintExport();

  const newName = h("input", { value: c.name, size: 30, "aria-label": `new name of ${c.name}` });
  const newNote = h("input", { value: c.note, size: 40, "aria-label": `note of ${c.name}` });
  const edit = h(
    "form.inline.rename",
    {
      onsubmit: (e) => {
        e.preventDefault();
        const body = { name: newName.value.trim(), note: newNote.value.trim() };
        if (body.name === c.name && body.note === c.note) return;
        patch(
          c,
          body,
          body.name === c.name ? `note of ${c.name} saved` : `renamed ${c.name} to ${body.name}`,
        );
      },
    },
    newName,
    newNote,
    h("button.quiet", { type: "submit" }, "Save"),
  );

  async function remove() {
    if (!confirm(`Delete the collection ${c.name}? Its clips stay.`)) return;
    if (await attempt(() => api(`/api/collections/${c.id}`, { method: "DELETE" }))) {
      toast(`deleted collection ${c.name}`);
      rerender();
    }
  }

  return h(
    "section.panel.collection",
    { dataset: { id: String(c.id) }, "aria-label": `collection ${c.name}` },
    h(
      "h2",
      {},
      c.name,
      h(
        "span.muted",
        {},
        ` · ${members.length} clip${members.length === 1 ? "" : "s"} · ${fmtCount(frames)} frames`,
      ),
    ),
    c.note ? h("p.note", {}, c.note) : null,
    members.length
      ? h(
        "table.list",
        {},
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ["#", "clip", "robot", "span (UTC)", "frames", "labels", ""].map((t) => h("th", {}, t)),
          ),
        ),
        h("tbody", {}, rows),
      )
      : h("p.empty", {}, "No clips in it yet."),
    h("div.actions", { style: { marginTop: "0.5rem" } }, adder, format, exportSlot),
    h(
      "div.actions",
      { style: { marginTop: "0.5rem" } },
      edit,
      h("button.danger", { type: "button", onclick: remove }, "Delete"),
    ),
  );
}
