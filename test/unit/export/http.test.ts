import { describe, it, expect } from 'vitest';
import { gunzipSync } from 'node:zlib';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ScoreRecord, SpanRecord } from '../../../src/protocol';
import { createOtlpExporter, sendJson } from '../../../src/export/http';
import { createLangfuseExporter } from '../../../src/export/langfuse';
import { scoresUrlFor } from '../../../src/lib/scoresUrl';
import { loopbackRecorder } from '../../helpers/loopback';
import { scoreRecord, spanRecord } from '../../helpers/records';

// A receiver on 127.0.0.1 that records requests and answers with whatever `srv.reply` says.
const srv = loopbackRecorder();

const span = (over: Partial<SpanRecord> = {}): SpanRecord =>
  spanRecord(1, {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    name: 'GET /api',
    kind: 'client',
    startMs: 1732140000000.5,
    endMs: 1732140000012.25,
    attrs: { 'http.request.method': 'GET' },
    status: { code: 'ok' },
    resource: { attrs: { 'service.name': 'web' }, scope: { name: 'edgetrace' } },
    ...over,
  });

const score: ScoreRecord = scoreRecord({ id: 's1', traceId: '4bf92f3577b34da6a3ce929d0e0e4736', name: 'helpful', timeMs: 1732140000000 });

const status = (code: number, headers: Record<string, string> = {}, body = '') => (res: ServerResponse) => {
  res.writeHead(code, headers);
  res.end(body);
};

describe('createOtlpExporter', () => {
  it('POSTs OTLP JSON with content-type application/json and the given headers', async () => {
    const exporter = createOtlpExporter({ url: `${srv.base}/v1/traces`, headers: { 'x-api-key': 'k1', 'Content-Type': 'text/plain' } });
    const result = await exporter.export([span()]);
    expect(result).toEqual({ ok: true });
    expect(srv.requests).toHaveLength(1);
    const req = srv.requests[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/v1/traces');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['x-api-key']).toBe('k1');
    const body = JSON.parse(req.body);
    const s = body.resourceSpans[0].scopeSpans[0].spans[0];
    expect(s).toMatchObject({
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      kind: 3,
      startTimeUnixNano: '1732140000000500000',
      endTimeUnixNano: '1732140000012250000',
      status: { code: 1 },
    });
    expect(body.resourceSpans[0].resource.attributes).toEqual([{ key: 'service.name', value: { stringValue: 'web' } }]);
  });

  it('reports partial success from the response body', async () => {
    srv.reply = status(200, { 'content-type': 'application/json' }, '{"partialSuccess":{"rejectedSpans":"1","errorMessage":"bad"}}');
    const result = await createOtlpExporter({ url: `${srv.base}/v1/traces` }).export([span()]);
    expect(result).toEqual({ ok: true, rejected: 1, reason: 'partial success: 1 rejected: bad' });
  });

  it('reports a 503 as retryable with Retry-After in milliseconds', async () => {
    srv.reply = status(503, { 'retry-after': '7' });
    const result = await createOtlpExporter({ url: `${srv.base}/v1/traces` }).export([span()]);
    expect(result).toEqual({
      ok: false,
      retryable: true,
      status: 503,
      retryAfterMs: 7000,
      reason: 'HTTP 503 Service Unavailable',
    });
  });

  it('reports a 429 with an HTTP-date Retry-After as retryable', async () => {
    srv.reply = status(429, { 'retry-after': new Date(Date.now() + 30_000).toUTCString() });
    const result = await createOtlpExporter({ url: `${srv.base}/v1/traces` }).export([span()]);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.retryable).toBe(true);
    expect(result.retryAfterMs).toBeGreaterThan(25_000);
  });

  it('reports a 400 as not retryable, with the receiver\'s message', async () => {
    srv.reply = status(400, { 'content-type': 'application/json' }, '{"code":3,"message":"bad span id"}');
    const result = await createOtlpExporter({ url: `${srv.base}/v1/traces` }).export([span()]);
    expect(result).toEqual({ ok: false, retryable: false, status: 400, reason: 'HTTP 400 Bad Request: bad span id' });
  });

  it('does not follow a redirect: the records are kept for a retry, not counted as delivered', async () => {
    srv.reply = (res, r) => {
      if (r.url === '/v1/traces') res.writeHead(302, { location: '/login' }).end();
      else res.writeHead(200, { 'content-type': 'text/html' }).end('<form>sign in</form>');
    };
    const result = await createOtlpExporter({ url: `${srv.base}/v1/traces` }).export([span()]);
    expect(result).toMatchObject({ ok: false, retryable: true, status: 302 });
    expect(result.reason).toContain('redirected (HTTP 302)');
    expect(srv.requests.map((r) => `${r.method} ${r.url}`)).toEqual(['POST /v1/traces']);
  });

  it('reports a 413 as not retryable so the caller can split the batch', async () => {
    srv.reply = status(413);
    expect(await createOtlpExporter({ url: `${srv.base}/v1/traces` }).export([span()])).toMatchObject({
      ok: false,
      retryable: false,
      status: 413,
    });
  });

  it('times out a stalled receiver with a retryable result', async () => {
    srv.reply = () => {}; // never answers
    const t0 = Date.now();
    const result = await createOtlpExporter({ url: `${srv.base}/v1/traces`, timeoutMs: 100 }).export([span()]);
    expect(result).toEqual({ ok: false, retryable: true, reason: 'timeout after 100 ms' });
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it('times out a receiver that stalls in the middle of the body', async () => {
    srv.reply = (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"partialSucc');
    };
    const result = await createOtlpExporter({ url: `${srv.base}/v1/traces`, timeoutMs: 100 }).export([span()]);
    expect(result).toEqual({ ok: false, retryable: true, reason: 'timeout after 100 ms' });
  });

  it('reports a refused connection as a retryable network error', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const result = await createOtlpExporter({ url: `http://127.0.0.1:${port}/v1/traces` }).export([span()]);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.retryable).toBe(true);
    expect(result.reason).toMatch(/^network error: /);
  });

  it('uses the global fetch captured at creation, not a later patched one', async () => {
    const original = globalThis.fetch;
    const exporter = createOtlpExporter({ url: `${srv.base}/v1/traces` });
    let patchedCalls = 0;
    globalThis.fetch = ((...args: Parameters<typeof fetch>) => {
      patchedCalls++;
      return original(...args);
    }) as typeof fetch;
    try {
      expect(await exporter.export([span()])).toEqual({ ok: true });
    } finally {
      globalThis.fetch = original;
    }
    expect(patchedCalls).toBe(0);
    expect(srv.requests).toHaveLength(1);
  });

  it('uses the fetch it is given', async () => {
    const urls: string[] = [];
    const fake = (async (input: RequestInfo | URL) => {
      urls.push(String(input));
      return new Response('{}', { status: 200 });
    }) as typeof fetch;
    const result = await createOtlpExporter({ url: 'https://collector.test/v1/traces', fetch: fake }).export([span()]);
    expect(result).toEqual({ ok: true });
    expect(urls).toEqual(['https://collector.test/v1/traces']);
  });

  it('resolves with a result when fetch throws synchronously', async () => {
    const fake = (() => {
      throw new TypeError('bad url');
    }) as unknown as typeof fetch;
    const result = await createOtlpExporter({ url: 'https://collector.test/v1/traces', fetch: fake }).export([span()]);
    expect(result).toEqual({ ok: false, retryable: true, reason: 'network error: bad url' });
  });

  it('throws at creation, naming the option, for a URL, header or timeout it could never send with', () => {
    const url = 'https://collector.test/v1/traces';
    expect(() => createOtlpExporter({ url: 'collector.test/v1/traces' })).toThrow('"url" must be an http(s) URL');
    expect(() => createOtlpExporter({ url: 'ftp://collector.test/' })).toThrow('"url"');
    expect(() => createOtlpExporter({ url, headers: { 'x tenant': 'a' } })).toThrow('"headers["x tenant"]"');
    expect(() => createOtlpExporter({ url, headers: { authorization: 'Bearer ключ' } })).toThrow('"headers["authorization"]"');
    // setTimeout fires at once past 2^31 - 1 ms: every request would be aborted on the spot.
    expect(() => createOtlpExporter({ url, timeoutMs: 2 ** 31 })).toThrow('"timeoutMs" must be a whole number ≤ 2147483647');
    expect(() => createLangfuseExporter({ publicKey: 'pk', secretKey: 'sk', timeoutMs: 0 })).toThrow('"timeoutMs" must be a whole number ≥ 1');
    expect(() => createOtlpExporter({ url, headers: { 'x-tenant': 'a' }, timeoutMs: 2 ** 31 - 1 })).not.toThrow();
  });

  it('posts score records as a JSON array to the scores route beside /v1/traces', async () => {
    const result = await createOtlpExporter({ url: `${srv.base}/v1/traces?tenant=a` }).export([span(), score, score]);
    expect(result).toEqual({ ok: true });
    expect(srv.requests.map((r) => r.url)).toEqual(['/v1/traces?tenant=a', '/v1/scores?tenant=a']);
    expect(JSON.parse(srv.requests[0]!.body).resourceSpans[0].scopeSpans[0].spans).toHaveLength(1);
    expect(JSON.parse(srv.requests[1]!.body)).toEqual([score, score]);
  });

  it('skips scores where the receiver has no scores route, and says how many', async () => {
    const result = await createOtlpExporter({ url: `${srv.base}/otlp/traces` }).export([span(), score, score]);
    expect(result).toEqual({ ok: true, reason: '2 score record(s) skipped: the receiver has no scores route' });
    expect(srv.requests).toHaveLength(1);
    const off = await createOtlpExporter({ url: `${srv.base}/v1/traces`, scoresUrl: false }).export([score]);
    expect(off.ok).toBe(true);
    expect(srv.requests).toHaveLength(1);
  });

  it('skips the scores, not the spans, when a receiver refuses the scores route for good', async () => {
    srv.reply = (res) => (srv.requests.length === 2 ? res.writeHead(404).end('not found') : res.end('{}'));
    const result = await createOtlpExporter({ url: `${srv.base}/v1/traces` }).export([span(), score]);
    expect(result.ok).toBe(true);
    expect(result.reason).toMatch(/^1 score record\(s\) skipped: HTTP 404/);
  });

  it('fails the batch when the scores route fails for now, so the retry carries them', async () => {
    srv.reply = (res) => (srv.requests.length === 2 ? res.writeHead(503, { 'retry-after': '3' }).end() : res.end('{}'));
    const result = await createOtlpExporter({ url: `${srv.base}/v1/traces` }).export([span(), score]);
    expect(result).toMatchObject({ ok: false, retryable: true, retryAfterMs: 3000 });
  });

  it('sends no scores after the spans failed for now: the retry carries both, and a receiver that is down is waited for once', async () => {
    srv.reply = (res) => res.writeHead(503).end();
    const result = await createOtlpExporter({ url: `${srv.base}/v1/traces` }).export([span(), score]);
    expect(result).toMatchObject({ ok: false, retryable: true });
    expect(srv.requests.map((r) => r.url)).toEqual(['/v1/traces']);
  });

  it('sends nothing for an empty batch and only scores for a batch of scores', async () => {
    const exporter = createOtlpExporter({ url: `${srv.base}/v1/traces` });
    expect(await exporter.export([])).toEqual({ ok: true });
    expect(srv.requests).toHaveLength(0);
    expect(await exporter.export([score])).toEqual({ ok: true });
    expect(srv.requests.map((r) => r.url)).toEqual(['/v1/scores']);
  });

  it('resolves shutdown', async () => {
    await expect(createOtlpExporter({ url: `${srv.base}/v1/traces` }).shutdown!()).resolves.toBeUndefined();
  });
});

describe('compression', () => {
  /** A fetch that keeps the headers and the body bytes it was given. */
  const capture = () => {
    const sent: { url: string; headers: Headers; body: Uint8Array }[] = [];
    const fetch = (async (url: string | URL | Request, init?: RequestInit) => {
      const body = init?.body;
      sent.push({ url: String(url), headers: new Headers(init?.headers), body: typeof body === 'string' ? new TextEncoder().encode(body) : new Uint8Array(body as Uint8Array) });
      return new Response('{}');
    }) as typeof globalThis.fetch;
    return { sent, fetch };
  };

  it('gzips span requests when asked, and leaves scores and the shared headers as they are', async () => {
    const c = capture();
    const exporter = createOtlpExporter({ url: 'https://rx.example/v1/traces', fetch: c.fetch, compression: 'gzip', headers: { 'x-api-key': 'k1' } });
    const big = span({ attrs: { prompt: 'tell me a story '.repeat(500) } });
    expect(await exporter.export([big, score])).toEqual({ ok: true });
    expect(await exporter.export([big])).toEqual({ ok: true });
    const [spans, scores, again] = c.sent;
    expect(spans!.headers.get('content-encoding')).toBe('gzip');
    expect(spans!.headers.get('x-api-key')).toBe('k1');
    expect(spans!.headers.get('content-type')).toBe('application/json');
    const json = gunzipSync(spans!.body).toString('utf8');
    expect(JSON.parse(json).resourceSpans[0].scopeSpans[0].spans[0].attributes).toContainEqual({ key: 'prompt', value: { stringValue: 'tell me a story '.repeat(500) } });
    expect(spans!.body.length).toBeLessThan(json.length / 10);
    expect(scores!.url).toBe('https://rx.example/v1/scores');
    expect(scores!.headers.get('content-encoding')).toBeNull();
    expect(JSON.parse(new TextDecoder().decode(scores!.body))).toEqual([score]);
    expect(again!.headers.get('content-encoding')).toBe('gzip');
  });

  it('sends plain JSON by default and with "none"', async () => {
    for (const compression of [undefined, 'none' as const]) {
      const c = capture();
      await createOtlpExporter({ url: 'https://rx.example/v1/traces', fetch: c.fetch, compression }).export([span()]);
      expect(c.sent[0]!.headers.get('content-encoding')).toBeNull();
      expect(JSON.parse(new TextDecoder().decode(c.sent[0]!.body)).resourceSpans).toHaveLength(1);
    }
  });

  it('gzips what goes to Langfuse’s OTLP endpoint, keeping its auth and version headers', async () => {
    const c = capture();
    const exporter = createLangfuseExporter({ publicKey: 'pk-lf-1', secretKey: 'sk-lf-1', baseUrl: 'https://lf.example', fetch: c.fetch, compression: 'gzip' });
    expect(await exporter.export([span()])).toEqual({ ok: true });
    const [req] = c.sent;
    expect(req!.url).toBe('https://lf.example/api/public/otel/v1/traces');
    expect(req!.headers.get('content-encoding')).toBe('gzip');
    expect(req!.headers.get('x-langfuse-ingestion-version')).toBe('4');
    expect(req!.headers.get('authorization')).toMatch(/^Basic /);
    expect(JSON.parse(gunzipSync(req!.body).toString('utf8')).resourceSpans[0].scopeSpans[0].spans).toHaveLength(1);
  });

  it('refuses any other value at creation, naming the option', () => {
    expect(() => createOtlpExporter({ url: 'https://rx.example/v1/traces', compression: 'br' as never })).toThrow(/createOtlpExporter\(\): "compression" must be "gzip" or "none", got "br"/);
    expect(() => createLangfuseExporter({ publicKey: 'pk', secretKey: 'sk', compression: true as never })).toThrow(/createLangfuseExporter\(\): "compression"/);
  });
});

describe('sendJson', () => {
  it('reports a runtime without fetch as a permanent failure', async () => {
    const result = await sendJson({ fetch: undefined, url: 'x', headers: new Headers(), body: '{}', timeoutMs: 100 });
    expect(result).toEqual({ ok: false, retryable: false, reason: 'no fetch available in this runtime' });
  });

  it('hands status, headers and body to a custom classifier', async () => {
    srv.reply = status(207, { 'x-n': '3' }, 'hello');
    const result = await sendJson({
      fetch: globalThis.fetch,
      url: srv.base,
      headers: new Headers(),
      body: '{}',
      timeoutMs: 1000,
      classify: (st, headers, body) => ({ ok: true, reason: `${st} ${headers.get('x-n')} ${body}` }),
    });
    expect(result).toEqual({ ok: true, reason: '207 3 hello' });
  });
});

describe('scoresUrlFor', () => {
  it.each([
    ['https://c.test/v1/traces', 'https://c.test/v1/scores'],
    ['https://c.test/v1/traces/', 'https://c.test/v1/scores'],
    ['/v1/traces?k=1', '/v1/scores?k=1'],
    ['https://c.test/api/public/otel/v1/traces', 'https://c.test/api/public/otel/v1/scores'],
    ['https://c.test/otlp', undefined],
    ['https://c.test/v1/traces-x', undefined],
  ])('maps %s to %s', (input, expected) => {
    expect(scoresUrlFor(input)).toBe(expected);
  });
});
