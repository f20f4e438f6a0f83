import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import { loopbackRecorder, type Recorded } from '../../helpers/loopback';
import { createSender } from '../../../worker/createSender';
import { scoreRecord, spanRecord } from '../../helpers/records';

/** Answers each request with the status `code(url)` gives: 503 with Retry-After 2, others plain. */
const answer =
  (code: (url: string) => number) =>
  (res: ServerResponse, r: Recorded): void => {
    const c = code(r.url);
    res.writeHead(c, c === 503 ? { 'retry-after': '2' } : {}).end(c === 200 ? '{}' : 'no');
  };
const srv = loopbackRecorder(answer(() => 200));

const span = spanRecord();
const score = scoreRecord({ traceId: span.traceId });

describe('createSender', () => {
  it('posts spans as OTLP and scores to the scores route beside the endpoint', async () => {
    const send = createSender({ url: `${srv.base}/v1/traces`, timeoutMs: 2000 });
    expect(await send([span, score])).toEqual({ ok: true });
    expect(srv.requests.map((g) => g.url)).toEqual(['/v1/traces', '/v1/scores']);
    expect(JSON.parse(srv.requests[1]!.body)).toEqual([score]);
  });

  it('retries the whole batch when the scores route is down for now', async () => {
    srv.reply = answer((url) => (url === '/v1/scores' ? 503 : 200));
    const result = await createSender({ url: `${srv.base}/v1/traces`, timeoutMs: 2000 })([span, score]);
    expect(result).toMatchObject({ ok: false, retryable: true, retryAfterMs: 2000 });
  });

  it('skips scores a receiver refuses for good, keeping the spans delivered', async () => {
    srv.reply = answer((url) => (url === '/v1/scores' ? 404 : 200));
    const result = await createSender({ url: `${srv.base}/v1/traces`, timeoutMs: 2000 })([span, score]);
    expect(result.ok).toBe(true);
  });

  it('keeps the partial success of the spans and says which scores were skipped when both happen', async () => {
    srv.reply = (res, r) => {
      if (r.url === '/v1/scores') res.writeHead(404).end('no');
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{"partialSuccess":{"rejectedSpans":"1"}}');
    };
    const result = await createSender({ url: `${srv.base}/v1/traces`, timeoutMs: 2000 })([span, score]);
    expect(result).toMatchObject({ ok: true, rejected: 1 });
    expect(result.reason).toMatch(/score record\(s\) skipped/);
  });

  it('sends no scores where the endpoint has no /v1/traces ending', async () => {
    expect((await createSender({ url: `${srv.base}/otlp`, timeoutMs: 2000 })([span, score])).ok).toBe(true);
    expect(srv.requests.map((g) => g.url)).toEqual(['/otlp']);
  });

  it('keeps the records when the endpoint redirects, instead of counting the page it leads to', async () => {
    srv.reply = (res, r) => {
      if (r.url === '/v1/traces') res.writeHead(302, { location: '/login' }).end();
      else res.writeHead(200).end('<form>sign in</form>');
    };
    const result = await createSender({ url: `${srv.base}/v1/traces`, timeoutMs: 2000 })([span, score]);
    expect(result).toMatchObject({ ok: false, retryable: true, status: 302 });
    expect(srv.requests.map((g) => `${g.method} ${g.url}`)).toEqual(['POST /v1/traces']);
  });

  it("keeps the records when a site's catch-all route answers 200 with its page", async () => {
    srv.reply = (res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!DOCTYPE html>\n<html><div id="root"></div></html>');
    const result = await createSender({ url: `${srv.base}/v1/traces`, timeoutMs: 2000 })([span, score]);
    expect(result).toMatchObject({ ok: false, retryable: true, status: 200 });
    expect(result.reason).toMatch(/^HTTP 200: <!DOCTYPE html>/);
    // The spans failed: the scores wait for their retry.
    expect(srv.requests.map((g) => g.url)).toEqual(['/v1/traces']);
  });

  it('does not send scores when the spans failed', async () => {
    srv.reply = answer(() => 500);
    expect((await createSender({ url: `${srv.base}/v1/traces`, timeoutMs: 2000 })([span, score])).ok).toBe(false);
    expect(srv.requests).toHaveLength(1);
  });
});
