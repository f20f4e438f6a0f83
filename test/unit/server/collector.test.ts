import { describe, it, expect, beforeEach, afterEach, vi } from 'vitest';
import { openDatabase } from './sqlite';
import { gzipSync } from 'node:zlib';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Exporter, ExportResult, ScoreRecord, SpanRecord, TelemetryRecord } from '../../../src/protocol';
import { createCollector, type Collector, type CollectorOptions } from '../../../src/server/collector/createCollector';
import { createSqliteStore, type SqliteDatabase } from '../../../src/server/collector/sqliteStore';
import { STATS_WINDOW_TOO_LARGE, type TraceStore } from '../../../src/server/collector/store';
import { chatTrace, otlpBody, otlpProtobuf, spanRecord } from './otlpFixtures';

const BASE = 1_732_140_000_000;
const URL_BASE = 'https://collector.example.com';
const INGEST = 'ingest-token-1';
const READ = 'read-token-22';

let store: TraceStore;
let collector: Collector;

/** What the collector reported (its onError), for the tests that make targets fail. */
let logged: unknown[] = [];
const make = (opts: Partial<CollectorOptions> = {}) => {
  // Fixture times are in 2024: without retentionMs: false the first ingest would prune them.
  collector = createCollector({ store, ingestToken: INGEST, readToken: READ, allowedOrigins: ['https://app.example.com'], retentionMs: false, onError: (e) => void logged.push(e), ...opts });
  return collector;
};

beforeEach(() => {
  logged = [];
  store = createSqliteStore(openDatabase());
  make();
});
afterEach(async () => {
  await collector.close();
});

const post = (body: BodyInit | null, headers: Record<string, string> = {}, path = '/v1/traces', ctx?: unknown) =>
  collector.fetch(
    new Request(URL_BASE + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST}`, ...headers },
      body,
    }),
    {},
    ctx,
  );

/** The `message` of an error answer (a google.rpc.Status body). */
const messageOf = async (res: Response): Promise<string> => ((await res.json()) as { message: string }).message;

const get = (path: string, headers: Record<string, string> = { authorization: `Bearer ${READ}` }) =>
  collector.fetch(new Request(URL_BASE + path, { headers }));

/** An exporter whose answers the test scripts, recording what it got. */
const scripted = (answer: (records: readonly TelemetryRecord[]) => ExportResult | Promise<ExportResult>) => {
  const got: TelemetryRecord[][] = [];
  const exporter: Exporter = {
    export: async (records) => {
      got.push([...records]);
      return answer(records);
    },
  };
  return { got, exporter };
};

/** Runs `fn` with fake setTimeout/clearTimeout: the collector's forward wait and slow targets. */
const withFakeTimers = async (fn: () => Promise<void>): Promise<void> => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  try {
    await fn();
  } finally {
    vi.useRealTimers();
  }
};

/** A target that takes `delayMs(calls so far)` of (fake) time to accept each batch. */
const slowTarget = (delayMs: (calls: number) => number) => {
  const target = scripted(() => new Promise<ExportResult>((resolve) => setTimeout(() => resolve({ ok: true }), delayMs(target.got.length))));
  return target;
};

describe('createCollector: ingest', () => {
  it('stores a good OTLP/JSON request and answers {}', async () => {
    const res = await post(JSON.stringify(otlpBody(chatTrace('a1'.padEnd(32, '0'), BASE))));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({});
    expect((await store.listTraces()).traces).toHaveLength(1);
  });

  it('accepts gzip', async () => {
    const res = await post(gzipSync(JSON.stringify(otlpBody([spanRecord()]))), { 'content-encoding': 'gzip' });
    expect(res.status).toBe(200);
    expect((await store.stats()).spans).toBe(1);
  });

  it('takes a gzip body whose Content-Encoding a proxy dropped, and says so when it is broken', async () => {
    const zipped = gzipSync(JSON.stringify(otlpBody([spanRecord()])));
    expect((await post(zipped)).status).toBe(200);
    expect((await store.stats()).spans).toBe(1);
    expect((await post(gzipSync(otlpProtobuf([spanRecord()])), { 'content-type': 'application/x-protobuf' })).status).toBe(200);
    const broken = await post(zipped.subarray(0, 20));
    expect(broken.status).toBe(400);
    expect(await messageOf(broken)).toMatch(/^the gzip body could not be decompressed \(it starts as gzip does but came without Content-Encoding: gzip, which a proxy may have dropped\): /);
    // Within the limit after decompression, as a declared gzip body.
    make({ maxBodyBytes: 1000 });
    expect((await post(gzipSync(JSON.stringify(otlpBody(Array.from({ length: 20 }, () => spanRecord())))))).status).toBe(413);
  });

  it('accepts text/plain bodies (beacons) and the token as ?token=', async () => {
    const res = await collector.fetch(
      new Request(`${URL_BASE}/v1/traces?token=${INGEST}`, { method: 'POST', headers: { 'content-type': 'text/plain;charset=UTF-8' }, body: JSON.stringify(otlpBody([spanRecord()])) }),
    );
    expect(res.status).toBe(200);
  });

  it('answers partialSuccess for bad spans and keeps the good ones', async () => {
    const body = otlpBody([spanRecord(), spanRecord()]);
    body.resourceSpans[0]!.scopeSpans[0]!.spans[1]!.spanId = 'nothex';
    const res = await post(JSON.stringify(body));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      partialSuccess: { rejectedSpans: '1', errorMessage: 'resourceSpans[0].scopeSpans[0].spans[1].spanId must be 16 hex characters, not all zero' },
    });
    expect((await store.stats()).spans).toBe(1);
  });

  it('refuses spans from before the retention period or ending more than a day ahead, keeping the rest', async () => {
    const DAY = 24 * 3600 * 1000;
    make({ retentionMs: 30 * DAY, now: () => BASE });
    const spans = [
      spanRecord({ spanId: '1'.repeat(16), name: 'fine', startMs: BASE - DAY, endMs: BASE - DAY + 5 }),
      spanRecord({ spanId: '2'.repeat(16), name: 'ancient', startMs: 1, endMs: BASE - DAY }),
      spanRecord({ spanId: '3'.repeat(16), name: 'ahead', startMs: BASE + 2 * DAY, endMs: BASE + 2 * DAY + 5 }),
      // A start of now and an end a century on: its trace would outlive every prune.
      spanRecord({ spanId: '4'.repeat(16), name: 'endless', startMs: BASE, endMs: BASE + 36_500 * DAY }),
    ];
    const body = (await (await post(JSON.stringify(otlpBody(spans)))).json()) as { partialSuccess?: { rejectedSpans: string; errorMessage: string } };
    expect(body.partialSuccess?.rejectedSpans).toBe('3');
    expect(body.partialSuccess?.errorMessage).toMatch(/3 span\(s\) start before the retention period or end more than a day ahead/);
    const listed = (await (await get('/api/traces?from=0')).json()) as { traces: { name: string }[] };
    expect(listed.traces.map((t) => t.name)).toEqual(['fine']);
  });

  it('forwards spans of any time when there is no store to prune', async () => {
    const DAY = 24 * 3600 * 1000;
    const target = scripted(() => ({ ok: true }));
    make({ store: undefined, forward: target.exporter, now: () => BASE });
    const ahead = spanRecord({ name: 'device clock two days fast', startMs: BASE + 2 * DAY, endMs: BASE + 2 * DAY + 5 });
    const res = await post(JSON.stringify(otlpBody([ahead, spanRecord({ name: 'old', startMs: 1, endMs: 2 })])));
    expect(await res.json()).toEqual({});
    expect(target.got.flat().map((r) => (r as SpanRecord).name)).toEqual(['device clock two days fast', 'old']);
  });

  it('answers 400 naming the problem for a malformed request', async () => {
    const cases: [BodyInit, RegExp][] = [
      ['{"resourceSpans": [', /^the body is not valid JSON/],
      ['', /^the body is empty/],
      ['   ', /^the body is not valid JSON/],
      ['[1,2]', /must be a JSON object/],
      ['{"resourceSpans": 5}', /^resourceSpans must be an array$/],
      [new Uint8Array([0xff, 0xfe, 0x7b]), /not valid UTF-8/],
    ];
    for (const [body, message] of cases) {
      const res = await post(body);
      expect(res.status).toBe(400);
      const json = (await res.json()) as { code: number; message: string };
      expect(json.code).toBe(3);
      expect(json.message).toMatch(message);
    }
    const gz = await post(new Uint8Array([0x1f, 0x8b, 1, 2, 3]), { 'content-encoding': 'gzip' });
    expect(gz.status).toBe(400);
    expect(await messageOf(gz)).toMatch(/gzip/);
  });

  it('answers 415 for other content types and encodings, naming what it takes', async () => {
    const xml = await post('<spans/>', { 'content-type': 'application/xml' });
    expect(xml.status).toBe(415);
    expect(await messageOf(xml)).toBe('content-type must be application/json or application/x-protobuf (or text/plain for beacons), got "application/xml"');
    // Scores are edgetrace's own JSON route: no protobuf form.
    const scores = await post('x', { 'content-type': 'application/x-protobuf' }, '/v1/scores');
    expect(scores.status).toBe(415);
    expect(scores.headers.get('content-type')).toBe('application/json');
    expect(await messageOf(scores)).toBe('content-type must be application/json (or text/plain for beacons), got "application/x-protobuf"');
    expect((await post('{}', { 'content-encoding': 'br' })).status).toBe(415);
  });

  describe('binary protobuf on /v1/traces', () => {
    const PROTO = { 'content-type': 'application/x-protobuf' };
    const protoBody = async (res: Response) => Buffer.from(await res.arrayBuffer());

    it('stores the spans and answers an empty ExportTraceServiceResponse', async () => {
      const a = spanRecord({ name: 'db' });
      const res = await post(otlpProtobuf([a]), PROTO);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/x-protobuf');
      expect((await protoBody(res)).length).toBe(0);
      const tree = await store.getTrace(a.traceId);
      expect(tree?.roots[0]).toMatchObject({ spanId: a.spanId, name: 'db', kind: 'server', startMs: a.startMs, endMs: a.endMs });
    });

    it('answers partial success in protobuf, and takes gzip', async () => {
      const good = spanRecord();
      // Three spans: lengths past 127 bytes, written as multi-byte varints.
      const res = await post(gzipSync(otlpProtobuf([good, spanRecord({ name: 'x'.repeat(200) }), spanRecord({ traceId: '0'.repeat(32) })])), { ...PROTO, 'content-encoding': 'gzip' });
      expect(res.status).toBe(200);
      const reply = await protoBody(res);
      // partial_success (field 1) { rejected_spans (1) = 1, error_message (2) = … }
      expect([...reply.subarray(0, 1)]).toEqual([0x0a]);
      expect([...reply.subarray(2, 4)]).toEqual([0x08, 1]);
      expect(reply.subarray(6).toString()).toMatch(/^resourceSpans\[0\]\.scopeSpans\[0\]\.spans\[2\]\.traceId must be 32 hex characters, not all zero/);
      expect(await store.getTrace(good.traceId)).toBeDefined();
    });

    it('answers every refusal as a protobuf google.rpc.Status', async () => {
      const refusals = [
        await post(Uint8Array.from([0x0a, 0x7f]), PROTO),
        await post(otlpProtobuf([]), { ...PROTO, authorization: 'Bearer wrong' }),
        await post(otlpProtobuf([]), { ...PROTO, 'content-length': '9999999' }),
      ];
      expect(refusals.map((r) => r.status)).toEqual([400, 401, 413]);
      for (const res of refusals) {
        expect(res.headers.get('content-type')).toBe('application/x-protobuf');
        const body = await protoBody(res);
        // code (field 1, varint), then message (field 2, length-delimited).
        expect(body[0]).toBe(0x08);
        expect(body[2]).toBe(0x12);
      }
      expect((await protoBody(await post(Uint8Array.from([0x0a, 0x7f]), PROTO))).subarray(4).toString()).toBe(
        'the protobuf body at resourceSpans[0] declares 127 bytes where 0 are left',
      );
    });
  });

  it('answers 413 above maxBodyBytes, declared or not, and after decompression', async () => {
    make({ maxBodyBytes: 1000 });
    const big = JSON.stringify(otlpBody(Array.from({ length: 20 }, () => spanRecord())));
    expect((await post(big)).status).toBe(413);
    const stream = new ReadableStream({
      start(c) {
        c.enqueue(new TextEncoder().encode(big));
        c.close();
      },
    });
    const undeclared = await collector.fetch(
      new Request(`${URL_BASE}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST}` }, body: stream, duplex: 'half' } as RequestInit),
    );
    expect(undeclared.status).toBe(413);
    // A zip bomb: 300 bytes that inflate to 1 MB.
    const bomb = gzipSync(' '.repeat(1_000_000));
    expect(bomb.length).toBeLessThan(2000);
    const res = await post(bomb, { 'content-encoding': 'gzip' });
    expect(res.status).toBe(413);
    expect(await messageOf(res)).toMatch(/after gzip/);
  });

  it('answers 503 with Retry-After while other bodies hold maxBytesInFlight, and gives the room back', async () => {
    make({ maxBodyBytes: 4000, maxBytesInFlight: 4400, retryAfterSec: 3 });
    const good = JSON.stringify(otlpBody(chatTrace('b1'.padEnd(32, '0'), BASE)));
    expect(good.length).toBeGreaterThan(1400);
    expect(good.length).toBeLessThan(2000);
    // A slow sender: 3,000 bytes arrive, the rest is still on the way.
    let finishSlow!: () => void;
    const slowBody = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new Uint8Array(3000).fill(32));
        finishSlow = () => {
          c.enqueue(new TextEncoder().encode('{}'));
          c.close();
        };
      },
    });
    const slow = collector.fetch(
      new Request(`${URL_BASE}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST}` }, body: slowBody, duplex: 'half' } as RequestInit),
    );
    await new Promise((r) => setTimeout(r, 20));
    // 3,000 held + this body > 4,400: refused for now, as a retry, and nothing of it stored.
    const busy = await post(good);
    expect(busy.status).toBe(503);
    expect(busy.headers.get('retry-after')).toBe('3');
    expect(await messageOf(busy)).toMatch(/send again later/);
    expect(await store.getTrace('b1'.padEnd(32, '0'))).toBeUndefined();
    finishSlow();
    expect((await slow).status).toBe(200);
    // Answered requests give their bytes back, refused ones too: the same body now goes in.
    expect((await post('{not json')).status).toBe(400);
    expect((await post(good)).status).toBe(200);
    expect((await post(good)).status).toBe(200);
    expect(await store.getTrace('b1'.padEnd(32, '0'))).toBeDefined();
  });

  it('lets one client hold at most a quarter of maxBytesInFlight, so its stalled uploads shut no one else out', async () => {
    make({ maxBodyBytes: 4000, maxBytesInFlight: 16_000, rateLimit: false });
    const good = JSON.stringify(otlpBody(chatTrace('b2'.padEnd(32, '0'), BASE)));
    // Stalled uploads from one address: each has sent 1,500 bytes and stops there.
    const finish: (() => void)[] = [];
    const stalled = (from: string) => {
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(new Uint8Array(1500).fill(32));
          finish.push(() => {
            c.enqueue(new TextEncoder().encode('{}'));
            c.close();
          });
        },
      });
      const headers = { 'content-type': 'application/json', authorization: `Bearer ${INGEST}` };
      return collector.fetch(new Request(`${URL_BASE}/v1/traces`, { method: 'POST', headers, body, duplex: 'half' } as RequestInit), {}, { clientAddress: from });
    };
    const attack = [stalled('10.0.0.66'), stalled('10.0.0.66')];
    await new Promise((r) => setTimeout(r, 20));
    // A third from the same address would pass its 4,000 bytes (a quarter of 16,000): refused.
    const third = await post(good, {}, '/v1/traces', { clientAddress: '10.0.0.66' });
    expect(third.status).toBe(503);
    expect(await messageOf(third)).toMatch(/from this client/);
    // Everyone else still gets in.
    expect((await post(good, {}, '/v1/traces', { clientAddress: '10.0.0.7' })).status).toBe(200);
    for (const f of finish) f();
    expect((await Promise.all(attack)).map((r) => r.status)).toEqual([200, 200]);
    // Its bytes given back, the client may send again.
    expect((await post(good, {}, '/v1/traces', { clientAddress: '10.0.0.66' })).status).toBe(200);
  });

  it('refuses a maxBytesInFlight below maxBodyBytes at creation, naming the option', () => {
    expect(() => createCollector({ store, maxBodyBytes: 1000, maxBytesInFlight: 999 })).toThrow(/maxBytesInFlight/);
    expect(() => createCollector({ store, maxBytesInFlight: 1.5 })).toThrow(/maxBytesInFlight/);
  });

  it('answers 401 without the ingest token or with a wrong one', async () => {
    expect((await post('{}', { authorization: '' })).status).toBe(401);
    const wrong = await post('{}', { authorization: 'Bearer nope-nope-nope' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toBe('Bearer');
    expect((await post('{}', { authorization: '', 'x-edgetrace-token': INGEST })).status).toBe(200);
    // The read token does not grant writing.
    expect((await post('{}', { authorization: `Bearer ${READ}` })).status).toBe(401);
  });

  it('takes allowed origins as a browser spells them, and refuses what is not an origin', async () => {
    const from = (c: ReturnType<typeof make>, origin: string) => c.fetch(new Request(`${URL_BASE}/v1/traces`, { method: 'POST', headers: { origin, 'x-edgetrace-token': INGEST }, body: '{}' }));
    const c = make({ allowedOrigins: ['HTTPS://App.Example.com:443/', 'http://localhost:5173/', 'http://[::1]:3000', 'capacitor://localhost', 'chrome-extension://abcdefghijklmnop'] });
    for (const origin of ['https://app.example.com', 'http://localhost:5173', 'http://[::1]:3000', 'capacitor://localhost', 'chrome-extension://abcdefghijklmnop']) {
      expect((await from(c, origin)).status, origin).toBe(200);
    }
    expect((await from(c, 'http://localhost:5174')).status).toBe(403);
    for (const bad of ['notanorigin', 'app.example.com', 'https://app.example.com/app', 'https://app.example.com?x=1', 'https://user@app.example.com', 'file:///tmp/x', 'null', 42]) {
      expect(() => createCollector({ store, allowedOrigins: ['https://ok.example', bad as string] })).toThrow(/"allowedOrigins\[1\]" must be an origin such as/);
    }
    expect(() => createCollector({ store, allowedOrigins: ['*'] })).toThrow(/any origin is allowedOrigins: '\*' alone, not in a list/);
    await c.close();
    // A /g pattern is stateful in JavaScript; every request is judged afresh.
    const g = make({ allowedOrigins: [/^https:\/\/app\.example\.com$/g] });
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await from(g, 'https://app.example.com')).status);
    expect(statuses).toEqual([200, 200, 200, 200]);
  });

  it('answers CORS preflight for allowed origins and 403 for others', async () => {
    const pre = await collector.fetch(new Request(`${URL_BASE}/v1/traces`, { method: 'OPTIONS', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' } }));
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(pre.headers.get('access-control-allow-methods')).toContain('POST');
    expect(pre.headers.get('access-control-allow-headers')).toContain('content-encoding');
    // Headers the page adds itself (init({ headers }), its own token header name) are allowed.
    const asking = (requested: string) =>
      collector.fetch(new Request(`${URL_BASE}/v1/traces`, { method: 'OPTIONS', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': requested } }));
    const custom = await asking('content-type,X-Tenant');
    // Each once: ours, then what the page asks for beyond them.
    expect(custom.headers.get('access-control-allow-headers')).toBe('content-type, content-encoding, authorization, x-edgetrace-token, traceparent, tracestate, x-tenant');
    expect((await asking('traceparent, tracestate, content-type')).headers.get('access-control-allow-headers')).toBe('content-type, content-encoding, authorization, x-edgetrace-token, traceparent, tracestate');
    expect(custom.headers.get('vary')).toContain('access-control-request-headers');
    expect((await asking('bad header(')).headers.get('access-control-allow-headers')).not.toContain('bad');
    // Another origin's page may send its request, only to read the 403 that refuses it: a network
    // error would have the SDK retry what it can never send, with nothing to say why.
    const bad = await collector.fetch(new Request(`${URL_BASE}/v1/traces`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } }));
    expect(bad.status).toBe(204);
    expect(bad.headers.get('access-control-allow-origin')).toBe('https://evil.example');
    // The query API tells it nothing.
    const reading = await collector.fetch(new Request(`${URL_BASE}/api/traces`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'GET' } }));
    expect(reading.status).toBe(403);
    expect(reading.headers.get('access-control-allow-origin')).toBeNull();

    const ok = await post('{}', { origin: 'https://app.example.com' });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(ok.headers.get('access-control-expose-headers')).toBe('retry-after');
    const evil = await post('{}', { origin: 'https://evil.example' });
    expect(evil.status).toBe(403);
    expect(evil.headers.get('access-control-allow-origin')).toBe('https://evil.example');
    expect(((await evil.json()) as { message: string }).message).toBe('origin https://evil.example is not allowed to use this collector: allowedOrigins (--allow-origin of edgetrace collect) does not list it');
    // Same origin and server-to-server (no Origin) need no allowlist entry.
    expect((await post('{}', { origin: URL_BASE })).status).toBe(200);
    // A page's own origin, proxied on by its app (a Next.js rewrite): still refused, with the setting that lets it in named.
    const proxied = await post('{}', { origin: 'http://127.0.0.1:3000', 'x-forwarded-host': '127.0.0.1:3000', 'x-forwarded-proto': 'http' });
    expect(proxied.status).toBe(403);
    expect(((await proxied.json()) as { message: string }).message).toBe(
      "origin http://127.0.0.1:3000 is not allowed to use this collector: allowedOrigins (--allow-origin of edgetrace collect) does not list it; it came through a proxy for that host (X-Forwarded-Host): trustProxy (--trust-proxy 1) lets in a page of the proxy's own origin",
    );
    // A proxy for another host says nothing of it.
    const other = await post('{}', { origin: 'https://evil.example', 'x-forwarded-host': 'app.example.com' });
    expect(((await other.json()) as { message: string }).message).not.toContain('trust-proxy');
  });

  it('logs the senders it refuses for their token or origin once a minute per origin, never the token', async () => {
    let t = Date.UTC(2026, 0, 1);
    make({ now: () => t });
    const from = (origin: string | undefined, token?: string) =>
      collector.fetch(
        new Request(`${URL_BASE}/v1/traces`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(origin ? { origin } : {}), ...(token ? { authorization: `Bearer ${token}` } : {}) },
          body: '{}',
        }),
      );
    for (let i = 0; i < 3; i++) expect((await from('https://evil.example', INGEST)).status).toBe(403);
    for (let i = 0; i < 3; i++) expect((await from('https://app.example.com', 'not-the-token')).status).toBe(401);
    expect((await from('https://app.example.com')).status).toBe(401);
    expect((await from(undefined)).status).toBe(401);
    expect((await from('https://other.example', INGEST)).status).toBe(403);
    expect(logged.map((e) => (e as Error).message)).toEqual([
      'refused a request from origin https://evil.example with 403: allowedOrigins (--allow-origin of edgetrace collect) does not list it',
      'refused a request from origin https://app.example.com with 401: a wrong ingest token',
      'refused a request without Origin (a server or a script) with 401: no ingest token (Authorization: Bearer, x-edgetrace-token or ?token=)',
      'refused a request from origin https://other.example with 403: allowedOrigins (--allow-origin of edgetrace collect) does not list it',
    ]);
    expect(logged.map(String).join('\n')).not.toContain('not-the-token');
    // A minute on, the same mistake is told again.
    t += 60_000;
    await from('https://evil.example', INGEST);
    expect(logged).toHaveLength(5);
    // The Origin header is the client's to write: a flood of made-up ones logs a bounded number of lines.
    for (let i = 0; i < 100; i++) await from(`https://x${i}.example`, INGEST);
    expect(logged.length).toBeLessThanOrEqual(5 + 32);
  });

  it('rate-limits each client with a token bucket and Retry-After', async () => {
    let t = 0;
    make({ rateLimit: { perSecond: 2, burst: 3 }, now: () => t, clientKey: (req) => req.headers.get('x-client') ?? undefined });
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await post('{}', { 'x-client': 'a' })).status);
    expect(statuses).toEqual([200, 200, 200, 429, 429]);
    const limited = await post('{}', { 'x-client': 'a' });
    expect(limited.headers.get('retry-after')).toBe('1');
    // Another client is unaffected; time refills the bucket.
    expect((await post('{}', { 'x-client': 'b' })).status).toBe(200);
    t += 1000;
    expect((await post('{}', { 'x-client': 'a' })).status).toBe(200);
  });

  it('does not take a cf-connecting-ip the client wrote as its rate-limit key outside Cloudflare', async () => {
    make({ rateLimit: { perSecond: 1, burst: 2 }, now: () => 0 });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await post('{}', { 'cf-connecting-ip': `10.0.0.${i}` })).status);
    expect(statuses).toEqual([200, 200, 429, 429]);
  });

  describe('behind reverse proxies (trustProxy)', () => {
    const PROXY = { waitUntil: () => undefined, clientAddress: '127.0.0.1' };
    const via = (headers: Record<string, string>, url = `${URL_BASE}/v1/traces`) =>
      collector.fetch(
        new Request(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST}`, ...headers }, body: '{}' }),
        {},
        PROXY,
      );

    it('limits each client by the address its proxy put in X-Forwarded-For, never one the client wrote', async () => {
      make({ rateLimit: { perSecond: 1, burst: 1 }, now: () => 0, trustProxy: 1 });
      expect((await via({ 'x-forwarded-for': '198.51.100.1' })).status).toBe(200);
      expect((await via({ 'x-forwarded-for': '198.51.100.2' })).status).toBe(200);
      expect((await via({ 'x-forwarded-for': '198.51.100.1' })).status).toBe(429);
      // What the client wrote stands left of what the proxy added.
      expect((await via({ 'x-forwarded-for': '203.0.113.77, 198.51.100.1' })).status).toBe(429);
      // Two proxies: the outer one wrote the client's address, one entry further left.
      make({ rateLimit: { perSecond: 1, burst: 1 }, now: () => 0, trustProxy: 2 });
      expect((await via({ 'x-forwarded-for': '203.0.113.77, [2001:db8::5]:41000, 10.0.0.2' })).status).toBe(200);
      expect((await via({ 'x-forwarded-for': '2001:db8::5, 10.0.0.3' })).status).toBe(429);
      // Without trustProxy every client behind the proxy shares its address, as before.
      make({ rateLimit: { perSecond: 1, burst: 1 }, now: () => 0 });
      expect((await via({ 'x-forwarded-for': '198.51.100.1' })).status).toBe(200);
      expect((await via({ 'x-forwarded-for': '198.51.100.2' })).status).toBe(429);
    });

    it('takes a same-origin page behind a proxy that ends TLS as same-origin, from X-Forwarded-Proto and -Host', async () => {
      // Node's adapter rebuilds the URL from what reached it: http, and the proxy's upstream host.
      const page = { origin: 'https://collector.example.com', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'collector.example.com' };
      make({ trustProxy: 1 });
      expect((await via(page, 'http://127.0.0.1:4318/v1/traces')).status).toBe(200);
      expect((await via({ ...page, origin: 'https://elsewhere.example' }, 'http://127.0.0.1:4318/v1/traces')).status).toBe(403);
      // A host that is no host leaves the URL as it came.
      expect((await via({ ...page, 'x-forwarded-host': 'collector.example.com/x@y' }, 'http://127.0.0.1:4318/v1/traces')).status).toBe(403);
      make();
      expect((await via(page, 'http://collector.example.com/v1/traces')).status).toBe(403);
    });

    it('lets no page ask in a preflight to send X-Forwarded headers, which would name its own origin', async () => {
      const preflight = () =>
        collector.fetch(
          new Request(`${URL_BASE}/v1/traces`, {
            method: 'OPTIONS',
            headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, x-forwarded-host, forwarded, x-app' },
          }),
        );
      make({ trustProxy: 1 });
      expect((await preflight()).headers.get('access-control-allow-headers')).toBe(
        'content-type, content-encoding, authorization, x-edgetrace-token, traceparent, tracestate, x-app',
      );
      make();
      expect((await preflight()).headers.get('access-control-allow-headers')).toContain('x-forwarded-host');
    });

    it('answers the open query API for the client the proxy names, not for the proxy', async () => {
      make({ readToken: false, trustProxy: 1 });
      const read = (xff: string) => collector.fetch(new Request('http://localhost:4318/api/traces', { headers: { 'x-forwarded-for': xff } }), {}, PROXY);
      expect((await read('127.0.0.1')).status).toBe(200);
      const res = await read('192.0.2.7');
      expect(res.status).toBe(403);
      expect(await messageOf(res)).toContain('this machine only, not 192.0.2.7');
    });

    it('refuses a trustProxy that is not a number of proxies', () => {
      for (const bad of [0, 1.5, -1, '1', true]) expect(() => createCollector({ store, trustProxy: bad as number })).toThrow(/"trustProxy" must be a whole number ≥ 1/);
    });
  });

  it('refuses rate-limit options that would block every client for good', () => {
    for (const rateLimit of [{ perSecond: 0 }, { burst: 0 }, { perSecond: Number.NaN }, { maxClients: -1 }]) {
      expect(() => createCollector({ store, rateLimit })).toThrow(/"rateLimit\.(perSecond|burst|maxClients)" must be a number > 0/);
    }
  });

  it('answers 405 and 404 for what it does not serve', async () => {
    expect((await get('/v1/traces', {})).status).toBe(405);
    expect((await get('/nope', {})).status).toBe(404);
    expect(await (await get('/health', {})).json()).toEqual({ ok: true, store: true, forward: 0 });
  });

  it('lets an allowed page read the 404 of a path it mistyped, which names the routes', async () => {
    const page = 'https://app.example.com';
    const ask = (path: string, origin = page) =>
      collector.fetch(new Request(URL_BASE + path, { method: 'OPTIONS', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type, authorization' } }));
    for (const path of ['/v1/trace', '/', '/v1/traces/extra']) {
      const pre = await ask(path);
      expect(pre.status, path).toBe(204);
      expect(pre.headers.get('access-control-allow-origin'), path).toBe(page);
      expect(pre.headers.get('access-control-allow-methods'), path).toContain('POST');
      expect(pre.headers.get('access-control-allow-headers'), path).toContain('authorization');
      const res = await post('{}', { origin: page }, path);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('access-control-allow-origin'), path).toBe(page);
      expect(await messageOf(res)).toBe(`nothing at ${path}: spans go to POST /v1/traces, scores to POST /v1/scores`);
    }
    // Another origin learns nothing of paths it may not use.
    expect((await ask('/v1/trace', 'https://evil.example')).headers.get('access-control-allow-origin')).toBeNull();
    expect((await post('{}', { origin: 'https://evil.example' }, '/v1/trace')).headers.get('access-control-allow-origin')).toBeNull();
    // Mounted elsewhere, the answer names where.
    make({ basePath: '/collector' });
    for (const path of ['/v1/traces', '/collector/v1/trace']) {
      expect((await ask(path)).status, path).toBe(204);
      const res = await post('{}', { origin: page }, path);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('access-control-allow-origin'), path).toBe(page);
      expect(await messageOf(res)).toBe(`nothing at ${path}: spans go to POST /collector/v1/traces, scores to POST /collector/v1/scores`);
    }
  });

  it('takes the ingest routes with a trailing slash', async () => {
    const spans = await post(JSON.stringify(otlpBody([spanRecord()])), { origin: 'https://app.example.com' }, '/v1/traces/');
    expect(spans.status).toBe(200);
    expect(spans.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect((await store.stats()).spans).toBe(1);
    expect((await post('[]', {}, '/v1/scores/')).status).toBe(200);
    const pre = await collector.fetch(new Request(`${URL_BASE}/v1/traces/`, { method: 'OPTIONS', headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' } }));
    expect(pre.headers.get('access-control-allow-methods')).toBe('POST, OPTIONS');
  });

  it('answers 503 with Retry-After when the store fails, and takes the retry later', async () => {
    let failing = true;
    const flaky: TraceStore = { ...store, insertSpans: (s) => (failing ? Promise.reject(new Error('disk full')) : store.insertSpans(s)) };
    const errors: unknown[] = [];
    make({ store: flaky, onError: (e) => errors.push(e) });
    const body = JSON.stringify(otlpBody([spanRecord()]));
    const res = await post(body);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('10');
    expect(errors).toHaveLength(1);
    // A probe hears it: not ready while writes fail.
    const sick = await get('/health', {});
    expect(sick.status).toBe(503);
    expect(await sick.json()).toMatchObject({ ok: false, store: true, storeFailedAt: expect.any(String) });
    failing = false;
    expect((await post(body)).status).toBe(200);
    expect((await store.stats()).spans).toBe(1);
    expect(await (await get('/health', {})).json()).toEqual({ ok: true, store: true, forward: 0 });
  });

  it('logs a store that keeps failing (another writer holds the file) once a minute, and answers 503 each time', async () => {
    let t = Date.UTC(2026, 0, 1);
    const busy: TraceStore = { ...store, insertSpans: () => Promise.reject(new Error('database is locked')) };
    const errors: unknown[] = [];
    make({ store: busy, onError: (e) => errors.push(e), now: () => t });
    const body = JSON.stringify(otlpBody([spanRecord()]));
    for (let i = 0; i < 5; i++) expect((await post(body)).status).toBe(503);
    expect(errors.map((e) => [String(e), String((e as Error).cause)])).toEqual([['CollectorError: the store could not take a batch', 'Error: database is locked']]);
    t += 60_000;
    expect((await post(body)).status).toBe(503);
    expect(errors).toHaveLength(2);
    expect((await get('/health', {})).status).toBe(503);
    // A minute with no write, as when a probe took it out of rotation: ready to be tried again.
    t += 60_000;
    expect((await get('/health', {})).status).toBe(200);
  });

  it('never throws and always answers, whatever the body', async () => {
    const bodies = ['', 'null', '0', '"x"', '[]', '{}', '{"resourceSpans":[null]}', '{"resourceSpans":[{"scopeSpans":[{"spans":[null,1,"x",[]]}]}]}', '['.repeat(100_000), '{"a":'.repeat(50_000)];
    for (const b of bodies) {
      const res = await post(b);
      expect([200, 400]).toContain(res.status);
      expect(() => JSON.parse('[]')).not.toThrow();
      await res.text();
    }
    const res = await collector.fetch(new Request(`${URL_BASE}/v1/traces`, { method: 'POST', headers: { authorization: `Bearer ${INGEST}` } }));
    expect(res.status).toBe(415);
  });
});

describe('createCollector: forwarding', () => {
  it('forwards accepted spans and scores, and answers 503 + Retry-After while a target fails', async () => {
    let answer: ExportResult = { ok: false, retryable: true, status: 503, retryAfterMs: 7000, reason: 'HTTP 503' };
    const target = scripted(() => answer);
    // With no onError of the app's, the operator reads it on the console.
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    make({ forward: target.exporter, onError: undefined });
    const spans = [spanRecord(), spanRecord()];
    const body = JSON.stringify(otlpBody(spans));
    const res = await post(body);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(await messageOf(res)).toMatch(/forwarding failed/);
    expect(consoleError).toHaveBeenCalledTimes(1);
    expect(String(consoleError.mock.calls[0]![1])).toMatch(/forward\[0\].*HTTP 503/);
    consoleError.mockRestore();
    answer = { ok: true };
    expect((await post(body)).status).toBe(200);
    expect(target.got).toHaveLength(2);
    expect((target.got[1] as SpanRecord[]).map((s) => s.spanId)).toEqual(spans.map((s) => s.spanId));
    // Stored once although sent twice.
    expect((await store.stats()).spans).toBe(2);
  });

  it('tells the sender a target\'s status only, and logs its URL and answer at most once a minute', async () => {
    const leaky: Exporter & { target: string } = {
      target: 'http://127.0.0.1:4318/v1/traces',
      export: async () => ({ ok: false, retryable: false, status: 401, reason: 'HTTP 401: invalid api key sk_live_internal_123 for tenant acme-prod' }),
    };
    const refusing = scripted(() => ({ ok: false, retryable: false, status: 422, reason: 'HTTP 422: schema v2 at 10.0.3.7 refused it' }));
    let t = Date.UTC(2026, 0, 1);
    const errors: unknown[] = [];
    make({ store: undefined, forward: [leaky], onError: (e) => errors.push(e), now: () => t });
    const body = JSON.stringify(otlpBody([spanRecord()]));
    const first = await post(body);
    expect(first.status).toBe(503);
    const text = await first.text();
    expect(JSON.parse(text)).toMatchObject({ message: 'forwarding failed, send again later: forward[0]: HTTP 401' });
    expect(text).not.toMatch(/127\.0\.0\.1|sk_live|acme/);
    expect(errors.map(String)).toEqual(['CollectorError: forwarding to forward[0] (http://127.0.0.1:4318/v1/traces) failed: HTTP 401: invalid api key sk_live_internal_123 for tenant acme-prod']);
    await post(body);
    expect(errors).toHaveLength(1);
    t += 60_000;
    await post(body);
    expect(errors).toHaveLength(2);

    make({ forward: refusing.exporter, onError: () => undefined });
    const stored = await post(body);
    expect(await stored.json()).toEqual({ partialSuccess: { rejectedSpans: '0', errorMessage: 'stored, but a forward target refused it: forward[0]: HTTP 422' } });
    make({ store: undefined, forward: refusing.exporter, onError: () => undefined });
    const refused = await (await post(body)).text();
    expect(refused).toContain('forward[0]: HTTP 422');
    expect(refused).not.toContain('10.0.3.7');
  });

  it('treats wrong server-side credentials as retryable (503), not the sender\'s fault', async () => {
    const target = scripted(() => ({ ok: false, retryable: false, status: 401, reason: 'HTTP 401 Unauthorized' }));
    make({ forward: [target.exporter] });
    expect((await post(JSON.stringify(otlpBody([spanRecord()])))).status).toBe(503);
  });

  it('passes a 413 from the target on, so the sender splits the batch', async () => {
    const target = scripted(() => ({ ok: false, retryable: false, status: 413, reason: 'HTTP 413' }));
    make({ forward: target.exporter });
    expect((await post(JSON.stringify(otlpBody([spanRecord()])))).status).toBe(413);
  });

  it('without a store, answers 400 when the target refuses the data for good, and passes its rejections on', async () => {
    const refusing = scripted(() => ({ ok: false, retryable: false, status: 400, reason: 'HTTP 400: bad' }));
    make({ store: undefined, forward: refusing.exporter });
    expect((await post(JSON.stringify(otlpBody([spanRecord()])))).status).toBe(400);
    const partial = scripted(() => ({ ok: true, rejected: 1, reason: 'partial success: 1 rejected' }));
    make({ store: undefined, forward: partial.exporter });
    expect(await (await post(JSON.stringify(otlpBody([spanRecord(), spanRecord()])))).json()).toMatchObject({ partialSuccess: { rejectedSpans: '1' } });
  });

  it('without a store, reports what several targets rejected as at most the batch, with their reasons', async () => {
    const a = scripted(() => ({ ok: true, rejected: 2, reason: 'partial success: 2 rejected (bad attribute)' }));
    const b = scripted(() => ({ ok: true, rejected: 1 }));
    make({ store: undefined, forward: [a.exporter, b.exporter] });
    const res = await post(JSON.stringify(otlpBody([spanRecord(), spanRecord(), spanRecord()])));
    const body = (await res.json()) as { partialSuccess: { rejectedSpans: string; errorMessage: string } };
    // Both targets saw the same three spans: the batch lost at most two of them, not three.
    expect(body.partialSuccess.rejectedSpans).toBe('2');
    expect(body.partialSuccess.errorMessage).toContain('bad attribute');
    expect(body.partialSuccess.errorMessage).toContain('forward[1]: 1 rejected');
  });

  it('does not send a re-sent batch again to the targets that took it the first time', async () => {
    let down = true;
    const took = scripted(() => ({ ok: true }));
    const flaky = scripted(() => (down ? { ok: false, retryable: true, status: 503, reason: 'HTTP 503' } : { ok: true }));
    make({ store: undefined, forward: [took.exporter, flaky.exporter] });
    const spans = [spanRecord(), spanRecord()];
    const body = JSON.stringify(otlpBody(spans));
    expect((await post(body)).status).toBe(503);
    expect((await post(body)).status).toBe(503);
    down = false;
    expect((await post(body)).status).toBe(200);
    expect(took.got.map((batch) => batch.length)).toEqual([2]);
    expect(flaky.got.map((batch) => batch.length)).toEqual([2, 2, 2]);
    // Once more, as a sender that missed the answer sends it: no target gets it again.
    expect((await post(body)).status).toBe(200);
    expect(took.got.map((batch) => batch.length)).toEqual([2]);
    expect(flaky.got.map((batch) => batch.length)).toEqual([2, 2, 2]);
    // New spans in the batch go on, without the ones taken.
    const third = spanRecord();
    expect((await post(JSON.stringify(otlpBody([...spans, third])))).status).toBe(200);
    expect((took.got.at(-1) as SpanRecord[]).map((s) => s.spanId)).toEqual([third.spanId]);
  });

  /**
   * A collector forwarding to a target that takes `delayMs`, and one batch posted to it that got
   * its answer when the collector stopped waiting: after the default 8 s, below the SDK's 10 s
   * request timeout.
   */
  const postToSlowTarget = async (delayMs: number) => {
    const target = slowTarget(() => delayMs);
    make({ store: undefined, forward: target.exporter });
    const body = JSON.stringify(otlpBody([spanRecord(), spanRecord()]));
    const answer = post(body);
    await vi.advanceTimersByTimeAsync(8_000);
    return { target, body, res: await answer };
  };

  it('answers 503 before a sender gives up on a slow target, and remembers what the target took late', () =>
    withFakeTimers(async () => {
      const { target, body, res } = await postToSlowTarget(9_000);
      expect(res.status).toBe(503);
      expect(await messageOf(res)).toMatch(/forward\[0\]: no answer/);
      await vi.advanceTimersByTimeAsync(1_000);
      // The target took the batch after all: the retry does not send it again.
      expect((await post(body)).status).toBe(200);
      expect(target.got.map((batch) => batch.length)).toEqual([2]);
    }));

  it('does not send the halves of a batch that another target refused as too large to the targets that took it', async () => {
    const took = scripted(() => ({ ok: true }));
    const small = scripted((records) => (records.length > 1 ? { ok: false, retryable: false, status: 413, reason: 'HTTP 413' } : { ok: true }));
    make({ store: undefined, forward: [took.exporter, small.exporter] });
    const [a, b] = [spanRecord(), spanRecord()];
    expect((await post(JSON.stringify(otlpBody([a, b])))).status).toBe(413);
    // The sender splits the batch and sends each half.
    expect((await post(JSON.stringify(otlpBody([a])))).status).toBe(200);
    expect((await post(JSON.stringify(otlpBody([b])))).status).toBe(200);
    expect(took.got.map((batch) => batch.length)).toEqual([2]);
    expect(small.got.map((batch) => batch.length)).toEqual([2, 1, 1]);
  });

  it('does not send a batch again to a target still sending its first copy; the sender comes back later', () =>
    withFakeTimers(async () => {
      const { target, body, res } = await postToSlowTarget(20_000);
      expect(res.status).toBe(503);
      // The sender retries at once (its own timeout, or a short Retry-After): not a second copy.
      const second = await post(body);
      expect(second.status).toBe(503);
      expect(second.headers.get('retry-after')).not.toBeNull();
      expect(await messageOf(second)).toBe('forwarding failed, send again later: forward[0]: an earlier copy is still being sent');
      expect(target.got).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(12_000);
      expect((await post(body)).status).toBe(200);
      expect(target.got).toHaveLength(1);
    }));

  it('counts a request\'s bytes until its forward export settles, and keeps that export alive on Workers', () =>
    withFakeTimers(async () => {
      // Slow the first time only.
      const target = slowTarget((calls) => (calls > 1 ? 0 : 20_000));
      const body = JSON.stringify(otlpBody([spanRecord(), spanRecord()]));
      make({ store: undefined, forward: target.exporter, maxBodyBytes: body.length, maxBytesInFlight: body.length });
      const kept: Promise<unknown>[] = [];
      const ctx = { waitUntil: (p: Promise<unknown>) => void kept.push(p) };
      const send = (b: string) => post(b, {}, '/v1/traces', ctx);
      const first = send(body);
      await vi.advanceTimersByTimeAsync(8_000);
      expect((await first).status).toBe(503);
      expect(kept).toHaveLength(1);
      // The first batch's records are still held by its export: another batch finds no room.
      const other = JSON.stringify(otlpBody([spanRecord(), spanRecord()]));
      const busy = await send(other);
      expect(busy.status).toBe(503);
      expect(target.got).toHaveLength(1);
      await vi.advanceTimersByTimeAsync(12_000);
      await kept[0];
      const res = send(other);
      await vi.advanceTimersByTimeAsync(0);
      expect((await res).status).toBe(200);
      expect(target.got).toHaveLength(2);
    }));

  it('answers in time when a forward target hangs, and takes a target that returns nothing as delivered', () =>
    withFakeTimers(async () => {
      const hung: Exporter = { export: () => new Promise(() => undefined) };
      make({ store: undefined, forward: hung });
      const answer = post(JSON.stringify(otlpBody([spanRecord()])));
      await vi.advanceTimersByTimeAsync(30_000);
      const res = await answer;
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).not.toBeNull();
      const silent = { export: () => undefined } as unknown as Exporter;
      make({ store: undefined, forward: silent });
      expect((await post(JSON.stringify(otlpBody([spanRecord()])))).status).toBe(200);
    }));

  it('with a store, acknowledges a batch the target refuses for good and says so', async () => {
    const refusing = scripted(() => ({ ok: false, retryable: false, status: 422, reason: 'HTTP 422' }));
    make({ forward: refusing.exporter });
    const res = await post(JSON.stringify(otlpBody([spanRecord()])));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ partialSuccess: { rejectedSpans: '0', errorMessage: 'stored, but a forward target refused it: forward[0]: HTTP 422' } });
  });

  it('with a store that fails, answers 200 for a batch every target took, logs that its local copy is missing, and stays ready', async () => {
    let t = Date.UTC(2026, 0, 1);
    let targetUp = true;
    const target = scripted(() => (targetUp ? { ok: true } : { ok: false, retryable: true, status: 503, reason: 'HTTP 503' }));
    const full: TraceStore = { ...store, insertSpans: () => Promise.reject(new Error('database or disk is full')) };
    make({ store: full, forward: target.exporter, now: () => t });
    const batch = () => JSON.stringify(otlpBody([spanRecord(), spanRecord()]));
    const res = await post(batch());
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({});
    expect(target.got.flat()).toHaveLength(2);
    expect(logged.map((e) => [String(e), String((e as Error).cause)])).toEqual([
      ['CollectorError: the store could not take a batch; 2 record(s) reached every forward target without a local copy since the last report', 'Error: database or disk is full'],
    ]);
    // Delivering still: in rotation, and the body tells a monitor of the store.
    const health = await get('/health', {});
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({
      ok: true,
      store: true,
      forward: 1,
      storeFailedAt: new Date(t).toISOString(),
      forwarding: [{ target: 'forward[0]', lastDeliveredAt: new Date(t).toISOString() }],
    });
    expect((await post(batch())).status).toBe(200);
    t += 60_000;
    expect((await post(batch())).status).toBe(200);
    expect(String(logged[1])).toBe('CollectorError: the store could not take a batch; 4 record(s) reached every forward target without a local copy since the last report');
    // Neither kept it: the sender keeps it, and the probe says not ready.
    targetUp = false;
    expect((await post(batch())).status).toBe(503);
    expect((await get('/health', {})).status).toBe(503);
  });

  it('forwards spans and scores the store refuses for their time (a clock two days ahead), and says they were not stored', async () => {
    const DAY = 24 * 3600 * 1000;
    const target = scripted(() => ({ ok: true }));
    make({ forward: target.exporter, retentionMs: 30 * DAY, now: () => BASE });
    const fine = spanRecord({ name: 'fine', startMs: BASE - 5, endMs: BASE });
    const ahead = spanRecord({ name: 'ahead', startMs: BASE + 2 * DAY, endMs: BASE + 2 * DAY + 5 });
    const res = await post(JSON.stringify(otlpBody([fine, ahead])));
    // Delivered, so not rejected: the sender hears why there is no local copy.
    expect(await res.json()).toEqual({
      partialSuccess: { rejectedSpans: '0', errorMessage: '1 span(s) start before the retention period or end more than a day ahead: forwarded, not stored' },
    });
    expect(target.got.flat().map((r) => (r as SpanRecord).name)).toEqual(['fine', 'ahead']);
    expect((await store.stats({ fromMs: 0 })).spans).toBe(1);
    const score: ScoreRecord = { v: 1, rec: 'score', id: 'sc-ahead', traceId: ahead.traceId, name: 'n', value: 1, timeMs: BASE + 2 * DAY };
    expect(await (await post(JSON.stringify([score]), {}, '/v1/scores')).json()).toEqual({
      accepted: 1,
      rejected: 0,
      errors: ['1 score(s) dated before the retention period or more than a day ahead: forwarded, not stored'],
    });
    expect(target.got.at(-1)).toEqual([score]);
    // A target that refuses the batch: the one it stored is kept, the other is lost.
    const refusing = scripted(() => ({ ok: false, retryable: false, status: 422, reason: 'HTTP 422' }));
    make({ forward: refusing.exporter, retentionMs: 30 * DAY, now: () => BASE });
    expect(await (await post(JSON.stringify(otlpBody([spanRecord({ startMs: BASE - 5, endMs: BASE }), spanRecord({ startMs: BASE + 2 * DAY, endMs: BASE + 2 * DAY + 5 })])))).json()).toEqual({
      partialSuccess: {
        rejectedSpans: '1',
        errorMessage: '1 span(s) start before the retention period or end more than a day ahead; stored, but a forward target refused it: forward[0]: HTTP 422',
      },
    });
    // Nothing in the window, and refused: nobody kept any of it.
    expect((await post(JSON.stringify(otlpBody([spanRecord({ startMs: BASE + 2 * DAY, endMs: BASE + 2 * DAY + 5 })])))).status).toBe(400);
  });

  it('sends a batch a target refuses with 400 again in halves, so it loses only the bad span, and counts it', async () => {
    let t = Date.UTC(2026, 0, 1);
    const picky = scripted((records) =>
      records.some((r) => (r as SpanRecord).name === 'bad') ? { ok: false, retryable: false, status: 400, reason: 'HTTP 400: Invalid span: bad' } : { ok: true },
    );
    make({ store: undefined, forward: picky.exporter, now: () => t });
    const batch = () => [...Array.from({ length: 10 }, () => spanRecord({ name: 'good' })), spanRecord({ name: 'bad' })];
    const first = batch();
    const res = await post(JSON.stringify(otlpBody(first)));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ partialSuccess: { rejectedSpans: '1', errorMessage: 'forward[0]: refused 1 of 11 record(s) (HTTP 400)' } });
    const taken = picky.got.filter((b) => !b.some((r) => (r as SpanRecord).name === 'bad')).flat();
    expect(taken.map((r) => (r as SpanRecord).spanId).sort()).toEqual(first.slice(0, 10).map((r) => r.spanId).sort());
    // log2(11) rounds of two exports, not one per span.
    expect(picky.got.length).toBeLessThanOrEqual(9);
    expect(logged.map(String)).toEqual(['CollectorError: forward[0] refused 1 of 11 record(s) as invalid (HTTP 400: Invalid span: bad) and took the rest; 1 record(s) refused since the last report']);
    // Sent again (the answer was lost): nothing goes to the target twice, the bad span included,
    // and the sender hears of it again, not of a success.
    const exports = picky.got.length;
    expect(await (await post(JSON.stringify(otlpBody(first)))).json()).toEqual({
      partialSuccess: { rejectedSpans: '1', errorMessage: 'forward[0]: refused 1 of 11 record(s) when first sent (HTTP 400)' },
    });
    expect(picky.got.length).toBe(exports);
    // Counted between the lines the log prints once a minute.
    await post(JSON.stringify(otlpBody(batch())));
    t += 60_000;
    await post(JSON.stringify(otlpBody(batch())));
    expect(String(logged.at(-1))).toMatch(/; 2 record\(s\) refused since the last report$/);
    // With a store the page's spans were kept: it hears what the target refused, not counted as lost.
    make({ forward: picky.exporter, now: () => t });
    expect(await (await post(JSON.stringify(otlpBody(batch())))).json()).toEqual({
      partialSuccess: { rejectedSpans: '0', errorMessage: 'stored, but forward[0]: refused 1 of 11 record(s) (HTTP 400)' },
    });
  });

  it('bounds the exports that look for bad spans when a target refuses every one', async () => {
    const refusing = scripted(() => ({ ok: false, retryable: false, status: 400, reason: 'HTTP 400: bad' }));
    make({ store: undefined, forward: refusing.exporter });
    const batch = JSON.stringify(otlpBody(Array.from({ length: 600 }, () => spanRecord())));
    const res = await post(batch);
    expect(res.status).toBe(400);
    expect(refusing.got.length).toBeLessThanOrEqual(40);
    // Sent again (a first answer lost, or a 503 for another target): refused again, not sent
    // again, and never a 200 that would have the sender drop what no one kept.
    const exports = refusing.got.length;
    expect((await post(batch)).status).toBe(400);
    expect(refusing.got.length).toBe(exports);
    expect(String(logged[0])).toMatch(/^CollectorError: forward\[0\] refused 600 of 600 record\(s\) as invalid \(HTTP 400: bad\); 600 record\(s\) refused/);
  });

  it('says in /health since when and why each forward target fails, so a monitor can alert, and stays ready', async () => {
    let t = Date.UTC(2026, 0, 1);
    let answer: ExportResult = { ok: false, retryable: false, status: 401, reason: 'HTTP 401: invalid key sk-lf-secret for tenant acme' };
    const target = scripted(() => answer);
    const other = scripted(() => ({ ok: true }));
    make({ forward: [target.exporter, other.exporter], now: () => t });
    expect((await post(JSON.stringify(otlpBody([spanRecord()])))).status).toBe(503);
    const since = new Date(t).toISOString();
    t += 30_000;
    expect((await post(JSON.stringify(otlpBody([spanRecord()])))).status).toBe(503);
    // Every instance fails alike: the status is for rotation, the body for whoever watches.
    const failing = await get('/health', {});
    expect(failing.status).toBe(200);
    const text = await failing.text();
    expect(JSON.parse(text)).toEqual({
      ok: true,
      store: true,
      forward: 2,
      forwarding: [
        { target: 'forward[0]', failingSince: since, lastError: 'forward[0]: HTTP 401' },
        { target: 'forward[1]', lastDeliveredAt: new Date(t).toISOString() },
      ],
    });
    // Anyone may read /health: the target's words stay in the log.
    expect(text).not.toMatch(/sk-lf|acme/);
    answer = { ok: true };
    t += 30_000;
    expect((await post(JSON.stringify(otlpBody([spanRecord()])))).status).toBe(200);
    expect(((await (await get('/health', {})).json()) as { forwarding: unknown[] }).forwarding[0]).toEqual({ target: 'forward[0]', lastDeliveredAt: new Date(t).toISOString() });
  });

  it('refuses to start with neither store nor forward target', () => {
    expect(() => createCollector({})).toThrow(/store/);
    expect(() => createCollector({ store, ingestToken: 'same-token', readToken: 'same-token' })).toThrow(/readToken/);
    expect(() => createCollector({ store, ingestToken: 'short' })).toThrow(/ingestToken/);
    for (const bad of [0, 1.5, 60_000, '8000']) expect(() => createCollector({ store, forwardTimeoutMs: bad as number })).toThrow(/forwardTimeoutMs/);
  });
});

describe('createCollector: scores', () => {
  const score: ScoreRecord = { v: 1, rec: 'score', id: 'sc-1', traceId: 'a1'.padEnd(32, '0'), name: 'helpful', value: 1, dataType: 'BOOLEAN', timeMs: BASE };

  it('stores and forwards scores posted to /v1/scores, with their metadata and score config', async () => {
    const target = scripted(() => ({ ok: true }));
    make({ forward: target.exporter });
    await post(JSON.stringify(otlpBody(chatTrace(score.traceId, BASE))));
    const rated = { ...score, metadata: { judge: 'gpt-4o', rubric: ['clear'] }, configId: 'cfg-1' };
    const res = await post(JSON.stringify([rated, { ...score, id: '' }]), {}, '/v1/scores');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ accepted: 1, rejected: 1, errors: ['scores[1].id must be a string of 1 to 800 characters'] });
    expect(target.got[1]).toEqual([rated]);
    expect((await store.getTrace(score.traceId))!.scores).toEqual([rated]);
  });

  it('stores and forwards a score given again under its id, once per change, the newest kept', async () => {
    const target = scripted(() => ({ ok: true }));
    make({ forward: target.exporter });
    await post(JSON.stringify(otlpBody(chatTrace(score.traceId, BASE))));
    const up = { ...score, id: 'feedback-msg-1' };
    const down = { ...up, value: 0, timeMs: BASE + 5_000 };
    for (const batch of [[up], [up], [down], [up], [down]]) expect((await post(JSON.stringify(batch), {}, '/v1/scores')).status).toBe(200);
    // A retry of the same record is not sent again, the change is, and the late copy of the first
    // neither goes again nor replaces the change in the store.
    expect(target.got.slice(1)).toEqual([[up], [down]]);
    expect((await store.getTrace(up.traceId))!.scores).toEqual([down]);
  });

  it("still says a forward target refused scores when ten of them were bad", async () => {
    const target = scripted(() => ({ ok: false, retryable: false, status: 400, reason: 'HTTP 400: bad score' }));
    make({ forward: target.exporter });
    const bad = Array.from({ length: 10 }, (_, i) => ({ ...score, id: `bad-${i}`, traceId: 'x' }));
    const body = (await (await post(JSON.stringify([score, ...bad]), {}, '/v1/scores')).json()) as { accepted: number; rejected: number; errors: string[] };
    expect(body).toMatchObject({ accepted: 1, rejected: 10 });
    expect(body.errors.at(-1)).toMatch(/^stored, but a forward target refused it: forward\[0\]: HTTP 400/);
  });

  it('refuses scores the store would prune at once or never, as it refuses such spans', async () => {
    const DAY = 24 * 3600 * 1000;
    make({ retentionMs: 30 * DAY, now: () => BASE });
    const res = await post(JSON.stringify([score, { ...score, id: 'old', timeMs: 1 }, { ...score, id: 'far', timeMs: 1e300 }]), {}, '/v1/scores');
    expect(await res.json()).toEqual({ accepted: 1, rejected: 2, errors: ['2 score(s) dated before the retention period or more than a day ahead'] });
    await store.insertSpans(chatTrace(score.traceId, BASE));
    expect((await store.getTrace(score.traceId))!.scores.map((s) => s.id)).toEqual(['sc-1']);
  });
});

describe('createCollector: query API', () => {
  beforeEach(async () => {
    await store.insertSpans(chatTrace('a1'.padEnd(32, '0'), BASE, { user: 'u1' }));
    await store.insertSpans(chatTrace('a2'.padEnd(32, '0'), BASE + 1000, { user: 'u2', error: true }));
  });

  it('lists traces with filters, needing the read token', async () => {
    expect((await get('/api/traces', {})).status).toBe(401);
    expect((await get('/api/traces', { authorization: `Bearer ${INGEST}` })).status).toBe(401);
    const all = (await (await get('/api/traces')).json()) as { traces: { traceId: string }[] };
    expect(all.traces.map((t) => t.traceId)).toEqual(['a2'.padEnd(32, '0'), 'a1'.padEnd(32, '0')]);
    const filtered = (await (await get(`/api/traces?user=u1&status=ok&from=${BASE - 1}&to=${new Date(BASE + 500).toISOString()}`)).json()) as { traces: unknown[] };
    expect(filtered.traces).toHaveLength(1);
    // A date alone, and a time with an offset, are ISO-8601 too.
    const day = new Date(BASE).toISOString().slice(0, 10);
    expect(((await (await get(`/api/traces?from=${day}&to=${encodeURIComponent(new Date(BASE + 500).toISOString().replace('Z', '+00:00'))}`)).json()) as { traces: unknown[] }).traces.length).toBeGreaterThan(0);
    const page = (await (await get('/api/traces?limit=1')).json()) as { nextCursor: string };
    const next = (await (await get(`/api/traces?limit=1&cursor=${encodeURIComponent(page.nextCursor)}`)).json()) as { traces: { traceId: string }[] };
    expect(next.traces[0]!.traceId).toBe('a1'.padEnd(32, '0'));
    // A limit past the most one page holds gets that page, however large it is.
    for (const limit of ['501', '1000000']) expect(((await (await get(`/api/traces?limit=${limit}`)).json()) as { traces: unknown[] }).traces, limit).toHaveLength(2);
  });

  it('answers 400 for bad parameters', async () => {
    // Dates Date.parse would guess at are refused too: '-1' and 'foo 12' read as 2001.
    for (const q of ['status=maybe', 'limit=0', 'limit=x', 'from=yesterday', 'from=-1', 'from=foo%2012', "from=%25'%20OR%20'1'%3D'1", 'to=Mar%205', 'cursor=abc']) {
      const res = await get(`/api/traces?${q}`);
      expect(res.status, q).toBe(400);
    }
    expect((await get('/api/traces/not-an-id')).status).toBe(400);
  });

  it('returns one trace as a tree, and 404 for an unknown one', async () => {
    const tree = (await (await get(`/api/traces/${'A1'.padEnd(32, '0')}`)).json()) as { roots: { name: string; children: unknown[] }[] };
    expect(tree.roots[0]!.name).toBe('chat-turn');
    expect(tree.roots[0]!.children).toHaveLength(1);
    expect((await get(`/api/traces/${'f'.repeat(32)}`)).status).toBe(404);
  });

  it('serves stats, over the last day unless asked for another window', async () => {
    // The fixtures are from 2024: outside the default window, inside one that starts at 0.
    expect(((await (await get('/api/stats')).json()) as { spans: number }).spans).toBe(0);
    const stats = (await (await get('/api/stats?from=0')).json()) as { spans: number; errors: number; byModel: { model: string; totalTokens: number }[] };
    expect(stats.spans).toBe(6);
    expect(stats.errors).toBe(1);
    expect(stats.byModel).toEqual([expect.objectContaining({ model: 'gpt-4o', totalTokens: 240 })]);
  });

  it('answers 400 for a stats window too large to read at once, naming what to narrow; any other error of the store is its own', async () => {
    const tooLarge = Object.assign(new RangeError('the window holds 2000000 spans; stats read at most 1000000 at once'), { code: STATS_WINDOW_TOO_LARGE });
    make({ store: { ...store, stats: () => Promise.reject(tooLarge) } });
    const res = await get('/api/stats?from=0');
    expect(res.status).toBe(400);
    expect(await messageOf(res)).toBe('the window holds 2000000 spans; stats read at most 1000000 at once');
    // A bug's RangeError (a stack overflow, a bind count) is no fault of the query.
    make({ store: { ...store, stats: () => Promise.reject(new RangeError('Maximum call stack size exceeded')) } });
    expect((await get('/api/stats?from=0')).status).toBe(500);
    expect(logged.map(String)).toContain('RangeError: Maximum call stack size exceeded');
  });

  it('takes the read token from headers only, never from the URL', async () => {
    expect((await get(`/api/traces?token=${READ}`, {})).status).toBe(401);
    expect((await get('/api/traces', { 'x-edgetrace-token': READ })).status).toBe(200);
  });

  it('is off without a read token, and open with readToken: false', async () => {
    make({ readToken: undefined });
    expect((await get('/api/traces')).status).toBe(403);
    make({ readToken: false });
    const at = (base: string) => collector.fetch(new Request(`${base}/api/traces`));
    for (const base of ['http://127.0.0.1:5173', 'http://localhost:5173', 'http://[::1]:5173', 'http://app.localhost']) expect((await at(base)).status).toBe(200);
    // A page that rebound its own name to 127.0.0.1 still names its own host.
    const rebound = await at('http://rebind.attacker.test:5173');
    expect(rebound.status).toBe(403);
    expect(await messageOf(rebound)).toMatch(/readToken: false.*rebind\.attacker\.test/);
    expect((await get('/api/traces', {})).status).toBe(403);
  });

  it('with readToken: false, answers another origin only when it is listed, never through "*"', async () => {
    const read = (origin: string) => collector.fetch(new Request('http://127.0.0.1:4396/api/traces', { headers: { origin } }));
    // Any site a browser on this machine opens sends from this machine, to a loopback host.
    make({ readToken: false, allowedOrigins: '*' });
    const foreign = await read('https://evil.example');
    expect(foreign.status).toBe(403);
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
    expect(await messageOf(foreign)).toMatch(/allowedOrigins "\*".*https:\/\/evil\.example/);
    // "*" still lets any page send, and the collector's own origin still reads.
    expect((await read('http://127.0.0.1:4396')).status).toBe(200);
    const sent = await collector.fetch(
      new Request('http://127.0.0.1:4396/v1/traces', { method: 'POST', headers: { origin: 'https://evil.example', 'content-type': 'application/json', 'x-edgetrace-token': INGEST }, body: '{}' }),
    );
    expect(sent.status).toBe(200);
    make({ readToken: false, allowedOrigins: ['http://localhost:5173'] });
    const listed = await read('http://localhost:5173');
    expect(listed.status).toBe(200);
    expect(listed.headers.get('access-control-allow-origin')).toBe('http://localhost:5173');
  });

  it('with readToken: false, answers a peer the server names only when it is this machine', async () => {
    make({ readToken: false });
    // Another machine reaching a collector that listens on every interface writes its own Host.
    const from = (clientAddress: string) => collector.fetch(new Request('http://localhost:4318/api/traces'), {}, { waitUntil: () => undefined, clientAddress });
    for (const peer of ['127.0.0.1', '127.8.0.1', '::1', '::ffff:127.0.0.1']) expect((await from(peer)).status).toBe(200);
    for (const peer of ['192.0.2.7', '::ffff:192.0.2.7', '2001:db8::1', '10.127.0.1']) {
      const res = await from(peer);
      expect(res.status).toBe(403);
      expect(await messageOf(res)).toContain(`this machine only, not ${peer}`);
    }
  });
});

describe('createCollector: the store\'s file', () => {
  it('says loudly, in the log and in /health, when the database file was deleted while the collector runs', async () => {
    let t = Date.UTC(2026, 0, 1);
    const dir = mkdtempSync(join(tmpdir(), 'edgetrace-collector-'));
    const file = join(dir, 'traces.db');
    try {
      make({ store: createSqliteStore(openDatabase(file)), now: () => t });
      expect((await get('/health', {})).status).toBe(200);
      rmSync(file);
      // Writes still succeed, into a file no path names: lost at the next start. Ingest checks
      // the file once a minute, /health each time.
      t += 60_000;
      expect((await post(JSON.stringify(otlpBody([spanRecord()])))).status).toBe(200);
      expect(logged.map(String)).toEqual([`CollectorError: the database file ${file} was deleted while open: what is stored now goes to the old file and is lost when the collector stops; restart it to open a new one`]);
      const res = await get('/health', {});
      expect(res.status).toBe(503);
      expect(await res.json()).toEqual({ ok: false, store: true, forward: 0, storeFileMoved: true });
      // Once a minute, as long as it lasts.
      t += 60_000;
      await post(JSON.stringify(otlpBody([spanRecord()])));
      expect(logged).toHaveLength(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('createCollector: retention', () => {
  it('prunes old traces on the back of ingest, at most once per interval', async () => {
    let t = BASE + 40 * 86_400_000;
    make({ now: () => t, retentionMs: 30 * 86_400_000, pruneIntervalMs: 60_000 });
    await store.insertSpans(chatTrace('a1'.padEnd(32, '0'), BASE));
    const pending: Promise<unknown>[] = [];
    const ctx = { waitUntil: (p: Promise<unknown>) => pending.push(p) };
    const send = (spans: SpanRecord[]) => post(JSON.stringify(otlpBody(spans)), {}, '/v1/traces', ctx);
    await send([spanRecord({ startMs: t, endMs: t + 1 })]);
    await Promise.all(pending);
    expect(pending).toHaveLength(1);
    expect((await store.listTraces()).traces).toHaveLength(1);
    await send([spanRecord({ startMs: t, endMs: t + 1 })]);
    expect(pending).toHaveLength(1);
    t += 60_000;
    await send([spanRecord({ startMs: t, endMs: t + 1 })]);
    expect(pending).toHaveLength(2);
    expect(await collector.prune()).toBe(0);
  });

  it('tries a failed prune again within minutes while the store refuses writes, and says what each prune removed', async () => {
    let t = BASE + 40 * 86_400_000;
    let full = true;
    const diskFull = () => Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' });
    const filling: TraceStore = {
      ...store,
      insertSpans: (s) => (full ? Promise.reject(diskFull()) : store.insertSpans(s)),
      prune: (before) => (full ? Promise.reject(diskFull()) : store.prune(before)),
    };
    const pruned: unknown[] = [];
    make({ store: filling, now: () => t, retentionMs: 30 * 86_400_000, onPrune: (r) => pruned.push(r) });
    await store.insertSpans(chatTrace('a1'.padEnd(32, '0'), BASE));
    const pending: Promise<unknown>[] = [];
    const ctx = { waitUntil: (p: Promise<unknown>) => pending.push(p) };
    const send = () => post(JSON.stringify(otlpBody([spanRecord({ startMs: t, endMs: t + 1 })])), {}, '/v1/traces', ctx);
    expect((await send()).status).toBe(503);
    await Promise.all(pending);
    expect(pending).toHaveLength(1);
    expect(logged.map(String)).toContain('CollectorError: pruning the store failed; trying again in 2 minutes');
    // Not an hour later: the disk stays full until a prune frees it.
    t += 60_000;
    await send();
    expect(pending).toHaveLength(1);
    full = false;
    t += 60_000;
    expect((await send()).status).toBe(200);
    expect(pending).toHaveLength(2);
    await Promise.all(pending);
    expect(pruned).toEqual([{ traces: 1, spans: 3, scores: 0, beforeMs: t - 30 * 86_400_000, durationMs: 0 }]);
    // Well again: the next prune is an interval away.
    t += 120_000;
    await send();
    expect(pending).toHaveLength(2);
    // Two prunes asked for at once (the timer and an ingest's retry) run, and are told, once.
    t += 31 * 86_400_000;
    await store.insertSpans(chatTrace('a2'.padEnd(32, '0'), t - 31 * 86_400_000));
    await Promise.all([collector.prune(), collector.prune()]);
    expect(pruned).toHaveLength(2);
  });
});
