import { EventEmitter } from 'node:events';
import { describe, it, expect, vi } from 'vitest';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Koa from 'koa';
import Router from '@koa/router';
import Fastify from 'fastify';
import type { Exporter, ExportResult, SpanRecord, TelemetryRecord } from '../../../src/protocol';
import { withNodeTracing } from '../../../src/server/nodeTracing';
import type { NodeListener } from '../../../src/server/node';
import { requestSpan } from '../../../src/server/scope';
import { setRoute } from '../../../src/server/route';
import { withTracing } from '../../../src/server/withTracing';
import { createServerTracer } from '../../../src/server/serverTracer';
import { requestProcessor } from '../../../src/server/requestProcessor';
import { loopbackPerTest } from './loopback';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE}-${PARENT}-01`;

/** An exporter that keeps what it is given; `delayMs` holds each export that long. */
const recorder = (delayMs = 0) => {
  const records: TelemetryRecord[] = [];
  let exports = 0;
  const exporter: Exporter = {
    export: async (batch) => {
      if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
      records.push(...batch);
      exports++;
      return { ok: true };
    },
  };
  const spans = (): SpanRecord[] => records.filter((r): r is SpanRecord => r.rec === 'span');
  return { exporter, spans, exports: () => exports };
};

const { rx, listen } = loopbackPerTest();

const serverSpan = (spans: SpanRecord[]): SpanRecord => {
  const found = spans.filter((s) => s.kind === 'server');
  expect(found).toHaveLength(1);
  return found[0]!;
};

/** The console warnings `fn` caused, console.warn silenced meanwhile; `fn` is given those so far. */
const warnings = async (fn: (soFar: () => string[]) => Promise<void>): Promise<string[]> => {
  const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
  const soFar = (): string[] => warn.mock.calls.map(([m]) => String(m));
  try {
    await fn(soFar);
    return soFar();
  } finally {
    warn.mockRestore();
  }
};

/** A traced listener that answers "x", served on loopback; `hit(n)` makes n requests at once, then drains. */
const serveTraced = async (options: Parameters<typeof withNodeTracing>[1]) => {
  const traced = withNodeTracing((req, res) => res.end('x'), options);
  const base = await listen(traced);
  return async (n = 1): Promise<void> => {
    await Promise.all(Array.from({ length: n }, async () => (await fetch(base)).text()));
    await traced.drain();
  };
};

describe('withNodeTracing', () => {
  it('records a SERVER span that continues the incoming trace, with the response status', async () => {
    const { exporter, spans } = recorder();
    const traced = withNodeTracing(
      (req, res) => {
        res.statusCode = 201;
        res.setHeader('content-length', '2');
        res.end('ok');
      },
      { exporter, responseHeaders: ['traceresponse'] },
    );
    const base = await listen(traced);
    const res = await fetch(`${base}/items?token=secret`, { headers: { traceparent: TRACEPARENT, 'user-agent': 'probe/1' } });
    expect(await res.text()).toBe('ok');
    await traced.drain();
    const span = serverSpan(spans());
    expect(span.traceId).toBe(TRACE);
    expect(span.parentId).toBe(PARENT);
    expect(span.name).toBe('GET');
    expect(span.attrs).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/items',
      'http.response.status_code': 201,
      'http.response.body.size': 2,
      'user_agent.original': 'probe/1',
      'client.address': '127.0.0.1',
      'network.peer.address': '127.0.0.1',
      'network.protocol.version': '1.1',
    });
    // Query values are redacted as everywhere else.
    expect(String(span.attrs['url.full'])).not.toContain('secret');
    expect(res.headers.get('traceresponse')).toBe(`00-${TRACE}-${span.spanId}-01`);
  });

  it('keeps the request current in req/res listeners, so spans and fetches after the body join it', async () => {
    const { exporter, spans } = recorder();
    const traced = withNodeTracing(
      (req, res) => {
        let size = 0;
        req.on('data', (chunk: Buffer) => (size += chunk.length));
        req.on('end', () => {
          // The 'end' listener runs from the socket's callbacks, outside the listener's call.
          const parent = requestSpan();
          void parent!.span('read', async () => {
            await fetch(`${rx.base}/downstream`);
            res.end(`got ${size}`);
          });
        });
      },
      { exporter },
    );
    const base = await listen(traced);
    const res = await fetch(base, { method: 'POST', body: 'x'.repeat(300_000) });
    expect(await res.text()).toBe('got 300000');
    await traced.drain();
    const all = spans();
    const root = serverSpan(all);
    const read = all.find((s) => s.name === 'read')!;
    const client = all.find((s) => s.kind === 'client')!;
    expect(read.parentId).toBe(root.spanId);
    expect(client.parentId).toBe(read.spanId);
    expect(rx.received[0]!.headers.traceparent).toMatch(new RegExp(`^00-${root.traceId}-${client.spanId}-0[13]$`));
  });

  it('traces a fetch the app makes after the response, inside a span of its own still open', async () => {
    const { exporter, spans } = recorder();
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const traced = withNodeTracing(
      (req, res) => {
        res.end('accepted');
        // The response is out; the work goes on, as a model call does when the client has left.
        void requestSpan()!
          .span('late', async () => {
            await new Promise((r) => setTimeout(r, 20));
            await fetch(`${rx.base}/after`);
          })
          .finally(done);
      },
      { exporter },
    );
    const base = await listen(traced);
    expect(await (await fetch(base)).text()).toBe('accepted');
    await finished;
    await traced.drain();
    const late = spans().find((s) => s.name === 'late')!;
    const client = spans().find((s) => s.kind === 'client')!;
    expect(client.parentId).toBe(late.spanId);
    expect(rx.received[0]!.headers.traceparent).toMatch(new RegExp(`^00-${late.traceId}-${client.spanId}-0[13]$`));
  });

  it('names the span from the Express route, also under a mounted router and after express.json()', async () => {
    const { exporter, spans } = recorder();
    const app = express();
    const api = express.Router();
    api.post('/users/:id', express.json(), async (req, res) => {
      await new Promise((r) => setTimeout(r, 5));
      const inner = requestSpan()!.startSpan('load');
      inner.end();
      res.json({ id: req.params.id, name: (req.body as { name: string }).name });
    });
    api.get('/fail', () => {
      throw new Error('broken');
    });
    app.use('/api', api);
    const traced = withNodeTracing(app, { exporter });
    const base = await listen(traced);
    const res = await fetch(`${base}/api/users/7`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"name":"ada"}' });
    expect(await res.json()).toEqual({ id: '7', name: 'ada' });
    expect((await fetch(`${base}/api/fail`)).status).toBe(500);
    expect((await fetch(`${base}/nowhere`)).status).toBe(404);
    await traced.drain();
    const servers = spans().filter((s) => s.kind === 'server');
    expect(servers.map((s) => s.name)).toEqual(['POST /api/users/:id', 'GET /api/fail', 'GET']);
    const [ok, failed, missing] = servers;
    expect(ok!.attrs['http.route']).toBe('/api/users/:id');
    const load = spans().find((s) => s.name === 'load')!;
    expect(load.parentId).toBe(ok!.spanId);
    // Named when the router matched, before the handler ran: its spans carry the trace's name too.
    expect(load.attrs['langfuse.trace.name']).toBe('POST /api/users/:id');
    expect(ok!.attrs['langfuse.trace.name']).toBe('POST /api/users/:id');
    expect(failed!.status.code).toBe('error');
    expect(failed!.attrs['error.type']).toBe('500');
    expect(missing!.attrs['http.response.status_code']).toBe(404);
    expect(missing!.status.code).toBe('unset');
    expect(missing!.attrs['http.route']).toBeUndefined();
  });

  it('names a RegExp route by its source and a route of several paths by them all', async () => {
    const { exporter, spans } = recorder();
    const app = express();
    app.get(/^\/files\/.+$/, (req, res) => void res.send('x'));
    app.get(['/about', '/team'], (req, res) => void res.send('x'));
    const docs = express.Router();
    docs.get(/^\/v\d+$/, (req, res) => void res.send('x'));
    app.use('/docs', docs);
    const traced = withNodeTracing(app, { exporter });
    const base = await listen(traced);
    for (const path of ['/files/a/b.txt', '/team', '/docs/v2']) await (await fetch(base + path)).text();
    await traced.drain();
    expect(spans().map((s) => [s.name, s.attrs['http.route']])).toEqual([
      ['GET /^\\/files\\/.+$/', '/^\\/files\\/.+$/'],
      ['GET /about,/team', '/about,/team'],
      ['GET /docs/^\\/v\\d+$/', '/docs/^\\/v\\d+$/'],
    ]);
  });

  it('names a route under routers mounted at paths with parameters by the template, not the values', async () => {
    const { exporter, spans } = recorder();
    const app = express();
    const tenant = express.Router();
    tenant.get('/items/:id', (req, res) => void res.send('x'));
    app.use('/tenant/:tenant', tenant);
    const orgs = express.Router({ mergeParams: true });
    orgs.get('/teams/:team', (req, res) => void res.send('x'));
    const v2 = express.Router();
    v2.use('/orgs/:org', orgs);
    app.use('/api/v2', v2);
    const traced = withNodeTracing(app, { exporter });
    const base = await listen(traced);
    const users = express.Router();
    users.get('/posts', (req, res) => void res.send('x'));
    app.use('/users/:user', users);
    const paths = ['/tenant/t1/items/3', '/tenant/t%20two/items/4', '/api/v2/orgs/acme/teams/7', '/users/users/posts'];
    for (const path of paths) await (await fetch(base + path)).text();
    await traced.drain();
    expect(spans().map((s) => s.name)).toEqual([
      'GET /tenant/:tenant/items/:id',
      'GET /tenant/:tenant/items/:id',
      'GET /api/v2/orgs/:org/teams/:team',
      // A value that is also a literal segment: the parameter is the one nearest the route.
      'GET /users/:user/posts',
    ]);
  });

  it('traces a Koa app, with the route the app reports', async () => {
    const { exporter, spans } = recorder();
    const app = new Koa();
    const router = new Router();
    app.use(async (ctx, next) => {
      await next();
      setRoute((ctx as { _matchedRoute?: string })._matchedRoute!);
    });
    router.get('/books/:id', async (ctx) => {
      await fetch(`${rx.base}/book`);
      ctx.body = { id: ctx.params.id };
    });
    app.use(router.routes());
    const traced = withNodeTracing(app.callback(), { exporter });
    const base = await listen(traced);
    expect(await (await fetch(`${base}/books/3`)).json()).toEqual({ id: '3' });
    await traced.drain();
    const root = serverSpan(spans());
    expect(root.name).toBe('GET /books/:id');
    expect(root.attrs['http.response.status_code']).toBe(200);
    const client = spans().find((s) => s.kind === 'client')!;
    expect(client.parentId).toBe(root.spanId);
    expect(rx.received[0]!.headers.traceparent).toContain(root.traceId);
  });

  it('keeps the trace-linking headers on a response whose error handler cleared the headers', async () => {
    const { exporter, spans } = recorder();
    const app = new Koa();
    app.silent = true;
    app.use((ctx) => ctx.throw(503, 'down'));
    const traced = withNodeTracing(app.callback(), { exporter, responseHeaders: ['traceresponse'] });
    const base = await listen(traced);
    const res = await fetch(base);
    expect(res.status).toBe(503);
    await traced.drain();
    const span = serverSpan(spans());
    expect(res.headers.get('traceresponse')).toMatch(new RegExp(`^00-${span.traceId}-${span.spanId}-0[13]$`));
  });

  it('traces Fastify through serverFactory', async () => {
    const { exporter, spans } = recorder();
    let traced: NodeListener | undefined;
    const app = Fastify({
      serverFactory: (handler) => {
        traced = withNodeTracing(handler, { exporter });
        return createServer(traced);
      },
    });
    app.addHook('onRequest', async (request) => setRoute(request.routeOptions.url!));
    app.get('/orders/:id', async (request) => {
      const child = requestSpan()!.startSpan('lookup');
      child.end();
      return { id: (request.params as { id: string }).id };
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
      expect(await (await fetch(`${base}/orders/9`, { headers: { traceparent: TRACEPARENT } })).json()).toEqual({ id: '9' });
      await traced!.drain();
    } finally {
      await app.close();
    }
    const root = serverSpan(spans());
    expect(root.name).toBe('GET /orders/:id');
    expect(root.traceId).toBe(TRACE);
    const lookup = spans().find((s) => s.name === 'lookup')!;
    expect(lookup.parentId).toBe(root.spanId);
    // The trace continues the caller's, whose name it is to give: the route names the span only.
    expect(lookup.attrs['langfuse.trace.name']).toBeUndefined();
    expect(root.attrs['langfuse.trace.name']).toBeUndefined();
  });

  it('marks a request the client left before the response as cancelled', async () => {
    const { exporter, spans } = recorder();
    let arrived!: () => void;
    const seen = new Promise<void>((r) => (arrived = r));
    const traced = withNodeTracing(() => arrived(), { exporter });
    const base = await listen(traced);
    const url = new URL(base);
    const req = httpRequest({ host: url.hostname, port: url.port, path: '/slow' });
    req.on('error', () => undefined);
    req.end();
    await seen;
    req.destroy();
    for (let i = 0; i < 100 && spans().length === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
      await traced.drain();
    }
    const span = serverSpan(spans());
    expect(span.attrs['edgetrace.response.cancelled']).toBe(true);
    expect(span.attrs['http.response.status_code']).toBeUndefined();
  });

  it('says once that a fetch-style handler given in place of a listener leaves every request hanging', async () => {
    const { exporter } = recorder();
    let calls = 0;
    // Hono's app.fetch, mixed up with a (req, res) listener.
    const traced = withNodeTracing((async () => (calls++, new Response('hi'))) as never, { exporter });
    const base = await listen(traced);
    const said = await warnings(async (soFar) => {
      // Both hang until the server is closed after the test.
      for (let i = 0; i < 2; i++) void fetch(base).catch(() => undefined);
      await vi.waitFor(() => expect(calls).toBe(2));
      await vi.waitFor(() => expect(soFar()).toHaveLength(1));
    });
    expect(said).toEqual([
      "[edgetrace] withNodeTracing(): the listener returned a fetch Response, which Node's server never sends, so the request hangs. Serve a fetch-style handler, (request) => Response such as Hono's app.fetch, with createServer(toNodeListener(withTracing(handler))); withNodeTracing takes (req, res) listeners.",
    ]);
  });

  it("says nothing of a listener that returns Node's response, as res.end() and Express's res.send() do", async () => {
    const { exporter } = recorder();
    const traced = withNodeTracing((_req, res) => res.end('x'), { exporter });
    const said = await warnings(async () => {
      expect(await (await fetch(await listen(traced))).text()).toBe('x');
      await traced.drain();
    });
    expect(said).toEqual([]);
  });

  it("leaves an async listener's rejection to whoever handles it, adding no unhandled one", async () => {
    const { exporter } = recorder();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => void unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const boom = new Error('app failed');
      const traced = withNodeTracing(async () => {
        throw boom;
      }, { exporter });
      // A caller that awaits the listener, as adapters and tests do, handles the rejection.
      const req = Object.assign(new EventEmitter(), { method: 'GET', url: '/', headers: {}, socket: {} }) as never;
      const res = Object.assign(new EventEmitter(), { statusCode: 200, writableFinished: false, getHeader: () => undefined, setHeader: () => undefined }) as never;
      await expect(traced(req, res) as unknown as Promise<unknown>).rejects.toBe(boom);
      await new Promise((r) => setTimeout(r, 20));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('passes a throw from the listener on unchanged and records it', async () => {
    const { exporter, spans } = recorder();
    const boom = new TypeError('listener failed');
    const traced = withNodeTracing(() => {
      throw boom;
    }, { exporter });
    const caught: unknown[] = [];
    const base = await listen((req, res) => {
      try {
        traced(req, res);
      } catch (error) {
        caught.push(error);
        res.statusCode = 500;
        res.end();
      }
    });
    expect((await fetch(base)).status).toBe(500);
    await traced.drain();
    expect(caught).toEqual([boom]);
    const span = serverSpan(spans());
    expect(span.status.code).toBe('error');
    expect(span.attrs['error.type']).toBe('TypeError');
    expect(span.events.map((e) => e.name)).toContain('exception');
  });

  it('serves as usual when its hooks throw, and traces a request once when wrapped twice', async () => {
    const { exporter, spans } = recorder();
    const inner = withNodeTracing((req, res) => res.end('fine'), { exporter });
    const traced = withNodeTracing(inner, {
      exporter,
      spanName: () => {
        throw new Error('spanName');
      },
      onRequest: () => {
        throw new Error('onRequest');
      },
      route: () => {
        throw new Error('route');
      },
    });
    const base = await listen(traced);
    expect(await (await fetch(base)).text()).toBe('fine');
    await traced.drain();
    await inner.drain();
    expect(serverSpan(spans()).name).toBe('GET');
  });

  it('keeps the message of an error the app recorded on a 5xx', async () => {
    const { exporter, spans } = recorder();
    const traced = withNodeTracing(
      (req, res) => {
        requestSpan()!.recordError(new Error('database down'));
        res.statusCode = 503;
        res.end();
      },
      { exporter },
    );
    const base = await listen(traced);
    expect((await fetch(base)).status).toBe(503);
    await traced.drain();
    const span = serverSpan(spans());
    expect(span.status).toMatchObject({ code: 'error', message: 'database down' });
    expect(span.attrs['http.response.status_code']).toBe(503);
  });

  it('records no body size for a HEAD response', async () => {
    const { exporter, spans } = recorder();
    const app = express();
    app.get('/x', (req, res) => void res.send('hello world'));
    const traced = withNodeTracing(app, { exporter });
    const base = await listen(traced);
    const res = await fetch(`${base}/x`, { method: 'HEAD' });
    expect(res.headers.get('content-length')).toBe('11');
    await traced.drain();
    const span = serverSpan(spans());
    expect(span.name).toBe('HEAD /x');
    expect(span.attrs['http.response.body.size']).toBeUndefined();
  });

  it('lets the route name the span when spanName fails', async () => {
    const { exporter, spans } = recorder();
    const traced = withNodeTracing((req, res) => res.end(), {
      exporter,
      spanName: () => {
        throw new Error('spanName');
      },
      route: () => '/r/:id',
    });
    const base = await listen(traced);
    await (await fetch(`${base}/r/1`)).text();
    await traced.drain();
    expect(serverSpan(spans()).name).toBe('GET /r/:id');
  });

  it('takes spanName and route from the options', async () => {
    const { exporter, spans } = recorder();
    const traced = withNodeTracing((req, res) => res.end(), {
      exporter,
      spanName: (req) => `custom ${req.url}`,
      route: () => '/r/:id',
    });
    const base = await listen(traced);
    await (await fetch(`${base}/r/1`)).text();
    await traced.drain();
    const span = serverSpan(spans());
    // A name the app chose stays; the route is still recorded.
    expect(span.name).toBe('custom /r/1');
    expect(span.attrs['http.route']).toBe('/r/:id');
  });

  it('sends in batches, and drain() sends what is held and waits for it', async () => {
    const { exporter, exports, spans } = recorder(200);
    const traced = withNodeTracing((req, res) => res.end('x'), { exporter, batch: { delayMs: 60_000 } });
    const base = await listen(traced);
    await Promise.all(Array.from({ length: 20 }, async () => (await fetch(base)).text()));
    // No export per request: a long-lived server sends its requests' spans together.
    await new Promise((r) => setTimeout(r, 50));
    expect(exports()).toBe(0);
    await traced.drain();
    expect(exports()).toBe(1);
    expect(spans().filter((s) => s.kind === 'server')).toHaveLength(20);
  });

  it('flushes a tracer the app gave at the end of each request, as withTracing does', async () => {
    const { exporter, spans } = recorder();
    // createServerTracer's tracer holds records until it is flushed.
    const traced = withNodeTracing((req, res) => res.end('x'), { tracer: createServerTracer({ exporter }) });
    const base = await listen(traced);
    await (await fetch(base)).text();
    for (let i = 0; i < 100 && spans().length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(serverSpan(spans()).kind).toBe('server');
  });

  it('serves the request when its own context fails', async () => {
    const { exporter, spans } = recorder();
    const broken = {
      active: () => undefined,
      with: () => {
        throw new Error('context manager');
      },
    };
    const traced = withNodeTracing((req, res) => res.end('served'), { exporter, contextManager: broken as never });
    const base = await listen(traced);
    expect(await (await fetch(base)).text()).toBe('served');
    await traced.drain();
    expect(spans().filter((s) => s.kind === 'server')).toHaveLength(1);
  });

  it('never traces an export, also one that sends with the global fetch from a batch timer set inside a request', async () => {
    const { spans, exporter: keep } = recorder();
    // Sends with the patched global fetch, as a hand-written exporter would.
    const exporter: Exporter = {
      export: async (records) => {
        await fetch(`${rx.base}/ingest`, { method: 'POST', body: String(records.length) });
        return keep.export(records);
      },
    };
    let finish!: () => void;
    const release = new Promise<void>((r) => (finish = r));
    const traced = withNodeTracing(
      (req, res) => {
        res.end('ok');
        // A span of the app's stays open while its children end: each end arms the batch timer
        // in this context.
        void requestSpan()!.span('background', async (bg) => {
          for (let i = 0; i < 5; i++) {
            bg.startSpan(`step${i}`).end();
            await new Promise((r) => setTimeout(r, 40));
          }
          await release;
        });
      },
      { exporter, batch: { delayMs: 30 } },
    );
    const base = await listen(traced);
    await (await fetch(base)).text();
    await new Promise((r) => setTimeout(r, 400));
    finish();
    await traced.drain();
    expect(rx.received.filter((r) => r.url === '/ingest').length).toBeGreaterThan(1);
    // No span records an export's own request, and none of those requests carried a trace.
    expect(spans().filter((s) => s.kind === 'client')).toEqual([]);
    expect(rx.received.every((r) => r.headers.traceparent === undefined)).toBe(true);
    expect(spans().map((s) => s.name).sort()).toEqual(['GET', 'background', 'step0', 'step1', 'step2', 'step3', 'step4']);
  });

  it('flushes processors the app gave at the end of each request', async () => {
    const { exporter, spans } = recorder();
    const traced = withNodeTracing((req, res) => res.end('x'), { processors: [requestProcessor(exporter)] });
    const base = await listen(traced);
    await (await fetch(base)).text();
    for (let i = 0; i < 100 && spans().length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(serverSpan(spans()).kind).toBe('server');
  });

  it('says once that the exporter refused a batch for good', async () => {
    const exporter: Exporter = { export: async () => ({ ok: false, retryable: false, reason: 'HTTP 401 Unauthorized' }) };
    const said = await warnings(async () => {
      const hit = await serveTraced({ exporter });
      await hit();
      await hit();
    });
    expect(said.filter((m) => m.includes('refused a batch'))).toEqual([expect.stringContaining('HTTP 401 Unauthorized')]);
  });

  it('tells a record too large apart from a refusal, so a wrong key after it is still said', async () => {
    let answer: ExportResult = { ok: false, retryable: false, status: 413, reason: 'HTTP 413' };
    const said = await warnings(async () => {
      const hit = await serveTraced({ exporter: { export: async () => answer } });
      await hit();
      answer = { ok: false, retryable: false, status: 401, reason: 'HTTP 401 Unauthorized' };
      await hit();
    });
    expect(said.filter((m) => m.includes('too large'))).toHaveLength(1);
    expect(said.filter((m) => m.includes('refused a batch'))).toEqual([expect.stringContaining('HTTP 401')]);
  });

  it('does not take a 413 it splits and sends again for a refusal', async () => {
    let refuse = false;
    const exporter: Exporter = {
      export: async (records) =>
        refuse ? { ok: false, retryable: false, reason: 'HTTP 401 Unauthorized' }
        : records.length > 1 ? { ok: false, retryable: false, status: 413, reason: 'HTTP 413 Payload Too Large' }
        : { ok: true },
    };
    let beforeRefusal: string[] = [];
    const said = await warnings(async (soFar) => {
      const hit = await serveTraced({ exporter });
      // Three requests in one batch of three records: split down to single records, all sent.
      await hit(3);
      beforeRefusal = soFar();
      refuse = true;
      await hit();
    });
    expect(beforeRefusal).toEqual([]);
    expect(said.filter((m) => m.includes('refused a batch'))).toEqual([expect.stringContaining('HTTP 401')]);
  });

  it('keeps a class exporter whole: its own this, private fields included', async () => {
    class FileExporter implements Exporter {
      #open = true;
      sent = 0;
      async export(records: readonly TelemetryRecord[]): Promise<ExportResult> {
        if (!this.#open) return { ok: false, retryable: false, reason: 'closed' };
        this.sent += records.length;
        return { ok: true };
      }
      async shutdown() {
        this.#open = false;
      }
      isOpen() {
        return this.#open;
      }
    }
    const exporter = new FileExporter();
    const tracer = createServerTracer({ exporter });
    tracer.startSpan('one').end();
    await tracer.flush();
    await tracer.shutdown();
    expect(exporter.sent).toBe(1);
    expect(exporter.isOpen()).toBe(false);
  });

  it('serves the request when a tracer of the app has a context manager that throws', async () => {
    const { exporter } = recorder();
    const broken = {
      active: () => undefined,
      with: () => {
        throw new Error('context manager');
      },
    };
    const { createTracer } = await import('../../../src/core/tracer');
    const tracer = createTracer({ exporter, contextManager: broken as never });
    const traced = withNodeTracing(
      async (req, res) => {
        // Still inside the request: its span is at hand, and its fetches carry the trace.
        await fetch(`${rx.base}/down`);
        res.end(requestSpan() ? 'served in the request' : 'served outside');
      },
      { tracer },
    );
    const base = await listen(traced);
    expect(await (await fetch(base)).text()).toBe('served in the request');
    expect(rx.received[0]!.headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[13]$/);
  });

  it('adds one beforeExit listener, however many listeners it wraps', () => {
    const before = process.listenerCount('beforeExit');
    const { exporter } = recorder();
    for (let i = 0; i < 12; i++) withNodeTracing((req, res) => res.end(), { exporter });
    expect(process.listenerCount('beforeExit') - before).toBeLessThanOrEqual(1);
  });

  it('throws at wrap time, naming the option', () => {
    const { exporter } = recorder();
    expect(() => withNodeTracing((() => undefined) as never, { exporter, route: '/users/:id' as never })).toThrow(/withNodeTracing\(\): "route" must be/);
    expect(() => withNodeTracing((() => undefined) as never, { exporter, propagateTo: 5 as never })).toThrow(/withNodeTracing\(\): "propagateTo"/);
    // Tracer options too, though the tracer is made by another function.
    expect(() => withNodeTracing((() => undefined) as never, { exporter: 5 as never })).toThrow(/withNodeTracing\(\): "exporter" must be/);
    expect(() => withNodeTracing((() => undefined) as never, { exporter, sampleRate: 'x' as never })).toThrow(/withNodeTracing\(\): "sampleRate"/);
    expect(() => withNodeTracing((() => undefined) as never, { exporter, processors: {} as never })).toThrow(/withNodeTracing\(\): "processors" must be an array/);
    // init()'s options would be ignored here, and nothing sent: refused, for both wrappers.
    expect(() => withNodeTracing((() => undefined) as never, { endpoint: 'http://collector/v1/traces' } as never)).toThrow(/withNodeTracing\(\): "endpoint" must be left out: it is an option of init\(\); give an exporter/);
    expect(() => withTracing((() => new Response()) as never, { langfuse: { publicKey: 'pk' } } as never)).toThrow(/withTracing\(\): "langfuse" must be left out/);
    // A misspelt option would be ignored, and the exporter taken from the environment: refused, with the likely one.
    expect(() => withNodeTracing((() => undefined) as never, { exporer: exporter } as never)).toThrow(/withNodeTracing\(\): "exporer" is not an option \(did you mean "exporter"\?\)/);
    expect(() => withTracing((() => new Response()) as never, { exporter, sampleRatio: 0.5 } as never)).toThrow(/withTracing\(\): "sampleRatio" is not an option \(did you mean "sampleRate"\?\)/);
    expect(() => withTracing((() => new Response()) as never, { colour: 'red' } as never)).toThrow(/withTracing\(\): "colour" is not an option\.$/);
    // waitUntil is withTracing's: a Node process outlives its responses, and would ignore it.
    expect(() => withNodeTracing((() => undefined) as never, { exporter, waitUntil: () => undefined } as never)).toThrow(/withNodeTracing\(\): "waitUntil" is not an option/);
    // createServerTracer() takes the tracer's options, not the wrappers'.
    expect(() => createServerTracer({ exporter, traceFetch: false } as never)).toThrow(/createServerTracer\(\): "traceFetch" is not an option/);
    // Every option named in the types is taken.
    expect(() => withTracing((() => new Response()) as never, { exporter, traceFetch: true, propagateTo: true, responseHeaders: true, spanName: () => 'x', route: () => '/', onRequest: () => undefined, waitUntil: () => undefined, debug: false, now: Date.now, batch: {}, filter: {}, limits: {} })).not.toThrow();
    expect(() => withNodeTracing('app' as never)).toThrow(/"listener" must be a request listener/);
    expect(() => withNodeTracing((() => undefined) as never, null as never)).toThrow(/"options" must be an object/);
  });
});

/** Calls a withTracing handler as Workers would, reads the response, then awaits its waitUntil work. */
const serveOnce = async (handler: (request: Request, env: unknown, ctx: { waitUntil(p: Promise<unknown>): void }) => Promise<Response>, request: Request) => {
  const pending: Promise<unknown>[] = [];
  await (await handler(request, {}, { waitUntil: (p) => void pending.push(p) })).text();
  await Promise.all(pending);
};

describe('setRoute', () => {
  it('names a withTracing request from a route its router found', async () => {
    const { exporter, spans } = recorder();
    const handler = withTracing(
      async () => {
        setRoute('/items/:id');
        requestSpan()!.startSpan('inner').end();
        return new Response('ok');
      },
      { exporter },
    );
    await serveOnce(handler, new Request('http://x/items/4'));
    const root = serverSpan(spans());
    expect(root.name).toBe('GET /items/:id');
    expect(root.attrs['http.route']).toBe('/items/:id');
    expect(spans().find((s) => s.name === 'inner')!.attrs['langfuse.trace.name']).toBe('GET /items/:id');
  });

  it('keeps a name the app chose, and does nothing outside a request', async () => {
    const { exporter, spans } = recorder();
    setRoute('/nowhere');
    const handler = withTracing(
      async () => {
        setRoute('/items/:id');
        return new Response('ok');
      },
      { exporter, spanName: () => 'chosen' },
    );
    await serveOnce(handler, new Request('http://x/items/4'));
    const root = serverSpan(spans());
    expect(root.name).toBe('chosen');
    expect(root.attrs['http.route']).toBe('/items/:id');
  });
});

describe('a context manager of the app that throws', () => {
  it('does not keep withTracing from serving, and a throw of the handler still goes to the caller', async () => {
    const { exporter } = recorder();
    const broken = {
      active: () => {
        throw new Error('active');
      },
      with: () => {
        throw new Error('with');
      },
    };
    const ok = withTracing(async () => new Response('served'), { exporter, contextManager: broken as never });
    expect(await (await ok(new Request('http://x/'), {}, { waitUntil: () => undefined })).text()).toBe('served');
    const boom = new Error('handler');
    const failing = withTracing(
      async () => {
        throw boom;
      },
      { exporter, contextManager: broken as never },
    );
    await expect(failing(new Request('http://x/'), {}, { waitUntil: () => undefined })).rejects.toBe(boom);
  });
});
