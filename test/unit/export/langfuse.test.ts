import { describe, it, expect, vi } from 'vitest';
import type { ServerResponse } from 'node:http';
import { loopbackRecorder, type Recorded } from '../../helpers/loopback';
import { scoreRecord, spanRecord } from '../../helpers/records';
import type { ScoreRecord, SpanRecord } from '../../../src/protocol';
import {
  basicAuth,
  createLangfuseExporter,
  toIngestionResult,
  toScoreEvents,
  toScoresResult,
  utf8ToBase64,
} from '../../../src/export/langfuse';

const span = (over: Partial<SpanRecord> = {}): SpanRecord =>
  spanRecord(1, {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    name: 'llm',
    kind: 'client',
    startMs: 1732140000000,
    endMs: 1732140000500,
    attrs: { 'langfuse.observation.type': 'generation' },
    resource: { attrs: { 'service.name': 'web' }, scope: { name: 'edgetrace' } },
    ...over,
  });

const score = (over: Partial<ScoreRecord> = {}): ScoreRecord =>
  scoreRecord({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', timeMs: Date.UTC(2024, 10, 20, 22, 0, 0, 123) + 0.456, ...over });

describe('utf8ToBase64', () => {
  it('matches the standard encoding of the UTF-8 bytes', () => {
    const samples = ['', 'f', 'fo', 'foo', 'foob', 'fooba', 'foobar', 'pk-lf-123:sk-lf-456', 'ü', 'pk:sëcret€', '日本語', '😀x', '\u0000\u00ff'];
    for (const s of samples) expect(utf8ToBase64(s)).toBe(Buffer.from(s, 'utf8').toString('base64'));
  });

  it('encodes lone surrogates as U+FFFD, as TextEncoder does', () => {
    expect(utf8ToBase64('a\ud800b')).toBe(Buffer.from('a\ufffdb', 'utf8').toString('base64'));
  });

  it('agrees with Buffer on random strings', () => {
    let seed = 7;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    for (let i = 0; i < 300; i++) {
      let s = '';
      const len = rand(20);
      for (let j = 0; j < len; j++) s += String.fromCodePoint(rand(4) === 0 ? 0x1f300 + rand(500) : rand(0x3000));
      expect(utf8ToBase64(s)).toBe(Buffer.from(s, 'utf8').toString('base64'));
    }
  });
});

describe('basicAuth', () => {
  it('builds a Basic header value from user and password', () => {
    expect(basicAuth('pk-lf-1', 'sk-lf-2')).toBe('Basic ' + Buffer.from('pk-lf-1:sk-lf-2').toString('base64'));
    expect(basicAuth('pk', 'päss')).toBe('Basic cGs6cMOkc3M=');
  });
});

describe('toScoreEvents', () => {
  it('builds score-create events with an ISO timestamp in UTC', () => {
    expect(toScoreEvents([score()])).toEqual({
      batch: [
        {
          id: `score-1@${Date.UTC(2024, 10, 20, 22, 0, 0, 123) + 0.456}`,
          timestamp: '2024-11-20T22:00:00.123Z',
          type: 'score-create',
          body: { id: 'score-1', traceId: '4bf92f3577b34da6a3ce929d0e0e4736', name: 'helpfulness', value: 1 },
        },
      ],
    });
  });

  it('passes a score config id and metadata on to Langfuse', () => {
    const { body } = toScoreEvents([score({ configId: 'cfg-1', metadata: { model: 'gpt-4o', tags: ['a'] } })]).batch[0]!;
    expect(body).toMatchObject({ configId: 'cfg-1', metadata: { model: 'gpt-4o', tags: ['a'] } });
  });

  it('sends a score given again under its id as a new event for the same score', () => {
    const { batch } = toScoreEvents([score({ id: 'thumbs-m1', value: 1 }), score({ id: 'thumbs-m1', value: 0, timeMs: Date.UTC(2024, 10, 20, 22, 5) })]);
    expect(batch.map((e) => e.body.id)).toEqual(['thumbs-m1', 'thumbs-m1']);
    // Langfuse drops an event whose id it has seen: the change must not look like a repeat.
    expect(new Set(batch.map((e) => e.id)).size).toBe(2);
    // A batch sent again is the same events.
    expect(toScoreEvents([score({ id: 'thumbs-m1', value: 1 })]).batch[0]!.id).toBe(batch[0]!.id);
  });

  it("leaves out a score's environment that Langfuse does not keep, for the exporter's own", () => {
    const { batch } = toScoreEvents([score({ environment: 'Prod EU' }), score({ id: 's2', environment: 'staging' })], 'production');
    expect(batch.map((e) => e.body.environment)).toEqual(['production', 'staging']);
    expect('environment' in toScoreEvents([score({ environment: 'Prod EU' })]).batch[0]!.body).toBe(false);
  });

  it('names the trace of a score on a trace, and the session only for a score on a session alone', () => {
    const { batch } = toScoreEvents([score({ sessionId: 'sess-1' }), score({ id: 's2', traceId: '', sessionId: 'sess-1' })]);
    expect(batch[0]!.body).toMatchObject({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736' });
    expect('sessionId' in batch[0]!.body).toBe(false);
    expect(batch[1]!.body).toMatchObject({ sessionId: 'sess-1' });
    expect('traceId' in batch[1]!.body).toBe(false);
  });

  it('carries every optional field that is set', () => {
    const [ev] = toScoreEvents([
      score({
        observationId: '00f067aa0ba902b7',
        value: 'good',
        dataType: 'CATEGORICAL',
        comment: 'nice',
        environment: 'staging',
      }),
    ]).batch;
    expect(ev!.body).toEqual({
      id: 'score-1',
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      observationId: '00f067aa0ba902b7',
      name: 'helpfulness',
      value: 'good',
      dataType: 'CATEGORICAL',
      comment: 'nice',
      environment: 'staging',
    });
  });

  it('names the data type of a text score, which the scores API would take for a number', () => {
    const { batch } = toScoreEvents([score({ value: 'helpful' }), score({ id: 's2', value: 'x', dataType: 'TEXT' }), score({ id: 's3', value: 0.5 })]);
    expect(batch.map((e) => e.body.dataType)).toEqual(['CATEGORICAL', 'TEXT', undefined]);
  });

  it('cuts a text score that a sender left longer than Langfuse takes, never inside a surrogate pair', () => {
    // A collector passes on what older pages send: TEXT values of up to 16,384 characters.
    const long = `${'x'.repeat(499)}😀${'y'.repeat(2000)}`;
    const { batch } = toScoreEvents([score({ value: long, dataType: 'TEXT' }), score({ id: 's2', value: long })]);
    expect(batch.map((e) => e.body.value)).toEqual(['x'.repeat(499), long]);
  });

  it('fills in the exporter environment only where a score has none', () => {
    const { batch } = toScoreEvents([score(), score({ id: 's2', environment: 'dev' })], 'production');
    expect(batch.map((e) => e.body.environment)).toEqual(['production', 'dev']);
  });

  it('uses the current time when a score time is unusable', () => {
    const [ev] = toScoreEvents([score({ timeMs: Number.NaN })]).batch;
    expect(Math.abs(Date.parse(ev!.timestamp) - Date.now())).toBeLessThan(5000);
  });
});

describe('toIngestionResult', () => {
  const h = new Headers();

  it('keeps the scores when a 2xx is an HTML page, as the OTLP replies do', () => {
    expect(toIngestionResult(200, new Headers(), '<!doctype html><title>Langfuse</title>')).toMatchObject({ ok: false, retryable: true, status: 200 });
  });

  it('is ok when every event succeeded', () => {
    expect(toIngestionResult(207, h, '{"successes":[{"id":"a","status":201}],"errors":[]}')).toEqual({ ok: true });
    expect(toIngestionResult(200, h, '')).toEqual({ ok: true });
  });

  it('fails permanently when every event got a 4xx', () => {
    const r = toIngestionResult(207, h, '{"successes":[],"errors":[{"id":"a","status":400,"message":"Invalid request data"}]}');
    expect(r).toEqual({
      ok: false,
      retryable: false,
      status: 400,
      reason: '1 score event(s) failed, e.g. HTTP 400 Bad Request: Invalid request data',
    });
  });

  it('counts 4xx events as rejected when others went through', () => {
    const r = toIngestionResult(
      207,
      h,
      '{"successes":[{"id":"a","status":201}],"errors":[{"id":"b","status":400,"message":"bad value"}]}',
    );
    expect(r).toMatchObject({ ok: true, rejected: 1 });
  });

  it('is retryable when any event got a 5xx', () => {
    const r = toIngestionResult(
      207,
      new Headers({ 'retry-after': '3' }),
      '{"successes":[],"errors":[{"id":"a","status":400},{"id":"b","status":500,"error":"db down"}]}',
    );
    expect(r).toMatchObject({ ok: false, retryable: true, status: 500, retryAfterMs: 3000 });
  });

  it('reports the retryable status when 4xx and retryable errors mix', () => {
    const r = toIngestionResult(207, h, '{"errors":[{"id":"a","status":408},{"id":"b","status":409}]}');
    expect(r).toMatchObject({ ok: false, retryable: true, status: 408 });
  });

  it('classifies non-2xx replies like any HTTP reply', () => {
    expect(toIngestionResult(401, h, '')).toMatchObject({ ok: false, retryable: false, status: 401 });
    expect(toIngestionResult(503, h, '')).toMatchObject({ ok: false, retryable: true, status: 503 });
  });
});

describe('toScoresResult', () => {
  const ok = { ok: true } as const;
  const bad = { ok: false, retryable: false, status: 400, reason: 'HTTP 400 Bad Request' } as const;
  const busy = { ok: false, retryable: true, status: 503, retryAfterMs: 2000, reason: 'HTTP 503 Service Unavailable' } as const;

  it('is ok when every request was', () => {
    expect(toScoresResult([ok, ok])).toEqual({ ok: true });
  });

  it('counts permanent failures as rejected when others went through', () => {
    expect(toScoresResult([ok, bad, ok])).toEqual({ ok: true, rejected: 1, reason: '1 of 3 score(s) failed, e.g. HTTP 400 Bad Request' });
  });

  it('fails permanently when every request did', () => {
    expect(toScoresResult([bad, bad])).toMatchObject({ ok: false, retryable: false, status: 400 });
  });

  it('is retryable when any request is, with the longest Retry-After', () => {
    const later = { ...busy, retryAfterMs: 5000 };
    expect(toScoresResult([ok, bad, busy, later])).toEqual({
      ok: false,
      retryable: true,
      status: 503,
      retryAfterMs: 5000,
      reason: '3 of 4 score(s) failed, e.g. HTTP 503 Service Unavailable',
    });
  });
});

// --- against a local receiver ---

const okReply = (res: ServerResponse, r: Recorded) => {
  if (r.url.endsWith('/ingestion')) {
    res.writeHead(207, { 'content-type': 'application/json' });
    res.end('{"successes":[{"id":"score-1","status":201}],"errors":[]}');
  } else res.end('{}');
};
const srv = loopbackRecorder(okReply);

const byPath = (suffix: string) => srv.requests.find((r) => r.url.endsWith(suffix));

describe('createLangfuseExporter', () => {
  const keys = { publicKey: 'pk-lf-1', secretKey: 'sk-lf-ü' };

  it('throws naming the option for missing keys and a base URL that is not one', () => {
    const call = (opts: object) => () => createLangfuseExporter(opts as never);
    expect(call({ baseUrl: 'http://127.0.0.1:1' })).toThrowError('createLangfuseExporter(): "publicKey" must be a non-empty string, got undefined');
    expect(call({ publicKey: 'pk-lf-1', secretKey: '' })).toThrowError('"secretKey" must be a non-empty string');
    for (const baseUrl of ['nope', 'cloud.langfuse.com', 'ftp://lf.example']) {
      expect(call({ ...keys, baseUrl })).toThrowError(`"baseUrl" must be an absolute http(s) URL, got "${baseUrl}"`);
    }
    expect(call(undefined as never)).toThrowError('"options" must be an object');
    expect(call({ ...keys, baseUrl: 'http://localhost:3000' })).not.toThrow();
    // An environment Langfuse would silently store as "default"; its lower-casing is fine.
    expect(call({ ...keys, environment: 'Prod EU' })).toThrowError('"environment" must be letters, digits, "-" and "_" only (Langfuse stores any other value as "default"), got "Prod EU"');
    expect(call({ ...keys, environment: 'Staging_eu-2' })).not.toThrow();
  });

  it('sends spans as OTLP JSON to the OTel endpoint with Basic auth and ingestion version 4', async () => {
    const result = await createLangfuseExporter({ ...keys, baseUrl: srv.base }).export([span()]);
    expect(result).toEqual({ ok: true });
    expect(srv.requests).toHaveLength(1);
    const req = srv.requests[0]!;
    expect(req.url).toBe('/api/public/otel/v1/traces');
    expect(req.headers.authorization).toBe('Basic ' + Buffer.from('pk-lf-1:sk-lf-ü', 'utf8').toString('base64'));
    expect(req.headers['x-langfuse-ingestion-version']).toBe('4');
    expect(req.headers['content-type']).toBe('application/json');
    const s = JSON.parse(req.body).resourceSpans[0].scopeSpans[0].spans[0];
    expect(s.attributes).toEqual([{ key: 'langfuse.observation.type', value: { stringValue: 'generation' } }]);
  });

  it('sends integer attributes as JSON numbers, which every Langfuse version reads', async () => {
    const attrs = { 'langfuse.observation.prompt.version': 3, 'langfuse.trace.metadata.tenant': 7, big: 2 ** 53 - 1, ratio: 0.5, ids: [1, 2] };
    await createLangfuseExporter({ ...keys, baseUrl: srv.base }).export([span({ attrs })]);
    const body = srv.requests[0]!.body;
    expect(body).toContain('{"key":"langfuse.observation.prompt.version","value":{"intValue":3}}');
    const s = JSON.parse(body).resourceSpans[0].scopeSpans[0].spans[0];
    const value = (key: string) => s.attributes.find((kv: { key: string }) => kv.key === key)?.value;
    expect(value('langfuse.trace.metadata.tenant')).toEqual({ intValue: 7 });
    expect(value('big')).toEqual({ intValue: 2 ** 53 - 1 });
    expect(value('ratio')).toEqual({ doubleValue: 0.5 });
    expect(value('ids')).toEqual({ arrayValue: { values: [{ intValue: 1 }, { intValue: 2 }] } });
    // Times stay decimal strings: they pass 2^53.
    expect(typeof s.startTimeUnixNano).toBe('string');
  });

  it('sends scores as score-create events to the ingestion endpoint', async () => {
    const result = await createLangfuseExporter({ ...keys, baseUrl: srv.base }).export([score()]);
    expect(result).toEqual({ ok: true });
    expect(srv.requests).toHaveLength(1);
    const req = srv.requests[0]!;
    expect(req.url).toBe('/api/public/ingestion');
    expect(req.headers.authorization).toMatch(/^Basic /);
    expect(JSON.parse(req.body).batch[0]).toMatchObject({ type: 'score-create', body: { name: 'helpfulness', value: 1 } });
  });

  it('handles trailing slashes and a path prefix in baseUrl', async () => {
    await createLangfuseExporter({ ...keys, baseUrl: `${srv.base}/langfuse//` }).export([span(), score()]);
    expect(srv.requests.map((r) => r.url).sort()).toEqual(['/langfuse/api/public/ingestion', '/langfuse/api/public/otel/v1/traces']);
  });

  it('defaults to Langfuse Cloud', async () => {
    const urls: string[] = [];
    const fake = (async (input: RequestInfo | URL) => {
      urls.push(String(input));
      return new Response('{}');
    }) as typeof fetch;
    await createLangfuseExporter({ ...keys, fetch: fake }).export([span()]);
    expect(urls).toEqual(['https://cloud.langfuse.com/api/public/otel/v1/traces']);
  });

  it('adds the environment to spans that carry none', async () => {
    await createLangfuseExporter({ ...keys, baseUrl: srv.base, environment: 'production' }).export([
      span(),
      span({ spanId: '00f067aa0ba902b8', attrs: { 'langfuse.environment': 'dev' } }),
    ]);
    const spans = JSON.parse(byPath('/traces')!.body).resourceSpans[0].scopeSpans[0].spans;
    const env = (s: { attributes: { key: string; value: { stringValue?: string } }[] }) =>
      s.attributes.filter((kv) => kv.key === 'langfuse.environment').map((kv) => kv.value.stringValue);
    expect(spans.map(env)).toEqual([['production'], ['dev']]);
  });

  it("says once, and sends anyway, when the tracer's environment is one Langfuse stores as default", async () => {
    const { createTracer } = await import('../../../src/core/tracer');
    const records: SpanRecord[] = [];
    const tracer = createTracer({ serviceName: 'web', environment: 'Prod EU', processors: [{ onEnd: (r) => records.push(r) }] });
    tracer.createTrace('turn').finish();
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const exporter = createLangfuseExporter({ ...keys, baseUrl: srv.base });
      expect(await exporter.export(records)).toEqual({ ok: true });
      expect(await exporter.export(records)).toEqual({ ok: true });
      expect(warn.mock.calls.map(([m]) => String(m))).toEqual([
        '[edgetrace] createLangfuseExporter(): the environment "Prod EU" will show in Langfuse as "default"; use letters, digits, "-" and "_" only.',
      ]);
    } finally {
      warn.mockRestore();
    }
  });

  it("gives a trace's child spans the tracer's environment, not the exporter's", async () => {
    const { createTracer } = await import('../../../src/core/tracer');
    const records: SpanRecord[] = [];
    const tracer = createTracer({ serviceName: 'web', environment: 'staging', processors: [{ onEnd: (r) => records.push(r) }] });
    const trace = tracer.createTrace('turn');
    trace.startSpan('child').end();
    trace.finish();
    await createLangfuseExporter({ ...keys, baseUrl: srv.base, environment: 'production' }).export(records);
    const spans = JSON.parse(byPath('/traces')!.body).resourceSpans[0].scopeSpans[0].spans as { name: string; attributes: { key: string; value: { stringValue?: string } }[] }[];
    const envOf = (name: string) => spans.find((s) => s.name === name)!.attributes.filter((kv) => kv.key === 'langfuse.environment').map((kv) => kv.value.stringValue);
    expect(envOf('turn')).toEqual(['staging']);
    expect(envOf('child')).toEqual(['staging']);
  });

  it("sends each generation with the trace-level fields Langfuse v4 filters and costs it by", async () => {
    const { createTracer } = await import('../../../src/core/tracer');
    const records: SpanRecord[] = [];
    const tracer = createTracer({ serviceName: 'web', release: 'v1.4.2', processors: [{ onEnd: (r) => records.push(r) }] });
    const trace = tracer.createTrace({ name: 'chat-turn', userId: 'u-7', sessionId: 'chat-3', tags: ['beta'], metadata: { plan: 'pro', prompt: 'p'.repeat(300) } });
    trace.generation('answer', { model: 'gpt-4o' }, (g) => void g.setUsage({ input: 10, output: 2 }));
    trace.finish();
    await createLangfuseExporter({ ...keys, baseUrl: srv.base }).export(records);
    type Kv = { key: string; value: { stringValue?: string; arrayValue?: { values: { stringValue: string }[] } } };
    const spans = JSON.parse(byPath('/traces')!.body).resourceSpans[0].scopeSpans[0].spans as { name: string; attributes: Kv[] }[];
    const attrs = Object.fromEntries(spans.find((s) => s.name === 'answer')!.attributes.map((kv) => [kv.key, kv.value.stringValue ?? kv.value.arrayValue?.values.map((v) => v.stringValue)]));
    expect(attrs).toMatchObject({
      'langfuse.observation.type': 'generation',
      'langfuse.trace.name': 'chat-turn',
      'user.id': 'u-7',
      'session.id': 'chat-3',
      'langfuse.trace.tags': ['beta'],
      'langfuse.release': 'v1.4.2',
      'langfuse.trace.metadata.plan': 'pro',
    });
    expect(attrs['langfuse.trace.metadata.prompt']).toBeUndefined();
  });

  it('leaves spans alone when their resource names the environment', async () => {
    const resource = { attrs: { 'service.name': 'web', 'langfuse.environment': 'dev' }, scope: { name: 'edgetrace' } };
    await createLangfuseExporter({ ...keys, baseUrl: srv.base, environment: 'production' }).export([span({ resource })]);
    const s = JSON.parse(byPath('/traces')!.body).resourceSpans[0].scopeSpans[0].spans[0];
    expect(s.attributes.some((kv: { key: string }) => kv.key === 'langfuse.environment')).toBe(false);
  });

  it('is ok when both parts succeed', async () => {
    expect(await createLangfuseExporter({ ...keys, baseUrl: srv.base }).export([span(), score()])).toEqual({ ok: true });
    expect(srv.requests).toHaveLength(2);
  });

  it('is retryable when the scores fail retryably and the spans went through', async () => {
    srv.reply = (res, { url }) => {
      if (url.endsWith('/ingestion')) {
        res.writeHead(503, { 'retry-after': '2' });
        res.end();
      } else res.end('{}');
    };
    const result = await createLangfuseExporter({ ...keys, baseUrl: srv.base }).export([span(), score()]);
    expect(result).toEqual({ ok: false, retryable: true, status: 503, retryAfterMs: 2000, reason: 'HTTP 503 Service Unavailable' });
  });

  it('leaves out of the retry what Langfuse already took, which v4 would store twice', async () => {
    let down = true;
    srv.reply = (res, { url }) => {
      if (url.endsWith('/ingestion') && down) res.writeHead(503).end();
      else okReply(res, { url } as Recorded);
    };
    const exporter = createLangfuseExporter({ ...keys, baseUrl: srv.base });
    const batch = [span(), score()];
    expect(await exporter.export(batch)).toMatchObject({ ok: false, retryable: true });
    expect(await exporter.export(batch)).toMatchObject({ ok: false, retryable: true });
    down = false;
    expect(await exporter.export(batch)).toEqual({ ok: true });
    // The spans went once; the scores were tried three times. Once done, the ids are forgotten.
    const count = (path: string) => srv.requests.filter((r) => r.url === path).length;
    expect([count('/api/public/otel/v1/traces'), count('/api/public/ingestion')]).toEqual([1, 3]);
    expect(await exporter.export(batch)).toEqual({ ok: true });
    expect([count('/api/public/otel/v1/traces'), count('/api/public/ingestion')]).toEqual([2, 4]);
  });

  it('is retryable when a 207 reports a 5xx for a score', async () => {
    srv.reply = (res, { url }) => {
      if (url.endsWith('/ingestion')) {
        res.writeHead(207, { 'content-type': 'application/json' });
        res.end('{"successes":[],"errors":[{"id":"score-1","status":500,"message":"oops"}]}');
      } else res.end('{}');
    };
    const result = await createLangfuseExporter({ ...keys, baseUrl: srv.base }).export([span(), score()]);
    expect(result).toMatchObject({ ok: false, retryable: true, status: 500 });
  });

  it('fails permanently when the keys are refused', async () => {
    srv.reply = (res) => {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end('{"message":"Invalid credentials"}');
    };
    const result = await createLangfuseExporter({ ...keys, baseUrl: srv.base }).export([span(), score()]);
    expect(result).toMatchObject({ ok: false, retryable: false, status: 401 });
    expect(result.reason).toContain('HTTP 401 Unauthorized: Invalid credentials');
  });

  it('is retryable when spans fail retryably even if scores fail permanently', async () => {
    srv.reply = (res, { url }) => {
      res.writeHead(url.endsWith('/ingestion') ? 404 : 502);
      res.end();
    };
    const result = await createLangfuseExporter({ ...keys, baseUrl: srv.base }).export([span(), score()]);
    expect(result).toMatchObject({ ok: false, retryable: true, status: 502 });
  });

  it('sends scores to the scores API, one request each, once the ingestion endpoint is gone', async () => {
    srv.reply = (res, { url }) => {
      if (url.endsWith('/ingestion')) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"message":"Not found"}');
      } else res.end('{"id":"x"}');
    };
    const exporter = createLangfuseExporter({ ...keys, baseUrl: srv.base, environment: 'production' });
    expect(await exporter.export([span(), score({ id: 'a' }), score({ id: 'b', value: 'good', dataType: 'CATEGORICAL' })])).toEqual({ ok: true });
    expect(srv.requests.map((r) => r.url).sort()).toEqual([
      '/api/public/ingestion',
      '/api/public/otel/v1/traces',
      '/api/public/scores',
      '/api/public/scores',
    ]);
    const sent = srv.requests.filter((r) => r.url === '/api/public/scores');
    expect(sent.map((r) => r.headers.authorization)).toEqual([expect.stringMatching(/^Basic /), expect.stringMatching(/^Basic /)]);
    expect(sent.map((r) => JSON.parse(r.body)).sort((x, y) => x.id.localeCompare(y.id))).toEqual([
      { id: 'a', traceId: '4bf92f3577b34da6a3ce929d0e0e4736', name: 'helpfulness', value: 1, environment: 'production' },
      { id: 'b', traceId: '4bf92f3577b34da6a3ce929d0e0e4736', name: 'helpfulness', value: 'good', dataType: 'CATEGORICAL', environment: 'production' },
    ]);
    // Later batches skip the endpoint that is gone.
    srv.requests.length = 0;
    expect(await exporter.export([score({ id: 'c' })])).toEqual({ ok: true });
    expect(srv.requests.map((r) => r.url)).toEqual(['/api/public/scores']);
  });

  it('keeps using the ingestion endpoint when it fails for another reason', async () => {
    srv.reply = (res, { url }) => {
      res.writeHead(url.endsWith('/ingestion') ? 503 : 200);
      res.end('{}');
    };
    const exporter = createLangfuseExporter({ ...keys, baseUrl: srv.base });
    expect(await exporter.export([score()])).toMatchObject({ ok: false, retryable: true, status: 503 });
    expect(srv.requests.map((r) => r.url)).toEqual(['/api/public/ingestion']);
  });

  it('reads the scores API replies like a 207: retryable if any is, rejected counted when others went through', async () => {
    let n = 0;
    srv.reply = (res, { url }) => {
      if (url.endsWith('/ingestion')) res.writeHead(404);
      else res.writeHead(n++ === 0 ? 400 : 200);
      res.end('{}');
    };
    const exporter = createLangfuseExporter({ ...keys, baseUrl: srv.base });
    expect(await exporter.export([score({ id: 'a' }), score({ id: 'b' })])).toMatchObject({ ok: true, rejected: 1 });
    srv.reply = (res) => {
      res.writeHead(429, { 'retry-after': '7' });
      res.end();
    };
    expect(await exporter.export([score({ id: 'c' })])).toMatchObject({ ok: false, retryable: true, status: 429, retryAfterMs: 7000 });
  });

  it('sends nothing for an empty batch', async () => {
    expect(await createLangfuseExporter({ ...keys, baseUrl: srv.base }).export([])).toEqual({ ok: true });
    expect(srv.requests).toHaveLength(0);
  });

  it('never rejects, even when fetch does', async () => {
    const fake = (() => Promise.reject(new TypeError('Failed to fetch'))) as unknown as typeof fetch;
    const result = await createLangfuseExporter({ ...keys, fetch: fake }).export([span(), score()]);
    expect(result).toMatchObject({ ok: false, retryable: true });
    expect(result.reason).toContain('network error: Failed to fetch');
  });
});
