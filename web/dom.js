// Small DOM helpers: elements are built with h(), never from HTML strings, so labels and names stay text.

/** h("a#id.cls", {href: "#"}, "text", child) */
export function h(tag, props = {}, ...children) {
  const [head, ...classes] = tag.split(".");
  const [name, id] = head.split("#");
  const el = document.createElement(name || "div");
  if (id) el.id = id;
  if (classes.length) el.className = classes.join(" ");
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key === "class") el.className += ` ${value}`;
    else if (key === "style" && typeof value === "object") Object.assign(el.style, value);
    else if (key in el && typeof value !== "string") el[key] = value;
    else el.setAttribute(key, value === true ? "" : value);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const pad = (n, w = 2) => String(n).padStart(w, "0");

/** 2026-02-18 09:39:32.518Z (UTC, as the API). */
export function fmtTime(ms, { millis = true } = {}) {
  const d = new Date(ms);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}` +
    `${millis ? `.${pad(d.getUTCMilliseconds(), 3)}` : ""}Z`;
}

/** 09:39:32 */
export function fmtClock(ms) {
  const d = new Date(ms);
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
}

/** ISO 8601 for query parameters, without milliseconds when they are zero. */
export function isoParam(ms) {
  return new Date(ms).toISOString().replace(".000Z", "Z");
}

/**
 * A typed time as ms, read as the API reads it: UTC unless a zone is given, or ms since the epoch. With `end`, a
 * time given to the day, minute or second means the last ms of it (an inclusive "to"). NaN when unreadable.
 */
export function parseUtc(text, { end = false } = {}) {
  const t = text.trim();
  if (/^\d{1,16}$/.test(t)) return Number(t);
  const m = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2})(:\d{2})?(\.\d+)?)?\s*(Z|[+-]\d{2}:?\d{2})?$/i.exec(t);
  if (!m) return NaN;
  const [, date, hm, sec, frac, zone] = m;
  const ms = Date.parse(`${date}T${hm ?? "00:00"}${sec ?? ":00"}${frac ?? ""}${zone ?? "Z"}`);
  if (!end) return ms;
  const unit = frac ? 1 : sec ? 1000 : hm ? 60_000 : 86_400_000;
  return ms + unit - 1;
}

export function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

export function fmtCount(n) {
  return n.toLocaleString("en-US");
}

let toastTimer = 0;
let toastAt = 0;
/**
 * A short message near the top of the page (a confirmation, or an error with kind "error"). It stays a few
 * seconds, also across the re-render that often follows an action (see hideStaleToast).
 */
export function toast(message, kind = "info") {
  const el = document.getElementById("toast");
  el.textContent = message;
  el.className = `show ${kind}`;
  toastAt = Date.now();
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.className = ""), kind === "error" ? 8000 : 4000);
}

/**
 * Hides a message shown more than `ms` ago (a new page should not carry the last page's error), but keeps one
 * just shown: "deleted clip x" followed by a re-render of the list must still be read.
 */
export function hideStaleToast(ms = 1500) {
  if (Date.now() - toastAt > ms) document.getElementById("toast").className = "";
}

/**
 * Where the frame page goes back to (Esc): the list the user opened frames from, as app.js records it on leaving
 * that list for a frame (its scroll position is restored on return), else `fallback`.
 */
export const returnTo = { hash: null, entry: null };
export function goBack(fallback) {
  location.hash = returnTo.hash ?? fallback;
}

/** An error as a person reads it: a request that got no answer at all says that the server is not there. */
export function errorText(error) {
  if (error instanceof TypeError && /fetch|network/i.test(error.message)) {
    return `The server at ${location.host} does not answer (${error.message}): is frame-bucket's server ` +
      "(deno task serve) running and reachable? Try again once it is.";
  }
  return error?.message ?? String(error);
}

/** Runs an async action, showing its error as a toast; resolves with its result or undefined. */
export async function attempt(fn) {
  try {
    return await fn();
  } catch (error) {
    toast(errorText(error), "error");
    return undefined;
  }
}

/** Label chips; `onRemove(name)` adds a remove button to the names in `removable`. */
export function labelChips(labels, { removable = labels, onRemove, fromClips = {} } = {}) {
  return h(
    "span.chips",
    {},
    labels.map((name) => {
      const own = removable.includes(name);
      return h(
        `span.chip${own ? "" : ".via-clip"}`,
        { title: own ? name : `${name} (from clip ${fromClips[name] ?? ""})` },
        name,
        own && onRemove
          ? h("button.chip-x", {
            type: "button",
            title: `remove ${name}`,
            "aria-label": `remove label ${name}`,
            onclick: () => onRemove(name),
          }, "×")
          : null,
      );
    }),
  );
}
