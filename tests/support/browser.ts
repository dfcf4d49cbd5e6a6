/**
 * The browser tests' shared set-up: Debian's Chromium driven by Playwright (headless, a fresh profile per launch)
 * against the HTTP server over the UI fixture (tests/support/ui_fixture.ts: a temp catalog and real S3 buckets of
 * the stack with the real samples stored). `uiSession()` gives one server, one browser context and its first page;
 * `serveApp()` more servers over the same fixture; page helpers wait for what the tests look at.
 *
 * Needs /usr/bin/chromium (Debian: `apt-get install -y chromium`; CI's .ci/run installs it). Without it the tests
 * fail, saying so.
 */
import { type BrowserContext, chromium, type Page } from "playwright-core";
import { createLogger, type Logger } from "../../src/log.ts";
import { type AppDeps, createApp } from "../../src/server/app.ts";
import { ARCHIVE_PREFIX, type UiFixture, uiFixture } from "./ui_fixture.ts";

// The page functions below run in the browser; this file is type-checked without the DOM library.
// deno-lint-ignore no-explicit-any
declare const document: any;

export const CHROMIUM = "/usr/bin/chromium";
/** Screenshots go here (outside the repository). */
export const SHOTS = `${(Deno.env.get("TMPDIR") ?? "/tmp").replace(/\/$/, "")}/frame-bucket-ui`;

/** Fails with the fix when Chromium is not installed. */
export async function requireChromium(): Promise<void> {
  try {
    const info = await Deno.stat(CHROMIUM);
    if (info.isFile) return;
  } catch {
    // reported below
  }
  throw new Error(
    `Chromium is missing at ${CHROMIUM}: the web UI test needs it. Install it with ` +
      "`apt-get update && apt-get install -y chromium` (CI's .ci/run installs it when missing).",
  );
}

export interface LaunchOptions {
  /** Default 1400 × 900. */
  viewport?: { width: number; height: number };
  /** A touch screen (Chromium then reports `pointer: coarse` and `hover: none`). */
  hasTouch?: boolean;
  /** A phone's browser (meta viewport honoured). */
  isMobile?: boolean;
}

export interface Browser {
  context: BrowserContext;
  /** Closes the browser and removes its profile. */
  close(): Promise<void>;
}

/** Chromium with a fresh profile (a temp --user-data-dir, removed by close()). */
export async function launch(options: LaunchOptions = {}): Promise<Browser> {
  await requireChromium();
  const profile = await Deno.makeTempDir({ prefix: "frame-bucket-chromium-" });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: options.viewport ?? { width: 1400, height: 900 },
    hasTouch: options.hasTouch ?? false,
    isMobile: options.isMobile ?? false,
    acceptDownloads: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      await Deno.remove(profile, { recursive: true }).catch(() => {});
    },
  };
}

export const quietLog: Logger = createLogger({ level: "error", format: "text" });
/** For servers whose failures a test causes on purpose. */
export const silentLog: Logger = createLogger({ level: "error", format: "text", write: () => {} });

export interface Served {
  /** `http://127.0.0.1:PORT/` */
  base: string;
  shutdown(): Promise<void>;
}

/**
 * The HTTP server over the fixture on a loopback port (`port`, default a free one); `deps` overrides the app's
 * dependencies.
 */
export function serveApp(f: UiFixture, deps: Partial<AppDeps> = {}, port = 0): Served {
  const app = createApp({ ...f, archivePrefix: ARCHIVE_PREFIX, log: quietLog, ...deps });
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, app.handler);
  return {
    base: `http://127.0.0.1:${(server.addr as Deno.NetAddr).port}/`,
    shutdown: () => server.shutdown(),
  };
}

export interface UiSession {
  f: UiFixture;
  /** The open server's address. */
  base: string;
  context: BrowserContext;
  /** The first page; its uncaught errors land in `errors`. */
  page: Page;
  /** Uncaught errors of every page opened through newPage() (and of `page`). */
  errors: string[];
  /** Another page of the same context, its errors recorded too. */
  newPage(): Promise<Page>;
  /** Saves a screenshot to SHOTS/NAME.png and remembers it with its description (see `shots`). */
  shot(page: Page, name: string, what: string, fullPage?: boolean): Promise<void>;
  /** "path  description" of each screenshot taken. */
  shots: string[];
  /** Another server over the fixture (on `port`, default a free one), shut down with the session. */
  serve(deps?: Partial<AppDeps>, port?: number): Served;
  close(): Promise<void>;
}

/**
 * The fixture, a server over it and a browser on a first page. Always close() it (in `finally`): it stops the
 * servers, the browser and removes the fixture's buckets' catalog.
 */
export async function uiSession(
  options: LaunchOptions & { bulk?: number; deps?: Partial<AppDeps>; clearShots?: boolean } = {},
): Promise<UiSession> {
  await requireChromium();
  if (options.clearShots) await Deno.remove(SHOTS, { recursive: true }).catch(() => {});
  await Deno.mkdir(SHOTS, { recursive: true });
  const f = await uiFixture({ bulk: options.bulk });
  const servers: Served[] = [serveApp(f, options.deps)];
  let browser: Browser;
  try {
    browser = await launch(options);
  } catch (error) {
    for (const s of servers) await s.shutdown();
    await f.close();
    throw error;
  }
  const errors: string[] = [];
  const shots: string[] = [];
  const newPage = async () => {
    const page = await browser.context.newPage();
    page.on("pageerror", (e) => errors.push(e.message));
    return page;
  };
  const page = await newPage();
  return {
    f,
    base: servers[0].base,
    context: browser.context,
    page,
    errors,
    newPage,
    shots,
    async shot(page, name, what, fullPage = false) {
      const path = `${SHOTS}/${name}.png`;
      await page.screenshot({ path, fullPage });
      shots.push(`${path}  ${what}`);
    },
    serve(deps = {}, port = 0) {
      const served = serveApp(f, deps, port);
      // Shut down once: a test may stop a server itself (an outage).
      let down: Promise<void> | null = null;
      const once = { base: served.base, shutdown: () => (down ??= served.shutdown()) };
      servers.push(once);
      return once;
    },
    async close() {
      await browser.close();
      for (const s of servers) await s.shutdown();
      await f.close();
    },
  };
}

/** Waits until the image `selector` matches has loaded with pixels. */
export async function imageLoaded(page: Page, selector: string): Promise<void> {
  await page.waitForFunction((sel) => {
    const img = document.querySelector(sel);
    return img !== null && img.complete && img.naturalWidth > 0;
  }, selector);
}

/** The element that has the focus: its tag, id, classes, data-key and aria-label, for assertions. */
export function focused(page: Page): Promise<
  { tag: string; id: string; className: string; key: string | null; label: string | null } | null
> {
  return page.evaluate(() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    return {
      tag: el.tagName.toLowerCase(),
      id: el.id,
      className: String(el.className?.baseVal ?? el.className ?? ""),
      key: el.getAttribute("data-key"),
      label: el.getAttribute("aria-label"),
    };
  });
}
