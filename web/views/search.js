// Search by label, robot, time and tier; the results load as you scroll, can be selected and labelled like a
// robot's gallery (the action bar), and the export link downloads them as a .tar (the same frames: the export
// takes every filter of the search) and reports how the export ended. Also, above the results so that an endless
// gallery never pushes it out of reach: find the frames that look like an uploaded photo.

import { api } from "../api.js";
import { exportLink } from "../export.js";
import { attempt, clear, fmtCount, h } from "../dom.js";
import { Gallery } from "../gallery.js";
import { actionBar, similarResults } from "../actions.js";
import { frameHref } from "./frame.js";
import { playHref } from "./player.js";

/** Dataset formats of GET /api/export (src/library/formats/). */
const EXPORT_FORMATS = [
  ["imagefolder", "ImageFolder"],
  ["coco", "COCO"],
  ["yolo", "YOLO (Ultralytics)"],
  ["cvat", "CVAT 1.1"],
  ["label-studio", "Label Studio"],
  ["mp4", "MP4 video"],
  ["mcap", "MCAP (Foxglove, ROS)"],
];

export async function searchView(root, { params, restore }) {
  const [{ labels }, { robots }] = await Promise.all([api("/api/labels"), api("/api/robots")]);
  const chosen = new Set(params.getAll("label"));
  const labelBoxes = labels.map((l) =>
    h(
      "label.check",
      {},
      h("input", { type: "checkbox", name: "label", value: l.name, checked: chosen.has(l.name) }),
      ` ${l.name} `,
      h(
        "span.muted",
        {},
        String(l.frames + (l.clips ? ` + ${l.clips} clip${l.clips === 1 ? "" : "s"}` : "")),
      ),
    )
  );
  const field = (name, placeholder) =>
    h("input", { name, placeholder, value: params.get(name) ?? "", size: 22, "aria-label": name });
  const form = h(
    "form.search-form.panel",
    { onsubmit: (e) => (e.preventDefault(), submit()) },
    h(
      "fieldset",
      {},
      h("legend", {}, "Labels"),
      labelBoxes.length ? labelBoxes : h("span.muted", {}, "No labels yet: label frames in a robot's view."),
      labelBoxes.length > 1
        ? h(
          "label.check",
          {},
          h("input", { type: "checkbox", name: "all_labels", checked: params.get("all_labels") === "true" }),
          " all of them",
        )
        : null,
    ),
    h(
      "div.row",
      {},
      h(
        "label",
        {},
        "Robot ",
        h(
          "select",
          { name: "robot" },
          h("option", { value: "" }, "any"),
          robots.map((r) =>
            h("option", { value: r.robot_id, selected: params.get("robot") === r.robot_id }, r.robot_id)
          ),
        ),
      ),
      h("label", {}, "From ", field("from", "2026-02-18 or 2026-02-18T09:00Z")),
      h("label", {}, "To ", field("to", "inclusive")),
      h(
        "label",
        {},
        "Tier ",
        h(
          "select",
          { name: "tier" },
          ["", "local", "archiving", "archive"].map((t) =>
            h("option", { value: t, selected: (params.get("tier") ?? "") === t }, t || "any")
          ),
        ),
      ),
      h(
        "label",
        {},
        "Status ",
        h(
          "select",
          { name: "status" },
          [
            ["", "any"],
            ["unlabelled", "unlabelled"],
            ["labelled", "labelled, to review"],
            ["reviewed", "reviewed"],
            ["rejected", "rejected"],
          ].map(([v, text]) => h("option", { value: v, selected: (params.get("status") ?? "") === v }, text)),
        ),
      ),
      h(
        "label.check",
        {},
        h("input", { type: "checkbox", name: "nolabel", checked: params.get("nolabel") === "true" }),
        " no label",
      ),
      h(
        "label",
        {},
        "Order ",
        h(
          "select",
          { name: "order" },
          ["newest", "oldest"].map((o) => h("option", { value: o, selected: params.get("order") === o }, o)),
        ),
      ),
      h("button", { type: "submit" }, "Search"),
    ),
  );

  const query = {
    label: [...chosen],
    all_labels: params.get("all_labels") === "true",
    robot: params.get("robot") ?? "",
    from: params.get("from") ?? "",
    to: params.get("to") ?? "",
    tier: params.get("tier") ?? "",
    status: params.get("status") ?? "",
    nolabel: params.get("nolabel") === "true",
    order: params.get("order") ?? "",
  };
  // Everything the search filters on (not its order): the export holds exactly the frames found. The export
  // does not take "no label": with it the link steps aside rather than export other frames.
  const { order: _order, nolabel: _nolabel, ...exportQuery } = query;
  // The dataset's format and split (GET /api/export?format=&split=); the link is made again when they change.
  const format = h(
    "select",
    { name: "format", "aria-label": "export format", onchange: () => renewExport() },
    EXPORT_FORMATS.map(([v, text]) => h("option", { value: v }, text)),
  );
  const split = h("input", {
    name: "split",
    placeholder: "split, e.g. train=0.8,val=0.2",
    size: 24,
    "aria-label": "export split",
    onchange: () => renewExport(),
  });
  let matches = null;
  const makeExport = () =>
    query.nolabel
      ? h("span.muted#export-link", {}, 'Export does not filter by "no label": clear it to export.')
      : exportLink(
        {
          ...exportQuery,
          format: format.value === "imagefolder" ? "" : format.value,
          split: split.value.trim(),
        },
        { id: "export-link", total: matches ?? undefined },
      );
  let exportEl = makeExport();
  function renewExport() {
    const next = makeExport();
    exportEl.replaceWith(next);
    exportEl = next;
  }
  const summary = h("span.muted");
  let bar = null;
  const gallery = new Gallery({
    query,
    // The frame page gets the search along, so `n` walks this search (to label; to review with status=labelled).
    onOpen: (hit) => (location.hash = frameHref(hit.key, query)),
    onSelection: () => bar?.paint(),
    emptyText: "No frames match.",
    showRobot: true,
    label: "search results",
    atLeast: restore?.tiles ?? 0,
    selectedKeys: restore?.selected ?? [],
    onPage: (g) => {
      if (!g.error) summary.textContent = `${fmtCount(g.total ?? g.hits.length)} frames match`;
      if (!g.error) matches = g.total ?? g.hits.length;
      exportEl.setMatches?.(g.total ?? g.hits.length, g.error);
      bar?.paint();
    },
  });
  bar = actionBar(gallery, { onSpanChanged: () => gallery.reset(query) });
  const upload = similarUpload();
  root.append(
    h("h1", {}, "Search"),
    form,
    upload,
    h(
      "div.view-head",
      {},
      h("h2", {}, "Frames"),
      summary,
      // The frames found, oldest first, at their capture times.
      h("button#play-search.quiet", {
        type: "button",
        title: "play the frames found at their capture times",
        onclick: () => (location.hash = playHref({ ...exportQuery, nolabel: query.nolabel })),
      }, "Play"),
      format,
      split,
      exportEl,
    ),
    gallery.el,
    bar.el,
  );

  function submit() {
    const data = new FormData(form);
    const q = new URLSearchParams();
    for (const l of data.getAll("label")) q.append("label", l);
    if (data.get("all_labels")) q.set("all_labels", "true");
    if (data.get("nolabel")) q.set("nolabel", "true");
    for (const name of ["robot", "from", "to", "tier", "status", "order"]) {
      const v = String(data.get(name) ?? "").trim();
      if (v && !(name === "order" && v === "newest")) q.set(name, v);
    }
    location.hash = `#/search?${q}`;
  }
  await gallery.ready;
  return () => gallery.destroy();
}

function similarUpload() {
  const results = h("div.similar-slot");
  const robot = h("input", { placeholder: "robot (optional)", size: 16, "aria-label": "robot" });
  const file = h("input", {
    type: "file",
    accept: "image/jpeg",
    "aria-label": "a JPEG photo",
    onchange: async () => {
      const jpeg = file.files?.[0];
      if (!jpeg) return;
      clear(results, h("p.muted", {}, "Looking…"));
      const data = await attempt(() =>
        api("/api/similar", { method: "POST", body: jpeg, query: { k: 12, robot: robot.value.trim() } })
      );
      if (!data) return clear(results);
      clear(results, similarResults(data.frames, { label: "frames like the photo" }).el);
    },
  });
  return h(
    "section.similar-box.panel",
    { "aria-label": "find frames like a photo" },
    h("h2", {}, "Looks like a photo"),
    h(
      "p.muted",
      {},
      "Upload a JPEG: it is hashed by the consumer's own filter and the nearest frames are shown.",
    ),
    h("div.row", {}, file, robot),
    results,
  );
}
