// The label set: every label with its colour, hotkey and counts (frames, clips, boxes); create a class, change its
// colour or hotkey, rename it (or merge it into another), delete it, or look at its frames. Shows whether the set
// is fixed (labels.strict: only the classes listed here can be used).

import { api } from "../api.js";
import { attempt, fmtCount, h, toast } from "../dom.js";
import { exportLink } from "../export.js";
import { classColor, loadLabelSet, nameColor } from "../boxes.js";

const HOTKEYS = [1, 2, 3, 4, 5, 6, 7, 8, 9];

export async function labelsView(root) {
  root.append(h("h1", {}, "Labels"));
  const { labels, strict } = await api("/api/labels");
  loadLabelSet({ fresh: true }).catch(() => {}); // colours for the other views
  const rerender = () => dispatchEvent(new HashChangeEvent("hashchange"));

  /** POST /api/labels: creates the class or changes its colour or hotkey. */
  async function define(body, done) {
    const r = await attempt(() => api("/api/labels", { method: "POST", body }));
    if (!r) return false;
    toast(done);
    await loadLabelSet({ fresh: true }).catch(() => {});
    rerender();
    return true;
  }
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
  async function remove(l) {
    const what = `${l.frames} frames, ${l.clips} clips, ${l.boxes ?? 0} boxes`;
    if (!confirm(`Delete the label ${l.name} from every frame, clip and box (${what})?`)) return;
    const r = await attempt(() => api(`/api/labels/${encodeURIComponent(l.name)}`, { method: "DELETE" }));
    if (!r) return;
    toast(`deleted ${l.name} (${r.frames} frames, ${r.clips} clips)`);
    rerender();
  }
  const hotkeySelect = (value, props) =>
    h(
      "select",
      props,
      h("option", { value: "" }, "—"),
      HOTKEYS.map((k) => h("option", { value: String(k), selected: value === k }, String(k))),
    );

  // ---- create a class
  const newName = h("input#new-label-name", {
    placeholder: "new class",
    size: 18,
    "aria-label": "new class name",
    autocomplete: "off",
  });
  // Until a colour is picked, the class keeps the colour of its name (shown as the name is typed).
  let colorPicked = false;
  const newColor = h("input.color-input", {
    type: "color",
    value: nameColor(""),
    "aria-label": "new class colour",
    oninput: () => (colorPicked = true),
  });
  newName.addEventListener("input", () => {
    if (!colorPicked) newColor.value = nameColor(newName.value.trim());
  });
  const newHotkey = hotkeySelect(null, { "aria-label": "new class hotkey" });
  const createForm = h(
    "form.label-create.panel",
    {
      onsubmit: (e) => {
        e.preventDefault();
        const name = newName.value.trim();
        if (!name) return;
        define(
          {
            name,
            color: colorPicked ? newColor.value : null,
            hotkey: newHotkey.value ? Number(newHotkey.value) : null,
          },
          `created ${name}`,
        );
      },
    },
    h("strong", {}, "New class"),
    newName,
    h("label", {}, "colour ", newColor),
    h("label", {}, "key ", newHotkey),
    h("button#create-label", { type: "submit" }, "Create"),
  );

  root.append(
    h(
      "div.label-set-head",
      {},
      h(
        "span#strict-mode.strict-badge",
        { class: strict ? "on" : "", title: "labels.strict in the config" },
        strict
          ? "Fixed set (labels.strict = true): only these classes can be used; add one here first."
          : "Open set: a new name used anywhere becomes a label (labels.strict = false).",
      ),
    ),
    h("p.muted", {}, "Keys 1–9 pick a class on the frame page. Colours are those of the boxes."),
    createForm,
    importForm(),
  );
  if (labels.length === 0) {
    root.append(h("p.empty", {}, "No labels yet. Create a class above, or label frames in a robot's view."));
    return;
  }
  root.append(
    h(
      "table.list.label-set",
      {},
      h(
        "thead",
        {},
        h("tr", {}, ["label", "key", "frames", "clips", "boxes", ""].map((t) => h("th", {}, t))),
      ),
      h(
        "tbody",
        {},
        labels.map((l) => {
          const input = h("input", { value: l.name, size: 18, "aria-label": `new name for ${l.name}` });
          const color = h("input.color-input", {
            type: "color",
            value: l.color ?? classColor(l.name),
            title: l.color ? `colour ${l.color}` : "colour from the name (not set)",
            "aria-label": `colour of ${l.name}`,
            onchange: () => define({ name: l.name, color: color.value }, `${l.name}: colour ${color.value}`),
          });
          const hotkey = hotkeySelect(l.hotkey, {
            "aria-label": `hotkey of ${l.name}`,
            onchange: () =>
              define(
                { name: l.name, hotkey: hotkey.value ? Number(hotkey.value) : null },
                hotkey.value ? `${l.name}: key ${hotkey.value}` : `${l.name}: no key`,
              ).then((done) => {
                if (!done) hotkey.value = l.hotkey === null ? "" : String(l.hotkey);
              }),
          });
          return h(
            "tr",
            { dataset: { label: l.name } },
            // The name's cell holds only the name as text (the swatch is an input).
            h(
              "td",
              {},
              h(
                "span.label-cell",
                {},
                color,
                h("a", { href: `#/search?label=${encodeURIComponent(l.name)}` }, l.name),
              ),
            ),
            h("td", {}, hotkey),
            h("td.num", {}, fmtCount(l.frames)),
            h("td.num", {}, fmtCount(l.clips)),
            h("td.num", {}, fmtCount(l.boxes ?? 0)),
            h(
              "td",
              {},
              h(
                "div.actions",
                {},
                input,
                h("button.quiet", { type: "button", onclick: () => rename(l.name, input) }, "Rename"),
                h("button.danger", { type: "button", onclick: () => remove(l) }, "Delete"),
                exportLink({ label: l.name }, { text: "Export" }),
              ),
            ),
          );
        }),
      ),
    ),
  );
}

/** Import formats of POST /api/import (src/library/import/). */
const IMPORT_FORMATS = [
  ["coco", "COCO (instances_*.json)"],
  ["yolo", "YOLO (labels/*.txt + data.yaml or classes.txt)"],
  ["cvat", "CVAT for images 1.1 (*.xml)"],
  ["label-studio", "Label Studio (JSON export)"],
];

/**
 * Labels made in another tool, back onto the frames: the dataset's files (or a folder of them) are read in the
 * browser and sent as text to POST /api/import, which matches them to frames and says what changed. "Only
 * count" asks for the plan without writing (dry_run).
 */
function importForm() {
  const format = h(
    "select",
    { name: "format", "aria-label": "import format" },
    IMPORT_FORMATS.map(([v, text]) => h("option", { value: v }, text)),
  );
  const files = h("input", { type: "file", multiple: true, "aria-label": "dataset files" });
  const folder = h("input", { type: "file", webkitdirectory: true, "aria-label": "dataset folder" });
  const dry = h("input", { type: "checkbox", name: "dry_run" });
  const result = h("p.import-result", { role: "status", "aria-live": "polite" });
  const form = h(
    "form#import-form.panel",
    {
      onsubmit: (e) => {
        e.preventDefault();
        (async () => {
          const chosen = [...files.files, ...folder.files].filter((f) => !/(^|\/)\./.test(f.name));
          if (chosen.length === 0) {
            result.textContent = "Pick the dataset's files (or its folder) first.";
            return;
          }
          result.textContent = `Reading ${fmtCount(chosen.length)} files…`;
          const sent = await Promise.all(
            chosen.map(async (f) => ({ name: f.webkitRelativePath || f.name, text: await f.text() })),
          );
          result.textContent = `Importing ${fmtCount(sent.length)} files…`;
          const r = await api("/api/import", {
            method: "POST",
            body: { format: format.value, files: sent, dry_run: dry.checked },
          });
          const what = `${fmtCount(r.frames)} of ${fmtCount(r.images)} images matched frames: ` +
            `${fmtCount(r.added)} boxes added, ${fmtCount(r.updated)} moved, ${
              fmtCount(r.deleted)
            } deleted, ` +
            `${fmtCount(r.accepted)} pre-labels accepted, ${fmtCount(r.unchanged)} unchanged, ` +
            `${fmtCount(r.labels)} frame labels added` +
            (r.skipped.length
              ? `; ${fmtCount(r.skipped.length)} skipped (first: ${r.skipped[0].ref}: ` +
                `${r.skipped[0].reason})`
              : "");
          result.textContent = r.dry_run
            ? `Would change: ${what}. Nothing was written.`
            : `Imported: ${what}.`;
          toast(r.dry_run ? "Import counted (nothing written)." : "Import done.");
        })().catch((error) => {
          result.textContent = `Import refused: ${error.message}`;
          toast(result.textContent, "error");
        });
      },
    },
    h("strong", {}, "Import labels"),
    h("label", {}, "format ", format),
    h("label", {}, "files ", files),
    h("label", {}, "or a folder ", folder),
    h("label.check", {}, dry, " only count"),
    h("button#import-labels", { type: "submit" }, "Import"),
    result,
  );
  return form;
}
