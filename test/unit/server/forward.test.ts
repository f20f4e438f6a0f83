import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import type { ExportResult, ScoreRecord, SpanRecord } from '../../../src/protocol';
import { createCollector, type Collector } from '../../../src/server/collector/createCollector';
import { createSqliteStore } from '../../../src/server/collector/sqliteStore';
import type { TraceStore } from '../../../src/server/collector/store';
import { toNodeListener } from '../../../src/server/node';
import { fromEnv } from '../../../src/server/fromEnv';
import { createOtlpExporter } from '../../../src/export/http';
import { chatTrace, spanRecord } from './otlpFixtures';
import { openDatabase } from './sqlite';

// The collector forwarding to a fake Langfuse on loopback with the server-side keys: the fake
// checks Basic auth, `x-langfuse-ingestion-version: 4` and every request body against Langfuse's
// own definition of the endpoint (../shared/reference/langfuse/opentelemetry.yml). Then Langfuse
// goes down: the collector answers 503 + Retry-After, the sender keeps its batches, and after
// Langfuse is back every span arrives, none lost.

const PK = 'pk-lf-test';
const SK = 'sk-lf-tëst'; // non-ASCII: Basic auth must be UTF-8 base64
const INGEST = 'ingest-token-abc';

// --- a small checker for the Fern types of opentelemetry.yml ---

interface FernType {
  properties: Record<string, string | { type: string }>;
}
const OTEL_YML = fileURLToPath(new URL('../../../../shared/reference/langfuse/opentelemetry.yml', import.meta.url));
const fern = YAML.parse(readFileSync(OTEL_YML, 'utf8')) as {
  types: Record<string, FernType>;
  service: { 'base-path': string; endpoints: { exportTraces: { path: string; method: string; request: { body: { properties: Record<string, string | { type: string }> } } } } };
};
const typeText = (p: string | { type: string }): string => (typeof p === 'string' ? p : p.type);

/** Problems found checking `value` against a Fern type expression; OTLP fields the spec does not list are allowed. */
const check = (type: string, value: unknown, at: string): string[] => {
  let m: RegExpMatchArray | null;
  if ((m = /^optional<(.*)>$/.exec(type))) return value === undefined ? [] : check(m[1]!, value, at);
  if (value === undefined) return [`${at} is missing`];
  if ((m = /^list<(.*)>$/.exec(type))) return Array.isArray(value) ? value.flatMap((v, i) => check(m![1]!, v, `${at}[${i}]`)) : [`${at} must be a list`];
  switch (type) {
    case 'string':
      return typeof value === 'string' ? [] : [`${at} must be a string`];
    case 'integer':
      // OTLP/JSON writes 64-bit integers as decimal strings; Langfuse reads both.
      return (typeof value === 'number' && Number.isInteger(value)) || (typeof value === 'string' && /^-?\d+$/.test(value)) ? [] : [`${at} must be an integer`];
    case 'double':
      return typeof value === 'number' || value === 'NaN' || value === 'Infinity' || value === '-Infinity' ? [] : [`${at} must be a number`];
    case 'boolean':
      return typeof value === 'boolean' ? [] : [`${at} must be a boolean`];
    case 'unknown':
      return [];
  }
  const t = fern.types[type];
  if (!t) return [`${at}: unknown type ${type}`];
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return [`${at} must be an object (${type})`];
  return Object.entries(t.properties).flatMap(([k, p]) => check(typeText(p), (value as Record<string, unknown>)[k], `${at}.${k}`));
};

/** What the fake Langfuse's OTLP endpoint demands beyond the Fern types: OTLP/JSON rules. */
const checkOtlp = (body: { resourceSpans: { scopeSpans: { spans: Record<string, unknown>[] }[] }[] }): string[] => {
  const problems: string[] = [];
  for (const rs of body.resourceSpans)
    for (const ss of rs.scopeSpans)
      for (const s of ss.spans) {
        if (!/^[0-9a-f]{32}$/.test(String(s.traceId))) problems.push(`traceId ${String(s.traceId)}`);
        if (!/^[0-9a-f]{16}$/.test(String(s.spanId))) problems.push(`spanId ${String(s.spanId)}`);
        if (!/^\d+$/.test(String(s.startTimeUnixNano)) || !/^\d+$/.test(String(s.endTimeUnixNano))) problems.push('times must be decimal strings');
      }
  return problems;
};

// --- the fake Langfuse ---

type Mode = 'up' | 'overloaded' | 'unreachable';
let mode: Mode = 'up';
let langfuse: Server;
let lfBase = '';
const received = new Map<string, Record<string, unknown>>();
const scores: unknown[] = [];
const problems: string[] = [];
let requests = 0;

const readAll = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let s = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (s += c));
    req.on('end', () => resolve(s));
  });

/** What the collector reported through its onError. */
const logged: string[] = [];
let collectorServer: Server;
let collectorUrl = '';
let collector: Collector;
let store: TraceStore;

beforeAll(async () => {
  const otlpPath = `${fern.service['base-path']}${fern.service.endpoints.exportTraces.path}`;
  expect(otlpPath).toBe('/api/public/otel/v1/traces');
  langfuse = createServer(async (req, res) => {
    requests++;
    if (mode === 'unreachable') {
      req.socket.destroy();
      return;
    }
    const text = await readAll(req);
    if (mode === 'overloaded') {
      res.writeHead(503, { 'retry-after': '3' }).end('busy');
      return;
    }
    const expectedAuth = `Basic ${Buffer.from(`${PK}:${SK}`, 'utf8').toString('base64')}`;
    if (req.headers.authorization !== expectedAuth) {
      problems.push(`authorization ${req.headers.authorization}`);
      res.writeHead(401).end();
      return;
    }
    if (req.url === otlpPath && req.method === fern.service.endpoints.exportTraces.method) {
      if (req.headers['x-langfuse-ingestion-version'] !== '4') problems.push(`ingestion version ${req.headers['x-langfuse-ingestion-version']}`);
      if (!String(req.headers['content-type']).startsWith('application/json')) problems.push(`content-type ${req.headers['content-type']}`);
      const body = JSON.parse(text);
      const found = Object.entries(fern.service.endpoints.exportTraces.request.body.properties).flatMap(([k, p]) => check(typeText(p), body[k], k));
      problems.push(...found, ...checkOtlp(body));
      for (const rs of body.resourceSpans) for (const ss of rs.scopeSpans) for (const s of ss.spans) received.set(s.spanId, s);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      return;
    }
    if (req.url === '/api/public/ingestion') {
      const body = JSON.parse(text) as { batch: { id: string }[] };
      scores.push(...body.batch);
      res.writeHead(207, { 'content-type': 'application/json' }).end(JSON.stringify({ successes: body.batch.map((e) => ({ id: e.id, status: 201 })), errors: [] }));
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => langfuse.listen(0, '127.0.0.1', resolve));
  lfBase = `http://127.0.0.1:${(langfuse.address() as AddressInfo).port}`;

  store = createSqliteStore(openDatabase());
  // Configured the way `edgetrace collect --forward langfuse` does it: from the environment.
  const forward = fromEnv({ TRACING_MODE: 'langfuse', LANGFUSE_PUBLIC_KEY: PK, LANGFUSE_SECRET_KEY: SK, LANGFUSE_BASE_URL: lfBase });
  collector = createCollector({ store, forward, ingestToken: INGEST, retentionMs: false, rateLimit: false, onError: (e) => void logged.push(String(e)) });
  collectorServer = createServer(toNodeListener(collector.fetch));
  await new Promise<void>((resolve) => collectorServer.listen(0, '127.0.0.1', resolve));
  collectorUrl = `http://127.0.0.1:${(collectorServer.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const s of [collectorServer, langfuse]) {
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
  await collector.close();
});

/** A sender that keeps a batch until the collector acknowledges it, as the browser outbox does. */
const sender = () => {
  const exporter = createOtlpExporter({ url: `${collectorUrl}/v1/traces`, headers: { authorization: `Bearer ${INGEST}` } });
  const outbox: SpanRecord[][] = [];
  const results: ExportResult[] = [];
  return {
    outbox,
    results,
    enqueue: (batch: SpanRecord[]) => outbox.push(batch),
    async flush() {
      while (outbox.length) {
        const result = await exporter.export(outbox[0]!);
        results.push(result);
        if (!result.ok) return result;
        outbox.shift();
      }
      return { ok: true } as ExportResult;
    },
  };
};

describe('forwarding to Langfuse', () => {
  it('sends accepted spans with Basic auth, the ingestion header and a body that fits opentelemetry.yml', async () => {
    const s = sender();
    const trace = chatTrace('b1'.padEnd(32, '0'), Date.now());
    s.enqueue(trace);
    expect(await s.flush()).toEqual({ ok: true });
    expect(problems).toEqual([]);
    expect([...received.keys()].sort()).toEqual(trace.map((t) => t.spanId).sort());
    const gen = received.get(trace[2]!.spanId)!;
    expect(gen.attributes).toContainEqual({ key: 'langfuse.observation.type', value: { stringValue: 'generation' } });
    expect(gen.parentSpanId).toBe(trace[1]!.spanId);
  });

  it('forwards scores to the ingestion API', async () => {
    const score: ScoreRecord = { v: 1, rec: 'score', id: 'fb-1', traceId: 'b1'.padEnd(32, '0'), name: 'helpful', value: 1, dataType: 'BOOLEAN', timeMs: Date.now() };
    const res = await fetch(`${collectorUrl}/v1/scores`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST}` }, body: JSON.stringify([score]) });
    expect(res.status).toBe(200);
    expect(scores).toContainEqual(expect.objectContaining({ id: `fb-1@${score.timeMs}`, type: 'score-create', body: expect.objectContaining({ id: 'fb-1', traceId: score.traceId, value: 1 }) }));
  });

  it('answers 503 + Retry-After while Langfuse fails, and loses nothing once it is back', async () => {
    const s = sender();
    const batches = Array.from({ length: 5 }, (_, i) => Array.from({ length: 20 }, () => spanRecord({ name: `b${i}`, startMs: Date.now(), endMs: Date.now() + 1 })));
    const before = received.size;

    mode = 'overloaded';
    for (const b of batches.slice(0, 3)) s.enqueue(b);
    const down = await s.flush();
    expect(down).toMatchObject({ ok: false, retryable: true, status: 503, retryAfterMs: 3000 });
    expect(s.outbox).toHaveLength(3);

    mode = 'unreachable';
    for (const b of batches.slice(3)) s.enqueue(b);
    const gone = await s.flush();
    expect(gone).toMatchObject({ ok: false, retryable: true, status: 503 });
    expect(s.outbox).toHaveLength(5);
    // The collector kept what it could (re-sends will be ignored by the store).
    expect((await store.stats()).spans).toBeGreaterThanOrEqual(20);

    mode = 'up';
    expect(await s.flush()).toEqual({ ok: true });
    expect(s.outbox).toHaveLength(0);
    const all = batches.flat();
    for (const span of all) expect(received.has(span.spanId), span.spanId).toBe(true);
    expect(received.size - before).toBe(all.length);
    // Stored once each, although the first batch was sent three times.
    expect((await store.stats()).spans).toBe(3 + all.length);
    expect(problems).toEqual([]);
    expect(requests).toBeGreaterThan(3);
    // The outage reached the collector's log once per cause (a target's failures are logged once
    // a minute for each status): the 503s, then the unreachable target, not a line per request.
    expect(logged).toEqual([expect.stringMatching(/forward\[0\].*(503|overloaded)/), expect.stringMatching(/forward\[0\]/)]);
    expect(logged[1]).not.toMatch(/503/);
  });
});
