import { describe, it, expect, vi } from 'vitest';
import express from 'express';
import { withTracing, requestPath } from '../../../src/server/withTracing';
import { withNodeTracing } from '../../../src/server/nodeTracing';
import { requestTrace } from '../../../src/server/scope';
import { loopbackPerTest } from './loopback';
import { recorder } from '../../helpers/recorder';

// Requests a server answers that are not worth a trace: health checks, static files.


const { rx, listen } = loopbackPerTest();

/** Calls a withTracing handler as Workers would, reads the response, then awaits its waitUntil work. */
const serve = async (handler: (request: Request, env: unknown, ctx: { waitUntil(p: Promise<unknown>): void }) => Promise<Response>, url: string, init?: RequestInit) => {
  const pending: Promise<unknown>[] = [];
  const response = await handler(new Request(url, init), {}, { waitUntil: (p) => void pending.push(p) });
  const text = await response.text();
  await Promise.all(pending);
  return { response, text };
};

describe('ignoreRequests', () => {
  it('leaves matching requests of a fetch-style handler untraced: no span, no trace headers out, the response as the handler gave it', async () => {
    const { exporter, spans } = recorder();
    const seen: (string | undefined)[] = [];
    const handler = withTracing(
      async (request: Request) => {
        seen.push(requestTrace()?.name);
        await fetch(`${rx.base}/upstream`);
        return new Response(`served ${new URL(request.url).pathname}`, { status: 203, headers: { 'x-app': '1' } });
      },
      { exporter, responseHeaders: true, ignoreRequests: ['/healthz', '/assets/', /\.(?:css|js)$/] },
    );
    for (const path of ['/healthz', '/healthz/live', '/healthz?full=1', '/assets/logo.png', '/app.js?v=3', '/theme.css']) {
      const { response, text } = await serve(handler, `http://app.test${path}`, { headers: { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' } });
      expect(text).toBe(`served ${path.split('?')[0]}`);
      expect(response.status).toBe(203);
      expect(response.headers.get('x-app')).toBe('1');
      expect(response.headers.get('traceresponse')).toBeNull();
    }
    expect(seen).toEqual(Array(6).fill(undefined));
    expect(rx.received.map((r) => r.headers.traceparent)).toEqual(Array(6).fill(undefined));
    expect(spans()).toEqual([]);
    // A path that only starts like one, and the rest, are traced.
    for (const path of ['/healthzz', '/assets-old/x', '/api/chat']) await serve(handler, `http://app.test${path}`);
    expect(spans().filter((s) => s.kind === 'server')).toHaveLength(3);
    expect(rx.received.slice(6).every((r) => /^00-/.test(String(r.headers.traceparent)))).toBe(true);
  });

  it('takes a function of the Request; one that throws leaves the request traced', async () => {
    const { exporter, spans } = recorder();
    const report = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const handler = withTracing(() => new Response('ok'), {
        exporter,
        debug: true,
        ignoreRequests: (request) => {
          if (request.headers.get('x-boom')) throw new Error('hook failed');
          return request.headers.get('user-agent')?.startsWith('kube-probe/') === true;
        },
      });
      await serve(handler, 'http://app.test/', { headers: { 'user-agent': 'kube-probe/1.29' } });
      expect(spans()).toHaveLength(0);
      await serve(handler, 'http://app.test/', { headers: { 'user-agent': 'Mozilla/5.0' } });
      expect((await serve(handler, 'http://app.test/', { headers: { 'x-boom': '1' } })).text).toBe('ok');
      expect(spans()).toHaveLength(2);
    } finally {
      report.mockRestore();
    }
  });

  it('leaves matching requests of a Node listener untraced, and gives a function Node’s request', async () => {
    const { exporter, spans } = recorder();
    const app = express();
    app.get('/healthz', (_req, res) => void res.send('ok'));
    app.get('/static/*splat', (_req, res) => void fetch(`${rx.base}/cdn`).then(() => res.send('file')));
    app.get('/api/users/:id', (req, res) => void res.json({ id: req.params.id }));
    const listener = withNodeTracing(app, { exporter, ignoreRequests: (req) => req.url === '/healthz' || req.url.startsWith('/static/') });
    const base = await listen(listener);
    expect(await (await fetch(`${base}/healthz`)).text()).toBe('ok');
    expect(await (await fetch(`${base}/static/a.css`)).text()).toBe('file');
    expect(await (await fetch(`${base}/api/users/7`)).json()).toEqual({ id: '7' });
    await listener.drain();
    expect(spans().map((s) => s.name)).toEqual(['GET /api/users/:id']);
    expect(rx.received[0]!.headers.traceparent).toBeUndefined();
  });

  it('matches paths of a Node listener without their query; "/" is the root page alone', async () => {
    const { exporter, spans } = recorder();
    const listener = withNodeTracing((_req, res) => res.end('ok'), { exporter, ignoreRequests: ['/', '/metrics', /^\/favicon\.ico$/] });
    const base = await listen(listener);
    for (const path of ['/metrics?name=up', '/favicon.ico', '/metrics/', '/metricsx', '/?q=1']) await (await fetch(`${base}${path}`)).text();
    await listener.drain();
    expect(spans().map((s) => s.attrs['url.path'])).toEqual(['/metricsx']);
  });

  it('throws at wrap time for what is not a path, a RegExp or a function, naming the entry', () => {
    const { exporter } = recorder();
    expect(() => withTracing(() => new Response(), { exporter, ignoreRequests: ['healthz'] })).toThrow(/withTracing\(\): "ignoreRequests\[0\]" must be a path starting with "\/"/);
    expect(() => withNodeTracing((_req, res) => res.end(), { exporter, ignoreRequests: ['/ok', 5 as never] })).toThrow(/withNodeTracing\(\): "ignoreRequests\[1\]" must be a path/);
    expect(() => withTracing(() => new Response(), { exporter, ignoreRequests: '/healthz' as never })).toThrow(/withTracing\(\): "ignoreRequests" must be an array of paths/);
  });

  it('reads the path of a request target', () => {
    expect(requestPath('/a/b?c=1#d')).toBe('/a/b');
    expect(requestPath('/a#d?x')).toBe('/a');
    expect(requestPath('http://proxy.test/x/y?z')).toBe('/x/y');
    expect(requestPath('*')).toBe('*');
    // Escapes as a router reads them, so an escaped health check is still one; a bad escape stays.
    expect(requestPath('/%68ealthz?x=%41')).toBe('/healthz');
    expect(requestPath('/healthz%2F..%2Fadmin')).toBe('/healthz%2F..%2Fadmin');
    expect(requestPath('/a%zz')).toBe('/a%zz');
  });
});
