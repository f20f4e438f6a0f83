import { describe, it, expect, afterEach, vi } from 'vitest';
import { Agent, createServer, request as httpRequest, type Server } from 'node:http';
import { gzipSync } from 'node:zlib';
import { connect, type AddressInfo } from 'node:net';
import { toNodeListener, type NodeContext, type NodeListenerOptions } from '../../../src/server/node';
import { withTracing } from '../../../src/server/withTracing';
import type { Exporter, SpanRecord, TelemetryRecord } from '../../../src/protocol';

let server: Server | undefined;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const serve = async (handler: (request: Request, env: any, ctx: NodeContext) => Response | Promise<Response>, opts: NodeListenerOptions<any> = {}) => {
  const listener = toNodeListener(handler, opts);
  server = createServer(listener);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return { base: `http://127.0.0.1:${(server!.address() as AddressInfo).port}`, listener };
};

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** A raw request, for what fetch() cannot send: repeated header lines, a // path, TRACE. */
const raw = (base: string, { path = '/x?y=1', method = 'GET', headers = [] as [string, string][] } = {}) =>
  new Promise<{ status: number; body: string }>((resolve, reject) => {
    const url = new URL(base);
    const flat = ['host', url.host, ...headers.flat()];
    const req = httpRequest({ host: url.hostname, port: url.port, path, method, headers: flat as unknown as Record<string, string> }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });

describe('toNodeListener', () => {
  it('builds a Request with the URL, method and repeated header fields', async () => {
    const { base } = await serve((req) => new Response(JSON.stringify({ url: req.url, tp: req.headers.get('traceparent'), method: req.method })));
    const body = JSON.parse((await raw(base, { headers: [['traceparent', 'a'], ['traceparent', 'b']] })).body);
    expect(body).toEqual({ url: `${base}/x?y=1`, tp: 'a, b', method: 'GET' });
  });

  it('streams a request body to the handler', async () => {
    const { base } = await serve(async (req) => new Response(`got ${(await req.text()).length}`));
    const res = await fetch(base, { method: 'POST', body: 'x'.repeat(200_000) });
    expect(await res.text()).toBe('got 200000');
  });

  it('streams the response with status, headers and every set-cookie', async () => {
    const { base } = await serve(() => {
      const headers = new Headers({ 'x-a': '1' });
      headers.append('set-cookie', 'a=1');
      headers.append('set-cookie', 'b=2');
      let i = 0;
      const body = new ReadableStream({ pull: (c) => (i < 3 ? c.enqueue(new TextEncoder().encode(`p${i++}`)) : c.close()) });
      return new Response(body, { status: 202, statusText: 'Later', headers });
    });
    const res = await fetch(base);
    expect(res.status).toBe(202);
    expect(res.statusText).toBe('Later');
    expect(res.headers.get('x-a')).toBe('1');
    expect(res.headers.getSetCookie()).toEqual(['a=1', 'b=2']);
    expect(await res.text()).toBe('p0p1p2');
  });

  it('throws at once for a handler that is not a function or an option it does not have', () => {
    expect(() => toNodeListener('app' as never)).toThrow('[edgetrace] toNodeListener(): "handler" must be a fetch-style handler, (request, env, ctx) => Response, got "app".');
    expect(() => toNodeListener(() => new Response(), { onerror: () => undefined } as never)).toThrow(/toNodeListener\(\): "onerror" is not an option \(did you mean "onError"\?\)/);
    expect(() => toNodeListener(() => new Response(), { onError: 'log' as never })).toThrow(/"onError" must be a function/);
    expect(() => toNodeListener(() => new Response(), { env: {}, onError: () => undefined })).not.toThrow();
  });

  it('answers 500 when the handler throws, and keeps serving', async () => {
    const errors: unknown[] = [];
    const { base } = await serve(
      (req) => {
        if (req.url.endsWith('/bad')) throw new Error('bad');
        return new Response('fine');
      },
      { onError: (e) => errors.push(e) },
    );
    const bad = await fetch(`${base}/bad`);
    expect(bad.status).toBe(500);
    expect(await (await fetch(`${base}/ok`)).text()).toBe('fine');
    expect(errors).toHaveLength(1);
  });

  it('answers 500 naming what a handler returned that is no Response', async () => {
    const errors: unknown[] = [];
    const answers: Record<string, unknown> = { '/none': undefined, '/text': 'hello', '/object': { status: 'ok' }, '/null': null };
    const { base } = await serve((req) => answers[new URL(req.url).pathname] as Response, { onError: (e) => errors.push(e) });
    for (const path of Object.keys(answers)) expect((await fetch(base + path)).status, path).toBe(500);
    expect(errors.map((e) => (e as Error).message.replace(/^\[edgetrace\] toNodeListener\(\): the handler returned (.*?), not a Response\..*$/, '$1'))).toEqual([
      'undefined',
      'a string ("hello")',
      'an object',
      'null',
    ]);
    expect((errors[0] as Error).message).toMatch(/withNodeTracing\(listener\)/);
  });

  it('says where a (req, res) listener goes when it calls res.setHeader on env', async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const errors: unknown[] = [];
    // Express, or withTracing((req, res) => …), given to toNodeListener.
    const { base } = await serve(((_req: Request, res: { setHeader(name: string, value: string): void }) => res.setHeader('x-a', '1')) as never, { onError: (e) => errors.push(e) });
    expect((await fetch(base)).status).toBe(500);
    expect((await fetch(base)).status).toBe(500);
    expect(errors).toHaveLength(2);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toBe(
      "[edgetrace] toNodeListener(): the handler called setHeader() on its second argument, which here is env, not Node's response: a (req, res) listener (Express, Koa, Fastify) is served with createServer(listener) as it is, and traced with withNodeTracing(listener).",
    );
    warn.mockRestore();
  });

  it("prints a handler's error on the console when the app gave no onError", async () => {
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const { base } = await serve(() => {
        throw new Error('my app bug');
      });
      expect((await fetch(base)).status).toBe(500);
      expect(consoleError).toHaveBeenCalledTimes(1);
      expect(consoleError.mock.calls[0]).toEqual(['[edgetrace] toNodeListener:', new Error('my app bug')]);
    } finally {
      consoleError.mockRestore();
    }
  });

  it("answers a body that fails before its first chunk with a plain 500, none of the response's headers", async () => {
    const errors: unknown[] = [];
    // A proxied upstream whose connection resets right after its headers.
    const { base } = await serve(
      () => {
        const failing = new ReadableStream<Uint8Array>({ pull: (c) => c.error(new Error('upstream reset')) });
        return new Response(failing, { status: 201, statusText: 'Created', headers: { 'content-length': '100000', 'set-cookie': 'session=1', 'content-encoding': 'br' } });
      },
      { onError: (e) => errors.push(e) },
    );
    const { port } = new URL(base);
    const reply = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(port), '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
      let text = '';
      socket.on('data', (d) => (text += d));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    const [head, body] = reply.split('\r\n\r\n');
    expect(head).toMatch(/^HTTP\/1\.1 500 Internal Server Error\r\n/);
    expect(head).not.toMatch(/content-length: 100000|set-cookie|content-encoding/i);
    expect(body).toContain('Internal Server Error');
    expect(errors).toHaveLength(1);
  });

  it('passes env, a waitUntil that drain() waits for, and the client address', async () => {
    let finished = false;
    let seen: NodeContext | undefined;
    // A gate the test opens, not a timer: the work must still be pending when the response is in.
    let open: () => void = () => undefined;
    const gate = new Promise<void>((r) => (open = r));
    const { base, listener } = await serve(
      (_req, env: { v: number }, ctx) => {
        seen = ctx;
        ctx.waitUntil(gate.then(() => void (finished = true)));
        return new Response(String(env.v));
      },
      { env: { v: 42 } },
    );
    expect(await (await fetch(base)).text()).toBe('42');
    expect(finished).toBe(false);
    const drained = listener.drain();
    open();
    await drained;
    expect(finished).toBe(true);
    expect(seen!.clientAddress).toMatch(/127\.0\.0\.1/);
  });

  it('passes every request the same env object, which withTracing keys its setup on', async () => {
    const seen = new Set<unknown>();
    const { base } = await serve((_req, env) => (seen.add(env), new Response('ok')), { env: { v: 1 } });
    for (let i = 0; i < 3; i++) await (await fetch(base)).text();
    expect(seen.size).toBe(1);
  });

  it('cancels the body for HEAD and when the client goes away, and aborts the request signal', async () => {
    let cancelled = 0;
    let aborted = false;
    const { base } = await serve((req) => {
      req.signal.addEventListener('abort', () => (aborted = true));
      return new Response(new ReadableStream({ pull: (c) => c.enqueue(new Uint8Array(1024)), cancel: () => void cancelled++ }));
    });
    const head = await fetch(base, { method: 'HEAD' });
    expect(head.status).toBe(200);
    const ctrl = new AbortController();
    const res = await fetch(base, { signal: ctrl.signal });
    const reader = res.body!.getReader();
    await reader.read();
    ctrl.abort();
    for (let i = 0; i < 500 && cancelled < 2; i++) await new Promise((r) => setTimeout(r, 10));
    expect(cancelled).toBe(2);
    expect(aborted).toBe(true);
  });

  it('prints nothing when a client leaves a stream that follows its request signal', async () => {
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      let aborted = false;
      // A proxied model stream: it fails with the request's abort when the client goes.
      const { base } = await serve(
        (req) =>
          new Response(
            new ReadableStream({
              start(c) {
                c.enqueue(new Uint8Array(8));
                req.signal.addEventListener('abort', () => {
                  aborted = true;
                  c.error(req.signal.reason);
                });
              },
            }),
          ),
      );
      const ctrl = new AbortController();
      const res = await fetch(base, { signal: ctrl.signal });
      await res.body!.getReader().read();
      ctrl.abort();
      await vi.waitFor(() => expect(aborted).toBe(true));
      await new Promise((r) => setTimeout(r, 50));
      expect(consoleError).not.toHaveBeenCalled();
    } finally {
      consoleError.mockRestore();
    }
  });

  it('fails the body read of a client that left mid-upload with the request abort, printed nowhere, and the traced request is cancelled', async () => {
    const onError = vi.fn();
    const spans: SpanRecord[] = [];
    let readFailed!: (error: unknown) => void;
    const failure = new Promise<unknown>((r) => (readFailed = r));
    const exporter: Exporter = { export: async (records: readonly TelemetryRecord[]) => (spans.push(...records.filter((r): r is SpanRecord => r.rec === 'span')), { ok: true }) };
    const handler = withTracing(
      async (request: Request) => {
        try {
          return new Response(await request.text());
        } catch (error) {
          readFailed(error);
          throw error;
        }
      },
      { exporter },
    );
    const { base, listener } = await serve(handler, { onError });
    const url = new URL(base);
    const req = httpRequest({ host: url.hostname, port: url.port, method: 'POST', path: '/upload', headers: { 'content-length': '1000' } });
    req.on('error', () => undefined);
    req.write('x'.repeat(10));
    await new Promise((r) => setTimeout(r, 50));
    req.destroy();
    expect(await failure).toMatchObject({ name: 'AbortError' });
    await listener.drain();
    await vi.waitFor(() => expect(spans).toHaveLength(1));
    expect(onError).not.toHaveBeenCalled();
    expect(spans[0]!.attrs['edgetrace.response.cancelled']).toBe(true);
    expect(spans[0]!.status.code).not.toBe('error');
  });

  it('still prints an error the handler throws after its client went away', async () => {
    const consoleError = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      let started!: () => void;
      const running = new Promise<void>((r) => (started = r));
      const { base } = await serve(async (req) => {
        started();
        await new Promise((r) => req.signal.addEventListener('abort', r));
        throw new TypeError('a bug after the client left');
      });
      const ctrl = new AbortController();
      const pending = fetch(base, { signal: ctrl.signal }).catch(() => undefined);
      await running;
      ctrl.abort();
      await pending;
      await vi.waitFor(() => expect(consoleError).toHaveBeenCalledTimes(1));
      expect(String(consoleError.mock.calls[0]![1])).toContain('a bug after the client left');
    } finally {
      consoleError.mockRestore();
    }
  });

  it('keeps a keep-alive connection usable after a body the handler read only in part', async () => {
    const { base } = await serve(async (req) => {
      if (req.method === 'GET') return new Response('ok');
      await req.body!.getReader().read();
      return new Response('too large', { status: 413 });
    });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<unknown>();
    const send = (method: string, body?: Buffer) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const url = new URL(base);
        const req = httpRequest({ host: url.hostname, port: url.port, path: '/', method, agent, timeout: 3000 }, (res) => {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode!, text }));
        });
        req.on('socket', (socket) => sockets.add(socket));
        req.on('timeout', () => req.destroy(new Error(`${method} timed out`)));
        req.on('error', reject);
        req.end(body);
      });
    try {
      expect((await send('POST', Buffer.alloc(1 << 20))).status).toBe(413);
      expect(await send('GET')).toEqual({ status: 200, text: 'ok' });
      expect(sockets.size).toBe(1);
    } finally {
      agent.destroy();
    }
  });

  it('lets a handler that answered first go on reading the body in the background', async () => {
    let got: Promise<string> | undefined;
    const { base, listener } = await serve((req, _env, ctx) => {
      got = req.text();
      ctx.waitUntil(got);
      return new Response(null, { status: 202 });
    });
    const url = new URL(base);
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest({ host: url.hostname, port: url.port, path: '/', method: 'POST' }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.write('first-chunk;');
      setTimeout(() => req.end('second-chunk'), 200);
    });
    expect(status).toBe(202);
    await listener.drain();
    expect(await got).toBe('first-chunk;second-chunk');
  });

  it('passes on a proxied compressed response decoded, also through withTracing', async () => {
    const text = 'hello '.repeat(1000);
    const upstream = createServer((_req, res) => {
      res.writeHead(200, { 'content-encoding': 'gzip', 'content-type': 'text/plain' });
      res.end(gzipSync(text));
    });
    await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
    const origin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
    try {
      for (const handler of [() => fetch(origin), withTracing(() => fetch(origin), { exporter: { export: async () => ({ ok: true }) } })]) {
        const { base } = await serve(handler);
        const res = await fetch(base);
        expect(await res.text()).toBe(text);
        server!.closeAllConnections();
        await new Promise<void>((resolve) => server!.close(() => resolve()));
        server = undefined;
      }
      // A handler's own compressed body is sent as its headers say.
      const { base } = await serve(() => new Response(gzipSync(text), { headers: { 'content-encoding': 'gzip' } }));
      expect(await (await fetch(base)).text()).toBe(text);
    } finally {
      upstream.closeAllConnections();
      upstream.close();
    }
  });

  it('reads a request target that starts with // as a path on this host, never as another host', async () => {
    const { base } = await serve((req) => new Response(new URL(req.url).host + ' ' + new URL(req.url).pathname));
    const { body } = await raw(base, { path: '//evil.example/v1/traces' });
    expect(body).toBe(`${new URL(base).host} //evil.example/v1/traces`);
  });

  it('cancels the body of a response whose client left while the handler was still working', async () => {
    let pulls = 0;
    let cancelled = false;
    let answered!: () => void;
    const handlerDone = new Promise<void>((resolve) => (answered = resolve));
    const { base } = await serve(async () => {
      await new Promise((r) => setTimeout(r, 150));
      answered();
      return new Response(new ReadableStream({ pull: (c) => void (pulls++, c.enqueue(new Uint8Array(64 * 1024))), cancel: () => void (cancelled = true) }));
    });
    const url = new URL(base);
    const req = httpRequest({ host: url.hostname, port: url.port, path: '/sse' });
    req.on('error', () => undefined);
    req.end();
    await new Promise((r) => setTimeout(r, 30));
    req.destroy();
    await handlerDone;
    for (let i = 0; i < 100 && !cancelled; i++) await new Promise((r) => setTimeout(r, 10));
    expect(cancelled).toBe(true);
    expect(pulls).toBeLessThanOrEqual(1);
  });

  it('answers a method fetch cannot represent with 405, not a handler failure', async () => {
    const errors: unknown[] = [];
    const { base } = await serve(() => new Response('reached'), { onError: (e) => errors.push(e) });
    const { status } = await raw(base, { path: '/', method: 'TRACE' });
    expect(status).toBe(405);
    expect(errors).toEqual([]);
  });
});
