import { describe, expect, it, vi } from 'vitest';
import { BODY_IDLE_MS, createSseCounter, isOutputEvent, UNREAD_MS, usageFromBody, usageFromEvent, watchBody, type BodyEnd, type BodyOutcome } from '../../../src/instrument/stream';
import { heapAfterGc } from '../../helpers/gc';

const enc = new TextEncoder();

/**
 * A Responses API `response.completed` event as the API sends it: the whole response, its
 * generated image (`imageChars` of base64) before its usage, then the user and metadata, one of
 * whose values quotes a usage object, escaped.
 */
const responseCompleted = (imageChars: number): string =>
  JSON.stringify({
    type: 'response.completed',
    sequence_number: 9,
    response: {
      id: 'resp_1',
      instructions: 'Draw what the user asks for.',
      output: [
        { type: 'image_generation_call', id: 'ig_1', status: 'completed', result: 'iVBORw0KGgo'.padEnd(imageChars, 'A') },
        { type: 'message', content: [{ type: 'output_text', text: 'Here it is: {"usage":{"input_tokens":1}}' }] },
      ],
      tools: [{ type: 'image_generation', quality: 'high' }],
      usage: { input_tokens: 1200, input_tokens_details: { cached_tokens: 200 }, output_tokens: 4000, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 5200 },
      user: null,
      metadata: { note: '{"usage":{"input_tokens":7}}' },
    },
  });

/** A Response over a pull-based source that counts how many chunks were pulled from it. */
const counted = (chunks: string[] | ((i: number) => string | undefined), init?: ResponseInit & { bytes?: boolean }) => {
  const state = { pulled: 0, cancelled: undefined as unknown };
  const next = typeof chunks === 'function' ? chunks : (i: number) => chunks[i];
  const source = {
    type: init?.bytes === false ? undefined : ('bytes' as const),
    pull(c: ReadableStreamDefaultController<Uint8Array>) {
      const text = next(state.pulled++);
      if (text === undefined) c.close();
      else c.enqueue(enc.encode(text));
    },
    cancel(reason: unknown) {
      state.cancelled = reason ?? 'cancelled';
    },
  };
  const stream = new ReadableStream(source as UnderlyingDefaultSource<Uint8Array>, { highWaterMark: 0 });
  return { res: new Response(stream, init), state };
};

const watcher = () => {
  const seen = { chunks: 0, bytes: 0, ends: [] as Array<[BodyOutcome, BodyEnd]> };
  return {
    seen,
    w: {
      chunk: (c: unknown) => {
        seen.chunks++;
        seen.bytes += (c as Uint8Array).byteLength;
      },
      end: (o: BodyOutcome, d: BodyEnd) => void seen.ends.push([o, d]),
    },
  };
};

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('watchBody', () => {
  it('watches the response in place: the same object, its own status, headers and identity', async () => {
    const { res } = counted(['{"a":', '1,"b":', '[2]}'], { status: 201, statusText: 'Created', headers: { 'content-type': 'application/json', 'content-length': '15', 'x-k': 'v' } });
    const headers = res.headers;
    const { seen, w } = watcher();
    expect(watchBody(res, w)).toBe(true);
    expect(res).toBeInstanceOf(Response);
    expect(res.constructor).toBe(Response);
    expect(Object.getOwnPropertyNames(res)).toEqual([]);
    expect(Object.keys(res)).toEqual([]);
    expect(res.status).toBe(201);
    expect(res.statusText).toBe('Created');
    expect(res.headers).toBe(headers);
    expect(res.text.name).toBe('text');
    expect(await res.json()).toEqual({ a: 1, b: [2] });
    expect(res.bodyUsed).toBe(true);
    expect(seen.chunks).toBe(0);
    // json() does not say how many bytes it read: Content-Length does, when not compressed.
    // The parsed body is passed on, for the usage of a call that did not stream.
    expect(seen.ends).toEqual([['complete', { bytes: 15, isStream: false, value: { a: 1, b: [2] } }]]);
    const gzipped = counted(['{}'], { headers: { 'content-length': '9', 'content-encoding': 'gzip' } }).res;
    const g = watcher();
    watchBody(gzipped, g.w);
    await gzipped.json().catch(() => undefined);
    expect(g.seen.ends[0]![1].bytes).toBeUndefined();
  });

  it('ends the watch when text(), arrayBuffer(), bytes() or blob() settle, with the bytes read', async () => {
    const read = { text: (r: Response) => r.text(), arrayBuffer: (r: Response) => r.arrayBuffer(), blob: (r: Response) => r.blob(), bytes: (r: Response) => r.bytes() };
    for (const [name, fn] of Object.entries(read)) {
      const { res } = counted(['héllo', ' wörld']);
      const { seen, w } = watcher();
      watchBody(res, w);
      const value = await fn(res);
      expect(value, name).toBeDefined();
      // 'héllo wörld' is 11 characters and 13 bytes in UTF-8.
      expect(seen.ends, name).toEqual([['complete', { bytes: 13, isStream: false, value }]]);
    }
  });

  it('takes the bytes of a long text() from Content-Length, and leaves them out rather than walk a long text without one', async () => {
    const long = 'x'.repeat((1 << 18) + 1);
    const declared = counted([long], { headers: { 'content-length': String(long.length) } });
    const d = watcher();
    watchBody(declared.res, d.w);
    await declared.res.text();
    expect(d.seen.ends).toEqual([['complete', { bytes: long.length, isStream: false, value: long }]]);
    const chunked = counted([long]);
    const c = watcher();
    watchBody(chunked.res, c.w);
    expect(await chunked.res.text()).toHaveLength(long.length);
    expect(c.seen.ends).toEqual([['complete', { bytes: undefined, isStream: false, value: long }]]);
  });

  it('gives back what the native method gives: the same value and the same rejection', async () => {
    const bad = counted(['not json']);
    const plain = counted(['not json']);
    const { seen, w } = watcher();
    watchBody(bad.res, w);
    const ours = await bad.res.json().catch((e: unknown) => e);
    const theirs = await plain.res.json().catch((e: unknown) => e);
    expect(ours).toBeInstanceOf(SyntaxError);
    expect((ours as Error).message).toBe((theirs as Error).message);
    // The body itself was read to the end; only the parse failed.
    expect(seen.ends[0]![0]).toBe('complete');
    await expect(bad.res.text()).rejects.toThrow(TypeError);
  });

  it('hands out a counting body on first access and reports chunks, bytes and completion once', async () => {
    const { res, state } = counted(['a', 'bb', 'ccc']);
    const { seen, w } = watcher();
    watchBody(res, w);
    await tick();
    expect(state.pulled).toBe(0);
    const body = res.body!;
    expect(res.body).toBe(body);
    expect(body).toBeInstanceOf(ReadableStream);
    const reader = body.getReader();
    let text = '';
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value as Uint8Array);
    }
    expect(text).toBe('abbccc');
    expect(res.bodyUsed).toBe(true);
    expect(seen).toEqual({ chunks: 3, bytes: 6, ends: [['complete', { isStream: true }]] });
  });

  it('pulls only what the app reads: an endless source is never read ahead', async () => {
    const { res, state } = counted(() => 'data: tick\n\n');
    watchBody(res, watcher().w);
    const reader = res.body!.getReader();
    for (let i = 0; i < 100; i++) await reader.read();
    await tick();
    // 100 reads, and at most one chunk in flight: nothing is buffered behind the app's back.
    expect(state.pulled).toBeLessThanOrEqual(101);
    await reader.cancel('enough');
    expect(state.cancelled).toBe('enough');
  });

  it('reports cancellation and passes the reason to the original', async () => {
    const { res, state } = counted(['a', 'b', 'c']);
    const { seen, w } = watcher();
    watchBody(res, w);
    const reader = res.body!.getReader();
    await reader.read();
    await reader.cancel('stop');
    expect(state.cancelled).toBe('stop');
    expect(seen.ends).toEqual([['cancelled', { isStream: true }]]);
  });

  it('reports a stream error and hands the same error to the app, through body and through text()', async () => {
    const boom = new TypeError('network reset');
    const failing = () => {
      let n = 0;
      return new Response(
        new ReadableStream<Uint8Array>({
          pull(c) {
            if (n++ === 0) c.enqueue(enc.encode('a'));
            else c.error(boom);
          },
        }),
      );
    };
    const a = watcher();
    const viaBody = failing();
    watchBody(viaBody, a.w);
    const reader = viaBody.body!.getReader();
    await reader.read();
    await expect(reader.read()).rejects.toBe(boom);
    expect(a.seen.ends).toEqual([['error', { error: boom, isStream: true }]]);

    const b = watcher();
    const viaText = failing();
    watchBody(viaText, b.w);
    await expect(viaText.text()).rejects.toBe(boom);
    expect(b.seen.ends).toEqual([['error', { error: boom, isStream: false }]]);
  });

  it('keeps the native errors when the app mixes body and methods, as without the watch', async () => {
    const ours = counted(['a']);
    const theirs = counted(['a']);
    watchBody(ours.res, watcher().w);
    ours.res.body!.getReader();
    theirs.res.body!.getReader();
    const a = await ours.res.text().catch((e: unknown) => e);
    const b = await theirs.res.text().catch((e: unknown) => e);
    expect(a).toBeInstanceOf(TypeError);
    expect((a as Error).message).toBe((b as Error).message);
    expect(() => ours.res.clone()).toThrow(TypeError);

    // Read with text() first: body is then the native, used stream.
    const used = counted(['a']);
    watchBody(used.res, watcher().w);
    await used.res.text();
    expect(used.res.body!.locked).toBe(true);
  });

  it('watches clone() too: the first of the two the app reads is followed, once', async () => {
    const { res } = counted(['ab', 'c']);
    const { seen, w } = watcher();
    watchBody(res, w);
    const copy = res.clone();
    expect(copy).toBeInstanceOf(Response);
    expect(copy).not.toBe(res);
    expect(await copy.text()).toBe('abc');
    expect(seen.ends).toEqual([['complete', { bytes: 3, isStream: false, value: 'abc' }]]);
    const reader = res.body!.getReader();
    let text = '';
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += new TextDecoder().decode(r.value as Uint8Array);
    expect(text).toBe('abc');
    expect(seen.chunks).toBe(0);
    expect(seen.ends).toHaveLength(1);
  });

  it('a copy cancelled unread leaves the other to be followed; the last one left cancels the watch', async () => {
    // res.clone().body.cancel(), then the app reads the original: what it read is recorded.
    const first = counted(['ab', 'c']);
    const one = watcher();
    watchBody(first.res, one.w);
    void first.res.clone().body!.cancel();
    expect(await first.res.text()).toBe('abc');
    expect(one.seen.ends).toEqual([['complete', { bytes: 3, isStream: false, value: 'abc' }]]);
    // Both copies cancelled unread: the body was, as a whole.
    const second = counted(['ab', 'c']);
    const two = watcher();
    watchBody(second.res, two.w);
    const copy = second.res.clone();
    void copy.body!.cancel();
    expect(two.seen.ends).toEqual([]);
    void second.res.body!.cancel();
    expect(two.seen.ends).toEqual([['cancelled', { isStream: true }]]);
  });

  it('an abort while the body is read ends the watch as cancelled, as a cancelled reader does', async () => {
    for (const read of [(r: Response) => r.text(), async (r: Response) => { const reader = r.body!.getReader(); for (;;) if ((await reader.read()).done) return; }]) {
      const ctrl = new AbortController();
      const stream = new ReadableStream<Uint8Array>({
        start(c) {
          c.enqueue(enc.encode('data: a\n\n'));
          ctrl.signal.addEventListener('abort', () => c.error(new DOMException('The operation was aborted.', 'AbortError')));
        },
      });
      const res = new Response(stream, { headers: { 'content-type': 'text/event-stream' } });
      const { seen, w } = watcher();
      watchBody(res, w, { isStreaming: true });
      const reading = read(res).catch((e: unknown) => e);
      await tick();
      ctrl.abort();
      expect(((await reading) as Error).name).toBe('AbortError');
      expect(seen.ends.map(([outcome]) => outcome)).toEqual(['cancelled']);
    }
  });

  it('streams: text() reads through the counting body, so chunks are seen as they arrive', async () => {
    const { res } = counted(['data: a\n\n', 'data: b\n\n'], { headers: { 'content-type': 'text/event-stream' } });
    const { seen, w } = watcher();
    watchBody(res, w, { isStreaming: true });
    expect(await res.text()).toBe('data: a\n\ndata: b\n\n');
    expect(res.bodyUsed).toBe(true);
    expect(seen).toEqual({ chunks: 2, bytes: 18, ends: [['complete', { isStream: true }]] });
  });

  it('keeps BYOB readers working on byte streams', async () => {
    const { res } = counted(['hello', ' world']);
    watchBody(res, watcher().w);
    const reader = res.body!.getReader({ mode: 'byob' });
    let text = '';
    for (;;) {
      const { done, value } = await reader.read(new Uint8Array(64));
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    expect(text).toBe('hello world');
  });

  it('passes non-byte streams through with a default reader', async () => {
    const { res } = counted(['a', 'b'], { bytes: false });
    watchBody(res, watcher().w);
    const reader = res.body!.getReader();
    expect(new TextDecoder().decode((await reader.read()).value as Uint8Array)).toBe('a');
  });

  it('leaves responses without a usable body, subclasses and frozen ones alone', () => {
    const empty = new Response(null, { status: 204 });
    expect(watchBody(empty, watcher().w)).toBe(false);
    const locked = counted(['a']).res;
    locked.body!.getReader();
    expect(watchBody(locked, watcher().w)).toBe(false);
    class Mine extends Response {}
    expect(watchBody(new Mine('x'), watcher().w)).toBe(false);
    const frozen = Object.freeze(new Response('x'));
    expect(watchBody(frozen, watcher().w)).toBe(false);
    expect(Object.getPrototypeOf(frozen)).toBe(Response.prototype);
  });

  /** Runs `fn` with a fresh copy of the module under fake timers: its one sweep timer must be a fake one from the start. */
  const withFakeSweep = async (fn: (m: typeof import('../../../src/instrument/stream')) => Promise<void>): Promise<void> => {
    vi.resetModules();
    vi.useFakeTimers();
    try {
      await fn(await import('../../../src/instrument/stream'));
    } finally {
      vi.useRealTimers();
    }
  };

  it('ends an unread body after UNREAD_MS and an abandoned one after BODY_IDLE_MS', () =>
    withFakeSweep(async ({ watchBody }) => {
      const unread = watcher();
      watchBody(counted(['a']).res, unread.w, { now: Date.now });
      const dropped = watcher();
      const res = counted(['a', 'b']).res;
      watchBody(res, dropped.w, { now: Date.now });
      await res.body!.getReader().read();
      await vi.advanceTimersByTimeAsync(UNREAD_MS + 10);
      expect(unread.seen.ends).toEqual([['unread', { isStream: false }]]);
      expect(dropped.seen.ends).toEqual([]);
      await vi.advanceTimersByTimeAsync(BODY_IDLE_MS);
      expect(dropped.seen.ends).toEqual([['abandoned', { isStream: true }]]);
    }));

  it('ends as complete a watch whose last event came, once the reader has stopped; one that reads on goes on', () =>
    withFakeSweep(async ({ watchBody }) => {
      const ends: BodyOutcome[] = [];
      // The watcher says the last of what it follows came with the chunk "end".
      const last = { chunk: (c: unknown) => new TextDecoder().decode(c as Uint8Array) === 'end', end: (o: BodyOutcome) => void ends.push(o) };
      const stopped = counted(['a', 'end', 'close']).res;
      watchBody(stopped, last, { now: Date.now });
      const reader = stopped.body!.getReader();
      await reader.read();
      await reader.read();
      // It returns there: no cancel, no read of the close.
      await vi.advanceTimersByTimeAsync(UNREAD_MS + 10);
      expect(ends).toEqual(['complete']);
      // A proxy relaying several messages: "end", then more a while later, read as they come.
      let release!: () => void;
      const later = new Promise<void>((r) => (release = r));
      const relayed = new Response(
        new ReadableStream<Uint8Array>({
          async start(c) {
            c.enqueue(enc.encode('end'));
            await later;
            c.enqueue(enc.encode('more'));
            c.close();
          },
        }),
      );
      const more: BodyOutcome[] = [];
      watchBody(relayed, { ...last, end: (o) => void more.push(o) }, { now: Date.now });
      const r2 = relayed.body!.getReader();
      await r2.read();
      const pending = r2.read();
      await vi.advanceTimersByTimeAsync(3 * UNREAD_MS);
      expect(more).toEqual([]);
      release();
      expect(new TextDecoder().decode((await pending).value)).toBe('more');
      expect((await r2.read()).done).toBe(true);
      expect(more).toEqual(['complete']);
    }));

  it('waits unreadMs instead, when given, for the first read', () =>
    withFakeSweep(async ({ watchBody }) => {
      const late = watcher();
      const res = counted(['a']).res;
      watchBody(res, late.w, { now: Date.now, unreadMs: 5 * UNREAD_MS });
      await vi.advanceTimersByTimeAsync(2 * UNREAD_MS);
      expect(late.seen.ends).toEqual([]);
      await res.text();
      expect(late.seen.ends).toEqual([['complete', expect.objectContaining({ isStream: false })]]);
      const never = watcher();
      watchBody(counted(['b']).res, never.w, { now: Date.now, unreadMs: 5 * UNREAD_MS });
      await vi.advanceTimersByTimeAsync(5 * UNREAD_MS + 10);
      expect(never.seen.ends).toEqual([['unread', { isStream: false }]]);
    }));

  it('sets its sweep timer again when the runtime dropped it (Workers may cancel the timers of an ended request)', () =>
    withFakeSweep(async ({ watchBody }) => {
      const first = watcher();
      watchBody(counted(['a']).res, first.w, { now: Date.now });
      // The request ended and its timers went with it; a later request watches another body.
      vi.clearAllTimers();
      vi.setSystemTime(Date.now() + 3 * UNREAD_MS);
      const second = watcher();
      watchBody(counted(['b']).res, second.w, { now: Date.now });
      await vi.advanceTimersByTimeAsync(UNREAD_MS + 10);
      expect(first.seen.ends).toEqual([['unread', { isStream: false }]]);
      expect(second.seen.ends).toEqual([['unread', { isStream: false }]]);
    }));

  it('a watcher that throws does not disturb the body', async () => {
    const { res } = counted(['a', 'b']);
    watchBody(res, {
      chunk: () => {
        throw new Error('ours');
      },
      end: () => {
        throw new Error('ours too');
      },
    });
    expect(await res.text()).toBe('ab');
    const other = counted(['a', 'b']).res;
    watchBody(other, {
      chunk: () => {
        throw new Error('ours');
      },
      end: () => {
        throw new Error('ours too');
      },
    });
    expect(await new Response(other.body).text()).toBe('ab');
  });
});

describe('createSseCounter', () => {
  const feed = (parts: string[]) => {
    const got: string[] = [];
    const c = createSseCounter((data) => got.push(data));
    for (const p of parts) c.push(enc.encode(p));
    return { got, events: c.events };
  };

  it('counts events with data, joined over several data lines', () => {
    const { got, events } = feed(['data: a\n\n', 'event: x\ndata: b1\ndata: b2\n\n', ': comment\n\n', 'id: 3\n\n']);
    expect(got).toEqual(['a', 'b1\nb2']);
    expect(events).toBe(2);
  });

  it('handles lines and events split across chunks, CRLF and CR line ends', () => {
    const { got } = feed(['da', 'ta: hel', 'lo\r', '\n\r\n', 'data:x\r\r', 'data: y\n', '\n']);
    expect(got).toEqual(['hello', 'x', 'y']);
  });

  it('does not count an event cut off by the end of the stream', () => {
    const { events } = feed(['data: a\n\ndata: b\n']);
    expect(events).toBe(1);
  });

  it('keeps the data of an event that never ends bounded, line breaks included', () => {
    const parts = Array.from({ length: 100_000 }, () => 'data: x\n');
    const { got } = feed([...parts, '\n']);
    expect(got[0]!.length).toBeLessThanOrEqual((1 << 16) + 2);
  });

  it('counts and dispatches an event whose data line is too long to keep, cut short, split over chunks', () => {
    const part = 'b'.repeat(1 << 16);
    const parts = ['data: ', ...Array.from({ length: 32 }, () => part), '\n\n', 'data: next\n\n'];
    const { got, events } = feed(parts);
    expect(events).toBe(2);
    expect(got[0]!.length).toBeGreaterThan(0);
    expect(got[0]!.length).toBeLessThanOrEqual((1 << 20) + (1 << 16));
    expect(got[1]).toBe('next');
  });

  it('holds only the data of an event that spans chunks, not the chunks it came in', () => {
    const c = createSseCounter(() => undefined);
    const before = heapAfterGc();
    // Each chunk: a long comment, then one short data line of an event that has not ended.
    for (let i = 0; i < 400; i++) c.push(enc.encode(`: ${'x'.repeat(64_000)}\ndata: piece ${String(i).padStart(20, '0')}\n`));
    const held = heapAfterGc() - before;
    // 400 chunks are 25 MB of text; the data is 11 KB.
    expect(held).toBeLessThan(4_000_000);
    c.push(enc.encode('\n'));
    expect(c.events).toBe(1);
  });

  it('gives a long event its start and its end, wherever the chunks split it, holding neither whole', () => {
    const line = `data: ${responseCompleted(3_000_000)}\n\n`;
    for (const size of [1000, 1 << 16, 1 << 20, line.length]) {
      const got: Array<[string, string | undefined]> = [];
      const c = createSseCounter((data, _index, end) => got.push([data, end]));
      const before = heapAfterGc();
      let held = 0;
      for (let at = 0; at < line.length; at += size) {
        c.push(enc.encode(line.slice(at, at + size)));
        if (at === Math.floor(line.length / 2 / size) * size) {
          held = heapAfterGc() - before;
        }
      }
      expect(got).toHaveLength(1);
      const [data, end] = got[0]!;
      expect(data).toBe(line.slice(6, 6 + (1 << 16)));
      expect(end).toBe(line.slice(-2 - (1 << 15), -2));
      // Halfway through a 3 MB line: the chunk in hand and the kept start and end, not the line.
      expect(held).toBeLessThan(size + 1_000_000);
    }
  });

  it('gives the end of a multi-line event that the start could not hold, with the line breaks', () => {
    const got: Array<string | undefined> = [];
    const c = createSseCounter((_data, _index, end) => got.push(end));
    c.push(enc.encode(`data: ${'a'.repeat(70_000)}\ndata: tail\n\ndata: short\n\n`));
    expect(got).toEqual([`${'a'.repeat((1 << 15) - 5)}\ntail`, undefined]);
  });

  it('treats CR, an empty chunk, then LF as one line end', () => {
    const got: string[] = [];
    const c = createSseCounter((d) => got.push(d));
    c.push(enc.encode('data: a\r'));
    c.push(new Uint8Array(0));
    c.push(enc.encode('\ndata: b\r\n\r\n'));
    expect(got).toEqual(['a\nb']);
  });

  it('decodes UTF-8 split inside a character', () => {
    const bytes = enc.encode('data: né\n\n');
    const got: string[] = [];
    const c = createSseCounter((d) => got.push(d));
    c.push(bytes.slice(0, 8));
    c.push(bytes.slice(8));
    expect(got).toEqual(['né']);
  });
});

describe('isOutputEvent', () => {
  it('tells output from the setup and bookkeeping events LLM streams open and close with', () => {
    const output = [
      'Hello',
      ' {"not":"json"',
      '{"choices":[{"delta":{"content":"Hel"}}]}',
      '{"choices":[{"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"function":{"name":"f"}}]}}]}',
      '{"choices":[{"delta":{"reasoning_content":"Let me think"}}]}',
      '{"choices":[{"text":"Hel","index":0}]}',
      '{"type":"content_block_delta","delta":{"type":"text_delta","text":"Hi"}}',
      '{"type":"response.output_text.delta","delta":"Hi"}',
      '{"type":"text-delta","id":"0","delta":"Hi"}',
      '{"candidates":[{"content":{"parts":[{"text":"Hi"}]}}]}',
    ];
    const setup = [
      '[DONE]',
      '{"choices":[{"delta":{"role":"assistant","content":"","refusal":null}}],"usage":null}',
      '{"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2}}',
      '{"type":"message_start","message":{"usage":{"input_tokens":25}}}',
      '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
      '{"type":"ping"}',
      '{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}',
      '{"type":"response.created","response":{"usage":null}}',
      '{"type":"start"}',
    ];
    expect(output.filter((d) => !isOutputEvent(d))).toEqual([]);
    expect(setup.filter((d) => isOutputEvent(d))).toEqual([]);
  });

  it("tells them apart by their leading type when only a long event's start is at hand", () => {
    // response.created repeats the request's instructions and tools, often more than 64 KB.
    expect(isOutputEvent(`{"type":"response.created","response":{"instructions":"${'x'.repeat(70_000)}`)).toBe(false);
    expect(isOutputEvent(`{"type":"response.output_text.delta","delta":"${'x'.repeat(70_000)}`)).toBe(true);
    expect(isOutputEvent(`{"choices":[{"delta":{"content":"${'x'.repeat(70_000)}`)).toBe(true);
    // An image generation's partial images are its first output, cut short or whole.
    expect(isOutputEvent(`{"type":"response.image_generation_call.partial_image","partial_image_b64":"${'A'.repeat(70_000)}`)).toBe(true);
    expect(isOutputEvent('{"type":"response.image_generation_call.partial_image","partial_image_index":0,"partial_image_b64":"AAAA"}')).toBe(true);
    expect(isOutputEvent('{"type":"response.image_generation_call.in_progress"}')).toBe(false);
  });
});

describe('usageFromEvent', () => {
  it('reads OpenAI chat, OpenAI Responses and Anthropic usage', () => {
    expect(usageFromEvent('{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}')).toEqual({ input: 12, output: 5, total: 17 });
    expect(usageFromEvent('{"type":"response.completed","response":{"usage":{"input_tokens":3,"output_tokens":4,"total_tokens":7}}}')).toEqual({ input: 3, output: 4, total: 7 });
    expect(usageFromEvent('{"type":"message_start","message":{"usage":{"input_tokens":25,"output_tokens":1}}}')).toEqual({ input: 25, output: 1 });
    expect(usageFromEvent('{"type":"message_delta","usage":{"output_tokens":15}}')).toEqual({ output: 15 });
  });

  it('counts cached and reasoning tokens apart, so no token is in two usage types', () => {
    // OpenAI chat: cached tokens are part of prompt_tokens, reasoning part of completion_tokens.
    expect(
      usageFromEvent(
        '{"choices":[],"usage":{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,"prompt_tokens_details":{"cached_tokens":1920},"completion_tokens_details":{"reasoning_tokens":256}}}',
      ),
    ).toEqual({ input: 86, input_cached_tokens: 1920, output: 44, output_reasoning_tokens: 256, total: 2306 });
    // OpenAI Responses: the same, under input_tokens_details / output_tokens_details.
    expect(
      usageFromEvent(
        '{"type":"response.completed","response":{"usage":{"input_tokens":100,"input_tokens_details":{"cached_tokens":64},"output_tokens":20,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":120}}}',
      ),
    ).toEqual({ input: 36, input_cached_tokens: 64, output: 20, total: 120 });
    // Anthropic: cache reads and writes are counted apart from input_tokens already.
    expect(
      usageFromEvent('{"type":"message_start","message":{"usage":{"input_tokens":25,"cache_creation_input_tokens":1200,"cache_read_input_tokens":800,"output_tokens":1}}}'),
    ).toEqual({ input: 25, input_cache_creation: 1200, input_cache_read: 800, output: 1 });
    // A detail larger than its total (a provider bug) takes no more than the total.
    expect(usageFromEvent('{"usage":{"prompt_tokens":10,"prompt_tokens_details":{"cached_tokens":50}}}')).toEqual({ input: 0, input_cached_tokens: 10 });
    // Details that are not counts are left out.
    expect(usageFromEvent('{"usage":{"prompt_tokens":10,"prompt_tokens_details":{"cached_tokens":"5"},"completion_tokens_details":null}}')).toEqual({ input: 10 });
  });

  it("reads the response's usage from the end of a Responses API event too long to keep whole", () => {
    const data = responseCompleted(3_000_000);
    const got: Array<[string, string | undefined]> = [];
    const c = createSseCounter((d, _index, end) => got.push([d, end]));
    c.push(enc.encode(`data: ${data}\n\n`));
    const [head, end] = got[0]!;
    expect(usageFromEvent(head, end)).toEqual({ input: 1000, input_cached_tokens: 200, output: 4000, total: 5200 });
    // An event short enough to keep whole is read whole, as before.
    expect(usageFromEvent(responseCompleted(1000))).toEqual({ input: 1000, input_cached_tokens: 200, output: 4000, total: 5200 });
    // An end with no usage, one whose usage is cut off, and one with only an escaped "usage" inside a string.
    expect(usageFromEvent(head, '"output_tokens":4000},"user":null}}')).toBeUndefined();
    expect(usageFromEvent(head, 'xx","usage":{"input_tokens":1000,"output_')).toBeUndefined();
    expect(usageFromEvent(head, 'text":"say \\"usage\\":{\\"input_tokens\\":1} to me"}]}}')).toBeUndefined();
  });

  it("reads Gemini's usageMetadata: cached tokens out of the prompt, thinking apart from the candidates", () => {
    // A streamed chunk (`streamGenerateContent?alt=sse`): every chunk carries the counts so far.
    const chunk = (usage: object) => JSON.stringify({ candidates: [{ content: { parts: [{ text: 'Hi' }], role: 'model' }, index: 0 }], usageMetadata: usage, modelVersion: 'gemini-2.5-flash' });
    expect(usageFromEvent(chunk({ promptTokenCount: 9, candidatesTokenCount: 2, totalTokenCount: 11 }))).toEqual({ input: 9, output: 2, total: 11 });
    // Gemini's promptTokenCount includes the cached tokens; its thoughts are not in candidatesTokenCount.
    expect(
      usageFromEvent(chunk({ promptTokenCount: 2100, cachedContentTokenCount: 2048, candidatesTokenCount: 40, thoughtsTokenCount: 310, totalTokenCount: 2450 })),
    ).toEqual({ input: 52, input_cached_tokens: 2048, output: 40, output_reasoning_tokens: 310, total: 2450 });
    // The prompts of its tool calls are input too, counted apart from promptTokenCount.
    expect(usageFromEvent(chunk({ promptTokenCount: 100, toolUsePromptTokenCount: 50, candidatesTokenCount: 10, totalTokenCount: 160 }))).toEqual({ input: 150, output: 10, total: 160 });
    // The key alone, inside a text part, is no usage.
    expect(usageFromEvent('{"candidates":[{"content":{"parts":[{"text":"\\"usageMetadata\\":{}"}]}}]}')).toBeUndefined();
  });

  it('ignores events without usage, null usage and invalid JSON', () => {
    expect(usageFromEvent('{"choices":[{"delta":{"content":"hi"}}],"usage":null}')).toBeUndefined();
    expect(usageFromEvent('[DONE]')).toBeUndefined();
    expect(usageFromEvent('{"usage":{"prompt_tokens":1')).toBeUndefined();
    expect(usageFromEvent('{"usage":{"prompt_tokens":-1}}')).toBeUndefined();
  });
});

describe('usageFromBody', () => {
  const chat = { id: 'chatcmpl-1', object: 'chat.completion', choices: [{ message: { role: 'assistant', content: 'Hi' } }], usage: { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 } };

  it('reads the usage of a call that did not stream, from what json() or text() gave the app', () => {
    expect(usageFromBody(chat)).toEqual({ input: 12, output: 5, total: 17 });
    expect(usageFromBody(JSON.stringify(chat))).toEqual({ input: 12, output: 5, total: 17 });
    expect(usageFromBody({ type: 'message', content: [], usage: { input_tokens: 25, cache_read_input_tokens: 800, output_tokens: 9 } })).toEqual({ input: 25, input_cache_read: 800, output: 9 });
    expect(usageFromBody({ candidates: [], usageMetadata: { promptTokenCount: 4, candidatesTokenCount: 6, totalTokenCount: 10 } })).toEqual({ input: 4, output: 6, total: 10 });
  });

  it("reads Gemini's JSON array of chunks (no alt=sse) and an SSE stream read as text, whatever their length", () => {
    const chunks = [
      { candidates: [{ content: { parts: [{ text: 'Hel' }] } }], usageMetadata: { promptTokenCount: 4, totalTokenCount: 4 } },
      { candidates: [{ content: { parts: [{ text: 'lo' }] } }], usageMetadata: { promptTokenCount: 4, candidatesTokenCount: 6, totalTokenCount: 10 } },
    ];
    expect(usageFromBody(chunks)).toEqual({ input: 4, output: 6, total: 10 });
    expect(usageFromBody(JSON.stringify(chunks))).toEqual({ input: 4, output: 6, total: 10 });
    const sse = 'data: {"choices":[{"delta":{"content":"Hi"}}],"usage":null}\n\ndata: {"choices":[],"usage":{"prompt_tokens":9,"completion_tokens":2}}\n\ndata: [DONE]\n\n';
    expect(usageFromBody(sse)).toEqual({ input: 9, output: 2 });
    expect(usageFromBody('data: {"choices":[{"delta":{"content":"' + 'x'.repeat(100_000) + '"}}]}\n\n' + sse)).toEqual({ input: 9, output: 2 });
    expect(usageFromBody([])).toBeUndefined();
  });

  it('reads a long text from its end, without parsing it again', () => {
    const long = JSON.stringify({ ...chat, choices: [{ message: { role: 'assistant', content: 'x'.repeat(500_000) } }] });
    const parse = vi.spyOn(JSON, 'parse');
    try {
      expect(usageFromBody(long)).toEqual({ input: 12, output: 5, total: 17 });
      expect(parse.mock.calls.every(([text]) => String(text).length < 1000)).toBe(true);
    } finally {
      parse.mockRestore();
    }
  });

  it('finds nothing in bodies without usage: other JSON, text, arrays, null', () => {
    for (const body of [{ answer: 'Hi' }, { usage: null }, 'plain text', '{"usage":', [], null, 42, '']) expect(usageFromBody(body), JSON.stringify(body)).toBeUndefined();
  });
});
