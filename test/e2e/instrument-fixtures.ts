import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { extname, normalize, sep } from 'node:path';
import type { Page } from '@playwright/test';
import type { OtlpAnyValue, OtlpKeyValue, OtlpSpan } from '../../src/export/otlp';

// Shared by the instrument-*.spec.ts files: three loopback servers that are three origins (the
// app, an allowlisted API and a third party), each recording the headers it received; the app
// also serves the built package (dist/), the two browser dependencies, test pages, an OTLP
// receiver and streaming endpoints. Needs `npm run build` first (`npm test` does that).

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface SeenRequest {
  server: string;
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
}

/** A received span, with attributes as a plain object. */
export interface Got {
  traceId: string;
  spanId: string;
  parentId?: string;
  name: string;
  kind: number;
  startMs: number;
  endMs: number;
  attrs: Record<string, unknown>;
  events: { name: string; attrs: Record<string, unknown> }[];
  status: number;
}

const plain = (v: OtlpAnyValue): unknown =>
  v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : undefined) ?? v.boolValue ?? v.doubleValue ?? v.arrayValue?.values.map(plain);
const attrsOf = (kvs: OtlpKeyValue[] | undefined): Record<string, unknown> => Object.fromEntries((kvs ?? []).map((kv) => [kv.key, plain(kv.value)]));

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.map': 'application/json' };
// Only what the built entries import: nothing else of node_modules is served.
const PACKAGES = ['nanoid/', 'web-vitals/dist/', 'idb/build/', 'comlink/dist/esm/'];

/** The import map a test page needs to load dist/index.js and dist/vitals.js as modules. */
export const IMPORT_MAP = JSON.stringify({
  imports: {
    nanoid: '/node_modules/nanoid/index.browser.js',
    'web-vitals': '/node_modules/web-vitals/dist/web-vitals.js',
    idb: '/node_modules/idb/build/index.js',
    comlink: '/node_modules/comlink/dist/esm/comlink.mjs',
  },
});

export interface Servers {
  app: string;
  allowed: string;
  third: string;
  seen: SeenRequest[];
  spans(): Got[];
  /** Registers an HTML page on the app server; returns its URL. */
  page(path: string, html: string): string;
  /** How many /endless responses the client closed. */
  endlessClosed: number;
  /** How many SSE responses the client closed before their last event. */
  sseCancelled: number;
  reset(): void;
  close(): Promise<void>;
}

const readBody = async (req: IncomingMessage): Promise<string> => {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
};

const sseEvents = (n: number): string[] => {
  const out = ['data: {"choices":[{"delta":{"role":"assistant"}}],"usage":null}\n\n'];
  for (let i = 0; i < n; i++) out.push(`data: {"choices":[{"delta":{"content":"t${i} "}}],"usage":null}\n\n`);
  out.push('data: {"choices":[],"usage":{"prompt_tokens":21,"completion_tokens":' + n + ',"total_tokens":' + (21 + n) + '}}\n\n');
  out.push('data: [DONE]\n\n');
  return out;
};

/** Starts the three servers. */
export const startServers = async (): Promise<Servers> => {
  const pages = new Map<string, string>();
  const seen: SeenRequest[] = [];
  const received: OtlpSpan[] = [];
  const state = { endlessClosed: 0, sseCancelled: 0 };

  const make = (name: string): Server =>
    createServer((req, res) => {
      handle(name, req, res).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500);
        res.end(String(error));
      });
    });

  const cors = (req: IncomingMessage, res: ServerResponse): void => {
    res.setHeader('access-control-allow-origin', req.headers.origin ?? '*');
    res.setHeader('access-control-allow-headers', 'traceparent, tracestate, baggage, content-type, x-app');
    res.setHeader('access-control-allow-methods', 'GET, POST, PUT, OPTIONS');
    res.setHeader('timing-allow-origin', '*');
  };

  const handle = async (server: string, req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    cors(req, res);
    if (req.method === 'OPTIONS') return void res.writeHead(204).end();
    if (path === '/v1/traces' && req.method === 'POST') {
      const body = JSON.parse(await readBody(req)) as { resourceSpans: { scopeSpans: { spans: OtlpSpan[] }[] }[] };
      for (const rs of body.resourceSpans) for (const ss of rs.scopeSpans) received.push(...ss.spans);
      return void res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    }
    if (path === '/favicon.ico') return void res.writeHead(204).end();
    if (path.startsWith('/dist/') || path.startsWith('/node_modules/')) {
      const rel = normalize(decodeURIComponent(path.slice(1)));
      const allowed = rel.startsWith(`dist${sep}`) || PACKAGES.some((p) => rel.startsWith(`node_modules${sep}${p}`));
      if (!allowed || rel.includes('..')) return void res.writeHead(404).end();
      const file = await readFile(ROOT + rel).catch(() => undefined);
      if (!file) return void res.writeHead(404).end(`missing ${rel}: run npm run build`);
      return void res.writeHead(200, { 'content-type': TYPES[extname(rel)] ?? 'application/octet-stream', 'cache-control': 'no-store' }).end(file);
    }
    if (path === '/edgetrace-sw.js') {
      const file = await readFile(`${ROOT}dist/edgetrace-sw.js`).catch(() => undefined);
      if (!file) return void res.writeHead(404).end();
      return void res.writeHead(200, { 'content-type': 'text/javascript' }).end(file);
    }
    const html = pages.get(path);
    if (html !== undefined) {
      // `?cache=1`: a page the browser may take from its HTTP cache, as a CDN-cached page is.
      const headers: Record<string, string> = { 'content-type': 'text/html; charset=utf-8', 'cache-control': url.searchParams.has('cache') ? 'max-age=3600' : 'no-store' };
      const timing = url.searchParams.get('server-timing');
      if (timing) headers['server-timing'] = `traceparent;desc="${timing}"`;
      return void res.writeHead(200, headers).end(html);
    }
    seen.push({ server, method: req.method ?? '', path: path + url.search, headers: req.headers });
    await readBody(req);
    if (path === '/api/slow') await new Promise((r) => setTimeout(r, Number(url.searchParams.get('ms') ?? 100)));
    if (path === '/sse' || path === '/sse-slow') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store' });
      const events = sseEvents(Number(url.searchParams.get('n') ?? 8));
      const gap = path === '/sse-slow' ? 30 : 5;
      let i = 0;
      let closed = false;
      res.on('close', () => {
        closed = true;
        if (i < events.length) state.sseCancelled++;
      });
      const tick = (): void => {
        if (closed) return;
        if (i < events.length) {
          res.write(events[i++]);
          setTimeout(tick, gap);
        } else res.end();
      };
      return tick();
    }
    if (path === '/endless') {
      // 64 KiB chunks for as long as the client reads; bounded at 2 GiB in case one never stops.
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-store' });
      const chunk = Buffer.alloc(64 * 1024, 120);
      let sent = 0;
      let closed = false;
      res.on('close', () => {
        closed = true;
        state.endlessClosed++;
      });
      const pump = (): void => {
        while (!closed && sent < 2 ** 31) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        if (!closed) res.end();
      };
      return pump();
    }
    if (path === '/api/error') return void res.writeHead(500, { 'content-type': 'text/plain' }).end('broken');
    if (path === '/api/no-content') return void res.writeHead(204).end();
    if (path === '/api/completion') {
      // A chat completion that did not stream, as OpenAI answers it.
      const completion = { object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'Hi' } }], usage: { prompt_tokens: 31, completion_tokens: 7, total_tokens: 38 } };
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(completion));
    }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ server, path }));
  };

  const servers = ['app', 'allowed', 'third'].map((name) => ({ name, server: make(name) }));
  const bases: Record<string, string> = {};
  for (const { name, server } of servers) {
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    bases[name] = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }
  return {
    app: bases.app!,
    allowed: bases.allowed!,
    third: bases.third!,
    seen,
    get endlessClosed() {
      return state.endlessClosed;
    },
    get sseCancelled() {
      return state.sseCancelled;
    },
    spans: () =>
      received.map((s) => ({
        traceId: s.traceId,
        spanId: s.spanId,
        parentId: s.parentSpanId || undefined,
        name: s.name,
        kind: s.kind,
        startMs: Number(BigInt(s.startTimeUnixNano) / 1000n) / 1000,
        endMs: Number(BigInt(s.endTimeUnixNano) / 1000n) / 1000,
        attrs: attrsOf(s.attributes),
        events: (s.events ?? []).map((e) => ({ name: e.name, attrs: attrsOf(e.attributes) })),
        status: s.status?.code ?? 0,
      })),
    page: (path, html) => {
      pages.set(path, html);
      return bases.app + path;
    },
    reset: () => {
      seen.length = 0;
      received.length = 0;
      state.endlessClosed = 0;
      state.sseCancelled = 0;
    },
    close: async () => {
      for (const { server } of servers) {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      }
    },
  };
};

/**
 * A test page: records what reaches window.onerror and unhandledrejection in `__errors`, loads
 * dist/index.js (with createOtlpExporter from dist/otlp.js) as `window.et`, runs `setup` (module code that may use `et`), then sets
 * `window.__ready`. `init` is the `init()` options as JS source; spans go to the app's /v1/traces
 * through a plain OTLP exporter, so delivery is not what these specs test.
 */
export const testPage = (opts: { init?: string; setup?: string; body?: string; head?: string; vitals?: boolean }): string => `<!doctype html>
<html><head><meta charset="utf-8"><title>edgetrace instrument e2e</title>${opts.head ?? ''}
<script>
  window.__errors = [];
  window.onerror = function (message) { window.__errors.push(String(message)); };
  window.addEventListener('unhandledrejection', function (e) { window.__errors.push('unhandled rejection: ' + String(e.reason)); });
</script>
<script type="importmap">${IMPORT_MAP}</script>
<script type="module">
  import * as edgetrace from '/dist/index.js';
  import { createOtlpExporter } from '/dist/otlp.js';
  ${opts.vitals ? "import * as vitals from '/dist/vitals.js'; window.vitals = vitals;" : ''}
  const et = { ...edgetrace, createOtlpExporter };
  window.et = et;
  ${opts.init === undefined ? '' : `window.tracer = et.init(Object.assign({ serviceName: 'e2e', exporter: et.createOtlpExporter({ url: '/v1/traces' }), batch: { delayMs: 20 } }, ${opts.init}));`}
  ${opts.setup ?? ''}
  window.__ready = true;
</script></head><body>${opts.body ?? ''}</body></html>`;

/** Waits until the page's module script ran. */
export const ready = async (page: Page): Promise<void> => {
  await page.waitForFunction(() => (window as unknown as { __ready?: boolean }).__ready === true);
};

/** What reached window.onerror / unhandledrejection in the page. */
export const pageErrors = (page: Page): Promise<string[]> => page.evaluate(() => (window as unknown as { __errors: string[] }).__errors);

/** Flushes the page's tracer. */
export const flush = (page: Page): Promise<void> =>
  page.evaluate(() => (window as unknown as { tracer: { flush(): Promise<void> } }).tracer.flush());
