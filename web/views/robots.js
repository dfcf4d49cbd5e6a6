// The robots overview: storage health (GET /api/storage: the tiers, the local tier's usage against the eviction
// thresholds, the evictor's state), then one card per robot with its latest frame's thumbnail, counts and time
// span. The storage panel refreshes itself every 15 s while the page is open, so an archive that goes down shows
// here before the local disk fills.

import { api, frameUrl } from "../api.js";
import { clear, errorText, fmtBytes, fmtCount, fmtTime, h } from "../dom.js";

const REFRESH_MS = 15_000;
const frames = (n) => `${fmtCount(n)} frame${n === 1 ? "" : "s"}`;
const DANGER = "var(--danger)";
const WARN = "#b26a00";
const OK = "#2e7d32";

export async function robotsView(root) {
  root.append(h("h1", {}, "Robots"));
  const storage = h("section.panel.storage-health", { "aria-label": "storage health" });
  root.append(storage);
  const [{ robots }, health] = await Promise.all([
    api("/api/robots"),
    api("/api/storage").catch((error) => ({ error })),
  ]);
  showStorage(storage, health);
  const timer = setInterval(async () => {
    const next = await api("/api/storage").catch((error) => ({ error }));
    if (storage.isConnected) showStorage(storage, next);
  }, REFRESH_MS);
  const cleanup = () => clearInterval(timer);

  if (robots.length === 0) {
    root.append(
      h("p.empty", {}, "No frames in the catalog yet. Frames appear here once the consumer stores them."),
    );
    return cleanup;
  }
  const total = robots.reduce((s, r) => s + r.frames, 0);
  root.append(
    h("p.muted", {}, `${robots.length} robots, ${fmtCount(total)} frames`),
    h(
      "div.cards",
      {},
      robots.map((r) =>
        h(
          "a.card",
          { href: `#/robot/${encodeURIComponent(r.robot_id)}`, dataset: { robot: r.robot_id } },
          r.latest_key
            ? h("img", {
              src: frameUrl(r.latest_key, "thumb"),
              alt: `latest frame of ${r.robot_id}`,
              loading: "lazy",
            })
            : h("div.noimg"),
          h(
            "div.card-body",
            {},
            h("h2", {}, r.robot_id),
            h("p", {}, `${fmtCount(r.frames)} frames · ${fmtBytes(r.bytes)}`),
            h("p.muted", {}, `${fmtTime(r.first_timestamp_ms, { millis: false })} –`),
            h("p.muted", {}, fmtTime(r.last_timestamp_ms, { millis: false })),
          ),
        )
      ),
    ),
  );
  return cleanup;
}

/** How long ago, in words: "40 s", "5 min", "2 h 10 min". */
function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 90) return `${s} s`;
  const m = Math.round(s / 60);
  return m < 120 ? `${m} min` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** The evictor's state as one line: what, since when, and how serious (colour). */
function stateLine(e) {
  switch (e.state) {
    case "archive unreachable":
      return [
        DANGER,
        `Archive unreachable since ${fmtTime(e.since_ms, { millis: false })} (${ago(e.since_ms)}, ` +
        `${fmtCount(e.failed_attempts)} failed attempt${e.failed_attempts === 1 ? "" : "s"}): nothing is ` +
        "deleted locally, the local tier fills up" +
        (e.paused ? "; the consumer is paused at the hard limit" : ""),
      ];
    case "archive refusing copies":
      return [
        DANGER,
        `Archive refusing copies since ${fmtTime(e.since_ms, { millis: false })} (${ago(e.since_ms)}): ` +
        "the copies it answered were not kept; nothing is deleted locally",
      ];
    case "local store unreachable":
      return [DANGER, `Local store unreachable since ${fmtTime(e.since_ms, { millis: false })}`];
    case "paused at the hard limit":
      return [DANGER, "Paused at the hard limit: the consumer stops fetching until space is freed"];
    case "moving":
      return [WARN, "Moving the oldest frames to the archive"];
    case "idle":
      return [OK, "Evictor idle"];
    case "not reporting":
      return [
        WARN,
        `Evictor not reporting: its last record is ${ago(e.updated_ms)} old` +
        (e.reported_state ? ` (it said: ${e.reported_state})` : "") +
        "; is the consumer (or deno task evict) running?",
      ];
    default:
      return [WARN, "No evictor has reported yet (no eviction trigger set, or no consumer running)"];
  }
}

/** A usage bar with the threshold and hard limit marked. */
function meter(label, percent, u) {
  const colour = percent >= u.hard_limit_percent ? DANGER : percent >= u.threshold_percent ? WARN : OK;
  const mark = (at, title) =>
    h("span", {
      title,
      style: {
        position: "absolute",
        left: `${Math.min(100, at)}%`,
        top: "-3px",
        bottom: "-3px",
        width: "2px",
        background: "var(--ink)",
      },
    });
  return h(
    "div.storage-meter",
    {
      role: "meter",
      "aria-label": label,
      "aria-valuenow": percent,
      "aria-valuemin": 0,
      "aria-valuemax": 100,
    },
    h(
      "div",
      {
        style: {
          position: "relative",
          height: "10px",
          background: "var(--line)",
          borderRadius: "5px",
          margin: "0.3rem 0",
          maxWidth: "32rem",
        },
      },
      h("span", {
        style: {
          position: "absolute",
          left: 0,
          top: 0,
          bottom: 0,
          width: `${Math.min(100, percent)}%`,
          background: colour,
          borderRadius: "5px",
        },
      }),
      mark(u.threshold_percent, `threshold ${u.threshold_percent}%`),
      mark(u.hard_limit_percent, `hard limit ${u.hard_limit_percent}%`),
    ),
  );
}

function showStorage(panel, s) {
  if (s.error) {
    clear(
      panel,
      h("h2", {}, "Storage"),
      h("p.muted", {}, `Storage health unavailable: ${errorText(s.error)}`),
    );
    return;
  }
  const e = s.evictor;
  const [colour, text] = stateLine(e);
  const t = s.tiers;
  const u = s.usage;
  const usage = [];
  if (u?.budget) {
    usage.push(
      h(
        "p.storage-usage",
        {},
        `Local tier ${fmtBytes(u.budget.used_bytes)} = ${u.budget.percent}% of max_bytes ${
          fmtBytes(u.budget.max_bytes)
        }`,
      ),
      meter("local tier against max_bytes", u.budget.percent, u),
    );
  }
  if (u?.disk) {
    usage.push(
      u.disk.percent === null
        ? h("p.storage-usage.muted", {}, `Disk of ${u.disk.watch_path}: ${u.disk.error}`)
        : h(
          "p.storage-usage",
          {},
          `Disk of ${u.disk.watch_path}: ${u.disk.percent}% used (${fmtBytes(u.disk.used_bytes)} of ${
            fmtBytes(u.disk.total_bytes)
          })`,
        ),
      u.disk.percent === null ? null : meter("disk usage", u.disk.percent, u),
    );
  }
  if (u) {
    usage.push(
      h(
        "p.hint",
        {},
        `Eviction starts at ${u.threshold_percent}%, goes down to ${u.target_percent}%; the consumer pauses at ` +
          `${u.hard_limit_percent}%.` + (e.pending_free_bytes > 0
            ? ` ${fmtBytes(e.pending_free_bytes)} deleted is not freed by the store yet.`
            : ""),
      ),
    );
  } else usage.push(h("p.hint", {}, "No eviction thresholds known."));
  const last = e.last_round;
  clear(
    panel,
    h("h2", {}, "Storage"),
    h("p.storage-state", {
      role: "status",
      dataset: { state: e.state },
      style: { color: colour, fontWeight: 600 },
    }, text),
    e.failure && e.state !== "idle"
      ? h("p.hint.storage-failure", {}, e.failure.length > 300 ? `${e.failure.slice(0, 300)}…` : e.failure)
      : null,
    h(
      "p.storage-tiers",
      {},
      `Local ${frames(t.local.frames)} · ${fmtBytes(t.local.bytes)}`,
      t.archiving.frames ? ` · moving ${fmtCount(t.archiving.frames)}` : "",
      ` — archive ${frames(t.archive.frames)} · ${fmtBytes(t.archive.bytes)}`,
    ),
    usage,
    e.state === "never reported" ? null : h(
      "p.hint.storage-counts",
      {},
      `Archived by the evictor${e.host ? ` on ${e.host}` : ""}: ${fmtCount(e.frames_archived)} frames ` +
        `(${fmtBytes(e.bytes_archived)}); lost ${fmtCount(e.frames_lost)}, dropped ${
          fmtCount(e.frames_dropped)
        }` +
        (last
          ? `; last round ${fmtTime(last.at_ms, { millis: false })}: ${fmtCount(last.archived)} archived` +
            (last.failure ? ", failed" : "")
          : ""),
    ),
  );
}
