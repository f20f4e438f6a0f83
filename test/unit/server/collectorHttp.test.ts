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

  it('takes gzip', async () => {
    const res = await post(gzipSync(JSON.stringify(otlpBody([spanRecord()]))), { 'content-encoding': 'gzip' });
    expect(res.status).toBe(200);
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
  });

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
    expect(errors).toEqual([]);
  });
});
