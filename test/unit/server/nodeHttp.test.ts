import { describe, it, expect } from 'vitest';
import http, { createServer, get as esmGet, type ClientRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import https from 'node:https';
import { createGunzip, gzipSync } from 'node:zlib';
import { requestSpan } from '../../../src/server/scope';
import type { SpanRecord } from '../../../src/protocol';
import { withNodeTracing } from '../../../src/server/nodeTracing';
import { withTracing } from '../../../src/server/withTracing';
import { toNodeListener } from '../../../src/server/node';
import { instrumentNodeHttp } from '../../../src/server/nodeHttp';
import type { NodeListener } from '../../../src/server/node';
import { loopbackPerTest } from './loopback';
import { recorder } from '../../helpers/recorder';
import { BODY_IDLE_MS } from '../../../src/instrument/stream';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const TRACEPARENT = `00-${TRACE}-00f067aa0ba902b7-01`;


const { rx, listen } = loopbackPerTest();

/** The body of `res`, read to the end. */
const text = (res: IncomingMessage): Promise<string> =>
  new Promise((resolve, reject) => {
    let body = '';
    res.setEncoding('utf8');
    res.on('data', (c: string) => (body += c));
    res.on('end', () => resolve(body));
    res.on('error', reject);
  });

/** Settles when `req` has its response (its body read), or with its error. */
const answered = (req: ClientRequest): Promise<string> =>
  new Promise((resolve, reject) => {
    req.on('response', (res) => void text(res).then(resolve, reject));
    req.on('error', reject);
  });

/**
 * A listener wrapped by withNodeTracing whose handler runs `call` (an outgoing request, made
 * while the request is handled) and answers with what it settled with; `hit()` requests it
 * (with `traceparent`), drains, and gives the spans.
 */
const serve = async (call: () => Promise<string>, options: Parameters<typeof withNodeTracing>[1] = {}) => {
  const { exporter, spans } = recorder();
  const traced: NodeListener = withNodeTracing((req, res) => {
    call().then(
      (body) => res.end(`ok:${body}`),
      (error: Error) => res.end(`failed:${error.message}`),
    );
  }, { exporter, ...options });
  const base = await listen(traced);
  return async (): Promise<{ body: string; spans: SpanRecord[] }> => {
    const body = await (await fetch(base, { headers: { traceparent: TRACEPARENT } })).text();
    await traced.drain();
    return { body, spans: spans() };
  };
};

const only = (spans: SpanRecord[], kind: SpanRecord['kind']): SpanRecord => {
  const found = spans.filter((s) => s.kind === kind);
  expect(found).toHaveLength(1);
  return found[0]!;
};

describe('instrumentNodeHttp', () => {
  it('traces http.get inside a request: a CLIENT span, child of the request, whose trace the downstream server gets', async () => {
    rx.reply = (_req, res) => res.writeHead(202).end('down');
    const hit = await serve(() => answered(http.get(`${rx.base}/down?key=secret`)));
    const { body, spans } = await hit();
    expect(body).toBe('ok:down');
    const serverSpan = only(spans, 'server');
    const client = only(spans, 'client');
    expect(client.traceId).toBe(TRACE);
    expect(client.parentId).toBe(serverSpan.spanId);
    expect(client.name).toBe('GET');
    expect(client.attrs).toMatchObject({
      'http.request.method': 'GET',
      'server.address': '127.0.0.1',
      'server.port': Number(new URL(rx.base).port),
      'http.response.status_code': 202,
    });
    expect(String(client.attrs['url.full'])).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/down\?key=/);
    expect(String(client.attrs['url.full'])).not.toContain('secret');
    expect(rx.received[0]!.headers.traceparent).toBe(`00-${TRACE}-${client.spanId}-01`);
  });

  it('traces the ES module imports of node:http too', async () => {
    const hit = await serve(() => answered(esmGet(`${rx.base}/esm`)));
    const { spans } = await hit();
    const client = only(spans, 'client');
    expect(rx.received[0]!.headers.traceparent).toBe(`00-${TRACE}-${client.spanId}-01`);
  });

  it('keeps the caller’s options, headers and body, and replaces a proxied trace', async () => {
    const port = Number(new URL(rx.base).port);
    const hit = await serve(() => {
      const req = http.request({
        host: '127.0.0.1',
        port,
        path: '/items?id=1',
        method: 'POST',
        headers: { 'X-App': 'kept', 'Content-Type': 'text/plain', Traceparent: TRACEPARENT, tracestate: 'caller=1', baggage: 'own=1' },
      });
      const done = answered(req);
      req.end('the body');
      return done;
    }, { baggage: { tenant: 'acme', own: 'trace' } });
    const { spans } = await hit();
    const client = only(spans, 'client');
    expect(client.name).toBe('POST');
    expect(String(client.attrs['url.full'])).toMatch(new RegExp(`^http://127\\.0\\.0\\.1:${port}/items\\?id=`));
    const got = rx.received[0]!;
    expect(got).toMatchObject({ method: 'POST', url: '/items?id=1', body: 'the body' });
    expect(got.headers['x-app']).toBe('kept');
    expect(got.headers['content-type']).toBe('text/plain');
    expect(got.headers.traceparent).toBe(`00-${TRACE}-${client.spanId}-01`);
    // The caller's tracestate belonged to the caller's span; its own baggage keeps its members
    // and gets the trace's others.
    expect(got.headers.tracestate).toBeUndefined();
    expect(got.headers.baggage).toBe('own=1,tenant=acme');
  });

  it('takes headers as Node’s flat list and a URL with options over it', async () => {
    const hit = await serve(() => {
      const req = http.request(new URL(`${rx.base}/list`), { method: 'PUT', headers: ['Host', new URL(rx.base).host, 'X-One', '1', 'traceparent', TRACEPARENT] });
      const done = answered(req);
      req.end();
      return done;
    });
    const { spans } = await hit();
    const client = only(spans, 'client');
    expect(client.name).toBe('PUT');
    const got = rx.received[0]!;
    expect(got.method).toBe('PUT');
    expect(got.headers['x-one']).toBe('1');
    expect(got.headers.traceparent).toBe(`00-${TRACE}-${client.spanId}-01`);
  });

  it('takes headers as [name, value] pairs, and leaves a list Node refuses for Node to refuse', async () => {
    let refused: unknown;
    const hit = await serve(async () => {
      const req = http.request(`${rx.base}/pairs`, { headers: [['Host', new URL(rx.base).host], ['X-Pair', '1'], ['traceparent', TRACEPARENT]] as never });
      const done = answered(req);
      req.end();
      await done;
      try {
        http.request(`${rx.base}/odd`, { headers: ['X-A', '1', 'X-B'] });
      } catch (error) {
        refused = error;
      }
      return 'done';
    });
    const { spans } = await hit();
    const client = spans.find((s) => s.kind === 'client' && String(s.attrs['url.full']).endsWith('/pairs'))!;
    const got = rx.received[0]!;
    expect(got.url).toBe('/pairs');
    expect(got.headers['x-pair']).toBe('1');
    expect(got.headers.traceparent).toBe(`00-${TRACE}-${client.spanId}-01`);
    expect((refused as NodeJS.ErrnoException).code).toBe('ERR_INVALID_ARG_VALUE');
    expect(rx.received).toHaveLength(1);
  });

  it('reads each option once and only the options’ own properties, as Node does', async () => {
    let reads = 0;
    const proto = { headers: { 'x-proto': 'inherited' } };
    const options = Object.assign(Object.create(proto) as http.RequestOptions, { host: '127.0.0.1', port: Number(new URL(rx.base).port) });
    Object.defineProperty(options, 'path', { enumerable: true, get: () => (reads++, '/counted') });
    const hit = await serve(() => answered(http.get(options)));
    await hit();
    const got = rx.received[0]!;
    expect(got.url).toBe('/counted');
    expect(reads).toBe(1);
    expect(got.headers['x-proto']).toBeUndefined();
    expect(got.headers.traceparent).toMatch(new RegExp(`^00-${TRACE}-`));
  });

  it('finds the host as Node does: a host option beside a URL changes nothing, so propagateTo is asked about the real one', async () => {
    const hit = await serve(() => answered(http.get(`${rx.base}/real`, { host: 'trusted.internal' })), { propagateTo: [/trusted\.internal/] });
    const { spans } = await hit();
    expect(rx.received[0]!.url).toBe('/real');
    expect(rx.received[0]!.headers.traceparent).toBeUndefined();
    expect(only(spans, 'client').attrs['server.address']).toBe('127.0.0.1');
  });

  it('records a CONNECT by the proxy it went to, and an option given as undefined as Node takes it', async () => {
    const port = Number(new URL(rx.base).port);
    const hit = await serve(async () => {
      const tunnel = http.request({ host: '127.0.0.1', port, method: 'CONNECT', path: 'example.com:443' });
      tunnel.on('error', () => undefined);
      tunnel.on('connect', (_res, socket: Socket) => socket.destroy());
      tunnel.end();
      // An undefined hostname wipes the URL's out, and Node goes to localhost.
      const local = http.get(`http://127.0.0.1:${port}/local`, { hostname: undefined });
      local.on('error', () => undefined);
      await new Promise((resolve) => local.on('close', resolve));
      tunnel.destroy();
      return 'done';
    });
    const { spans } = await hit();
    const urls = spans.filter((s) => s.kind === 'client').map((s) => s.attrs['url.full']);
    expect(urls).toContain(`http://127.0.0.1:${port}/`);
    expect(urls).toContain(`http://localhost:${port}/local`);
  });

  it('never throws into the caller: options whose getters throw reach Node, which throws as without the SDK', async () => {
    const thrown: unknown[] = [];
    const hostile = (key: string) => Object.defineProperty({ host: '127.0.0.1' }, key, { enumerable: true, get: () => { throw new Error(`${key} getter`); } });
    const hit = await serve(async () => {
      for (const key of ['headers', 'method', 'path']) {
        try {
          http.get(hostile(key) as http.RequestOptions);
        } catch (error) {
          thrown.push((error as Error).message);
        }
      }
      return 'done';
    });
    const { body, spans } = await hit();
    expect(body).toBe('ok:done');
    expect(thrown).toEqual(['headers getter', 'method getter', 'path getter']);
    expect(spans.filter((s) => s.kind === 'client')).toHaveLength(0);
  });

  it('records an upgrade answered with 101 as answered, not cancelled', async () => {
    const upgrading = createServer();
    upgrading.on('upgrade', (_req, socket: Socket) => socket.end('HTTP/1.1 101 Switching Protocols\r\nUpgrade: probe\r\nConnection: Upgrade\r\n\r\n'));
    await new Promise<void>((resolve) => upgrading.listen(0, '127.0.0.1', resolve));
    try {
      const port = (upgrading.address() as AddressInfo).port;
      const hit = await serve(
        () =>
          new Promise<string>((resolve, reject) => {
            const req = http.request({ host: '127.0.0.1', port, headers: { Connection: 'Upgrade', Upgrade: 'probe' } });
            req.on('upgrade', (res: IncomingMessage, socket: Socket) => {
              socket.destroy();
              resolve(String(res.statusCode));
            });
            req.on('error', reject);
            req.end();
          }),
      );
      const { body, spans } = await hit();
      expect(body).toBe('ok:101');
      const client = only(spans, 'client');
      expect(client.attrs['http.response.status_code']).toBe(101);
      expect(client.attrs['edgetrace.cancelled']).toBeUndefined();
    } finally {
      upgrading.close();
    }
  });

  it('records a timeout as a failure, not a cancel: Node’s timeout the app gives up on, and AbortSignal.timeout()', async () => {
    rx.reply = () => undefined; // never answers
    const hit = await serve(async () => {
      const outcome = (req: ClientRequest) => new Promise<string>((resolve) => req.on('error', (e) => resolve(e.name)));
      // As Node's documentation does: destroy() at the timeout event.
      const viaEvent = http.get(`${rx.base}/event`, { timeout: 40 });
      viaEvent.on('timeout', () => viaEvent.destroy());
      const viaSignal = http.get(`${rx.base}/signal`, { signal: AbortSignal.timeout(40) });
      return (await Promise.all([outcome(viaEvent), outcome(viaSignal)])).join();
    });
    const { body, spans } = await hit();
    expect(body).toBe('ok:Error,AbortError');
    const clients = spans.filter((s) => s.kind === 'client');
    expect(clients).toHaveLength(2);
    for (const client of clients) {
      expect(client.attrs['edgetrace.cancelled']).toBeUndefined();
      expect(client.status.code).toBe('error');
    }
    expect(clients.find((c) => String(c.attrs['url.full']).endsWith('/event'))!.attrs['error.type']).toBe('timeout');
  });

  it('adds no header where propagateTo says no, and still records the call', async () => {
    const hit = await serve(() => answered(http.get(`${rx.base}/private`)), { propagateTo: ['https://api.example.com'] });
    const { spans } = await hit();
    only(spans, 'client');
    expect(rx.received[0]!.headers.traceparent).toBeUndefined();
  });

  it('leaves a response nobody listens for to Node, which discards its body and frees the socket', async () => {
    // With one socket, the second request waits for the first response's body to be
    // discarded: a 'response' listener of ours would keep it, and the second would never go.
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    rx.reply = (_req, res) => res.end('x'.repeat(200_000));
    try {
      const hit = await serve(async () => {
        const first = http.get(`${rx.base}/a`, { agent });
        expect(first.listenerCount('response')).toBe(0);
        expect(first.listenerCount('error')).toBe(0);
        return answered(http.get(`${rx.base}/b`, { agent })).then((body) => String(body.length));
      });
      const { body, spans } = await hit();
      expect(body).toBe('ok:200000');
      expect(spans.filter((s) => s.kind === 'client')).toHaveLength(2);
    } finally {
      agent.destroy();
    }
  });

  it('records a failed call as an error and gives the app its error unchanged', async () => {
    let seen: unknown;
    const hit = await serve(() =>
      answered(https.get('https://127.0.0.1:1/refused')).catch((error: NodeJS.ErrnoException) => {
        seen = error;
        throw error;
      }),
    );
    const { body, spans } = await hit();
    expect(body).toBe('failed:connect ECONNREFUSED 127.0.0.1:1');
    expect((seen as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    const client = only(spans, 'client');
    expect(client.attrs).toMatchObject({ 'url.full': 'https://127.0.0.1:1/refused', 'server.port': 1, 'error.type': 'Error' });
    expect(client.status.code).toBe('error');
    expect(client.events.some((e) => e.name === 'exception')).toBe(true);
  });

  it('marks a call the app aborted as cancelled, not failed', async () => {
    rx.reply = () => undefined; // never answers
    const hit = await serve(() => {
      const controller = new AbortController();
      const req = http.get(`${rx.base}/slow`, { signal: controller.signal });
      setTimeout(() => controller.abort(), 50);
      return answered(req);
    });
    const { body, spans } = await hit();
    expect(body).toBe('failed:The operation was aborted');
    const client = only(spans, 'client');
    expect(client.attrs['edgetrace.cancelled']).toBe(true);
    expect(client.status.code).not.toBe('error');
  });

  it('marks a request the app aborted with req.abort() as cancelled, before and after it went out', async () => {
    rx.reply = () => undefined; // never answers
    const hit = await serve(async () => {
      const aborted = (delayMs: number) =>
        new Promise<string>((resolve) => {
          const req = http.get(`${rx.base}/never`);
          // The socket's "socket hang up" follows an abort once the request went out.
          req.on('error', () => undefined);
          req.on('close', () => resolve(String(req.destroyed)));
          if (delayMs) setTimeout(() => req.abort(), delayMs);
          else req.abort();
        });
      return `${await aborted(0)},${await aborted(50)}`;
    });
    const { body, spans } = await hit();
    expect(body).toBe('ok:true,true');
    const clients = spans.filter((s) => s.kind === 'client');
    expect(clients).toHaveLength(2);
    for (const client of clients) {
      expect(client.attrs['edgetrace.cancelled']).toBe(true);
      expect(client.status.code).not.toBe('error');
    }
  });

  it('fills the generation a call is made in from its body as the app reads it: a model stream, and a compressed JSON answer', async () => {
    const events = [
      { choices: [{ delta: { role: 'assistant' } }] },
      { choices: [{ delta: { content: 'Hel' } }] },
      { choices: [{ delta: { content: 'lo' } }] },
      { choices: [], usage: { prompt_tokens: 11, completion_tokens: 2 } },
    ];
    rx.reply = (req, res) => {
      if (req.url === '/stream') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        // Sent in pieces that cut through events, the first output well after the head.
        const text = events.map((e) => `data: ${JSON.stringify(e)}\n\n`).join('') + 'data: [DONE]\n\n';
        res.write(text.slice(0, 30));
        setTimeout(() => res.end(text.slice(30)), 60);
      } else {
        res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' });
        res.end(gzipSync(JSON.stringify({ choices: [{ message: { content: 'Hi' } }], usage: { prompt_tokens: 5, completion_tokens: 1 } })));
      }
    };
    let headAt = 0;
    const hit = await serve(async () => {
      const parent = requestSpan()!;
      const streamed = await parent.generation('stream', { model: 'gpt-4o' }, () =>
        new Promise<string>((resolve, reject) => {
          const req = http.get(`${rx.base}/stream`, (res) => {
            headAt = Date.now();
            let out = '';
            res.setEncoding('utf8');
            // Read as many clients do, through async iteration.
            void (async () => {
              for await (const chunk of res) out += chunk as string;
              resolve(String(out.length > 0));
            })().catch(reject);
          });
          req.on('error', reject);
        }),
      );
      // Inflated as clients do, the generation ending when the app has the answer.
      const json = await parent.generation('json', { model: 'gpt-4o' }, () =>
        new Promise<string>((resolve, reject) => {
          http.get(`${rx.base}/json`, (res) => {
            let out = '';
            res.pipe(createGunzip()).on('data', (c: Buffer) => (out += c.toString())).on('end', () => resolve(out)).on('error', reject);
          });
        }),
      );
      return `${streamed},${JSON.parse(json).choices[0].message.content}`;
    });
    const { body, spans } = await hit();
    expect(body).toBe('ok:true,Hi');
    const stream = spans.find((s) => s.name === 'stream')!;
    expect(JSON.parse(stream.attrs['langfuse.observation.usage_details'] as string)).toEqual({ input: 11, output: 2 });
    const first = Date.parse(String(stream.attrs['langfuse.observation.completion_start_time']));
    expect(first).toBeGreaterThanOrEqual(headAt + 40);
    const json = spans.find((s) => s.name === 'json')!;
    expect(JSON.parse(json.attrs['langfuse.observation.usage_details'] as string)).toEqual({ input: 5, output: 1 });
    // Each call is its own CLIENT span, child of its generation.
    for (const gen of [stream, json]) expect(spans.filter((s) => s.kind === 'client' && s.parentId === gen.spanId)).toHaveLength(1);
  });

  it("keeps a generation whose callback resolved at the head (an SDK's stream object) open until the app has read the stream", async () => {
    rx.reply = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"model":"gpt-4o-2024-08-06","choices":[{"delta":{"role":"assistant"}}]}\n\n');
      setTimeout(() => res.end('data: {"choices":[{"delta":{"content":"Hi"}}]}\n\ndata: {"choices":[],"usage":{"prompt_tokens":11,"completion_tokens":2}}\n\ndata: [DONE]\n\n'), 60);
    };
    let returnedAt = 0;
    let readAt = 0;
    const hit = await serve(async () => {
      // As a client on node:http (openai v4 with node-fetch) hands back its stream object at the head.
      const res = await requestSpan()!.generation('answer', { model: 'gpt-4o' }, () => new Promise<IncomingMessage>((resolve) => http.get(`${rx.base}/v1/chat/completions`, resolve)));
      returnedAt = Date.now();
      let text = '';
      for await (const chunk of res) text += String(chunk);
      readAt = Date.now();
      return String(text.includes('[DONE]'));
    });
    const { body, spans } = await hit();
    expect(body).toBe('ok:true');
    const gen = spans.find((s) => s.name === 'answer')!;
    expect(JSON.parse(gen.attrs['langfuse.observation.usage_details'] as string)).toEqual({ input: 11, output: 2 });
    expect(gen.attrs['gen_ai.response.model']).toBe('gpt-4o-2024-08-06');
    expect(gen.attrs['edgetrace.unfinished']).toBeUndefined();
    expect(gen.endMs).toBeGreaterThanOrEqual(returnedAt + 40);
    expect(gen.endMs).toBeLessThanOrEqual(readAt + 1);
  });

  it('waits on for a stream the app is reading through a pause longer than BODY_IDLE_MS (a reasoning model)', async () => {
    rx.reply = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"choices":[{"delta":{"role":"assistant"}}]}\n\n');
      setTimeout(() => res.end('data: {"choices":[{"delta":{"content":"Hi"}}]}\n\ndata: {"choices":[],"usage":{"prompt_tokens":11,"completion_tokens":2}}\n\ndata: [DONE]\n\n'), BODY_IDLE_MS + 1500);
    };
    const hit = await serve(async () => {
      const res = await requestSpan()!.generation('thinking', { model: 'o3' }, () => new Promise<IncomingMessage>((resolve) => http.get(`${rx.base}/v1/chat/completions`, resolve)));
      let text = '';
      for await (const chunk of res) text += String(chunk);
      return String(text.includes('[DONE]'));
    });
    const { body, spans } = await hit();
    expect(body).toBe('ok:true');
    const gen = spans.find((s) => s.name === 'thinking')!;
    expect(JSON.parse(gen.attrs['langfuse.observation.usage_details'] as string)).toEqual({ input: 11, output: 2 });
    expect(gen.endMs - gen.startMs).toBeGreaterThanOrEqual(BODY_IDLE_MS + 1000);
  }, BODY_IDLE_MS + 15_000);

  it('ends such a generation at the head when nobody reads its stream for BODY_IDLE_MS', async () => {
    rx.reply = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"choices":[{"delta":{"role":"assistant"}}]}\n\n');
    };
    let headAt = 0;
    const hit = await serve(async () => {
      const res = await requestSpan()!.generation('dropped', { model: 'gpt-4o' }, () =>
        new Promise<IncomingMessage>((resolve) =>
          http.get(`${rx.base}/v1/chat/completions`, (r) => {
            headAt = Date.now();
            resolve(r);
          }),
        ),
      );
      // The request goes on past the watch, and then drops the stream.
      await new Promise((r) => setTimeout(r, BODY_IDLE_MS + 1500));
      res.destroy();
      return 'done';
    });
    const { spans } = await hit();
    const gen = spans.find((s) => s.name === 'dropped')!;
    expect(gen.attrs['edgetrace.unfinished']).toBeUndefined();
    expect(gen.endMs - headAt).toBeLessThan(100);
  }, BODY_IDLE_MS + 15_000);

  it('fills a generation from a stream of JSON lines: Ollama’s first token and counts', async () => {
    rx.reply = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write('{"message":{"content":"Hel"},"done":false}\n');
      setTimeout(() => res.end('{"message":{"content":"lo"},"done":false}\n{"message":{"content":""},"done":true,"prompt_eval_count":26,"eval_count":298}\n'), 60);
    };
    let headAt = 0;
    const hit = await serve(async () => {
      await requestSpan()!.generation('chat', { model: 'llama3.2' }, () =>
        new Promise<void>((resolve, reject) => {
          http.get(`${rx.base}/api/chat`, (res) => {
            headAt = Date.now();
            res.on('data', () => undefined).on('end', resolve).on('error', reject);
          });
        }),
      );
      return 'done';
    });
    const { spans } = await hit();
    const chat = spans.find((s) => s.name === 'chat')!;
    expect(JSON.parse(chat.attrs['langfuse.observation.usage_details'] as string)).toEqual({ input: 26, output: 298 });
    const first = Date.parse(String(chat.attrs['langfuse.observation.completion_start_time']));
    expect(first).toBeGreaterThanOrEqual(headAt - 5);
    expect(first).toBeLessThan(Date.parse(new Date(chat.endMs).toISOString()) - 30);
  });

  it('takes a destroy() of the caller’s before the answer for a cancel, unless it gives an error of its own', async () => {
    rx.reply = () => undefined; // never answers
    const hit = await serve(async () => {
      const destroyed = (reason?: Error) =>
        new Promise<string>((resolve) => {
          const req = http.get(`${rx.base}/never`);
          req.on('error', (error) => resolve(error.message));
          req.on('socket', () => setTimeout(() => req.destroy(reason), 30));
        });
      // As axios cancels, as got cancels (no error), and as a timeout handler gives up.
      const axios = Object.assign(new Error('canceled'), { name: 'CanceledError', code: 'ERR_CANCELED' });
      return [await destroyed(axios), await destroyed(), await destroyed(new Error('timed out'))].join('|');
    });
    const { body, spans } = await hit();
    expect(body).toBe('ok:canceled|socket hang up|timed out');
    const [axios, got, timeout] = spans.filter((s) => s.kind === 'client').sort((a, b) => a.startMs - b.startMs);
    for (const cancelled of [axios!, got!]) {
      expect(cancelled.attrs['edgetrace.cancelled']).toBe(true);
      expect(cancelled.status.code).not.toBe('error');
    }
    expect(timeout!.attrs['edgetrace.cancelled']).toBeUndefined();
    expect(timeout!.status).toMatchObject({ code: 'error', message: 'timed out' });
  });

  it('passes a throw of Node’s for bad arguments to the caller, and records it', async () => {
    let thrown: unknown;
    const hit = await serve(async () => {
      try {
        http.request(`${rx.base}/x`, { headers: { 'bad header': '1' } });
      } catch (error) {
        thrown = error;
      }
      return 'done';
    });
    const { spans } = await hit();
    expect((thrown as NodeJS.ErrnoException).code).toBe('ERR_INVALID_HTTP_TOKEN');
    expect(only(spans, 'client').status.code).toBe('error');
  });

  it('traces a fetch-style handler served by toNodeListener, and nothing with traceFetch: false', async () => {
    const { exporter, spans } = recorder();
    const handler = withTracing(async (request: Request) => answered(http.get(`${rx.base}${new URL(request.url).pathname}`)).then((b) => new Response(b)), { exporter });
    const quiet = withTracing(async () => answered(http.get(`${rx.base}/quiet`)).then((b) => new Response(b)), { exporter, traceFetch: false });
    const base = await listen(toNodeListener((request) => (new URL(request.url).pathname === '/quiet' ? quiet(request) : handler(request))));
    await (await fetch(`${base}/loud`)).text();
    await (await fetch(`${base}/quiet`)).text();
    const loud = rx.received.find((r) => r.url === '/loud')!;
    const client = spans().find((s) => s.kind === 'client')!;
    // A new trace, with the random flag (03).
    expect(loud.headers.traceparent).toBe(`00-${client.traceId}-${client.spanId}-03`);
    expect(rx.received.find((r) => r.url === '/quiet')!.headers.traceparent).toBeUndefined();
    expect(spans().filter((s) => s.kind === 'client')).toHaveLength(1);
  });

  it('sends outside a traced request as it was asked, and restores the originals when removed', async () => {
    instrumentNodeHttp();
    const wrapped = http.request;
    await answered(http.get(`${rx.base}/outside`));
    expect(rx.received[0]!.headers.traceparent).toBeUndefined();
    const stop = instrumentNodeHttp();
    stop();
    const original = http.request;
    try {
      expect(original).not.toBe(wrapped);
      expect(original.name).toBe('request');
      // Named and sized as Node's.
      expect([wrapped.name, wrapped.length]).toEqual([original.name, original.length]);
      expect(esmGet).toBe(http.get);
    } finally {
      instrumentNodeHttp();
    }
    expect(http.request).not.toBe(original);
    expect(esmGet).toBe(http.get);
  });
});
