import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { gzipSync } from 'node:zlib';
import { startReceiver, type Receiver } from '../unit/server/loopback';
import { otlpBody, otlpProtobuf, spanRecord } from '../unit/server/otlpFixtures';
import { FROZEN_MS } from './fixtures/app';
import { cleanUp, RUNTIMES, type RunningApp } from './runtimes';
import type { OtlpSpan } from '../../src/export/otlp';

// The same middleware and the same checks in workerd (miniflare, nodejs_compat), Vercel's
// edge-runtime, Deno and Bun: the incoming trace is continued, outgoing fetch carries it, the
// body is streamed to the end, errors are recorded, a frozen clock gives zero-length spans, and
// each request's spans reach the loopback receiver in exactly one export (waitUntil where the
// runtime has it, awaited where it does not).
interface Export {
  service: string;
  resource: Record<string, string | undefined>;
  spans: OtlpSpan[];
}

// What each runtime calls itself on the spans' resource (`process.runtime.name`), and whether it tells its version.
const RUNTIME_NAMES: Record<string, [name: string, versioned: boolean]> = {
  workerd: ['cloudflare-workers', false],
  'edge-runtime': ['edge-runtime', false],
  deno: ['deno', true],
  bun: ['bun', true],
};

let rx: Receiver;
beforeAll(async () => {
  rx = await startReceiver();
  rx.reply = (req, res) => {
    if (req.url === '/model?stream') {
      // An OpenAI-style stream: the role chunk with the headers, the first token 50 ms later.
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"choices":[{"delta":{"role":"assistant"}}],"usage":null}\n\n');
      setTimeout(() => res.end('data: {"choices":[{"delta":{"content":"Hi"}}],"usage":null}\n\ndata: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}\n\ndata: [DONE]\n\n'), 50);
      return;
    }
    if (req.url === '/model') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"choices":[{"message":{"content":"Hi"}}],"usage":{"prompt_tokens":31,"completion_tokens":7}}');
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(req.url.startsWith('/down') ? `down ${new URL(req.url, 'http://x').searchParams.get('i')}` : '{}');
  };
});
afterAll(async () => {
  await rx.close();
  cleanUp();
});

const exportsOf = (traceId: string): Export[] =>
  rx.received
    .filter((r) => r.url === '/v1/traces')
    .map((r) => JSON.parse(r.body) as { resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: OtlpSpan[] }[] }[] })
    .flatMap((body) =>
      body.resourceSpans.map((rs) => ({
        service: rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '',
        resource: Object.fromEntries(rs.resource.attributes.map((a) => [a.key, a.value.stringValue])),
        spans: rs.scopeSpans.flatMap((ss) => ss.spans),
      })),
    )
    .filter((e) => e.spans.some((s) => s.traceId === traceId));

const waitForExport = async (traceId: string, timeoutMs = 10_000): Promise<Export[]> => {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const found = exportsOf(traceId);
    if (found.length) {
      // Any second export for the same request would arrive right behind the first.
      await new Promise((r) => setTimeout(r, 50));
      return exportsOf(traceId);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`no export for trace ${traceId} within ${timeoutMs} ms`);
};

const attr = (s: OtlpSpan, key: string) => s.attributes.find((a) => a.key === key)?.value;

let traceCounter = 0;
const newTraceId = () => `e${(++traceCounter).toString(16).padStart(3, '0')}${Math.floor(Math.random() * 0xfffffff).toString(16).padStart(7, '0')}`.padEnd(32, '7');
const PARENT = '00f067aa0ba902b7';

for (const runtime of RUNTIMES) {
  describe(`withTracing in ${runtime.name}`, () => {
    let app: RunningApp;
    beforeAll(async () => {
      app = await runtime.start({ RUNTIME: runtime.name, EXPORT_URL: `${rx.base}/v1/traces`, DOWNSTREAM_URL: rx.base });
    }, 60_000);
    afterAll(async () => {
      await app?.close();
    });

    it('continues the trace, propagates it on fetch, and exports the request once', async () => {
      const traceId = newTraceId();
      const res = await app.request('/call?n=2', { headers: { traceparent: `00-${traceId}-${PARENT}-01`, tracestate: 'edge=1,vendor=x' } });
      expect(res.status).toBe(200);
      expect(JSON.parse(res.text)).toEqual(['down 0', 'down 1']);
      await app.settled();
      const [exp, ...more] = await waitForExport(traceId);
      expect(more).toEqual([]);
      expect(exp!.service).toBe(`edge-${runtime.name}`);
      const [runtimeName, versioned] = RUNTIME_NAMES[runtime.name]!;
      expect(exp!.resource['process.runtime.name']).toBe(runtimeName);
      expect(exp!.resource['process.runtime.version']).toEqual(versioned ? expect.stringMatching(/^\d+\.\d+\.\d+/) : undefined);
      const server = exp!.spans.find((s) => s.kind === 2)!;
      const clients = exp!.spans.filter((s) => s.kind === 3);
      expect(server).toMatchObject({ traceId, parentSpanId: PARENT, name: 'GET' });
      expect(attr(server, 'http.response.status_code')).toEqual({ intValue: '200' });
      expect(clients).toHaveLength(2);
      const calls = rx.received.filter((r) => r.url.startsWith('/down') && String(r.headers.traceparent).includes(traceId));
      expect(calls).toHaveLength(2);
      for (const call of calls) {
        const [, t, parent, flags] = String(call.headers.traceparent).split('-');
        expect(t).toBe(traceId);
        expect(flags).toBe('01');
        expect(call.headers.tracestate).toBe('edge=1,vendor=x');
        const client = clients.find((c) => c.spanId === parent)!;
        expect(client.parentSpanId).toBe(server.spanId);
        expect(call.body).toMatch(/^\{"i":\d\}$/);
      }
      expect(res.headers.get('traceresponse')).toBe(`00-${traceId}-${server.spanId}-01`);
    });

    it('records traced() functions and OpenTelemetry API spans into the request’s trace', async () => {
      const traceId = newTraceId();
      const res = await app.request('/traced?key=abc', { headers: { traceparent: `00-${traceId}-${PARENT}-01` } });
      expect(res.text).toBe('ABC');
      await app.settled();
      const [exp] = await waitForExport(traceId);
      const server = exp!.spans.find((s) => s.kind === 2)!;
      const fn = exp!.spans.find((s) => s.name === 'lookup')!;
      const library = exp!.spans.find((s) => s.name === 'library call')!;
      expect(fn).toMatchObject({ traceId, parentSpanId: server.spanId });
      expect(library).toMatchObject({ traceId, parentSpanId: fn.spanId, kind: 3 });
      expect(attr(library, 'key')).toEqual({ stringValue: 'abc' });
    });

    it("keeps a core tracer's span current across awaits with the runtime's own AsyncLocalStorage", async () => {
      const res = await app.request('/default-context');
      expect(res.text).toBe('job');
    });

    it('ends the span after the streamed body and exports it once', async () => {
      const traceId = newTraceId();
      const res = await app.request('/stream', { headers: { traceparent: `00-${traceId}-${PARENT}-01` } });
      expect(res.text).toBe('data: token0\n\ndata: token1\n\ndata: token2\n\n');
      if (!runtime.hasWaitUntil) {
        // Without waitUntil the body's end waited for the export.
        expect(exportsOf(traceId)).toHaveLength(1);
      }
      await app.settled();
      const [exp, ...more] = await waitForExport(traceId);
      expect(more).toEqual([]);
      const server = exp!.spans.find((s) => s.kind === 2)!;
      expect(attr(server, 'http.response.body.size')).toEqual({ intValue: String(res.text.length) });
      // Three chunks, 5 ms apart: the span covers the body, not just the headers.
      expect(BigInt(server.endTimeUnixNano) - BigInt(server.startTimeUnixNano)).toBeGreaterThanOrEqual(10_000_000n);
    });

    it('fills a generation around a model call from its response: first-token time and usage', async () => {
      const traceId = newTraceId();
      const res = await app.request('/llm', { headers: { traceparent: `00-${traceId}-${PARENT}-01` } });
      expect(res.status).toBe(200);
      const out = JSON.parse(res.text) as { streamed: string; whole: { usage: unknown } };
      expect(out.streamed).toContain('[DONE]');
      expect(out.whole.usage).toEqual({ prompt_tokens: 31, completion_tokens: 7 });
      await app.settled();
      const [exp] = await waitForExport(traceId);
      const gen = exp!.spans.find((s) => s.name === 'llm')!;
      const json = exp!.spans.find((s) => s.name === 'llm-json')!;
      expect(JSON.parse(String(attr(gen, 'langfuse.observation.usage_details')?.stringValue))).toEqual({ input: 9, output: 2, total: 11 });
      expect(JSON.parse(String(attr(json, 'langfuse.observation.usage_details')?.stringValue))).toEqual({ input: 31, output: 7 });
      const first = Date.parse(String(attr(gen, 'langfuse.observation.completion_start_time')?.stringValue));
      // Workers' clock stands still while code runs and moves on I/O: the 50 ms wait shows.
      expect(first * 1e6 - Number(gen.startTimeUnixNano)).toBeGreaterThanOrEqual(30e6);
    });

    // encodeBody is workerd's alone; elsewhere there is no such option to lose.
    it.runIf(runtime.name === 'workerd')('passes a body already compressed on as it is (encodeBody: manual)', async () => {
      const res = await app.request('/gzip');
      expect(res.text).toBe('already compressed '.repeat(20));
    });

    it('starts a new trace for a malformed traceparent', async () => {
      const traceId = newTraceId();
      const before = rx.received.length;
      await app.request('/call?n=1', { headers: { traceparent: `00-${traceId}-${PARENT}-01-extra` } });
      await app.settled();
      const call = rx.received.slice(before).find((r) => r.url.startsWith('/down'))!;
      const sent = String(call.headers.traceparent).split('-')[1]!;
      expect(sent).toMatch(/^[0-9a-f]{32}$/);
      expect(sent).not.toBe(traceId);
      await waitForExport(sent);
    });

    it('records a thrown error and rethrows it', async () => {
      const traceId = newTraceId();
      const res = await app.request('/error', { headers: { traceparent: `00-${traceId}-${PARENT}-01` } });
      expect(res.status).toBe(500);
      expect(res.text).toBe('caught: boom');
      await app.settled();
      const [exp] = await waitForExport(traceId);
      const server = exp!.spans.find((s) => s.kind === 2)!;
      expect(server.status).toEqual({ code: 2, message: 'boom' });
      expect(attr(server, 'error.type')).toEqual({ stringValue: 'Error' });
    });

    it('exports zero-length spans, never negative, under a frozen clock', async () => {
      const traceId = newTraceId();
      await app.request('/frozen/call?n=1', { headers: { traceparent: `00-${traceId}-${PARENT}-01` } });
      await app.settled();
      const [exp] = await waitForExport(traceId);
      expect(exp!.spans).toHaveLength(2);
      for (const s of exp!.spans) {
        expect(s.startTimeUnixNano).toBe(`${FROZEN_MS}000000`);
        expect(s.endTimeUnixNano).toBe(`${FROZEN_MS}000000`);
      }
    });

    it('runs the collector: forwards good spans, refuses bad input, limits a flood', async () => {
      const traceId = newTraceId();
      const body = JSON.stringify(otlpBody([spanRecord({ traceId, name: 'from-page' })]));
      const post = (b: BodyInit, headers: Record<string, string> = {}) =>
        app.request('/collector/v1/traces', { method: 'POST', headers: { 'content-type': 'application/json', 'cf-connecting-ip': '10.0.0.1', ...headers }, body: b });
      const ok = await post(body);
      expect(ok.status).toBe(200);
      expect(JSON.parse(ok.text)).toEqual({});
      const [exp] = await waitForExport(traceId);
      expect(exp!.spans[0]!.name).toBe('from-page');
      const bad = await post('{"resourceSpans": 1}');
      expect(bad.status).toBe(400);
      expect(JSON.parse(bad.text)).toEqual({ code: 3, message: 'resourceSpans must be an array' });
      // Binary protobuf, as a backend's OpenTelemetry SDK sends it, answered in kind.
      const protoId = newTraceId();
      const proto = await post(otlpProtobuf([spanRecord({ traceId: protoId, name: 'from-otel-sdk' })]), { 'content-type': 'application/x-protobuf' });
      expect(proto.status).toBe(200);
      expect(proto.headers.get('content-type')).toBe('application/x-protobuf');
      expect((await waitForExport(protoId))[0]!.spans[0]!.name).toBe('from-otel-sdk');
      // gzip through DecompressionStream, where the runtime has it (edge-runtime's VM has not).
      const gz = await post(new Uint8Array(gzipSync(JSON.stringify(otlpBody([spanRecord()])))), { 'content-encoding': 'gzip' });
      expect(gz.status).toBe(runtime.name === 'edge-runtime' ? 415 : 200);
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await post('{}')).status);
      expect(statuses).toContain(429);
    });
  });
}
