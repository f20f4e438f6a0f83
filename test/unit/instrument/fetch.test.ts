import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { instrumentFetch, BODY_ATTRS } from '../../../src/instrument/fetch';
import { instrumentXhr } from '../../../src/instrument/xhr';
import { internalErrorCount } from '../../../src/lib/reportInternal';
import type { Tracer } from '../../../src/core/tracer';
import { testTracer } from '../../helpers/collect';
import { collectGarbage } from '../../helpers/gc';

// fetch instrumentation in Node, whose fetch, Request, Response and streams follow the same
// standards as the browser's; `location` is faked to give the "page" an origin. Two loopback
// servers on different ports are two origins.

interface Seen {
  path: string;
  method: string;
  headers: IncomingHttpHeaders;
  body: string;
}
const seen: Seen[] = [];
let app: Server;
let other: Server;
let base = '';
let otherBase = '';

const handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void => {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    const url = new URL(req.url ?? '/', 'http://x');
    seen.push({ path: url.pathname + url.search, method: req.method ?? '', headers: req.headers, body });
    if (url.pathname === '/json') return void res.writeHead(200, { 'content-type': 'application/json', 'content-length': '11' }).end('{"ok":true}');
    if (url.pathname === '/missing') return void res.writeHead(404).end('nope');
    if (url.pathname === '/slow') return void setTimeout(() => res.writeHead(200, { 'content-type': 'text/plain' }).end('late'), 150);
    if (url.pathname === '/completion') {
      // A chat completion that did not stream, as OpenAI answers it.
      const body = { id: 'chatcmpl-1', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: 'Hi' } }], usage: { prompt_tokens: 31, completion_tokens: 7, total_tokens: 38 } };
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    }
    if (url.pathname === '/sse-gemini') {
      // Gemini's streamGenerateContent?alt=sse: every chunk carries the usage so far.
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = (text: string, usage: object) => `data: ${JSON.stringify({ candidates: [{ content: { parts: [{ text }], role: 'model' }, index: 0 }], usageMetadata: usage })}\r\n\r\n`;
      res.write(chunk('Hel', { promptTokenCount: 9, totalTokenCount: 9 }));
      return void setTimeout(() => res.end(chunk('lo', { promptTokenCount: 9, candidatesTokenCount: 2, thoughtsTokenCount: 120, totalTokenCount: 131 })), 20);
    }
    if (url.pathname === '/sse') {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const events = [
        'data: {"choices":[{"delta":{"role":"assistant"}}],"usage":null}\n\n',
        'data: {"choices":[{"delta":{"content":"Hel"}}],"usage":null}\n\n',
        'data: {"choices":[{"delta":{"content":"lo"}}],"usage":null}\n\n',
        'data: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}\n\n',
        'data: [DONE]\n\n',
      ];
      let i = 0;
      const tick = (): void => {
        if (i < events.length) {
          res.write(events[i++]);
          setTimeout(tick, 5);
        } else res.end();
      };
      return tick();
    }
    if (url.pathname === '/ndjson') {
      // Ollama's /api/chat stream, its counts in the last line.
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      res.write('{"model":"llama3.2","message":{"content":"Hel"},"done":false}\n');
      return void setTimeout(() => res.end('{"model":"llama3.2","message":{"content":""},"done":true,"prompt_eval_count":26,"eval_count":298}\n'), 20);
    }
    if (url.pathname === '/sse-many') {
      // 40 events the classifier cannot call output, then, 150 ms later, one it can.
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"type":"progress"}\n\n'.repeat(40));
      return void setTimeout(() => res.end('data: {"type":"text-delta","delta":"Hi"}\n\n'), 150);
    }
    if (url.pathname === '/sse-responses') {
      // The Responses API making an image: response.created repeats long instructions, the text
      // comes after a pause, and response.completed repeats the 2 MB image before its usage.
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const instructions = 'Follow the house style. '.repeat(4000);
      res.write(`event: response.created\ndata: {"type":"response.created","response":{"instructions":"${instructions}","usage":null}}\n\n`);
      setTimeout(() => {
        res.write('event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"Here"}\n\n');
        const image = 'A'.repeat(2_000_000);
        const usage = '{"input_tokens":1200,"output_tokens":4000,"total_tokens":5200}';
        const completed = `{"type":"response.completed","response":{"instructions":"${instructions}","output":[{"type":"image_generation_call","result":"${image}"}],"usage":${usage},"user":null,"metadata":{}}}`;
        // Sent in pieces, as the network would.
        const event = `event: response.completed\ndata: ${completed}\n\n`;
        for (let at = 0; at < event.length; at += 100_000) res.write(event.slice(at, at + 100_000));
        res.end();
      }, 150);
      return;
    }
    if (url.pathname === '/sse-anthropic' || url.pathname === '/sse-custom') {
      // Setup events at once, the first output after a pause: the model's time to first token.
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const events =
        url.pathname === '/sse-custom'
          ? ['data: {"type":"progress","step":1}\n\n', 'data: {"type":"progress","step":2}\n\n']
          : [
              'event: message_start\ndata: {"type":"message_start","message":{"usage":{"input_tokens":25,"output_tokens":1}}}\n\n',
              'event: content_block_start\ndata: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n',
              'event: ping\ndata: {"type":"ping"}\n\n',
            ];
      res.write(events.join(''));
      setTimeout(() => {
        if (url.pathname === '/sse-custom') return void res.end('data: {"type":"progress","step":3}\n\n');
        res.write('event: content_block_delta\ndata: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}\n\n');
        res.end('event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}\n\n');
      }, 150);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain' }).end('hello');
  });
};

beforeAll(async () => {
  app = createServer(handler);
  other = createServer(handler);
  await new Promise<void>((r) => app.listen(0, '127.0.0.1', r));
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(app.address() as AddressInfo).port}`;
  otherBase = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
  (globalThis as { location?: unknown }).location = { href: `${base}/page`, origin: base };
});

afterAll(async () => {
  delete (globalThis as { location?: unknown }).location;
  await new Promise((r) => app.close(r));
  await new Promise((r) => other.close(r));
});

let stop: (() => void) | undefined;

/**
 * Instruments fetch for a fresh tracer and reads `path` with text() inside a generation of a new
 * trace: the tracer's records, the generation's and the text the app got.
 */
const readInGeneration = async (path: string, name: string, model: string) => {
  const t = testTracer({ now: () => Date.now() });
  stop = instrumentFetch({ tracer: t.tracer });
  const trace = t.tracer.createTrace('chat');
  let text = '';
  await trace.generation(name, { model }, async () => {
    text = await (await fetch(`${base}${path}`)).text();
  });
  trace.finish();
  return { ...t, text, gen: t.byName(name) };
};
afterEach(() => {
  stop?.();
  stop = undefined;
  seen.length = 0;
});

const lastSeen = (path: string): Seen => {
  const found = [...seen].reverse().find((s) => s.path === path);
  if (!found) throw new Error(`no request to ${path}`);
  return found;
};

/**
 * Just enough of whatwg-fetch forced onto globalThis.fetch: its own Headers class, which copies
 * only from itself, pairs and plain objects (a browser Headers has no own properties to copy);
 * the request goes out by XMLHttpRequest, opened and sent within the fetch() call; and its
 * Response is its own, not the browser's.
 */
class PolyHeaders {
  map: Record<string, string> = {};
  constructor(init?: unknown) {
    if (init instanceof PolyHeaders) for (const [name, value] of Object.entries(init.map)) this.append(name, value);
    else if (Array.isArray(init)) for (const [name, value] of init as [string, string][]) this.append(name, value);
    else if (init) for (const name of Object.getOwnPropertyNames(init)) this.append(name, (init as Record<string, string>)[name]!);
  }
  append(name: string, value: string): void {
    const key = name.toLowerCase();
    this.map[key] = key in this.map ? `${this.map[key]}, ${value}` : value;
  }
  get(name: string): string | null {
    return this.map[name.toLowerCase()] ?? null;
  }
  *[Symbol.iterator](): IterableIterator<[string, string]> {
    yield* Object.entries(this.map);
  }
}

/** The XMLHttpRequest the polyfill sends with: it answers 200 a moment after send(). */
class PolyXhr extends EventTarget {
  readyState = 0;
  status = 0;
  sent = new PolyHeaders();
  open(_method: string, _url: string, _async: boolean): void {
    this.readyState = 1;
  }
  setRequestHeader(name: string, value: string): void {
    this.sent.append(name, value);
  }
  send(): void {
    setTimeout(() => {
      this.status = 200;
      this.readyState = 4;
      for (const type of ['readystatechange', 'load', 'loadend']) this.dispatchEvent(new Event(type));
    }, 1);
  }
}

class PolyResponse {
  readonly ok = true;
  readonly headers = new PolyHeaders({ 'content-type': 'text/plain' });
  constructor(readonly status: number) {}
  text(): Promise<string> {
    return Promise.resolve('polyfilled');
  }
}

/** The polyfill's fetch; `sent` gets the header fields of each request. */
const polyfillFetch = (sent: Record<string, string>[]) =>
  ((url: string, init?: RequestInit) =>
    new Promise<PolyResponse>((resolve) => {
      const headers = new PolyHeaders(init?.headers);
      const xhr = new (globalThis as unknown as { XMLHttpRequest: typeof PolyXhr }).XMLHttpRequest();
      xhr.open(init?.method ?? 'GET', url, true);
      for (const [name, value] of headers) xhr.setRequestHeader(name, value);
      xhr.addEventListener('load', () => {
        sent.push(xhr.sent.map);
        resolve(new PolyResponse(xhr.status));
      });
      xhr.send();
    })) as unknown as typeof fetch;

describe('instrumentFetch', () => {
  it('records a CLIENT span with HTTP conventions and redacted query values', async () => {
    const t = testTracer();
    stop = instrumentFetch({ tracer: t.tracer });
    const res = await fetch(`${base}/json?token=abc&page=2`);
    expect(await res.json()).toEqual({ ok: true });
    const span = t.byName('GET');
    expect(span.kind).toBe('client');
    expect(span.attrs).toMatchObject({
      'http.request.method': 'GET',
      'url.full': `${base}/json?token=[REDACTED]&page=[REDACTED]`,
      'server.address': '127.0.0.1',
      'server.port': Number(new URL(base).port),
      'http.response.status_code': 200,
      [BODY_ATTRS.outcome]: 'complete',
      [BODY_ATTRS.bytes]: 11,
    });
    expect(span.status.code).toBe('unset');
  });

  it('ends a request still under way when it is stopped, as unfinished: its traceparent went out, so its span must arrive', async () => {
    const t = testTracer();
    const undo = instrumentFetch({ tracer: t.tracer });
    const pending = fetch(`${base}/slow`);
    await new Promise((r) => setTimeout(r, 50));
    // stop(): the tracer shuts down after this, and would drop the span's own end.
    undo();
    const span = t.byName('GET');
    expect(span.attrs['edgetrace.unfinished']).toBe(true);
    expect(await (await pending).text()).toBe('late');
    expect(lastSeen('/slow').headers.traceparent).toMatch(new RegExp(`^00-${span.traceId}-${span.spanId}-0[13]$`));
    // The answer after it changes nothing.
    expect(t.spans.filter((s) => s.name === 'GET')).toHaveLength(1);
  });

  it('hands back the very Response the original fetch resolved with, and ends the span when it is read', async () => {
    const t = testTracer();
    const original = globalThis.fetch;
    let native: Response | undefined;
    globalThis.fetch = (async (...args: Parameters<typeof fetch>) => (native = await original(...args))) as typeof fetch;
    try {
      stop = instrumentFetch({ tracer: t.tracer });
      const res = await fetch(`${base}/json`);
      expect(res).toBe(native);
      expect(res).toBeInstanceOf(Response);
      expect(t.spans).toHaveLength(0);
      expect(new Uint8Array(await res.arrayBuffer())).toHaveLength(11);
      expect(t.byName('GET').attrs).toMatchObject({ [BODY_ATTRS.outcome]: 'complete', [BODY_ATTRS.bytes]: 11, 'http.response.status_code': 200 });
      expect(t.byName('GET').attrs[BODY_ATTRS.chunks]).toBeUndefined();
    } finally {
      stop?.();
      stop = undefined;
      globalThis.fetch = original;
    }
  });

  it('follows a body read through response.body chunk by chunk, and a cancel', async () => {
    const t = testTracer();
    stop = instrumentFetch({ tracer: t.tracer });
    const res = await fetch(`${base}/sse`);
    const reader = res.body!.getReader();
    let bytes = 0;
    for (let r = await reader.read(); !r.done; r = await reader.read()) bytes += r.value.byteLength;
    const read = t.byName('GET');
    expect(read.attrs).toMatchObject({ [BODY_ATTRS.outcome]: 'complete', [BODY_ATTRS.bytes]: bytes, [BODY_ATTRS.sseEvents]: 5 });
    expect(read.attrs[BODY_ATTRS.chunks]).toBeGreaterThanOrEqual(1);

    const other = await fetch(`${base}/sse`);
    const r2 = other.body!.getReader();
    await r2.read();
    await r2.cancel('stop');
    const cancelled = t.spans.filter((s) => s.name === 'GET')[1]!;
    expect(cancelled.attrs).toMatchObject({ [BODY_ATTRS.outcome]: 'cancelled', 'edgetrace.cancelled': true });
  });

  it("leaves an error response's discarded body a failure, and the generation that retried uncancelled", async () => {
    const t = testTracer();
    stop = instrumentFetch({ tracer: t.tracer });
    // An SDK's retry: the 404's body is cancelled unread, then the call is made again.
    const answer = await t.tracer.createTrace({ name: 'chat' }).generation('retried', { model: 'm' }, async () => {
      const first = await fetch(`${base}/missing`);
      await first.body!.cancel();
      return (await fetch(`${base}/json`)).json();
    });
    expect(answer).toEqual({ ok: true });
    const [failed] = t.spans.filter((s) => s.name === 'GET');
    expect(failed!.attrs).toMatchObject({ [BODY_ATTRS.outcome]: 'cancelled', 'http.response.status_code': 404 });
    expect(failed!.attrs['edgetrace.cancelled']).toBeUndefined();
    expect(failed!.status).toEqual({ code: 'error', message: 'HTTP 404' });
    expect(t.byName('retried').attrs['edgetrace.cancelled']).toBeUndefined();
  });

  it('adds traceparent to same-origin and allowlisted requests only', async () => {
    const t = testTracer();
    stop = instrumentFetch({ tracer: t.tracer, propagateTo: [`${otherBase}/allowed/`] });
    await (await fetch(`${base}/same`)).text();
    await (await fetch(`${otherBase}/third-party`)).text();
    await (await fetch(`${otherBase}/allowed/x`)).text();
    const same = lastSeen('/same').headers.traceparent as string;
    const spans = t.spans.filter((s) => s.name === 'GET');
    expect(same).toBe(`00-${spans[0]!.traceId}-${spans[0]!.spanId}-0${spans[0]!.flags}`);
    expect(lastSeen('/third-party').headers.traceparent).toBeUndefined();
    expect(lastSeen('/allowed/x').headers.traceparent).toBe(`00-${spans[2]!.traceId}-${spans[2]!.spanId}-0${spans[2]!.flags}`);
  });

  it('keeps every header form and the body, and never changes the caller objects', async () => {
    const t = testTracer();
    stop = instrumentFetch({ tracer: t.tracer });
    const headers = new Headers({ 'x-a': '1' });
    await (await fetch(`${base}/h1`, { method: 'POST', headers, body: 'one' })).text();
    expect(headers.has('traceparent')).toBe(false);
    const tuples: [string, string][] = [['x-b', '2'], ['x-b', '3']];
    await (await fetch(`${base}/h2`, { method: 'PUT', headers: tuples, body: 'two' })).text();
    expect(tuples).toHaveLength(2);
    const plain = { 'X-C': '4' };
    const init = { method: 'PATCH', headers: plain, body: 'three' };
    await (await fetch(`${base}/h3`, init)).text();
    expect(init.headers).toBe(plain);
    expect(Object.keys(plain)).toEqual(['X-C']);
    const request = new Request(`${base}/h4`, { method: 'POST', headers: { 'x-d': '5' }, body: 'four' });
    await (await fetch(request)).text();
    expect(request.headers.has('traceparent')).toBe(false);
    await (await fetch(new Request(`${base}/h5`, { headers: { 'x-e': '6' } }), { headers: { 'x-f': '7' } })).text();

    expect(lastSeen('/h1')).toMatchObject({ method: 'POST', body: 'one', headers: { 'x-a': '1' } });
    expect(lastSeen('/h2')).toMatchObject({ method: 'PUT', body: 'two', headers: { 'x-b': '2, 3' } });
    expect(lastSeen('/h3')).toMatchObject({ method: 'PATCH', body: 'three', headers: { 'x-c': '4' } });
    expect(lastSeen('/h4')).toMatchObject({ method: 'POST', body: 'four', headers: { 'x-d': '5' } });
    // init.headers replaces the Request's, exactly as fetch does without us.
    expect(lastSeen('/h5').headers['x-e']).toBeUndefined();
    expect(lastSeen('/h5').headers['x-f']).toBe('7');
    for (const p of ['/h1', '/h2', '/h3', '/h4', '/h5']) expect(lastSeen(p).headers.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[13]$/);
  });

  it("keeps the init's members a fetch wrapper under ours hid from enumeration (SvelteKit's mark on its own calls)", async () => {
    const t = testTracer();
    const native = globalThis.fetch;
    const marks: unknown[] = [];
    // SvelteKit's dev fetch marks its load's calls with a member it does not enumerate, and its
    // window.fetch wrapper, under ours, warns of a load's call it does not find marked.
    globalThis.fetch = ((input: RequestInfo | URL, init?: RequestInit & { __mark?: boolean }) => {
      marks.push(init?.__mark);
      return native(input, init);
    }) as typeof fetch;
    try {
      stop = instrumentFetch({ tracer: t.tracer });
      const marked = (headers?: HeadersInit) => Object.defineProperty({ method: 'GET', headers } as RequestInit, '__mark', { value: true, enumerable: false });
      await (await fetch(`${base}/marked-plain`, marked({ 'x-a': '1' }))).text();
      await (await fetch(`${base}/marked-headers`, marked(new Headers({ 'x-b': '2' })))).text();
      expect(marks).toEqual([true, true]);
      // A getter reads from the object it was defined on, as fetch would call it without us.
      const own = new WeakSet<object>();
      const withGetter = { headers: { 'x-c': '3' }, get method() { if (!own.has(this)) throw new TypeError('not the caller\'s init'); return 'GET'; } };
      own.add(withGetter);
      await (await fetch(`${base}/getter`, withGetter)).text();
      expect(lastSeen('/getter').headers).toMatchObject({ 'x-c': '3', traceparent: expect.stringMatching(/^00-/) });
      expect(lastSeen('/marked-plain').headers).toMatchObject({ 'x-a': '1', traceparent: expect.stringMatching(/^00-/) });
      expect(lastSeen('/marked-headers').headers).toMatchObject({ 'x-b': '2', traceparent: expect.stringMatching(/^00-/) });
    } finally {
      stop?.();
      stop = undefined;
      globalThis.fetch = native;
    }
  });

  it('resolves relative URLs against the page as it is now, not as it was at the last call', async () => {
    const t = testTracer();
    const original = globalThis.fetch;
    // Node's fetch has no page to resolve against; a browser's would send these to the page's origin.
    const sent: unknown[] = [];
    globalThis.fetch = (async (_input: unknown, init?: RequestInit) => {
      sent.push(new Headers(init?.headers).get('traceparent'));
      return new Response('x');
    }) as typeof fetch;
    const loc = (globalThis as unknown as { location: { href: string } }).location;
    try {
      stop = instrumentFetch({ tracer: t.tracer });
      await (await fetch('rel?x=1')).text();
      loc.href = `${base}/dir/page`;
      await (await fetch('rel?x=1')).text();
    } finally {
      loc.href = `${base}/page`;
      stop?.();
      stop = undefined;
      globalThis.fetch = original;
    }
    expect(t.spans.map((s) => s.attrs['url.full'])).toEqual([`${base}/rel?x=[REDACTED]`, `${base}/dir/rel?x=[REDACTED]`]);
    expect(sent).toEqual([expect.stringMatching(/^00-/), expect.stringMatching(/^00-/)]);
  });

  it('leaves a traceparent the app set itself alone', async () => {
    const t = testTracer();
    stop = instrumentFetch({ tracer: t.tracer });
    const own = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    await (await fetch(`${base}/own`, { headers: { traceparent: own } })).text();
    expect(lastSeen('/own').headers.traceparent).toBe(own);
    // In any spelling, and in every header form.
    await (await fetch(`${base}/own2`, { headers: { TraceParent: own } })).text();
    await (await fetch(`${base}/own3`, { headers: [['TRACEPARENT', own], ['x-a', '1']] })).text();
    await (await fetch(`${base}/own4`, { headers: new Headers({ Traceparent: own }) })).text();
    for (const p of ['/own2', '/own3', '/own4']) expect(lastSeen(p).headers.traceparent, p).toBe(own);
    expect(lastSeen('/own3').headers['x-a']).toBe('1');
  });

  it("adds the trace's baggage after a baggage header the request has (Sentry's), whose keys win, in every header form", async () => {
    const t = testTracer({ baggage: { tenant: 'acme', plan: 'pro' } });
    stop = instrumentFetch({ tracer: t.tracer });
    await (await fetch(`${base}/b1`, { headers: { Baggage: 'sentry-trace_id=abc,plan=free' } })).text();
    await (await fetch(`${base}/b2`, { headers: new Headers({ baggage: 'sentry-sampled=true' }) })).text();
    await (await fetch(new Request(`${base}/b3`, { headers: { baggage: 'tenant=mine' } }))).text();
    await (await fetch(`${base}/b4`, { headers: [['baggage', 'tenant=mine,plan=free']] })).text();
    await (await fetch(`${base}/b5`)).text();
    expect(lastSeen('/b1').headers.baggage).toBe('sentry-trace_id=abc,plan=free,tenant=acme');
    expect(lastSeen('/b2').headers.baggage).toBe('sentry-sampled=true, tenant=acme,plan=pro');
    expect(lastSeen('/b3').headers.baggage).toBe('tenant=mine, plan=pro');
    expect(lastSeen('/b4').headers.baggage).toBe('tenant=mine,plan=free');
    expect(lastSeen('/b5').headers.baggage).toBe('tenant=acme,plan=pro');
  });

  it('says on the span when the request went with a trace header not its own, linked to the context it carried', async () => {
    const t = testTracer();
    stop = instrumentFetch({ tracer: t.tracer, propagateTo: [`${otherBase}/allowed/`] });
    const own = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    await (await fetch(`${base}/s1`, { headers: { TraceParent: own } })).text();
    await (await fetch(`${base}/s2`, { headers: [['traceparent', own]] })).text();
    await (await fetch(new Request(`${base}/s3`, { headers: { traceparent: own } }))).text();
    await (await fetch(`${base}/s4`, { headers: { tracestate: 'app=1' } })).text();
    await (await fetch(`${base}/s5`)).text();
    // No trace headers of ours would go there anyway.
    await (await fetch(`${otherBase}/s6`, { headers: { traceparent: own } })).text();
    const [s1, s2, s3, s4, s5, s6] = t.spans;
    for (const span of [s1, s2, s3]) {
      expect(span!.attrs['edgetrace.propagation']).toBe('skipped');
      expect(span!.links).toMatchObject([{ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', flags: 1 }]);
    }
    expect(s4!.attrs['edgetrace.propagation']).toBe('skipped');
    expect(s4!.links).toEqual([]);
    for (const span of [s5, s6]) {
      expect(span!.attrs['edgetrace.propagation']).toBeUndefined();
      expect(span!.links).toEqual([]);
    }
  });

  it('says so when a fetch wrapper installed before it puts its own traceparent in place of ours', async () => {
    const original = globalThis.fetch;
    const theirs = '00-11111111111111111111111111111111-2222222222222222-01';
    // OpenTelemetry's fetch instrumentation (0.223): it sets its traceparent over ours, on a
    // Request's own headers, or on a Headers copy of the init's that takes their place.
    globalThis.fetch = ((input: RequestInfo | URL, init?: RequestInit) => {
      const options = input instanceof Request ? input : (init ?? {});
      if (options instanceof Request) options.headers.set('traceparent', theirs);
      else {
        const headers = new Headers(options.headers);
        headers.set('traceparent', theirs);
        options.headers = headers;
      }
      return options instanceof Request ? original(options) : original(input, options);
    }) as typeof fetch;
    const t = testTracer();
    try {
      stop = instrumentFetch({ tracer: t.tracer });
      await (await fetch(new Request(`${base}/o1`))).text();
      await (await fetch(`${base}/o2`, { headers: { 'x-a': '1' } })).text();
    } finally {
      stop?.();
      stop = undefined;
      globalThis.fetch = original;
    }
    for (const [path, span] of [['/o1', t.spans[0]], ['/o2', t.spans[1]]] as const) {
      expect(lastSeen(path).headers.traceparent).toBe(theirs);
      expect(span!.attrs['edgetrace.propagation'], path).toBe('overridden');
      expect(span!.links).toMatchObject([{ traceId: '11111111111111111111111111111111', spanId: '2222222222222222' }]);
    }
  });

  it('passes the same rejection through and records it', async () => {
    const t = testTracer();
    const closed = 'http://127.0.0.1:9/refused';
    const without = await fetch(closed).catch((e: unknown) => e);
    stop = instrumentFetch({ tracer: t.tracer });
    const withSdk = await fetch(closed).catch((e: unknown) => e);
    expect(withSdk).toBeInstanceOf(TypeError);
    expect((withSdk as Error).message).toBe((without as Error).message);
    const span = t.byName('GET');
    expect(span.status.code).toBe('error');
    expect(span.events[0]?.name).toBe('exception');

    // Arguments fetch refuses are refused the same way: `headers: null` is not "no headers".
    const nullHeaders = { headers: null } as unknown as RequestInit;
    stop();
    const refused = await fetch(`${base}/json`, nullHeaders).catch((e: unknown) => e);
    stop = instrumentFetch({ tracer: t.tracer });
    const refusedWithSdk = await fetch(`${base}/json`, nullHeaders).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(TypeError);
    expect(refusedWithSdk).toBeInstanceOf(TypeError);
    expect((refusedWithSdk as Error).message).toBe((refused as Error).message);

    const ctrl = new AbortController();
    ctrl.abort();
    const aborted = await fetch(`${base}/json`, { signal: ctrl.signal }).catch((e: unknown) => e);
    expect((aborted as Error).name).toBe('AbortError');
    expect(t.spans.at(-1)!.attrs).toMatchObject({ 'error.type': 'AbortError', 'edgetrace.cancelled': true });
  });

  it('marks 4xx and 5xx as errors and returns the response', async () => {
    const t = testTracer();
    stop = instrumentFetch({ tracer: t.tracer });
    const res = await fetch(`${base}/missing`);
    expect(res.status).toBe(404);
    expect(await res.text()).toBe('nope');
    expect(t.byName('GET').attrs['error.type']).toBe('404');
    expect(t.byName('GET').status.code).toBe('error');
  });

  it('does not trace ignored URLs, nor non-http URLs', async () => {
    const t = testTracer();
    stop = instrumentFetch({ tracer: t.tracer, ignoreUrls: ['/v1/traces'] });
    await (await fetch(`${base}/v1/traces`, { method: 'POST', body: '{}' })).text();
    await (await fetch('data:text/plain,hi')).text();
    expect(t.spans).toHaveLength(0);
    expect(lastSeen('/v1/traces').headers.traceparent).toBeUndefined();
  });

  it('parents to the current span, and an SSE stream sets first-token time and usage on the generation', async () => {
    const { text, gen, ...t } = await readInGeneration('/sse', 'llm', 'gpt-4o');
    expect(text).toContain('[DONE]');
    const http = t.byName('GET');
    expect(http.parentId).toBe(gen.spanId);
    expect(http.attrs[BODY_ATTRS.sseEvents]).toBe(5);
    expect(http.attrs[BODY_ATTRS.outcome]).toBe('complete');
    expect(http.attrs[BODY_ATTRS.chunks]).toBeGreaterThanOrEqual(1);
    expect(typeof http.attrs[BODY_ATTRS.timeToFirstChunkMs]).toBe('number');
    expect(gen.attrs['langfuse.observation.completion_start_time']).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(JSON.parse(gen.attrs['langfuse.observation.usage_details'] as string)).toEqual({ input: 9, output: 2, total: 11 });
    expect(http.endMs).toBeGreaterThanOrEqual(http.startMs);
  });

  it("keeps a generation whose callback returned an SDK's stream object open until that stream has been read", async () => {
    const t = testTracer({ now: () => Date.now() });
    stop = instrumentFetch({ tracer: t.tracer });
    const trace = t.tracer.createTrace('chat');
    // openai's create({ stream: true }) resolves at the headers with an object that reads the body when iterated.
    const stream = await trace.generation('llm', { model: 'gpt-4o' }, async () => {
      const res = await fetch(`${base}/sse`);
      return {
        async *[Symbol.asyncIterator]() {
          const reader = res.body!.getReader();
          for (let r = await reader.read(); !r.done; r = await reader.read()) yield r.value;
        },
      };
    });
    const returnedMs = Date.now();
    expect(t.spans.some((s) => s.name === 'llm')).toBe(false);
    await new Promise((r) => setTimeout(r, 30));
    let bytes = 0;
    for await (const chunk of stream) bytes += chunk.byteLength;
    trace.finish();
    expect(bytes).toBeGreaterThan(0);
    const gen = t.byName('llm');
    const http = t.byName('GET');
    expect(JSON.parse(gen.attrs['langfuse.observation.usage_details'] as string)).toEqual({ input: 9, output: 2, total: 11 });
    expect(Date.parse(gen.attrs['langfuse.observation.completion_start_time'] as string)).toBeGreaterThanOrEqual(returnedMs);
    expect(gen.endMs).toBeGreaterThanOrEqual(http.endMs - 1);
    expect(gen.attrs['edgetrace.unfinished']).toBeUndefined();
  });

  it("keeps a generation whose callback returned a stream object at once, before its request (Anthropic's messages.stream()), until that stream has been read", async () => {
    const t = testTracer({ now: () => Date.now() });
    stop = instrumentFetch({ tracer: t.tracer });
    const trace = t.tracer.createTrace('chat');
    // Made synchronously, before its request has an answer; its result is awaited apart.
    const stream = trace.generation('llm', { model: 'claude' }, () => {
      const done = fetch(`${base}/sse`).then((res) => res.text());
      return { done, async *[Symbol.asyncIterator]() {} };
    });
    const text = await stream.done;
    trace.finish();
    expect(text).toContain('[DONE]');
    const gen = t.byName('llm');
    expect(JSON.parse(gen.attrs['langfuse.observation.usage_details'] as string)).toEqual({ input: 9, output: 2, total: 11 });
    expect(gen.endMs).toBeGreaterThanOrEqual(t.byName('GET').endMs - 1);
    expect(gen.attrs['edgetrace.unfinished']).toBeUndefined();
  });

  it('a trace finished while a generation waits for its stream ends every span still open, the generation unfinished', async () => {
    const t = testTracer({ now: () => Date.now() });
    stop = instrumentFetch({ tracer: t.tracer });
    const trace = t.tracer.createTrace('chat');
    // Older than the generation: ending the request's follow ends the generation, and must not
    // cut the walk through the trace's open spans short.
    trace.startSpan('outer');
    const { res } = await trace.generation('llm', { model: 'gpt-4o' }, async () => ({ res: await fetch(`${base}/sse-many`) }));
    const reader = res.body!.getReader();
    await reader.read();
    trace.finish();
    expect(t.byName('outer').attrs['edgetrace.unfinished']).toBe(true);
    expect(t.byName('llm').attrs['edgetrace.unfinished']).toBe(true);
    expect(t.byName('GET').attrs[BODY_ATTRS.outcome]).toBe('unfinished');
    await reader.cancel();
  });

  it('gives a stream of JSON lines that a stream object reads late the same wait as an event stream', async () => {
    const t = testTracer({ now: () => Date.now() });
    stop = instrumentFetch({ tracer: t.tracer });
    const trace = t.tracer.createTrace('chat');
    const res = await trace.generation('llm', { model: 'llama3.2' }, () => fetch(`${base}/ndjson`).then((r) => ({ r })));
    // Iterated well past the 1 s a body that nobody reads is watched for.
    await new Promise((r) => setTimeout(r, 1500));
    await res.r.text();
    trace.finish();
    const gen = t.byName('llm');
    expect(JSON.parse(gen.attrs['langfuse.observation.usage_details'] as string)).toEqual({ input: 26, output: 298 });
    expect(gen.attrs['edgetrace.unfinished']).toBeUndefined();
  });

  it('ends a generation that returns after reading its stream when it returns, not at the read', async () => {
    const t = testTracer({ now: () => Date.now() });
    stop = instrumentFetch({ tracer: t.tracer });
    const trace = t.tracer.createTrace('chat');
    await trace.generation('llm', { model: 'gpt-4o' }, async () => {
      await (await fetch(`${base}/sse`)).text();
      await new Promise((r) => setTimeout(r, 60));
    });
    const gen = t.byName('llm');
    expect(gen.endMs - t.byName('GET').endMs).toBeGreaterThanOrEqual(50);
    trace.finish();
  });

  it('takes first-token time from the first event with output, not from setup events sent with the headers', async () => {
    const { gen } = await readInGeneration('/sse-anthropic', 'llm', 'claude');
    const first = Date.parse(gen.attrs['langfuse.observation.completion_start_time'] as string);
    // message_start, content_block_start and ping came at once; the first delta 150 ms later.
    expect(first - gen.startMs).toBeGreaterThanOrEqual(120);
    expect(JSON.parse(gen.attrs['langfuse.observation.usage_details'] as string)).toEqual({ input: 25, output: 15 });
  });

  it('reads first-token time and usage from a Responses API stream whose events are megabytes long', async () => {
    const { text, gen, ...t } = await readInGeneration('/sse-responses', 'image', 'gpt-image-1');
    expect(text.length).toBeGreaterThan(2_000_000);
    const first = Date.parse(gen.attrs['langfuse.observation.completion_start_time'] as string);
    // response.created (about 100 KB) came with the headers; the first delta 150 ms later.
    expect(first - gen.startMs).toBeGreaterThanOrEqual(120);
    expect(JSON.parse(gen.attrs['langfuse.observation.usage_details'] as string)).toEqual({ input: 1200, output: 4000, total: 5200 });
    expect(t.byName('GET').attrs[BODY_ATTRS.sseEvents]).toBe(3);
  });

  it("reads Gemini's usage from its stream: the counts of the last chunk, thinking apart", async () => {
    const { gen } = await readInGeneration('/sse-gemini', 'llm', 'gemini-2.5-flash');
    expect(JSON.parse(gen.attrs['langfuse.observation.usage_details'] as string)).toEqual({ input: 9, output: 2, output_reasoning_tokens: 120, total: 131 });
    expect(gen.attrs['gen_ai.usage.output_tokens']).toBe(122);
    expect(gen.attrs['langfuse.observation.completion_start_time']).toMatch(/^\d{4}-/);
  });

  it('reads the usage of a call that did not stream from the body the app parsed, json() or text(); the app has the last word', async () => {
    const t = testTracer({ now: () => Date.now() });
    stop = instrumentFetch({ tracer: t.tracer });
    const trace = t.tracer.createTrace('chat');
    const answers: unknown[] = [];
    await trace.generation('by-json', { model: 'gpt-4o' }, async () => {
      answers.push(await (await fetch(`${base}/completion`)).json());
    });
    await trace.generation('by-text', { model: 'gpt-4o' }, async () => {
      answers.push(JSON.parse(await (await fetch(`${base}/completion`)).text()));
    });
    await trace.generation('own-usage', { model: 'gpt-4o' }, async (gen) => {
      const body = (await (await fetch(`${base}/completion`)).json()) as { usage: { prompt_tokens: number } };
      gen.setUsage({ input: body.usage.prompt_tokens, output: 1 });
    });
    // Not a generation: nothing to fill.
    await trace.span('plain', async () => void (await (await fetch(`${base}/completion`)).json()));
    trace.finish();
    expect(answers).toHaveLength(2);
    expect(answers[0]).toEqual(answers[1]);
    for (const name of ['by-json', 'by-text']) {
      expect(JSON.parse(t.byName(name).attrs['langfuse.observation.usage_details'] as string), name).toEqual({ input: 31, output: 7, total: 38 });
    }
    expect(JSON.parse(t.byName('own-usage').attrs['langfuse.observation.usage_details'] as string)).toEqual({ input: 31, output: 1 });
    expect(t.byName('plain').attrs['langfuse.observation.usage_details']).toBeUndefined();
    // A call that did not stream has no first token to time.
    expect(t.byName('by-json').attrs['langfuse.observation.completion_start_time']).toBeUndefined();
  });

  it('falls back to the first event for a stream whose events it cannot tell apart (also past 32 events), and keeps a time the app set', async () => {
    const t = testTracer({ now: () => Date.now() });
    stop = instrumentFetch({ tracer: t.tracer });
    const trace = t.tracer.createTrace('chat');
    await trace.generation('custom', {}, async () => {
      await (await fetch(`${base}/sse-custom`)).text();
    });
    await trace.generation('many', {}, async () => {
      await (await fetch(`${base}/sse-many`)).text();
    });
    await trace.generation('set-by-app', {}, async (g) => {
      g.setCompletionStart(Date.UTC(2026, 0, 1));
      await (await fetch(`${base}/sse-anthropic`)).text();
    });
    trace.finish();
    const custom = t.byName('custom');
    const first = Date.parse(custom.attrs['langfuse.observation.completion_start_time'] as string);
    expect(first - custom.startMs).toBeLessThan(120);
    expect(t.byName('set-by-app').attrs['langfuse.observation.completion_start_time']).toBe('2026-01-01T00:00:00.000Z');
    // Past 32 events without output the stream counts as one whose events cannot be told apart.
    const many = t.byName('many');
    expect(Date.parse(many.attrs['langfuse.observation.completion_start_time'] as string) - many.startMs).toBeLessThan(120);
  });

  it('a response the app keeps after reading it holds neither the request nor the call', async () => {
    // Apps keep responses (a promise cache keyed by URL); the finished watch must let go of the
    // request and its body. A third-party URL, so the caller's own Request is the one sent.
    const { tracer, spans } = testTracer();
    stop = instrumentFetch({ tracer });
    const kept: Response[] = [];
    const sent: WeakRef<Request>[] = [];
    for (let i = 0; i < 8; i++) {
      const request = new Request(`${otherBase}/json`, { method: 'POST', body: 'x'.repeat(10_000) });
      sent.push(new WeakRef(request));
      const res = await fetch(request);
      await res.json();
      kept.push(res);
    }
    await collectGarbage();
    expect(spans).toHaveLength(8);
    // Node's fetch itself may still hold the latest request for a moment; never the earlier ones.
    expect(sent.filter((ref) => ref.deref() !== undefined).length).toBeLessThanOrEqual(1);
    expect(kept).toHaveLength(8);
  });

  it('stop() restores the original fetch', () => {
    const original = globalThis.fetch;
    stop = instrumentFetch({ tracer: testTracer().tracer });
    expect(globalThis.fetch).not.toBe(original);
    stop();
    expect(globalThis.fetch).toBe(original);
  });

  it('never throws into the caller when the tracer fails', async () => {
    const broken = new Proxy({} as Tracer, {
      get() {
        throw new Error('tracer exploded');
      },
    });
    const before = internalErrorCount();
    stop = instrumentFetch({ tracer: broken });
    const res = await fetch(`${base}/json`);
    expect(await res.json()).toEqual({ ok: true });
    const rejected = await fetch('http://127.0.0.1:9/').catch((e: unknown) => e);
    expect(rejected).toBeInstanceOf(TypeError);
    expect(internalErrorCount()).toBeGreaterThan(before);
  });

  it('sends the headers of an iterator carrying its own traceparent, read once', async () => {
    const t = testTracer();
    stop = instrumentFetch({ tracer: t.tracer });
    const own = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const headers = new Map([
      ['x-a', '1'],
      ['traceparent', own],
    ]).entries();
    await (await fetch(`${base}/iter`, { headers: headers as unknown as HeadersInit })).text();
    expect(lastSeen('/iter').headers).toMatchObject({ 'x-a': '1', traceparent: own });
  });

  it('leaves a Request and its body alone when the init of the caller brings a body of its own', async () => {
    const t = testTracer();
    stop = instrumentFetch({ tracer: t.tracer });
    const request = new Request(`${base}/post`, { method: 'POST', body: 'original', headers: { 'x-b': '2' } });
    await (await fetch(request, { body: 'replaced' })).text();
    expect(request.bodyUsed).toBe(false);
    const got = lastSeen('/post');
    expect(got.body).toBe('replaced');
    expect(got.headers['x-b']).toBe('2');
    expect(got.headers.traceparent).toMatch(/^00-/);
  });

  it('adds no trace headers next to a tracestate the caller set, in any spelling', async () => {
    const t = testTracer();
    stop = instrumentFetch({ tracer: t.tracer });
    await (await fetch(`${base}/ts1`, { headers: new Headers({ tracestate: 'app=1' }) })).text();
    await (await fetch(`${base}/ts2`, { headers: { Tracestate: 'app=2' } })).text();
    expect(lastSeen('/ts1').headers).toMatchObject({ tracestate: 'app=1' });
    expect(lastSeen('/ts1').headers.traceparent).toBeUndefined();
    expect(lastSeen('/ts2').headers).toMatchObject({ tracestate: 'app=2' });
    expect(lastSeen('/ts2').headers.traceparent).toBeUndefined();
  });

  it("hands a fetch polyfill installed before it the app's headers in every form, with its own", async () => {
    vi.stubGlobal('XMLHttpRequest', PolyXhr);
    const sent: Record<string, string>[] = [];
    vi.stubGlobal('fetch', polyfillFetch(sent));
    try {
      const t = testTracer();
      stop = instrumentFetch({ tracer: t.tracer });
      await fetch(`${base}/pairs`, { headers: [['x-a', '1'], ['x-a', '2']] });
      await fetch(`${base}/own-class`, { headers: new PolyHeaders({ 'x-b': '3' }) as unknown as HeadersInit });
      await fetch(`${base}/browser-class`, { headers: new Headers({ 'x-c': '4' }) });
      const tp = expect.stringMatching(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[13]$/);
      expect(sent).toEqual([
        { 'x-a': '1, 2', traceparent: tp },
        { 'x-b': '3', traceparent: tp },
        { 'x-c': '4', traceparent: tp },
      ]);
    } finally {
      stop?.();
      stop = undefined;
      vi.unstubAllGlobals();
    }
  });

  it('traces a request made through a fetch polyfill of XMLHttpRequest once, as its fetch, and reports no internal error', async () => {
    vi.stubGlobal('XMLHttpRequest', PolyXhr);
    const sent: Record<string, string>[] = [];
    vi.stubGlobal('fetch', polyfillFetch(sent));
    const t = testTracer();
    const stopXhr = instrumentXhr({ tracer: t.tracer });
    try {
      const before = internalErrorCount();
      stop = instrumentFetch({ tracer: t.tracer });
      const res = await fetch(`${base}/polyfilled`);
      expect(await res.text()).toBe('polyfilled');
      // Time for a traced XHR to end (its loadend ends it in a timer).
      await new Promise((r) => setTimeout(r, 10));
      expect(internalErrorCount()).toBe(before);
    } finally {
      stop?.();
      stop = undefined;
      stopXhr();
      vi.unstubAllGlobals();
    }
    expect(t.spans).toHaveLength(1);
    const [span] = t.spans;
    expect(span!.attrs).toMatchObject({ 'url.full': `${base}/polyfilled`, 'http.response.status_code': 200 });
    expect(sent[0]!.traceparent).toBe(`00-${span!.traceId}-${span!.spanId}-0${span!.flags}`);
  });
});
