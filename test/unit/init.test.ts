import { afterEach, describe, expect, it, vi } from 'vitest';
import { getTracer, init, setTracer } from '../../src/core/global';
import { getStatus } from '../../src/transport/index';
import { loopbackRecorder } from '../helpers/loopback';

const srv = loopbackRecorder();
const bodyOf = (i: number): any => JSON.parse(srv.requests[i]!.body);

describe('init', () => {
  afterEach(() => {
    setTracer(undefined);
    vi.unstubAllGlobals();
  });

  it('sends spans to endpoint as OTLP/HTTP JSON with the given headers', async () => {
    const tracer = init({ endpoint: `${srv.base}/v1/traces`, headers: { 'x-ingest-token': 'pub' }, serviceName: 'svc' });
    tracer.withTrace('t', (t) => t.span('c', () => undefined));
    await tracer.flush();
    expect(srv.requests).toHaveLength(1);
    expect(srv.requests[0]?.url).toBe('/v1/traces');
    expect(srv.requests[0]?.headers['x-ingest-token']).toBe('pub');
    const spans = bodyOf(0).resourceSpans[0].scopeSpans[0].spans;
    expect(spans.map((s: { name: string }) => s.name).sort()).toEqual(['c', 't']);
  });

  it('loads the Langfuse exporter on demand and sends with Basic auth and the v4 header', async () => {
    const tracer = init({ langfuse: { publicKey: 'pk-lf-ü', secretKey: 'sk-lf-1', baseUrl: srv.base } });
    tracer.withTrace('t', () => undefined);
    await tracer.flush();
    expect(srv.requests[0]?.url).toBe('/api/public/otel/v1/traces');
    expect(srv.requests[0]?.headers.authorization).toBe(`Basic ${Buffer.from('pk-lf-ü:sk-lf-1', 'utf8').toString('base64')}`);
    expect(srv.requests[0]?.headers['x-langfuse-ingestion-version']).toBe('4');
  });

  it('sends to Langfuse with an environment Langfuse does not keep, and says so; a refusal is said once without debug', async () => {
    const warned = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const tracer = init({ environment: 'Prod EU', langfuse: { publicKey: 'pk-lf-1', secretKey: 'sk-lf-1', baseUrl: srv.base } });
      tracer.withTrace('t', () => undefined);
      await tracer.flush();
      expect(srv.requests.map((r) => r.url)).toEqual(['/api/public/otel/v1/traces']);
      expect(warned.mock.calls.flat().join('\n')).toMatch(/"Prod EU" will show in Langfuse as "default"/);
      // Wrong keys: Langfuse answers 401, which is told once, whatever `debug` is.
      srv.reply = (res) => void res.writeHead(401).end('{"message":"Invalid credentials"}');
      warned.mockClear();
      for (const name of ['a', 'b']) {
        tracer.withTrace(name, () => undefined);
        await tracer.flush();
      }
      const told = warned.mock.calls.flat().filter((m) => String(m).includes('refused a batch'));
      expect(told).toHaveLength(1);
      expect(String(told[0])).toMatch(/401/);
    } finally {
      warned.mockRestore();
    }
  });

  it('says once that a script\'s init() with nowhere to send sends nothing; not when it has somewhere', () => {
    const warned = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      init({ endpoint: `${srv.base}/v1/traces` });
      init({ processors: [{ onEnd: () => undefined }] });
      expect(warned.mock.calls.map((c) => c.join(' ')).filter((m) => m.includes('nothing is sent'))).toEqual([]);
      init({ serviceName: 'job' });
      init({});
      expect(warned.mock.calls.map((c) => c.join(' ')).filter((m) => m.includes('nothing is sent'))).toEqual([
        expect.stringContaining('init(): nothing is sent: give endpoint, langfuse or exporter (edgetrace/server: fromEnv(process.env)'),
      ]);
    } finally {
      warned.mockRestore();
    }
  });

  it("says once, in a browser, that an endpoint given as undefined (missing from the build) sends nothing; not when it was left out", async () => {
    vi.resetModules();
    // A web worker: a browser without a page.
    vi.stubGlobal('importScripts', () => undefined);
    const fresh = await import('../../src/core/global');
    const warned = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const nowhere = () => warned.mock.calls.map((c) => c.join(' ')).filter((m) => m.includes('nothing is sent'));
      // Trace headers only: nothing to deliver, and meant so.
      fresh.init({ serviceName: 'chat' });
      fresh.init({ endpoint: undefined, exporter: { export: async () => ({ ok: true }) } });
      expect(nowhere()).toEqual([]);
      fresh.init({ endpoint: undefined, serviceName: 'chat' });
      fresh.init({ endpoint: undefined });
      expect(nowhere()).toEqual(['[edgetrace] init(): "endpoint" is undefined (a variable missing from the build?), so nothing is sent.']);
      // Options that are no object are refused as such, not by the check for a missing endpoint.
      expect(() => fresh.init('x' as never)).toThrowError('[edgetrace] init(): "options" must be an object, got "x".');
    } finally {
      warned.mockRestore();
      await fresh.stop();
    }
  });

  it('sends from memory where `document` is null, as where it is missing (a server-side shim)', async () => {
    // Some server renderers define the browser globals as null; there is no page, nor a location.
    vi.stubGlobal('document', null);
    const tracer = init({ endpoint: `${srv.base}/v1/traces` });
    tracer.withTrace('t', () => undefined);
    await tracer.flush();
    expect((await getStatus()).transport).toBe('memory');
    expect(srv.requests.map((r) => r.url)).toEqual(['/v1/traces']);
  });

  it('sends a batch a server refuses as too large in smaller requests, losing nothing', async () => {
    // A receiver that takes at most 40 KB a request, as a collector's maxBodyBytes does.
    srv.reply = (res, req) => void res.writeHead(req.body.length > 40_000 ? 413 : 200).end('{}');
    const tracer = init({ endpoint: `${srv.base}/v1/traces` });
    // Generations with long outputs, as a busy LLM backend ends them: about 100 KB in all.
    for (let i = 0; i < 10; i++) tracer.withTrace(`turn-${i}`, (t) => t.setOutput('x'.repeat(10_000)));
    await tracer.flush();
    const taken = srv.requests.filter((r) => r.body.length <= 40_000).flatMap((r) => JSON.parse(r.body).resourceSpans[0].scopeSpans[0].spans.map((s: { name: string }) => s.name));
    expect(taken.sort()).toEqual(Array.from({ length: 10 }, (_, i) => `turn-${i}`).sort());
    expect(await getStatus()).toMatchObject({ delivered: 10, deadLettered: 0 });
  });

  it('leaves the running tracer and its delivery in place when a second init() has a bad option', async () => {
    const first = init({ endpoint: `${srv.base}/v1/traces` });
    for (const bad of [{ delivery: { maxBatchRecords: 0 } }, { pageBuffer: { maxRecords: -1 } }, { transport: 'carrier-pigeon' }, { ingestToken: '' }]) {
      expect(() => init({ endpoint: `${srv.base}/v1/traces`, ...bad } as never)).toThrow(TypeError);
    }
    expect(getTracer()).toBe(first);
    first.withTrace('still-delivered', () => undefined);
    await first.flush();
    expect((await getStatus()).transport).toBe('memory');
    expect(bodyOf(0).resourceSpans[0].scopeSpans[0].spans[0].name).toBe('still-delivered');
  });

  it('checks the delivery options also where they go unused: an exporter of its own, no endpoint', () => {
    const exporter = { export: async () => ({ ok: true as const }) };
    expect(() => init({ exporter, delivery: { maxBatchRecords: -1 } })).toThrow(/"delivery.maxBatchRecords"/);
    expect(() => init({ transport: 'carrier-pigeon' } as never)).toThrow(/"transport"/);
  });
});
