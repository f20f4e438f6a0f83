import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { openDatabase } from './sqlite';
import { createCollector, type Collector } from '../../../src/server/collector/createCollector';
import { createSqliteStore, type SqliteDatabase } from '../../../src/server/collector/sqliteStore';
import { toNodeListener } from '../../../src/server/node';
import { createOtlpExporter } from '../../../src/export/http';
import { otlpBody, spanRecord } from './otlpFixtures';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { context, trace, SpanKind, SpanStatusCode } from '@opentelemetry/api';

// The collector behind Node's http server on loopback, as `edgetrace collect` runs it, against
// good, malformed, oversized, gzip, wrong-origin, wrong-token and flooding clients.

const INGEST = 'public-ingest-token';
const ORIGIN = 'https://app.example.com';
let server: Server;
let base = '';
let collector: Collector;
const errors: unknown[] = [];
// The rate limit's clock: real time, except where a test stops it (a slow machine refills the bucket).
let frozenAt: number | undefined;

beforeAll(async () => {
  collector = createCollector({
    store: createSqliteStore(openDatabase()),
    ingestToken: INGEST,
    readToken: 'read-token-xyz',
    allowedOrigins: [ORIGIN],
    maxBodyBytes: 200_000,
    rateLimit: { perSecond: 50, burst: 100 },
    now: () => frozenAt ?? Date.now(),
    retentionMs: false,
    onError: (e) => errors.push(e),
  });
  server = createServer(toNodeListener(collector.fetch));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await collector.close();
});

const post = (body: BodyInit, headers: Record<string, string> = {}) =>
  fetch(`${base}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST}`, ...headers }, body });

const healthy = async () => expect((await fetch(`${base}/health`)).status).toBe(200);

describe('the collector over HTTP', () => {
  it('takes a good batch from the OTLP exporter', async () => {
    const exporter = createOtlpExporter({ url: `${base}/v1/traces`, headers: { authorization: `Bearer ${INGEST}` } });
    expect(await exporter.export([spanRecord(), spanRecord()])).toEqual({ ok: true });
  });

  it('takes the OTLP exporter’s gzip-compressed batches', async () => {
    const exporter = createOtlpExporter({ url: `${base}/v1/traces`, headers: { authorization: `Bearer ${INGEST}` }, compression: 'gzip' });
    expect(await exporter.export([spanRecord(), spanRecord()])).toEqual({ ok: true });
  });

  it('takes gzip', async () => {
    const res = await post(gzipSync(JSON.stringify(otlpBody([spanRecord()]))), { 'content-encoding': 'gzip' });
    expect(res.status).toBe(200);
  });

  it("takes binary protobuf as OpenTelemetry's own serializer writes it, and answers in kind", async () => {
    // What a backend's OTel SDK sends by default (exporter-trace-otlp-proto, and Go, Java, Python):
    // spans from OpenTelemetry's tracer, encoded by its own protobuf serializer.
    const memory = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] });
    const tracer = provider.getTracer('py-api', '2.0.0');
    const parent = tracer.startSpan('POST /chat', { kind: SpanKind.SERVER, attributes: { 'http.route': '/chat', 'http.status_code': 200, big: 2 ** 40, ratio: 0.5, ok: true, tags: ['a', 'b'] } });
    const child = tracer.startSpan('llm call', { kind: SpanKind.CLIENT }, trace.setSpan(context.active(), parent));
    child.addEvent('first token', { n: 1 });
    child.setStatus({ code: SpanStatusCode.ERROR, message: 'upstream 502' });
    child.end();
    parent.end();
    await provider.forceFlush();
    const [otelChild, otelParent] = memory.getFinishedSpans();
    const body = Uint8Array.from(ProtobufTraceSerializer.serializeRequest([otelChild!, otelParent!])!);

    const res = await post(body, { 'content-type': 'application/x-protobuf' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-protobuf');
    expect((await res.arrayBuffer()).byteLength).toBe(0);

    const { traceId, spanId } = otelParent!.spanContext();
    const tree = await collector.store!.getTrace(traceId);
    expect(tree?.summary.spanCount).toBe(2);
    const root = tree!.roots[0]!;
    expect(root).toMatchObject({ spanId, name: 'POST /chat', kind: 'server', attrs: { 'http.route': '/chat', 'http.status_code': 200, big: 2 ** 40, ratio: 0.5, ok: true, tags: ['a', 'b'] } });
    expect(root.resource.scope).toEqual({ name: 'py-api', version: '2.0.0' });
    const [hi, lo] = otelParent!.startTime;
    expect(root.startMs).toBeCloseTo(hi * 1000 + lo / 1e6, 3);
    expect(root.children[0]).toMatchObject({ spanId: otelChild!.spanContext().spanId, parentId: spanId, kind: 'client', status: { code: 'error', message: 'upstream 502' } });
    expect(root.children[0]!.events).toMatchObject([{ name: 'first token', attrs: { n: 1 } }]);

    // Errors come back as a protobuf google.rpc.Status: code 3 (field 1), then the message (field 2).
    const bad = await post(new Uint8Array([0x0a, 0x05, 0x01]), { 'content-type': 'application/x-protobuf' });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toBe('application/x-protobuf');
    const status = Buffer.from(await bad.arrayBuffer());
    expect([...status.subarray(0, 2)]).toEqual([0x08, 3]);
    expect(status.subarray(4).toString()).toBe('the protobuf body at resourceSpans[0] declares 5 bytes where 1 are left');
    await healthy();
  });

  it('refuses malformed input with 400 and a reason', async () => {
    const res = await post('{"resourceSpans":[{"scopeSpans":[{"spans":{}}]}]}');
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ code: 3, message: 'resourceSpans[0].scopeSpans[0].spans must be an array' });
    expect((await post('not json')).status).toBe(400);
  });

  it('refuses oversized bodies with 413, declared or chunked', async () => {
    const big = JSON.stringify(otlpBody(Array.from({ length: 1200 }, () => spanRecord())));
    expect(big.length).toBeGreaterThan(200_000);
    expect((await post(big)).status).toBe(413);
    const chunked = new ReadableStream({
      start(c) {
        for (let i = 0; i < 10; i++) c.enqueue(new TextEncoder().encode(big.slice(i * (big.length / 10), (i + 1) * (big.length / 10))));
        c.close();
      },
    });
    const res = await fetch(`${base}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST}` },
      body: chunked,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(413);
    await healthy();
  });

  it('closes the connection of a client that goes on uploading after its 413 or 415, rather than read it all', async () => {
    const auth = `content-type: application/json\r\nauthorization: Bearer ${INGEST}`;
    // Raw sockets, as a hostile client would send: a chunked upload that never ends (refused
    // while read), a declared length over the limit and a refused content type (refused unread).
    for (const [head, status] of [
      [`${auth}\r\ntransfer-encoding: chunked`, 413],
      [`${auth}\r\ncontent-length: 10000000000`, 413],
      [`content-type: image/png\r\nauthorization: Bearer ${INGEST}\r\ncontent-length: 10000000000`, 415],
    ] as const) {
      const chunked = head.includes('chunked');
      const { port } = server.address() as AddressInfo;
      const socket = connect(port, '127.0.0.1');
      await new Promise<void>((resolve) => socket.once('connect', resolve));
      socket.write(`POST /v1/traces HTTP/1.1\r\nhost: x\r\n${head}\r\n\r\n`);
      const chunk = Buffer.alloc(16 * 1024, 0x20);
      let answer = '';
      socket.on('data', (d: Buffer) => (answer += d.toString('latin1')));
      const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      socket.on('error', () => undefined);
      let sent = 0;
      let open = true;
      void closed.then(() => (open = false));
      // Up to 256 MB: a server that reads and drops it all would take it.
      while (open && sent < 256 * 1024 * 1024) {
        const ok = chunked ? socket.write(`${chunk.length.toString(16)}\r\n${chunk.toString('latin1')}\r\n`, 'latin1') : socket.write(chunk);
        sent += chunk.length;
        if (!ok) await Promise.race([new Promise((resolve) => socket.once('drain', resolve)), closed]);
      }
      socket.destroy();
      await closed;
      expect(answer, head).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
      expect(sent, head).toBeLessThan(64 * 1024 * 1024);
    }
    await healthy();
  }, 30_000);

  it('refuses other origins with 403 and answers preflight for the allowed one', async () => {
    expect((await post('{}', { origin: 'https://evil.example' })).status).toBe(403);
    const pre = await fetch(`${base}/v1/traces`, { method: 'OPTIONS', headers: { origin: ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,authorization' } });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe(ORIGIN);
  });

  it('refuses a wrong token with 401', async () => {
    expect((await post('{}', { authorization: 'Bearer wrong-token-123' })).status).toBe(401);
    expect((await post('{}', { authorization: '' })).status).toBe(401);
  });

  it('limits a flooding client with 429 + Retry-After and stays up', async () => {
    const body = JSON.stringify(otlpBody([spanRecord()]));
    // A minute on, the bucket is full (the burst); then the clock stands still, so nothing refills
    // however long the 250 requests take.
    frozenAt = Date.now() + 60_000;
    try {
      const statuses = await Promise.all(Array.from({ length: 250 }, () => post(body).then(async (r) => ({ status: r.status, retry: r.headers.get('retry-after'), text: await r.text() }))));
      const ok = statuses.filter((s) => s.status === 200).length;
      const limited = statuses.filter((s) => s.status === 429);
      expect(ok).toBe(100);
      expect(limited).toHaveLength(150);
      expect(Number(limited[0]!.retry)).toBeGreaterThanOrEqual(1);
    } finally {
      frozenAt = undefined;
    }
    await healthy();
    // 250 requests, 100 of them written to SQLite: on a loaded shared machine that has taken
    // more than vitest's default 5 s. The assertions are on what was answered, not how fast.
  }, 30_000);

  it('survives garbage on the socket, aborted uploads and half-sent requests', async () => {
    await new Promise<void>((resolve) => {
      const s = connect(Number(new URL(base).port), '127.0.0.1', () => s.end('\x00\x01GARBAGE / HTTP/9.9\r\n\r\n'));
      s.on('close', () => resolve());
      s.on('error', () => resolve());
      s.resume();
    });
    await new Promise<void>((resolve) => {
      const req = httpRequest(`${base}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${INGEST}`, 'content-length': '100000' } });
      req.on('error', () => resolve());
      req.write('{"resourceSpans":[');
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 50);
    });
    await new Promise<void>((resolve) => {
      const s = connect(Number(new URL(base).port), '127.0.0.1', () => {
        s.write(`POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nAuthorization: Bearer ${INGEST}\r\nContent-Length: 50\r\n\r\n{"resour`);
        setTimeout(() => s.destroy(), 50);
      });
      s.on('close', () => resolve());
      s.on('error', () => resolve());
    });
    await healthy();
    // The wrong-origin and wrong-token clients above are told to the operator; nothing failed.
    expect(errors.map(String).filter((e) => !e.startsWith('CollectorError: refused a request'))).toEqual([]);
  });
});
