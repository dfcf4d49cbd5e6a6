// A thumbnail gallery over GET /api/frames: pages are fetched with the search cursor as the end of the list
// comes into view (IntersectionObserver), so a robot with 100,000 frames costs one page at a time. Or a fixed
// list of frames (similar-frame results: `hits`). Tiles can be selected: the tick (always shown on touch screens),
// Ctrl/Cmd-click or Space toggles one, Shift-click or Shift+Space selects a run, Ctrl+A selects every tile shown,
// Esc clears; a plain click (or Enter) opens the frame. Every tile is reachable by Tab; the arrow keys move
// between tiles.

import { api, frameUrl } from "./api.js";
import { clear, errorText, fmtClock, fmtCount, h, labelChips, toast } from "./dom.js";
import { thumbBoxes } from "./boxes.js";

const day = (ms) => new Date(ms).toISOString().slice(0, 10);
const MAX_PAGE = 1000; // GET /api/frames' largest page

/** The gallery Ctrl+A and Esc act on when the focus is in none: the page's main one (the newest constructed). */
let primary = null;

export class Gallery {
  /**
   * @param {object} o
   * @param {object} [o.query]  search parameters of GET /api/frames (robot, label, from, to, ...)
   * @param {object[]} [o.hits]  instead of a query: these frames, all at once (no paging)
   * @param {(hit: object) => void} o.onOpen
   * @param {(selected: object[]) => void} [o.onSelection]
   * @param {(gallery: Gallery) => void} [o.onPage]  after each page (and after a failed one: `error` is set)
   * @param {boolean} [o.showRobot]  name each tile's robot (results of several robots)
   * @param {number} [o.atLeast]  load this many tiles at once (a page being restored to where it was scrolled)
   * @param {string[]} [o.selectedKeys]  frames to show selected once loaded (restored)
   * @param {string} [o.label]  what the tiles are, for screen readers
   * @param {string} [o.tileClass]  extra class of each tile
   * @param {boolean} [o.main]  the page's main gallery (Ctrl+A/Esc act on it when the focus is in no gallery)
   */
  constructor(
    {
      query,
      hits,
      onOpen,
      onSelection = () => {},
      onPage = () => {},
      pageSize = 60,
      emptyText = "No frames.",
      showRobot = false,
      atLeast = 0,
      selectedKeys = [],
      label = "frames",
      tileClass = "",
      main = hits === undefined,
    },
  ) {
    this.onOpen = onOpen;
    this.onPage = onPage;
    this.onSelection = onSelection;
    this.pageSize = pageSize;
    this.emptyText = emptyText;
    this.showRobot = showRobot;
    this.atLeast = atLeast;
    this.restoreKeys = new Set(selectedKeys);
    this.tileClass = tileClass;
    this.fixed = hits;
    this.grid = h("div.gallery", {
      role: "listbox",
      "aria-multiselectable": "true",
      "aria-label": `${label}: Enter opens, Space selects, Ctrl+A selects all, Esc clears`,
      dataset: main ? { primary: "" } : {},
    });
    this.grid.addEventListener("keydown", (e) => this.#tileKey(e));
    this.status = h("p.gallery-status", { role: "status" });
    this.sentinel = h("div.sentinel", { "aria-hidden": "true" });
    this.el = h("div.gallery-wrap", {}, this.grid, this.sentinel, this.status);
    this.observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) this.loadMore();
    }, { rootMargin: "600px 0px" });
    this.observer.observe(this.sentinel);
    this.onDocKey = (e) => this.#docKey(e);
    document.addEventListener("keydown", this.onDocKey);
    if (main) primary = this;
    /** Resolves once the first page (and `atLeast` tiles) are shown, or loading has failed. */
    this.ready = new Promise((resolve) => (this.resolveReady = resolve));
    this.#start(query);
  }

  /** Starts over with another query (the selection is dropped). */
  reset(query) {
    this.#start(query);
    this.onSelection([]);
  }

  #start(query) {
    this.query = query;
    this.hits = [];
    this.cursor = undefined;
    this.total = null;
    this.error = null;
    this.generation = (this.generation ?? 0) + 1;
    this.loading = false;
    this.selected = new Set();
    this.anchor = -1;
    this.group = null;
    clear(this.grid);
    if (this.fixed) {
      for (const hit of this.fixed) this.#append(hit);
      this.total = this.fixed.length;
      this.cursor = null;
      this.#status();
      this.onPage(this);
      this.resolveReady();
      return;
    }
    this.status.textContent = "Loading…";
    this.loadMore();
  }

  get done() {
    return this.cursor === null;
  }

  async loadMore() {
    if (this.loading || this.done) return;
    this.loading = true;
    const generation = this.generation;
    try {
      const first = this.cursor === undefined;
      // A page being restored loads what was shown before in as few requests as the API allows.
      const limit = Math.min(MAX_PAGE, Math.max(this.pageSize, this.atLeast - this.hits.length));
      const page = await api("/api/frames", {
        query: { ...this.query, limit, cursor: this.cursor, count: first },
      });
      if (generation !== this.generation) return;
      if (first) this.total = page.total ?? null;
      this.cursor = page.next_cursor;
      for (const hit of page.frames) this.#append(hit);
      this.#status();
      if (this.selected.size) this.#paintSelection();
      this.onPage(this);
    } catch (error) {
      if (generation === this.generation) {
        this.error = error;
        this.status.textContent = errorText(error);
        this.cursor = null;
        toast(errorText(error), "error");
        this.onPage(this);
      }
    } finally {
      if (generation === this.generation) this.loading = false;
    }
    if (generation !== this.generation) return;
    if (!this.done && this.hits.length < this.atLeast) return this.loadMore();
    this.resolveReady();
    // Still near the end (a short page, a tall window): the observer will not fire again by itself.
    if (!this.done && this.#sentinelNear()) this.loadMore();
  }

  #sentinelNear() {
    const box = this.sentinel.getBoundingClientRect();
    return box.top < innerHeight + 600 && this.sentinel.isConnected;
  }

  #status() {
    const n = this.hits.length;
    if (n === 0) this.status.textContent = this.emptyText;
    else if (this.done) this.status.textContent = `All ${fmtCount(n)} frames shown.`;
    else {
      this.status.textContent = `${fmtCount(n)}${
        this.total === null ? "" : ` of ${fmtCount(this.total)}`
      } frames shown; scroll for more.`;
    }
  }

  #append(hit) {
    const index = this.hits.length;
    const prev = this.hits[index - 1];
    this.hits.push(hit);
    const f = hit;
    // Similar-frame results are ordered by distance, not time: no day headings there.
    if (!this.fixed && (!prev || day(prev.timestamp_ms) !== day(f.timestamp_ms))) {
      this.group = h(
        "div.day-group",
        { role: "group", "aria-label": day(f.timestamp_ms) },
        h("h3.day", { "aria-hidden": "true" }, day(f.timestamp_ms)),
      );
      this.grid.append(this.group);
    }
    if (this.restoreKeys.has(f.key)) {
      this.selected.add(index);
      this.restoreKeys.delete(f.key);
    }
    const about = [
      `${f.robot_id} ${f.capture_time}`,
      f.labels.length ? `labels ${f.labels.join(", ")}` : null,
      f.distance === undefined ? null : `${f.distance} bits away`,
    ];
    const tile = h(
      `figure.tile${this.tileClass ? `.${this.tileClass}` : ""}`,
      {
        role: "option",
        tabindex: "0",
        "aria-selected": "false",
        "aria-label": about.filter(Boolean).join(", "),
        dataset: { index: String(index), key: f.key, robot: f.robot_id },
        title: `${f.robot_id} ${f.capture_time}`,
      },
      h("button.tick", { type: "button", "aria-label": "select frame", tabindex: "-1" }, "✓"),
      h("img", {
        src: frameUrl(f.key, "thumb"),
        alt: `${f.robot_id} at ${f.capture_time}`,
        loading: "lazy",
        decoding: "async",
        onerror: (e) =>
          e.target.replaceWith(h("div.noimg", { title: "no store holds this frame" }, "no image")),
      }),
      thumbBoxes(f),
      h(
        "figcaption",
        {},
        f.distance === undefined
          ? null
          : h("span.distance", { title: "hamming distance in bits" }, `${f.distance} bits`),
        this.showRobot ? h("span.robot", {}, f.robot_id) : null,
        h(
          "span.time",
          {},
          this.fixed ? `${day(f.timestamp_ms)} ${fmtClock(f.timestamp_ms)}` : fmtClock(f.timestamp_ms),
        ),
        f.tier === "archive" ? h("span.tier", { title: "in the archive" }, "archive") : null,
        labelChips(f.labels),
      ),
    );
    tile.addEventListener("click", (e) => this.#click(e, index));
    (this.group ?? this.grid).append(tile);
  }

  #click(e, index) {
    e.preventDefault();
    const onTick = e.target.closest(".tick") !== null;
    if (e.shiftKey) this.#selectRun(index);
    else if (onTick || e.ctrlKey || e.metaKey) this.#toggle(index);
    else this.onOpen(this.hits[index]); // a plain click always opens, selection or not
  }

  #toggle(index) {
    if (this.selected.has(index)) this.selected.delete(index);
    else this.selected.add(index);
    this.anchor = index;
    this.#paintSelection();
  }

  #selectRun(index) {
    if (this.anchor < 0) return this.#toggle(index);
    const [a, b] = this.anchor < index ? [this.anchor, index] : [index, this.anchor];
    for (let i = a; i <= b; i++) this.selected.add(i);
    this.#paintSelection();
  }

  /** Keys on a focused tile: Enter opens, Space (Shift+Space) selects, arrows move the focus. */
  #tileKey(e) {
    const tile = e.target.closest?.(".tile");
    if (!tile || e.target !== tile || e.altKey || e.ctrlKey || e.metaKey) return;
    const index = Number(tile.dataset.index);
    if (e.key === "Enter") this.onOpen(this.hits[index]);
    else if (e.key === " ") e.shiftKey ? this.#selectRun(index) : this.#toggle(index);
    else if (["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "Home", "End"].includes(e.key)) {
      this.#focusTile(this.#neighbour(index, e.key));
    } else return;
    e.preventDefault();
  }

  #neighbour(index, key) {
    const last = this.hits.length - 1;
    if (key === "Home") return 0;
    if (key === "End") return last;
    if (key === "ArrowLeft") return Math.max(0, index - 1);
    if (key === "ArrowRight") return Math.min(last, index + 1);
    // Up/down: in the next row above or below, the tile nearest to this one's column.
    const tiles = [...this.grid.querySelectorAll(".tile")];
    const here = tiles[index].getBoundingClientRect();
    const down = key === "ArrowDown";
    let best = index, rowTop = null, bestDx = Infinity;
    for (let i = index + (down ? 1 : -1); i >= 0 && i <= last; i += down ? 1 : -1) {
      const box = tiles[i].getBoundingClientRect();
      if (Math.abs(box.top - here.top) < 4) continue; // the same row
      rowTop ??= box.top;
      if (Math.abs(box.top - rowTop) >= 4) break; // past that row
      const dx = Math.abs(box.left - here.left);
      if (dx < bestDx) (best = i), (bestDx = dx);
    }
    return best;
  }

  #focusTile(index) {
    const tile = this.grid.querySelector(`.tile[data-index="${index}"]`);
    tile?.focus();
    tile?.scrollIntoView({ block: "nearest" });
  }

  /** Ctrl/Cmd+A selects every tile shown, Esc clears: for the gallery holding the focus, else the main one. */
  #docKey(e) {
    if (!this.el.isConnected) {
      // A list of similar frames replaced by another one is gone for good.
      if (this.fixed) this.destroy();
      return;
    }
    const active = document.activeElement;
    const inside = this.el.contains(active);
    const focusFree = !active || active === document.body || active.id === "view";
    if (!inside && !(primary === this && focusFree)) return;
    if (
      ["INPUT", "TEXTAREA", "SELECT"].includes(e.target.tagName) || document.querySelector("dialog[open]")
    ) {
      return;
    }
    if ((e.ctrlKey || e.metaKey) && !e.altKey && e.key.toLowerCase() === "a") {
      e.preventDefault();
      this.selectAll();
    } else if (e.key === "Escape" && this.selected.size) {
      e.preventDefault();
      this.clearSelection();
    }
  }

  /** Selects every tile shown (not the frames of later pages, which are not loaded). */
  selectAll() {
    for (let i = 0; i < this.hits.length; i++) this.selected.add(i);
    this.#paintSelection();
  }

  #paintSelection() {
    for (const tile of this.grid.querySelectorAll(".tile")) {
      const on = this.selected.has(Number(tile.dataset.index));
      tile.classList.toggle("selected", on);
      tile.setAttribute("aria-selected", String(on));
    }
    this.onSelection(this.selectedHits());
  }

  selectedHits() {
    return [...this.selected].sort((a, b) => a - b).map((i) => this.hits[i]);
  }

  clearSelection() {
    this.selected.clear();
    this.anchor = -1;
    this.#paintSelection();
  }

  /** Shows label changes made elsewhere on the loaded tiles (keys: the frames changed). */
  applyLabels(keys, { add = [], remove = [] }) {
    const changed = new Set(keys);
    for (const tile of this.grid.querySelectorAll(".tile")) {
      if (!changed.has(tile.dataset.key)) continue;
      const hit = this.hits[Number(tile.dataset.index)];
      const own = new Set(hit.direct_labels);
      for (const l of add) own.add(l);
      for (const l of remove) own.delete(l);
      hit.direct_labels = [...own].sort();
      const viaClips = hit.clips.flatMap((c) => c.labels);
      hit.labels = [...new Set([...hit.direct_labels, ...viaClips])].sort();
      tile.querySelector(".chips").replaceWith(labelChips(hit.labels));
    }
  }

  destroy() {
    this.generation++;
    this.observer.disconnect();
    document.removeEventListener("keydown", this.onDocKey);
    if (primary === this) primary = null;
  }
}
