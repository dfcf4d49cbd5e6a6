// The web UI: a hash router over the views, the author field and the write-token dialog. The router also keeps
// each page's scroll position (and its gallery's loaded tiles and selection), so Back, or Esc on a frame opened
// from a list, returns to the same place; and a view that cannot load (the server does not answer) shows why.

import { author, onTokenNeeded, setAuthor, setToken, token } from "./api.js";
import { clear, errorText, h, hideStaleToast, returnTo, toast } from "./dom.js";
import { robotsView } from "./views/robots.js";
import { robotView } from "./views/robot.js";
import { frameView } from "./views/frame.js";
import { searchView } from "./views/search.js";
import { labelsView } from "./views/labels.js";
import { clipsView } from "./views/clips.js";
import { collectionsView } from "./views/collections.js";
import { changesView } from "./views/changes.js";
import { playerView } from "./views/player.js";

const view = document.getElementById("view");
let cleanup = () => {};

// The views load asynchronously, so the browser's own scroll restoration would scroll an empty page: the router
// restores positions itself once a view has rendered.
history.scrollRestoration = "manual";
/** Per history entry (history.state.fbEntry): where the page was left. */
const saved = new Map();
const pageLoad = Math.random().toString(36).slice(2, 8);
let entries = 0;
/** The entry and the kind ("frame" or "list") of the page shown. */
let current = { entry: null, kind: null };

function entryId() {
  let id = history.state?.fbEntry;
  if (!id) {
    id = `${pageLoad}-${++entries}`;
    history.replaceState({ ...(history.state ?? {}), fbEntry: id }, "");
  }
  return id;
}

/** The page as it is now: scroll position, tiles loaded in its main gallery, selected frames. */
function snapshot() {
  const gallery = view.querySelector(".gallery[data-primary]");
  return {
    y: scrollY,
    tiles: gallery ? gallery.querySelectorAll(".tile").length : 0,
    selected: gallery ? [...gallery.querySelectorAll(".tile.selected")].map((t) => t.dataset.key) : [],
  };
}

const kindOf = (parts) => (parts[0] === "frame" ? "frame" : "list");

/** #/robot/ID?from=..  ->  {parts: ["robot", "ID"], params: URLSearchParams} */
function parseHash() {
  const text = location.hash.replace(/^#\/?/, "");
  const [path, search = ""] = text.split("?");
  return {
    parts: path.split("/").filter(Boolean).map(decodeURIComponent),
    params: new URLSearchParams(search),
  };
}

const routes = {
  "": () => ["robots", robotsView],
  robot: () => ["robots", robotView],
  frame: () => ["robots", frameView],
  search: () => ["search", searchView],
  labels: () => ["labels", labelsView],
  clips: () => ["clips", clipsView],
  collections: () => ["collections", collectionsView],
  changes: () => ["changes", changesView],
  // The player highlights where it was opened from: a clip, a search, else a robot.
  play: (params) => [params.has("clip") ? "clips" : params.has("robot") ? "robots" : "search", playerView],
};

/**
 * Shows the page of the hash. `restore` ({y, tiles, selected}): where to put the page back (Back/Forward, a return
 * from a frame, a re-render of the same page).
 */
async function render(restore = null) {
  hideStaleToast();
  cleanup();
  cleanup = () => {};
  const { parts, params } = parseHash();
  const route = routes[parts[0] ?? ""];
  const root = clear(view);
  if (!restore) scrollTo(0, 0);
  if (!route) {
    root.append(h("p.empty", {}, "No such page. ", h("a", { href: "#/" }, "Back to the robots.")));
    return;
  }
  const [nav, show] = route(params);
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.nav === nav);
  // Each render builds into a box of its own: when another render starts before this one has finished (two
  // hash changes in quick succession), the next render's clear() detaches this box, so whatever this one still
  // appends after its awaits never shows up beside the newer view.
  const box = h("div.view-box");
  root.append(box);
  let done;
  try {
    done = await show(box, { parts: parts.slice(1), params, restore });
  } catch (error) {
    // Without this the page stays blank (a view that could not load its data): say what failed and offer a retry.
    if (box.isConnected) clear(box, errorPanel(error));
    return;
  }
  if (typeof done === "function") {
    if (box.isConnected) cleanup = done;
    else done(); // a newer render has taken over: this view's timers and listeners go at once
  }
  if (!box.isConnected) return;
  for (const table of box.querySelectorAll("table.list")) labelCells(table);
  if (restore) scrollTo(0, restore.y);
}

function errorPanel(error) {
  return h(
    "div.panel.error-panel",
    { role: "alert" },
    h("h2", {}, "This page could not be shown"),
    h("p", {}, errorText(error)),
    h("button", { type: "button", onclick: () => render(snapshot()) }, "Try again"),
  );
}

/** Each cell gets its column's name (data-label), shown before it when a narrow screen stacks the table. */
function labelCells(table) {
  const names = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
  for (const row of table.querySelectorAll("tbody tr")) {
    [...row.children].forEach((cell, i) => {
      if (names[i]) cell.dataset.label = names[i];
    });
  }
}

function onHashChange(e) {
  // A view re-rendering itself (dispatchEvent of a bare HashChangeEvent) keeps its place.
  if (!e.oldURL || e.oldURL === location.href) return render(snapshot());
  if (current.entry) saved.set(current.entry, snapshot());
  const { parts } = parseHash();
  const kind = kindOf(parts);
  if (current.kind === "list" && kind === "frame") {
    returnTo.hash = new URL(e.oldURL).hash || "#/";
    returnTo.entry = current.entry;
  }
  const entry = entryId();
  // Back/Forward to a page seen before, or back from the frames opened from a list to that list.
  let restore = saved.get(entry) ?? null;
  if (!restore && current.kind === "frame" && kind === "list" && returnTo.hash === location.hash) {
    restore = saved.get(returnTo.entry) ?? null;
  }
  if (kind === "list") returnTo.hash = null;
  current = { entry, kind };
  return render(restore);
}

// ---- author and token
const authorInput = document.getElementById("author");
authorInput.value = author();
authorInput.addEventListener("change", () => setAuthor(authorInput.value.trim()));

const dialog = document.getElementById("token-dialog");
const tokenInput = document.getElementById("token-input");
const tokenButton = document.getElementById("token-button");
const paintToken = () => {
  tokenButton.textContent = token() ? "Token ✓" : "Token";
  tokenButton.title = token() ? "a token is set for this browser" : "set the server's token";
};

function askToken() {
  tokenInput.value = token();
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      const save = dialog.returnValue === "save";
      if (save) setToken(tokenInput.value.trim());
      paintToken();
      resolve(save && token() !== "");
    }, { once: true });
  });
}
onTokenNeeded(askToken);
tokenButton.addEventListener("click", askToken);
paintToken();

// A failure no view caught (a button's request to a server that went away) still says something.
addEventListener("unhandledrejection", (e) => {
  e.preventDefault();
  toast(errorText(e.reason), "error");
});

addEventListener("hashchange", onHashChange);
current = { entry: entryId(), kind: kindOf(parseHash().parts) };
render();
