import { AsyncLocalStorage } from 'node:async_hooks';
import { describe, expect, it, vi } from 'vitest';
import { testTracer } from '../../helpers/collect';
import { alsContext, stackContext } from '../../../src/core/context';
import { createTracer } from '../../../src/core/tracer';
import { getTracer, init, setTracer, currentSpan } from '../../../src/core/global';
import { parseTraceparent } from '../../../src/propagation/traceparent';
import * as A from '../../../src/core/semconv';
import { internalErrorCount } from '../../../src/lib/reportInternal';

describe('context', () => {
  it('makes a callback span current synchronously with the stack context', () => {
    const { tracer } = testTracer({ contextManager: stackContext() });
    const trace = tracer.createTrace('t');
    expect(tracer.currentSpan()).toBeUndefined();
    trace.span('outer', (outer) => {
      expect(tracer.currentSpan()).toBe(outer);
      const inner = tracer.startSpan('implicit-child');
      expect(inner.parentId).toBe(outer.spanId);
      inner.end();
    });
    expect(tracer.currentSpan()).toBeUndefined();
  });

  it('keeps the span current across awaits with AsyncLocalStorage', async () => {
    const { tracer, byName } = testTracer({ contextManager: alsContext(AsyncLocalStorage) });
    await tracer.withTrace('t', async () => {
      await tracer.span('outer', async () => {
        await new Promise((r) => setTimeout(r, 1));
        await tracer.span('after-await', async () => undefined);
      });
    });
    expect(byName('after-await').parentId).toBe(byName('outer').spanId);
    expect(byName('outer').parentId).toBe(byName('t').spanId);
  });

  it("uses Node's AsyncLocalStorage by default, with no import of node:async_hooks from the core", async () => {
    // No contextManager: what a Node script gets from createTracer() or init().
    const { tracer, byName } = testTracer({ contextManager: undefined });
    await tracer.withTrace('job', async () => {
      await new Promise((r) => setTimeout(r, 1));
      await tracer.span('after-await', async () => undefined);
    });
    expect(byName('after-await').parentId).toBe(byName('job').spanId);
    expect(byName('after-await').traceId).toBe(byName('job').traceId);
  });

  it('falls back to the stack where the runtime has no AsyncLocalStorage (a page)', async () => {
    vi.stubGlobal('process', { ...process, getBuiltinModule: undefined });
    try {
      const { tracer, byName } = testTracer({ contextManager: undefined });
      await tracer.withTrace('job', async () => {
        expect(tracer.currentSpan()?.name).toBe('job');
        await new Promise((r) => setTimeout(r, 1));
        tracer.startSpan('after-await').end();
      });
      expect(byName('after-await').traceId).not.toBe(byName('job').traceId);
    } finally {
      vi.unstubAllGlobals();
    }
  });

  it('keeps concurrent traces apart with AsyncLocalStorage', async () => {
    const { tracer, spans } = testTracer({ contextManager: alsContext(AsyncLocalStorage) });
    const job = (name: string) =>
      tracer.withTrace(name, async () => {
        await new Promise((r) => setTimeout(r, 2));
        tracer.startSpan(`${name}-child`).end();
      });
    await Promise.all([job('a'), job('b')]);
    const a = spans.find((s) => s.name === 'a');
    const b = spans.find((s) => s.name === 'b');
    expect(spans.find((s) => s.name === 'a-child')?.parentId).toBe(a?.spanId);
    expect(spans.find((s) => s.name === 'b-child')?.parentId).toBe(b?.spanId);
  });

  it('withSpan sets the current span for a callback and restores it', () => {
    const { tracer } = testTracer();
    const span = tracer.startSpan('manual');
    const seen = tracer.withSpan(span, () => tracer.currentSpan());
    expect(seen).toBe(span);
    expect(tracer.currentSpan()).toBeUndefined();
  });

  it('starts a new trace when there is no current span and parent is null', () => {
    const { tracer } = testTracer();
    tracer.createTrace('t').span('inside', () => {
      const fresh = tracer.startSpan('fresh', { parent: null });
      expect(fresh.parentId).toBeUndefined();
      expect(fresh.traceId).not.toBe(tracer.currentSpan()?.traceId);
    });
  });

  it('keeps the links of a span that starts a new trace', () => {
    const { tracer, byName } = testTracer();
    const cause = tracer.createTrace('cause');
    const linked = tracer.startSpan('linked', { links: [{ context: cause.spanContext(), attributes: { why: 'fan-in' } }] });
    tracer.span('run', { parent: null, links: [{ context: cause.spanContext() }] }, () => undefined);
    linked.end();
    cause.finish();
    expect(byName('linked').links).toEqual([{ traceId: cause.traceId, spanId: cause.spanId, flags: cause.flags, attrs: { why: 'fan-in' } }]);
    expect(byName('run').links).toHaveLength(1);
  });
});

describe('remote parents and sampling', () => {
  const incoming = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

  it('continues a remote trace from a parsed traceparent', () => {
    const { tracer, byName } = testTracer();
    const parent = parseTraceparent(incoming);
    const trace = tracer.createTrace({ name: 'server', kind: 'server', parent: { ...parent!, traceState: 'vendor=1' } });
    trace.finish();
    const root = byName('server');
    expect(root.traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(root.parentId).toBe('b7ad6b7169203331');
    expect(root.remoteParent).toBe(true);
    expect(root.traceState).toBe('vendor=1');
    expect(root.kind).toBe('server');
  });

  it('leaves the trace-level fields (metadata too) to the root when it continues a remote trace, unless update() sets them', () => {
    const { tracer, byName, scores } = testTracer({ release: 'api-2' });
    const parent = parseTraceparent(incoming)!;
    const continued = tracer.createTrace({ name: 'POST /api/chat', kind: 'server', parent, input: 'prompt', metadata: { region: 'eu' } });
    continued.setOutput('answer');
    continued.addMetadata('pod', 'a1');
    continued.score('server-ok', 1);
    continued.finish();
    const server = byName('POST /api/chat');
    // Langfuse takes these from any span: they would overwrite the page root's.
    for (const key of [A.TRACE_NAME, A.RELEASE, A.TRACE_INPUT, A.TRACE_OUTPUT, `${A.TRACE_METADATA}.region`, `${A.TRACE_METADATA}.pod`]) expect(server.attrs[key], key).toBeUndefined();
    expect(server.attrs).toMatchObject({ [`${A.OBSERVATION_METADATA}.region`]: 'eu', [`${A.OBSERVATION_METADATA}.pod`]: 'a1' });
    expect(server.attrs[A.OBSERVATION_INPUT]).toBe('prompt');
    expect(server.attrs[A.OBSERVATION_OUTPUT]).toBe('answer');
    // Its score is the span's, not the whole trace's.
    expect(scores.find((r) => r.name === 'server-ok')).toMatchObject({ name: 'server-ok', observationId: server.spanId });

    const named = tracer.createTrace({ name: 'server', parent });
    named.update({ name: 'chat turn', input: 'q', output: 'a', metadata: { region: 'eu' } });
    named.finish();
    expect(byName('chat turn').attrs).toMatchObject({ [A.TRACE_NAME]: 'chat turn', [A.TRACE_INPUT]: 'q', [A.TRACE_OUTPUT]: 'a', [`${A.TRACE_METADATA}.region`]: 'eu' });

    const own = tracer.createTrace({ name: 'job', input: 'x', metadata: { queue: 'q1' } });
    own.addMetadata('attempt', 2);
    own.score('job-ok', 1);
    own.finish();
    expect(byName('job').attrs).toMatchObject({ [A.TRACE_NAME]: 'job', [A.RELEASE]: 'api-2', [A.TRACE_INPUT]: 'x', [`${A.TRACE_METADATA}.queue`]: 'q1', [`${A.TRACE_METADATA}.attempt`]: 2 });
    expect(scores.find((r) => r.name === 'job-ok')).not.toHaveProperty('observationId');
  });

  it('marks only the first local span as having a remote parent', () => {
    const { tracer, byName } = testTracer();
    const trace = tracer.createTrace({ name: 'server', parent: parseTraceparent(incoming)! });
    trace.span('local-child', () => undefined);
    trace.finish();
    expect(byName('server').remoteParent).toBe(true);
    expect(byName('local-child').remoteParent).toBeUndefined();
  });

  it('follows an unsampled remote parent and records nothing, but still propagates', () => {
    const { tracer, spans } = testTracer();
    const parent = parseTraceparent('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00')!;
    const trace = tracer.createTrace({ name: 'server', parent });
    const child = trace.startSpan('db');
    expect(child.isRecording).toBe(false);
    expect(child.traceparent()).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-00$/);
    child.end();
    trace.finish();
    expect(spans).toHaveLength(0);
  });

  it('samples nothing at rate 0 and everything at rate 1', () => {
    const none = testTracer({ sampleRate: 0 });
    for (let i = 0; i < 50; i++) none.tracer.createTrace('t').finish();
    expect(none.spans).toHaveLength(0);
    const all = testTracer({ sampleRate: 1 });
    for (let i = 0; i < 50; i++) all.tracer.createTrace('t').finish();
    expect(all.spans).toHaveLength(50);
  });

  it('samples about the given share of new traces, whole traces at a time', () => {
    const { tracer, spans } = testTracer({ sampleRate: 0.25 });
    for (let i = 0; i < 4000; i++) {
      const t = tracer.createTrace('t');
      t.span('child', () => undefined);
      t.finish();
    }
    const roots = spans.filter((s) => s.name === 't');
    expect(roots.length).toBeGreaterThan(800);
    expect(roots.length).toBeLessThan(1200);
    expect(spans.filter((s) => s.name === 'child')).toHaveLength(roots.length);
  });

  it('sets sampled and random flags on new traces and carries them to children', () => {
    const { tracer } = testTracer();
    const trace = tracer.createTrace('t');
    expect(trace.flags).toBe(3);
    expect(trace.startSpan('c').traceparent().endsWith('-03')).toBe(true);
  });

  it('gives each child a new span id in the same trace', () => {
    const { tracer } = testTracer();
    const trace = tracer.createTrace('t');
    const ids = new Set(Array.from({ length: 100 }, () => trace.startSpan('c').spanId));
    expect(ids.size).toBe(100);
  });
});

describe('records', () => {
  it('are plain data: structured clone and JSON carry exactly the record fields', () => {
    const { tracer, spans } = testTracer();
    tracer.createTrace('t').span('child', (s) => {
      s.setAttribute('k', 'v').recordEvent('e');
    });
    const child = spans[0]!;
    const keys = ['v', 'rec', 'traceId', 'spanId', 'parentId', 'flags', 'name', 'kind', 'startMs', 'endMs', 'attrs', 'events', 'links', 'status', 'resource'];
    const cloned = structuredClone(child);
    expect(Object.getPrototypeOf(cloned)).toBe(Object.prototype);
    expect(Object.keys(cloned).sort()).toEqual([...keys].sort());
    expect(Object.keys(JSON.parse(JSON.stringify(child))).sort()).toEqual(keys.filter((k) => k !== 'parentId' || child.parentId).sort());
    expect(cloned).toMatchObject({ name: 'child', attrs: { k: 'v' }, events: [{ name: 'e' }] });
  });
});

describe('filters and beforeSend', () => {
  it('keeps events under a minimum duration, and matches a RegExp with the g flag every time', () => {
    const { tracer, spans, tick } = testTracer({ filter: { minDurationMs: 10, exclude: [/^health/g] } });
    const t = tracer.createTrace('turn');
    t.event('clicked');
    for (let i = 0; i < 4; i++) {
      const h = t.startSpan('healthcheck');
      tick(20);
      h.end();
    }
    tick(20);
    t.finish();
    expect(spans.map((s) => s.name).sort()).toEqual(['clicked', 'turn']);
  });

  it('refuses filter matchers that are not names, RegExps or functions, at creation', () => {
    expect(() => testTracer({ filter: { include: [42 as never] } })).toThrow(/"filter\.include" must be an array of names, RegExps and functions/);
  });

  it('drops spans shorter than minDurationMs', () => {
    const { tracer, spans, tick } = testTracer({ filter: { minDurationMs: 10 } });
    const t = tracer.createTrace('t');
    t.span('fast', () => tick(2));
    t.span('slow', () => tick(15));
    t.finish();
    expect(spans.map((s) => s.name)).toEqual(['slow', 't']);
  });

  it('keeps only included names and drops excluded ones', () => {
    const { tracer, spans } = testTracer({ filter: { include: [/^keep/, 't'], exclude: ['keep-not', (r) => r.attrs.secret === true] } });
    const t = tracer.createTrace('t');
    for (const n of ['keep-a', 'keep-not', 'other']) t.span(n, () => undefined);
    t.span('keep-secret', (s) => s.setAttribute('secret', true));
    t.finish();
    expect(spans.map((s) => s.name)).toEqual(['keep-a', 't']);
  });

  it('keeps a span whose filter function throws, and says so', () => {
    const boom = (): boolean => {
      throw new Error('matcher bug');
    };
    const { tracer, spans } = testTracer({ debug: true, filter: { include: [boom], exclude: [boom] } });
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      tracer.createTrace('kept').end();
      expect(String(warn.mock.calls.flat())).toContain('matcher bug');
    } finally {
      warn.mockRestore();
    }
    expect(spans.map((s) => s.name)).toEqual(['kept']);
  });

  it('filters by observation type and span kind', () => {
    const { tracer, spans } = testTracer({ filter: { types: ['generation'] } });
    const t = tracer.createTrace('t');
    t.generation('llm', {}, () => undefined);
    t.span('plain', () => undefined);
    t.finish();
    expect(spans.map((s) => s.name)).toEqual(['llm']);
    const k = testTracer({ filter: { kinds: ['client'] } });
    k.tracer.startSpan('c', { kind: 'client' }).end();
    k.tracer.startSpan('i').end();
    expect(k.spans.map((s) => s.name)).toEqual(['c']);
  });

  it('lets beforeSend drop, replace or edit records; a span it throws on is dropped, said once', () => {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const { tracer, spans } = testTracer({
      beforeSend: (r) => {
        if (r.name === 'drop') return null;
        if (r.name === 'replace') return { ...r, name: 'replaced' };
        if (r.name === 'throw') throw new Error('hook bug');
        r.attrs.edited = true;
        return undefined;
      },
    });
    for (const n of ['drop', 'replace', 'throw', 'edit', 'throw']) tracer.startSpan(n).end();
    // The hook may be where personal data is scrubbed: what it failed on does not go out as it was.
    expect(spans.map((s) => s.name)).toEqual(['replaced', 'edit']);
    expect(spans[1]?.attrs.edited).toBe(true);
    // (Said whatever `debug` is; with it on, reportInternal logs each throw besides.)
    expect(warn.mock.calls.filter((c) => String(c[0]).includes('beforeSend threw, so the span was dropped'))).toHaveLength(1);
    warn.mockRestore();
  });
});

describe('processors', () => {
  it('calls onStart with the live span and onEnd with the record, in order', () => {
    const calls: string[] = [];
    const { tracer } = testTracer({
      processors: [{ onStart: (s) => calls.push(`start:${s.name}`), onEnd: (r) => calls.push(`end:${r.name}`) }],
    });
    tracer.createTrace('t').span('c', () => undefined);
    expect(calls).toEqual(['start:t', 'start:c', 'end:c']);
  });

  it('keeps working when a processor throws', () => {
    const { tracer, spans } = testTracer({
      processors: [{ onStart: () => { throw new Error('x'); }, onEnd: () => { throw new Error('y'); } }],
    });
    expect(() => tracer.startSpan('s').end()).not.toThrow();
    expect(spans).toHaveLength(1);
  });

  it('reports an async hook that rejects instead of leaving an unhandled rejection', async () => {
    const unhandled = vi.fn();
    process.on('unhandledRejection', unhandled);
    try {
      const before = internalErrorCount();
      const fail = async (): Promise<void> => {
        throw new Error('database down');
      };
      const { tracer, spans } = testTracer({ processors: [{ onStart: fail, onEnd: fail, onScore: fail }] });
      tracer.withTrace('t', (t) => t.score('helpful', 1));
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(unhandled).not.toHaveBeenCalled();
      expect(internalErrorCount() - before).toBe(3);
      expect(spans).toHaveLength(1);
    } finally {
      process.off('unhandledRejection', unhandled);
    }
  });

  it('shuts each processor down once, also when shutdown() is called again while it runs', async () => {
    const shut = vi.fn(() => new Promise<void>((resolve) => setTimeout(resolve, 10)));
    const started = vi.fn();
    const { tracer } = testTracer({ processors: [{ shutdown: shut, onStart: started }] });
    const first = tracer.shutdown();
    const second = tracer.shutdown();
    await Promise.all([first, second, tracer.shutdown()]);
    expect(shut).toHaveBeenCalledOnce();
    tracer.startSpan('late').end();
    expect(started).not.toHaveBeenCalled();
  });

  it('flushes and shuts down every processor, then records nothing', async () => {
    const flushed = vi.fn(async () => undefined);
    const shut = vi.fn(async () => undefined);
    const { tracer, spans } = testTracer({ processors: [{ forceFlush: flushed, shutdown: shut }] });
    await tracer.flush();
    expect(flushed).toHaveBeenCalledOnce();
    await tracer.shutdown();
    expect(shut).toHaveBeenCalledOnce();
    tracer.startSpan('late').end();
    expect(spans).toHaveLength(0);
  });

  it('flush resolves even when a processor rejects', async () => {
    const { tracer } = testTracer({ processors: [{ forceFlush: () => Promise.reject(new Error('down')) }] });
    await expect(tracer.flush()).resolves.toBeUndefined();
  });

  it('flush and shutdown stop waiting for a processor that hangs, after 30 s', async () => {
    vi.useFakeTimers();
    try {
      const hang = () => new Promise<void>(() => undefined);
      const { tracer } = testTracer({ processors: [{ forceFlush: hang, shutdown: hang }] });
      for (const call of [() => tracer.flush(), () => tracer.shutdown()]) {
        let done = false;
        const p = call().then(() => (done = true));
        await vi.advanceTimersByTimeAsync(29_999);
        expect(done).toBe(false);
        await vi.advanceTimersByTimeAsync(1);
        await p;
        expect(done).toBe(true);
      }
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('global tracer', () => {
  it('works before init, recording nothing, and init replaces it', () => {
    setTracer(undefined);
    const before = getTracer();
    expect(() => before.withTrace('t', (t) => t.span('s', () => 1))).not.toThrow();
    const spans: string[] = [];
    const tracer = init({ processors: [{ onEnd: (r) => spans.push(r.name) }], contextManager: stackContext() });
    expect(getTracer()).toBe(tracer);
    tracer.withTrace('x', () => expect(currentSpan()?.name).toBe('x'));
    expect(spans).toEqual(['x']);
    setTracer(undefined);
  });

  it('createTracer does not touch the global tracer', () => {
    setTracer(undefined);
    const mine = createTracer();
    expect(getTracer()).not.toBe(mine);
  });
});

describe('never throws into the caller', () => {
  it('falls back to its own clock when the now option throws or gives no epoch time', () => {
    for (const now of [() => { throw new Error('clock down'); }, () => 'x' as unknown as number, () => Number.NaN, () => -5]) {
      const { tracer, spans } = testTracer({ now });
      const before = Date.now();
      expect(() => tracer.withTrace('job', (t) => t.span('step', () => 1))).not.toThrow();
      expect(spans.map((s) => s.name)).toEqual(['step', 'job']);
      for (const s of spans) {
        expect(s.startMs).toBeGreaterThanOrEqual(before - 1);
        expect(s.endMs).toBeGreaterThanOrEqual(s.startMs);
      }
    }
  });

  it('keeps the span and returns nothing when a plain-JS caller leaves out the callback', () => {
    const { tracer, spans } = testTracer();
    const before = internalErrorCount();
    const t = tracer.createTrace('t');
    expect(() => tracer.span('no-fn' as never, undefined as never)).not.toThrow();
    expect(t.span('child' as never, {} as never)).toBeUndefined();
    expect(() => t.generation('gen', { model: 'm' } as never, undefined as never)).not.toThrow();
    expect(() => tracer.withTrace('job', undefined as never)).not.toThrow();
    expect(tracer.withSpan(t, undefined as never)).toBeUndefined();
    t.finish();
    expect(spans.map((s) => s.name).sort()).toEqual(['child', 'gen', 'job', 'no-fn', 't']);
    expect(spans.every((s) => s.status.code !== 'error')).toBe(true);
    expect(internalErrorCount() - before).toBe(5);
  });

  it('accepts garbage arguments on every span method', () => {
    const { tracer, spans } = testTracer();
    const t = tracer.createTrace(42 as never);
    const s = t.startSpan(undefined as never, null as never);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const calls: Array<() => unknown> = [
      () => s.setAttribute(undefined as never, 1),
      () => s.setAttribute('big', 10n),
      () => s.setAttribute('fn', () => 1),
      () => s.setAttribute('cyc', cyclic),
      () => s.setAttribute('sym', Symbol('x')),
      () => s.setAttributes(null as never),
      () => s.addMetadata(undefined as never),
      () => s.setInput(cyclic),
      () => s.setOutput(new Map([[1, { a: 1n }]])),
      () => s.setStatus('weird' as never),
      () => s.recordError(undefined),
      () => s.recordError(Object.create(null)),
      () => s.recordEvent(null as never, cyclic),
      () => s.addLink(null as never),
      () => s.addLink({} as never),
      () => s.score(undefined as never, 1),
      () => s.event(undefined as never),
      () => t.update(null as never),
      () => t.addTag(null as never, 7 as never),
      () => s.end('soon' as never),
    ];
    for (const call of calls) expect(call).not.toThrow();
    t.finish();
    const rec = spans.find((r) => r.spanId === s.spanId)!;
    expect(rec.attrs.big).toBe('10');
    expect(rec.attrs.cyc).toBe('{"self":"[Circular]"}');
    expect(rec.attrs[A.OBSERVATION_INPUT]).toBe('{"self":"[Circular]"}');
    expect(rec.name).toBe('span');
  });

  it('takes hostile values and options (throwing proxies and getters) without losing the rest', () => {
    const { tracer, spans } = testTracer();
    const trap = new Proxy(function rpc() {}, { get: () => { throw new Error('trap'); } });
    const hostileOpts = new Proxy({}, { get: () => { throw new Error('trap'); } });
    const { proxy: revoked, revoke } = Proxy.revocable({}, {});
    revoke();
    const getter = {
      a: 1,
      get bad() {
        throw new Error('getter');
      },
      c: 3,
    };
    const t = tracer.createTrace({ name: 'checkout', input: trap, userId: 'u1' });
    expect(t.isRecording).toBe(true);
    const calls: Array<() => unknown> = [
      () => t.setInput(trap),
      () => t.setOutput(trap),
      () => t.startSpan('child', hostileOpts).end(),
      () => t.startGeneration('gen', hostileOpts).end(),
      () => t.span('run', hostileOpts, () => 1),
      () => t.setAttributes(getter),
      () => t.addMetadata(getter),
      () => t.recordEvent('evt', getter),
    ];
    for (const call of calls) expect(call).not.toThrow();
    let thrown: unknown;
    try {
      t.span('fails', () => {
        throw revoked;
      });
    } catch (error) {
      thrown = error;
    }
    expect(thrown === revoked).toBe(true);
    t.finish();
    expect(spans.map((r) => r.name).sort()).toEqual(['checkout', 'child', 'fails', 'gen', 'run']);
    const root = spans.find((r) => r.name === 'checkout')!;
    expect(root.attrs.a).toBe(1);
    expect(root.attrs.c).toBe(3);
    expect(root.attrs[`${A.TRACE_METADATA}.c`]).toBe(3);
    expect(root.events[0]!.attrs).toEqual({ a: 1, c: 3 });
    expect(root.attrs[A.OBSERVATION_INPUT]).toBe('[Function [Unserializable]]');
    const fails = spans.find((r) => r.name === 'fails')!;
    expect(fails.status.code).toBe('error');
    expect(fails.events[0]!.attrs?.[A.EXCEPTION_MESSAGE]).toBe('[unreadable error]');
  });

  it('a failing mask hides the value instead of leaking it', () => {
    const { tracer, byName } = testTracer({ mask: () => { throw new Error('mask bug'); } });
    tracer.startSpan('s').setInput('secret prompt').end();
    expect(byName('s').attrs[A.OBSERVATION_INPUT]).toBe('[mask failed]');
  });

  it('mask rewrites input and output', () => {
    const { tracer, byName } = testTracer({ mask: (v, field) => (field === 'input' ? String(v).replace(/\d/g, '#') : v) });
    tracer.startSpan('s').setInput('card 4111').setOutput('ok 1').end();
    expect(byName('s').attrs[A.OBSERVATION_INPUT]).toBe('card ####');
    expect(byName('s').attrs[A.OBSERVATION_OUTPUT]).toBe('ok 1');
  });

  it('mask sees each metadata entry of spans, traces and scores, and can drop one', () => {
    const seen: string[] = [];
    const scores: unknown[] = [];
    const email = /[\w.]+@[\w.]+/g;
    const { tracer, byName } = testTracer({
      mask: (v, field) => {
        seen.push(field);
        if (field !== 'metadata') return v;
        if (v === 'drop me') return undefined;
        return typeof v === 'string' ? v.replace(email, '<email>') : v;
      },
      processors: [{ onScore: (s) => scores.push(s) }],
    });
    const trace = tracer.createTrace({ name: 't', metadata: { owner: 'ana@example.com' } });
    trace.span('s', (s) => s.addMetadata({ contact: 'bo@example.com', n: 2, gone: 'drop me' }).addMetadata('one', 'cy@example.com'));
    trace.score('rated', 1, { metadata: { by: 'di@example.com' } });
    trace.finish();
    expect(byName('t').attrs[`${A.TRACE_METADATA}.owner`]).toBe('<email>');
    const s = byName('s').attrs;
    expect(s[`${A.OBSERVATION_METADATA}.contact`]).toBe('<email>');
    expect(s[`${A.OBSERVATION_METADATA}.one`]).toBe('<email>');
    expect(s[`${A.OBSERVATION_METADATA}.n`]).toBe(2);
    expect(s).not.toHaveProperty(`${A.OBSERVATION_METADATA}.gone`);
    // Trace metadata every span carries comes masked too.
    expect(s[`${A.TRACE_METADATA}.owner`]).toBe('<email>');
    expect(scores).toMatchObject([{ metadata: { by: '<email>' } }]);
    expect(seen.filter((f) => f === 'metadata')).toHaveLength(6);
  });

  it("a mask written for text also masks objects: one given back as it came is masked again as its JSON text", () => {
    const calls: unknown[] = [];
    const email = /[\w.]+@[\w.]+/g;
    const { tracer, byName } = testTracer({
      mask: (v) => {
        calls.push(v);
        return typeof v === 'string' ? v.replace(email, '<email>') : v;
      },
    });
    const messages = [{ role: 'user', content: 'I am ana@example.com' }];
    tracer.createTrace('t').span('s', (s) => s.setInput(messages).setOutput('to bo@example.com').addMetadata({ flags: { contact: 'cy@example.com' } }));
    const attrs = byName('s').attrs;
    expect(JSON.parse(String(attrs[A.OBSERVATION_INPUT]))).toEqual([{ role: 'user', content: 'I am <email>' }]);
    expect(attrs[A.OBSERVATION_OUTPUT]).toBe('to <email>');
    expect(attrs[`${A.OBSERVATION_METADATA}.flags`]).toBe('{"contact":"<email>"}');
    // The caller's object is not changed.
    expect(messages[0]!.content).toBe('I am ana@example.com');
    // A mask that gives back a new object is called once for it.
    calls.length = 0;
    const { tracer: t2, byName: by2 } = testTracer({ mask: (v) => (calls.push(v), typeof v === 'object' && v ? { masked: true } : v) });
    t2.createTrace('t').span('s2', (s) => s.setInput({ a: 1 }));
    expect(calls).toHaveLength(1);
    expect(by2('s2').attrs[A.OBSERVATION_INPUT]).toBe('{"masked":true}');
  });

  it('keeps what masks written for objects gave back, whatever they do with text', () => {
    const big = { email: 'ana@example.com', messages: [{ role: 'user', content: 'hi' }] };
    const cases: [string, (v: unknown) => unknown, unknown][] = [
      // Edits the object in place and returns it: given the text too, it throws, and its object stands.
      ['in place', (v) => (typeof v === 'object' && v && 'email' in v ? Object.assign(v, { email: '<hidden>' }) : v), { email: '<hidden>', messages: big.messages }],
      // Drops text, keeps objects.
      ['drops text', (v) => (typeof v === 'string' ? undefined : v), big],
      // Replaces long text whole: not JSON any more, so the object stands.
      ['replaces text whole', (v) => (typeof v === 'string' && v.length > 20 ? '[long text]' : v), big],
    ];
    for (const [name, mask, recorded] of cases) {
      const { tracer, byName } = testTracer({ mask });
      tracer.createTrace('t').span(name, (s) => s.setInput(structuredClone(big)));
      expect(JSON.parse(String(byName(name).attrs[A.OBSERVATION_INPUT])), name).toEqual(recorded);
    }
  });

  it('keeps a list of metadata values a list, masked element by element through its JSON', () => {
    const email = /[\w.]+@[\w.]+/g;
    const text = testTracer({ mask: (v) => (typeof v === 'string' ? v.replace(email, '<email>') : v) });
    const plain = testTracer({ mask: (v) => v });
    for (const { tracer } of [text, plain]) tracer.createTrace('t').span('s', (s) => s.addMetadata({ owners: ['ana@example.com', 'bo'], n: [1, 2] }));
    expect(text.byName('s').attrs).toMatchObject({ [`${A.OBSERVATION_METADATA}.owners`]: ['<email>', 'bo'], [`${A.OBSERVATION_METADATA}.n`]: [1, 2] });
    expect(plain.byName('s').attrs).toMatchObject({ [`${A.OBSERVATION_METADATA}.owners`]: ['ana@example.com', 'bo'], [`${A.OBSERVATION_METADATA}.n`]: [1, 2] });
  });

  it('a failing mask hides metadata too', () => {
    const { tracer, byName } = testTracer({ mask: () => { throw new Error('mask bug'); } });
    tracer.createTrace('t').span('s', (s) => s.addMetadata('user', 'ana@example.com'));
    expect(byName('s').attrs[`${A.OBSERVATION_METADATA}.user`]).toBe('[mask failed]');
  });
});
