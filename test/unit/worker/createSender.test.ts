import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createSender } from '../../../worker/createSender';
import type { ScoreRecord, SpanRecord } from '../../../src/protocol';

let server: Server;
let base = '';
let got: Array<{ url: string; body: string }> = [];
let status = (_url: string): number => 200;

beforeAll(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      got.push({ url: req.url ?? '', body });
      const code = status(req.url ?? '');
      res.writeHead(code, code === 503 ? { 'retry-after': '2' } : {}).end(code === 200 ? '{}' : 'no');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterEach(() => {
  got = [];
  status = () => 200;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const span: SpanRecord = {
  v: 1, rec: 'span', traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', flags: 1, name: 's', kind: 'internal',
  startMs: 1, endMs: 2, attrs: {}, events: [], links: [], status: { code: 'unset' }, resource: { attrs: {}, scope: { name: 't' } },
};
const score: ScoreRecord = { v: 1, rec: 'score', id: 'sc1', traceId: span.traceId, name: 'thumbs', value: 1, timeMs: 3 };

describe('createSender', () => {
  it('posts spans as OTLP and scores to the scores route beside the endpoint', async () => {
    const send = createSender({ url: `${base}/v1/traces`, timeoutMs: 2000 });
    expect(await send([span, score])).toEqual({ ok: true });
    expect(got.map((g) => g.url)).toEqual(['/v1/traces', '/v1/scores']);
    expect(JSON.parse(got[1]!.body)).toEqual([score]);
  });

  it('retries the whole batch when the scores route is down for now', async () => {
    status = (url) => (url === '/v1/scores' ? 503 : 200);
    const result = await createSender({ url: `${base}/v1/traces`, timeoutMs: 2000 })([span, score]);
    expect(result).toMatchObject({ ok: false, retryable: true, retryAfterMs: 2000 });
  });

  it('skips scores a receiver refuses for good, keeping the spans delivered', async () => {
    status = (url) => (url === '/v1/scores' ? 404 : 200);
    const result = await createSender({ url: `${base}/v1/traces`, timeoutMs: 2000 })([span, score]);
    expect(result.ok).toBe(true);
  });

  it('sends no scores where the endpoint has no /v1/traces ending', async () => {
    expect((await createSender({ url: `${base}/otlp`, timeoutMs: 2000 })([span, score])).ok).toBe(true);
    expect(got.map((g) => g.url)).toEqual(['/otlp']);
  });

  it('does not send scores when the spans failed', async () => {
    status = () => 500;
    expect((await createSender({ url: `${base}/v1/traces`, timeoutMs: 2000 })([span, score])).ok).toBe(false);
    expect(got).toHaveLength(1);
  });
});
