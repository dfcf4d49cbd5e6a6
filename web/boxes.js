// Boxes on frames. The box editor is an SVG layer over the frame image whose viewBox is the image's own pixel
// grid, so a box stays on its pixels at any zoom or window size and a mouse position maps to pixels with one
// division. Boxes are drawn, moved and resized with the mouse or the keyboard and saved through the API. Also:
// the label set's colours (a class's own colour, else a stable one from its name) and boxes on gallery thumbnails.

import { api, author, frameUrl } from "./api.js";
import { h, toast } from "./dom.js";

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element (h() makes HTML elements, which an <svg> does not draw). */
function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value !== undefined && value !== null && value !== false) el.setAttribute(name, String(value));
  }
  for (const child of children.flat(Infinity)) if (child !== null && child !== undefined) el.append(child);
  return el;
}

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

// ---------------------------------------------------------------------------------------------- the label set

let labelSet = null;
/** The last label set loaded: name -> {name, color, hotkey, frames, clips, boxes}. */
let known = new Map();

/**
 * The label set (GET /api/labels) as {labels: Map, strict}; loaded once and shared by the views, `fresh` asks
 * again (after a change).
 */
export function loadLabelSet({ fresh = false } = {}) {
  if (!labelSet || fresh) {
    labelSet = api("/api/labels").then((data) => {
      known = new Map(data.labels.map((l) => [l.name, l]));
      return { labels: known, strict: data.strict === true };
    });
    labelSet.catch(() => (labelSet = null));
  }
  return labelSet;
}

/** The class (1–9) of a hotkey in the last label set loaded; null when no class has it. */
export function classOfHotkey(digit) {
  for (const l of known.values()) if (l.hotkey === digit) return l.name;
  return null;
}

function hex2(n) {
  return Math.round(n * 255).toString(16).padStart(2, "0");
}

/** A colour from the name alone: the same name gets the same colour in every browser and session. */
export function nameColor(name) {
  let hash = 0x811c9dc5;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193);
  hash >>>= 0;
  // Hue from the hash; saturation and lightness fixed so every class reads on both dark and light images.
  const hue = hash % 360, sat = 0.75, light = 0.48;
  const a = sat * Math.min(light, 1 - light);
  const f = (n) => {
    const k = (n + hue / 30) % 12;
    return light - a * Math.max(-1, Math.min(k - 3, 9 - k, 1));
  };
  return `#${hex2(f(0))}${hex2(f(8))}${hex2(f(4))}`;
}

/** The colour a class is drawn in: its colour in the label set, else the one from its name. */
export function classColor(name) {
  return known.get(name)?.color ?? nameColor(name);
}

// ------------------------------------------------------------------------------------------------- geometry

/** A box's rectangle in pixels of its frame, whatever unit it is stored in. */
export function pxRect(box) {
  if (box.unit === "norm") {
    return {
      x: box.x * box.image_width,
      y: box.y * box.image_height,
      w: box.w * box.image_width,
      h: box.h * box.image_height,
    };
  }
  return { x: box.x, y: box.y, w: box.w, h: box.h };
}

/** Writes a pixel rectangle back into the box in the box's own unit (a normalised box stays normalised). */
function setPxRect(box, r) {
  if (box.unit === "norm") {
    box.x = r.x / box.image_width;
    box.y = r.y / box.image_height;
    box.w = r.w / box.image_width;
    box.h = r.h / box.image_height;
  } else Object.assign(box, { x: r.x, y: r.y, w: r.w, h: r.h });
}

/** The text on a box's tag: its class, and a pre-label's confidence. */
function tagText(box) {
  return box.confidence === null || box.confidence === undefined
    ? box.label
    : `${box.label} ${box.confidence.toFixed(2)}`;
}

// --------------------------------------------------------------------------------------------- thumbnails

/**
 * The boxes of a search hit as an SVG to lay over its thumbnail (null when it has none). The viewBox is the
 * frame's pixel grid and `slice` crops it as `object-fit: cover` crops the thumbnail, so the rectangles sit where
 * the boxes are.
 */
export function thumbBoxes(hit) {
  const boxes = hit.boxes ?? [];
  if (boxes.length === 0) return null;
  const { image_width: w, image_height: ht } = boxes[0];
  const svg = s("svg", {
    class: "thumb-boxes",
    viewBox: `0 0 ${w} ${ht}`,
    preserveAspectRatio: "xMidYMid slice",
    "aria-hidden": "true",
  });
  for (const box of boxes) {
    const r = pxRect(box);
    svg.append(s("rect", {
      x: r.x,
      y: r.y,
      width: r.w,
      height: r.h,
      class: box.accepted ? "" : "pre",
      stroke: classColor(box.label),
      "data-label": box.label,
      "vector-effect": "non-scaling-stroke",
    }));
  }
  // Colours of the label set once it is known (the first gallery page may come before it).
  if (labelSet === null) {
    loadLabelSet().then(() => {
      for (const rect of svg.querySelectorAll("rect")) {
        rect.setAttribute("stroke", classColor(rect.dataset.label));
      }
    }).catch(() => {});
  }
  return svg;
}

// ------------------------------------------------------------------------------------------------ the editor

/** The smallest box a drag makes (pixels of the frame); a shorter drag is a click. */
const MIN_DRAG = 3;
const MAX_ZOOM = 8;

/**
 * The frame image with its boxes. `el` goes into the page; the owner (the frame view) forwards keys to its
 * methods. Every change is saved at once (mouse) or shortly after the last key of a run (keyboard: one journal
 * entry for a run of arrow presses); `flush()` saves what is left before the page changes.
 */
export class BoxEditor {
  /**
   * @param {object} o
   * @param {string} o.frameKey
   * @param {object[]} o.boxes  the frame's boxes (Box JSON)
   * @param {string} o.alt  the image's alt text
   * @param {() => void} [o.onChange]  after boxes or the selection changed (the side list repaints)
   * @param {() => void} [o.onNeedClass]  a box was drawn while no class is picked
   */
  constructor({ frameKey, boxes, alt, onChange = () => {}, onNeedClass = () => {} }) {
    this.key = frameKey;
    this.boxes = boxes.map((b) => ({ ...b, version: 0 }));
    this.onChange = onChange;
    this.onNeedClass = onNeedClass;
    this.selected = null;
    this.className = "";
    this.zoom = 1;
    this.draft = null;
    this.drag = null;
    this.timers = new Map();
    this.chains = new Map();
    /** Boxes being created (flush waits for them too). */
    this.creating = new Set();
    this.width = boxes[0]?.image_width ?? 0;
    this.height = boxes[0]?.image_height ?? 0;
    this.img = h("img#frame-image", { src: frameUrl(frameKey, "image"), alt, draggable: false });
    this.svg = s("svg", { class: "box-layer", "aria-label": "boxes; drag to draw one", role: "img" });
    this.canvas = h("div.box-canvas", {}, this.img, this.svg);
    this.el = h("div.box-viewport", {}, this.canvas);
    this.img.addEventListener("load", () => {
      // The stored JPEG's own size (the API's boxes are in its pixels; EXIF rotation is not applied, see CSS).
      this.width = this.img.naturalWidth;
      this.height = this.img.naturalHeight;
      this.layout();
    });
    this.svg.addEventListener("pointerdown", (e) => this.#down(e));
    this.svg.addEventListener("pointermove", (e) => this.#move(e));
    this.svg.addEventListener("pointerup", (e) => this.#up(e));
    this.svg.addEventListener("pointercancel", () => {
      this.drag = null;
      this.draft = null;
      this.paint();
    });
    this.el.addEventListener("wheel", (e) => {
      if (!e.ctrlKey) return;
      e.preventDefault(); // the browser's own page zoom
      this.setZoom(this.zoom * (e.deltaY < 0 ? 1.25 : 0.8), { x: e.clientX, y: e.clientY });
    }, { passive: false });
    this.resizer = new ResizeObserver(() => this.layout());
    this.resizer.observe(this.el);
  }

  get selectedBox() {
    return this.boxes.find((b) => b.id === this.selected) ?? null;
  }

  /** Image pixels per CSS pixel at the current zoom. */
  scale() {
    const width = this.svg.getBoundingClientRect().width;
    return width > 0 && this.width > 0 ? this.width / width : 1;
  }

  /** Sizes the image to fit the box (zoom 1) times the zoom, and repaints. */
  layout() {
    if (!this.width || !this.height) return;
    const room = this.el.clientWidth;
    if (room === 0) return;
    const maxHeight = Math.max(240, innerHeight - 180);
    const fit = Math.min(room, (maxHeight * this.width) / this.height);
    const width = Math.floor(fit * this.zoom);
    this.canvas.style.width = `${width}px`;
    this.canvas.style.height = `${(width * this.height) / this.width}px`;
    this.el.style.maxHeight = `${maxHeight + 2}px`;
    this.svg.setAttribute("viewBox", `0 0 ${this.width} ${this.height}`);
    this.el.dataset.zoom = String(this.zoom);
    this.paint();
  }

  /** Zooms to `zoom` (1 = the whole image fits), keeping the image point under `anchor` (a client point) still. */
  setZoom(zoom, anchor) {
    const next = clamp(Math.round(zoom * 1000) / 1000, 1, MAX_ZOOM);
    if (next === this.zoom) return;
    const box = this.el.getBoundingClientRect();
    const at = anchor ?? { x: box.left + box.width / 2, y: box.top + box.height / 2 };
    const before = this.svg.getBoundingClientRect();
    const fx = (at.x - before.left) / before.width, fy = (at.y - before.top) / before.height;
    this.zoom = next;
    this.layout();
    const after = this.svg.getBoundingClientRect();
    this.el.scrollLeft += after.left + fx * after.width - at.x;
    this.el.scrollTop += after.top + fy * after.height - at.y;
    this.onChange();
  }

  zoomIn() {
    this.setZoom(this.zoom * 1.25);
  }

  zoomOut() {
    this.setZoom(this.zoom / 1.25);
  }

  zoomReset() {
    this.setZoom(1);
  }

  /** The image pixel under a pointer event, inside the image. */
  #point(e) {
    const r = this.svg.getBoundingClientRect();
    return {
      x: clamp(((e.clientX - r.left) * this.width) / r.width, 0, this.width),
      y: clamp(((e.clientY - r.top) * this.height) / r.height, 0, this.height),
    };
  }

  #down(e) {
    if (e.button !== 0 || !this.width) return;
    e.preventDefault();
    document.activeElement?.blur?.(); // keys go to the page (not to a label box left focused)
    const p = this.#point(e);
    const handle = e.target.closest?.("[data-handle]");
    const g = e.target.closest?.("g.box");
    if (handle && this.selectedBox) {
      this.drag = { mode: "resize", corner: handle.dataset.handle, start: pxRect(this.selectedBox), p0: p };
    } else if (g) {
      this.select(Number(g.dataset.id));
      this.drag = { mode: "move", start: pxRect(this.selectedBox), p0: p };
    } else {
      this.select(null);
      this.draft = null;
      this.drag = { mode: "draw", p0: p };
    }
    this.svg.setPointerCapture(e.pointerId);
  }

  #move(e) {
    const drag = this.drag;
    if (!drag) return;
    const p = this.#point(e);
    if (drag.mode === "draw") {
      const x0 = Math.round(drag.p0.x), y0 = Math.round(drag.p0.y);
      const x1 = Math.round(p.x), y1 = Math.round(p.y);
      this.draft = { x: Math.min(x0, x1), y: Math.min(y0, y1), w: Math.abs(x1 - x0), h: Math.abs(y1 - y0) };
      this.paint();
      return;
    }
    const box = this.selectedBox;
    if (!box) return;
    const r = { ...drag.start };
    if (drag.mode === "move") {
      r.x = clamp(drag.start.x + Math.round(p.x - drag.p0.x), 0, this.width - r.w);
      r.y = clamp(drag.start.y + Math.round(p.y - drag.p0.y), 0, this.height - r.h);
    } else {
      // The dragged corner follows the pointer; the opposite corner stays.
      let left = r.x, top = r.y, right = r.x + r.w, bottom = r.y + r.h;
      const px = Math.round(p.x), py = Math.round(p.y);
      if (drag.corner.includes("w")) left = Math.min(px, right - 1);
      if (drag.corner.includes("e")) right = Math.max(px, left + 1);
      if (drag.corner.includes("n")) top = Math.min(py, bottom - 1);
      if (drag.corner.includes("s")) bottom = Math.max(py, top + 1);
      Object.assign(r, { x: left, y: top, w: right - left, h: bottom - top });
    }
    if (r.x !== drag.start.x || r.y !== drag.start.y || r.w !== drag.start.w || r.h !== drag.start.h) {
      drag.moved = true;
    }
    this.#setRect(box, r);
    this.paint();
  }

  #up(e) {
    const drag = this.drag;
    this.drag = null;
    if (this.svg.hasPointerCapture(e.pointerId)) this.svg.releasePointerCapture(e.pointerId);
    if (!drag) return;
    if (drag.mode === "draw") {
      if (this.draft && this.draft.w >= MIN_DRAG && this.draft.h >= MIN_DRAG) this.#commitDraft();
      else {
        this.draft = null;
        this.paint();
      }
    } else if (drag.moved && this.selectedBox) this.save(this.selected);
  }

  /** The drawn rectangle becomes a box of the picked class (asks for one when none is picked). */
  async #commitDraft() {
    if (!this.draft) return;
    if (!this.className) {
      this.paint();
      this.onNeedClass();
      return;
    }
    const draft = this.draft, label = this.className;
    this.draft = null;
    this.paint();
    const done = Promise.withResolvers();
    this.creating.add(done.promise);
    try {
      const { boxes } = await api(frameUrl(this.key, "boxes"), {
        method: "POST",
        body: { boxes: [{ label, ...draft, unit: "px" }] },
      });
      // Not selected: the next hotkey picks the class of the next box instead of changing this one.
      for (const b of boxes) this.boxes.push({ ...b, version: 0 });
      this.paint();
      this.onChange();
    } catch (error) {
      toast(error.message, "error");
      // The rectangle is kept: the class can be fixed and the box saved without drawing it again.
      this.draft = draft;
      this.paint();
    } finally {
      this.creating.delete(done.promise);
      done.resolve();
    }
  }

  /** True while a drawn rectangle waits for its class. */
  get hasDraft() {
    return this.draft !== null;
  }

  /** Drops a drawn rectangle that waits for its class. */
  dropDraft() {
    this.draft = null;
    this.paint();
  }

  /**
   * Picks the class for the next box; a rectangle waiting for a class gets it and is saved, else the selected
   * box changes to it.
   */
  async setClass(name) {
    this.className = name;
    if (this.draft) return await this.#commitDraft();
    const box = this.selectedBox;
    if (box && box.label !== name) {
      const before = box.label;
      box.label = name;
      this.paint();
      try {
        await this.#chain(box.id, async () => {
          const { box: saved } = await api(`/api/boxes/${box.id}`, {
            method: "PATCH",
            body: { label: name },
          });
          this.#take(saved, box.version);
        });
      } catch (error) {
        box.label = before;
        toast(error.message, "error");
      }
    }
    this.paint();
    this.onChange();
  }

  select(id) {
    this.selected = id;
    this.paint();
    this.onChange();
  }

  /** Selects the next (dir 1) or previous (-1) box, around the list. False when there is no box. */
  selectStep(dir) {
    const n = this.boxes.length;
    if (n === 0) return false;
    const at = this.boxes.findIndex((b) => b.id === this.selected);
    const next = at < 0 ? (dir > 0 ? 0 : n - 1) : (at + dir + n) % n;
    this.select(this.boxes[next].id);
    return true;
  }

  /** Moves the selected box by (dx, dy) pixels, or with `resize` grows its width and height by them. */
  nudge(dx, dy, { resize = false } = {}) {
    const box = this.selectedBox;
    if (!box) return false;
    const r = pxRect(box);
    if (resize) {
      r.w = clamp(r.w + dx, 1, this.width - r.x);
      r.h = clamp(r.h + dy, 1, this.height - r.y);
    } else {
      r.x = clamp(r.x + dx, 0, this.width - r.w);
      r.y = clamp(r.y + dy, 0, this.height - r.h);
    }
    this.#setRect(box, r);
    this.paint();
    clearTimeout(this.timers.get(box.id));
    this.timers.set(box.id, setTimeout(() => this.save(box.id), 400));
    return true;
  }

  #setRect(box, r) {
    setPxRect(box, r);
    box.version++;
  }

  /** A server's copy of a box, unless the box was changed here again since that request left. */
  #take(saved, version) {
    const box = this.boxes.find((b) => b.id === saved.id);
    if (box && box.version === version) Object.assign(box, saved);
  }

  /** Runs a box's requests one after another, so a later move never lands before an earlier one. */
  #chain(id, fn) {
    const run = (this.chains.get(id) ?? Promise.resolve()).catch(() => {}).then(fn);
    this.chains.set(id, run);
    return run;
  }

  /** Saves a box's rectangle as it is now. */
  save(id) {
    clearTimeout(this.timers.get(id));
    this.timers.delete(id);
    return this.#chain(id, async () => {
      const box = this.boxes.find((b) => b.id === id);
      if (!box) return;
      const version = box.version;
      try {
        const { box: saved } = await api(`/api/boxes/${id}`, {
          method: "PATCH",
          body: { x: box.x, y: box.y, w: box.w, h: box.h, unit: box.unit },
        });
        this.#take(saved, version);
      } catch (error) {
        toast(error.message, "error");
      }
      this.onChange();
    });
  }

  /** Saves every change still waiting (before leaving the frame). */
  async flush() {
    for (const id of [...this.timers.keys()]) this.save(id);
    await Promise.all([...this.creating, ...[...this.chains.values()].map((p) => p.catch(() => {}))]);
  }

  /** Deletes the selected box. */
  async removeSelected() {
    const box = this.selectedBox;
    if (!box) return false;
    clearTimeout(this.timers.get(box.id));
    this.timers.delete(box.id);
    this.boxes = this.boxes.filter((b) => b !== box);
    this.selected = null;
    this.paint();
    this.onChange();
    try {
      await this.#chain(
        box.id,
        () => api(`/api/boxes/${box.id}`, { method: "DELETE", query: { author: author() } }),
      );
      toast(`deleted the ${box.label} box`);
    } catch (error) {
      toast(error.message, "error");
      this.boxes.push(box);
      this.paint();
      this.onChange();
    }
    return true;
  }

  /** The frame's pre-labels (boxes not accepted yet). */
  get preLabels() {
    return this.boxes.filter((b) => !b.accepted);
  }

  /**
   * Accepts the selected pre-label, or every pre-label of the frame when none is selected; resolves with how
   * many were accepted (0: nothing to accept).
   */
  async accept({ all = false } = {}) {
    const box = this.selectedBox;
    const which = !all && box ? (box.accepted ? [] : [box]) : this.preLabels;
    if (which.length === 0) return 0;
    const body = !all && box ? { ids: [box.id] } : { key: this.key };
    try {
      await Promise.all(which.map((b) => this.chains.get(b.id)?.catch(() => {})));
      const { accepted } = await api("/api/boxes/accept", { method: "POST", body });
      for (const b of which) b.accepted = true;
      this.paint();
      this.onChange();
      return accepted;
    } catch (error) {
      toast(error.message, "error");
      return 0;
    }
  }

  /** Draws the boxes, the selected one with its corner handles, and a rectangle waiting for its class. */
  paint() {
    if (!this.width) return;
    const k = this.scale();
    const items = [];
    for (const box of this.boxes) {
      const r = pxRect(box);
      const color = classColor(box.label);
      const selected = box.id === this.selected;
      const text = tagText(box);
      const tagH = 16 * k, tagW = (text.length * 7 + 8) * k;
      const tagY = r.y >= tagH ? r.y - tagH : r.y;
      items.push(s(
        "g",
        {
          class: `box${box.accepted ? "" : " pre"}${selected ? " selected" : ""}`,
          "data-id": box.id,
          "data-label": box.label,
        },
        s("rect", {
          class: "box-rect",
          x: r.x,
          y: r.y,
          width: r.w,
          height: r.h,
          stroke: color,
          fill: color,
          "fill-opacity": selected ? 0.2 : 0.06,
          "stroke-width": (selected ? 3 : 2) * k,
          "stroke-dasharray": box.accepted ? null : `${7 * k} ${5 * k}`,
        }),
        s("rect", { class: "box-tag", x: r.x, y: tagY, width: tagW, height: tagH, fill: color }),
        s("text", { x: r.x + 4 * k, y: tagY + 12 * k, "font-size": 12 * k }, text),
        selected
          ? [["nw", r.x, r.y], ["ne", r.x + r.w, r.y], ["sw", r.x, r.y + r.h], ["se", r.x + r.w, r.y + r.h]]
            .map(([corner, x, y]) =>
              s("rect", {
                class: `handle ${corner}`,
                "data-handle": corner,
                x: x - 5 * k,
                y: y - 5 * k,
                width: 10 * k,
                height: 10 * k,
                "stroke-width": 1.5 * k,
              })
            )
          : null,
      ));
    }
    if (this.draft) {
      items.push(s("rect", {
        class: "draft",
        x: this.draft.x,
        y: this.draft.y,
        width: this.draft.w,
        height: this.draft.h,
        "stroke-width": 2 * k,
        "stroke-dasharray": `${4 * k} ${3 * k}`,
      }));
    }
    this.svg.replaceChildren(...items);
  }

  destroy() {
    this.resizer.disconnect();
    for (const t of this.timers.values()) clearTimeout(t);
  }
}
