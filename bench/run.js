// `npm run bench`: builds, then measures two things and writes them into BENCHMARKS.md.
//
// 1. Span cost. The same trace shape (root → child → grandchild, 3 attributes on each span)
//    through edgetrace's built `dist/index.js`, through OpenTelemetry's BasicTracerProvider and
//    through a bare reference span (the floor), in this process, rotating rounds, reporting the
//    median nanoseconds per span.
// 2. Bundle size. `size-limit --json` with the budgets from package.json (minified + brotli).
//
// Plain Node ESM on purpose: it measures what users get from the build, not the TypeScript.

import { writeSection } from './report.js';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DIST = new URL('../dist/index.js', import.meta.url);

// Traces per timed chunk: 500 traces are 1500 spans, below both processors' batch size (2048),
// so no export starts inside the timed loop; each chunk's batch is flushed untimed after it.
const TRACES_PER_CHUNK = 500;
const CHUNKS_PER_ROUND = 10;
const WARMUP_ROUNDS = 3;
const ROUNDS = 21;
const SPANS_PER_TRACE = 3;
const BATCH = { size: 2048, queue: 4096, delayMs: 1000 };

// The page-entry budget we aim for (STYLE.md section 8); the size-limit rows guard regressions.
const CORE_TARGET_BYTES = 4000;
// Span start + end at least this many times cheaper than OpenTelemetry's (issue bar).
const SPAN_RATIO_BAR = 5;

if (!existsSync(DIST)) {
  console.error('bench: dist/index.js is missing; run `npm run bench` (it builds first) or `npm run build`.');
  process.exit(1);
}

const { createTracer, batchProcessor } = await import(DIST.href);
const { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter } = await import('@opentelemetry/sdk-trace-base');
const { context, trace } = await import('@opentelemetry/api');

const readJson = (path) => JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8'));
const PKG = readJson('../package.json');
const versionOf = (dep) => readJson(`../node_modules/${dep}/package.json`).version;

// --- edgetrace ---

let edgeExported = 0;
// Resolves at once, so the benchmark measures the tracer's hot path, not a transport.
const edgeExporter = {
  export(records) {
    edgeExported += records.length;
    return Promise.resolve({ ok: true });
  },
};
const edgeTracer = createTracer({
  serviceName: 'bench',
  processors: [batchProcessor(edgeExporter, { maxBatchSize: BATCH.size, maxQueueSize: BATCH.queue, delayMs: BATCH.delayMs })],
});

const edgeChunk = (n) => {
  for (let i = 0; i < n; i++) {
    const root = edgeTracer.createTrace('root');
    root.setAttribute('http.route', '/chat');
    root.setAttribute('item', i);
    root.setAttribute('cached', false);
    const child = root.startSpan('child');
    child.setAttribute('db.system', 'vector');
    child.setAttribute('top_k', 5);
    child.setAttribute('hit', true);
    const grandchild = child.startSpan('grandchild');
    grandchild.setAttribute('model', 'small');
    grandchild.setAttribute('tokens', i & 1023);
    grandchild.setAttribute('stream', true);
    grandchild.end();
    child.end();
    root.finish();
  }
};

// --- OpenTelemetry ---

const otelExporter = new InMemorySpanExporter();
const otelProvider = new BasicTracerProvider({
  spanProcessors: [
    new BatchSpanProcessor(otelExporter, {
      maxExportBatchSize: BATCH.size,
      maxQueueSize: BATCH.queue,
      scheduledDelayMillis: BATCH.delayMs,
    }),
  ],
});
const otelTracer = otelProvider.getTracer('bench');
let otelExported = 0;

const otelChunk = (n) => {
  for (let i = 0; i < n; i++) {
    const root = otelTracer.startSpan('root', undefined, context.active());
    root.setAttribute('http.route', '/chat');
    root.setAttribute('item', i);
    root.setAttribute('cached', false);
    const child = otelTracer.startSpan('child', undefined, trace.setSpan(context.active(), root));
    child.setAttribute('db.system', 'vector');
    child.setAttribute('top_k', 5);
    child.setAttribute('hit', true);
    const grandchild = otelTracer.startSpan('grandchild', undefined, trace.setSpan(context.active(), child));
    grandchild.setAttribute('model', 'small');
    grandchild.setAttribute('tokens', i & 1023);
    grandchild.setAttribute('stream', true);
    grandchild.end();
    child.end();
    root.end();
  }
};

// --- floor: the least any tracer does for this shape ---
// Not a library: a reference point. A span here is one object with its ids, name, times and
// attributes, a random id from a pooled CSPRNG as hex, two clock reads and three attribute stores,
// pushed to an array when it ends: no limits, redaction, sampling, processors or context. A real
// tracer adds to this, so `floor / OpenTelemetry` is about the best ratio this run allows.

// Char codes of the hex digits; one String.fromCharCode call per id builds a flat string.
const HEX_CODES = [...'0123456789abcdef'].map((c) => c.charCodeAt(0));
const floorPool = new Uint8Array(65536);
let floorOffset = floorPool.length;
const floorId = () => {
  if (floorOffset + 8 > floorPool.length) {
    crypto.getRandomValues(floorPool);
    floorOffset = 0;
  }
  const p = floorPool;
  const o = floorOffset;
  const h = HEX_CODES;
  floorOffset += 8;
  return String.fromCharCode(
    h[p[o] >> 4], h[p[o] & 15], h[p[o + 1] >> 4], h[p[o + 1] & 15], h[p[o + 2] >> 4], h[p[o + 2] & 15], h[p[o + 3] >> 4], h[p[o + 3] & 15],
    h[p[o + 4] >> 4], h[p[o + 4] & 15], h[p[o + 5] >> 4], h[p[o + 5] & 15], h[p[o + 6] >> 4], h[p[o + 6] & 15], h[p[o + 7] >> 4], h[p[o + 7] & 15],
  );
};
const floorNow = () => performance.timeOrigin + performance.now();
let floorDone = [];
let floorExported = 0;
class FloorSpan {
  constructor(traceId, parentId, name) {
    this.traceId = traceId;
    this.spanId = floorId();
    this.parentId = parentId;
    this.name = name;
    this.startMs = floorNow();
    this.endMs = 0;
    this.attrs = {};
  }
  setAttribute(key, value) {
    this.attrs[key] = value;
  }
  end() {
    this.endMs = floorNow();
    floorDone.push(this);
  }
}

const floorChunk = (n) => {
  for (let i = 0; i < n; i++) {
    const traceId = floorId() + floorId();
    const root = new FloorSpan(traceId, undefined, 'root');
    root.setAttribute('http.route', '/chat');
    root.setAttribute('item', i);
    root.setAttribute('cached', false);
    const child = new FloorSpan(traceId, root.spanId, 'child');
    child.setAttribute('db.system', 'vector');
    child.setAttribute('top_k', 5);
    child.setAttribute('hit', true);
    const grandchild = new FloorSpan(traceId, child.spanId, 'grandchild');
    grandchild.setAttribute('model', 'small');
    grandchild.setAttribute('tokens', i & 1023);
    grandchild.setAttribute('stream', true);
    grandchild.end();
    child.end();
    root.end();
  }
};

// --- rounds ---

const subjects = {
  edgetrace: {
    chunk: edgeChunk,
    flush: async () => {
      await edgeTracer.flush();
    },
    exported: () => edgeExported,
  },
  opentelemetry: {
    chunk: otelChunk,
    flush: async () => {
      await otelProvider.forceFlush();
      otelExported += otelExporter.getFinishedSpans().length;
      otelExporter.reset();
    },
    exported: () => otelExported,
  },
  floor: {
    chunk: floorChunk,
    flush: async () => {
      floorExported += floorDone.length;
      floorDone = [];
      await new Promise((resolve) => setTimeout(resolve, 0));
    },
    exported: () => floorExported,
  },
};

/** One round: CHUNKS_PER_ROUND timed chunks, each followed by an untimed flush. Returns ns/span. */
const round = async (subject) => {
  // No forced GC between rounds: on these VMs it hands memory back to the host, and re-touching
  // it made rounds several times slower and far noisier. Garbage from one library may be collected
  // during the other's round; alternating the order spreads that evenly.
  const before = subject.exported();
  let ns = 0n;
  for (let c = 0; c < CHUNKS_PER_ROUND; c++) {
    const t0 = process.hrtime.bigint();
    subject.chunk(TRACES_PER_CHUNK);
    ns += process.hrtime.bigint() - t0;
    await subject.flush();
  }
  const spans = TRACES_PER_CHUNK * CHUNKS_PER_ROUND * SPANS_PER_TRACE;
  const got = subject.exported() - before;
  if (got !== spans) throw new Error(`bench: expected ${spans} exported spans, got ${got}`);
  return Number(ns) / spans;
};

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/** Both libraries must build the same tree, or the comparison means nothing. */
const checkShape = async () => {
  const seen = [];
  const probe = createTracer({ processors: [{ onEnd: (r) => seen.push(r) }] });
  const root = probe.createTrace('root');
  const child = root.startSpan('child');
  const grandchild = child.startSpan('grandchild');
  grandchild.end();
  child.end();
  root.finish();
  const [g, c, r] = seen;
  if (seen.length !== 3 || g.parentId !== c.spanId || c.parentId !== r.spanId || r.parentId !== undefined || g.traceId !== r.traceId) {
    throw new Error('bench: edgetrace did not build root → child → grandchild');
  }
  floorChunk(1);
  const [fg, fc, fr] = floorDone.splice(0);
  if (fg.parentId !== fc.spanId || fc.parentId !== fr.spanId || fr.parentId !== undefined || !/^[\da-f]{16}$/.test(fg.spanId)) {
    throw new Error('bench: the floor did not build root → child → grandchild');
  }
  otelChunk(1);
  await otelProvider.forceFlush();
  const [og, oc, or] = otelExporter.getFinishedSpans();
  otelExporter.reset();
  const parentOf = (s) => (s.parentSpanContext ?? s.parentSpanId)?.spanId ?? s.parentSpanId;
  if (parentOf(og) !== oc.spanContext().spanId || parentOf(oc) !== or.spanContext().spanId || parentOf(or) !== undefined) {
    throw new Error('bench: OpenTelemetry did not build root → child → grandchild');
  }
};

const measureSpans = async () => {
  await checkShape();
  const names = Object.keys(subjects);
  for (let i = 0; i < WARMUP_ROUNDS; i++) for (const name of names) await round(subjects[name]);
  const results = Object.fromEntries(names.map((n) => [n, []]));
  for (let i = 0; i < ROUNDS; i++) {
    // Rotate which goes first, so drift in machine load hits all alike.
    const order = names.map((_, j) => names[(i + j) % names.length]);
    for (const name of order) results[name].push(await round(subjects[name]));
  }
  for (const n of names) console.log(`${n.padEnd(14)} ns/span by round: ${results[n].map((x) => x.toFixed(0)).join(' ')}`);
  // Each round's pair ran back to back, so a load spike from other processes hits both halves of
  // a pair alike: the median of the per-pair ratios is steadier than the ratio of the medians.
  const pairRatio = (a) => median(results[a].map((x, i) => x / results.opentelemetry[i]));
  const stats = Object.fromEntries(names.map((n) => [n, { median: median(results[n]), min: Math.min(...results[n]), max: Math.max(...results[n]) }]));
  return { ...stats, pairRatio: pairRatio('edgetrace'), floorRatio: pairRatio('floor') };
};

// --- bundle size ---

const measureSizes = () => {
  const run = spawnSync('npx', ['--no-install', 'size-limit', '--json'], { cwd: ROOT, encoding: 'utf8' });
  const start = run.stdout.indexOf('[');
  if (start < 0) {
    throw new Error(`bench: size-limit printed no JSON (exit ${run.status}):\n${run.stdout}\n${run.stderr}`);
  }
  const rows = JSON.parse(run.stdout.slice(start));
  const budgets = PKG['size-limit'] ?? [];
  return rows.map((row) => {
    const budget = budgets.find((b) => b.name === row.name);
    return { ...row, path: budget?.path, import: budget?.import, limit: budget?.limit };
  });
};

// --- report ---

const kB = (bytes) => `${(bytes / 1000).toFixed(2)} kB`;
// A size-limit `import`: one import string, or one per file for a row over several entries.
const importText = (imp) => {
  if (!imp) return 'whole file';
  if (typeof imp === 'string') return `\`${imp}\``;
  return Object.entries(imp).map(([file, names]) => `\`${names}\` from \`${file}\``).join(' + ');
};
const fmtNs = (ns) => `${ns.toFixed(0)} ns`;

const spans = await measureSpans();
const sizes = measureSizes();

const edge = spans.edgetrace;
const otel = spans.opentelemetry;
const floor = spans.floor;
// Two clock reads per span, as the floor makes them.
const clockNs = (() => {
  const n = 1_000_000;
  let sink = 0;
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) sink += floorNow();
  const ns = Number(process.hrtime.bigint() - t0) / n;
  return sink > 0 ? 2 * ns : 0;
})();
const ratio = spans.pairRatio;
const cpus = os.cpus();
const machine = `${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${cpus.length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.arch()}`;
const date = new Date().toISOString().slice(0, 10);
const CORE_ROW = 'core: tracer + propagation + OTLP encoder';
const core = sizes.find((s) => s.name === CORE_ROW);

const lines = [
  `Measured with \`npm run bench\` on ${date}: Node ${process.version}, ${machine}.`,
  '',
  '### Span cost',
  '',
  `Start + 3 attributes + end, per span, for a root → child → grandchild trace repeated ` +
    `${TRACES_PER_CHUNK * CHUNKS_PER_ROUND} times per round; ${ROUNDS} rounds each after ${WARMUP_ROUNDS} warm-up rounds, ` +
    `rotated in one process. Both libraries use a batch processor (batch ${BATCH.size}, queue ${BATCH.queue}) over an exporter that ` +
    'accepts at once; batches are flushed outside the timed loops. Parents are explicit on both sides ' +
    '(`span.startSpan()` / `trace.setSpan(context.active(), parent)`).',
  '',
  '| library | median ns/span | fastest round | slowest round |',
  '| --- | ---: | ---: | ---: |',
  `| edgetrace ${PKG.version} (dist/index.js) | ${fmtNs(edge.median)} | ${fmtNs(edge.min)} | ${fmtNs(edge.max)} |`,
  `| @opentelemetry/sdk-trace-base ${versionOf('@opentelemetry/sdk-trace-base')} | ${fmtNs(otel.median)} | ${fmtNs(otel.min)} | ${fmtNs(otel.max)} |`,
  `| floor: the least any tracer does (reference, see below) | ${fmtNs(floor.median)} | ${fmtNs(floor.min)} | ${fmtNs(floor.max)} |`,
  '',
  `edgetrace / OpenTelemetry, median of the ${ROUNDS} back-to-back round sets: **${ratio.toFixed(2)}×** ` +
    `(edgetrace ${(1 / ratio).toFixed(1)} times cheaper; ratio of the medians ${(edge.median / otel.median).toFixed(2)}×). ` +
    `Bar: at least ${SPAN_RATIO_BAR}× cheaper: ${1 / ratio >= SPAN_RATIO_BAR ? 'met' : '**not met**'}.`,
  '',
  'The floor is a reference, not a library: one object per span with its ids, name, times and attributes, a pooled ' +
    'random id, two clock reads and three attribute stores, pushed to an array at the end; no limits, redaction, ' +
    `sampling, processors or context. It is **${(1 / spans.floorRatio).toFixed(1)} times** cheaper than OpenTelemetry ` +
    `in this run, about the most a tracer could be; the two clock reads alone cost about ${fmtNs(clockNs)} per span here.`,
  '',
  '### Bundle size',
  '',
  'size-limit (esbuild bundle with dependencies, minified, brotli); budgets are in package.json.',
  '',
  '| what | file | import | size | budget | within budget |',
  '| --- | --- | --- | ---: | ---: | --- |',
  ...sizes.map(
    (s) => `| ${s.name} | ${[s.path].flat().map((p) => `\`${p}\``).join(' + ')} | ${importText(s.import)} | ${kB(s.size)} | ${s.limit ?? '-'} | ${s.passed ? 'yes' : 'no'} |`,
  ),
  '',
  core
    ? `Core target (tracer + propagation + OTLP encoder under ${kB(CORE_TARGET_BYTES)}): ${core.size < CORE_TARGET_BYTES ? 'met' : `**not met** (${kB(core.size)})`}.`
    : `Core target: no "${CORE_ROW}" row in package.json.`,
];
const section = lines.join('\n');

writeSection('bench', section);

console.log(section);
console.log('\nsize-limit --json:');
console.log(JSON.stringify(sizes.map(({ name, size, passed }) => ({ name, size, passed })), null, 2));
console.log('\nBENCHMARKS.md updated.');

// --- browser instrumentation (bench/browser.js) ---
// Added latency per traced fetch in real Chromium, and the page bundle against OpenTelemetry web
// and Sentry; written between its own markers so the sections above stay as they are.
{
  const { runBrowserBench } = await import('./browser.js');
  const { section: browserSection } = await runBrowserBench();
  writeSection('browser', browserSection);
  console.log(`\n${browserSection}\n\nBENCHMARKS.md browser section updated.`);
}

// --- delivery (bench/delivery.js): main-thread cost per span vs OpenTelemetry web, worker ingest
// and end-to-end rates in Chromium, worker build size. It writes its own section of BENCHMARKS.md
// (between the delivery markers) and needs the build this script already ran. ---
await import('./delivery.js');

// --- server and collector (bench/server.js): collector ingest into SQLite on loopback with
// autocannon, and the cost withTracing adds per request. It writes its own section of
// BENCHMARKS.md (between the server markers) and needs the build this script already ran. ---
{
  const { runServerBench } = await import('./server.js');
  await runServerBench();
}
