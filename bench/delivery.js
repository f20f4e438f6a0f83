// `npm run bench` (bench/run.js calls this after its own part), or `node bench/delivery.js` after
// `npm run build`. Measures the delivery path in real Chromium (Debian's, through playwright-core)
// against the built dist/, and writes its figures into BENCHMARKS.md between the delivery markers:
//
// 1. Main-thread cost per span, hand-off included: edgetrace (page buffer → service worker) and
//    OpenTelemetry's web SDK (WebTracerProvider + BatchSpanProcessor + OTLP/HTTP exporter) in the
//    same page, alternating rounds. The cost is the renderer main thread's busy time (CDP
//    Performance.getMetrics TaskDuration) over the span loop and everything until the spans left
//    the main thread: for edgetrace the hand-off to the worker, for OpenTelemetry its forceFlush
//    (encoding and sending happen on the main thread there).
// 2. Worker ingest into IndexedDB: batches of 500 records sent straight to the worker's API, each
//    committed in one transaction before it answers.
// 3. End to end: spans ended in the page until the loopback receiver has them all.
// 4. The worker build's size: dist/edgetrace-sw.js, minified (as built) + brotli.

import { writeSection } from './report.js';
import { createServer } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import zlib from 'node:zlib';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// The flags the e2e suite uses: no calls home on a closed network.
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

const TRACES_PER_ROUND = 3000; // 9,000 spans: long rounds average out a busy machine
const WARMUP_ROUNDS = 3;
const ROUNDS = 31; // a median over more rounds: steadier on a shared, noisy machine
const INGEST_RECORDS = 20_000;
const INGEST_BATCH = 500;
const E2E_SPANS = 30_000;
const BARS = { ratio: 5, ingest: 20_000, e2e: 10_000, workerBytes: 6000 };

for (const f of ['dist/index.js', 'dist/edgetrace-sw.js']) {
  if (!existsSync(join(ROOT, f))) {
    console.error(`bench/delivery: ${f} is missing; run \`npm run build\` first.`);
    process.exit(1);
  }
}

// OpenTelemetry's web SDK as a page would ship it: one minified bundle.
const otel = await build({
  stdin: {
    contents: `
      import { WebTracerProvider } from '@opentelemetry/sdk-trace-web';
      import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
      import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
      import { context, trace } from '@opentelemetry/api';
      window.otel = { WebTracerProvider, BatchSpanProcessor, OTLPTraceExporter, context, trace };`,
    resolveDir: ROOT,
    loader: 'js',
  },
  bundle: true,
  minify: true,
  format: 'iife',
  write: false,
});
const OTEL_JS = otel.outputFiles[0].text;

// --- the loopback server: pages, dist/, dependencies, and receivers that count spans ---

const received = { edgetrace: 0, otel: 0 };
let holdIngest = true;
const IMPORTS = {
  comlink: '/node_modules/comlink/dist/esm/comlink.mjs',
  idb: '/node_modules/idb/build/index.js',
  nanoid: '/node_modules/nanoid/index.browser.js',
};
const countSpans = (text) => {
  // Counting `"spanId"` keys is enough here and cheaper than parsing: links are not used.
  let n = 0;
  for (let i = text.indexOf('"spanId"'); i >= 0; i = text.indexOf('"spanId"', i + 8)) n++;
  return n;
};
const PAGE = `<!doctype html><html><head><meta charset="utf-8"><script type="importmap">${JSON.stringify({ imports: IMPORTS })}</script>
<script src="/otel.js"></script>
<script type="module">
  import * as et from '/dist/index.js';
  import { wrap } from 'comlink';
  const params = new URLSearchParams(location.search);
  const endpoint = location.origin + (params.get('endpoint') ?? '/v1/traces');
  const tracer = et.init({ endpoint, serviceName: 'bench', instrument: false, pageBuffer: { maxRecords: 100000 },
    delivery: { maxRecords: 200000, maxBytes: 500000000, maxBatchRecords: 2000, maxBatchBytes: 4000000, flushIntervalMs: 50 } });
  const { WebTracerProvider, BatchSpanProcessor, OTLPTraceExporter, context, trace } = window.otel;
  const provider = new WebTracerProvider({ spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: location.origin + '/v1/otel' }),
    { maxExportBatchSize: 512, maxQueueSize: 16384, scheduledDelayMillis: 1000 })] });
  const otelTracer = provider.getTracer('bench');
  // The shape of bench/run.js: root -> child -> grandchild, three attributes each.
  window.edgeRound = async (n) => {
    for (let i = 0; i < n; i++) {
      const root = tracer.createTrace('root');
      root.setAttribute('http.route', '/chat'); root.setAttribute('item', i); root.setAttribute('cached', false);
      const child = root.startSpan('child');
      child.setAttribute('db.system', 'vector'); child.setAttribute('top_k', 5); child.setAttribute('hit', true);
      const g = child.startSpan('grandchild');
      g.setAttribute('model', 'small'); g.setAttribute('tokens', i & 1023); g.setAttribute('stream', true);
      g.end(); child.end(); root.finish();
    }
    await et.flushNow();
  };
  window.otelRound = async (n) => {
    for (let i = 0; i < n; i++) {
      const root = otelTracer.startSpan('root', undefined, context.active());
      root.setAttribute('http.route', '/chat'); root.setAttribute('item', i); root.setAttribute('cached', false);
      const child = otelTracer.startSpan('child', undefined, trace.setSpan(context.active(), root));
      child.setAttribute('db.system', 'vector'); child.setAttribute('top_k', 5); child.setAttribute('hit', true);
      const g = otelTracer.startSpan('grandchild', undefined, trace.setSpan(context.active(), child));
      g.setAttribute('model', 'small'); g.setAttribute('tokens', i & 1023); g.setAttribute('stream', true);
      g.end(); child.end(); root.end();
    }
    await provider.forceFlush();
  };
  window.deliveryStatus = () => et.getStatus();
  // Ingest: real records from a tracer, sent to the worker API in batches and timed until committed.
  window.ingest = async (total, batch) => {
    const records = [];
    const t = et.createTracer({ serviceName: 'bench', processors: [{ onEnd: (r) => records.push(r) }] });
    for (let i = 0; i < total; i++) { const s = t.createTrace('ingest'); s.setAttribute('i', i); s.setAttribute('k', 'v'); s.finish(); }
    const reg = await navigator.serviceWorker.ready;
    const { port1, port2 } = new MessageChannel();
    reg.active.postMessage({ edgetrace: 'connect' }, [port2]);
    const api = wrap(port1);
    await api.getStatus();
    const t0 = performance.now();
    let stored = 0;
    for (let i = 0; i < total; i += batch) stored += await api.enqueue(records.slice(i, i + batch));
    return { ms: performance.now() - t0, stored };
  };
  window.makeSpans = (n) => { for (let i = 0; i < n; i++) { const s = tracer.createTrace('e2e'); s.setAttribute('i', i); s.finish(); } };
  window.ready = true;
</script></head><body>bench</body></html>`;

const server = createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://x').pathname;
  if (req.method === 'POST') {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (c) => (text += c));
    req.on('end', () => {
      // The ingest run points the worker at /v1/hold, which never answers: nothing leaves the outbox.
      if (path === '/v1/hold' && holdIngest) return;
      if (path === '/v1/otel') received.otel += countSpans(text);
      else received.edgetrace += countSpans(text);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    return;
  }
  const send = (type, body) => {
    res.writeHead(200, { 'content-type': type, 'cache-control': 'no-store' });
    res.end(body);
  };
  if (path === '/bench.html') return send('text/html', PAGE);
  if (path === '/otel.js') return send('text/javascript', OTEL_JS);
  let file;
  if (path === '/edgetrace-sw.js') file = join(ROOT, 'dist/edgetrace-sw.js');
  else if (path.startsWith('/dist/') || /^\/node_modules\/(comlink|idb|nanoid)\//.test(path)) file = join(ROOT, path.slice(1));
  if (file && file.startsWith(ROOT) && existsSync(file)) return send('text/javascript', readFileSync(file));
  res.writeHead(404);
  res.end();
});
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const origin = `http://127.0.0.1:${server.address().port}`;

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
try {
  // --- 1. main-thread cost per span ---
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${origin}/bench.html`);
  await page.waitForFunction(() => window.ready === true);
  await page.waitForFunction(async () => (await window.deliveryStatus()).transport === 'worker', undefined, { timeout: 20_000 });
  const cdp = await context.newCDPSession(page);
  await cdp.send('Performance.enable');
  const busy = async () => (await cdp.send('Performance.getMetrics')).metrics.find((m) => m.name === 'TaskDuration').value;
  const round = async (fn) => {
    const key = fn === 'edgeRound' ? 'edgetrace' : 'otel';
    const got = received[key];
    const before = await busy();
    await page.evaluate(([name, n]) => window[name](n), [fn, TRACES_PER_ROUND]);
    const us = ((await busy()) - before) * 1e6 / (TRACES_PER_ROUND * 3);
    // Both must deliver every span, or one did less work (OpenTelemetry drops beyond its queue).
    const deadline = Date.now() + 30_000;
    while (received[key] - got < TRACES_PER_ROUND * 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    if (received[key] - got !== TRACES_PER_ROUND * 3) throw new Error(`bench/delivery: ${key} delivered ${received[key] - got} of ${TRACES_PER_ROUND * 3} spans in a round`);
    return us;
  };
  for (let i = 0; i < WARMUP_ROUNDS; i++) {
    await round('edgeRound');
    await round('otelRound');
  }
  const costs = { edgetrace: [], otel: [] };
  for (let i = 0; i < ROUNDS; i++) {
    const order = i % 2 ? ['otelRound', 'edgeRound'] : ['edgeRound', 'otelRound'];
    for (const fn of order) costs[fn === 'edgeRound' ? 'edgetrace' : 'otel'].push(await round(fn));
  }
  const perSpan = { edgetrace: median(costs.edgetrace), otel: median(costs.otel) };
  console.log('µs/span by round: edgetrace', costs.edgetrace.map((x) => x.toFixed(2)).join(' '), '| otel', costs.otel.map((x) => x.toFixed(2)).join(' '));
  await context.close();

  // --- 2. worker ingest into IndexedDB ---
  const ingestContext = await browser.newContext();
  const ingestPage = await ingestContext.newPage();
  await ingestPage.goto(`${origin}/bench.html?endpoint=/v1/hold`);
  await ingestPage.waitForFunction(() => window.ready === true);
  await ingestPage.waitForFunction(async () => (await window.deliveryStatus()).transport === 'worker', undefined, { timeout: 20_000 });
  const ingest = await ingestPage.evaluate(([n, b]) => window.ingest(n, b), [INGEST_RECORDS, INGEST_BATCH]);
  if (ingest.stored !== INGEST_RECORDS) throw new Error(`bench/delivery: the worker stored ${ingest.stored} of ${INGEST_RECORDS}`);
  const ingestRate = INGEST_RECORDS / (ingest.ms / 1000);
  holdIngest = false;
  await ingestContext.close();

  // --- 3. end to end ---
  const e2eContext = await browser.newContext();
  const e2ePage = await e2eContext.newPage();
  await e2ePage.goto(`${origin}/bench.html`);
  await e2ePage.waitForFunction(() => window.ready === true);
  await e2ePage.waitForFunction(async () => (await window.deliveryStatus()).transport === 'worker', undefined, { timeout: 20_000 });
  received.edgetrace = 0;
  const t0 = Date.now();
  await e2ePage.evaluate((n) => window.makeSpans(n), E2E_SPANS);
  while (received.edgetrace < E2E_SPANS && Date.now() - t0 < 120_000) await new Promise((r) => setTimeout(r, 5));
  const e2eMs = Date.now() - t0;
  if (received.edgetrace < E2E_SPANS) throw new Error(`bench/delivery: only ${received.edgetrace} of ${E2E_SPANS} spans arrived`);
  const e2eRate = E2E_SPANS / (e2eMs / 1000);
  await e2eContext.close();

  // --- 4. worker build size ---
  const sw = readFileSync(join(ROOT, 'dist/edgetrace-sw.js'));
  const swBrotli = zlib.brotliCompressSync(sw, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 11 } }).length;

  // --- report ---
  const ratio = perSpan.otel / perSpan.edgetrace;
  const version = JSON.parse(readFileSync(join(ROOT, 'node_modules/@opentelemetry/sdk-trace-web/package.json'), 'utf8')).version;
  const chromiumVersion = browser.version();
  const mark = (ok) => (ok ? 'met' : '**not met**');
  const lines = [
    `Measured with \`node bench/delivery.js\` on ${new Date().toISOString().slice(0, 10)}: Chromium ${chromiumVersion} (headless), Node ${process.version}.`,
    '',
    '### Delivery: main-thread cost per span, hand-off included',
    '',
    `Root → child → grandchild with three attributes each, ${TRACES_PER_ROUND * 3} spans per round, ${ROUNDS} rounds each after ` +
      `${WARMUP_ROUNDS} warm-up rounds, alternated in one page. Cost = main-thread busy time (CDP \`Performance.getMetrics\` ` +
      'TaskDuration) from the first span until the spans have left the main thread: edgetrace\'s hand-off to the service worker ' +
      '(`flushNow()`), OpenTelemetry\'s `forceFlush()` (its OTLP/HTTP exporter encodes and sends on the main thread). ' +
      'Every round checks that the loopback receiver got every span from both. edgetrace runs with its default page buffer and ' +
      '`instrument: false` (no browser instrumentation, as on the OpenTelemetry side); OpenTelemetry\'s queue is large enough ' +
      'to drop nothing (16384).',
    '',
    '| library | median µs/span | fastest round | slowest round |',
    '| --- | ---: | ---: | ---: |',
    `| edgetrace (dist/index.js → edgetrace-sw.js) | ${perSpan.edgetrace.toFixed(2)} | ${Math.min(...costs.edgetrace).toFixed(2)} | ${Math.max(...costs.edgetrace).toFixed(2)} |`,
    `| @opentelemetry/sdk-trace-web ${version} + BatchSpanProcessor + OTLP/HTTP | ${perSpan.otel.toFixed(2)} | ${Math.min(...costs.otel).toFixed(2)} | ${Math.max(...costs.otel).toFixed(2)} |`,
    '',
    `OpenTelemetry / edgetrace: **${ratio.toFixed(1)}×** (bar: at least ${BARS.ratio}×, ${mark(ratio >= BARS.ratio)}).`,
    '',
    '### Delivery: throughput and size',
    '',
    '| what | figure | bar | |',
    '| --- | ---: | ---: | --- |',
    `| worker ingest into IndexedDB (${INGEST_RECORDS} records, batches of ${INGEST_BATCH}, one transaction each) | ${Math.round(ingestRate).toLocaleString('en')} spans/s | ≥ ${BARS.ingest.toLocaleString('en')} | ${mark(ingestRate >= BARS.ingest)} |`,
    `| end to end, page → worker → loopback receiver (${E2E_SPANS} spans) | ${Math.round(e2eRate).toLocaleString('en')} spans/s | ≥ ${BARS.e2e.toLocaleString('en')} | ${mark(e2eRate >= BARS.e2e)} |`,
    `| worker build \`dist/edgetrace-sw.js\` (idb, the comlink call answerer and the OTLP encoder inside), min + brotli | ${swBrotli.toLocaleString('en-US')} B | < ${BARS.workerBytes.toLocaleString('en-US')} B | ${mark(swBrotli < BARS.workerBytes)} |`,
  ];
  const section = lines.join('\n');
  writeSection('delivery', section);
  console.log(section);
} finally {
  await browser.close();
  server.close();
}
