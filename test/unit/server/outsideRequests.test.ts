import { describe, it, expect, afterEach, afterAll, beforeAll, vi } from 'vitest';
import { EventEmitter } from 'node:events';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Exporter, SpanRecord, TelemetryRecord } from '../../../src/protocol';
import { getTracer, setTracer, stop } from '../../../src/core/global';
import { createTracer } from '../../../src/core/tracer';
import { batchProcessor } from '../../../src/core/processors';
import { withNodeTracing } from '../../../src/server/nodeTracing';
import { requestWaitUntil, withTracing } from '../../../src/server/withTracing';
import { requestSpan, requestTrace } from '../../../src/server/scope';
import { toNodeListener } from '../../../src/server/node';
import { OPEN_SPAN_GRACE_MS } from '../../../src/server/withTracing';
import { startReceiver, type Receiver } from './loopback';
import { createServer, get, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { recorder } from '../../helpers/recorder';
import { collectGarbage } from '../../helpers/gc';

// Work a traced server does outside its requests: a background job, a shutdown hook's flush.

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

afterEach(() => setTracer(undefined));

/** An exporter that keeps what it is given and, as a hand-written one might, sends with the global fetch. */
const fetchingExporter = () => {
  const records: TelemetryRecord[] = [];
  const exporter: Exporter = {
    export: async (batch) => {
      records.push(...batch);
      await (await fetch(`${rx.base}/export`)).text();
      return { ok: true };
    },
  };
  return { exporter, records };
};

/** Serves `listener` on loopback for one GET of `/`, read to the end, and closes. */
const requestOnce = async (listener: (req: IncomingMessage, res: ServerResponse) => void): Promise<void> => {
  const server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await (await fetch(`http://127.0.0.1:${port}/`)).text();
  await new Promise<void>((resolve) => server.close(() => resolve()));
};

let rx: Receiver;
beforeAll(async () => {
  rx = await startReceiver();
});
afterAll(() => rx.close());
afterEach(() => {
  rx.received.length = 0;
});

describe('getTracer() outside a request of a traced server', () => {
  it('is the Node listener’s tracer: a background job’s trace is sent, and getTracer().flush() sends it', async () => {
    const { exporter, spans } = recorder();
    const listener = withNodeTracing((_req, res) => res.end(), { exporter });
    const job = getTracer().createTrace('nightly-reindex');
    job.span('batch', () => undefined);
    job.finish();
    await getTracer().flush();
    expect(spans().map((s) => s.name).sort()).toEqual(['batch', 'nightly-reindex']);
    await listener.drain();
  });

  it('is a fetch-style handler’s tracer: what is recorded there is sent by getTracer().flush()', async () => {
    const { exporter, spans } = recorder();
    const handler = withTracing(() => new Response('ok'), { exporter });
    await handler(new Request('http://app.test/'), {}, { waitUntil: () => undefined });
    getTracer().createTrace('cache-warm').finish();
    await getTracer().flush();
    expect(spans().map((s) => s.name)).toContain('cache-warm');
  });

  it('sends what a fetch-style server records outside its requests a second later, with no request to flush it', async () => {
    const { exporter, spans } = recorder();
    const handler = withTracing(async () => {
      // A job a request sets going, which runs on after the response.
      setTimeout(() => getTracer().createTrace('after-response').finish(), 20);
      return new Response('ok');
    }, { exporter, waitUntil: (p) => void p });
    getTracer().createTrace('before-any-request').finish();
    await new Promise((r) => setTimeout(r, 200));
    expect(spans()).toEqual([]);
    await vi.waitFor(() => expect(spans().map((s) => s.name)).toEqual(['before-any-request']), { timeout: 3000, interval: 50 });
    await (await handler(new Request('http://app.test/'))).text();
    await vi.waitFor(() => expect(spans().map((s) => s.name)).toEqual(['before-any-request', 'GET', 'after-response']), { timeout: 3000, interval: 50 });
  });

  it('is the tracer of a wrapper whose exporter comes from the environment, made when a job asks for it before any request', async () => {
    vi.stubEnv('OTEL_EXPORTER_OTLP_ENDPOINT', rx.base);
    vi.stubEnv('OTEL_SERVICE_NAME', 'env-jobs');
    try {
      const handler = withTracing(() => new Response('ok'), { waitUntil: (p) => void p });
      // Held by the wrapper alone, the way to its tracer outlives a collection.
      await collectGarbage();
      await getTracer().withTrace('nightly', async () => {
        await (await fetch(`${rx.base}/job-call`)).text();
      });
      await vi.waitFor(() => expect(rx.received.some((r) => r.url === '/v1/traces')).toBe(true), { timeout: 3000, interval: 50 });
      const sent = rx.received.find((r) => r.url === '/v1/traces')!.body;
      expect(sent).toContain('"nightly"');
      expect(sent).toContain('env-jobs');
      // The job's call was traced inside its span, under the wrapper's propagateTo (true by default).
      expect(rx.received.find((r) => r.url === '/job-call')!.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-/);
      // The first request uses the same tracer.
      const job = getTracer();
      await (await handler(new Request('http://app.test/'))).text();
      expect(getTracer()).toBe(job);
      await job.flush();
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('is flushed by stop() where init() made no tracer (a shutdown hook written for a script)', async () => {
    const { exporter, spans } = recorder();
    withTracing(() => new Response('ok'), { exporter, waitUntil: (p) => void p });
    getTracer().createTrace('last-job').finish();
    await stop();
    expect(spans().map((s) => s.name)).toEqual(['last-job']);
  });

  it('is not made by stop() or a drain() at shutdown, when no job asked for it: nothing to flush, nothing to patch', async () => {
    withTracing(() => new Response('ok'), { waitUntil: (p) => void p });
    const listener = toNodeListener(withTracing(() => new Response('ok'), { waitUntil: (p) => void p }));
    const pending = () => (globalThis as Record<symbol, { processWide?: WeakRef<object> } | undefined>)[Symbol.for('edgetrace.requests.1')]?.processWide?.deref();
    expect(pending()).toHaveProperty('make');
    await stop();
    await listener.drain();
    expect(pending()).toHaveProperty('make');
    // Asked by a job, it is made.
    getTracer();
    expect(pending()).toHaveProperty('tracer');
  });

  it('is flushed by toNodeListener’s drain(), after the requests’ work', async () => {
    const { exporter, spans } = recorder();
    const listener = toNodeListener(withTracing(() => new Response('ok'), { exporter }));
    await requestOnce(listener as unknown as Parameters<typeof requestOnce>[0]);
    getTracer().createTrace('shutdown-job').finish();
    await listener.drain();
    expect(spans().map((s) => s.name)).toEqual(['GET', 'shutdown-job']);
  });

  it('is the one init() or setTracer() made, where there is one', async () => {
    const { exporter, spans } = recorder();
    withNodeTracing((_req, res) => res.end(), { exporter });
    const wrapper = getTracer();
    const mine = createTracer();
    setTracer(mine);
    expect(getTracer()).toBe(mine);
    setTracer(undefined);
    expect(getTracer()).toBe(wrapper);
    wrapper.createTrace('recorded').finish();
    await wrapper.flush();
    expect(spans().map((s) => s.name)).toEqual(['recorded']);
  });

  it('sends what a fetch-style server recorded outside its requests when the process ends', { timeout: 30_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'edgetrace-exit-'));
    try {
      const outfile = join(dir, 'app.mjs');
      const { build } = await import('esbuild');
      await build({
        stdin: {
          contents: `import { withTracing } from './src/server/index';
import { getTracer } from './src/index';
const exporter = { export: async (records) => { console.log(JSON.stringify(records.map((r) => r.name))); return { ok: true }; } };
withTracing(() => new Response('ok'), { exporter });
// No request ever comes: only the exit's flush can send this.
getTracer().createTrace('startup-migration').finish();`,
          resolveDir: ROOT,
          loader: 'ts',
        },
        bundle: true,
        format: 'esm',
        platform: 'node',
        outfile,
        logLevel: 'silent',
      });
      const child = spawnSync(process.execPath, [outfile], { cwd: ROOT, encoding: 'utf8', timeout: 20_000 });
      expect(child.stderr).toBe('');
      expect(child.stdout.trim()).toBe('["startup-migration"]');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('traces the calls a background job makes inside its span, under the wrapper’s propagateTo; not those outside a span, nor an exporter’s own', async () => {
    // An exporter of the app's that sends with the global fetch: its sends must not become spans.
    const { exporter, records } = fetchingExporter();
    const listener = withNodeTracing((_req, res) => res.end(), { exporter, propagateTo: [rx.base] });
    // What the process keeps of the wrapper lives as long as the wrapper does.
    await collectGarbage();
    await fetch(`${rx.base}/outside`);
    await getTracer().withTrace('nightly-summary', async () => {
      await (await fetch(`${rx.base}/model`, { method: 'POST', body: '{}' })).text();
      await new Promise((resolve) => get(`${rx.base}/legacy`, (res) => res.resume().on('end', resolve)));
      await fetch('http://127.0.0.1:9/elsewhere').catch(() => undefined);
    });
    await getTracer().flush();
    await listener.drain();
    const spans = records.filter((r): r is SpanRecord => r.rec === 'span');
    const job = spans.find((x) => x.name === 'nightly-summary')!;
    const clients = spans.filter((x) => x.kind === 'client');
    expect(clients.map((c) => [c.name, String(c.attrs['url.full']).replace(rx.base, ''), c.traceId, c.parentId])).toEqual([
      ['POST', '/model', job.traceId, job.spanId],
      ['GET', '/legacy', job.traceId, job.spanId],
      ['GET', 'http://127.0.0.1:9/elsewhere', job.traceId, job.spanId],
    ]);
    const headers = Object.fromEntries(rx.received.map((r) => [r.url, r.headers.traceparent]));
    expect(headers['/outside']).toBeUndefined();
    expect(headers['/export']).toBeUndefined();
    expect(headers['/model']).toMatch(new RegExp(`^00-${job.traceId}-`));
    expect(headers['/legacy']).toMatch(new RegExp(`^00-${job.traceId}-`));
  });

  it('traces the calls of a trace of its own that a request started, during the request and after it (a job a handler kicked off)', async () => {
    const { exporter, spans } = recorder();
    let later: Promise<unknown> = Promise.resolve();
    const listener = withNodeTracing(
      async (_req, res) => {
        await getTracer().withTrace('bg-job', async () => void (await fetch(`${rx.base}/during`)));
        // A job the first request set going, which runs on after it in its async context.
        later = new Promise((r) => setTimeout(r, 30)).then(() => getTracer().withTrace('lazy-job', async () => void (await fetch(`${rx.base}/after`))));
        res.end('ok');
      },
      { exporter },
    );
    await new Promise<void>((resolve) => {
      const req = { method: 'GET', url: '/kick', headers: { host: 'app.test' }, httpVersion: '1.1' };
      const res = Object.assign(new EventEmitter(), {
        statusCode: 200,
        headersSent: false,
        writableFinished: false,
        setHeader: () => undefined,
        getHeader: () => undefined,
        hasHeader: () => false,
        end(this: EventEmitter & { writableFinished: boolean }) {
          this.writableFinished = true;
          this.emit('finish');
          resolve();
        },
      });
      void listener(req as never, res as never);
    });
    await later;
    await listener.drain();
    for (const [job, path] of [['bg-job', '/during'], ['lazy-job', '/after']] as const) {
      const root = spans().find((x) => x.name === job)!;
      const client = spans().find((x) => x.kind === 'client' && String(x.attrs['url.full']).endsWith(path))!;
      expect(client, path).toMatchObject({ traceId: root.traceId, parentId: root.spanId });
      expect(rx.received.find((r) => r.url === path)!.headers.traceparent).toMatch(new RegExp(`^00-${root.traceId}-`));
    }
  });

  it('ends the traces still open when a Node listener drains (a job the shutdown cut short), as unfinished, and says so', async () => {
    const { exporter, spans } = recorder();
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const listener = withNodeTracing((_req, res) => res.end(), { exporter });
      void getTracer().withTrace('summarise', (t) => t.span('model call', () => new Promise(() => undefined)));
      // A queued job that continues the trace of the request that queued it.
      const parent = { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', flags: 1, remote: true };
      void getTracer().withTrace({ name: 'consume', parent }, () => new Promise(() => undefined));
      await listener.drain();
      expect(spans().find((x) => x.name === 'consume')).toMatchObject({ traceId: parent.traceId, parentId: parent.spanId, attrs: expect.objectContaining({ 'edgetrace.unfinished': true }) });
      const job = spans().find((x) => x.name === 'summarise')!;
      expect(job.attrs['edgetrace.unfinished']).toBe(true);
      expect(spans().find((x) => x.name === 'model call')).toMatchObject({ parentId: job.spanId, attrs: expect.objectContaining({ 'edgetrace.unfinished': true }) });
      expect(warn.mock.calls.map((c) => String(c[0]))).toContainEqual(expect.stringMatching(/drain\(\) ended 2 trace\(s\) still open/));
    } finally {
      warn.mockRestore();
    }
  });
});

describe('exports of processors the app gives', () => {
  it('are never traced, also from a batch timer armed inside a background job’s span', async () => {
    // An exporter of the app's that sends with the global fetch: its sends must not become spans.
    const { exporter, records: got } = fetchingExporter();
    const listener = withNodeTracing((_req, res) => res.end(), { processors: [batchProcessor(exporter, { delayMs: 20 })] });
    await getTracer().withTrace('long-job', async (job) => {
      for (let i = 0; i < 5; i++) {
        job.startSpan(`step${i}`).end();
        await new Promise((r) => setTimeout(r, 40));
      }
    });
    await listener.drain();
    const spans = got.filter((r): r is SpanRecord => r.rec === 'span');
    expect(spans.filter((x) => x.kind === 'client')).toEqual([]);
    expect(rx.received.filter((r) => r.url === '/export').length).toBeGreaterThan(1);
    expect(rx.received.every((r) => r.headers.traceparent === undefined)).toBe(true);
  });

  it('are never traced when the processor is added to the wrapper’s tracer later, in a job or a request', async () => {
    const { exporter, records: got } = fetchingExporter();
    const { exporter: main } = recorder();
    const listener = withNodeTracing(
      async (_req, res) => {
        requestSpan()!.span('step', () => undefined);
        await new Promise((r) => setTimeout(r, 60));
        res.end('ok');
      },
      { exporter: main },
    );
    const remove = getTracer().addProcessor(batchProcessor(exporter, { delayMs: 20 }));
    await getTracer().withTrace('job', async (job) => {
      job.startSpan('step').end();
      await new Promise((r) => setTimeout(r, 60));
    });
    await requestOnce(listener);
    await listener.drain();
    await getTracer().flush();
    remove();
    const spans = got.filter((r): r is SpanRecord => r.rec === 'span');
    expect(spans.map((x) => x.name)).toEqual(expect.arrayContaining(['job', 'GET']));
    expect(spans.filter((x) => x.kind === 'client')).toEqual([]);
    expect(rx.received.filter((r) => r.url === '/export').length).toBeGreaterThan(0);
    expect(rx.received.every((r) => r.headers.traceparent === undefined)).toBe(true);
  });

  it('are never traced when the app flushes inside a job’s span, nor inside a request; the hooks still see the request', async () => {
    const got: TelemetryRecord[] = [];
    const seen: (string | undefined)[] = [];
    const exporter: Exporter = {
      export: async (batch) => {
        got.push(...batch);
        await (await fetch(`${rx.base}/export`)).text();
        return { ok: true };
      },
    };
    const reads = { onStart: () => void seen.push(requestTrace()?.name) };
    const listener = withNodeTracing(
      async (_req, res) => {
        requestSpan()!.span('step', () => undefined);
        await getTracer().flush();
        res.end('ok');
      },
      { processors: [batchProcessor(exporter, { delayMs: 60_000 }), reads] },
    );
    await getTracer().withTrace('job', async (job) => {
      job.startSpan('step').end();
      await getTracer().flush();
    });
    await requestOnce(listener);
    await listener.drain();
    expect(got.filter((r): r is SpanRecord => r.rec === 'span' && r.kind === 'client')).toEqual([]);
    expect(rx.received.every((r) => r.headers.traceparent === undefined)).toBe(true);
    expect(seen).toContain('GET');
  });
});

describe('drain() against a receiver that fails', () => {
  it('tries again a second and two later, and says what it could not send', { timeout: 15_000 }, async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      let calls = 0;
      const got: TelemetryRecord[] = [];
      // Down for the first flush's three tries (a receiver restarting with the deploy).
      const flaky: Exporter = { export: async (batch) => (++calls <= 3 ? { ok: false, retryable: true, reason: 'HTTP 503' } : (got.push(...batch), { ok: true })) };
      const first = withNodeTracing((_req, res) => res.end(), { exporter: flaky, batch: { delayMs: 60_000 } });
      getTracer().createTrace('late batch').finish();
      await first.drain();
      expect(got.map((r) => (r as SpanRecord).name)).toEqual(['late batch']);

      const down: Exporter = { export: async () => ({ ok: false, retryable: true, reason: 'HTTP 503' }) };
      const second = withNodeTracing((_req, res) => res.end(), { exporter: down, batch: { delayMs: 60_000 } });
      getTracer().createTrace('lost').finish();
      await second.drain();
      expect(warn.mock.calls.map((c) => String(c[0]))).toContainEqual(expect.stringMatching(/drain\(\) could not send 1 record\(s\)/));
    } finally {
      warn.mockRestore();
    }
  });
});

describe('drain() and the traces it ends', () => {
  it('ends none that ended already, with a beforeSend that copies records or a filter that drops them', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const { exporter } = recorder();
      for (const opts of [{ beforeSend: (r: SpanRecord) => ({ ...r }) }, { filter: { kinds: ['client' as const] } }]) {
        const listener = withNodeTracing((_req, res) => res.end('ok'), { exporter, ...opts });
        const server = createServer(listener);
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        const { port } = server.address() as AddressInfo;
        for (let i = 0; i < 3; i++) await (await fetch(`http://127.0.0.1:${port}/`)).text();
        getTracer().createTrace('job').finish();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await listener.drain();
      }
      expect(warn.mock.calls.map((c) => String(c[0])).filter((m) => m.includes('drain() ended'))).toEqual([]);
    } finally {
      warn.mockRestore();
    }
  });

  it('still finds a job cut short after many traces that a beforeSend copied (their ends never reached it)', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const { exporter, spans } = recorder();
      const listener = withNodeTracing((_req, res) => res.end(), { exporter, beforeSend: (r: SpanRecord) => ({ ...r }), batch: { maxQueueSize: 20_000 } });
      for (let i = 0; i < 10_500; i++) getTracer().createTrace('done').finish();
      void getTracer().withTrace('cut short', () => new Promise(() => undefined));
      await listener.drain();
      expect(spans().find((x) => x.name === 'cut short')?.attrs['edgetrace.unfinished']).toBe(true);
      expect(warn.mock.calls.map((c) => String(c[0]))).toContainEqual(expect.stringMatching(/drain\(\) ended 1 trace\(s\)/));
    } finally {
      warn.mockRestore();
    }
  });

  it('leaves a request still answering to end with its response', async () => {
    const { exporter, spans } = recorder();
    let answer!: () => void;
    const listener = withNodeTracing((_req, res) => {
      res.write('first');
      answer = () => res.end('last');
    }, { exporter });
    const server = createServer(listener);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const response = await fetch(`http://127.0.0.1:${port}/stream`);
    await listener.drain();
    answer();
    expect(await response.text()).toBe('firstlast');
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await listener.drain();
    const request = spans().find((x) => x.kind === 'server')!;
    expect(request.attrs['edgetrace.unfinished']).toBeUndefined();
    expect(request.attrs['http.response.status_code']).toBe(200);
  });
});

describe('requestWaitUntil', () => {
  it('keeps work a Node request handed off part of it: recorded whole after the response, and drained', async () => {
    const { exporter, spans } = recorder();
    let done = false;
    const listener = withNodeTracing(
      (_req, res) => {
        requestWaitUntil(
          requestSpan()!.span('moderation', async () => {
            await new Promise((r) => setTimeout(r, OPEN_SPAN_GRACE_MS + 300));
            done = true;
          }),
        );
        res.end('ok');
      },
      { exporter },
    );
    const server = createServer(listener);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('ok');
    } finally {
      server.close();
    }
    await listener.drain();
    expect(done).toBe(true);
    const moderation = spans().find((x) => x.name === 'moderation')!;
    expect(moderation.attrs['edgetrace.unfinished']).toBeUndefined();
    expect(moderation.endMs - moderation.startMs).toBeGreaterThanOrEqual(OPEN_SPAN_GRACE_MS + 250);
  });

  it('passes the work to a fetch-style handler’s ctx.waitUntil, and does nothing outside a request', async () => {
    const { exporter, spans } = recorder();
    const given: Promise<unknown>[] = [];
    const handler = withTracing(
      () => {
        requestWaitUntil(requestSpan()!.span('evaluate', () => new Promise((r) => setTimeout(r, OPEN_SPAN_GRACE_MS + 200))));
        return new Response('ok');
      },
      { exporter },
    );
    await (await handler(new Request('http://app.test/'), {}, { waitUntil: (p: Promise<unknown>) => void given.push(p) })).text();
    await Promise.all(given);
    await Promise.all(given);
    expect(spans().find((x) => x.name === 'evaluate')!.attrs['edgetrace.unfinished']).toBeUndefined();
    const outside = Promise.resolve(7);
    expect(requestWaitUntil(outside)).toBe(outside);
  });
});
