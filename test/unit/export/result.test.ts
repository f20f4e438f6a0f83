import { describe, it, expect } from 'vitest';
import type { ExportResult } from '../../../src/protocol';
import {
  combineResults,
  httpReason,
  networkError,
  parseRetryAfter,
  toExportResult,
} from '../../../src/export/result';

const NOW = Date.UTC(2025, 0, 1, 12, 0, 0);
const h = (init: Record<string, string> = {}): Headers => new Headers(init);

describe('parseRetryAfter', () => {
  it('reads delay seconds as milliseconds', () => {
    expect(parseRetryAfter('120', NOW)).toBe(120_000);
    expect(parseRetryAfter(' 5 ', NOW)).toBe(5000);
    expect(parseRetryAfter('0', NOW)).toBe(0);
  });

  it('reads an HTTP date as the time until it', () => {
    expect(parseRetryAfter('Wed, 01 Jan 2025 12:00:30 GMT', NOW)).toBe(30_000);
  });

  it('clamps dates in the past to 0', () => {
    expect(parseRetryAfter('Wed, 01 Jan 2025 11:00:00 GMT', NOW)).toBe(0);
  });

  it('returns undefined for missing and unreadable values', () => {
    expect(parseRetryAfter(null, NOW)).toBeUndefined();
    expect(parseRetryAfter('', NOW)).toBeUndefined();
    expect(parseRetryAfter('soon', NOW)).toBeUndefined();
    expect(parseRetryAfter('-5', NOW)).toBeUndefined();
    expect(parseRetryAfter('1.5', NOW)).toBeUndefined();
  });

  it('defaults now to the current time', () => {
    const inAMinute = new Date(Date.now() + 60_000).toUTCString();
    const ms = parseRetryAfter(inAMinute)!;
    expect(ms).toBeGreaterThan(55_000);
    expect(ms).toBeLessThanOrEqual(60_000);
  });
});

describe('httpReason', () => {
  it('names known statuses and numbers the rest', () => {
    expect(httpReason(503)).toBe('HTTP 503 Service Unavailable');
    expect(httpReason(418)).toBe('HTTP 418');
  });
});

describe('toExportResult', () => {
  it('reports 2xx as success', () => {
    expect(toExportResult(200, h(), '{}')).toEqual({ ok: true });
    expect(toExportResult(202, h())).toEqual({ ok: true });
    expect(toExportResult(204, h(), '')).toEqual({ ok: true });
  });

  it('reports partial success with the rejected count and message', () => {
    const r = toExportResult(200, h(), '{"partialSuccess":{"rejectedSpans":"2","errorMessage":"bad ids"}}');
    expect(r).toEqual({ ok: true, rejected: 2, reason: 'partial success: 2 rejected: bad ids' });
  });

  it('passes on a warning that comes with nothing rejected', () => {
    expect(toExportResult(200, h(), '{"partialSuccess":{"errorMessage":"deprecated"}}')).toEqual({
      ok: true,
      reason: 'deprecated',
    });
  });

  it.each([408, 429, 500, 501, 502, 503, 504, 599])('marks %i as retryable', (status) => {
    const r = toExportResult(status, h());
    expect(r).toMatchObject({ ok: false, retryable: true, status });
  });

  it.each([400, 401, 403, 404, 410, 413, 415, 422])('marks %i as not retryable', (status) => {
    expect(toExportResult(status, h())).toMatchObject({ ok: false, retryable: false, status });
  });

  // Exporters do not follow redirects; a browser shows one as status 0 (an opaque redirect).
  it.each([0, 300, 301, 302, 303, 307, 308])('marks the redirect %i as retryable and says so', (status) => {
    const r = toExportResult(status, h({ 'retry-after': '7' }));
    expect(r).toMatchObject({ ok: false, retryable: true, status });
    expect(r.reason).toMatch(/^redirected \(/);
  });

  it("keeps the records when a 2xx is an HTML page (a site's catch-all route), not a receiver's answer", () => {
    for (const body of ['<!doctype html><html><body>app</body></html>', '\n  <html lang="en">']) {
      const r = toExportResult(200, h({ 'content-type': 'text/html' }), body);
      expect(r).toMatchObject({ ok: false, retryable: true, status: 200 });
      expect(r.reason).toBe("HTTP 200 with an HTML page, not a receiver's answer (a site's catch-all route?): check the endpoint");
    }
    // A receiver's own answers, and none, still count as delivered.
    expect(toExportResult(200, h(), '')).toEqual({ ok: true });
    expect(toExportResult(200, h(), '{}')).toEqual({ ok: true });
    expect(toExportResult(204, h())).toEqual({ ok: true });
  });

  it('reads Retry-After on retryable replies', () => {
    expect(toExportResult(429, h({ 'retry-after': '7' }))).toEqual({
      ok: false,
      retryable: true,
      status: 429,
      retryAfterMs: 7000,
      reason: 'HTTP 429 Too Many Requests',
    });
  });

  it('leaves retryAfterMs out when the header is absent or unreadable', () => {
    expect('retryAfterMs' in toExportResult(503, h({ 'retry-after': 'later' }))).toBe(false);
  });

  it('writes short readable reasons', () => {
    expect(toExportResult(503, h()).reason).toBe('HTTP 503 Service Unavailable');
    expect(toExportResult(418, h()).reason).toBe('HTTP 418');
  });

  it('adds the message of a google.rpc.Status body', () => {
    const r = toExportResult(400, h(), '{"code":3,"message":"invalid trace id"}');
    expect(r.reason).toBe('HTTP 400 Bad Request: invalid trace id');
  });

  it('adds the start of a text body, whitespace collapsed and cut at 200 characters', () => {
    const r = toExportResult(502, h(), `<html>\n  <body>${'x'.repeat(500)}</body>`);
    const reason = r.reason ?? '';
    expect(reason.startsWith('HTTP 502 Bad Gateway: <html> <body>xxx')).toBe(true);
    expect(reason.length).toBeLessThan(260);
    expect(reason.endsWith('…')).toBe(true);
  });
});

describe('networkError', () => {
  it('is retryable and names the cause', () => {
    expect(networkError(new TypeError('fetch failed'))).toEqual({
      ok: false,
      retryable: true,
      reason: 'network error: fetch failed',
    });
    expect(networkError('offline').reason).toBe('network error: offline');
  });

  it("adds the cause Node's fetch hides behind \"fetch failed\": a refused connection, an unknown host", async () => {
    // A port just freed: nothing listens there.
    const { createServer } = await import('node:net');
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    const refused = await fetch(`http://127.0.0.1:${port}/v1/traces`).catch((e: unknown) => e);
    expect(networkError(refused).reason).toBe(`network error: fetch failed (connect ECONNREFUSED 127.0.0.1:${port})`);
    const unknownHost = new TypeError('fetch failed', { cause: Object.assign(new Error('getaddrinfo ENOTFOUND lf.exmple.com'), { code: 'ENOTFOUND' }) });
    expect(networkError(unknownHost).reason).toBe('network error: fetch failed (getaddrinfo ENOTFOUND lf.exmple.com)');
    // An AggregateError (both addresses of localhost refused) has a code and no message.
    expect(networkError(new TypeError('fetch failed', { cause: Object.assign(new AggregateError([]), { code: 'ECONNREFUSED' }) })).reason).toBe('network error: fetch failed (ECONNREFUSED)');
    // A cause that is no text is left out, and nothing of it is called.
    const hostile = { message: { toString: () => { throw new Error('no'); } } };
    expect(networkError(new TypeError('fetch failed', { cause: hostile })).reason).toBe('network error: fetch failed');
  });

  it('falls back to the error name when there is no message', () => {
    const err = new Error('');
    err.name = 'AbortError';
    expect(networkError(err).reason).toBe('network error: AbortError');
  });
});

describe('combineResults', () => {
  const ok: ExportResult = { ok: true };
  const retry: ExportResult = { ok: false, retryable: true, status: 503, retryAfterMs: 2000, reason: 'HTTP 503' };
  const fatal: ExportResult = { ok: false, retryable: false, status: 401, reason: 'HTTP 401' };

  it('is ok when both are, summing rejected counts', () => {
    expect(combineResults(ok, ok)).toEqual({ ok: true });
    expect(combineResults({ ok: true, rejected: 1, reason: 'a' }, { ok: true, rejected: 2, reason: 'b' })).toEqual({
      ok: true,
      rejected: 3,
      reason: 'a; b',
    });
  });

  it('fails retryably when any failed part is retryable', () => {
    expect(combineResults(ok, retry)).toEqual({ ok: false, retryable: true, status: 503, retryAfterMs: 2000, reason: 'HTTP 503' });
    expect(combineResults(fatal, retry)).toMatchObject({ ok: false, retryable: true, status: 503 });
  });

  it('fails permanently when every failure is permanent', () => {
    expect(combineResults(fatal, ok)).toEqual({ ok: false, retryable: false, status: 401, reason: 'HTTP 401' });
  });

  it('waits for the longer Retry-After', () => {
    const r = combineResults(retry, { ok: false, retryable: true, retryAfterMs: 9000, reason: 'x' });
    expect(r).toMatchObject({ retryAfterMs: 9000, reason: 'HTTP 503; x' });
  });

  it('says the same failure of both requests once', () => {
    expect(combineResults(retry, { ...retry, retryAfterMs: 1000 }).reason).toBe('HTTP 503');
  });
});
