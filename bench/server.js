// The server-side benchmarks (`node bench/server.js`, and the last section of `npm run bench`),
// run against the build (dist/server.js), each server in its own process so that the load
// generator (autocannon, in this process) does not share its event loop:
//
// 1. Collector ingest: OTLP/HTTP JSON batches POSTed on loopback to `createCollector` behind
//    `toNodeListener`, stored in a SQLite file (WAL). Spans per second are counted from the rows
//    in the database afterwards, not from replies. Bar: 20,000 spans/s on the 2-core machine.
// 2. Middleware cost: the same trivial handler with and without `withTracing` (exporter that
//    accepts at once), called in-process (µs added per request), and over HTTP with autocannon
//    (latency percentiles and requests per second); a Node listener with and without
//    `withNodeTracing`, on its own and calling a loopback service through `http.get`.
//
// Writes its section of BENCHMARKS.md between `<!-- server:start -->` and `<!-- server:end -->`.

import { writeSection } from './report.js';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const DIST = new URL('../dist/server.js', import.meta.url);
const SELF = fileURLToPath(import.meta.url);

// Ingest load: batches of 200 spans (a browser outbox flushes a few hundred at a time), 8
// connections, 10 s after a 2 s warm-up.
const SPANS_PER_REQUEST = 200;
const INGEST_CONNECTIONS = 8;
const INGEST_SECONDS = 10;
const WARMUP_SECONDS = 2;
const BAR_SPANS_PER_SECOND = 20_000;
// Middleware: in-process rounds of requests, and autocannon runs of 5 s per server.
const INPROC_REQUESTS = 5_000;
const INPROC_ROUNDS = 9;
const HTTP_SECONDS = 5;
const HTTP_CONNECTIONS = 10;

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

// --- child process: one server, printing {"port": n} once it listens ---

const serve = async (kind, dbPath) => {
  const { createServer } = await import('node:http');
  const server = await import(DIST.href);
  let handler;
  let close = async () => undefined;
  if (kind === 'collector') {
    const store = await server.openSqliteStore({ path: dbPath });
    const collector = server.createCollector({ store, rateLimit: false, retentionMs: false, readToken: false });
    handler = collector.fetch;
    close = () => collector.close();
  } else if (kind === 'plain' || kind === 'traced') {
    const plain = () => new Response('ok');
    handler = kind === 'traced' ? server.withTracing(plain, { exporter: { export: () => Promise.resolve({ ok: true }) }, traceFetch: false }) : plain;
  }
  // A Node request listener as Express and the like are, on its own or in withNodeTracing.
  const nodePlain = Object.assign((req, res) => void res.end('ok'), { drain: async () => undefined });
  // One that calls a service of its own with http.get first (keep-alive), as an Express route
  // calling a backend through axios does; traced, the call is a CLIENT span with traceparent.
  let downstream;
  let nodeCall;
  if (kind === 'nodeCall' || kind === 'nodeCallTraced') {
    // `http.get` read at each call: a copy taken now would be Node's own, not the traced one.
    const httpModule = await import('node:http');
    downstream = createServer((req, res) => void res.end('ok'));
    await new Promise((resolve) => downstream.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${downstream.address().port}/backend`;
    const agent = new httpModule.Agent({ keepAlive: true });
    nodeCall = Object.assign(
      (req, res) =>
        void httpModule.get(url, { agent }, (down) => {
          down.resume();
          down.on('end', () => res.end('ok'));
        }),
      { drain: async () => undefined },
    );
  }
  const quiet = { exporter: { export: () => Promise.resolve({ ok: true }) } };
  const listener =
    kind === 'node' ? nodePlain
    : kind === 'nodeTraced' ? server.withNodeTracing(nodePlain, { ...quiet, traceFetch: false })
    : kind === 'nodeCall' ? nodeCall
    : kind === 'nodeCallTraced' ? server.withNodeTracing(nodeCall, quiet)
    : server.toNodeListener(handler);
  const http = createServer(listener);
  http.keepAliveTimeout = 30_000;
  await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
  const cpu0 = process.cpuUsage();
  console.log(JSON.stringify({ port: http.address().port }));
  process.once('SIGTERM', async () => {
    // CPU the server spent (user + system, µs) while listening: a figure other load on the machine barely moves.
    const cpu = process.cpuUsage(cpu0);
    http.closeAllConnections();
    http.close();
    await listener.drain();
    downstream?.closeAllConnections();
    downstream?.close();
    await close();
    console.log(JSON.stringify({ cpuUs: cpu.user + cpu.system }));
    process.exit(0);
  });
};

const startChild = (kind, dbPath = '') =>
  new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SELF, '--serve', kind, dbPath], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c) => {
      out += c;
      const m = /\{"port":(\d+)\}/.exec(out);
      if (m) {
        resolve({
          port: Number(m[1]),
          /** Stops the server; resolves with the CPU time it used, in µs. */
          stop: () =>
            new Promise((r) => {
              child.once('exit', () => r(Number(/\{"cpuUs":(\d+)\}/.exec(out)?.[1] ?? NaN)));
              child.kill('SIGTERM');
            }),
        });
      }
    });
    child.once('exit', (code) => code !== 0 && reject(new Error(`bench server (${kind}) exited with ${code}`)));
  });

// --- load ---

/** One batch body; `RRRRRRRR` is replaced per request so every span is new to the store. */
export const batchTemplate = () => {
  const now = Date.now();
  const spans = [];
  for (let i = 0; i < SPANS_PER_REQUEST; i++) {
    const n = i.toString(16).padStart(8, '0');
    const start = `${now + i}000000`;
    spans.push({
      traceId: `RRRRRRRR${(i >> 3).toString(16).padStart(8, '0')}0000000000000001`,
      spanId: `RRRRRRRR${n}`,
      parentSpanId: i % 8 === 0 ? undefined : `RRRRRRRR${(i - (i % 8)).toString(16).padStart(8, '0')}`,
      name: i % 8 === 0 ? 'chat-turn' : i % 8 === 1 ? 'POST /api/chat' : 'fetch',
      kind: i % 8 === 1 ? 3 : 1,
      startTimeUnixNano: start,
      endTimeUnixNano: `${now + i + 12}000000`,
      flags: 257,
      attributes: [
        { key: 'http.request.method', value: { stringValue: 'POST' } },
        { key: 'url.full', value: { stringValue: 'https://app.example.com/api/chat?q=[REDACTED]' } },
        { key: 'http.response.status_code', value: { intValue: '200' } },
        { key: 'user.id', value: { stringValue: `user-${i % 17}` } },
        { key: 'session.id', value: { stringValue: `session-${i % 5}` } },
        { key: 'langfuse.observation.type', value: { stringValue: i % 8 === 2 ? 'generation' : 'span' } },
        { key: 'gen_ai.request.model', value: { stringValue: 'gpt-4o-mini' } },
        { key: 'gen_ai.usage.input_tokens', value: { intValue: '812' } },
        { key: 'gen_ai.usage.output_tokens', value: { intValue: '96' } },
        { key: 'edgetrace.chunks', value: { intValue: String(i) } },
      ],
      events: i % 8 === 2 ? [{ timeUnixNano: start, name: 'first-token', attributes: [] }] : [],
      status: { code: i % 50 === 0 ? 2 : 0 },
    });
  }
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'chat-web' } }, { key: 'telemetry.sdk.name', value: { stringValue: 'edgetrace' } }] },
        scopeSpans: [{ scope: { name: 'edgetrace', version: '0.1.0' }, spans }],
      },
    ],
  });
};

const cannon = async (opts) => {
  const { default: autocannon } = await import('autocannon');
  return autocannon({ ...opts, renderProgressBar: false, renderResultsTable: false });
};

const countSpans = (dbPath) => {
  const Database = createRequire(import.meta.url)('better-sqlite3');
  const db = new Database(dbPath, { readonly: true });
  const n = db.prepare('SELECT COUNT(*) AS n FROM spans').get().n;
  db.close();
  return n;
};

const measureIngest = async () => {
  const dir = mkdtempSync(join(tmpdir(), 'edgetrace-bench-'));
  const dbPath = join(dir, 'traces.db');
  const template = batchTemplate();
  let counter = 0;
  let cpuUs = 0;
  const run = async (seconds) => {
    const child = await startChild('collector', dbPath);
    try {
      const body = () => template.replaceAll('RRRRRRRR', (++counter).toString(16).padStart(8, '0'));
      return await cannon({
        url: `http://127.0.0.1:${child.port}/v1/traces`,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        connections: INGEST_CONNECTIONS,
        duration: seconds,
        requests: [{ method: 'POST', setupRequest: (req) => ({ ...req, body: body() }) }],
      });
    } finally {
      cpuUs = await child.stop();
    }
  };
  try {
    await run(WARMUP_SECONDS);
    const before = countSpans(dbPath);
    const t0 = process.hrtime.bigint();
    const result = await run(INGEST_SECONDS);
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const stored = countSpans(dbPath) - before;
    const bytes = Buffer.byteLength(template);
    return {
      stored,
      // autocannon's own duration (load on); the wall time also holds start-up and shutdown.
      perSecond: stored / result.duration,
      perCpuSecond: stored / (cpuUs / 1e6),
      wallPerSecond: stored / seconds,
      requests: result.requests.total,
      ok: result['2xx'],
      non2xx: result.non2xx,
      errors: result.errors,
      p50: result.latency.p50,
      p99: result.latency.p99,
      bodyKB: bytes / 1000,
      load: loadavg()[0],
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

// --- middleware cost ---

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const measureInProcess = async () => {
  const server = await import(DIST.href);
  const plain = () => new Response('ok');
  const traced = server.withTracing(plain, { exporter: { export: () => Promise.resolve({ ok: true }) }, traceFetch: false });
  const pending = [];
  const ctx = { waitUntil: (p) => pending.push(p) };
  const round = async (handler) => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < INPROC_REQUESTS; i++) {
      const res = await handler(new Request('http://bench.local/api/chat?x=1', { headers: { traceparent: TRACEPARENT } }), {}, ctx);
      await res.text();
    }
    const ns = Number(process.hrtime.bigint() - t0) / INPROC_REQUESTS;
    await Promise.all(pending.splice(0));
    return ns;
  };
  await round(plain);
  await round(traced);
  const results = { plain: [], traced: [] };
  for (let r = 0; r < INPROC_ROUNDS; r++) {
    for (const name of r % 2 ? ['traced', 'plain'] : ['plain', 'traced']) results[name].push(await round(name === 'plain' ? plain : traced));
  }
  return { plainUs: median(results.plain) / 1000, tracedUs: median(results.traced) / 1000 };
};

const measureHttp = async () => {
  const out = {};
  const kinds = ['plain', 'traced', 'node', 'nodeTraced', 'nodeCall', 'nodeCallTraced'];
  for (const kind of [...kinds, ...kinds]) {
    const child = await startChild(kind);
    try {
      const r = await cannon({ url: `http://127.0.0.1:${child.port}/api/chat`, headers: { traceparent: TRACEPARENT }, connections: HTTP_CONNECTIONS, duration: HTTP_SECONDS });
      // The second run of each counts; the first warms the machine up.
      out[kind] = { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, non2xx: r.non2xx };
    } finally {
      await child.stop();
    }
  }
  return out;
};

// --- report ---

export const runServerBench = async () => {
  if (!existsSync(DIST)) throw new Error('bench/server.js: dist/server.js is missing; run `npm run build` first.');
  const ingest = await measureIngest();
  const inproc = await measureInProcess();
  const http = await measureHttp();
  const f0 = (n) => Math.round(n).toLocaleString('en-US');
  const f1 = (n) => n.toFixed(1);
  /** A table of autocannon runs, a row per server. */
  const rpsTable = (what, runs) => [
    `| ${what} | requests/s | latency p50 | latency p99 |`,
    '| --- | ---: | ---: | ---: |',
    ...Object.entries(runs).map(([name, r]) => `| ${name} | ${f0(r.rps)} | ${r.p50} ms | ${r.p99} ms |`),
  ];
  const lines = [
    `Measured with \`node bench/server.js\` (part of \`npm run bench\`) on ${new Date().toISOString().slice(0, 10)}: Node ${process.version}; server and load generator in separate processes on loopback.`,
    '',
    '### Collector ingest into SQLite',
    '',
    `autocannon POSTs OTLP/HTTP JSON batches of ${SPANS_PER_REQUEST} spans (${f1(ingest.bodyKB)} kB each, 10 attributes per span, every span new) ` +
      `over ${INGEST_CONNECTIONS} connections for ${INGEST_SECONDS} s after a ${WARMUP_SECONDS} s warm-up, to \`createCollector\` ` +
      '(validation, conversion, one transaction per batch, WAL) behind `toNodeListener`. Spans are counted in the database afterwards.',
    '',
    '| spans stored | spans/s | bar | spans per server CPU-second | requests (2xx / other / errors) | latency p50 / p99 | machine load (1 min) |',
    '| ---: | ---: | ---: | ---: | --- | --- | ---: |',
    `| ${f0(ingest.stored)} | **${f0(ingest.perSecond)}** | ${f0(BAR_SPANS_PER_SECOND)} (${ingest.perSecond >= BAR_SPANS_PER_SECOND ? 'met' : '**not met**'}) | ${f0(ingest.perCpuSecond)} | ${ingest.ok} / ${ingest.non2xx} / ${ingest.errors} | ${ingest.p50} ms / ${ingest.p99} ms | ${ingest.load.toFixed(1)} |`,
    '',
    'Spans per server CPU-second divides the stored spans by the CPU time (user + system) of the collector process: ' +
      'it is what one core sustains, and moves little when other work shares the machine; spans/s is wall-clock, with autocannon on the other core.',
    '',
    '### Middleware cost (`withTracing`)',
    '',
    `A handler returning \`new Response('ok')\`, with and without \`withTracing\` (incoming traceparent continued, SERVER span, ` +
      'body observed to its end, one export per request through waitUntil to an exporter that accepts at once).',
    '',
    `In-process, median of ${INPROC_ROUNDS} rounds of ${f0(INPROC_REQUESTS)} requests (build the Request, call, read the body):`,
    '',
    '| handler | µs per request |',
    '| --- | ---: |',
    `| plain | ${f1(inproc.plainUs)} |`,
    `| withTracing | ${f1(inproc.tracedUs)} |`,
    `| **added by withTracing** | **${f1(inproc.tracedUs - inproc.plainUs)}** |`,
    '',
    `Over HTTP on loopback (Node http + \`toNodeListener\`), autocannon, ${HTTP_CONNECTIONS} connections, ${HTTP_SECONDS} s (second of two runs each):`,
    '',
    ...rpsTable('handler', { plain: http.plain, withTracing: http.traced }),
    '',
    'A Node request listener (`res.end(\'ok\')`, as Express and the like are at the bottom), on its own and in `withNodeTracing`, the same way:',
    '',
    ...rpsTable('listener', { plain: http.node, withNodeTracing: http.nodeTraced }),
    '',
    'A listener that first calls a service on loopback with `http.get` (keep-alive agent) and answers when its body has ended; in `withNodeTracing` that call is a CLIENT span and carries `traceparent`:',
    '',
    ...rpsTable('listener', { plain: http.nodeCall, withNodeTracing: http.nodeCallTraced }),
  ];
  const section = lines.join('\n');
  writeSection('server', section);
  console.log(section);
  return { ingest, inproc, http };
};

if (process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  if (process.argv[2] === '--serve') await serve(process.argv[3], process.argv[4]);
  else await runServerBench();
}
