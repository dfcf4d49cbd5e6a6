import assert from "node:assert/strict";
import { filterSettingsFor, loadConfig, resolveConfig } from "../src/config.ts";

Deno.test("config defaults match the original frame-bucket", () => {
  const c = resolveConfig("");
  assert.deepEqual(c.kafka.brokers, ["localhost:9092"]);
  assert.equal(c.kafka.topic, "camera.frames");
  assert.equal(c.kafka.group_id, "frame-filter-group");
  assert.equal(c.kafka.compression, "none");
  assert.equal(c.stream.quality, 80);
  assert.equal(c.stream.fps, 10);
  assert.equal(c.stream.mode, "mjpeg");
  assert.equal(c.filter.primary, "phash");
  assert.equal(c.filter.phash_threshold, 26);
  assert.equal(c.filter.phash_hash_size, 16);
  assert.equal(c.filter.histogram_threshold, 0.15);
  assert.equal(c.rustfs.endpoint, "http://localhost:9000");
  assert.equal(c.rustfs.access_key, "rustfsadmin");
  assert.equal(c.rustfs.secret_key, "rustfsadmin");
  assert.equal(c.rustfs.bucket, "camera-frames");
  assert.equal(c.rustfs.prefix, "frames/");
  assert.equal(c.eviction.check_interval_secs, 30);
  assert.equal(c.eviction.threshold_percent, 80);
  assert.equal(c.eviction.target_percent, 70);
  assert.equal(c.eviction.batch_size, 50);
  assert.equal(c.aws_s3.bucket, "reachy-mini-frames-archive");
  assert.equal(c.aws_s3.prefix, "archive/");
  assert.equal(c.aws_s3.robot_id, "reachy-001");
  assert.equal(c.aws_s3.region, "us-west-2");
  assert.equal(c.logging.level, "info");
});

Deno.test("the shipped config.toml resolves to the defaults", async () => {
  const shipped = await loadConfig(new URL("../config.toml", import.meta.url).pathname);
  const defaults = resolveConfig("");
  for (
    const section of [
      "kafka",
      "stream",
      "filter",
      "rustfs",
      "eviction",
      "aws_s3",
      "logging",
      "server",
      "labels",
    ] as const
  ) {
    assert.deepEqual(shipped[section], defaults[section], section);
  }
});

Deno.test("config errors name the key and the problem", async (t) => {
  const cases: [string, string, RegExp][] = [
    ["unknown key", "[kafka]\nbrokerz = 'x'", /unknown key kafka\.brokerz \(known in \[kafka\]: brokers/],
    ["unknown section", "[kafkaa]\nx = 1", /unknown section \[kafkaa\]/],
    ["wrong type", "[stream]\nfps = 'ten'", /stream\.fps must be a number, not string "ten"/],
    [
      "not a whole number",
      "[filter]\nphash_threshold = 2.5",
      /filter\.phash_threshold must be a whole number/,
    ],
    ["out of range", "[stream]\nquality = 101", /stream\.quality = 101 is above 100/],
    ["not one of", "[stream]\nmode = 'rtsp'", /stream\.mode = "rtsp" is not one of mjpeg, polling/],
    ["section not a table", "kafka = 3", /kafka must be a \[kafka\] table/],
    ["bad TOML", "[kafka\n", /not valid TOML/],
    ["target above threshold", "[eviction]\ntarget_percent = 90.0", /target_percent \(90\) must be below/],
    ["bad robot override", '[filter.robots."a/b"]\nphash_threshold = 3', /may only hold/],
    [
      "unknown robot override key",
      '[filter.robots."bb"]\ncolour = 3',
      /unknown key filter\.robots\."bb"\.colour/,
    ],
    [
      "allowed host given as a URL",
      '[server]\nallowed_hosts = ["https://frames.example"]',
      /server\.allowed_hosts: "https:\/\/frames\.example" is a URL: give the host name only/,
    ],
    [
      "allowed host with a port",
      '[server]\nallowed_hosts = ["frames.example:8080"]',
      /server\.allowed_hosts: "frames\.example:8080" has a port: give the host name only/,
    ],
    [
      "allowed host that is not a name",
      '[server]\nallowed_hosts = ["frames example"]',
      /server\.allowed_hosts: "frames example" is not a host name/,
    ],
    [
      "public_reads not a boolean",
      '[server]\npublic_reads = "yes"',
      /server\.public_reads must be true or false/,
    ],
    ["label cap of zero", "[labels]\nmax_per_request = 0", /labels\.max_per_request = 0 is below 1/],
    ["distinct cap not a number", '[labels]\nmax_distinct = "many"', /labels\.max_distinct must be a number/],
  ];
  for (const [name, text, message] of cases) {
    await t.step(name, () => assert.throws(() => resolveConfig(text, { source: "test.toml" }), { message }));
  }
});

Deno.test("environment overrides secrets, brokers and the log level", async (t) => {
  await t.step("secrets and brokers", () => {
    const c = resolveConfig("", {
      env: { RUSTFS_ACCESS_KEY: "ak", RUSTFS_SECRET_KEY: "sk", KAFKA_BROKERS: "a:1, b:2" },
    });
    assert.equal(c.rustfs.access_key, "ak");
    assert.equal(c.rustfs.secret_key, "sk");
    assert.deepEqual(c.kafka.brokers, ["a:1", "b:2"]);
  });
  await t.step("LOG_LEVEL and RUST_LOG", () => {
    assert.equal(resolveConfig("", { env: { LOG_LEVEL: "DEBUG" } }).logging.level, "debug");
    assert.equal(resolveConfig("", { env: { RUST_LOG: "warn" } }).logging.level, "warn");
    assert.equal(resolveConfig("", { env: { RUST_LOG: "frame_bucket=debug" } }).logging.level, "debug");
    assert.equal(resolveConfig("", { env: { RUST_LOG: "trace" } }).logging.level, "debug");
    assert.throws(() => resolveConfig("", { env: { LOG_LEVEL: "loud" } }), {
      message: /LOG_LEVEL \(environment\)/,
    });
  });
});

Deno.test("per-robot filter overrides inherit the [filter] defaults", () => {
  const c = resolveConfig(`
[filter]
phash_threshold = 20
[filter.robots."bracketbot-001"]
phash_threshold = 40
resize = "nearest"
`);
  assert.equal(filterSettingsFor(c, "reachy-001").phash_threshold, 20);
  const bb = filterSettingsFor(c, "bracketbot-001");
  assert.equal(bb.phash_threshold, 40);
  assert.equal(bb.resize, "nearest");
  assert.equal(bb.phash_hash_size, 16);
});

Deno.test("a config file given explicitly must exist", async () => {
  await assert.rejects(() => loadConfig("/nonexistent/config.toml"), {
    message: /cannot read config file \/nonexistent\/config\.toml/,
  });
});

Deno.test("[server] host allow-list and public reads, [labels] caps", () => {
  const d = resolveConfig("");
  assert.deepEqual(d.server.allowed_hosts, []);
  assert.equal(d.server.public_reads, false);
  assert.deepEqual(d.labels, { max_per_request: 100, max_distinct: 1000, strict: false });
  const c = resolveConfig(`
[server]
allowed_hosts = ["Frames.Lab.Example", "*.corp.example", "localhost."]
public_reads = true
[labels]
max_per_request = 20
max_distinct = 50000
`);
  assert.deepEqual(c.server.allowed_hosts, ["frames.lab.example", "*.corp.example", "localhost."]);
  assert.equal(c.server.public_reads, true);
  assert.deepEqual(c.labels, { max_per_request: 20, max_distinct: 50000, strict: false });
  assert.deepEqual(resolveConfig('[server]\nallowed_hosts = "a.example, b.example"').server.allowed_hosts, [
    "a.example",
    "b.example",
  ]);
  assert.deepEqual(resolveConfig('[server]\nallowed_hosts = ["*"]').server.allowed_hosts, ["*"]);
});

Deno.test("a robot that switches to another filter does not inherit the base filter's plugin options", () => {
  const c = resolveConfig(`
[filter]
primary = "./my_filter.ts"
options = { window = 3 }
[filter.robots."bb-1"]
primary = "histogram"
[filter.robots."bb-2"]
phash_threshold = 10
`);
  assert.deepEqual(c.filter.robots["bb-1"].options, {});
  assert.deepEqual({ ...c.filter.robots["bb-2"].options }, { window: 3 });
});

Deno.test("catalog.url: sqlite:PATH and postgres:// are taken; anything else is refused, its password hidden", () => {
  assert.equal(resolveConfig('[catalog]\nurl = "sqlite:x.sqlite"').catalog.url, "sqlite:x.sqlite");
  assert.equal(
    resolveConfig('[catalog]\nurl = "postgres://u:p@db:5432/fb?schema=fleet"').catalog.url,
    "postgres://u:p@db:5432/fb?schema=fleet",
  );
  assert.throws(() => resolveConfig('[catalog]\nurl = "mysql://u:secret@db/fb"'), (e: Error) => {
    assert.match(
      e.message,
      /catalog\.url: .*mysql:\/\/u:\*\*\*@db\/fb.* is neither sqlite:PATH nor postgres:/,
    );
    assert.ok(!e.message.includes("secret"));
    return true;
  });
  assert.throws(
    () => resolveConfig('[catalog]\nurl = "postgres://u:p@db/fb?schema=Bad-Name"'),
    /schema "Bad-Name" is not a plain name/,
  );
});
