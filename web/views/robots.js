// The robots overview: one card per robot with its latest frame's thumbnail, counts and time span.

import { api, frameUrl } from "../api.js";
import { fmtBytes, fmtCount, fmtTime, h } from "../dom.js";

export async function robotsView(root) {
  root.append(h("h1", {}, "Robots"));
  const { robots } = await api("/api/robots");
  if (robots.length === 0) {
    root.append(
      h("p.empty", {}, "No frames in the catalog yet. Frames appear here once the consumer stores them."),
    );
    return;
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
}
