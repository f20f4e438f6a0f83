import { expect, test } from '@playwright/test';
import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A programmable OTLP/HTTP receiver on loopback for end-to-end tests, which also serves the test
 * pages, the built SDK (`/dist/...`), the service worker at the root (`/edgetrace-sw.js`) and the
 * SDK's runtime dependencies for an import map (`importMap()`). It records every request to
 * `/v1/traces` with its timing and answer, and can be told to answer 503, 429 + Retry-After,
 * 413 above a size, 400, or to stall. Spans count as received only from requests it answered
 * with a 2xx that reached the client, so a test can count by unique (traceId, spanId).
 *
 * ```ts
 * const rx = await startReceiver();
 * rx.page('/app.html', `<script type="module">import { init } from '/dist/index.js'; …</script>`);
 * rx.failNext(3, 503);
 * await rx.waitForSpans(50);
 * ```
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The OTLP span fields tests look at. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes?: { key: string; value: { stringValue?: string; intValue?: string; boolValue?: boolean; doubleValue?: number } }[];
}

/** One request to the trace endpoint. */
export interface ReceivedRequest {
  /** Order of arrival, from 0. */
  index: number;
  /** When the request arrived and when its answer was sent (ms, `Date.now()`); `endMs` 0 while pending. */
  startMs: number;
  endMs: number;
  /**
   * When its answer began to be written (ms, `Date.now()`); 0 until then. The client cannot have
   * it earlier, while `endMs` is stamped only once Node has flushed it, which can come after the
   * client read it: a wait the client times from the answer is measured from here.
   */
  answeredMs?: number;
  bytes: number;
  headers: IncomingMessage['headers'];
  /** Status answered; 0 while stalled, -1 when the client went away before the answer. */
  status: number;
  spans: ReceivedSpan[];
}

/** What to answer one request; `undefined` from a rule means "the next rule, else 200". */
export interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

/** A rule sees each request (body parsed) and may decide its answer. */
export type Rule = (req: ReceivedRequest) => Answer | undefined;

/** The receiver's controls. */
export interface Receiver {
  /** `http://127.0.0.1:<port>`. */
  readonly origin: string;
  /** The trace endpoint, `<origin>/v1/traces`. */
  readonly endpoint: string;
  /** Every request to the endpoint, in order of arrival. */
  readonly requests: ReceivedRequest[];
  /** Unique spans from accepted requests, keyed `traceId:spanId`. */
  spans(): Map<string, ReceivedSpan>;
  /** Score records posted to `/v1/scores` (always answered 200). */
  scores: { id: string; name: string; traceId: string }[];
  /** Serves `html` at `path` (wrapped in a minimal document unless it starts with `<!doctype`). */
  page(path: string, html: string): string;
  /** Serves any file body at `path`. */
  file(path: string, type: string, body: string | Buffer): void;
  /** `<script type="importmap">` for comlink, idb and nanoid, so `/dist/index.js` runs unbundled. */
  importMap(): string;
  /** Adds a rule, consulted in order for each request until one answers. */
  rule(rule: Rule): void;
  /** Answers the next `n` requests with `status` (and headers), then goes back to the other rules. */
  failNext(n: number, status: number, headers?: Record<string, string>): void;
  /** Answers 413 to every body larger than `bytes`. */
  maxBytes(bytes: number): void;
  /** Holds every request without answering until `release()`; `release` answers them with the rules. */
  stall(): void;
  release(): void;
  /** Stops holding new requests but leaves the held ones unanswered (their clients are gone). */
  unstall(): void;
  /** Answers every request only after `ms` (0 turns it off). */
  delay(ms: number): void;
  /** Waits until `n` unique spans were accepted (or `timeoutMs`), then returns them. */
  waitForSpans(n: number, timeoutMs?: number): Promise<Map<string, ReceivedSpan>>;
  /** Forgets requests, rules and stalling (keeps pages). */
  reset(): void;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.map': 'application/json',
  '.html': 'text/html; charset=utf-8',
};

// What the import map points at: the ESM builds the SDK's `dist/` imports by bare name.
const IMPORTS: Record<string, string> = {
  comlink: '/node_modules/comlink/dist/esm/comlink.mjs',
  idb: '/node_modules/idb/build/index.js',
  nanoid: '/node_modules/nanoid/index.browser.js',
};
const SERVED_PACKAGES = ['comlink', 'idb', 'nanoid'];

const readBody = async (req: IncomingMessage): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
};

const spansOf = (body: Buffer): ReceivedSpan[] => {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as { resourceSpans?: { scopeSpans?: { spans?: ReceivedSpan[] }[] }[] };
    return (parsed.resourceSpans ?? []).flatMap((rs) => (rs.scopeSpans ?? []).flatMap((ss) => ss.spans ?? []));
  } catch {
    return [];
  }
};

/** Starts a receiver on 127.0.0.1 and a free port. */
export const startReceiver = async (): Promise<Receiver> => {
  const requests: ReceivedRequest[] = [];
  const scores: Receiver['scores'] = [];
  const files = new Map<string, { type: string; body: string | Buffer }>();
  let rules: Rule[] = [];
  let stalled: (() => void)[] = [];
  let stalling = false;
  let delayMs = 0;
  let waiters: (() => void)[] = [];

  const cors = { 'access-control-allow-origin': '*', 'access-control-allow-headers': '*', 'access-control-allow-methods': 'POST' };

  const answer = (r: ReceivedRequest, res: ServerResponse): void => {
    let a: Answer | undefined;
    for (const rule of rules) {
      a = rule(r);
      if (a) break;
    }
    a ??= { status: 200, body: '{}' };
    if (res.destroyed || res.socket?.destroyed) {
      r.status = -1;
      r.endMs = Date.now();
      return;
    }
    r.status = a.status;
    r.answeredMs = Date.now();
    res.writeHead(a.status, { 'content-type': 'application/json', ...cors, ...a.headers });
    res.end(a.body ?? '{}', () => {
      r.endMs = Date.now();
      for (const w of waiters) w();
    });
  };

  const serveStatic = async (path: string, res: ServerResponse): Promise<boolean> => {
    let file: string | undefined;
    if (path === '/edgetrace-sw.js') file = join(ROOT, 'dist/edgetrace-sw.js');
    else if (path.startsWith('/dist/')) file = join(ROOT, normalize(path).replace(/^\/+/, ''));
    else if (SERVED_PACKAGES.some((p) => path.startsWith(`/node_modules/${p}/`))) file = join(ROOT, normalize(path).replace(/^\/+/, ''));
    if (!file || !file.startsWith(ROOT)) return false;
    try {
      const body = await readFile(file);
      res.writeHead(200, { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' });
      res.end(body);
    } catch {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end(`${path}: not found (run \`npm run build\` first)`);
    }
    return true;
  };

  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://localhost').pathname;
    if (req.method === 'OPTIONS') {
      res.writeHead(204, cors);
      res.end();
      return;
    }
    if (req.method === 'POST' && path === '/v1/traces') {
      const r: ReceivedRequest = { index: requests.length, startMs: Date.now(), endMs: 0, bytes: 0, headers: req.headers, status: 0, spans: [] };
      requests.push(r);
      readBody(req)
        .then((body) => {
          r.bytes = body.length;
          r.spans = spansOf(body);
          if (stalling) stalled.push(() => answer(r, res));
          else if (delayMs > 0) setTimeout(() => answer(r, res), delayMs);
          else answer(r, res);
        })
        .catch(() => {
          r.status = -1;
        });
      return;
    }
    if (req.method === 'POST' && path === '/v1/scores') {
      readBody(req)
        .then((body) => {
          scores.push(...(JSON.parse(body.toString('utf8')) as Receiver['scores']));
          res.writeHead(200, { 'content-type': 'application/json', ...cors });
          res.end('{}');
        })
        .catch(() => res.destroy());
      return;
    }
    const f = files.get(path);
    if (f) {
      res.writeHead(200, { 'content-type': f.type, 'cache-control': 'no-store' });
      res.end(f.body);
      return;
    }
    serveStatic(path, res)
      .then((served) => {
        if (served) return;
        res.writeHead(path === '/favicon.ico' ? 204 : 404, { 'content-type': 'text/plain' });
        res.end();
      })
      .catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const spans = (): Map<string, ReceivedSpan> => {
    const out = new Map<string, ReceivedSpan>();
    for (const r of requests) {
      if (r.status < 200 || r.status > 299 || r.endMs === 0) continue;
      for (const s of r.spans) out.set(`${s.traceId}:${s.spanId}`, s);
    }
    return out;
  };

  const rx: Receiver = {
    origin,
    endpoint: `${origin}/v1/traces`,
    requests,
    spans,
    scores,
    page(path, html) {
      const doc = /^<!doctype/i.test(html.trimStart())
        ? html
        : `<!doctype html><html><head><meta charset="utf-8"><title>edgetrace e2e</title>${rx.importMap()}</head><body>${html}</body></html>`;
      files.set(path, { type: 'text/html; charset=utf-8', body: doc });
      return origin + path;
    },
    file(path, type, body) {
      files.set(path, { type, body });
    },
    importMap: () => `<script type="importmap">${JSON.stringify({ imports: IMPORTS })}</script>`,
    rule(rule) {
      rules.push(rule);
    },
    failNext(n, status, headers) {
      let left = n;
      rules.unshift(() => (left-- > 0 ? { status, headers, body: JSON.stringify({ message: `scripted ${status}` }) } : undefined));
    },
    maxBytes(bytes) {
      rules.push((r) => (r.bytes > bytes ? { status: 413, body: JSON.stringify({ message: `body over ${bytes} bytes` }) } : undefined));
    },
    stall() {
      stalling = true;
    },
    unstall() {
      stalling = false;
    },
    delay(ms) {
      delayMs = ms;
    },
    release() {
      stalling = false;
      const held = stalled;
      stalled = [];
      for (const go of held) go();
    },
    async waitForSpans(n, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      while (spans().size < n && Date.now() < deadline) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 200);
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
        waiters = [];
      }
      return spans();
    },
    reset() {
      requests.length = 0;
      scores.length = 0;
      rules = [];
      stalling = false;
      stalled = [];
      delayMs = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        rx.release();
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
  return rx;
};

/**
 * Gives a spec file its own receiver: started before the file's first test and closed after its
 * last, with the generous timeout delivery specs need (a loaded two-core machine can slow the
 * browser and the worker several times over). The returned object forwards to that receiver.
 */
export const receiverPerFile = (): Receiver => {
  let current: Receiver | undefined;
  test.setTimeout(90_000);
  test.beforeAll(async () => {
    current = await startReceiver();
  });
  test.afterAll(async () => {
    await current?.close();
  });
  return new Proxy({} as Receiver, {
    get: (_target, key) => {
      if (!current) throw new Error('receiverPerFile(): the receiver is used before beforeAll started it');
      return Reflect.get(current, key);
    },
  });
};

/**
 * Serves a page that loads the built SDK (`/dist/index.js`), calls `init(options)` with the
 * receiver's endpoint, and exposes `window.et` (the SDK's exports), `window.tracer`, and
 * `window.makeSpans(n, prefix)`, which ends `n` one-span traces named `prefix0`, `prefix1`, …
 * `extraHead` goes before the SDK (e.g. a script registering the app's own worker).
 */
export const sdkPage = (rx: Receiver, path: string, options: Record<string, unknown> = {}, extraHead = ''): string =>
  rx.page(
    path,
    `<!doctype html><html><head><meta charset="utf-8"><title>edgetrace e2e</title>${rx.importMap()}${extraHead}
<script>window.__errors = []; addEventListener('error', (e) => __errors.push(String(e.message))); addEventListener('unhandledrejection', (e) => __errors.push('unhandled: ' + String(e.reason)));</script>
<script type="module">
  import * as et from '/dist/index.js';
  window.et = et;
  window.tracer = et.init(${JSON.stringify({ endpoint: rx.endpoint, serviceName: 'e2e', instrument: false, ...options })});
  window.makeSpans = (n, prefix = 's') => {
    for (let i = 0; i < n; i++) window.tracer.createTrace(prefix + i).finish();
  };
  window.sdkLoaded = true;
</script></head><body><p>edgetrace e2e</p></body></html>`,
  );

/**
 * Waits until the page's SDK loaded and its delivery path is `transport` (from `getStatus()`),
 * polled from here: `waitForFunction` takes the promise an async predicate returns as a truthy
 * value and returns at once.
 */
export const waitForTransport = async (page: import('@playwright/test').Page, transport: string, timeoutMs = 20_000): Promise<void> => {
  await page.waitForFunction(() => (window as unknown as { sdkLoaded?: boolean }).sdkLoaded === true, undefined, { timeout: timeoutMs });
  await expect
    .poll(async () => (await statusOf(page)).transport, { timeout: timeoutMs, intervals: [100], message: `the delivery path becomes "${transport}"` })
    .toBe(transport);
};

/** The delivery status as the page sees it. */
export const statusOf = (page: import('@playwright/test').Page): Promise<Record<string, unknown> & { queued: number; dropped: number; deadLettered: number; delivered: number; lastError?: string; transport: string }> =>
  page.evaluate(() => (window as unknown as { et: { getStatus(): Promise<never> } }).et.getStatus());

/** Ends `n` one-span traces named `prefix0…` in the page. */
export const makeSpans = (page: import('@playwright/test').Page, n: number, prefix: string): Promise<void> =>
  page.evaluate(([count, p]) => (window as unknown as { makeSpans(n: number, p: string): void }).makeSpans(count, p), [n, prefix] as const);

/** Received spans whose names start with `prefix`, unique by (traceId, spanId). */
export const spansNamed = (rx: Receiver, prefix: string): ReceivedSpan[] => [...rx.spans().values()].filter((s) => s.name.startsWith(prefix));
