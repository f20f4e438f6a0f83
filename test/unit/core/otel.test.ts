import { AsyncLocalStorage } from 'node:async_hooks';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  context,
  createTraceState,
  INVALID_SPAN_CONTEXT,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Context as ApiContext,
  type ContextManager as ApiContextManager,
  type Tracer as ApiTracer,
  type TracerProvider as ApiTracerProvider,
} from '@opentelemetry/api';
import { otelTracer, otelTracerProvider } from '../../../src/core/otel';
import { createTracer } from '../../../src/core/tracer';
import { alsContext } from '../../../src/core/context';
import { setTracer } from '../../../src/core/global';
import { internalErrorCount } from '../../../src/lib/reportInternal';
import { resetClock } from '../../../src/lib/now';
import { toOtlpJson } from '../../../src/export/otlp';
import type { SpanRecord } from '../../../src/protocol';
import * as A from '../../../src/core/semconv';

const setup = (opts: Parameters<typeof createTracer>[0] = {}) => {
  const spans: SpanRecord[] = [];
  const tracer = createTracer({ processors: [{ onEnd: (r) => spans.push(r) }], ...opts });
  const byName = (name: string): SpanRecord => {
    const found = spans.find((s) => s.name === name);
    if (!found) throw new Error(`no span ${name} among ${spans.map((s) => s.name).join(', ')}`);
    return found;
  };
  return { spans, tracer, byName };
};

/** An AsyncLocalStorage context manager, as `@opentelemetry/context-async-hooks` registers one. */
class AlsContextManager implements ApiContextManager {
  private readonly als = new AsyncLocalStorage<ApiContext>();
  active(): ApiContext {
    return this.als.getStore() ?? ROOT_CONTEXT;
  }
  with<A extends unknown[], F extends (...args: A) => ReturnType<F>>(ctx: ApiContext, fn: F, thisArg?: ThisParameterType<F>, ...args: A): ReturnType<F> {
    return this.als.run(ctx, () => fn.apply(thisArg, args));
  }
  bind<T>(_ctx: ApiContext, target: T): T {
    return target;
  }
  enable(): this {
    return this;
  }
  disable(): this {
    this.als.disable();
    return this;
  }
}

describe('otelTracerProvider / otelTracer', () => {
  afterEach(() => {
    trace.disable();
    context.disable();
    setTracer(undefined);
    vi.unstubAllGlobals();
    resetClock();
  });

  it('records spans made through the OpenTelemetry API, nested, under the tracer scope', () => {
    const { tracer, byName, spans } = setup();
    // Typed as the API's own interfaces: edgetrace's shapes must be assignable to them.
    const provider: ApiTracerProvider = otelTracerProvider(tracer);
    expect(trace.setGlobalTracerProvider(provider)).toBe(true);
    const api = trace.getTracer('chat-lib', '1.2.3');

    const result = api.startActiveSpan('outer', { kind: SpanKind.SERVER, attributes: { route: '/chat' } }, (outer) => {
      const inner = api.startSpan('inner', { kind: SpanKind.CLIENT }, trace.setSpan(context.active(), outer));
      inner.setAttribute('n', 1).setAttributes({ ok: true, list: ['a', 'b'] });
      inner.end();
      outer.end();
      return 42;
    });

    expect(result).toBe(42);
    const outer = byName('outer');
    const inner = byName('inner');
    expect(outer).toMatchObject({ kind: 'server', parentId: undefined, attrs: { route: '/chat' } });
    expect(inner).toMatchObject({ kind: 'client', parentId: outer.spanId, traceId: outer.traceId, attrs: { n: 1, ok: true, list: ['a', 'b'] } });
    expect(inner.resource.scope).toEqual({ name: 'chat-lib', version: '1.2.3' });
    expect(inner.resource.attrs['service.name']).toBe(tracer.config.serviceName);

    // A native span of the same tracer keeps edgetrace's scope: the encoder writes two scopes.
    tracer.createTrace('native').finish();
    const [resource] = toOtlpJson(spans).resourceSpans;
    expect(resource!.scopeSpans.map((s) => [s.scope.name, s.spans.length])).toEqual([
      ['chat-lib', 2],
      ['edgetrace', 1],
    ]);
  });

  it('nests under edgetrace’s current span when the context holds none, and starts a trace for root', async () => {
    const { tracer, byName } = setup({ contextManager: alsContext(AsyncLocalStorage) });
    const api: ApiTracer = otelTracer(tracer);

    await tracer.withTrace('turn', async () => {
      await Promise.resolve();
      // The API's context.active() is ROOT_CONTEXT without an OpenTelemetry context manager.
      await api.startActiveSpan('llm', async (llm) => {
        await new Promise((r) => setTimeout(r, 1));
        api.startSpan('tool', undefined, context.active()).end();
        llm.end();
      });
      api.startSpan('detached', { root: true }).end();
    });

    const turn = byName('turn');
    expect(byName('llm')).toMatchObject({ parentId: turn.spanId, traceId: turn.traceId });
    // Across an await: AsyncLocalStorage keeps `llm` current inside startActiveSpan's callback.
    expect(byName('tool').parentId).toBe(byName('llm').spanId);
    expect(byName('detached').parentId).toBeUndefined();
    expect(byName('detached').traceId).not.toBe(turn.traceId);
    expect(byName('llm').resource.scope.name).toBe('edgetrace');
  });

  it('nests under the span an explicit context holds, whatever is current', () => {
    // The pattern of libraries that keep contexts themselves (AI SDK 7's @ai-sdk/otel): start a
    // span, put it in a context with trace.setSpan(), start its children with that context.
    const { tracer, byName } = setup();
    const api = otelTracer(tracer);
    const root = api.startSpan('generate');
    const rootContext = trace.setSpan(context.active(), root);
    const step = api.startSpan('step 1', undefined, rootContext);
    tracer.span('unrelated current span', () => api.startSpan('chat', undefined, trace.setSpan(rootContext, step)).end());
    step.end();
    root.end();
    expect(trace.getSpan(rootContext)).toBe(root);
    expect(byName('step 1').parentId).toBe(byName('generate').spanId);
    expect(byName('chat').parentId).toBe(byName('step 1').spanId);
  });

  it('continues a remote or foreign span context held in the context', () => {
    const { tracer, byName } = setup();
    const api = otelTracer(tracer);
    const remote = {
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      traceFlags: 1,
      isRemote: true,
      traceState: createTraceState('vendor=abc,other=1'),
    };
    const span = api.startSpan('handler', { kind: SpanKind.SERVER }, trace.setSpanContext(ROOT_CONTEXT, remote));
    expect(span.spanContext()).toMatchObject({ traceId: remote.traceId, traceFlags: 1, isRemote: false });
    expect(span.spanContext().traceState?.serialize()).toBe('vendor=abc,other=1');
    span.end();
    expect(byName('handler')).toMatchObject({ traceId: remote.traceId, parentId: remote.spanId, remoteParent: true, traceState: 'vendor=abc,other=1' });

    // An invalid context (the API's INVALID_SPAN_CONTEXT) names no parent: a new trace.
    api.startSpan('fresh', undefined, trace.setSpanContext(ROOT_CONTEXT, INVALID_SPAN_CONTEXT)).end();
    expect(byName('fresh').parentId).toBeUndefined();
  });

  it("passes the inputs and outputs libraries record as attributes (the AI SDK's prompts) through mask", () => {
    const seen: [unknown, string][] = [];
    const { tracer, byName } = setup({ mask: (value, field) => (seen.push([value, field]), field === 'input' ? '[masked input]' : { hidden: true }) });
    const api = otelTracer(tracer);
    const span = api.startSpan('ai.generateText', { attributes: { 'ai.prompt': '{"prompt":"my card is 4111"}', 'ai.model.id': 'gpt-4o' } });
    span.setAttribute('ai.response.text', 'the answer');
    span.setAttributes({ 'gen_ai.input.messages': '[{"role":"user"}]', 'gen_ai.request.model': 'gpt-4o' });
    span.setAttribute('langfuse.observation.output', 'out');
    // Indexed messages (OpenLLMetry, OpenInference), and the GenAI conventions' content events.
    span.setAttributes({ 'gen_ai.prompt.0.content': 'hi', 'llm.output_messages.0.message.content': 'yo', 'gen_ai.prompt_tokens': 3 });
    span.addEvent('gen_ai.content.prompt', { 'gen_ai.prompt': 'event prompt' });
    span.end();
    expect(byName('ai.generateText').attrs).toMatchObject({
      'ai.prompt': '[masked input]',
      'ai.model.id': 'gpt-4o',
      'ai.response.text': '{"hidden":true}',
      'gen_ai.input.messages': '[masked input]',
      'gen_ai.request.model': 'gpt-4o',
      'langfuse.observation.output': '{"hidden":true}',
      'gen_ai.prompt.0.content': '[masked input]',
      'llm.output_messages.0.message.content': '{"hidden":true}',
      'gen_ai.prompt_tokens': 3,
    });
    expect(byName('ai.generateText').events[0]!.attrs).toEqual({ 'gen_ai.prompt': '[masked input]' });
    expect(seen).toEqual([
      ['{"prompt":"my card is 4111"}', 'input'],
      ['the answer', 'output'],
      ['[{"role":"user"}]', 'input'],
      ['out', 'output'],
      ['hi', 'input'],
      ['yo', 'output'],
      ['event prompt', 'input'],
    ]);
    // A mask that throws keeps the value out.
    const failing = setup({ mask: () => { throw new Error('mask bug'); } });
    otelTracer(failing.tracer).startSpan('s', { attributes: { 'ai.prompt': 'secret' } }).end();
    expect(failing.byName('s').attrs['ai.prompt']).toBe('[mask failed]');
    // A mask of text patterns also masks a list a library records, as it masks the span's own input.
    const text = setup({ mask: (v) => (typeof v === 'string' ? v.replace(/[\w.]+@[\w.]+/g, '<email>') : v) });
    otelTracer(text.tracer).startSpan('list', { attributes: { 'gen_ai.prompt': ['I am ana@example.com', 'hi'] } }).end();
    expect(text.byName('list').attrs['gen_ai.prompt']).toBe('["I am <email>","hi"]');
  });

  it('gives the inputs and outputs libraries record as attributes the input/output limit', () => {
    const { tracer, byName } = setup({ limits: { maxStringLength: 100, maxIoLength: 1000 } });
    const api = otelTracer(tracer);
    const prompt = 'p'.repeat(800);
    const span = api.startSpan('ai.generateText', { attributes: { 'ai.prompt': prompt, 'ai.settings': 's'.repeat(800) } });
    span.setAttribute('gen_ai.completion.0.content', 'c'.repeat(2000));
    span.setAttributes({ 'gen_ai.input.messages': prompt, 'other': 'o'.repeat(800) });
    span.end();
    const attrs = byName('ai.generateText').attrs;
    expect(attrs['ai.prompt']).toBe(prompt);
    expect(attrs['gen_ai.input.messages']).toBe(prompt);
    expect(attrs['gen_ai.completion.0.content']).toHaveLength(1000);
    expect(attrs['ai.settings']).toHaveLength(100);
    expect(attrs.other).toHaveLength(100);
    expect(attrs[A.TRUNCATED]).toBe(3);
    // A getter that throws loses its own attribute only: the prompt and the parent stay.
    const parent = api.startSpan('parent');
    const withGetter = { 'ai.prompt': 'kept', get broken(): string { throw new Error('getter'); } };
    api.startSpan('child', { attributes: withGetter as never }, trace.setSpan(context.active(), parent)).end();
    parent.end();
    expect(byName('child').attrs['ai.prompt']).toBe('kept');
    expect(byName('child').parentId).toBe(byName('parent').spanId);
  });

  it('maps the API span methods: events, links, status, exceptions, names and times', () => {
    const { tracer, byName } = setup();
    const api = otelTracer(tracer);
    const linked = tracer.createTrace('linked');
    linked.finish();
    const origin = performance.timeOrigin;
    const span = api.startSpan('call', {
      startTime: [1_700_000_000, 500_000_000],
      links: [{ context: { traceId: linked.traceId, spanId: linked.spanId, traceFlags: 1 }, attributes: { why: 'retry' } }],
    });
    span.addEvent('first', { chunk: 1 }, new Date(1_700_000_000_600));
    // An epoch time from before this process started stays an epoch time.
    span.addEvent('second', 1_700_000_000_700);
    span.addEvent('perf', performance.now());
    span.addLink({ context: { traceId: linked.traceId, spanId: linked.spanId, traceFlags: 0 } });
    span.recordException(new RangeError('too far'));
    expect(span.isRecording()).toBe(true);
    span.updateName('call renamed');
    span.setStatus({ code: SpanStatusCode.ERROR, message: 'failed upstream' });
    span.end([1_700_000_001, 0]);
    expect(span.isRecording()).toBe(false);

    const r = byName('call renamed');
    expect(r.startMs).toBe(1_700_000_000_500);
    expect(r.endMs).toBe(1_700_000_001_000);
    expect(r.events.map((e) => [e.name, e.attrs])).toEqual([
      ['first', { chunk: 1 }],
      ['second', undefined],
      ['perf', undefined],
      [A.EXCEPTION_EVENT, { [A.EXCEPTION_TYPE]: 'RangeError', [A.EXCEPTION_MESSAGE]: 'too far', [A.EXCEPTION_STACKTRACE]: expect.stringContaining('too far') }],
    ]);
    expect(r.events[0]!.timeMs).toBe(1_700_000_000_600);
    expect(r.events[1]!.timeMs).toBe(1_700_000_000_700);
    // A performance.now() reading is placed on the epoch clock.
    expect(Math.abs(r.events[2]!.timeMs - (origin + performance.now()))).toBeLessThan(5_000);
    expect(r.links).toHaveLength(2);
    expect(r.links[0]).toMatchObject({ traceId: linked.traceId, spanId: linked.spanId, flags: 1, attrs: { why: 'retry' } });
    expect(r.status).toEqual({ code: 'error', message: 'failed upstream' });
  });

  it('records an exception without setting the status, as OpenTelemetry does', () => {
    const { tracer, byName } = setup();
    const span = otelTracer(tracer).startSpan('soft');
    span.recordException('plain text');
    span.recordException({ name: 'ApiError', message: 'rate limited', code: 429 });
    span.setStatus({ code: SpanStatusCode.OK });
    span.end();
    const r = byName('soft');
    expect(r.status.code).toBe('ok');
    expect(r.events.map((e) => e.attrs)).toEqual([
      { [A.EXCEPTION_TYPE]: 'Error', [A.EXCEPTION_MESSAGE]: 'plain text' },
      { [A.EXCEPTION_TYPE]: 'ApiError', [A.EXCEPTION_MESSAGE]: 'rate limited' },
    ]);
  });

  it('gives each span a spanContext whose tracestate changes as the W3C list does', () => {
    const { tracer } = setup();
    const parent = tracer.createTrace({ name: 'p', parent: { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), flags: 1, traceState: 'x=1,y=2' } });
    const span = otelTracer(tracer).startSpan('c', undefined, trace.setSpan(ROOT_CONTEXT, { spanContext: () => ({ traceId: parent.traceId, spanId: parent.spanId, traceFlags: 1, traceState: createTraceState('x=1,y=2') }) } as never));
    const state = span.spanContext().traceState!;
    expect(state.get('y')).toBe('2');
    expect(state.set('y', '3').serialize()).toBe('y=3,x=1');
    expect(state.unset('x').serialize()).toBe('y=2');
    expect(state.serialize()).toBe('x=1,y=2');
  });

  it('follows the API rules for status: Ok is final, Unset is ignored, and Ok after an error clears its level', () => {
    const { tracer, byName } = setup();
    const api = otelTracer(tracer);
    const unset = api.startSpan('unset');
    unset.setStatus({ code: SpanStatusCode.ERROR, message: 'boom' }).setStatus({ code: SpanStatusCode.UNSET });
    unset.end();
    const final = api.startSpan('final');
    final.setStatus({ code: SpanStatusCode.OK }).setStatus({ code: SpanStatusCode.ERROR, message: 'late' });
    final.end();
    const recovered = api.startSpan('recovered');
    recovered.setStatus({ code: SpanStatusCode.ERROR, message: 'retrying' }).setStatus({ code: SpanStatusCode.OK });
    recovered.end();
    expect(byName('unset')).toMatchObject({ status: { code: 'error', message: 'boom' }, attrs: { [A.OBSERVATION_LEVEL]: 'ERROR' } });
    expect(byName('final').status).toEqual({ code: 'ok' });
    expect(byName('final').attrs[A.OBSERVATION_LEVEL]).toBeUndefined();
    expect(byName('recovered').status).toEqual({ code: 'ok' });
    expect(byName('recovered').attrs[A.OBSERVATION_LEVEL]).toBeUndefined();
    expect(byName('recovered').attrs[A.OBSERVATION_STATUS_MESSAGE]).toBeUndefined();
  });

  it('reports the sampled flag as TraceFlags.SAMPLED, which API code compares with', () => {
    const { tracer, byName } = setup();
    const span = otelTracer(tracer).startSpan('sampled');
    expect(span.spanContext().traceFlags).toBe(TraceFlags.SAMPLED);
    span.end();
    // The record keeps the W3C random bit of a trace this process started.
    expect(byName('sampled').flags).toBe(3);
  });

  it('keeps epoch times where the performance clock reads epoch milliseconds (timeOrigin 0, as in Cloudflare Workers)', () => {
    vi.stubGlobal('performance', { timeOrigin: 0, now: () => Date.now() });
    resetClock();
    const { tracer, byName } = setup();
    const start = Date.now() - 5_000;
    const span = otelTracer(tracer).startSpan('earlier', { startTime: start });
    span.addEvent('midway', start + 1_000);
    span.end(start + 2_000);
    expect(byName('earlier')).toMatchObject({ startMs: start, endMs: start + 2_000 });
    expect(byName('earlier').events[0]!.timeMs).toBe(start + 1_000);
  });

  it('with a context manager registered, uses the API context: its active span is the parent, and an active span is the API’s active span', async () => {
    const cm = new AlsContextManager();
    expect(context.setGlobalContextManager(cm)).toBe(true);
    const { tracer, byName } = setup({ contextManager: alsContext(AsyncLocalStorage) });
    const api = otelTracer(tracer);
    // A parent made active through the API's context alone.
    const parent = api.startSpan('parent');
    context.with(trace.setSpan(context.active(), parent as never), () => api.startSpan('child').end());
    parent.end();
    expect(byName('child').parentId).toBe(byName('parent').spanId);
    // startActiveSpan: trace.getActiveSpan() is the span, across await; explicit contexts nest.
    let seen: unknown;
    await api.startActiveSpan('outer', async (outer) => {
      await new Promise((r) => setTimeout(r, 1));
      seen = trace.getActiveSpan();
      api.startActiveSpan('inner', (inner) => {
        api.startSpan('leaf', {}, context.active()).end();
        inner.end();
      });
      // An app's span inside the library's: the nearer parent.
      tracer.span('app step', () => api.startSpan('lib call').end());
      outer.end();
    });
    const outer = byName('outer');
    expect(seen).toBeDefined();
    expect((seen as { spanContext(): { spanId: string } }).spanContext().spanId).toBe(outer.spanId);
    expect(byName('inner').parentId).toBe(outer.spanId);
    expect(byName('leaf').parentId).toBe(byName('inner').spanId);
    expect(byName('lib call').parentId).toBe(byName('app step').spanId);
    expect(byName('app step').parentId).toBe(outer.spanId);
  });

  it('keeps a library span the parent of its children when the app span around it started at the same millisecond', () => {
    // Cloudflare Workers stop the clock between I/O: every span of one synchronous run starts at once.
    const { tracer, byName } = setup({ now: () => 1_700_000_000_000 });
    const api = otelTracer(tracer);
    tracer.span('request', () => {
      const generate = api.startSpan('generate');
      api.startSpan('step', undefined, trace.setSpan(context.active(), generate)).end();
      generate.end();
    });
    expect(byName('generate').parentId).toBe(byName('request').spanId);
    expect(byName('step').parentId).toBe(byName('generate').spanId);
  });

  it('does not record for an unsampled trace, but still carries its context', () => {
    const { tracer, spans } = setup({ sampleRate: 0 });
    const span = otelTracer(tracer).startSpan('quiet');
    expect(span.isRecording()).toBe(false);
    expect(span.spanContext().traceFlags & 1).toBe(0);
    expect(span.spanContext().traceId).toMatch(/^[\da-f]{32}$/);
    span.end();
    expect(spans).toHaveLength(0);
  });

  it('uses the global tracer at each span when none is given', () => {
    const first = setup();
    setTracer(first.tracer);
    const api = otelTracerProvider().getTracer('lib');
    api.startSpan('one').end();
    const second = setup();
    setTracer(second.tracer);
    api.startSpan('two').end();
    expect(first.spans.map((s) => s.name)).toEqual(['one']);
    expect(second.spans.map((s) => s.name)).toEqual(['two']);
  });

  it('renames the trace when a root span is renamed, as an HTTP instrumentation does once it knows the route', () => {
    const { tracer, byName } = setup();
    const api = otelTracer(tracer);
    const root = api.startSpan('GET');
    const ctx = trace.setSpan(ROOT_CONTEXT, root);
    const child = api.startSpan('db', {}, ctx);
    root.updateName('GET /users/:id');
    child.end();
    root.end();
    expect(byName('GET /users/:id').attrs[A.TRACE_NAME]).toBe('GET /users/:id');
    expect(byName('db').attrs[A.TRACE_NAME]).toBe('GET /users/:id');
    // A child's name is its own.
    const other = api.startSpan('outer');
    const inner = api.startSpan('inner', {}, trace.setSpan(ROOT_CONTEXT, other));
    inner.updateName('inner renamed');
    inner.end();
    other.end();
    expect(byName('inner renamed').attrs[A.TRACE_NAME]).toBe('outer');
  });

  it('tells a context that cannot follow await that an async startActiveSpan callback is under way, as span() does', async () => {
    const awaiting: string[] = [];
    const stack: unknown[] = [];
    const contextManager = {
      active: () => stack[stack.length - 1] as never,
      with: <R>(span: unknown, fn: () => R): R => {
        stack.push(span);
        try {
          return fn();
        } finally {
          stack.pop();
        }
      },
      awaiting: (span: { name: string }) => void awaiting.push(span.name),
    };
    const { tracer } = setup({ contextManager });
    const api = otelTracer(tracer);
    api.startActiveSpan('sync', (span) => span.end());
    await api.startActiveSpan('lib.async', async (span) => {
      await Promise.resolve();
      span.end();
    });
    expect(awaiting).toEqual(['lib.async']);
  });

  it('passes the callback’s throw and rejection through unchanged', async () => {
    const { tracer, byName } = setup();
    const api = otelTracer(tracer);
    const error = new Error('app failure');
    expect(() =>
      api.startActiveSpan('sync', (span) => {
        span.end();
        throw error;
      }),
    ).toThrow(error);
    await expect(
      api.startActiveSpan('async', {}, ROOT_CONTEXT, async (span) => {
        span.end();
        throw error;
      }),
    ).rejects.toBe(error);
    expect(byName('sync').status.code).toBe('unset');
    expect(byName('async').status.code).toBe('unset');
  });

  it('never throws on hostile input, and still records what it can', () => {
    const { tracer, byName } = setup();
    const api = otelTracer(tracer);
    const before = internalErrorCount();
    const throwing = Object.defineProperty({}, 'kind', {
      enumerable: true,
      get() {
        throw new Error('getter');
      },
    });
    const badContext = {
      getValue() {
        throw new Error('context');
      },
    };
    const span = api.startSpan('hostile', throwing as never, badContext as never);
    span.setAttributes(Object.defineProperty({ kept: 1 }, 'bad', { enumerable: true, get: () => { throw new Error('attr'); } }) as never);
    span.addEvent('odd time', 'yesterday' as never);
    span.addEvent('short hrtime', [1] as never);
    span.addLinks(null as never);
    span.addLink({ context: { traceId: 'nope', spanId: 'nope', traceFlags: 1 } });
    span.setStatus(null as never);
    span.recordException(Object.defineProperty({}, 'message', { get: () => { throw new Error('msg'); } }));
    span.end('later' as never);
    expect(api.startActiveSpan('no callback', {} as never)).toBeUndefined();

    const r = byName('hostile');
    expect(r.attrs).toMatchObject({ kept: 1 });
    expect(r.links).toEqual([]);
    expect(r.events.map((e) => e.name)).toEqual(['odd time', 'short hrtime', A.EXCEPTION_EVENT]);
    expect(r.endMs).toBeGreaterThanOrEqual(r.startMs);
    expect(byName('no callback').endMs).toBeGreaterThan(0);
    expect(internalErrorCount()).toBeGreaterThan(before);
  });
});
