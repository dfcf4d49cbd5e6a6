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
export const setToken = (value) =>
  value ? localStorage.setItem(TOKEN_KEY, value) : localStorage.removeItem(TOKEN_KEY);
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
 * Calls the API; resolves with the parsed JSON. `body` is sent as JSON unless it is a Blob. A 401 asks for the
 * token once and tries again.
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
    if (method !== "GET" && token()) headers.authorization = `Bearer ${token()}`;
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
