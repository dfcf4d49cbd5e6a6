/**
 * A small fault-injecting HTTP proxy in front of a real S3 server, for the tests of how the project reads a
 * server's answers: every request is forwarded byte for byte (Host kept, so SigV4 signatures still hold) unless a
 * hook changes its body, answers it itself, or replaces the server's answer. `answerDigestErrorsWith500` makes the
 * server answer as RustFS does: a body that does not match its Content-MD5 (or its signed SHA-256) gets
 * `500 InternalError` instead of `400 BadDigest`.
 */
import http from "node:http";
import { Buffer } from "node:buffer";

/** One request as the proxy received it. */
export interface Exchange {
  method: string;
  /** Path and query, e.g. `/bucket/archive/frames/a.jpg`. */
  path: string;
  headers: Record<string, string>;
  body: Uint8Array;
}

/** An answer, from the server or made up by a hook. */
export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array;
}

export const s3ErrorAnswer = (status: number, code: string, message: string): Answer => ({
  status,
  headers: { "content-type": "application/xml" },
  body: new TextEncoder().encode(
    `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`,
  ),
});

/** `a`, or 500 InternalError when `a` refuses a PUT's digest (400 BadDigest, or a signed SHA-256 mismatch). */
export function digestAs500(x: Exchange, a: Answer): Answer {
  const text = new TextDecoder().decode(a.body);
  if (x.method === "PUT" && a.status === 400 && /BadDigest|InvalidDigest|SHA256Mismatch/i.test(text)) {
    return s3ErrorAnswer(500, "InternalError", "We encountered an internal error, please try again.");
  }
  return a;
}

export class S3FaultProxy {
  readonly #server: http.Server;
  readonly #upstream: URL;
  /** Requests seen (method, path and headers), in order. */
  readonly seen: Omit<Exchange, "body">[] = [];
  /** Before forwarding: may change `x.body`, or return an answer (the request is then not forwarded). */
  onRequest: ((x: Exchange) => Answer | void | Promise<Answer | void>) | null = null;
  /** After the server answered: may return another answer. */
  onAnswer: ((x: Exchange, answer: Answer) => Answer | void | Promise<Answer | void>) | null = null;
  port = 0;

  private constructor(upstream: string) {
    this.#upstream = new URL(upstream);
    this.#server = http.createServer((req, res) => void this.#handle(req, res));
  }

  /** Starts a proxy on a free loopback port in front of `upstream` (an S3 endpoint URL). */
  static async start(upstream: string): Promise<S3FaultProxy> {
    const proxy = new S3FaultProxy(upstream);
    await new Promise<void>((resolve) => proxy.#server.listen(0, "127.0.0.1", resolve));
    proxy.port = (proxy.#server.address() as { port: number }).port;
    return proxy;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Answers a refused digest with 500 InternalError, as RustFS does. */
  answerDigestErrorsWith500(): void {
    this.onAnswer = digestAs500;
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections?.();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    try {
      const chunks: Uint8Array[] = [];
      for await (const c of req) chunks.push(c as Uint8Array);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) {
        if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(", ") : v;
      }
      const x: Exchange = {
        method: req.method ?? "GET",
        path: req.url ?? "/",
        headers,
        body: new Uint8Array(Buffer.concat(chunks)),
      };
      this.seen.push({ method: x.method, path: x.path, headers: x.headers });
      let answer = (await this.onRequest?.(x)) ?? await this.#forward(x);
      answer = (await this.onAnswer?.(x, answer)) ?? answer;
      const out: Record<string, string> = { ...answer.headers };
      delete out["transfer-encoding"];
      delete out["connection"];
      if (!(x.method === "HEAD" && out["content-length"] !== undefined)) {
        out["content-length"] = String(answer.body.length);
      }
      res.writeHead(answer.status, out);
      res.end(x.method === "HEAD" ? undefined : Buffer.from(answer.body));
    } catch (error) {
      res.writeHead(502, { "content-type": "text/plain" });
      res.end(`proxy: ${error}`);
    }
  }

  #forward(x: Exchange): Promise<Answer> {
    return new Promise((resolve, reject) => {
      const headers: Record<string, string> = { ...x.headers };
      if (x.body.length > 0 || x.headers["content-length"] !== undefined) {
        headers["content-length"] = String(x.body.length);
      }
      const req = http.request({
        host: this.#upstream.hostname,
        port: Number(this.#upstream.port),
        method: x.method,
        path: x.path,
        headers,
      }, (res) => {
        const chunks: Uint8Array[] = [];
        res.on("data", (c: Uint8Array) => chunks.push(c));
        res.on("end", () => {
          const h: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) {
            if (v !== undefined) h[k] = Array.isArray(v) ? v.join(", ") : v;
          }
          resolve({ status: res.statusCode ?? 502, headers: h, body: new Uint8Array(Buffer.concat(chunks)) });
        });
        res.on("error", reject);
      });
      req.on("error", reject);
      req.end(x.body.length ? Buffer.from(x.body) : undefined);
    });
  }
}
