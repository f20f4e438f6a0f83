import { EventEmitter } from 'node:events';
import { describe, it, expect, vi } from 'vitest';
import express from 'express';
import { inProcessParent, withTracing } from '../../../src/server/withTracing';
import { withNodeTracing } from '../../../src/server/nodeTracing';
import { quietly, requestSpan, requestTrace } from '../../../src/server/scope';
import { setRoute } from '../../../src/server/route';
import { loopbackPerTest } from './loopback';
import { recorder } from '../../helpers/recorder';

// Frameworks that run one wrapper inside another, or answer their own requests in-process.


const { listen } = loopbackPerTest();

/** A request and response as Nitro's in-process fetch makes them: no socket, no Host, and a response that never says its headers went. */
const inProcessCall = (url: string) => {
  const req = Object.assign(new EventEmitter(), { method: 'GET', url, headers: {} as Record<string, string>, httpVersion: '1.1' });
  const res = Object.assign(new EventEmitter(), {
    statusCode: 200,
    headersSent: false,
    writableFinished: false,
    headers: new Map<string, unknown>(),
    setHeader(name: string, value: unknown) {
      this.headers.set(name.toLowerCase(), value);
      return this;
    },
    getHeader(name: string) {
      return this.headers.get(name.toLowerCase());
    },
    hasHeader(name: string) {
      return this.headers.has(name.toLowerCase());
    },
    end(this: EventEmitter & { writableFinished: boolean }) {
      this.writableFinished = true;
      queueMicrotask(() => this.emit('finish'));
      return this;
    },
  });
  return { req, res };
};

describe('a wrapper inside another', () => {
  it('continues a Node listener’s request in a fetch-style wrapper inside it (a framework’s middleware under Express): one trace', async () => {
    const { exporter, spans } = recorder();
    const middleware = withTracing((_request: Request, next: () => Promise<Response>) => next(), { exporter, waitUntil: (p) => void p });
    const app = express();
    app.all('*splat', async (req, res) => {
      // As React Router's Express adapter makes it: the headers come along.
      const request = new Request(`http://${req.headers.host}${req.url}`, { method: req.method, headers: new Headers(Object.entries(req.headers).map(([k, v]): [string, string] => [k, String(v)])) });
      const response = await middleware(request, async () => {
        setRoute('items/:id');
        return new Response(requestTrace()?.name ?? 'untraced');
      });
      res.send(await response.text());
    });
    const listener = withNodeTracing(app, { exporter });
    const base = await listen(listener);
    expect(await (await fetch(`${base}/items/7`)).text()).toBe('GET /items/:id');
    // The page's own request, which brings a traceparent the inner wrapper sees too.
    const page = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    expect(await (await fetch(`${base}/items/8`, { headers: { traceparent: page } })).text()).toBe('GET /items/:id');
    await listener.drain();
    await vi.waitFor(() => expect(spans().filter((s) => s.kind === 'server')).toHaveLength(4));
    const inners = spans().filter((s) => s.name === 'GET /items/:id');
    const outers = spans().filter((s) => s.name === 'GET /*splat');
    expect(inners.map((inner) => [inner.traceId, inner.parentId])).toEqual(outers.map((outer) => [outer.traceId, outer.spanId]));
    expect(outers[1]).toMatchObject({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', parentId: '00f067aa0ba902b7' });
    // A route a router keeps relative gets its leading slash.
    expect(inners[0]!.attrs['http.route']).toBe('/items/:id');
  });

  it('continues the request a fetch-style wrapper inside another is given, the same Request object (Hono’s c.req.raw in a middleware), with no traceparent and its own origin not in propagateTo', async () => {
    const { exporter, spans } = recorder();
    const opts = { exporter, waitUntil: (p: Promise<unknown>) => void p, propagateTo: ['http://other.test'] };
    const middleware = withTracing((_request: Request, next: () => Promise<Response>) => next(), opts);
    const app = withTracing(async (request: Request) => middleware(request, async () => new Response(requestTrace()?.name ?? 'untraced')), opts);
    expect(await (await app(new Request('http://app.test/items/7'))).text()).toBe('GET');
    // A copy of the request (another object, the same URL) is another request: a trace of its own.
    const copying = withTracing(async (request: Request) => middleware(new Request(request), async () => new Response('ok')), opts);
    await (await copying(new Request('http://app.test/copied'))).text();
    await vi.waitFor(() => expect(spans()).toHaveLength(4));
    const [inner, outer] = spans().filter((s) => s.attrs['url.full'] === 'http://app.test/items/7');
    expect(inner!.traceId).toBe(outer!.traceId);
    expect(inner!.parentId).toBe(outer!.spanId);
    const copied = spans().filter((s) => s.attrs['url.full'] === 'http://app.test/copied');
    expect(new Set(copied.map((s) => s.traceId)).size).toBe(2);
  });

  it('continues a request handled again after its handler threw (Astro renders its error page through the middleware): one trace', async () => {
    const { exporter, spans } = recorder();
    const middleware = withTracing((_request: Request, next: () => Promise<Response>) => next(), { exporter, waitUntil: (p) => void p });
    const request = new Request('http://app.test/boom');
    await expect(middleware(request, () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    const page = await middleware(request, async () => new Response('error page', { status: 500 }));
    expect(page.status).toBe(500);
    await page.text();
    // Another request to the same URL is another request.
    await (await middleware(new Request('http://app.test/boom'), async () => new Response('ok'))).text();
    // So is a Request object an app sends through again and again that succeeds (a warm-up).
    const warmUp = new Request('http://app.test/warm');
    for (let i = 0; i < 3; i++) await (await middleware(warmUp, async () => new Response('ok'))).text();
    await vi.waitFor(() => expect(spans()).toHaveLength(6));
    expect(new Set(spans().slice(3).map((s) => s.traceId)).size).toBe(3);
    // A Request object retried after a 503 (a health probe waiting for the app to come up): once
    // its error page has been answered, or a second after, each try is a request of its own.
    const probe = new Request('http://app.test/health');
    await (await middleware(probe, async () => new Response('starting', { status: 503 }))).text();
    await (await middleware(probe, async () => new Response('error page', { status: 503 }))).text();
    const later = Date.now() + 2000;
    const clock = vi.spyOn(Date, 'now').mockImplementation(() => later);
    try {
      await (await middleware(probe, async () => new Response('ready'))).text();
      await (await middleware(probe, async () => new Response('ready'))).text();
    } finally {
      clock.mockRestore();
    }
    await vi.waitFor(() => expect(spans()).toHaveLength(10));
    const probes = spans().slice(6);
    expect(probes[1]!.parentId).toBe(probes[0]!.spanId);
    expect(new Set([probes[1]!.traceId, probes[2]!.traceId, probes[3]!.traceId]).size).toBe(3);
    const [threw, errorPage, other] = spans();
    expect(threw!.status.code).toBe('error');
    expect(errorPage!.traceId).toBe(threw!.traceId);
    expect(errorPage!.parentId).toBe(threw!.spanId);
    expect(errorPage!.attrs['http.response.status_code']).toBe(500);
    expect(other!.traceId).not.toBe(threw!.traceId);
  });

  it('continues the request a Node listener is called in-process inside (Nitro’s $fetch while rendering), with the status it answered', async () => {
    const { exporter, spans } = recorder();
    const api = withNodeTracing(
      (req: { url: string }, res: { statusCode: number; end(): void }) => {
        res.statusCode = req.url === '/api/missing' ? 503 : 200;
        res.end();
      },
      { exporter },
    );
    const page = withTracing(
      async () => {
        await requestSpan()!.span('render', async () => {
          for (const url of ['/api/items', '/api/missing']) {
            const { req, res } = inProcessCall(url);
            await new Promise((resolve) => {
              res.once('finish', resolve);
              api(req as never, res as never);
            });
          }
        });
        return new Response('page');
      },
      { exporter, waitUntil: (p) => void p, spanName: () => 'document' },
    );
    await (await page(new Request('http://127.0.0.1:4400/docs'))).text();
    await api.drain();
    await vi.waitFor(() => expect(spans().filter((s) => s.kind === 'server')).toHaveLength(3));
    const render = spans().find((s) => s.name === 'render')!;
    const calls = spans().filter((s) => s.kind === 'server' && s.name === 'GET');
    expect(calls.map((s) => [s.traceId, s.parentId, s.attrs['http.response.status_code'], s.status.code])).toEqual([
      [render.traceId, render.spanId, 200, 'unset'],
      [render.traceId, render.spanId, 503, 'error'],
    ]);
  });

  it('lets a second copy of edgetrace in the process (Nuxt’s dev server) see the request the first handles', async () => {
    const { exporter, spans } = recorder();
    const server = await import('../../../src/server/index');
    vi.resetModules();
    const app = await import('../../../src/server/index');
    const appCore = await import('../../../src/index');
    expect(app.requestTrace).not.toBe(server.requestTrace);
    const handler = server.withTracing(
      () => {
        app.setRoute('/docs/[slug]');
        appCore.getTracer().span('render', () => undefined);
        return new Response(app.requestTrace()?.name ?? 'not seen');
      },
      { exporter, waitUntil: (p) => void p },
    );
    expect(await (await handler(new Request('http://app.test/docs/intro'))).text()).toBe('GET /docs/[slug]');
    await vi.waitFor(() => expect(spans()).toHaveLength(2));
    const root = spans().find((s) => s.kind === 'server')!;
    expect(spans().find((s) => s.name === 'render')).toMatchObject({ traceId: root.traceId, parentId: root.spanId });
  });

  it('does not let edgetrace’s own work inside a request (an app processor’s export to an in-process route) continue that request', async () => {
    const { exporter } = recorder();
    const seen: unknown[] = [];
    const handler = withTracing(
      () => {
        seen.push(inProcessParent('http://app.test/ingest', undefined, true)?.traceId, quietly(() => inProcessParent('http://app.test/ingest', undefined, true)));
        seen.push(quietly(() => quietly(() => requestTrace()?.name)));
        return new Response('ok');
      },
      { exporter, waitUntil: (p) => void p, spanName: () => 'page' },
    );
    await (await handler(new Request('http://app.test/'))).text();
    expect(seen).toEqual([expect.stringMatching(/^[0-9a-f]{32}$/), undefined, 'page']);
  });
});
