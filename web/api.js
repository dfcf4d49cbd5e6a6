// The JSON API client: query strings, the write token, errors with the server's message.

const TOKEN_KEY = "frame-bucket.token";
const AUTHOR_KEY = "frame-bucket.author";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export const token = () => localStorage.getItem(TOKEN_KEY) ?? "";

// Images, thumbnails and downloads cannot send an Authorization header, so the token also rides in a cookie for
// a server whose reads need it (bound beyond loopback). Cookies ignore the port: the name carries it, so two
// servers on one host keep their own. SameSite=Strict: other sites' requests never carry it.
const cookieName = () =>
  `frame-bucket-token-${location.port || (location.protocol === "https:" ? "443" : "80")}`;
function setCookie(value) {
  const attrs = "; path=/; SameSite=Strict" + (location.protocol === "https:" ? "; Secure" : "");
  document.cookie = value
    ? `${cookieName()}=${encodeURIComponent(value)}${attrs}`
    : `${cookieName()}=; max-age=0${attrs}`;
}
setCookie(token());

export const setToken = (value) => {
  if (value) localStorage.setItem(TOKEN_KEY, value);
  else localStorage.removeItem(TOKEN_KEY);
  setCookie(value);
};
export const author = () => localStorage.getItem(AUTHOR_KEY) ?? "";
export const setAuthor = (value) =>
  value ? localStorage.setItem(AUTHOR_KEY, value) : localStorage.removeItem(AUTHOR_KEY);

/** Asks the user for the token (set by app.js); resolves true when one was given. */
let askToken = () => Promise.resolve(false);
export function onTokenNeeded(fn) {
  askToken = fn;
}

/** `?a=1&b=x&b=y` from an object; arrays repeat, empty values are left out. */
export function qs(params = {}) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    for (const v of Array.isArray(value) ? value : [value]) {
      if (v !== undefined && v !== null && v !== "" && v !== false) search.append(name, String(v));
    }
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/** URL of a frame resource: the key is one percent-encoded path segment. */
export function frameUrl(key, what = "") {
  return `/api/frames/${encodeURIComponent(key)}${what ? `/${what}` : ""}`;
}

/**
 * Calls the API; resolves with the parsed JSON. `body` is sent as JSON unless it is a Blob. A 401 (a change, or
 * any read on a server whose reads need the token) asks for the token once and tries again.
 */
export async function api(path, { method = "GET", body, query, signal } = {}) {
  const url = path + qs(query);
  for (let attempt = 0;; attempt++) {
    const headers = {};
    let payload;
    if (body instanceof Blob) {
      headers["content-type"] = body.type || "image/jpeg";
      payload = body;
    } else if (body !== undefined) {
      headers["content-type"] = "application/json";
      payload = JSON.stringify({ author: author() || undefined, ...body });
    }
    if (token()) headers.authorization = `Bearer ${token()}`;
    const response = await fetch(url, { method, headers, body: payload, signal });
    if (response.status === 401 && attempt === 0 && await askToken()) continue;
    const text = await response.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!response.ok) {
      throw new ApiError(response.status, data?.error ?? `${response.status} ${response.statusText}`);
    }
    return data;
  }
}
