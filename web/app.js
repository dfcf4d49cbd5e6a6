// The web UI: a hash router over the views, the author field and the write-token dialog.

import { author, onTokenNeeded, setAuthor, setToken, token } from "./api.js";
import { clear, h } from "./dom.js";
import { robotsView } from "./views/robots.js";
import { robotView } from "./views/robot.js";
import { frameView } from "./views/frame.js";
import { searchView } from "./views/search.js";
import { labelsView } from "./views/labels.js";
import { clipsView } from "./views/clips.js";
import { changesView } from "./views/changes.js";

const view = document.getElementById("view");
let cleanup = () => {};

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
  changes: () => ["changes", changesView],
};

async function render() {
  document.getElementById("toast").className = "";
  cleanup();
  cleanup = () => {};
  const { parts, params } = parseHash();
  const route = routes[parts[0] ?? ""];
  const root = clear(view);
  if (!route) {
    root.append(h("p.empty", {}, "No such page. ", h("a", { href: "#/" }, "Back to the robots.")));
    return;
  }
  const [nav, show] = route();
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.nav === nav);
  // Each render builds into a box of its own: when another render starts before this one has finished (two
  // hash changes in quick succession), the next render's clear() detaches this box, so whatever this one still
  // appends after its awaits never shows up beside the newer view.
  const box = h("div.view-box");
  root.append(box);
  const done = await show(box, { parts: parts.slice(1), params });
  if (typeof done === "function") {
    if (box.isConnected) cleanup = done;
    else done(); // a newer render has taken over: this view's timers and listeners go at once
  }
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

addEventListener("hashchange", render);
render();
