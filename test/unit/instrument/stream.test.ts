import { describe, expect, it } from 'vitest';
import { createSseCounter, usageFromEvent, watchBody, type BodyOutcome } from '../../../src/instrument/stream';

const enc = new TextEncoder();

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
  const seen = { chunks: 0, bytes: 0, ends: [] as Array<[BodyOutcome, unknown]> };
  return {
    seen,
    w: {
      chunk: (c: unknown) => {
        seen.chunks++;
        seen.bytes += (c as Uint8Array).byteLength;
      },
      end: (o: BodyOutcome, e?: unknown) => void seen.ends.push([o, e]),
    },
  };
};

describe('watchBody', () => {
  it('passes the body through unchanged and reports chunks, bytes and completion once', async () => {
    const { res } = counted(['{"a":', '1,"b":', '[2]}'], { status: 201, statusText: 'Created', headers: { 'content-type': 'application/json', 'x-k': 'v' } });
    const { seen, w } = watcher();
    const out = watchBody(res, w);
    expect(out).not.toBe(res);
    expect(out).toBeInstanceOf(Response);
    expect(out.status).toBe(201);
    expect(out.statusText).toBe('Created');
    expect(out.ok).toBe(true);
    expect(out.headers).toBe(res.headers);
    expect(out.headers.get('x-k')).toBe('v');
    expect(await out.json()).toEqual({ a: 1, b: [2] });
    expect(seen).toEqual({ chunks: 3, bytes: 15, ends: [['complete', undefined]] });
  });

  it('keeps url, redirected and type of the original, also on clone()', async () => {
    const { res } = counted(['x']);
    Object.defineProperty(res, 'url', { value: 'https://api.test/a' });
    Object.defineProperty(res, 'redirected', { value: true });
    const out = watchBody(res, watcher().w);
    expect(out.url).toBe('https://api.test/a');
    expect(out.redirected).toBe(true);
    expect(out.type).toBe(res.type);
    const copy = out.clone();
    expect(copy).toBeInstanceOf(Response);
    expect(copy.url).toBe('https://api.test/a');
    expect(await copy.text()).toBe('x');
    expect(await out.text()).toBe('x');
  });

  it('does not touch the original body until the app reads', async () => {
    const { res, state } = counted(['a', 'b']);
    const out = watchBody(res, watcher().w);
    await new Promise((r) => setTimeout(r, 10));
    expect(state.pulled).toBe(0);
    expect(res.body!.locked).toBe(false);
    await out.text();
    expect(state.pulled).toBe(3);
  });

  it('pulls only what the app reads: an endless source is never read ahead', async () => {
    const { res, state } = counted(() => 'data: tick\n\n');
    const out = watchBody(res, watcher().w);
    const reader = out.body!.getReader();
    for (let i = 0; i < 100; i++) await reader.read();
    await new Promise((r) => setTimeout(r, 10));
    // 100 reads, and at most one chunk in flight: nothing is buffered behind the app's back.
    expect(state.pulled).toBeLessThanOrEqual(101);
    await reader.cancel('enough');
    expect(state.cancelled).toBe('enough');
  });

  it('reports cancellation and passes the reason to the original', async () => {
    const { res, state } = counted(['a', 'b', 'c']);
    const { seen, w } = watcher();
    const reader = watchBody(res, w).body!.getReader();
    await reader.read();
    await reader.cancel('stop');
    expect(state.cancelled).toBe('stop');
    expect(seen.ends).toEqual([['cancelled', undefined]]);
  });

  it('reports a stream error and hands the same error to the app', async () => {
    const boom = new TypeError('network reset');
    let n = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (n++ === 0) c.enqueue(enc.encode('a'));
        else c.error(boom);
      },
    });
    const { seen, w } = watcher();
    const out = watchBody(new Response(stream), w);
    await expect(out.text()).rejects.toBe(boom);
    expect(seen.ends).toEqual([['error', boom]]);
  });

  it('keeps BYOB readers working on byte streams', async () => {
    const { res } = counted(['hello', ' world']);
    const out = watchBody(res, watcher().w);
    const reader = out.body!.getReader({ mode: 'byob' });
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
    const out = watchBody(res, watcher().w);
    expect(await out.text()).toBe('ab');
  });

  it('leaves responses without a usable body alone', () => {
    const empty = new Response(null, { status: 204 });
    expect(watchBody(empty, watcher().w)).toBe(empty);
    const { res } = counted(['a']);
    res.body!.getReader();
    expect(watchBody(res, watcher().w)).toBe(res);
  });

  it('a watcher that throws does not disturb the body', async () => {
    const { res } = counted(['a', 'b']);
    const out = watchBody(res, {
      chunk: () => {
        throw new Error('ours');
      },
      end: () => {
        throw new Error('ours too');
      },
    });
    expect(await out.text()).toBe('ab');
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

  it('decodes UTF-8 split inside a character', () => {
    const bytes = enc.encode('data: né\n\n');
    const got: string[] = [];
    const c = createSseCounter((d) => got.push(d));
    c.push(bytes.slice(0, 8));
    c.push(bytes.slice(8));
    expect(got).toEqual(['né']);
  });
});

describe('usageFromEvent', () => {
  it('reads OpenAI chat, OpenAI Responses and Anthropic usage', () => {
    expect(usageFromEvent('{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}')).toEqual({ input: 12, output: 5, total: 17 });
    expect(usageFromEvent('{"type":"response.completed","response":{"usage":{"input_tokens":3,"output_tokens":4,"total_tokens":7}}}')).toEqual({ input: 3, output: 4, total: 7 });
    expect(usageFromEvent('{"type":"message_start","message":{"usage":{"input_tokens":25,"output_tokens":1}}}')).toEqual({ input: 25, output: 1 });
    expect(usageFromEvent('{"type":"message_delta","usage":{"output_tokens":15}}')).toEqual({ output: 15 });
  });

  it('ignores events without usage, null usage and invalid JSON', () => {
    expect(usageFromEvent('{"choices":[{"delta":{"content":"hi"}}],"usage":null}')).toBeUndefined();
    expect(usageFromEvent('[DONE]')).toBeUndefined();
    expect(usageFromEvent('{"usage":{"prompt_tokens":1')).toBeUndefined();
    expect(usageFromEvent('{"usage":{"prompt_tokens":-1}}')).toBeUndefined();
  });
});
