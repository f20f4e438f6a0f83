import { describe, it, expect, beforeAll, afterAll, afterEach, vi } from 'vitest';
import { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import express from 'express';
import Koa from 'koa';
import type { Exporter, SpanRecord, TelemetryRecord } from '../../../src/protocol';
import { FLUSH_HOLD_MS, OPEN_SPAN_GRACE_MS, withMessage, withTracing } from '../../../src/server/withTracing';
import { createServerTracer } from '../../../src/server/serverTracer';
import { instrumentServerFetch, tracedFetch, tracedFetcher } from '../../../src/server/fetch';
import { requestSpan, requestTrace } from '../../../src/server/scope';
import { observeBody, type BodyEnd } from '../../../src/server/body';
import { fromEnv } from '../../../src/server/fromEnv';
import { startReceiver, type Receiver } from './loopback';
import { currentSpan, getTracer, setTracer, withSpan } from '../../../src/core/global';
import { traced } from '../../../src/core/traced';
import { createTracer } from '../../../src/core/tracer';
import { otelTracer } from '../../../src/core/otel';
import * as A from '../../../src/core/semconv';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';
const TRACEPARENT = `00-${TRACE}-${PARENT}-01`;

/** An exporter that records each export call (one array per call). */
const recorder = () => {
  const calls: TelemetryRecord[][] = [];
  const exporter: Exporter = {
    export: async (records) => {
      calls.push([...records]);
      return { ok: true };
    },
  };
  const spans = (): SpanRecord[] => calls.flat().filter((r): r is SpanRecord => r.rec === 'span');
  return { calls, exporter, spans };
};

/** A Workers-like ctx whose waitUntil promises the test can await. */
const workerCtx = () => {
  const pending: Promise<unknown>[] = [];
  /** Settles everything registered, including what is registered while settling. */
  const drain = async (): Promise<void> => {
    for (let n = 0; n !== pending.length; ) {
      n = pending.length;
      await Promise.all(pending);
    }
  };
  return { ctx: { waitUntil: (p: Promise<unknown>) => void pending.push(p), passThroughOnException() {} }, settle: () => Promise.all(pending), pending, drain };
};

/** Calls `handler` once as Workers would, reads its whole response, then waits on what it passed to waitUntil. */
const serveOnce = async <E,>(handler: (request: Request, env: E, ctx: ReturnType<typeof workerCtx>['ctx']) => Promise<Response>, request = new Request('http://x/'), env = {} as E) => {
  const { ctx, settle } = workerCtx();
  await (await handler(request, env, ctx)).text();
  await settle();
};

const byKind = (spans: SpanRecord[], kind: SpanRecord['kind']) => spans.filter((s) => s.kind === kind);

let rx: Receiver;
let stopFetch: () => void;
/** The runtime's own fetch, from before any test wrapped it. */
const NATIVE_FETCH = globalThis.fetch;

beforeAll(async () => {
  rx = await startReceiver();
});
afterEach(() => {
  rx.received.length = 0;
  vi.restoreAllMocks();
  vi.useRealTimers();
});
afterAll(async () => {
  stopFetch?.();
  await rx.close();
});

describe('withTracing', () => {
  it('continues the incoming trace with a SERVER span and HTTP attributes', async () => {
    const rec = recorder();
    const handler = withTracing(async () => new Response('hi', { status: 201 }), { exporter: rec.exporter, serviceName: 'api' });
    const { ctx, settle } = workerCtx();
    const res = await handler(new Request('https://api.example.com:8443/chat?q=secret&page=2', { headers: { traceparent: TRACEPARENT, 'user-agent': 'ua/1' } }), {}, ctx);
    expect(await res.text()).toBe('hi');
    await settle();
    expect(rec.calls).toHaveLength(1);
    const [server] = rec.spans();
    expect(server).toMatchObject({
      traceId: TRACE,
      parentId: PARENT,
      remoteParent: true,
      kind: 'server',
      name: 'GET',
      flags: 1,
      status: { code: 'unset' },
    });
    expect(server!.attrs).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/chat',
      'url.scheme': 'https',
      'server.address': 'api.example.com',
      'server.port': 8443,
      'user_agent.original': 'ua/1',
      'http.response.status_code': 201,
      'http.response.body.size': 2,
    });
    // The trace's name is the root's, in the process that started it (a page): Langfuse would take
    // this span's for the whole trace.
    expect(server!.attrs['langfuse.trace.name']).toBeUndefined();
    // Query values are redacted before anything is stored.
    expect(server!.attrs['url.full']).not.toContain('secret');
    expect(server!.resource.attrs['service.name']).toBe('api');
  });

  it('lets the handler set the trace\'s own name and input from inside a child span, as the README shows', async () => {
    const rec = recorder();
    const handler = withTracing(
      async () =>
        requestSpan()!.span('answer', async () => {
          // Inside a child span requestSpan() is the child; requestTrace() is still the request's.
          expect(requestSpan()!.name).toBe('answer');
          requestTrace()?.update({ name: 'chat', input: { q: 'hi' } });
          return new Response('ok');
        }),
      { exporter: rec.exporter },
    );
    await serveOnce(handler, new Request('https://api.example.com/chat', { headers: { traceparent: TRACEPARENT } }));
    const server = rec.spans().find((r) => r.kind === 'server')!;
    expect(server.attrs['http.response.status_code']).toBe(200);
    expect(server.attrs).toMatchObject({ 'langfuse.trace.name': 'chat', 'langfuse.trace.input': '{"q":"hi"}' });
    expect(requestTrace()).toBeUndefined();
  });

  it('starts a new trace when the incoming traceparent is malformed', async () => {
    const rec = recorder();
    const handler = withTracing(() => new Response(null, { status: 204 }), { exporter: rec.exporter });
    await handler(new Request('http://x/', { headers: { traceparent: `00-${TRACE}-${PARENT}-01-extra`, tracestate: 'a=1' } }));
    const [span] = rec.spans();
    expect(span!.traceId).not.toBe(TRACE);
    expect(span!.parentId).toBeUndefined();
    expect(span!.traceState).toBeUndefined();
  });

  it("passes the incoming baggage on to the handler's calls, with what the handler adds", async () => {
    const rec = recorder();
    const handler = withTracing(
      async () => {
        await (await fetch(`${rx.base}/as-received`)).text();
        requestTrace()!.setBaggage({ step: 'rerank', tenant: undefined });
        await (await fetch(`${rx.base}/changed`)).text();
        // A call that names its own baggage keeps its members, and gets the trace's others.
        await (await fetch(`${rx.base}/own`, { headers: { baggage: 'own=this,step=mine' } })).text();
        return new Response(JSON.stringify(requestTrace()!.baggage));
      },
      { exporter: rec.exporter },
    );
    stopFetch = instrumentServerFetch();
    const { ctx, settle } = workerCtx();
    const res = await handler(new Request('http://x/', { headers: { traceparent: TRACEPARENT, baggage: 'userId=alice, tenant=t1;ttl=60' } }), {}, ctx);
    expect(await res.json()).toEqual({ userId: 'alice', step: 'rerank' });
    await settle();
    const baggageAt = (url: string) => rx.received.find((r) => r.url === url)!.headers.baggage;
    expect(baggageAt('/as-received')).toBe('userId=alice,tenant=t1;ttl=60');
    expect(baggageAt('/changed')).toBe('userId=alice,step=rerank');
    expect(baggageAt('/own')).toBe('own=this,step=mine, userId=alice');
    // Baggage travels in headers only: no span records it.
    expect(JSON.stringify(rec.spans())).not.toContain('alice');
  });

  it('names the span from the route and records it', async () => {
    const rec = recorder();
    const handler = withTracing(() => new Response('ok'), { exporter: rec.exporter, route: () => '/users/:id' });
    await (await handler(new Request('http://x/users/7', { method: 'POST', body: 'x' }))).text();
    expect(rec.spans()[0]).toMatchObject({ name: 'POST /users/:id', attrs: { 'http.route': '/users/:id' } });
  });

  it('marks a fetch() the handler aborted as cancelled, not failed, and a refused one as failed', async () => {
    const rec = recorder();
    const handler = withTracing(
      async () => {
        // Aborted before it goes out, so the receiver never hears of it.
        const aborted = fetch(`${rx.base}/aborted`, { signal: AbortSignal.abort() });
        const outcomes = await Promise.allSettled([aborted, fetch('http://127.0.0.1:1/refused')]);
        return new Response(outcomes.map((o) => o.status).join());
      },
      { exporter: rec.exporter },
    );
    stopFetch = instrumentServerFetch();
    const { ctx, settle } = workerCtx();
    expect(await (await handler(new Request('http://x/'), {}, ctx)).text()).toBe('rejected,rejected');
    await settle();
    const client = (path: string) => rec.spans().find((s) => s.kind === 'client' && String(s.attrs['url.full']).endsWith(path))!;
    expect(client('/aborted').attrs).toMatchObject({ 'edgetrace.cancelled': true, 'error.type': 'AbortError' });
    expect(client('/aborted').status.code).not.toBe('error');
    expect(client('/refused').attrs['edgetrace.cancelled']).toBeUndefined();
    expect(client('/refused').status.code).toBe('error');
  });

  it('traces fetch() calls made in the handler, after awaits, with the trace injected', async () => {
    const rec = recorder();
    const handler = withTracing(
      async () => {
        await new Promise((r) => setTimeout(r, 5));
        const a = await fetch(`${rx.base}/a`);
        await a.text();
        await new Promise((r) => setTimeout(r, 1));
        const b = await fetch(new Request(`${rx.base}/b`, { method: 'POST', body: '{}', headers: { 'x-keep': '1' } }));
        await b.text();
        return new Response('done');
      },
      { exporter: rec.exporter },
    );
    stopFetch = instrumentServerFetch();
    const { ctx, settle } = workerCtx();
    const res = await handler(new Request('http://x/', { headers: { traceparent: TRACEPARENT, tracestate: 'vendor=abc' } }), {}, ctx);
    await res.text();
    await settle();
    const spans = rec.spans();
    const [server] = byKind(spans, 'server');
    const clients = byKind(spans, 'client');
    expect(clients).toHaveLength(2);
    expect(rx.received.map((r) => r.url)).toEqual(['/a', '/b']);
    for (const [i, call] of rx.received.entries()) {
      const client = clients.find((c) => c.attrs['url.full'] === `${rx.base}${call.url}`)!;
      expect(client.parentId).toBe(server!.spanId);
      expect(call.headers.traceparent).toBe(`00-${TRACE}-${client.spanId}-01`);
      expect(call.headers.tracestate).toBe('vendor=abc');
      expect(client.attrs['http.response.status_code']).toBe(200);
      expect(client.name).toBe(i === 0 ? 'GET' : 'POST');
      expect(client.attrs['server.address']).toBe(new URL(rx.base).hostname);
    }
    // A Request's own headers survive the injection.
    expect(rx.received[1]!.headers['x-keep']).toBe('1');
    expect(rx.received[1]!.body).toBe('{}');
  });

  it('fills a generation around a model call from its response: first-token time and usage, streamed or not', async () => {
    const before = rx.reply;
    rx.reply = (req, res) => {
      if (req.url === '/v1/chat/completions?stream') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: {"choices":[{"delta":{"role":"assistant"}}],"usage":null}\n\n');
        setTimeout(() => {
          res.write('data: {"choices":[{"delta":{"content":"Hi"}}],"usage":null}\n\n');
          res.end('data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}\n\ndata: [DONE]\n\n');
        }, 60);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"choices":[{"message":{"content":"Hi"}}],"usage":{"prompt_tokens":31,"completion_tokens":7}}');
    };
    try {
      const rec = recorder();
      const handler = withTracing(
        async () => {
          const span = requestSpan()!;
          const streamed = await span.generation('streamed', { model: 'gpt-4o' }, async () => {
            const res = await fetch(`${rx.base}/v1/chat/completions?stream`, { method: 'POST', body: '{}' });
            // Read as the OpenAI SDK reads a stream: async iteration over the body.
            let text = '';
            for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) text += new TextDecoder().decode(chunk);
            return text;
          });
          const whole = await span.generation('whole', { model: 'gpt-4o' }, async () => (await fetch(`${rx.base}/v1/chat/completions`, { method: 'POST', body: '{}' })).json());
          // Not inside a generation: the body is left alone.
          const plain = await fetch(`${rx.base}/v1/chat/completions`);
          let untouched = Object.getPrototypeOf(plain) === Response.prototype;
          await plain.text();
          // A generation that ended before its call answered (the call handed on unawaited): nothing to fill.
          const late = await span.generation('late', { model: 'gpt-4o' }, () => ({ answer: fetch(`${rx.base}/v1/chat/completions`) }));
          const lateRes = await late.answer;
          untouched &&= Object.getPrototypeOf(lateRes) === Response.prototype;
          await lateRes.text();
          return Response.json({ streamed, whole, untouched });
        },
        { exporter: rec.exporter },
      );
      stopFetch = instrumentServerFetch();
      const { ctx, settle } = workerCtx();
      const out = (await (await handler(new Request('http://x/'), {}, ctx)).json()) as { streamed: string; whole: unknown; untouched: boolean };
      await settle();
      expect(out.streamed).toContain('[DONE]');
      expect(out.whole).toMatchObject({ usage: { prompt_tokens: 31 } });
      expect(out.untouched).toBe(true);
      const spans = rec.spans();
      const streamed = spans.find((s) => s.name === 'streamed')!;
      const whole = spans.find((s) => s.name === 'whole')!;
      expect(JSON.parse(streamed.attrs[A.USAGE_DETAILS] as string)).toEqual({ input: 9, output: 2, total: 11 });
      // The role chunk came with the headers; the first token 60 ms later.
      expect(Date.parse(streamed.attrs[A.COMPLETION_START_TIME] as string) - streamed.startMs).toBeGreaterThanOrEqual(40);
      expect(JSON.parse(whole.attrs[A.USAGE_DETAILS] as string)).toEqual({ input: 31, output: 7 });
      const late = spans.find((s) => s.name === 'late')!;
      expect(late.attrs[A.USAGE_DETAILS]).toBeUndefined();
      expect(byKind(spans, 'client').map((c) => spans.find((s) => s.spanId === c.parentId)?.name)).toEqual(['streamed', 'whole', 'GET', 'late']);
    } finally {
      rx.reply = before;
    }
  });

  it('a generation around a model stream passed on to the client ends with that stream, as the README shows', async () => {
    const before = rx.reply;
    rx.reply = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"choices":[{"delta":{"role":"assistant"}}],"usage":null}\n\n');
      setTimeout(() => res.end('data: {"choices":[{"delta":{"content":"Hi"}}],"usage":null}\n\ndata: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2}}\n\ndata: [DONE]\n\n'), 60);
    };
    try {
      const rec = recorder();
      const handler = withTracing(
        async () => {
          const gen = requestSpan()!.startGeneration('answer', { model: 'gpt-4o' });
          const upstream = await withSpan(gen, () => fetch(`${rx.base}/v1/chat/completions`, { method: 'POST', body: '{}' }));
          const end = new TransformStream({ flush: () => void gen.end() });
          return new Response(upstream.body!.pipeThrough(end), { headers: { 'content-type': 'text/event-stream' } });
        },
        { exporter: rec.exporter },
      );
      stopFetch = instrumentServerFetch();
      const { ctx, settle } = workerCtx();
      const text = await (await handler(new Request('http://x/'), {}, ctx)).text();
      await settle();
      expect(text).toContain('[DONE]');
      const gen = rec.spans().find((s) => s.name === 'answer')!;
      expect(JSON.parse(gen.attrs[A.USAGE_DETAILS] as string)).toEqual({ input: 9, output: 2 });
      expect(Date.parse(gen.attrs[A.COMPLETION_START_TIME] as string) - gen.startMs).toBeGreaterThanOrEqual(40);
      // Ended with the stream, not when the handler returned, nor by the request's end as unfinished.
      expect(gen.endMs - gen.startMs).toBeGreaterThanOrEqual(50);
      expect(gen.attrs['edgetrace.unfinished']).toBeUndefined();
    } finally {
      rx.reply = before;
    }
  });

  // Model calls from a handler: what the receiver answers them with, and one request through withTracing.
  const ROLE_CHUNK = 'data: {"choices":[{"delta":{"role":"assistant"}}],"usage":null}\n\n';
  const CHAT_REST = 'data: {"choices":[{"delta":{"content":"Hi"}}],"usage":null}\n\ndata: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2}}\n\ndata: [DONE]\n\n';
  const MESSAGE_START = 'data: {"type":"message_start","message":{"model":"claude-sonnet-4-5","usage":{"input_tokens":25,"output_tokens":1}}}\n\n';
  const MESSAGE_REST = 'data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"Hi"}}\n\ndata: {"type":"message_delta","usage":{"output_tokens":15}}\n\ndata: {"type":"message_stop"}\n\n';
  /** An event stream: `first` with the headers, `rest` after `delayMs` (never, when undefined). */
  const streamReply =
    (first: string, rest?: string, delayMs = 80): Receiver['reply'] =>
    (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(first);
      if (rest !== undefined) setTimeout(() => res.end(rest), delayMs);
    };
  const chatCall = () => fetch(`${rx.base}/v1/chat/completions`, { method: 'POST', body: '{}' });
  /** Serves `request` with `handle` in withTracing, the receiver answering model calls with `reply`: the body the client read, and the spans. */
  const throughModel = async (reply: Receiver['reply'], handle: (request: Request) => Promise<Response>, request = new Request('http://x/')) => {
    const before = rx.reply;
    rx.reply = reply;
    try {
      const rec = recorder();
      const handler = withTracing(handle, { exporter: rec.exporter });
      stopFetch = instrumentServerFetch();
      const { ctx, settle } = workerCtx();
      const text = await (await handler(request, {}, ctx)).text();
      await settle();
      return { text, spans: rec.spans() };
    } finally {
      rx.reply = before;
    }
  };
  /** A stream object made at once, its call going out a tick later (Anthropic's MessageStream); `final` is the body. */
  const streamObject = (call: () => Promise<Response>) => {
    const final = (async () => {
      await new Promise((r) => setTimeout(r, 10));
      return (await call()).text();
    })();
    return { final, async *[Symbol.asyncIterator]() {} };
  };

  it('a generation around the model call alone, whose stream the handler passes on to the client, ends with that stream', async () => {
    const { text, spans } = await throughModel(streamReply(ROLE_CHUNK.replace('{"choices"', '{"model":"gpt-4o-2024-08-06","choices"'), CHAT_REST), async () => {
      const upstream = await requestSpan()!.generation('answer', { model: 'gpt-4o' }, chatCall);
      return new Response(upstream.body, { headers: { 'content-type': 'text/event-stream' } });
    });
    expect(text).toContain('[DONE]');
    const gen = spans.find((s) => s.name === 'answer')!;
    expect(JSON.parse(gen.attrs[A.USAGE_DETAILS] as string)).toEqual({ input: 9, output: 2 });
    expect(gen.attrs['gen_ai.response.model']).toBe('gpt-4o-2024-08-06');
    expect(gen.endMs - gen.startMs).toBeGreaterThanOrEqual(60);
    expect(gen.attrs['edgetrace.unfinished']).toBeUndefined();
  });

  it('a generation around the model call alone, whose stream the client left (a stop button), ends cancelled when the client leaves', async () => {
    const before = rx.reply;
    rx.reply = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"choices":[{"delta":{"content":"Hi"}}],"usage":null}\n\n');
      const more = setInterval(() => res.write('data: {"choices":[{"delta":{"content":" again"}}],"usage":null}\n\n'), 20);
      res.on('close', () => clearInterval(more));
    };
    try {
      const rec = recorder();
      const handler = withTracing(
        async () => {
          const upstream = await requestSpan()!.generation('answer', { model: 'gpt-4o' }, chatCall);
          return new Response(upstream.body, { headers: { 'content-type': 'text/event-stream' } });
        },
        { exporter: rec.exporter },
      );
      stopFetch = instrumentServerFetch();
      const { ctx, drain } = workerCtx();
      const reader = (await handler(new Request('http://x/'), {}, ctx)).body!.getReader();
      await reader.read();
      await reader.read();
      const leftMs = Date.now();
      await reader.cancel();
      await drain();
      const gen = rec.spans().find((s) => s.name === 'answer')!;
      expect(gen.attrs).toMatchObject({ 'edgetrace.cancelled': true, 'langfuse.observation.status_message': 'cancelled' });
      expect(gen.status.code).not.toBe('error');
      expect(Math.abs(gen.endMs - leftMs)).toBeLessThan(200);
    } finally {
      rx.reply = before;
    }
  });

  /** A model SDK's stream object (openai's `Stream`): made at the headers, it reads the body when iterated. */
  class SdkStream {
    constructor(private readonly res: Response) {}
    async *[Symbol.asyncIterator](): AsyncGenerator<string> {
      const decoder = new TextDecoder();
      for await (const chunk of this.res.body as unknown as AsyncIterable<Uint8Array>) yield decoder.decode(chunk, { stream: true });
    }
  }

  it("a generation whose callback returns an SDK's stream object ends when that stream has been read, with its first token and usage", async () => {
    let returnedMs = 0;
    const { text, spans } = await throughModel(streamReply(ROLE_CHUNK, CHAT_REST), async () => {
      // As `openai.chat.completions.create({ stream: true })` inside the callback: it resolves at the headers.
      const stream = await requestSpan()!.generation('answer', { model: 'gpt-4o' }, async () => new SdkStream(await chatCall()));
      returnedMs = Date.now();
      let read = '';
      for await (const piece of stream) read += piece;
      return new Response(read);
    });
    expect(text).toContain('[DONE]');
    const gen = spans.find((s) => s.name === 'answer')!;
    expect(JSON.parse(gen.attrs[A.USAGE_DETAILS] as string)).toEqual({ input: 9, output: 2 });
    expect(Date.parse(gen.attrs[A.COMPLETION_START_TIME] as string) - gen.startMs).toBeGreaterThanOrEqual(60);
    // Ended with the stream's last event, after the callback returned, and not cut short by the request's end.
    expect(gen.endMs).toBeGreaterThanOrEqual(returnedMs + 50);
    expect(gen.attrs['edgetrace.unfinished']).toBeUndefined();
  });

  it("a generation whose callback returns a stream object at once, its request made after (Anthropic's messages.stream()), ends with that stream", async () => {
    const { text, spans } = await throughModel(streamReply(MESSAGE_START, MESSAGE_REST), async () => {
      const stream = requestSpan()!.generation('answer', { model: 'claude' }, () => streamObject(() => fetch(`${rx.base}/v1/messages`, { method: 'POST', body: '{}' })));
      return new Response(await stream.final);
    });
    expect(text).toContain('message_stop');
    const gen = spans.find((s) => s.name === 'answer')!;
    expect(JSON.parse(gen.attrs[A.USAGE_DETAILS] as string)).toEqual({ input: 25, output: 15 });
    expect(gen.attrs['gen_ai.response.model']).toBe('claude-sonnet-4-5');
    expect(gen.endMs - gen.startMs).toBeGreaterThanOrEqual(70);
    expect(gen.attrs['edgetrace.unfinished']).toBeUndefined();
    expect(byKind(spans, 'client')[0]!.parentId).toBe(gen.spanId);
  });

  it('a stream object whose request answers slowly, or is retried after a 429 and a pause, still ends with its stream', async () => {
    let refused = 0;
    const reply: Receiver['reply'] = (req, res) => {
      if (req.url === '/v1/messages?retry' && refused++ === 0) return void res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '1' }).end('{"type":"error"}');
      // The headers come after the 1 s a stream object waits for its request to start.
      setTimeout(() => streamReply(MESSAGE_START + MESSAGE_REST, '', 0)(req, res), req.url === '/v1/messages?slow' ? 1300 : 0);
    };
    for (const path of ['?slow', '?retry']) {
      const call = () => fetch(`${rx.base}/v1/messages${path}`, { method: 'POST', body: '{}' });
      const { text, spans } = await throughModel(reply, async () => {
        // An SDK retries a 429 after a pause longer than the wait.
        const stream = requestSpan()!.generation('answer', { model: 'claude' }, () =>
          streamObject(async () => {
            const first = await call();
            if (first.status !== 429) return first;
            await first.text();
            await new Promise((r) => setTimeout(r, 1200));
            return call();
          }),
        );
        return new Response(await stream.final);
      });
      expect(text).toContain('message_stop');
      const gen = spans.find((s) => s.name === 'answer')!;
      expect(JSON.parse(gen.attrs[A.USAGE_DETAILS] as string)).toEqual({ input: 25, output: 15 });
      expect(gen.endMs - gen.startMs).toBeGreaterThanOrEqual(1100);
    }
  }, 15_000);

  it("a generation whose SDK stream object is never read ends unfinished with its request, at the stream's headers", async () => {
    let headersMs = 0;
    const { text, spans } = await throughModel(streamReply(ROLE_CHUNK), async () => {
      await requestSpan()!.generation('dropped', { model: 'gpt-4o' }, async () => {
        const res = await chatCall();
        headersMs = Date.now();
        return new SdkStream(res);
      });
      return new Response('ok');
    });
    expect(text).toBe('ok');
    const gen = spans.find((s) => s.name === 'dropped')!;
    expect(gen.attrs['edgetrace.unfinished']).toBe(true);
    expect(gen.endMs - headersMs).toBeLessThan(OPEN_SPAN_GRACE_MS / 2);
  });

  it('keeps concurrent requests apart', async () => {
    const rec = recorder();
    stopFetch = instrumentServerFetch();
    const handler = withTracing(
      async (req: Request) => {
        const id = new URL(req.url).searchParams.get('id')!;
        for (let i = 0; i < 3; i++) {
          await new Promise((r) => setTimeout(r, Math.random() * 10));
          await (await fetch(`${rx.base}/c?id=${id}&i=${i}`)).text();
        }
        return new Response(id);
      },
      { exporter: rec.exporter },
    );
    const ids = Array.from({ length: 8 }, (_, i) => i);
    const traceOf = new Map<string, string>();
    await Promise.all(
      ids.map(async (i) => {
        const traceId = (i + 1).toString(16).padStart(32, 'a');
        traceOf.set(String(i), traceId);
        const res = await handler(new Request(`http://x/?id=${i}`, { headers: { traceparent: `00-${traceId}-${PARENT}-01` } }));
        await res.text();
      }),
    );
    expect(rx.received).toHaveLength(24);
    for (const r of rx.received) {
      const id = new URL(r.url, rx.base).searchParams.get('id')!;
      expect((r.headers.traceparent as string).split('-')[1]).toBe(traceOf.get(id));
    }
  });

  it('ends the span when a streamed body has been read, then exports once through waitUntil', async () => {
    const rec = recorder();
    let t = 1_000_000;
    const encoder = new TextEncoder();
    let pushed = 0;
    const handler = withTracing(
      () =>
        new Response(
          new ReadableStream<Uint8Array>({
            pull(controller) {
              t += 10;
              if (pushed === 3) controller.close();
              else controller.enqueue(encoder.encode(`chunk${pushed++}`));
            },
          }),
        ),
      { exporter: rec.exporter, now: () => t },
    );
    const { ctx, settle, pending } = workerCtx();
    const res = await handler(new Request('http://x/stream'), {}, ctx);
    expect(pending).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 10));
    expect(rec.calls).toHaveLength(0);
    const reader = res.body!.getReader();
    await reader.read();
    await reader.read();
    expect(rec.calls).toHaveLength(0);
    let text = '';
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    expect(text).toBe('chunk2');
    await settle();
    expect(rec.calls).toHaveLength(1);
    const [span] = rec.spans();
    expect(span!.attrs['http.response.body.size']).toBe(18);
    // Started before the first pull, ended after the last.
    expect(span!.endMs - span!.startMs).toBeGreaterThanOrEqual(40);
  });

  it('records a cancelled body and still exports', async () => {
    const rec = recorder();
    const handler = withTracing(
      () => new Response(new ReadableStream({ pull: (c) => c.enqueue(new Uint8Array(4)) })),
      { exporter: rec.exporter },
    );
    const { ctx, settle } = workerCtx();
    const res = await handler(new Request('http://x/'), {}, ctx);
    const reader = res.body!.getReader();
    await reader.read();
    await reader.cancel();
    await settle();
    expect(rec.spans()[0]!.attrs).toMatchObject({ 'edgetrace.response.cancelled': true, 'http.response.body.size': 4 });
  });

  it('records a client that goes away while a read waits for the next chunk as cancelled', async () => {
    const rec = recorder();
    let sent = 0;
    // A stream that sends one chunk and then waits, like an SSE stream between tokens.
    const handler = withTracing(
      () => new Response(new ReadableStream({ pull: (c) => (sent++ === 0 ? c.enqueue(new Uint8Array(4)) : new Promise(() => undefined)) })),
      { exporter: rec.exporter },
    );
    const { ctx, settle } = workerCtx();
    const res = await handler(new Request('http://x/'), {}, ctx);
    const reader = res.body!.getReader();
    await reader.read();
    const pending = reader.read();
    await new Promise((r) => setTimeout(r, 10));
    await reader.cancel();
    expect((await pending).done).toBe(true);
    await settle();
    expect(rec.spans()[0]!.attrs).toMatchObject({ 'edgetrace.response.cancelled': true, 'http.response.body.size': 4 });
  });

  it("counts a source that fails with the client's abort before the signal's listener ran as cancelled (Bun)", async () => {
    // An upstream body that follows request.signal: on Bun its read rejects with the abort
    // before the signal's listeners run. A signal whose listener never runs shows that order.
    const signal = { aborted: false, reason: undefined as unknown, addEventListener: () => undefined } as unknown as AbortSignal;
    let fail: (error: unknown) => void = () => undefined;
    const source = new ReadableStream<Uint8Array>({
      start: (c) => c.enqueue(new Uint8Array(3)),
      pull: () => new Promise((_, reject) => (fail = reject)),
    });
    const ends: BodyEnd[] = [];
    const reader = observeBody(source, (end) => void ends.push(end), 60_000, signal).getReader();
    await reader.read();
    const pending = reader.read().catch((error: unknown) => error);
    await new Promise((r) => setTimeout(r, 10));
    const abort = new DOMException('The connection was closed.', 'AbortError');
    Object.assign(signal, { aborted: true, reason: abort });
    fail(abort);
    expect(await pending).toBe(abort);
    expect(ends).toEqual([{ bytes: 3, cancelled: true }]);
    // An upstream failure while the client is still there stays an error.
    const broken = new ReadableStream<Uint8Array>({ pull: (c) => c.error(new TypeError('upstream reset')) });
    const errs: BodyEnd[] = [];
    await observeBody(broken, (end) => void errs.push(end), 60_000, new AbortController().signal).getReader().read().catch(() => undefined);
    expect(errs).toMatchObject([{ bytes: 0, error: { message: 'upstream reset' } }]);
  });

  it("exports through this.ctx.waitUntil when called as a Durable Object's fetch(request), without holding the response", async () => {
    let release: () => void = () => undefined;
    const calls: TelemetryRecord[][] = [];
    // An exporter that answers only when told: a response held for it would never come.
    const exporter: Exporter = {
      export: (records) => {
        calls.push([...records]);
        return new Promise((resolve) => (release = () => resolve({ ok: true })));
      },
    };
    const { ctx, pending } = workerCtx();
    // Options from the object's env, as fromEnv() would read its bindings.
    const durableObject = { ctx, env: { exporter }, fetch: withTracing(() => new Response('state'), (env: { exporter: Exporter }) => ({ exporter: env.exporter })) };
    const res = await durableObject.fetch(new Request('http://do/counter'));
    expect(await res.text()).toBe('state');
    expect(pending.length).toBeGreaterThan(0);
    await vi.waitFor(() => expect(calls).toHaveLength(1));
    release();
    await Promise.all(pending);
    expect(calls.flat().map((r) => (r as SpanRecord).name)).toEqual(['GET']);
  });

  it('without waitUntil, exports before returning a response without body', async () => {
    const rec = recorder();
    const handler = withTracing(() => new Response(null, { status: 204 }), { exporter: rec.exporter });
    await handler(new Request('http://x/'));
    expect(rec.calls).toHaveLength(1);
  });

  it('without waitUntil, exports before the body completes', async () => {
    const rec = recorder();
    let release: () => void = () => undefined;
    const exporter: Exporter = {
      export: (records) =>
        new Promise((resolve) => {
          release = () => {
            rec.calls.push([...records]);
            resolve({ ok: true });
          };
        }),
    };
    const handler = withTracing(() => new Response('body'), { exporter });
    const res = await handler(new Request('http://x/'));
    const reader = res.body!.getReader();
    expect((await reader.read()).value).toBeDefined();
    let done = false;
    const last = reader.read().then((r) => (done = r.done));
    await new Promise((r) => setTimeout(r, 20));
    // The last read waits for the export.
    expect(done).toBe(false);
    release();
    await last;
    expect(done).toBe(true);
    expect(rec.calls).toHaveLength(1);
  });

  it('without waitUntil, holds a response for an export that hangs only FLUSH_HOLD_MS', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    let exports = 0;
    const exporter: Exporter = { export: () => (exports++, new Promise<never>(() => undefined)) };
    let returned = false;
    const noBody = withTracing(() => new Response(null, { status: 204 }), { exporter });
    const answered = noBody(new Request('http://x/')).then(() => (returned = true));
    await vi.advanceTimersByTimeAsync(FLUSH_HOLD_MS - 100);
    expect(exports).toBe(1);
    expect(returned).toBe(false);
    await vi.advanceTimersByTimeAsync(200);
    await answered;
    expect(returned).toBe(true);

    let read: string | undefined;
    const withBody = withTracing(() => new Response('body'), { exporter });
    const reading = (await withBody(new Request('http://x/'))).text().then((t) => (read = t));
    await vi.advanceTimersByTimeAsync(FLUSH_HOLD_MS - 100);
    expect(read).toBeUndefined();
    await vi.advanceTimersByTimeAsync(200);
    await reading;
    expect(read).toBe('body');
  });

  it('exports spans and scores the handler makes in its own ctx.waitUntil work, without another request', async () => {
    const rec = recorder();
    const handler = withTracing(
      (_request: Request, _env: unknown, ctx: { waitUntil(p: Promise<unknown>): void }) => {
        const root = requestSpan()!;
        ctx.waitUntil(
          (async () => {
            await new Promise((r) => setTimeout(r, 20));
            root.span('post-process', () => undefined);
            root.score('late', 1);
          })(),
        );
        return new Response('accepted', { status: 202 });
      },
      { exporter: rec.exporter },
    );
    const { ctx, drain } = workerCtx();
    await (await handler(new Request('http://x/'), {}, ctx)).text();
    await drain();
    const names = rec.calls.flat().map((r) => (r.rec === 'span' ? r.name : `score:${r.name}`));
    expect(names).toContain('post-process');
    expect(names).toContain('score:late');
    expect(rec.spans().filter((r) => r.kind === 'server')).toHaveLength(1);
  });

  it('keeps what a generation records just after the body ends: a model stream that died, its error written to the client, then thrown', async () => {
    const rec = recorder();
    const handler = withTracing(
      async () => {
        const { readable, writable } = new TransformStream<Uint8Array, Uint8Array>();
        const w = writable.getWriter();
        requestSpan()!
          .generation('model call', { model: 'm' }, async () => {
            await w.write(new TextEncoder().encode('data: {"delta":"Hel"}\n\n'));
            try {
              throw new TypeError('terminated');
            } finally {
              await w.write(new TextEncoder().encode('data: {"error":"model failed"}\n\n'));
              await w.close();
            }
          })
          .catch(() => undefined);
        return new Response(readable, { headers: { 'content-type': 'text/event-stream' } });
      },
      { exporter: rec.exporter },
    );
    const { ctx, drain } = workerCtx();
    await (await handler(new Request('http://x/', { method: 'POST' }), {}, ctx)).text();
    await drain();
    const gen = rec.spans().find((r) => r.name === 'model call')!;
    expect(gen.status).toEqual({ code: 'error', message: 'terminated' });
    expect(gen.attrs['langfuse.observation.level']).toBe('ERROR');
    expect(gen.attrs['edgetrace.unfinished']).toBeUndefined();
    expect(gen.events.map((e) => e.name)).toEqual(['exception']);
  });

  it('ends a span the handler left open as unfinished, at the request\'s end, once the grace has passed', async () => {
    const rec = recorder();
    const handler = withTracing(
      () => {
        requestSpan()!.startSpan('forgotten');
        return new Response('ok');
      },
      { exporter: rec.exporter },
    );
    const { ctx, drain } = workerCtx();
    const started = Date.now();
    await (await handler(new Request('http://x/'), {}, ctx)).text();
    await drain();
    expect(Date.now() - started).toBeGreaterThanOrEqual(OPEN_SPAN_GRACE_MS - 50);
    const server = rec.spans().find((r) => r.kind === 'server')!;
    const forgotten = rec.spans().find((r) => r.name === 'forgotten')!;
    expect(forgotten.attrs['edgetrace.unfinished']).toBe(true);
    expect(forgotten.endMs).toBe(server.endMs);
  });

  it('ends a generation whose stream the client left (a stop button) as cancelled, not only unfinished', async () => {
    const rec = recorder();
    const handler = withTracing(
      () => {
        // The README's recipe: the generation ends in the stream's flush, which a cancel never reaches.
        const gen = requestSpan()!.startGeneration('answer', { model: 'gpt-4o-mini' });
        let sent = 0;
        const tokens = new ReadableStream({ pull: (c) => (sent++ === 0 ? c.enqueue(new TextEncoder().encode('data: hi\n\n')) : new Promise(() => undefined)) });
        return new Response(tokens.pipeThrough(new TransformStream({ flush: () => void gen.end() })), { headers: { 'content-type': 'text/event-stream' } });
      },
      { exporter: rec.exporter },
    );
    const { ctx, drain } = workerCtx();
    const reader = (await handler(new Request('http://x/'), {}, ctx)).body!.getReader();
    await reader.read();
    await reader.cancel();
    await drain();
    const gen = rec.spans().find((r) => r.name === 'answer')!;
    expect(gen.attrs).toMatchObject({ 'edgetrace.unfinished': true, 'edgetrace.cancelled': true, 'langfuse.observation.status_message': 'cancelled' });
    expect(gen.status.code).not.toBe('error');
  });

  it('records a model call the handler finishes in its own ctx.waitUntil work seconds after the response', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const rec = recorder();
    const handler = withTracing(
      (_request: Request, _env: unknown, ctx: { waitUntil(p: Promise<unknown>): void }) => {
        ctx.waitUntil(
          requestSpan()!.generation('background answer', { model: 'gpt-4o' }, async (gen) => {
            await new Promise((resolve) => setTimeout(resolve, 5000));
            gen.setUsage({ input: 100, output: 20 });
          }),
        );
        return new Response('accepted', { status: 202 });
      },
      { exporter: rec.exporter },
    );
    const { ctx, drain } = workerCtx();
    await (await handler(new Request('http://x/'), {}, ctx)).text();
    await vi.advanceTimersByTimeAsync(5000);
    await drain();
    const gen = rec.spans().find((r) => r.name === 'background answer')!;
    expect(gen.attrs['edgetrace.unfinished']).toBeUndefined();
    expect(JSON.parse(gen.attrs['langfuse.observation.usage_details'] as string)).toEqual({ input: 100, output: 20 });
  });

  it('ends a span left open beside the handler\'s own waitUntil work when that work is done, not later', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const rec = recorder();
    const handler = withTracing(
      (_request: Request, _env: unknown, ctx: { waitUntil(p: Promise<unknown>): void }) => {
        requestSpan()!.startSpan('forgotten');
        ctx.waitUntil(new Promise((resolve) => setTimeout(resolve, 50)));
        return new Response('ok');
      },
      { exporter: rec.exporter },
    );
    const { ctx, drain } = workerCtx();
    await (await handler(new Request('http://x/'), {}, ctx)).text();
    await vi.advanceTimersByTimeAsync(60);
    await drain();
    expect(rec.spans().find((r) => r.name === 'forgotten')!.attrs['edgetrace.unfinished']).toBe(true);
  });

  it('hands the handler a ctx whose other methods still run on the platform\'s object', async () => {
    class Ctx {
      #kept: Promise<unknown>[] = [];
      #passed = false;
      waitUntil(p: Promise<unknown>): void {
        this.#kept.push(p);
      }
      passThroughOnException(): void {
        this.#passed = true;
      }
      get passed(): boolean {
        return this.#passed;
      }
      settle(): Promise<unknown> {
        return Promise.all(this.#kept);
      }
    }
    const rec = recorder();
    const ctx = new Ctx();
    const handler = withTracing(
      (_request: Request, _env: unknown, c: Ctx) => {
        c.passThroughOnException();
        const { waitUntil } = c;
        waitUntil(Promise.resolve());
        return new Response(String(c.passed));
      },
      { exporter: rec.exporter },
    );
    expect(await (await handler(new Request('http://x/'), {}, ctx)).text()).toBe('true');
    await ctx.settle();
    expect(ctx.passed).toBe(true);
  });

  it('exports a score the handler gives in its ctx.waitUntil work, with no span ending after it', async () => {
    const rec = recorder();
    const handler = withTracing(
      (_request: Request, _env: unknown, ctx: { waitUntil(p: Promise<unknown>): void }) => {
        const root = requestSpan()!;
        // An evaluation that only scores the answer once the response is out.
        ctx.waitUntil(new Promise((r) => setTimeout(r, 20)).then(() => root.score('judge', 0.8)));
        return new Response('answer');
      },
      { exporter: rec.exporter },
    );
    const { ctx, drain } = workerCtx();
    await (await handler(new Request('http://x/'), {}, ctx)).text();
    await drain();
    const scores = rec.calls.flat().filter((r) => r.rec === 'score');
    expect(scores.map((r) => r.name)).toEqual(['judge']);
  });

  it('ends the span as cancelled when the request signal says the client went away, though the read never settles', async () => {
    const rec = recorder();
    // An upstream that never sends again: the pending read stays pending, and no cancel() comes.
    const upstream = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(new TextEncoder().encode('data: first\n\n'));
      },
    });
    const handler = withTracing(() => new Response(upstream, { headers: { 'content-type': 'text/event-stream' } }), { exporter: rec.exporter });
    const client = new AbortController();
    const { ctx, settle } = workerCtx();
    const res = await handler(new Request('http://x/', { signal: client.signal }), {}, ctx);
    const reader = res.body!.getReader();
    await reader.read();
    void reader.read();
    client.abort();
    await settle();
    const [span] = rec.spans();
    expect(span!.attrs['edgetrace.response.cancelled']).toBe(true);
    expect(span!.attrs['http.response.body.size']).toBe(13);
  });

  it('marks a request whose handler stopped with the client abort as cancelled, and a bug after it as failed', async () => {
    const rec = recorder();
    const handler = withTracing(
      async (request: Request) => {
        // A proxied model call that follows the request's signal, as the runtimes stop it when the client leaves.
        await new Promise((_, reject) => request.signal.addEventListener('abort', () => reject(request.signal.reason)));
        return new Response('never');
      },
      { exporter: rec.exporter },
    );
    const client = new AbortController();
    const { ctx, settle } = workerCtx();
    const pending = handler(new Request('http://x/', { signal: client.signal }), {}, ctx);
    client.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    // Bun and Deno abort it with errors of their own: the signal's reason, whatever its name.
    const closed = new Error('The connection was closed.');
    const other = new AbortController();
    const second = handler(new Request('http://x/', { signal: other.signal }), {}, ctx);
    other.abort(closed);
    await expect(second).rejects.toBe(closed);
    const buggy = withTracing(
      async (request: Request) => {
        await new Promise((resolve) => request.signal.addEventListener('abort', resolve));
        throw new TypeError('a bug after the client left');
      },
      { exporter: rec.exporter },
    );
    const third = new AbortController();
    const failing = buggy(new Request('http://x/bug', { signal: third.signal }), {}, ctx);
    third.abort();
    await expect(failing).rejects.toThrow('a bug after the client left');
    await settle();
    const [left, gone, bug] = rec.spans();
    for (const span of [left!, gone!]) {
      expect(span.attrs['edgetrace.response.cancelled']).toBe(true);
      expect(span.status.code).not.toBe('error');
      expect(span.attrs['error.type']).toBeUndefined();
      expect(span.events).toEqual([]);
    }
    expect(bug!.status).toMatchObject({ code: 'error', message: 'a bug after the client left' });
    expect(bug!.attrs['error.type']).toBe('TypeError');
  });

  it('lets the body source hear of a disconnect before the span ends, as a cancel would', async () => {
    const log: string[] = [];
    const source = new ReadableStream<Uint8Array>({
      pull: () => new Promise(() => undefined),
      // What a cancel handler records at once (the playground's "client went away") is in the span.
      cancel: () => void log.push('source heard'),
    });
    const client = new AbortController();
    let ended: (end: BodyEnd) => void = () => undefined;
    const end = new Promise<BodyEnd>((r) => (ended = r));
    const body = observeBody(source, (e) => (log.push('span ended'), ended(e)), 60_000, client.signal);
    void body.getReader().read();
    client.abort();
    expect((await end).cancelled).toBe(true);
    expect(log).toEqual(['source heard', 'span ended']);
  });

  it('records a thrown error, exports, and rethrows it unchanged', async () => {
    const rec = recorder();
    const boom = new RangeError('boom');
    const handler = withTracing(
      async () => {
        throw boom;
      },
      { exporter: rec.exporter },
    );
    const { ctx, settle } = workerCtx();
    await expect(handler(new Request('http://x/'), {}, ctx)).rejects.toBe(boom);
    await settle();
    const [span] = rec.spans();
    expect(span!.status).toEqual({ code: 'error', message: 'boom' });
    expect(span!.attrs['error.type']).toBe('RangeError');
    expect(span!.events[0]).toMatchObject({ name: 'exception', attrs: { 'exception.type': 'RangeError', 'exception.message': 'boom' } });
  });

  it('leaves the exception event of an error a span of the handler recorded on that span; the request fails with its message', async () => {
    const rec = recorder();
    const boom = new TypeError('tool failed');
    const handler = withTracing(
      async () => {
        await requestSpan()!.span('tool', async () => {
          throw boom;
        });
      },
      { exporter: rec.exporter },
    );
    const { ctx, settle } = workerCtx();
    await expect(handler(new Request('http://x/'), {}, ctx)).rejects.toBe(boom);
    await settle();
    const tool = rec.spans().find((x) => x.name === 'tool')!;
    const server = rec.spans().find((x) => x.kind === 'server')!;
    expect(tool.events.map((e) => e.name)).toEqual(['exception']);
    expect(server.status).toEqual({ code: 'error', message: 'tool failed' });
    expect(server.attrs['error.type']).toBe('TypeError');
    expect(server.events).toEqual([]);
  });

  it('rethrows a thrown value it cannot read (a revoked proxy) unchanged, and still exports the span', async () => {
    const rec = recorder();
    const { proxy: revoked, revoke } = Proxy.revocable({}, {});
    revoke();
    const handler = withTracing(
      async () => {
        throw revoked;
      },
      { exporter: rec.exporter },
    );
    const { ctx, settle } = workerCtx();
    let thrown: unknown;
    await handler(new Request('http://x/'), {}, ctx).catch((error: unknown) => {
      thrown = error;
    });
    expect(thrown === revoked).toBe(true);
    await settle();
    const [span] = rec.spans();
    expect(span!.status.code).toBe('error');
    expect(span!.attrs['error.type']).toBe('_OTHER');
  });

  it('marks 5xx as errors and leaves 4xx unset', async () => {
    const rec = recorder();
    const handler = withTracing((req: Request) => new Response('x', { status: Number(new URL(req.url).searchParams.get('s')) }), { exporter: rec.exporter });
    await (await handler(new Request('http://x/?s=503'))).text();
    await (await handler(new Request('http://x/?s=404'))).text();
    const [a, b] = rec.spans();
    expect(a!.status).toEqual({ code: 'error', message: 'HTTP 503' });
    expect(a!.attrs['error.type']).toBe('503');
    expect(b!.status).toEqual({ code: 'unset' });
  });

  it('ends at once for HEAD, 204 and 304, keeping the headers', async () => {
    const rec = recorder();
    const handler = withTracing(() => new Response('ignored', { headers: { etag: '"1"' } }), { exporter: rec.exporter, responseHeaders: ['traceresponse'] });
    const res = await handler(new Request('http://x/', { method: 'HEAD' }));
    expect(rec.calls).toHaveLength(1);
    expect(res.headers.get('etag')).toBe('"1"');
    expect(res.headers.get('traceresponse')).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-03$/);
  });

  it('adds traceresponse and Server-Timing when asked', async () => {
    const rec = recorder();
    const handler = withTracing(() => new Response('x', { headers: { 'server-timing': 'db;dur=5' } }), { exporter: rec.exporter, responseHeaders: true });
    const res = await handler(new Request('http://x/', { headers: { traceparent: TRACEPARENT } }));
    await res.text();
    const span = rec.spans()[0]!;
    const expected = `00-${TRACE}-${span.spanId}-01`;
    expect(res.headers.get('traceresponse')).toBe(expected);
    expect(res.headers.get('server-timing')).toBe(`db;dur=5, traceparent;desc="${expected}"`);
  });

  for (const [platform, name] of [
    ['Vercel', '@vercel/request-context'],
    ["Next.js's edge runtime (next start)", '@next/request-context'],
  ]) {
    it(`uses ${platform}'s request-context waitUntil when the handler has no ctx`, async () => {
      const rec = recorder();
      const pending: Promise<unknown>[] = [];
      const key = Symbol.for(name!);
      (globalThis as Record<symbol, unknown>)[key] = { get: () => ({ waitUntil: (p: Promise<unknown>) => pending.push(p) }) };
      try {
        const handler = withTracing(() => new Response('x'), { exporter: rec.exporter });
        const res = await handler(new Request('http://x/'));
        expect(pending).toHaveLength(1);
        await res.text();
        await Promise.all(pending);
        expect(rec.calls).toHaveLength(1);
      } finally {
        delete (globalThis as Record<symbol, unknown>)[key];
      }
    });
  }

  it("continues the current span for a request answered in-process inside another (SvelteKit's event.fetch), unless it brings a traceparent", async () => {
    const rec = recorder();
    const inner = withTracing(() => new Response('inner'), { exporter: rec.exporter, waitUntil: (p) => void p, spanName: () => 'inner' });
    const outer = withTracing(
      async () => {
        const span = requestSpan()!;
        await span.span('load', async () => {
          await (await inner(new Request('http://x/api/threads/42'))).text();
          await (await inner(new Request('http://x/api/other', { headers: { traceparent: TRACEPARENT } }))).text();
        });
        return new Response('page');
      },
      { exporter: rec.exporter, waitUntil: (p) => void p, spanName: () => 'outer' },
    );
    await (await outer(new Request('http://x/'))).text();
    await vi.waitFor(() => expect(byKind(rec.spans(), 'server')).toHaveLength(3));
    const servers = byKind(rec.spans(), 'server');
    const page = servers.find((x) => x.name === 'outer')!;
    const load = rec.spans().find((x) => x.name === 'load')!;
    const [nested, sent] = servers.filter((x) => x.name === 'inner');
    expect(nested).toMatchObject({ traceId: page.traceId, parentId: load.spanId });
    expect(sent).toMatchObject({ traceId: TRACE, parentId: PARENT });
  });

  it('starts a trace of its own for a handler called in-process for another origin, or after the request that started the work has ended', async () => {
    const rec = recorder();
    const job = withTracing(() => new Response('done'), { exporter: rec.exporter, waitUntil: (p) => void p, spanName: (r) => `job ${new URL(r.url).host}` });
    let later: Promise<unknown> = Promise.resolve();
    const outer = withTracing(
      async () => {
        await (await job(new Request('http://internal/job'))).text();
        // A poller the request started, running on after it in its async context.
        later = new Promise((r) => setTimeout(r, 20)).then(async () => (await job(new Request('http://x/job'))).text());
        return new Response('page');
      },
      { exporter: rec.exporter, waitUntil: (p) => void p, spanName: () => 'outer' },
    );
    await (await outer(new Request('http://x/'))).text();
    await later;
    await vi.waitFor(() => expect(byKind(rec.spans(), 'server')).toHaveLength(3));
    const servers = byKind(rec.spans(), 'server');
    const page = servers.find((x) => x.name === 'outer')!;
    for (const name of ['job internal', 'job x']) {
      const span = servers.find((x) => x.name === name)!;
      expect(span.traceId, name).not.toBe(page.traceId);
      expect(span.parentId, name).toBeUndefined();
    }
  });

  it('says once when the handler answers something that is not a Response (a framework middleware result), and nothing for no answer', async () => {
    const rec = recorder();
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const quiet = withTracing(async () => undefined, { exporter: rec.exporter, waitUntil: (p) => void p });
      expect(await quiet(new Request('http://x/'))).toBeUndefined();
      expect(warn).not.toHaveBeenCalled();
      const result = { request: null, pathname: '/', response: new Response('ok') };
      const handler = withTracing(async () => result as unknown as Response, { exporter: rec.exporter, waitUntil: (p) => void p });
      expect(await handler(new Request('http://x/'))).toBe(result);
      expect(await handler(new Request('http://x/'))).toBe(result);
      expect(warn.mock.calls.map((c) => String(c[0]))).toEqual([
        "[edgetrace] withTracing(): the handler returned an object, not a Response (a framework's middleware result? return its `.response`): the request's span ends at once, with no status, and no trace-linking headers go out.",
      ]);
    } finally {
      warn.mockRestore();
    }
  });

  it("uses a Next.js middleware event's waitUntil (the second argument)", async () => {
    const rec = recorder();
    const pending: Promise<unknown>[] = [];
    const handler = withTracing((_req: Request, _event: unknown) => new Response(null, { status: 204 }), { exporter: rec.exporter });
    await handler(new Request('http://x/'), { waitUntil: (p: Promise<unknown>) => pending.push(p) });
    expect(pending).toHaveLength(1);
  });

  it('exports once per request, with all of its spans', async () => {
    const rec = recorder();
    const tracer = createServerTracer({ exporter: rec.exporter });
    const handler = withTracing(
      async () => {
        const span = requestSpan()!;
        await span.span('work', async (s) => {
          s.setAttribute('k', 1);
          await new Promise((r) => setTimeout(r, 1));
          requestSpan()!.setAttribute('inner', true);
        });
        return new Response('ok');
      },
      { tracer },
    );
    for (let i = 0; i < 3; i++) {
      await serveOnce(handler);
    }
    expect(rec.calls).toHaveLength(3);
    for (const call of rec.calls) {
      expect(call.map((r) => (r as SpanRecord).name).sort()).toEqual(['GET', 'work']);
      const work = call.find((r) => (r as SpanRecord).name === 'work') as SpanRecord;
      // requestSpan() inside a child span is that child.
      expect(work.attrs).toMatchObject({ k: 1, inner: true });
    }
  });

  it('takes options from env per request (Workers), and fromEnv by default', async () => {
    const handler = withTracing(() => new Response('x'));
    const env = { TRACING_MODE: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: rx.base, OTEL_SERVICE_NAME: 'from-env' };
    await serveOnce(handler, new Request('http://x/'), env);
    const [req] = await rx.waitFor(1, '/v1/traces');
    const body = JSON.parse(req!.body);
    expect(body.resourceSpans[0].resource.attributes).toContainEqual({ key: 'service.name', value: { stringValue: 'from-env' } });
    expect(body.resourceSpans[0].scopeSpans[0].spans[0].kind).toBe(2);
  });

  it('reads the process environment where the second argument is not an env (Deno info, Bun server)', async () => {
    vi.stubEnv('OTEL_EXPORTER_OTLP_ENDPOINT', rx.base);
    vi.stubEnv('OTEL_SERVICE_NAME', 'from-process');
    try {
      const handler = withTracing(() => new Response('x'));
      // Deno.serve passes connection info, Bun.serve the server: neither holds variables.
      const info = { remoteAddr: { transport: 'tcp', hostname: '127.0.0.1', port: 50000 }, completed: Promise.resolve() };
      await (await handler(new Request('http://x/'), info)).text();
      const [req] = await rx.waitFor(1, '/v1/traces');
      expect(JSON.parse(req!.body).resourceSpans[0].resource.attributes).toContainEqual({ key: 'service.name', value: { stringValue: 'from-process' } });
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('takes OTEL_SERVICE_NAME from a fromEnv() exporter passed explicitly, unless serviceName is given', async () => {
    const env = { TRACING_MODE: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: rx.base, OTEL_SERVICE_NAME: 'svc-from-env' };
    const names: unknown[] = [];
    for (const opts of [{ exporter: fromEnv(env) }, { exporter: fromEnv(env), serviceName: 'explicit' }]) {
      await serveOnce(withTracing(() => new Response('x'), opts), new Request('http://x/'));
      const [req] = await rx.waitFor(names.length + 1, '/v1/traces').then((all) => all.slice(-1));
      const attrs = JSON.parse(req!.body).resourceSpans[0].resource.attributes as { key: string; value: { stringValue?: string } }[];
      names.push(attrs.find((a) => a.key === 'service.name')?.value.stringValue);
    }
    expect(names).toEqual(['svc-from-env', 'explicit']);
  });

  it("puts a fromEnv() exporter's LANGFUSE_RELEASE on every span as langfuse.release, unless release is given", async () => {
    const env = { TRACING_MODE: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: rx.base, LANGFUSE_RELEASE: ' v2.1.24 ' };
    const releases: unknown[] = [];
    for (const opts of [{ exporter: fromEnv(env) }, { exporter: fromEnv(env), release: 'explicit' }, { exporter: fromEnv({ ...env, LANGFUSE_RELEASE: '' }) }]) {
      await serveOnce(withTracing(() => new Response('x'), opts), new Request('http://x/'));
      const [req] = await rx.waitFor(releases.length + 1, '/v1/traces').then((all) => all.slice(-1));
      const span = JSON.parse(req!.body).resourceSpans[0].scopeSpans[0].spans[0] as { attributes: { key: string; value: { stringValue?: string } }[] };
      releases.push(span.attributes.find((a) => a.key === 'langfuse.release')?.value.stringValue);
    }
    expect(releases).toEqual(['v2.1.24', 'explicit', undefined]);
  });

  it("samples new traces by a fromEnv() exporter's OTEL_TRACES_SAMPLER, follows a caller's flag, and yields to sampleRate", async () => {
    const env = { TRACING_MODE: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: rx.base, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0' };
    const sent: string[] = [];
    const serve = async (opts: Parameters<typeof withTracing>[1], path: string, headers: Record<string, string> = {}) => {
      await serveOnce(withTracing(() => new Response('x'), opts), new Request(`http://x${path}`, { headers }));
    };
    await serve({ exporter: fromEnv(env) }, '/new');
    await serve({ exporter: fromEnv(env) }, '/continued', { traceparent: TRACEPARENT });
    await serve({ exporter: fromEnv(env), sampleRate: 1 }, '/explicit');
    // Workers: the variables come from env at the first request.
    await serveOnce(withTracing(() => new Response('x')), new Request('http://x/workers'), env);
    for (const req of await rx.waitFor(2, '/v1/traces')) {
      for (const rs of JSON.parse(req.body).resourceSpans) for (const ss of rs.scopeSpans) for (const sp of ss.spans) sent.push(sp.attributes.find((a: { key: string }) => a.key === 'url.path').value.stringValue);
    }
    expect(sent.sort()).toEqual(['/continued', '/explicit']);
  });

  it('names the runtime and carries OTEL_RESOURCE_ATTRIBUTES on the resource, under explicit options', async () => {
    const env = {
      TRACING_MODE: 'otlp',
      OTEL_EXPORTER_OTLP_ENDPOINT: rx.base,
      OTEL_RESOURCE_ATTRIBUTES: 'service.name=from-attrs,service.version=9,cloud.region=eu%2Dwest,process.runtime.name=custom',
    };
    const seen: Record<string, unknown>[] = [];
    const cases = [{ exporter: fromEnv(env) }, { exporter: fromEnv({ ...env, OTEL_SERVICE_NAME: 'svc' }), serviceVersion: '10', resource: { 'cloud.region': 'us' } }];
    for (const opts of cases) {
      await serveOnce(withTracing(() => new Response('x'), opts), new Request('http://x/'));
      const [req] = await rx.waitFor(seen.length + 1, '/v1/traces').then((all) => all.slice(-1));
      const attrs = JSON.parse(req!.body).resourceSpans[0].resource.attributes as { key: string; value: { stringValue?: string } }[];
      seen.push(Object.fromEntries(attrs.map((a) => [a.key, a.value.stringValue])));
    }
    // OTEL_RESOURCE_ATTRIBUTES is read as given (also over the detected runtime name); the
    // runtime's version stays, and explicit options win over the variable.
    expect(seen[0]).toMatchObject({ 'service.name': 'from-attrs', 'service.version': '9', 'cloud.region': 'eu-west', 'process.runtime.name': 'custom', 'process.runtime.version': process.versions.node });
    expect(seen[1]).toMatchObject({ 'service.name': 'svc', 'service.version': '10', 'cloud.region': 'us' });
    // Without the variable, the runtime names itself.
    await serveOnce(withTracing(() => new Response('x'), { exporter: fromEnv({ TRACING_MODE: 'otlp', OTEL_EXPORTER_OTLP_ENDPOINT: rx.base }) }), new Request('http://x/'));
    const [last] = await rx.waitFor(3, '/v1/traces').then((all) => all.slice(-1));
    expect(JSON.parse(last!.body).resourceSpans[0].resource.attributes).toContainEqual({ key: 'process.runtime.name', value: { stringValue: 'nodejs' } });
  });

  it('keeps tracing and propagating, sending nothing, and says so once, when env variables are invalid', async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const handler = withTracing(async (_req: Request, env: { n: number }) => {
      await (await fetch(`${rx.base}/downstream`)).text();
      return new Response(String(env.n));
    });
    const env = { n: 7, TRACING_MODE: 'langfuse', LANGFUSE_PUBLIC_KEY: 'pk-lf-1' };
    const traceparent = `00-${TRACE}-00f067aa0ba902b7-01`;
    expect(await (await handler(new Request('http://x/', { headers: { traceparent } }), env)).text()).toBe('7');
    expect(await (await handler(new Request('http://x/'), env)).text()).toBe('7');
    expect(error).toHaveBeenCalledTimes(1);
    expect(error.mock.calls[0]![0]).toBe('[edgetrace] withTracing(): spans are not sent (trace headers still are):');
    expect(String(error.mock.calls[0]![1])).toMatch(/^fromEnv\(\): .*LANGFUSE_SECRET_KEY/);
    // The downstream service still hears which trace it is part of.
    const calls = rx.received.filter((r) => r.url === '/downstream');
    expect(calls).toHaveLength(2);
    expect(String(calls[0]!.headers.traceparent)).toMatch(new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`));
    expect(String(calls[1]!.headers.traceparent)).toMatch(new RegExp(`^00-(?!${TRACE})[0-9a-f]{32}-[0-9a-f]{16}-0[13]$`));
    // And nothing was exported anywhere.
    expect(rx.received.filter((r) => r.url !== '/downstream')).toEqual([]);
  });

  it('serves requests untraced, and says so once, when the options function fails', async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const handler = withTracing(
      (_req: Request, env: { n: number }) => new Response(String(env.n)),
      () => {
        throw new TypeError('no options today');
      },
    );
    const env = { n: 7 };
    expect(await (await handler(new Request('http://x/'), env)).text()).toBe('7');
    expect(await (await handler(new Request('http://x/'), env)).text()).toBe('7');
    expect(error).toHaveBeenCalledTimes(1);
    expect(error.mock.calls[0]).toEqual(['[edgetrace] withTracing(): tracing is off for this handler:', 'no options today']);
  });

  it('throws at wrap time for invalid static options', () => {
    expect(() => withTracing(() => new Response(), { exporter: {} as Exporter })).toThrow(/exporter/);
    expect(() => withTracing('nope' as never)).toThrow(/handler/);
  });

  it('names a bad propagateTo, responseHeaders or tracer option at wrap time, with or without an exporter', () => {
    const h = () => new Response();
    const rec = recorder();
    for (const extra of [{}, { exporter: rec.exporter }]) {
      expect(() => withTracing(h, { ...extra, propagateTo: 5 as never })).toThrowError('withTracing(): "propagateTo" must be true, false, a function of the URL, or an array of URL strings and RegExps, got 5');
      expect(() => withTracing(h, { ...extra, propagateTo: ['https://api.example/', ''] })).toThrowError('"propagateTo[1]" must be a URL with its scheme ("https://api.example.com") or a RegExp, got "".');
      // A bare host (other SDKs take one) or a path has nothing to resolve against on a server, and would match nothing.
      expect(() => withTracing(h, { ...extra, propagateTo: ['api.example.com'] })).toThrowError('"propagateTo[0]" must be a URL with its scheme');
      expect(() => withTracing(h, { ...extra, propagateTo: ['/v1/'] })).toThrowError('"propagateTo[0]" must be a URL with its scheme');
      expect(() => withTracing(h, { ...extra, responseHeaders: 'yes' as never })).toThrowError('"responseHeaders" must be true, false, or an array');
      expect(() => withTracing(h, { ...extra, responseHeaders: ['traceparent' as never] })).toThrowError('"responseHeaders"');
      // A route template given as a string, where a function of the request is wanted.
      expect(() => withTracing(h, { ...extra, route: '/users/:id' as never })).toThrowError('withTracing(): "route" must be a function of the request that returns the route template, got "/users/:id"');
      expect(() => withTracing(h, { ...extra, spanName: 'users' as never })).toThrowError('"spanName" must be a function');
      expect(() => withTracing(h, { ...extra, onRequest: 1 as never })).toThrowError('"onRequest" must be a function');
      expect(() => withTracing(h, { ...extra, waitUntil: true as never })).toThrowError('"waitUntil" must be a function');
      expect(() => withTracing(h, { ...extra, traceFetch: 'no' as never })).toThrowError('"traceFetch" must be true or false');
    }
    expect(() => withTracing(h, { tracer: {} as never })).toThrowError('withTracing(): "tracer" must be a tracer from createServerTracer() or createTracer()');
    // Env comes with the first request; the tracer's own options do not wait for it.
    expect(() => withTracing(h, { sampleRate: 2 })).toThrowError('withTracing(): "sampleRate" must be a number from 0 to 1');
    expect(() => withTracing(h, { propagateTo: ['https://api.example/', /internal/], responseHeaders: ['traceresponse'], sampleRate: 0.5 })).not.toThrow();
    expect(() => withTracing(h, { propagateTo: (url) => url.startsWith('https://'), responseHeaders: false })).not.toThrow();
  });

  it('names a bad hook in options from env at the first request, where tracing turns off and the request is served', async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      const rec = recorder();
      const handler = withTracing(() => new Response('served'), () => ({ exporter: rec.exporter, route: '/users/:id' as never }));
      for (let i = 0; i < 2; i++) expect(await (await handler(new Request('https://api.test/users/1'))).text()).toBe('served');
      expect(error).toHaveBeenCalledTimes(1);
      expect(error.mock.calls[0]).toEqual(['[edgetrace] withTracing(): tracing is off for this handler:', 'withTracing(): "route" must be a function of the request that returns the route template, got "/users/:id".']);
      expect(rec.spans()).toHaveLength(0);
    } finally {
      error.mockRestore();
    }
  });

  it('records a frozen clock as zero-length spans, never negative', async () => {
    const rec = recorder();
    const handler = withTracing(
      async () => {
        await (await fetch(`${rx.base}/frozen`)).text();
        return new Response('x');
      },
      { exporter: rec.exporter, now: () => 1_700_000_000_000 },
    );
    stopFetch = instrumentServerFetch();
    await serveOnce(handler);
    const spans = rec.spans();
    expect(spans).toHaveLength(2);
    for (const s of spans) {
      expect(s.startMs).toBe(1_700_000_000_000);
      expect(s.endMs).toBe(1_700_000_000_000);
    }
  });

  it('keeps `this` and every argument of the handler', async () => {
    const rec = recorder();
    const worker = {
      name: 'w',
      fetch: withTracing(function (this: { name: string }, _req: Request, env: { v: number }, ctx: { tag: string }) {
        return new Response(`${this.name} ${env.v} ${ctx.tag}`);
      }, { exporter: rec.exporter }),
    };
    const res = await worker.fetch(new Request('http://x/'), { v: 1 }, { tag: 't' });
    expect(await res.text()).toBe('w 1 t');
  });

  it('does not touch fetch with traceFetch: false, and tracedFetch still traces', async () => {
    stopFetch?.();
    const before = globalThis.fetch;
    const rec = recorder();
    const handler = withTracing(
      async () => {
        await (await fetch(`${rx.base}/plain`)).text();
        await (await tracedFetch(`${rx.base}/explicit`)).text();
        return new Response('x');
      },
      { exporter: rec.exporter, traceFetch: false },
    );
    await serveOnce(handler, new Request('http://x/', { headers: { traceparent: TRACEPARENT } }));
    expect(globalThis.fetch).toBe(before);
    expect(rx.received[0]!.headers.traceparent).toBeUndefined();
    expect(rx.received[1]!.headers.traceparent).toMatch(new RegExp(`^00-${TRACE}-`));
    expect(byKind(rec.spans(), 'client')).toHaveLength(1);
  });

  it('traces a service binding through tracedFetcher(): a CLIENT span, and the callee continues the trace', async () => {
    const rec = recorder();
    const { ctx, drain } = workerCtx();
    const callee = withTracing(() => new Response('checked'), { exporter: rec.exporter, serviceName: 'auth' });
    // A binding's fetch, as workerd gives it: a method that needs its object.
    const binding = {
      name: 'AUTH',
      fetch(this: { name: string }, input: Request | string | URL, init?: RequestInit): Promise<Response> {
        if (this?.name !== 'AUTH') throw new TypeError('Illegal invocation');
        return callee(new Request(input, init), {}, ctx);
      },
    };
    const caller = withTracing(
      async () => new Response(await (await tracedFetcher(binding)('https://auth/check')).text()),
      { exporter: rec.exporter, serviceName: 'web', traceFetch: false },
    );
    const res = await caller(new Request('http://x/', { headers: { traceparent: TRACEPARENT } }), {}, ctx);
    expect(await res.text()).toBe('checked');
    await drain();
    const spans = rec.spans();
    const client = byKind(spans, 'client')[0]!;
    const servers = byKind(spans, 'server');
    const auth = servers.find((s) => s.resource.attrs['service.name'] === 'auth')!;
    expect(client.traceId).toBe(TRACE);
    expect(auth.traceId).toBe(TRACE);
    expect(auth.parentId).toBe(client.spanId);
    expect(() => tracedFetcher({} as never)).toThrow(/tracedFetcher\(\): give it an object with a fetch method/);
  });

  it("wraps fetch again where Next's dev server put its own back at a rebuild, and leaves a library's wrapper over ours as it is", async () => {
    const rec = recorder();
    const handler = withTracing(
      async () => {
        await (await fetch(`${rx.base}/after-reset`)).text();
        return new Response('x');
      },
      { exporter: rec.exporter },
    );
    const request = () => new Request('http://x/', { headers: { traceparent: TRACEPARENT } });
    // A remover taken before the reset still removes the wrapper put back after it.
    const stop = instrumentServerFetch();
    const flag = Symbol.for('next-patch');
    const g = globalThis as unknown as Record<symbol, unknown>;
    // What Next 15 and later do at each rebuild under next dev: the runtime's fetch back, patched
    // anew (over its dedupe layer, which names nothing), and the global flag that stops a second patch.
    const dedupe = (input: RequestInfo | URL, init?: RequestInit) => NATIVE_FETCH(input, init);
    globalThis.fetch = Object.assign((input: RequestInfo | URL, init?: RequestInit) => dedupe(input, init), { __nextPatched: true, _nextOriginalFetch: dedupe });
    g[flag] = true;
    try {
      await serveOnce(handler, request());
      expect(rx.received.at(-1)!.headers.traceparent).toBeDefined();
      expect(byKind(rec.spans(), 'client')).toHaveLength(1);
      // A library's wrapper put over ours (naming what it wraps) is kept.
      const ours = globalThis.fetch;
      const library = Object.assign((input: RequestInfo | URL, init?: RequestInit) => ours(input, init), { __original: ours });
      globalThis.fetch = library;
      try {
        await serveOnce(handler, request());
        expect(globalThis.fetch).toBe(library);
        expect(byKind(rec.spans(), 'client')).toHaveLength(2);
        expect(rx.received.at(-1)!.headers.traceparent).toBeDefined();
      } finally {
        globalThis.fetch = ours;
      }
      stop();
      expect(globalThis.fetch).not.toBe(ours);
      expect(globalThis.fetch).toHaveProperty('_nextOriginalFetch', dedupe);
    } finally {
      delete g[flag];
    }
  });

  it("does not pile wrappers up with Next 14, which patches over ours before each route's request", async () => {
    const rec = recorder();
    const depths: number[] = [];
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = Infinity;
    const before = globalThis.fetch;
    // The network, as deep as the call stack of wrappers above it.
    const network = ((_input: RequestInfo | URL) => {
      depths.push(new Error().stack!.split('\n').length);
      return Promise.resolve(new Response('ok'));
    }) as typeof fetch;
    // Next 14's patchFetch() at each app route request: skipped only when the global function carries its flag.
    const patchFetch14 = () => {
      const current = globalThis.fetch as typeof fetch & { __nextPatched?: boolean };
      if (current.__nextPatched) return;
      const dedupe = (input: RequestInfo | URL, init?: RequestInit) => current(input, init);
      globalThis.fetch = Object.assign((input: RequestInfo | URL, init?: RequestInit) => dedupe(input, init), { __nextPatched: true, _nextOriginalFetch: dedupe });
    };
    try {
      // Ours over the network first, as at a process's start, and Next's patch over ours.
      instrumentServerFetch()();
      globalThis.fetch = network;
      const handler = withTracing(
        async () => {
          await fetch('http://upstream.example/x');
          return new Response('x');
        },
        { exporter: rec.exporter },
      );
      stopFetch = instrumentServerFetch();
      for (let i = 0; i < 30; i++) {
        patchFetch14();
        await serveOnce(handler, new Request('http://x/', { headers: { traceparent: TRACEPARENT } }));
      }
      expect(depths).toHaveLength(30);
      expect(depths.at(-1)).toBe(depths[1]);
      expect(byKind(rec.spans(), 'client')).toHaveLength(30);
    } finally {
      Error.stackTraceLimit = limit;
      // Ours off the fake network, for the tests after this one to wrap the real fetch again.
      instrumentServerFetch()();
      globalThis.fetch = before;
    }
  });

  it('a global fetch that throws when looked at stops no request', async () => {
    const before = globalThis.fetch;
    const handler = withTracing(() => new Response('ran'), { exporter: recorder().exporter });
    stopFetch = instrumentServerFetch();
    globalThis.fetch = new Proxy(before, {
      has() {
        throw new Error('has trap');
      },
    });
    try {
      const res = await handler(new Request('http://x/'), {}, workerCtx().ctx);
      expect(await res.text()).toBe('ran');
    } finally {
      globalThis.fetch = before;
    }
  });

  it('keeps traceFetch: false when another handler of the process patched fetch', async () => {
    const rec = recorder();
    const h = async () => {
      await (await fetch(`${rx.base}/plain`)).text();
      return new Response('x');
    };
    const off = withTracing(h, { exporter: rec.exporter, traceFetch: false });
    // A second handler with the default patches the global for the whole process.
    withTracing(h, { exporter: recorder().exporter });
    stopFetch = instrumentServerFetch();
    await serveOnce(off, new Request('http://x/', { headers: { traceparent: TRACEPARENT } }));
    expect(rx.received.at(-1)!.url).toBe('/plain');
    expect(rx.received.at(-1)!.headers.traceparent).toBeUndefined();
    expect(byKind(rec.spans(), 'client')).toHaveLength(0);
    expect(byKind(rec.spans(), 'server')).toHaveLength(1);
  });

  it('injects only where propagateTo allows, and still records the call', async () => {
    const rec = recorder();
    stopFetch = instrumentServerFetch();
    const handler = withTracing(
      async () => {
        await (await fetch(`${rx.base}/inside`)).text();
        await (await fetch(`${rx.base.replace('127.0.0.1', 'localhost')}/outside`)).text();
        return new Response('x');
      },
      { exporter: rec.exporter, propagateTo: [rx.base] },
    );
    await serveOnce(handler);
    expect(rx.received.find((r) => r.url === '/inside')!.headers.traceparent).toBeDefined();
    expect(rx.received.find((r) => r.url === '/outside')!.headers.traceparent).toBeUndefined();
    expect(byKind(rec.spans(), 'client')).toHaveLength(2);
  });

  it('matches a propagateTo origin exactly, and a g-flag RegExp every time', async () => {
    const rec = recorder();
    const seen: string[] = [];
    stopFetch?.();
    vi.stubGlobal('fetch', async (input: RequestInfo | URL, init?: RequestInit) => {
      if (new Headers(init?.headers).has('traceparent')) seen.push(String(input));
      return new Response('ok');
    });
    const handler = withTracing(
      async () => {
        for (const url of ['https://api.example.com/a', 'https://api.example.com.evil.test/b', 'https://api.example.company.io/c']) await tracedFetch(url);
        for (let i = 0; i < 4; i++) await tracedFetch(`https://models.test/${i}`);
        return new Response('x');
      },
      // traceFetch: false, so the global fetch this test stubs is not wrapped for later tests.
      { exporter: rec.exporter, traceFetch: false, propagateTo: ['https://api.example.com', /^https:\/\/models\.test\//g] },
    );
    try {
      await serveOnce(handler);
    } finally {
      vi.unstubAllGlobals();
    }
    expect(seen).toEqual(['https://api.example.com/a', 'https://models.test/0', 'https://models.test/1', 'https://models.test/2', 'https://models.test/3']);
  });

  it('keeps the method and body of fetch(url, request), the proxy idiom', async () => {
    const rec = recorder();
    stopFetch = instrumentServerFetch();
    const handler = withTracing(
      async (request: Request) => {
        await (await fetch(`${rx.base}/proxied`, request)).text();
        return new Response('x');
      },
      { exporter: rec.exporter },
    );
    await serveOnce(handler, new Request('http://x/in', { method: 'POST', body: 'payload' }));
    const got = rx.received.find((r) => r.url === '/proxied')!;
    expect(got.method).toBe('POST');
    expect(got.body).toBe('payload');
    expect(got.headers.traceparent).toBeDefined();
  });

  it('never passes a proxied tracestate on beside the traceparent it injects', async () => {
    const rec = recorder();
    stopFetch = instrumentServerFetch();
    const handler = withTracing(
      async (request: Request) => {
        await (await fetch(new Request(`${rx.base}/proxied-ts`, request))).text();
        return new Response('x');
      },
      { exporter: rec.exporter },
    );
    // Rejected traceparent: its tracestate must not reach the new trace.
    await serveOnce(handler, new Request('http://x/in', { headers: { traceparent: 'garbage', tracestate: 'vendor=secret' } }));
    // Valid traceparent with a malformed tracestate: dropped, not passed on.
    await serveOnce(handler, new Request('http://x/in', { headers: { traceparent: TRACEPARENT, tracestate: 'FOO=1' } }));
    // Valid pair: the span's own tracestate goes on.
    await serveOnce(handler, new Request('http://x/in', { headers: { traceparent: TRACEPARENT, tracestate: 'vendor=abc' } }));
    const got = rx.received.filter((r) => r.url === '/proxied-ts').map((r) => r.headers.tracestate);
    expect(got).toEqual([undefined, undefined, 'vendor=abc']);
  });

  it('records URLs without their credentials', async () => {
    const rec = recorder();
    stopFetch?.();
    vi.stubGlobal('fetch', async () => new Response('ok'));
    const handler = withTracing(
      async () => {
        await tracedFetch('https://admin:hunter2@api.test/x');
        return new Response('x');
      },
      { exporter: rec.exporter, traceFetch: false },
    );
    try {
      await serveOnce(handler, new Request('http://x/in'));
    } finally {
      vi.unstubAllGlobals();
    }
    const urls = rec.spans().map((s) => String(s.attrs['url.full']));
    expect(urls.sort()).toEqual(['http://x/in', 'https://api.test/x']);
  });

  it('answers and rethrows as the handler did when the platform waitUntil throws', async () => {
    const rec = recorder();
    const ctx = { waitUntil: () => { throw new Error('waitUntil failed'); }, passThroughOnException() {} };
    const ok = withTracing(async () => new Response('fine'), { exporter: rec.exporter, traceFetch: false });
    expect(await (await ok(new Request('http://x/'), {}, ctx)).text()).toBe('fine');
    const boom = new Error('handler failed');
    const failing = withTracing(async () => { throw boom; }, { exporter: rec.exporter, traceFetch: false });
    await expect(failing(new Request('http://x/'), {}, ctx)).rejects.toBe(boom);
  });

  it('ends the watch of a body nobody reads in time, and still serves it to a late reader', async () => {
    const ends: BodyEnd[] = [];
    const body = observeBody(new Response('late but whole').body!, (end) => void ends.push(end), 20);
    await new Promise((r) => setTimeout(r, 60));
    expect(ends).toEqual([{ bytes: 0, unread: true }]);
    expect(await new Response(body).text()).toBe('late but whole');
    expect(ends).toHaveLength(1);
  });

  it('records a failed outgoing fetch and passes the rejection on unchanged', async () => {
    const rec = recorder();
    stopFetch = instrumentServerFetch();
    let caught: unknown;
    const handler = withTracing(
      async () => {
        try {
          await fetch('http://127.0.0.1:1/refused');
        } catch (error) {
          caught = error;
        }
        return new Response('x');
      },
      { exporter: rec.exporter },
    );
    await serveOnce(handler);
    expect(caught).toBeInstanceOf(TypeError);
    const [client] = byKind(rec.spans(), 'client');
    expect(client!.status.code).toBe('error');
    expect(client!.attrs['error.type']).toBe('TypeError');
  });

  it('leaves fetch outside traced requests untouched', async () => {
    stopFetch = instrumentServerFetch();
    await (await fetch(`${rx.base}/outside-request`)).text();
    expect(rx.received[0]!.headers.traceparent).toBeUndefined();
  });
});

describe('withTracing with options from env', () => {
  it('makes one tracer per env object, and stops at a few when the second argument is new per request', async () => {
    let calls = 0;
    const handler = withTracing(
      () => new Response(null, { status: 204 }),
      () => {
        calls++;
        return { exporter: recorder().exporter };
      },
    );
    const env = { A: '1' };
    for (let i = 0; i < 3; i++) await handler(new Request('http://x/'), env);
    expect(calls).toBe(1);
    for (let i = 0; i < 20; i++) await handler(new Request('http://x/'), { info: i });
    expect(calls).toBe(8);
  });
});

describe('withTracing with odd responses', () => {
  it('passes on a response whose body is already locked, and still records the span', async () => {
    const rec = recorder();
    const handler = withTracing(
      () => {
        const res = new Response('x');
        res.body!.getReader();
        return res;
      },
      { exporter: rec.exporter },
    );
    const res = await handler(new Request('http://x/'));
    expect(res.status).toBe(200);
    expect(rec.spans()).toHaveLength(1);
  });

  it('proxies a fetched response (immutable headers) and adds its headers', async () => {
    const rx2 = await startReceiver();
    try {
      const rec = recorder();
      const handler = withTracing(() => fetch(`${rx2.base}/upstream`), { exporter: rec.exporter, responseHeaders: ['server-timing'], traceFetch: false });
      const res = await handler(new Request('http://x/'));
      expect(await res.text()).toBe('{}');
      expect(res.headers.get('server-timing')).toMatch(/^traceparent;desc="00-/);
      expect(res.headers.get('content-type')).toBe('application/json');
    } finally {
      await rx2.close();
    }
  });

  it("replaces a proxied upstream's traceresponse and Server-Timing traceparent with its own", async () => {
    const upstream = `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`;
    const rec = recorder();
    const handler = withTracing(
      () => new Response('x', { headers: { traceresponse: upstream, 'server-timing': `db;dur=5, traceparent;desc="${upstream}", app;dur=9` } }),
      { exporter: rec.exporter, responseHeaders: true },
    );
    const res = await handler(new Request('http://x/', { headers: { traceparent: TRACEPARENT } }));
    const own = res.headers.get('traceresponse')!;
    expect(own).toMatch(new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`));
    expect(res.headers.get('server-timing')).toBe(`db;dur=5, app;dur=9, traceparent;desc="${own}"`);
  });

  it('passes on a value that is not a Response, and returns a 101 untouched', async () => {
    const rec = recorder();
    const odd = withTracing((() => 'nope') as unknown as () => Response, { exporter: rec.exporter });
    expect(await odd(new Request('http://x/'))).toBe('nope');
    const upgrade = { status: 101, headers: new Headers(), body: null, webSocket: {} } as unknown as Response;
    const ws = withTracing(() => upgrade, { exporter: rec.exporter, responseHeaders: true });
    expect(await ws(new Request('http://x/'))).toBe(upgrade);
    expect(rec.spans()).toHaveLength(2);
    expect(rec.spans()[1]!.attrs['http.response.status_code']).toBe(101);
  });
});

describe('the root entry’s helpers inside withTracing', () => {
  afterEach(() => setTracer(undefined));

  it('record into the request’s trace: traced(), getTracer(), currentSpan() and otelTracer()', async () => {
    const rec = recorder();
    const search = traced('retriever', async function search(q: string) {
      await new Promise((r) => setTimeout(r, 1));
      return [q];
    });
    let current: string | undefined;
    const handler = withTracing(
      async () => {
        await search('cats');
        getTracer().span('step', () => undefined);
        current = currentSpan()?.name;
        otelTracer().startSpan('library call').end();
        return new Response('ok');
      },
      { exporter: rec.exporter },
    );
    await serveOnce(handler, new Request('http://x/chat', { headers: { traceparent: TRACEPARENT } }));

    const [server] = byKind(rec.spans(), 'server');
    expect(current).toBe(server!.name);
    const children = rec.spans().filter((s) => s !== server);
    expect(children.map((s) => s.name).sort()).toEqual(['library call', 'search', 'step']);
    for (const s of children) expect(s).toMatchObject({ traceId: TRACE, parentId: server!.spanId });
    expect(children.find((s) => s.name === 'search')!.attrs[A.OBSERVATION_TYPE]).toBe('retriever');
  });

  it('keep two handlers’ requests apart, and use the global tracer outside a request', async () => {
    const a = recorder();
    const b = recorder();
    const global = recorder();
    setTracer(createTracer({ processors: [{ onEnd: (r) => void global.exporter.export([r]) }] }));
    const work = traced('tool', async function work(tag: string) {
      await new Promise((r) => setTimeout(r, 2));
      return tag;
    });
    const ha = withTracing(async () => new Response(await work('a')), { exporter: a.exporter });
    const hb = withTracing(async () => new Response(await work('b')), { exporter: b.exporter });
    await Promise.all([serveOnce(ha), serveOnce(hb), serveOnce(ha)]);
    await work('outside');

    expect(a.spans().filter((s) => s.name === 'work')).toHaveLength(2);
    expect(b.spans().filter((s) => s.name === 'work')).toHaveLength(1);
    for (const rec of [a, b]) {
      const servers = new Set(byKind(rec.spans(), 'server').map((s) => s.spanId));
      for (const s of rec.spans().filter((s) => s.name === 'work')) expect(servers.has(s.parentId!)).toBe(true);
    }
    expect(global.spans().map((s) => s.name)).toEqual(['work']);
  });
});

describe("withTracing with a Worker's handlers object", () => {
  const CRON = '*/5 * * * *';
  const SCHEDULED_AT = Date.UTC(2026, 10, 20, 12, 5);
  const message = (body: unknown) => ({ id: 'm', timestamp: new Date(), attempts: 1, body, ack() {}, retry() {} });

  it('traces a Cron Trigger as a trace of its own, with its fetch calls as children, exported through waitUntil', async () => {
    const rec = recorder();
    const seen: unknown[] = [];
    const handlers = {
      port: 8787,
      async fetch() {
        return new Response('ok');
      },
      async scheduled(controller: { cron: string; scheduledTime: number }, env: { URL: string }) {
        seen.push(this);
        await new Promise((r) => setTimeout(r, 2));
        await fetch(`${env.URL}/sync`, { method: 'POST', body: '{}' });
      },
    };
    const worker = withTracing(handlers, { exporter: rec.exporter, serviceName: 'cron' });
    expect(worker.port).toBe(8787);
    const { ctx, drain } = workerCtx();
    await worker.scheduled({ cron: CRON, scheduledTime: SCHEDULED_AT }, { URL: rx.base }, ctx);
    await drain();
    // Called on the wrapped object, the handler runs on the app's own.
    expect(seen).toHaveLength(1);
    expect(seen[0]).toBe(handlers);
    expect(rec.calls).toHaveLength(1);
    const [root] = byKind(rec.spans(), 'server');
    expect(root).toMatchObject({ name: `scheduled ${CRON}`, parentId: undefined, status: { code: 'unset' } });
    expect(root!.attrs).toMatchObject({ 'faas.trigger': 'timer', 'faas.cron': CRON, 'faas.time': '2026-11-20T12:05:00.000Z' });
    const [client] = byKind(rec.spans(), 'client');
    expect(client).toMatchObject({ traceId: root!.traceId, parentId: root!.spanId });
    expect(rx.received[0]!.headers.traceparent).toMatch(new RegExp(`^00-${root!.traceId}-${client!.spanId}-0[13]$`));
    // fetch still works and is traced as before.
    await serveOnce(worker.fetch, new Request('http://x/', { headers: { traceparent: TRACEPARENT } }));
    expect(byKind(rec.spans(), 'server').map((s) => s.traceId)).toEqual([root!.traceId, TRACE]);
  });

  it('records a failing job, passes the throw on, and still exports', async () => {
    const rec = recorder();
    const worker = withTracing(
      {
        scheduled: async () => {
          throw new TypeError('sync failed');
        },
      },
      { exporter: rec.exporter },
    );
    const { ctx, drain } = workerCtx();
    await expect(worker.scheduled({ cron: CRON, scheduledTime: SCHEDULED_AT }, {}, ctx)).rejects.toThrow('sync failed');
    await drain();
    const [root] = rec.spans();
    expect(root).toMatchObject({ name: `scheduled ${CRON}`, status: { code: 'error' } });
    expect(root!.attrs['error.type']).toBe('TypeError');
    expect(root!.events.map((e) => e.name)).toEqual(['exception']);
  });

  it('continues the trace a single queued message carries, and links a batch to each sender', async () => {
    const rec = recorder();
    const bodies: unknown[] = [];
    const worker = withTracing(
      {
        queue: async (batch: { queue: string; messages: { body: unknown }[] }) => {
          for (const m of batch.messages) bodies.push(m.body);
          requestSpan()?.span('summarise', () => undefined);
        },
      },
      { exporter: rec.exporter },
    );
    const { ctx, drain } = workerCtx();
    await worker.queue({ queue: 'jobs', messages: [message({ job: 1, traceparent: TRACEPARENT, tracestate: 'a=1' })] }, {}, ctx);
    const OTHER = `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01`;
    await worker.queue({ queue: 'jobs', messages: [message({ job: 2, traceparent: TRACEPARENT }), message('plain text'), message({ job: 3, traceparent: OTHER }), message({ traceparent: 'junk' }), message({ job: 4, traceparent: OTHER })] }, {}, ctx);
    await drain();
    expect(bodies).toHaveLength(6);
    const [one, batch] = byKind(rec.spans(), 'consumer');
    expect(one).toMatchObject({ name: 'process jobs', traceId: TRACE, parentId: PARENT, remoteParent: true, links: [] });
    expect(one!.traceState).toBe('a=1');
    expect(one!.attrs).toMatchObject({ 'faas.trigger': 'pubsub', 'messaging.operation.type': 'process', 'messaging.destination.name': 'jobs', 'messaging.batch.message_count': 1 });
    expect(batch!.traceId).not.toBe(TRACE);
    expect(batch!.parentId).toBeUndefined();
    expect(batch!.links.map((l) => `${l.traceId}-${l.spanId}`)).toEqual([`${TRACE}-${PARENT}`, `${'ab'.repeat(16)}-${'cd'.repeat(8)}`]);
    // Two messages sent from one span make one link.
    expect(batch!.attrs['messaging.batch.message_count']).toBe(5);
    // The handler's own spans hang under the batch's.
    const children = rec.spans().filter((s) => s.name === 'summarise');
    expect(children.map((s) => s.parentId)).toEqual([one!.spanId, batch!.spanId]);
  });

  it('gives each message of a batch its sender’s trace through withMessage, with its fetch calls and failures', async () => {
    const rec = recorder();
    const seen: (string | undefined)[] = [];
    const OTHER = `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01`;
    const worker = withTracing(
      {
        queue: async (batch: { queue: string; messages: { id: string; body: unknown; retry(): void }[] }) => {
          requestSpan()?.span('before', () => undefined);
          for (const m of batch.messages) {
            try {
              await withMessage(m, async () => {
                seen.push(requestSpan()?.spanId, requestTrace()?.spanId);
                await new Promise((r) => setTimeout(r, 1));
                await (await fetch(`${rx.base}/job`)).text();
                if ((m.body as { fail?: boolean }).fail) throw new RangeError('bad job');
              });
            } catch {
              m.retry();
            }
          }
          // Synchronous work gets its message trace too.
          withMessage(batch.messages[0]!, () => requestSpan()?.span('sync', () => undefined));
        },
      },
      { exporter: rec.exporter },
    );
    const { ctx, drain } = workerCtx();
    await worker.queue(
      { queue: 'jobs', messages: [{ ...message({ traceparent: TRACEPARENT }), id: 'm1' }, { ...message({ traceparent: OTHER, fail: true }), id: 'm2' }, { ...message('plain'), id: 'm3' }] },
      {},
      ctx,
    );
    await drain();
    const consumers = byKind(rec.spans(), 'consumer');
    const batch = consumers.find((s) => s.attrs['messaging.batch.message_count'] === 3)!;
    const [m1, m2, m3, sync] = consumers.filter((s) => s !== batch);
    // Each message is a CONSUMER span in its sender's trace (a new one without), linked to the batch.
    expect(m1).toMatchObject({ name: 'process jobs', traceId: TRACE, parentId: PARENT, remoteParent: true });
    expect(m2).toMatchObject({ traceId: 'ab'.repeat(16), parentId: 'cd'.repeat(8), status: { code: 'error' } });
    expect(m2!.attrs['error.type']).toBe('RangeError');
    expect(m3!.parentId).toBeUndefined();
    expect(new Set([m3!.traceId, batch.traceId, TRACE]).size).toBe(3);
    for (const m of [m1, m2, m3]) expect(m!.links.map((l) => l.spanId)).toEqual([batch.spanId]);
    expect([m1, m2, m3].map((m) => m!.attrs['messaging.message.id'])).toEqual(['m1', 'm2', 'm3']);
    // Inside, requestSpan() and requestTrace() are the message's span.
    expect(seen).toEqual([m1, m1, m2, m2, m3, m3].map((m) => m!.spanId));
    expect(m1!.attrs).toMatchObject({ 'messaging.destination.name': 'jobs', 'messaging.operation.type': 'process' });
    // Each message's fetch is its child and carries its trace.
    const clients = byKind(rec.spans(), 'client');
    expect(clients.map((c) => c.parentId)).toEqual([m1!.spanId, m2!.spanId, m3!.spanId]);
    const sentTo = rx.received.filter((r) => r.url === '/job').slice(-3).map((r) => r.headers.traceparent?.slice(3, 35));
    expect(sentTo).toEqual([TRACE, 'ab'.repeat(16), m3!.traceId]);
    // Work outside withMessage stays the batch's; the synchronous call had its own message span.
    expect(rec.spans().find((s) => s.name === 'before')?.parentId).toBe(batch.spanId);
    expect(sync).toMatchObject({ traceId: TRACE, parentId: PARENT });
    expect(rec.spans().find((s) => s.name === 'sync')?.parentId).toBe(sync!.spanId);
  });

  it('runs a batch of one message in the batch\'s trace, once, even when it throws; and as is outside a batch', async () => {
    const rec = recorder();
    let runs = 0;
    const worker = withTracing(
      {
        queue: async (batch: { queue: string; messages: { body: unknown }[] }) =>
          withMessage(batch.messages[0]!, () => {
            runs++;
            requestSpan()?.span('job', () => 'done');
            if ((batch.messages[0]!.body as { fail?: boolean }).fail) throw new RangeError('charge failed');
          }),
      },
      { exporter: rec.exporter },
    );
    const { ctx, drain } = workerCtx();
    // With and without a sender: one trace each, the batch's.
    await worker.queue({ queue: 'jobs', messages: [message({ traceparent: TRACEPARENT })] }, {}, ctx);
    await worker.queue({ queue: 'jobs', messages: [message('plain')] }, {}, ctx);
    // A job that throws synchronously runs once, and its error is the batch's.
    await expect(worker.queue({ queue: 'jobs', messages: [message({ traceparent: TRACEPARENT, fail: true })] }, {}, ctx)).rejects.toThrow('charge failed');
    await drain();
    expect(runs).toBe(3);
    const consumers = byKind(rec.spans(), 'consumer');
    expect(consumers).toHaveLength(3);
    expect(rec.spans().filter((s) => s.name === 'job').map((s) => s.parentId)).toEqual(consumers.map((c) => c.spanId));
    expect(consumers[2]!.status).toMatchObject({ code: 'error' });
    // Outside a traced batch (no handler, or a request's): the callback's result, nothing recorded.
    expect(withMessage(message({ traceparent: TRACEPARENT }), () => 42)).toBe(42);
    await expect(withMessage({ body: null }, async () => { throw new Error('x'); })).rejects.toThrow('x');
    const web = withTracing(async () => new Response(String(withMessage(message({}), () => requestSpan()?.name))), { exporter: rec.exporter });
    expect(await (await web(new Request('http://w/'), {}, ctx)).text()).toBe('GET');
  });

  it('exports a message trace that settles after the handler returned, through waitUntil', async () => {
    const rec = recorder();
    let release!: () => void;
    const later = new Promise<void>((r) => (release = r));
    const worker = withTracing(
      {
        queue: async (batch: { queue: string; messages: { body: unknown }[] }, _env: unknown, c: { waitUntil(p: Promise<unknown>): void }) => {
          for (const m of batch.messages) c.waitUntil(withMessage(m, () => later));
        },
      },
      { exporter: rec.exporter },
    );
    const { ctx, drain } = workerCtx();
    await worker.queue({ queue: 'jobs', messages: [message({ traceparent: TRACEPARENT }), message('plain')] }, {}, ctx);
    release();
    await drain();
    const consumers = byKind(rec.spans(), 'consumer');
    // The batch's span, and both messages' though they ended after it.
    expect(consumers).toHaveLength(3);
    expect(consumers.filter((c) => c.traceId === TRACE)).toHaveLength(1);
  });

  it('waits for the export where there is no waitUntil, and shares one setup between the handlers', async () => {
    const rec = recorder();
    let setups = 0;
    const env = { KEY: 'k' };
    const worker = withTracing(
      { fetch: async () => new Response('ok'), scheduled: async () => undefined },
      () => {
        setups++;
        return { exporter: rec.exporter };
      },
    );
    await worker.scheduled({ cron: CRON }, env);
    // Exported before the handler's promise settled, with nothing to keep the runtime alive.
    expect(rec.calls).toHaveLength(1);
    await (await worker.fetch(new Request('http://x/'), env)).text();
    expect(setups).toBe(1);
  });

  it('takes an app object whose fetch is a method of its class, run on the object itself', async () => {
    const rec = recorder();
    class App {
      #greeting = 'hi';
      served = 0;
      async fetch(request: Request) {
        this.served++;
        return new Response(`${this.greet()} ${new URL(request.url).pathname}`);
      }
      greet() {
        return this.#greeting;
      }
    }
    const original = new App();
    const app = withTracing(original, { exporter: rec.exporter });
    const { ctx, settle } = workerCtx();
    expect(await (await app.fetch(new Request('http://x/chat'), {}, ctx)).text()).toBe('hi /chat');
    await settle();
    expect(app).toBeInstanceOf(App);
    // One object: state written by the handler reads the same through the wrapper, and its
    // other methods still reach its private fields.
    expect(original.served).toBe(1);
    expect(app.served).toBe(1);
    expect(app.greet()).toBe('hi');
    expect(byKind(rec.spans(), 'server')).toHaveLength(1);
  });

  it('takes handlers behind a getter, on a frozen prototype or on a frozen object', async () => {
    const rec = recorder();
    const proto = Object.freeze({
      fetch: async () => new Response('frozen'),
    });
    const frozen = withTracing(Object.create(proto) as { fetch(request: Request): Promise<Response> }, { exporter: rec.exporter });
    await serveOnce(frozen.fetch);
    class Lazy {
      get fetch() {
        return async () => new Response('got');
      }
    }
    const lazy = withTracing(new Lazy(), { exporter: rec.exporter });
    await serveOnce(lazy.fetch);
    const sealed = withTracing(Object.freeze({ fetch: async () => new Response('sealed'), port: 8787 }), { exporter: rec.exporter });
    await serveOnce(sealed.fetch);
    expect(sealed.port).toBe(8787);
    expect(byKind(rec.spans(), 'server')).toHaveLength(3);
  });

  it("reads a Durable Object's this.env when workerd passes undefined for env and ctx", async () => {
    const rec = recorder();
    const seen: unknown[] = [];
    const { ctx, drain } = workerCtx();
    const room = {
      env: { EXPORTER: rec.exporter },
      ctx,
      fetch: withTracing(async () => new Response('ok'), (env: { EXPORTER: typeof rec.exporter }) => {
        seen.push(env);
        return { exporter: env.EXPORTER };
      }),
    };
    await (await room.fetch(new Request('http://do/'), undefined, undefined)).text();
    await drain();
    expect(seen).toEqual([room.env]);
    expect(byKind(rec.spans(), 'server')).toHaveLength(1);
  });

  it('keeps a handler already wrapped as it is, with its own options, and refuses a class, which workerd would construct', async () => {
    const inner = recorder();
    const outer = recorder();
    const fetch = withTracing(async () => new Response('ok'), { exporter: inner.exporter, route: () => '/api/users/:id' });
    const worker = withTracing({ fetch, scheduled: async () => undefined }, { exporter: outer.exporter });
    await serveOnce(worker.fetch);
    expect(byKind(inner.spans(), 'server').map((s) => s.name)).toEqual(['GET /api/users/:id']);
    expect(outer.spans()).toEqual([]);
    // A Cron controller the runtime left out is still a run.
    await worker.scheduled(undefined, {});
    expect(outer.spans().map((s) => s.name)).toEqual(['scheduled']);
    class Entry {
      fetch() {
        return new Response('ok');
      }
    }
    expect(() => withTracing(Entry as never)).toThrow('withTracing(): "handler" is a class; wrap its methods instead');
  });

  it('exports a long run as it goes, so its spans stay within the queue bound', async () => {
    const rec = recorder();
    const worker = withTracing(
      {
        async scheduled() {
          for (let i = 0; i < 1000; i++) {
            requestSpan()!.span(`item-${i}`, () => undefined);
            if (i % 100 === 0) await new Promise((r) => setTimeout(r, 0));
          }
        },
      },
      { exporter: rec.exporter, batch: { maxBatchSize: 100, maxQueueSize: 300 } },
    );
    const { ctx, drain } = workerCtx();
    await worker.scheduled({ cron: CRON }, {}, ctx);
    await drain();
    const names = new Set(rec.spans().map((s) => s.name));
    expect(names.size).toBe(1001);
    expect(names.has('item-0')).toBe(true);
    expect(rec.calls.length).toBeGreaterThan(3);
  });

  it("says how to serve a handler on Node when it is called with Node's request, once, without debug", async () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const got: unknown[] = [];
    // createServer(withTracing(handler)), without toNodeListener.
    const listener = withTracing(async (request: Request) => (got.push(request), new Response('hi')), { exporter: recorder().exporter }) as unknown as (req: unknown, res: unknown) => Promise<unknown>;
    const req = new IncomingMessage(new Socket());
    req.url = '/hi';
    await listener(req, {});
    await listener(req, {});
    expect(got).toEqual([req, req]);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(String(warn.mock.calls[0]![0])).toBe(
      "[edgetrace] withTracing(): the handler was called with Node's request (http.IncomingMessage), not a fetch Request, so requests are not traced. Serve a fetch-style handler, (request) => Response, with createServer(toNodeListener(withTracing(handler))); Express, Connect, Koa, Fastify and other (req, res) listeners are traced with withNodeTracing: createServer(withNodeTracing(app)), for Koa withNodeTracing(app.callback()).",
    );
  });

  it('refuses an Express or Koa app, naming withNodeTracing', () => {
    expect(() => withTracing(express() as never)).toThrow(/withTracing\(\): "handler" is an Express or Connect app, which takes Node's \(req, res\), not a fetch Request; .*createServer\(withNodeTracing\(app\)\)/);
    expect(() => withTracing(new Koa() as never)).toThrow(/"handler" must be a function .*; Express, Connect, Koa, Fastify .* withNodeTracing\(app\.callback\(\)\)/);
  });

  it('refuses an object without handlers, or a handler that is not a function, naming it', () => {
    expect(() => withTracing({} as never)).toThrow(/withTracing\(\): "handler" must be a function .* or an object of handlers with fetch, scheduled or queue/);
    expect(() => withTracing({ fetch: 'app' } as never)).toThrow('withTracing(): "handler.fetch" must be a function, got app.');
    expect(() => withTracing({ scheduled: async () => undefined }, { propagateTo: 'all' } as never)).toThrow(/propagateTo/);
  });
});
