// A thumbnail gallery over GET /api/frames: pages are fetched with the search cursor as the end of the list
// comes into view (IntersectionObserver), so a robot with 100,000 frames costs one page at a time. Tiles can be
// selected: the tick or Ctrl/Cmd-click toggles one, Shift-click selects a run, a plain click opens the frame
// (or toggles, once something is selected).

import { api, frameUrl } from "./api.js";
import { clear, fmtClock, fmtCount, h, labelChips, toast } from "./dom.js";
import { thumbBoxes } from "./boxes.js";

const day = (ms) => new Date(ms).toISOString().slice(0, 10);

export class Gallery {
  /**
   * @param {object} o
   * @param {object} o.query  search parameters of GET /api/frames (robot, label, from, to, ...)
   * @param {(hit: object) => void} o.onOpen
   * @param {(selected: object[]) => void} [o.onSelection]
   * @param {(gallery: Gallery) => void} [o.onPage]  after each page
   */
  constructor(
    { query, onOpen, onSelection = () => {}, onPage = () => {}, pageSize = 60, emptyText = "No frames." },
  ) {
    this.onOpen = onOpen;
    this.onPage = onPage;
    this.onSelection = onSelection;
    this.pageSize = pageSize;
    this.emptyText = emptyText;
    this.grid = h("div.gallery", { role: "list" });
    this.status = h("p.gallery-status");
    this.sentinel = h("div.sentinel", { "aria-hidden": "true" });
    this.el = h("div.gallery-wrap", {}, this.grid, this.sentinel, this.status);
    this.observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) this.loadMore();
    }, { rootMargin: "600px 0px" });
    this.observer.observe(this.sentinel);
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
    this.generation = (this.generation ?? 0) + 1;
    this.loading = false;
    this.selected = new Set();
    this.anchor = -1;
    clear(this.grid);
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
      const page = await api("/api/frames", {
        query: { ...this.query, limit: this.pageSize, cursor: this.cursor, count: first },
      });
      if (generation !== this.generation) return;
      if (first) this.total = page.total ?? null;
      this.cursor = page.next_cursor;
      for (const hit of page.frames) this.#append(hit);
      this.#status();
      this.onPage(this);
    } catch (error) {
      if (generation === this.generation) {
        this.status.textContent = error.message;
        this.cursor = null;
        toast(error.message, "error");
      }
    } finally {
      if (generation === this.generation) this.loading = false;
    }
    // Still near the end (a short page, a tall window): the observer will not fire again by itself.
    if (generation === this.generation && !this.done && this.#sentinelNear()) this.loadMore();
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
    if (!prev || day(prev.timestamp_ms) !== day(f.timestamp_ms)) {
      this.grid.append(h("h3.day", {}, day(f.timestamp_ms)));
    }
    const tile = h(
      "figure.tile",
      {
        role: "listitem",
        dataset: { index: String(index), key: f.key },
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
        h("span.time", {}, fmtClock(f.timestamp_ms)),
        f.tier === "archive" ? h("span.tier", { title: "in the archive" }, "archive") : null,
        labelChips(f.labels),
      ),
    );
    tile.addEventListener("click", (e) => this.#click(e, index));
    this.grid.append(tile);
  }

  #click(e, index) {
    e.preventDefault();
    const onTick = e.target.closest(".tick") !== null;
    if (e.shiftKey && this.anchor >= 0) {
      const [a, b] = this.anchor < index ? [this.anchor, index] : [index, this.anchor];
      for (let i = a; i <= b; i++) this.selected.add(i);
    } else if (onTick || e.ctrlKey || e.metaKey || this.selected.size > 0) {
      if (this.selected.has(index)) this.selected.delete(index);
      else this.selected.add(index);
      this.anchor = index;
    } else {
      this.onOpen(this.hits[index]);
      return;
    }
    this.#paintSelection();
  }

  #paintSelection() {
    for (const tile of this.grid.querySelectorAll(".tile")) {
      tile.classList.toggle("selected", this.selected.has(Number(tile.dataset.index)));
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
  }
}
