import { describe, expect, it, vi } from 'vitest';
import { testTracer } from '../../helpers/collect';
import * as A from '../../../src/core/semconv';
import { decodeScores } from '../../../src/server/collector/decodeScores';
import { toOtlpJson } from '../../../src/export/otlp';
import { extract, inject } from '../../../src/propagation/index';
import { baggageOf, readsStream, STREAM_START_MS } from '../../../src/core/span';

/** A sampled span of another process: a remote parent or a link target. */
const REMOTE_PARENT = { traceId: 'a'.repeat(32), spanId: 'b'.repeat(16), flags: 1 };

describe('trace.span', () => {
  it('times a synchronous callback, nests children and returns the value', () => {
    const { tracer, spans, byName, tick } = testTracer();
    const trace = tracer.createTrace({ name: 'chat-turn' });
    const out = trace.span('retrieval', (span) => {
      tick(5);
      return span.span('vector-search', () => {
        tick(3);
        return 42;
      });
    });
    trace.finish();
    expect(out).toBe(42);
    expect(spans.map((s) => s.name)).toEqual(['vector-search', 'retrieval', 'chat-turn']);
    const root = byName('chat-turn');
    const retrieval = byName('retrieval');
    const search = byName('vector-search');
    expect(root.parentId).toBeUndefined();
    expect(retrieval.parentId).toBe(root.spanId);
    expect(search.parentId).toBe(retrieval.spanId);
    expect(new Set(spans.map((s) => s.traceId)).size).toBe(1);
    expect(retrieval.endMs - retrieval.startMs).toBe(8);
    expect(search.endMs - search.startMs).toBe(3);
    expect(root.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(root.spanId).toMatch(/^[0-9a-f]{16}$/);
  });

  it('awaits an async callback before ending the span', async () => {
    const { tracer, byName, tick } = testTracer();
    const trace = tracer.createTrace('t');
    const value = await trace.span('slow', async () => {
      await Promise.resolve();
      tick(20);
      return 'done';
    });
    expect(value).toBe('done');
    expect(byName('slow').endMs - byName('slow').startMs).toBe(20);
  });

  it('records a throw as error status and exception event, and rethrows the same error', () => {
    const { tracer, byName } = testTracer();
    const trace = tracer.createTrace('t');
    const boom = new RangeError('out of range');
    let caught: unknown;
    try {
      trace.span('fails', () => {
        throw boom;
      });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBe(boom);
    const span = byName('fails');
    expect(span.status).toEqual({ code: 'error', message: 'out of range' });
    expect(span.events[0]?.name).toBe('exception');
    expect(span.events[0]?.attrs).toMatchObject({ 'exception.type': 'RangeError', 'exception.message': 'out of range' });
    expect(String(span.events[0]?.attrs?.['exception.stacktrace'])).toContain('RangeError');
    expect(span.attrs[A.OBSERVATION_LEVEL]).toBe('ERROR');
  });

  it('gives an error thrown through several spans one exception event, where it came from; the spans it leaves fail with it', async () => {
    const { tracer, byName } = testTracer();
    const boom = new TypeError('deep failure');
    await expect(
      tracer.createTrace('task').span('agent', (agent) =>
        agent.span('chain', async (chain) => {
          await chain.span('tool', async () => {
            throw boom;
          });
        }),
      ),
    ).rejects.toBe(boom);
    expect(byName('tool').events.map((e) => e.name)).toEqual(['exception']);
    for (const name of ['chain', 'agent']) {
      expect(byName(name).status).toEqual({ code: 'error', message: 'deep failure' });
      expect(byName(name).attrs[A.OBSERVATION_LEVEL]).toBe('ERROR');
      expect(byName(name).events).toEqual([]);
    }
    // Another error, thrown by the parent itself, is its own.
    expect(() => tracer.createTrace('t2').span('own', () => {
      throw new Error('own');
    })).toThrow('own');
    expect(byName('own').events.map((e) => e.name)).toEqual(['exception']);
  });

  it('records the same error object again where it is thrown again: a cached rejection in each trace, siblings awaiting one promise', async () => {
    const { tracer, spans } = testTracer();
    const cached = Promise.reject(new Error('config unavailable'));
    cached.catch(() => undefined);
    for (let i = 0; i < 3; i++) await expect(tracer.createTrace(`task${i}`).span('load-config', () => cached)).rejects.toThrow('config unavailable');
    const trace = tracer.createTrace('both');
    await Promise.allSettled([trace.span('left', () => cached), trace.span('right', () => cached)]);
    for (const s of spans.filter((x) => ['load-config', 'left', 'right'].includes(x.name))) {
      expect(s.events.map((e) => e.name)).toEqual(['exception']);
    }
    expect(spans.filter((x) => x.name === 'load-config')).toHaveLength(3);
  });

  it('keeps one exception event per chain when two chains fail with one error at once', async () => {
    const { tracer, spans } = testTracer();
    const cached = Promise.reject(new Error('config unavailable'));
    cached.catch(() => undefined);
    const run = (t: string) => tracer.createTrace(`req-${t}`).span(`agent-${t}`, (a) => a.span(`tool-${t}`, () => cached));
    await Promise.allSettled([run('A'), run('B')]);
    const events = Object.fromEntries(spans.map((x) => [x.name, x.events.map((e) => e.name).join()]));
    expect(events).toMatchObject({ 'tool-A': 'exception', 'tool-B': 'exception', 'agent-A': '', 'agent-B': '' });
  });

  it('records a rejection and rejects with the same value, even a non-Error', async () => {
    const { tracer, byName } = testTracer();
    const trace = tracer.createTrace('t');
    const reason = { code: 'E42', message: 'nope' };
    await expect(trace.span('rejects', async () => Promise.reject(reason))).rejects.toBe(reason);
    expect(byName('rejects').status.code).toBe('error');
    await expect(trace.span('rejects-str', () => Promise.reject('plain string'))).rejects.toBe('plain string');
    expect(byName('rejects-str').events[0]?.attrs?.['exception.message']).toBe('plain string');
  });

  it('records an abort (a "stop generating" click) as cancelled, not as an error, and rejects with it unchanged', async () => {
    const { tracer, byName } = testTracer();
    const trace = tracer.createTrace('t');
    const reason = new DOMException('signal is aborted without reason', 'AbortError');
    await expect(trace.generation('answer', { model: 'm' }, async () => Promise.reject(reason))).rejects.toBe(reason);
    const answer = byName('answer');
    expect(answer.status.code).toBe('unset');
    expect(answer.events).toEqual([]);
    expect(answer.attrs).toMatchObject({ [A.CANCELLED]: true, [A.OBSERVATION_STATUS_MESSAGE]: 'cancelled' });
    expect(answer.attrs[A.OBSERVATION_LEVEL]).toBeUndefined();
    // A timeout is a failure.
    const timeout = new DOMException('timed out', 'TimeoutError');
    await expect(trace.span('slow', () => Promise.reject(timeout))).rejects.toBe(timeout);
    expect(byName('slow').status.code).toBe('error');
  });

  it('accepts options before the callback', () => {
    const { tracer, byName } = testTracer();
    tracer.createTrace('t').span('call', { kind: 'client', attributes: { a: 1 } }, () => undefined);
    expect(byName('call').kind).toBe('client');
    expect(byName('call').attrs.a).toBe(1);
  });
});

describe('status', () => {
  it('drops the error level and message when the status becomes ok after an error, and keeps other messages', () => {
    const { tracer, byName } = testTracer();
    const t = tracer.createTrace('t');
    const retried = t.startSpan('retried').recordError(new Error('503 from upstream'));
    retried.setStatus('ok');
    retried.end();
    const cancelled = t.startSpan('cancelled').setAttribute(A.OBSERVATION_STATUS_MESSAGE, 'cancelled');
    cancelled.setStatus('ok');
    cancelled.end();
    t.finish();
    const r = byName('retried');
    expect(r.status).toEqual({ code: 'ok' });
    expect(r.attrs[A.OBSERVATION_LEVEL]).toBeUndefined();
    expect(r.attrs[A.OBSERVATION_STATUS_MESSAGE]).toBeUndefined();
    // The exception event stays: it happened.
    expect(r.events.map((e) => e.name)).toEqual([A.EXCEPTION_EVENT]);
    expect(byName('cancelled').attrs[A.OBSERVATION_STATUS_MESSAGE]).toBe('cancelled');
  });

  it('sets the Langfuse level with a redacted message; ERROR is the error status; a bad level is said once and ignored', () => {
    const warned = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const { tracer, byName } = testTracer();
      const t = tracer.createTrace('t');
      t.startSpan('fallback').setLevel('WARNING', 'fell back to gpt-4o-mini, key sk-proj-abcdefghijklmnopqrstuvwx').end();
      t.startSpan('debug').setLevel('DEBUG').end();
      t.startSpan('failed').setLevel('ERROR', 'quota').end();
      const bad = t.startSpan('bad').setLevel('warning' as never, 'x');
      bad.setLevel('warning' as never);
      bad.end();
      const late = t.startSpan('late');
      late.end();
      late.setLevel('WARNING', 'after end');
      t.finish();
      expect(byName('fallback').attrs).toMatchObject({ [A.OBSERVATION_LEVEL]: 'WARNING', [A.OBSERVATION_STATUS_MESSAGE]: 'fell back to gpt-4o-mini, key [REDACTED]' });
      expect(byName('fallback').status.code).toBe('unset');
      expect(byName('debug').attrs[A.OBSERVATION_LEVEL]).toBe('DEBUG');
      expect(byName('debug').attrs).not.toHaveProperty(A.OBSERVATION_STATUS_MESSAGE);
      expect(byName('failed').status).toEqual({ code: 'error', message: 'quota' });
      expect(byName('failed').attrs).toMatchObject({ [A.OBSERVATION_LEVEL]: 'ERROR', [A.OBSERVATION_STATUS_MESSAGE]: 'quota' });
      expect(byName('bad').attrs).not.toHaveProperty(A.OBSERVATION_LEVEL);
      expect(byName('late').attrs).not.toHaveProperty(A.OBSERVATION_LEVEL);
      expect(warned.mock.calls.filter((c) => String(c[0]).includes('setLevel("warning")'))).toHaveLength(1);
    } finally {
      warned.mockRestore();
    }
  });
});

describe('recordError', () => {
  const recorded = (error: unknown) => {
    const { tracer, spans } = testTracer();
    tracer.startSpan('s').recordError(error).end();
    const attrs = spans[0]!.events[0]!.attrs!;
    return { type: attrs[A.EXCEPTION_TYPE], message: attrs[A.EXCEPTION_MESSAGE], stack: attrs[A.EXCEPTION_STACKTRACE] as string | undefined };
  };

  it('writes what an error wraps after its stack: the cause chain, three deep, and an AggregateError\'s errors', () => {
    const root = new TypeError('db down');
    const error = new Error('save failed', { cause: new Error('query failed', { cause: root }) });
    const { type, message, stack } = recorded(error);
    expect([type, message]).toEqual(['Error', 'save failed']);
    expect(stack).toMatch(/^Error: save failed\n\s+at [^]*\nCaused by: Error: query failed\n\s+at [^]*\nCaused by: TypeError: db down\n\s+at /);
    // A cause that is not an Error, and a chain that loops, end.
    const looped = new Error('outer', { cause: 'timeout after 3 tries' }) as Error & { cause: unknown };
    expect(recorded(looped).stack).toMatch(/\nCaused by: string: timeout after 3 tries$/);
    looped.cause = looped;
    expect(recorded(looped).stack!.match(/Caused by/g)).toHaveLength(3);
    // An error-like object whose message starts with its name keeps its `Type: ` heading.
    const like = recorded(new Error('outer', { cause: { name: 'HttpError', message: 'HttpError 503' } }));
    expect(like.stack).toMatch(/\nCaused by: HttpError: HttpError 503$/);
    const all = recorded(new AggregateError([new RangeError('a failed'), { code: 42 }], 'all failed'));
    expect([all.type, all.message]).toEqual(['AggregateError', 'all failed']);
    expect(all.stack).toMatch(/\nIncludes: RangeError: a failed\n\s+at [^]*\nIncludes: Object with keys: code$/);
    // A cause that cannot be read still leaves the error itself.
    const guarded = new Error('guarded');
    Object.defineProperty(guarded, 'cause', { get: () => { throw new Error('no'); } });
    expect(recorded(guarded)).toMatchObject({ type: 'Error', message: 'guarded' });
  });

  it('keeps the frames of an error whose message is a whole error page', () => {
    const page = `<html>${'x'.repeat(40_000)}</html>`;
    const { message, stack } = recorded(new Error(page));
    expect(message).toHaveLength(16_384);
    expect(stack).toMatch(/^Error: <html>x{1018}…\n\s+at /);
  });

  it('names a thrown object by its class, and a primitive by its type', () => {
    class HttpFailure {
      status = 503;
    }
    expect(recorded(new HttpFailure())).toEqual({ type: 'HttpFailure', message: 'HttpFailure with keys: status', stack: undefined });
    expect(recorded(new Event('close'))).toMatchObject({ type: 'Event', message: 'Event "close"' });
    expect(recorded(Object.create(null))).toMatchObject({ type: 'Object', message: 'Object' });
    // Not its values: a rejected API answer carries the customer's data.
    const answer = { code: 'E_DENIED', customer: { name: 'Jane Doe', email: 'jane@example.com' } };
    expect(recorded(answer)).toEqual({ type: 'Object', message: 'Object with keys: code, customer', stack: undefined });
    const wide = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`k${i}`, i]));
    expect(recorded(wide).message).toBe('Object with keys: k0, k1, k2, k3, k4, k5, k6, k7, k8, k9, …');
    expect(recorded('plain text')).toEqual({ type: 'string', message: 'plain text', stack: undefined });
  });
});

describe('generation', () => {
  it('records model, parameters, usage, explicit cost and first-token time', async () => {
    const { tracer, byName, time } = testTracer();
    const trace = tracer.createTrace('t');
    await trace.generation('llm', { model: 'gpt-4o', modelParameters: { temperature: 0.7 } }, async (gen) => {
      gen.setCompletionStart(time() + 120);
      gen.setUsage({ input: 812, output: 96 });
      gen.setCost({ input: 0.002, output: 0.001 });
      gen.setOutput('hello');
    });
    const g = byName('llm');
    expect(g.attrs).toMatchObject({
      [A.OBSERVATION_TYPE]: 'generation',
      [A.MODEL_NAME]: 'gpt-4o',
      [A.GEN_AI_REQUEST_MODEL]: 'gpt-4o',
      [A.MODEL_PARAMETERS]: '{"temperature":0.7}',
      [A.USAGE_DETAILS]: '{"input":812,"output":96}',
      [A.GEN_AI_INPUT_TOKENS]: 812,
      [A.GEN_AI_OUTPUT_TOKENS]: 96,
      [A.OBSERVATION_OUTPUT]: 'hello',
      [A.COMPLETION_START_TIME]: new Date(time() + 120).toISOString(),
    });
    expect(JSON.parse(g.attrs[A.COST_DETAILS] as string)).toEqual({ input: 0.002, output: 0.001, total: 0.003 });
  });

  it('takes a Date for the first-token time, as Langfuse\'s SDK does, and rounds a total it adds up', () => {
    const { tracer, byName, time } = testTracer();
    tracer.createTrace('t').generation('llm', { model: 'm' }, (gen) => {
      gen.setCompletionStart(new Date(time() + 5_000));
      gen.setCost({ input: 0.00007, output: 0.000035 });
    });
    const g = byName('llm');
    expect(g.attrs[A.COMPLETION_START_TIME]).toBe(new Date(time() + 5_000).toISOString());
    expect(JSON.parse(g.attrs[A.COST_DETAILS] as string).total).toBe(0.000105);
  });

  it("speaks OpenTelemetry's GenAI conventions: the operation, the provider and the request parameters it names", () => {
    const { tracer, byName } = testTracer();
    const trace = tracer.createTrace('t');
    const params = { temperature: 0.2, top_p: 0.9, max_completion_tokens: 256, seed: 7, stop: 'END', frequency_penalty: '0.5', response_format: 'json', constructor: 1 };
    trace.generation('chat', { model: 'gpt-4o', modelParameters: params }, () => undefined);
    trace.generation('embed', { model: 'text-embedding-3-small', operation: 'embeddings', provider: 'openai', modelParameters: { stop: ['a', 'b'] } }, () => undefined);
    trace.startGeneration('bare').end();
    trace.finish();
    expect(byName('bare').attrs[A.GEN_AI_OPERATION]).toBe('chat');
    const chat = byName('chat').attrs;
    expect(chat).toMatchObject({
      [A.GEN_AI_OPERATION]: 'chat',
      'gen_ai.request.temperature': 0.2,
      'gen_ai.request.top_p': 0.9,
      'gen_ai.request.max_tokens': 256,
      'gen_ai.request.seed': 7,
      'gen_ai.request.stop_sequences': ['END'],
    });
    // A number given as text, a parameter the convention does not name, an inherited name: only in the parameters' JSON.
    expect(Object.keys(chat).filter((k) => k.startsWith('gen_ai.request.')).sort()).toEqual(
      ['max_tokens', 'model', 'seed', 'stop_sequences', 'temperature', 'top_p'].map((k) => `gen_ai.request.${k}`),
    );
    expect(chat[A.GEN_AI_PROVIDER]).toBeUndefined();
    expect(byName('embed').attrs).toMatchObject({ [A.GEN_AI_OPERATION]: 'embeddings', [A.GEN_AI_PROVIDER]: 'openai', 'gen_ai.request.stop_sequences': ['a', 'b'] });
  });

  it('links a generation to a Langfuse prompt version only with a name and a whole version together', () => {
    const { tracer, byName } = testTracer();
    const trace = tracer.createTrace('t');
    // The shape of a prompt object from Langfuse's client, passed as it is.
    const fromClient = { name: 'movie-critic', version: 3, prompt: 'Rate {{movie}}', config: {}, isFallback: false };
    trace.generation('given', { model: 'gpt-4o', prompt: fromClient }, () => undefined);
    trace.generation('later', { model: 'gpt-4o' }, (g) => void g.setPrompt({ name: 'summary', version: 1 }));
    const bad = [{ name: '', version: 2 }, { name: 'x', version: 0 }, { name: 'x', version: 1.5 }, { name: 'x', version: '2' }, { name: 'x' }, { name: 'x', version: 4, isFallback: true }, null, 'x'];
    bad.forEach((prompt, i) => trace.generation(`bad${i}`, { prompt: prompt as never }, (g) => void g.setPrompt(prompt as never)));
    trace.finish();
    expect(byName('given').attrs).toMatchObject({ [A.PROMPT_NAME]: 'movie-critic', [A.PROMPT_VERSION]: 3 });
    expect(byName('later').attrs).toMatchObject({ [A.PROMPT_NAME]: 'summary', [A.PROMPT_VERSION]: 1 });
    bad.forEach((_, i) => {
      const attrs = byName(`bad${i}`).attrs;
      expect([attrs[A.PROMPT_NAME], attrs[A.PROMPT_VERSION]], `case ${i}`).toEqual([undefined, undefined]);
    });
    // The version travels as an OTLP int, as Langfuse reads it.
    const otlp = JSON.stringify(toOtlpJson([byName('given')]));
    expect(otlp).toContain(`{"key":"${A.PROMPT_VERSION}","value":{"intValue":"3"}}`);
  });

  it('computes cost from the price table by the longest matching model prefix', () => {
    const { tracer, byName } = testTracer({ prices: { gpt: { input: 1, output: 1 }, 'gpt-4o': { input: 2.5e-6, output: 1e-5 } } });
    tracer.createTrace('t').generation('llm', { model: 'gpt-4o-2024-08-06' }, (g) => {
      g.setUsage({ input: 1000, output: 100 });
    });
    expect(JSON.parse(byName('llm').attrs[A.COST_DETAILS] as string)).toEqual({ input: 0.0025, output: 0.001, total: 0.0035 });
    expect(byName('llm').attrs[A.GEN_AI_COST]).toBe(0.0035);
  });

  it('prices a dated or tagged version of a model at its price, and another model named after it not', () => {
    const price = (input: number) => ({ input, output: input });
    const prices = { 'gpt-4o': price(1), 'gpt-4': price(2), 'claude-3-5-sonnet': price(3), llama3: price(4), 'openai/': price(5), 'anthropic.claude-3-5-sonnet': price(6), 'gemini-1.5-pro': price(7), 'mistral-large': price(8) };
    const cases: [string, number | undefined][] = [
      ['gpt-4o-2024-08-06', 1],
      ['gpt-4o-mini', undefined],
      ['gpt-4-0613', 2],
      ['gpt-4-turbo', undefined],
      ['gpt-4.1', undefined],
      ['gpt-4-32k', undefined],
      ['gpt-4-1106-preview', undefined],
      ['claude-3-5-sonnet-2', undefined],
      ['gemini-1.5-pro-002', 7],
      ['mistral-large-latest', 8],
      ['claude-3-5-sonnet-20241022', 3],
      ['claude-3-5-sonnet-latest', 3],
      ['claude-3-5-sonnet@20241022', 3],
      ['llama3:8b', 4],
      ['llama3.1', undefined],
      ['openai/gpt-oss-120b', 5],
      ['anthropic.claude-3-5-sonnet-20240620-v1:0', 6],
    ];
    const { tracer, byName } = testTracer({ prices });
    for (const [model] of cases) tracer.createTrace('t').generation(model, { model }, (g) => void g.setUsage({ input: 1 }));
    expect(cases.map(([model]) => byName(model).attrs[A.GEN_AI_COST])).toEqual(cases.map(([, cost]) => cost));
  });

  it('prices cached and reasoning tokens at their own price, else at their base type\'s', () => {
    const { tracer, byName } = testTracer({ prices: { a: { input: 1e-6, input_cached_tokens: 1e-7, output: 1e-5 }, b: { input: 1e-6, output: 1e-5 } } });
    const usage = { input: 86, input_cached_tokens: 1920, output: 44, output_reasoning_tokens: 256, total: 2306 };
    const trace = tracer.createTrace('t');
    trace.generation('own', { model: 'a' }, (g) => void g.setUsage(usage));
    trace.generation('base', { model: 'b' }, (g) => void g.setUsage(usage));
    // Reasoning has no price of its own under either model: it is output.
    expect(JSON.parse(byName('own').attrs[A.COST_DETAILS] as string)).toEqual({
      input: 0.000086,
      input_cached_tokens: 0.000192,
      output: 0.00044,
      output_reasoning_tokens: 0.00256,
      total: 0.003278,
    });
    // Without a cached price, the cached tokens cost what the whole prompt cost before the split.
    expect(JSON.parse(byName('base').attrs[A.COST_DETAILS] as string)).toMatchObject({ input: 0.000086, input_cached_tokens: 0.00192, total: 0.005006 });
    // OpenTelemetry's counts are the whole prompt and the whole completion.
    expect(byName('own').attrs).toMatchObject({ [A.GEN_AI_INPUT_TOKENS]: 2006, [A.GEN_AI_OUTPUT_TOKENS]: 300 });
  });

  it('keeps an explicit cost over the price table', () => {
    const { tracer, byName } = testTracer({ prices: { m: { input: 1 } } });
    tracer.createTrace('t').generation('llm', { model: 'm' }, (g) => {
      g.setUsage({ input: 10 });
      g.setCost(0.5);
    });
    expect(JSON.parse(byName('llm').attrs[A.COST_DETAILS] as string)).toEqual({ total: 0.5 });
  });

  it('leaves cost out for a model without a price', () => {
    const { tracer, byName } = testTracer({ prices: { other: { input: 1 } } });
    tracer.createTrace('t').generation('llm', { model: 'm' }, (g) => void g.setUsage({ input: 10 }));
    expect(byName('llm').attrs[A.COST_DETAILS]).toBeUndefined();
  });
});

describe('baggage', () => {
  it("starts each trace with the tracer's baggage, adds and removes per trace, and never records it", () => {
    const { tracer, spans } = testTracer({ baggage: { tenant: 'acme', plan: 'pro' } });
    const a = tracer.createTrace({ name: 'a', baggage: { step: 'search' } });
    const b = tracer.createTrace('b');
    a.setBaggage({ plan: undefined, flag: 'on' });
    b.update({ baggage: { tenant: 'other' } });
    expect(a.baggage).toEqual({ tenant: 'acme', step: 'search', flag: 'on' });
    expect(b.baggage).toEqual({ tenant: 'other', plan: 'pro' });
    // What one trace changes, the next one does not start with.
    expect(tracer.createTrace('c').baggage).toEqual({ tenant: 'acme', plan: 'pro' });
    // Spans of a trace send its baggage (the header, through inject()).
    const headers: Record<string, string> = {};
    const child = a.startSpan('call');
    inject(child.spanContext(), headers, baggageOf(child));
    expect(headers.baggage).toBe('tenant=acme,step=search,flag=on');
    child.end();
    a.finish();
    b.finish();
    expect(JSON.stringify(spans)).not.toMatch(/acme|search/);
  });

  it('keeps at most 64 members, and ignores what is not text', () => {
    const { tracer } = testTracer();
    const trace = tracer.createTrace('t');
    trace.setBaggage(Object.fromEntries(Array.from({ length: 70 }, (_, i) => [`k${i}`, String(i)])));
    trace.setBaggage({ k0: 'changed', k69: 'late', bad: 42 as unknown as string, '': 'x' });
    const kept = trace.baggage;
    expect(Object.keys(kept)).toHaveLength(64);
    expect(kept.k0).toBe('changed');
    expect(kept.k69).toBeUndefined();
    expect(kept.bad).toBeUndefined();
    // Names an object has by inheritance are members like any other, within the limit.
    trace.setBaggage({ k1: undefined });
    trace.setBaggage({ toString: 'x', constructor: 'y' });
    expect(Object.keys(trace.baggage)).toHaveLength(64);
    expect(trace.baggage.toString).toBe('x');
    trace.finish();
  });

  it('passes on members named like Object.prototype properties, from a header', () => {
    const { tracer } = testTracer();
    const incoming = extract({ baggage: '__proto__=x,toString=y,userId=alice' }).baggage!;
    const trace = tracer.createTrace({ name: 't', baggage: incoming });
    const headers: Record<string, string> = {};
    inject(trace.spanContext(), headers, baggageOf(trace));
    expect(headers.baggage).toBe('__proto__=x,toString=y,userId=alice');
    expect(Object.entries(trace.baggage)).toEqual([['__proto__', 'x'], ['toString', 'y'], ['userId', 'alice']]);
    trace.finish();
  });

  it('throws at createTracer() for baggage that is not an object of text, naming the member', () => {
    expect(() => testTracer({ baggage: { tenant: 7 as unknown as string } })).toThrow(/"baggage\["tenant"\]" must be text, got 7/);
    expect(() => testTracer({ baggage: 'tenant=acme' as never })).toThrow(/"baggage" must be an object of keys to text/);
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']));
    expect(() => testTracer({ baggage: many })).toThrow(/"baggage" must be at most 64 members, got 65\./);
  });
});

describe('trace-level fields', () => {
  it('puts name, user, session, tags, metadata, release, environment and input on the root', () => {
    const { tracer, byName } = testTracer({ environment: 'prod', release: 'r1' });
    const trace = tracer.createTrace({
      name: 'chat-turn',
      userId: 'u1',
      sessionId: 's1',
      tags: ['beta'],
      metadata: { v: 2, flags: { a: true } },
      input: { q: 'hi' },
    });
    trace.addTag('prod');
    trace.span('child', () => undefined);
    trace.setOutput('bye');
    trace.finish();
    const root = byName('chat-turn');
    expect(root.attrs).toMatchObject({
      [A.TRACE_NAME]: 'chat-turn',
      [A.USER_ID]: 'u1',
      [A.SESSION_ID]: 's1',
      [A.TRACE_TAGS]: ['beta', 'prod'],
      [`${A.TRACE_METADATA}.v`]: 2,
      [`${A.TRACE_METADATA}.flags`]: '{"a":true}',
      [A.ENVIRONMENT]: 'prod',
      [A.RELEASE]: 'r1',
      [A.TRACE_INPUT]: '{"q":"hi"}',
      [A.TRACE_OUTPUT]: 'bye',
    });
    // Langfuse v4 filters and costs observations by the trace-level fields each one carries.
    expect(byName('child').attrs).toMatchObject({
      [A.TRACE_NAME]: 'chat-turn',
      [A.USER_ID]: 'u1',
      [A.SESSION_ID]: 's1',
      [A.TRACE_TAGS]: ['beta', 'prod'],
      [`${A.TRACE_METADATA}.v`]: 2,
      [A.RELEASE]: 'r1',
    });
    // A short object goes as its JSON text; the trace's input and output stay on the root.
    expect(byName('child').attrs[`${A.TRACE_METADATA}.flags`]).toBe('{"a":true}');
    for (const key of [A.TRACE_INPUT, A.TRACE_OUTPUT]) expect(byName('child').attrs[key]).toBeUndefined();
  });

  it('gives each span the trace-level fields as they are when it ends, its own values first', () => {
    const { tracer, byName } = testTracer();
    const trace = tracer.createTrace({ name: 'draft', metadata: { short: 's', long: 'x'.repeat(201), edge: 'y'.repeat(200), list: { items: 'z'.repeat(200) } } });
    trace.span('early', () => undefined);
    trace.update({ name: 'final', tags: ['t1'], metadata: { short: 's2', added: true } });
    trace.addMetadata({ edge: 'z'.repeat(201) });
    trace.span('late', (s) => s.setAttribute(A.TRACE_NAME, 'own'));
    trace.span('later', () => undefined);
    trace.finish();
    expect(byName('early').attrs).toMatchObject({ [A.TRACE_NAME]: 'draft', [`${A.TRACE_METADATA}.short`]: 's', [`${A.TRACE_METADATA}.edge`]: 'y'.repeat(200) });
    expect(byName('early').attrs[A.TRACE_TAGS]).toBeUndefined();
    expect(byName('early').attrs[`${A.TRACE_METADATA}.long`]).toBeUndefined();
    expect(byName('early').attrs[`${A.TRACE_METADATA}.list`]).toBeUndefined();
    expect(byName('late').attrs[A.TRACE_NAME]).toBe('own');
    expect(byName('later').attrs).toMatchObject({ [A.TRACE_NAME]: 'final', [A.TRACE_TAGS]: ['t1'], [`${A.TRACE_METADATA}.short`]: 's2', [`${A.TRACE_METADATA}.added`]: true });
    // Replaced by a value too long to copy: no longer copied, and not the old value either.
    expect(byName('later').attrs[`${A.TRACE_METADATA}.edge`]).toBeUndefined();
    expect(byName('final').attrs[`${A.TRACE_METADATA}.long`]).toBe('x'.repeat(201));
  });

  it('makes a trace public on every span, at creation or by update(), and private again', () => {
    const { tracer, byName } = testTracer();
    const shared = tracer.createTrace({ name: 'shared', public: true });
    shared.span('step', () => undefined);
    shared.finish();
    expect(byName('shared').attrs[A.TRACE_PUBLIC]).toBe(true);
    expect(byName('step').attrs[A.TRACE_PUBLIC]).toBe(true);

    const later = tracer.createTrace({ name: 'later' });
    later.span('before', () => undefined);
    later.update({ public: true });
    later.span('during', () => undefined);
    later.update({ public: false });
    later.span('after', () => undefined);
    later.finish();
    expect(byName('before').attrs[A.TRACE_PUBLIC]).toBeUndefined();
    expect(byName('during').attrs[A.TRACE_PUBLIC]).toBe(true);
    expect(byName('after').attrs[A.TRACE_PUBLIC]).toBe(false);
    expect(byName('later').attrs[A.TRACE_PUBLIC]).toBe(false);
  });

  it('leaves a trace private unless asked, and a continued trace to update()', () => {
    const { tracer, byName } = testTracer();
    tracer.createTrace({ name: 'plain', public: 'yes' as unknown as boolean }).finish();
    expect(byName('plain').attrs[A.TRACE_PUBLIC]).toBeUndefined();
    const parent = REMOTE_PARENT;
    const continued = tracer.createTrace({ name: 'handler', parent, public: true });
    continued.span('inner', () => undefined);
    continued.update({ public: true });
    continued.finish();
    expect(byName('inner').attrs[A.TRACE_PUBLIC]).toBeUndefined();
    expect(byName('handler').attrs[A.TRACE_PUBLIC]).toBe(true);
  });

  it('does not make a trace public once its root has ended', () => {
    const { tracer, byName } = testTracer();
    const trace = tracer.createTrace('done');
    const open = trace.startSpan('open');
    trace.endRoot();
    trace.update({ public: true });
    open.end();
    expect(byName('done').attrs[A.TRACE_PUBLIC]).toBeUndefined();
    expect(byName('open').attrs[A.TRACE_PUBLIC]).toBeUndefined();
  });

  it('copies trace fields only into room the span has left, after its own truncation count', () => {
    const { tracer, byName } = testTracer({ limits: { maxAttributes: 6, maxStringLength: 16 } });
    const trace = tracer.createTrace({ name: 't', metadata: { a: 1, b: 2, c: 3 } });
    trace.span('s', (s) => s.setAttributes({ x1: 1, x2: 2, x3: 3, long: 'z'.repeat(50) }));
    trace.finish();
    const s = byName('s');
    expect(s.attrs).toEqual({ x1: 1, x2: 2, x3: 3, long: 'z'.repeat(16), [A.TRUNCATED]: 1, [A.TRACE_NAME]: 't' });
    expect(s.dropped).toBeUndefined();
  });

  it('copies to the spans of a continued trace only what update() made trace-level', () => {
    const { tracer, byName } = testTracer({ release: 'server-r' });
    const parent = REMOTE_PARENT;
    const trace = tracer.createTrace({ name: 'handler', parent, metadata: { route: '/chat' } });
    trace.span('before', () => undefined);
    trace.update({ name: 'chat', metadata: { plan: 'pro' } });
    trace.span('after', () => undefined);
    trace.finish();
    for (const name of ['before', 'after']) {
      expect(byName(name).attrs[A.RELEASE]).toBeUndefined();
      expect(byName(name).attrs[`${A.OBSERVATION_METADATA}.route`]).toBeUndefined();
    }
    expect(byName('before').attrs[A.TRACE_NAME]).toBeUndefined();
    expect(byName('after').attrs).toMatchObject({ [A.TRACE_NAME]: 'chat', [`${A.TRACE_METADATA}.plan`]: 'pro' });
  });

  it('uses observation metadata below the root', () => {
    const { tracer, byName } = testTracer();
    tracer.createTrace('t').span('s', (s) => s.addMetadata({ k: 'v' }).addMetadata('n', 1));
    expect(byName('s').attrs).toMatchObject({ [`${A.OBSERVATION_METADATA}.k`]: 'v', [`${A.OBSERVATION_METADATA}.n`]: 1 });
  });

  it('records events as zero-length event observations and recordEvent as span events', () => {
    const { tracer, byName } = testTracer();
    const trace = tracer.createTrace('t');
    trace.event('checkpoint', { records: 1000 });
    trace.recordEvent('cache-miss', { key: 'k' });
    trace.finish();
    const ev = byName('checkpoint');
    expect(ev.attrs[A.OBSERVATION_TYPE]).toBe('event');
    expect(ev.attrs[`${A.OBSERVATION_METADATA}.records`]).toBe(1000);
    expect(ev.endMs).toBe(ev.startMs);
    expect(byName('t').events).toEqual([{ name: 'cache-miss', timeMs: expect.any(Number), attrs: { key: 'k' } }]);
  });

  it('emits scores with an observation id below the root and none on the root', () => {
    const { tracer, scores } = testTracer({ environment: 'prod' });
    const trace = tracer.createTrace({ name: 't', sessionId: 's9' });
    trace.score('helpfulness', true, { comment: 'great' });
    trace.span('answer', (s) => s.score('accuracy', 0.8));
    expect(scores).toHaveLength(2);
    expect(scores[0]).toMatchObject({ rec: 'score', traceId: trace.traceId, name: 'helpfulness', value: 1, dataType: 'BOOLEAN', comment: 'great', sessionId: 's9', environment: 'prod' });
    expect(scores[0]?.observationId).toBeUndefined();
    expect(scores[1]?.observationId).toMatch(/^[0-9a-f]{16}$/);
    expect(scores[0]?.id).not.toBe(scores[1]?.id);
  });

  it('keeps the id a score is given, so scoring again replaces it, and a new id for one a receiver would refuse', () => {
    const { tracer, scores } = testTracer();
    const trace = tracer.createTrace('chat');
    trace.score('thumbs', true, { id: 'feedback-msg-1' });
    trace.score('thumbs', false, { id: 'feedback-msg-1' });
    trace.score('thumbs', true, { id: '' });
    trace.score('thumbs', true, { id: 'x'.repeat(801) });
    expect(scores.map((s) => s.id).slice(0, 2)).toEqual(['feedback-msg-1', 'feedback-msg-1']);
    expect(scores.map((s) => s.value).slice(0, 2)).toEqual([1, 0]);
    expect(scores[2]!.id).toMatch(/^[\w-]{21}$/);
    expect(scores[3]!.id).toMatch(/^[\w-]{21}$/);
  });

  it('redacts and cuts score names, text values and comments like attributes', () => {
    const { tracer, scores } = testTracer({ limits: { maxStringLength: 40 } });
    const trace = tracer.createTrace('t');
    trace.score('feedback', 'my key sk-proj-abcdefghijklmnopqrstuvwx', { comment: 'Authorization: Bearer abcdefghijklmnop123' });
    trace.score('long', 'x'.repeat(100), { comment: 'y'.repeat(100) });
    expect(scores[0]).toMatchObject({ value: 'my key [REDACTED]', comment: 'Authorization: Bearer [REDACTED]' });
    expect(scores[1]).toMatchObject({ value: 'x'.repeat(40), comment: 'y'.repeat(40) });
  });

  it('carries score metadata cleaned like span metadata, and a score config id', () => {
    const { tracer, scores } = testTracer({ limits: { maxStringLength: 40 } });
    const trace = tracer.createTrace('t');
    const cycle: Record<string, unknown> = { a: 1 };
    cycle.self = cycle;
    trace.score('accuracy', 0.5, {
      configId: 'cfg-1',
      metadata: { evaluator: 'gpt-4o', prompt: 'Bearer abcdefghijklmnop123', rubric: ['clear', 'x'.repeat(100)], k: 3 },
    });
    trace.score('nested', 1, { metadata: { judge: { model: 'm', cycle }, none: undefined, nil: null } });
    trace.score('plain', 1, { metadata: 'not an object' as never, configId: '' });
    // Past the collector's bound of 16,384 characters of JSON, entries are left out, not the score; an id it refuses too.
    trace.score('long', 1, { metadata: { a: '"'.repeat(20), b: 'x'.repeat(40) }, configId: 'c'.repeat(801) });
    expect(scores[0]).toMatchObject({ configId: 'cfg-1', metadata: { evaluator: 'gpt-4o', prompt: 'Bearer [REDACTED]', rubric: ['clear', 'x'.repeat(40)], k: 3 } });
    // An object is JSON text (a cycle never throws); undefined and null are left out.
    expect(scores[1]!.metadata).toEqual({ judge: expect.stringMatching(/^\{"model":"m"/) });
    expect(scores[2]).not.toHaveProperty('metadata');
    expect(scores[2]).not.toHaveProperty('configId');
    expect(scores[3]).not.toHaveProperty('configId');
  });

  it('leaves out the score metadata entries past the 16,384 characters of JSON the collector takes, and keeps the score', () => {
    const { tracer, scores } = testTracer({ limits: { maxStringLength: 16_384 } });
    const trace = tracer.createTrace('t');
    trace.score('rubric', 1, { metadata: { judge: 'gpt-4o', rubric: 'x'.repeat(9000), notes: '"'.repeat(4000), more: 'y'.repeat(9000), last: 1 } });
    const meta = scores[0]!.metadata!;
    // `notes` is 4,000 characters, but 8,002 as JSON: with the rubric's 9,000 past the bound.
    expect(Object.keys(meta)).toEqual(['judge', 'rubric', 'last']);
    expect(JSON.stringify(meta).length).toBeLessThanOrEqual(16_384);
    expect(decodeScores([scores[0]])).toMatchObject({ ok: true, rejected: 0 });
  });

  it('cuts TEXT score values to the 500 characters Langfuse takes, and records no empty or non-text one', () => {
    const { tracer, scores } = testTracer();
    const trace = tracer.createTrace('t');
    trace.score('review', `${'x'.repeat(499)}😀 and more`, { dataType: 'TEXT' });
    trace.score('empty', '', { dataType: 'TEXT' });
    trace.score('number', 3, { dataType: 'TEXT' });
    trace.score('label', 'y'.repeat(600));
    // 499 characters, then a surrogate pair that a cut at 500 would split: the pair is left out whole.
    expect(scores.map((s) => [s.name, s.value])).toEqual([
      ['review', 'x'.repeat(499)],
      ['label', 'y'.repeat(600)],
    ]);
  });

  it('turns a BigInt score into a number and refuses values with no score form, keeping the others', async () => {
    const { tracer, scores } = testTracer();
    const trace = tracer.createTrace('t');
    trace.score('rows', 42n as never);
    for (const bad of [NaN, Infinity, null, { a: 1 }]) trace.score('bad', bad as never);
    trace.score('ok', 0.5);
    expect(scores.map((s) => [s.name, s.value])).toEqual([
      ['rows', 42],
      ['ok', 0.5],
    ]);
    // What is kept encodes: one bad score used to fail the whole batch.
    const { toScoreEvents } = await import('../../../src/export/langfuse');
    expect(() => JSON.stringify(toScoreEvents(scores))).not.toThrow();
  });

  it("refuses a value its data type does not take, as Langfuse would long after, and says so once per score", () => {
    const warned = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const { tracer, scores } = testTracer();
      const trace = tracer.createTrace('t');
      trace.score('stars', 4, { dataType: 'BOOLEAN' });
      trace.score('stars', 5, { dataType: 'BOOLEAN' });
      trace.score('grade', 'good', { dataType: 'NUMERIC' });
      trace.score('bucket', 3, { dataType: 'CATEGORICAL' });
      trace.score('note', '', { dataType: 'TEXT' });
      trace.score('liked', 1, { dataType: 'BOOLEAN' });
      trace.score('bucket', 'b', { dataType: 'CATEGORICAL' });
      trace.score('grade', 2, { dataType: 'NUMERIC' });
      expect(scores.map((s) => [s.name, s.value, s.dataType])).toEqual([
        ['liked', 1, 'BOOLEAN'],
        ['bucket', 'b', 'CATEGORICAL'],
        ['grade', 2, 'NUMERIC'],
      ]);
      expect(warned.mock.calls.map((c) => c[0])).toEqual([
        '[edgetrace] score "stars" (BOOLEAN) needs true, false, 1 or 0, not 4: not sent.',
        '[edgetrace] score "grade" (NUMERIC) needs a number, not "good": not sent.',
        '[edgetrace] score "bucket" (CATEGORICAL) needs a non-empty string, not 3: not sent.',
        '[edgetrace] score "note" (TEXT) needs a non-empty string, not "": not sent.',
      ]);
    } finally {
      warned.mockRestore();
    }
  });

  it('scores a trace or an observation by id, for feedback that comes later or from elsewhere', () => {
    const warned = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const { tracer, scores, spans } = testTracer({ environment: 'prod' });
      const trace = tracer.createTrace('chat');
      const answer = trace.startGeneration('answer');
      answer.end();
      trace.finish();
      tracer.score({ traceId: trace.traceId }, 'helpful', true, { comment: 'thanks' });
      tracer.score({ traceId: trace.traceId, observationId: answer.spanId, sessionId: 's-1' }, 'accuracy', 0.5);
      tracer.score({ traceId: 'nope' }, 'lost', 1);
      tracer.score({ traceId: trace.traceId, observationId: 'ABC' }, 'lost', 1);
      tracer.score({ traceId: trace.traceId }, 'thumbs', 9, { dataType: 'BOOLEAN' });
      expect(scores.map(({ id, timeMs, ...rest }) => JSON.parse(JSON.stringify(rest)))).toEqual([
        { v: 1, rec: 'score', traceId: trace.traceId, name: 'helpful', value: 1, dataType: 'BOOLEAN', comment: 'thanks', environment: 'prod' },
        { v: 1, rec: 'score', traceId: trace.traceId, observationId: answer.spanId, name: 'accuracy', value: 0.5, sessionId: 's-1', environment: 'prod' },
      ]);
      // No span of its own is sent, and the ids were said to be wrong.
      expect(spans.map((s) => s.name)).toEqual(['answer', 'chat']);
      // A trace the rate leaves out gets no score either, and no processor sees a span start.
      const started: string[] = [];
      const none = testTracer({ sampleRate: 0, processors: [{ onStart: (sp) => void started.push(sp.name) }] });
      none.tracer.score({ traceId: trace.traceId }, 'helpful', true);
      expect([none.scores, started]).toEqual([[], []]);
      const all = testTracer({ processors: [{ onStart: (sp) => void started.push(sp.name) }] });
      all.tracer.score({ traceId: trace.traceId }, 'helpful', true);
      expect([all.scores.length, started]).toEqual([1, []]);
      expect(warned.mock.calls.map((c) => String(c[0]))).toEqual([
        expect.stringMatching(/^\[edgetrace\] score "lost": \{"traceId":"nope"\} holds no W3C trace id .*: not sent\.$/),
        expect.stringMatching(/^\[edgetrace\] score "thumbs" \(BOOLEAN\) needs true, false, 1 or 0/),
      ]);
    } finally {
      warned.mockRestore();
    }
  });

  it('records no score on a trace that is not sampled', () => {
    const { tracer, scores } = testTracer({ sampleRate: 0 });
    const trace = tracer.createTrace('t');
    trace.score('helpfulness', 1);
    trace.span('answer', (s) => s.score('accuracy', 0.8));
    const remote = tracer.createTrace({ name: 'r', parent: { ...REMOTE_PARENT, flags: 0 } });
    remote.score('helpfulness', 1);
    expect(scores).toEqual([]);
  });
});

describe('finish', () => {
  it('ends open children, marks them unfinished, and emits each span once', () => {
    const { tracer, spans, byName } = testTracer();
    const trace = tracer.createTrace('t');
    const open = trace.startSpan('left-open');
    const grandchild = open.startSpan('deeper');
    const closed = trace.startSpan('closed');
    closed.end();
    trace.finish();
    trace.finish();
    open.end();
    expect(spans.map((s) => s.name).sort()).toEqual(['closed', 'deeper', 'left-open', 't']);
    expect(byName('left-open').attrs[A.UNFINISHED]).toBe(true);
    expect(byName('deeper').attrs[A.UNFINISHED]).toBe(true);
    expect(byName('closed').attrs[A.UNFINISHED]).toBeUndefined();
    expect(grandchild.isEnded).toBe(true);
    expect(byName('left-open').endMs).toBe(byName('t').endMs);
  });

  it('withTrace finishes the trace even when the callback throws', async () => {
    const { tracer, spans } = testTracer();
    await expect(
      tracer.withTrace('job', async (t) => {
        t.startSpan('dangling');
        throw new Error('job failed');
      }),
    ).rejects.toThrow('job failed');
    expect(spans.map((s) => s.name).sort()).toEqual(['dangling', 'job']);
    expect(spans.find((s) => s.name === 'job')?.status.code).toBe('error');
  });

  it('ignores attributes set after end', () => {
    const { tracer, byName } = testTracer();
    const span = tracer.createTrace('t').startSpan('s');
    span.end();
    span.setAttribute('late', 1);
    expect(byName('s').attrs.late).toBeUndefined();
  });

  it('keeps an attribute named __proto__ as an attribute, on spans, events and links', () => {
    const { tracer, byName } = testTracer();
    const root = tracer.createTrace('t');
    const span = root.startSpan('s', { links: [{ context: root.spanContext(), attributes: JSON.parse('{"__proto__":"l"}') }] });
    // JSON.parse makes __proto__ an own key: what an app gets from a request body.
    span.setAttributes(JSON.parse('{"__proto__":["a","b"],"ok":1}'));
    span.setAttribute('__proto__', 42);
    span.recordEvent('e', JSON.parse('{"__proto__":"x"}'));
    span.end();
    const s = byName('s');
    expect(Object.getPrototypeOf(s.attrs)).toBe(Object.prototype);
    expect(Object.keys(s.attrs).sort()).toEqual(['__proto__', A.TRACE_NAME, 'ok']);
    expect(Object.getOwnPropertyDescriptor(s.attrs, '__proto__')?.value).toBe(42);
    expect(Object.getOwnPropertyDescriptor(s.events[0]!.attrs, '__proto__')?.value).toBe('x');
    expect(Object.getOwnPropertyDescriptor(s.links[0]!.attrs, '__proto__')?.value).toBe('l');
    const otlp = toOtlpJson([s]).resourceSpans[0]!.scopeSpans[0]!.spans[0]!;
    expect(otlp.attributes.map((a) => a.key).sort()).toEqual(['__proto__', A.TRACE_NAME, 'ok']);
  });

  it('keeps an empty list as a list, and stores a list with holes as JSON text, holes as null', () => {
    const { tracer, byName } = testTracer();
    const span = tracer.createTrace('t').startSpan('s');
    span.setAttribute('none', []);
    // eslint-disable-next-line no-sparse-arrays
    span.setAttribute('sparse', [1, , 3]);
    span.setAttribute('same', [1, 2, 3]);
    span.end();
    expect(byName('s').attrs).toMatchObject({ none: [], sparse: '[1,null,3]', same: [1, 2, 3] });
  });

  it('never gives a negative duration when the clock goes backwards', () => {
    const { tracer, byName, tick } = testTracer();
    const span = tracer.startSpan('s');
    tick(-50);
    span.end();
    expect(byName('s').endMs).toBe(byName('s').startMs);
  });

  it('takes the clock for a start time that is not a positive epoch time, so the span still ends once', () => {
    const { tracer, spans } = testTracer();
    const span = tracer.startSpan('s', { startMs: 0 });
    expect(span.startMs).toBeGreaterThan(0);
    expect(span.isEnded).toBe(false);
    span.end(0);
    span.end();
    expect(span.isEnded).toBe(true);
    expect(spans.filter((r) => r.name === 's')).toHaveLength(1);
    expect(span.endMs).toBe(span.startMs);
  });
});

describe('limits', () => {
  it('caps the attribute count and counts what it dropped', () => {
    const { tracer, byName } = testTracer({ limits: { maxAttributes: 3 } });
    tracer.createTrace('t').startSpan('s').setAttributes({ a: 1, b: 2, c: 3, d: 4, e: 5 }).setAttribute('a', 9).end();
    const s = byName('s');
    // The trace name it would have carried takes no room and is not counted as dropped.
    expect(s.attrs).toEqual({ a: 9, b: 2, c: 3 });
    expect(s.dropped?.attrs).toBe(2);
  });

  it('counts an attribute named __proto__ against the cap like any other', () => {
    // A root span: the trace's name takes one of the three places.
    const { tracer, byName } = testTracer({ limits: { maxAttributes: 3 } });
    tracer.startSpan('s').setAttributes({ a: 1, b: 2 }).setAttribute('__proto__', 3).end();
    expect(Object.keys(byName('s').attrs).sort()).toEqual(['a', 'b', A.TRACE_NAME]);
    expect(byName('s').dropped?.attrs).toBe(1);
  });

  it('cuts long strings and counts them', () => {
    const { tracer, byName } = testTracer({ limits: { maxStringLength: 16, maxIoLength: 20 } });
    const span = tracer.createTrace('t').startSpan('s');
    span.setAttribute('long', 'x'.repeat(100)).setInput('y'.repeat(50));
    span.end();
    expect(byName('s').attrs.long).toBe('x'.repeat(16));
    expect(byName('s').attrs[A.OBSERVATION_INPUT]).toBe('y'.repeat(20));
    expect(byName('s').attrs[A.TRUNCATED]).toBe(2);
  });

  it('keeps a RAG-sized prompt whole: inputs and outputs have their own, larger limit', () => {
    const { tracer, byName } = testTracer();
    const context = 'chunk of a retrieved document. '.repeat(1500); // 46,500 characters
    const trace = tracer.createTrace({ name: 'chat', input: context });
    const g = trace.startGeneration('answer');
    g.setAttribute('context', context).setInput([{ role: 'user', content: context }]).setOutput('z'.repeat(70_000));
    g.end();
    trace.finish();
    const attrs = byName('answer').attrs;
    expect(attrs.context).toHaveLength(16_384);
    expect(attrs[A.OBSERVATION_INPUT] === JSON.stringify([{ role: 'user', content: context }])).toBe(true);
    expect(attrs[A.OBSERVATION_OUTPUT]).toHaveLength(65_536);
    expect(attrs[A.TRUNCATED]).toBe(2);
    expect(byName('chat').attrs[A.TRACE_INPUT] === context).toBe(true);
    // Never shorter than other strings may be.
    const wide = testTracer({ limits: { maxStringLength: 100_000 } });
    const s = wide.tracer.startSpan('s');
    s.setOutput('w'.repeat(90_000)).end();
    expect(wide.byName('s').attrs[A.OBSERVATION_OUTPUT]).toHaveLength(90_000);
  });

  it('cuts an object stored as JSON to valid JSON, so Langfuse still shows chat messages', () => {
    const { tracer, byName } = testTracer({ limits: { maxStringLength: 100, maxIoLength: 100 } });
    const messages = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'q'.repeat(200) },
    ];
    const span = tracer.createTrace('t').startGeneration('g');
    span.setInput(messages).setAttribute('meta', { list: [1, 2, 3], text: 'w'.repeat(100) });
    span.end();
    const input = byName('g').attrs[A.OBSERVATION_INPUT] as string;
    expect(input.length).toBeLessThanOrEqual(100);
    const parsed = JSON.parse(input) as typeof messages;
    expect(parsed[0]).toEqual(messages[0]);
    expect(parsed[1]!.content).toMatch(/^q+…$/);
    expect(JSON.parse(byName('g').attrs.meta as string)).toMatchObject({ list: [1, 2, 3] });
    expect(byName('g').attrs[A.TRUNCATED]).toBe(2);
  });

  it('never cuts a surrogate pair in two, and replaces lone surrogates', () => {
    const { tracer, byName } = testTracer({ limits: { maxStringLength: 16 } });
    const span = tracer.createTrace('t').startSpan('s');
    // The emoji's two UTF-16 units sit at positions 15 and 16: a cut at 16 would split it.
    span.setAttribute('emoji', `${'x'.repeat(15)}😀 and more`);
    span.setOutput('ok \ud83d \udc00 ok');
    span.end();
    expect(byName('s').attrs.emoji).toBe('x'.repeat(15));
    expect(byName('s').attrs[A.OBSERVATION_OUTPUT]).toBe('ok \ufffd \ufffd ok');
    expect(byName('s').attrs[A.TRUNCATED]).toBe(1);
  });

  it('replaces lone surrogates also where strings have no isWellFormed() (before Chrome 111, Firefox 119, Safari 16.4)', () => {
    const proto = String.prototype as { isWellFormed?: unknown };
    const isWellFormed = proto.isWellFormed;
    delete proto.isWellFormed;
    try {
      const { tracer, byName } = testTracer();
      const span = tracer.createTrace('t').startSpan('s');
      const values = ['ok \ud83d \udc00 ok', '😀\ud83d😀', '\udc00😀\ud83d', 'plain', 'pair 😀 only'];
      values.forEach((v, i) => span.setAttribute(`v${i}`, v));
      span.end();
      expect(values.map((_, i) => byName('s').attrs[`v${i}`])).toEqual(['ok \ufffd \ufffd ok', '😀\ufffd😀', '\ufffd😀\ufffd', 'plain', 'pair 😀 only']);
    } finally {
      proto.isWellFormed = isWellFormed;
    }
  });

  it('ignores explicit times that are not epoch milliseconds (ns or µs by mistake, NaN, huge)', () => {
    const { tracer, byName, time: clock } = testTracer();
    const trace = tracer.createTrace('t');
    const ns = Date.now() * 1e6;
    const span = trace.startSpan('s', { startMs: ns });
    span.recordEvent('e', undefined, 1e30);
    span.recordEvent('nan', undefined, NaN);
    span.end(1e22);
    trace.finish(Date.now() * 1e3);
    const s = byName('s');
    expect(s.startMs).toBe(clock());
    expect(s.endMs).toBe(clock());
    expect(s.events.map((e) => e.timeMs)).toEqual([clock(), clock()]);
    expect(byName('t').endMs).toBe(clock());
  });

  it('caps events and links per span', () => {
    const { tracer, byName } = testTracer({ limits: { maxEvents: 2, maxLinks: 1 } });
    const span = tracer.startSpan('s');
    for (let i = 0; i < 5; i++) span.recordEvent(`e${i}`);
    span.addLink(REMOTE_PARENT);
    span.addLink({ traceId: 'c'.repeat(32), spanId: 'd'.repeat(16), flags: 1 });
    span.end();
    expect(byName('s').events.map((e) => e.name)).toEqual(['e0', 'e1']);
    expect(byName('s').links).toHaveLength(1);
    expect(byName('s').dropped).toEqual({ attrs: 0, events: 3, links: 1 });
  });
});

describe('what callers hand a span is cleaned like attributes', () => {
  const KEY = 'sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX';

  it('redacts and cuts span names, also when renamed', () => {
    const { tracer, byName } = testTracer({ limits: { maxStringLength: 40 } });
    const t = tracer.createTrace(`call with Bearer abcdefghijklmnopqrstuvwxyz`);
    t.startSpan('x'.repeat(100)).end();
    const renamed = t.startSpan('plain');
    renamed.updateName(`uses ${KEY}`);
    renamed.end();
    t.finish();
    expect(byName('call with Bearer [REDACTED]')).toBeDefined();
    expect(byName('x'.repeat(40))).toBeDefined();
    expect(byName('uses [REDACTED]')).toBeDefined();
  });

  it('cleans a repeated name every time it needs it, and counts every cut', () => {
    // Plain names are remembered after the first span; these must not be.
    const { tracer, spans } = testTracer({ limits: { maxStringLength: 40 } });
    const names = [`Bearer abcdefghijklmnopqrstuvwxyz`, 'x'.repeat(100), 'lone \ud83d', 'plain'];
    for (let round = 0; round < 3; round++) {
      const t = tracer.createTrace('t');
      for (const name of names) t.startSpan(name).end();
      t.finish();
    }
    const got = spans.filter((s) => s.name !== 't');
    expect(got.map((s) => s.name)).toEqual(Array(3).fill(['Bearer [REDACTED]', 'x'.repeat(40), 'lone \ufffd', 'plain']).flat());
    expect(got.map((s) => s.attrs[A.TRUNCATED])).toEqual(Array(3).fill([undefined, 1, undefined, undefined]).flat());
  });

  it('redacts before it cuts, so a secret at the limit does not leave a piece behind', () => {
    // Cut at 20 characters first, too little of the key would be left for its pattern to find.
    const { tracer, spans } = testTracer({ limits: { maxStringLength: 20 } });
    tracer.createTrace('t').setAttribute('key', `key: ${KEY}`).finish();
    expect(spans[0]!.attrs.key).toBe('key: [REDACTED]');
  });

  it('redacts the values of url.query, which has no "?"', () => {
    const { tracer, spans } = testTracer();
    tracer.createTrace('t').setAttribute('url.query', 'token=s3cr3tvalue&page=2').finish();
    expect(spans[0]!.attrs['url.query']).toBe('token=[REDACTED]&page=[REDACTED]');
  });

  it('keeps only links with valid ids, with their attributes cleaned and bounded', () => {
    const { tracer, spans } = testTracer({ limits: { maxAttributes: 1 } });
    const other = tracer.createTrace('other');
    const t = tracer.createTrace('t');
    t.addLink({ traceId: 'nothex', spanId: 'x', flags: 1 });
    t.addLink(other.spanContext(), { auth: 'Bearer abcdefghijklmnopqrstuvwxyz', extra: 1 });
    t.finish();
    other.finish();
    const links = spans.find((s) => s.name === 't')!.links;
    expect(links).toHaveLength(1);
    expect(links[0]!.attrs).toEqual({ auth: 'Bearer [REDACTED]' });
    expect(links[0]!.droppedAttrs).toBe(1);
  });

  it('never throws for options it cannot read, and records what it can', () => {
    const { tracer, spans } = testTracer();
    const t = tracer.createTrace('t');
    expect(() => t.startSpan('a', { links: [null] } as never).end()).not.toThrow();
    expect(() => t.span('b', { links: 5 } as never, () => undefined)).not.toThrow();
    expect(() => tracer.startSpan('c', null as never).end()).not.toThrow();
    t.finish();
    expect(spans.map((s) => s.name).sort()).toEqual(['a', 'b', 'c', 't']);
  });

  it('ends at the current time when given an end time that is not one', () => {
    const { tracer, spans, time } = testTracer();
    tracer.createTrace('t').end(Number.NaN);
    expect(spans[0]!.endMs).toBe(time());
  });
});

describe('a trace with its own environment', () => {
  it('puts it on every span of the trace and on its scores, not only on the root', () => {
    const { tracer, spans, scores, byName } = testTracer({ environment: 'production' });
    const t = tracer.createTrace({ name: 'staged', environment: 'staging' });
    const child = t.startSpan('child');
    child.score('quality', 1);
    child.end();
    t.finish();
    expect(byName('staged').attrs[A.ENVIRONMENT]).toBe('staging');
    expect(byName('child').attrs[A.ENVIRONMENT]).toBe('staging');
    expect(scores[0]!.environment).toBe('staging');
    // Other traces keep the tracer's: written once by the exporter, not on each child.
    const other = tracer.createTrace('other');
    other.startSpan('plain').end();
    other.finish();
    expect(spans.find((s) => s.name === 'plain')!.attrs[A.ENVIRONMENT]).toBeUndefined();
  });

  it('takes an environment and release from update(), for the spans and scores that end after it (a canary request)', () => {
    const { tracer, scores, byName } = testTracer({ environment: 'production', release: 'r1' });
    const t = tracer.createTrace('request');
    t.span('before', () => undefined);
    t.update({ environment: 'canary', release: 'r2' });
    t.span('after', () => undefined);
    t.score('quality', 1);
    t.update({ environment: '', release: '' });
    t.finish();
    expect(byName('request').attrs).toMatchObject({ [A.ENVIRONMENT]: 'canary', [A.RELEASE]: 'r2' });
    expect(byName('after').attrs).toMatchObject({ [A.ENVIRONMENT]: 'canary', [A.RELEASE]: 'r2' });
    // Ended before: as they were.
    expect(byName('before').attrs[A.RELEASE]).toBe('r1');
    expect(byName('before').attrs[A.ENVIRONMENT]).toBeUndefined();
    expect(scores[0]!.environment).toBe('canary');
  });
});

describe('a generation whose callback gives back a stream object before its request', () => {
  const iterable = () => ({ async *[Symbol.asyncIterator]() {} });

  it('ends at its callback’s end once no model stream has started within STREAM_START_MS', () => {
    vi.useFakeTimers();
    try {
      const { tracer, spans, tick, time } = testTracer();
      const trace = tracer.createTrace('chat');
      trace.generation('streamed', { model: 'm' }, () => iterable());
      const returnedMs = time();
      tick(50);
      vi.advanceTimersByTime(STREAM_START_MS - 1);
      expect(spans.find((s) => s.name === 'streamed')).toBeUndefined();
      vi.advanceTimersByTime(1);
      expect(spans.find((s) => s.name === 'streamed')!.endMs).toBe(returnedMs);
      // Other callbacks end at once: a plain object, or a span that is not a generation.
      trace.generation('plain', { model: 'm' }, () => ({ answer: 1 }));
      trace.span('not a generation', () => iterable());
      expect(spans.map((s) => s.name)).toEqual(['streamed', 'plain', 'not a generation']);
    } finally {
      vi.useRealTimers();
    }
  });

  it('ends at its callback’s end, not unfinished, when its trace ends first', () => {
    const { tracer, spans, tick, time } = testTracer();
    const trace = tracer.createTrace('chat');
    trace.generation('streamed', { model: 'm' }, () => iterable());
    const returnedMs = time();
    tick(30);
    trace.finish();
    const gen = spans.find((s) => s.name === 'streamed')!;
    expect(gen.endMs).toBe(returnedMs);
    expect(gen.attrs['edgetrace.unfinished']).toBeUndefined();
  });

  it('waits for the model stream its request starts, and ends with it', async () => {
    vi.useFakeTimers();
    try {
      const { tracer, spans, tick, time } = testTracer();
      const trace = tracer.createTrace('chat');
      let release: ((endMs?: number) => void) | undefined;
      trace.generation('streamed', { model: 'm' }, (g) => {
        queueMicrotask(() => (release = readsStream(g)));
        return iterable();
      });
      await Promise.resolve();
      // The stream began within the wait, so the wait is over: its read alone holds the generation.
      vi.advanceTimersByTime(5 * STREAM_START_MS);
      expect(spans.find((s) => s.name === 'streamed')).toBeUndefined();
      tick(400);
      release!(time());
      expect(spans.find((s) => s.name === 'streamed')!.endMs).toBe(time());
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('a generation whose callback gives back a value that throws when read', () => {
  it('ends, and nothing reaches the caller (a Proxy that answers every key with text)', async () => {
    const { tracer, spans } = testTracer();
    const trace = tracer.createTrace('chat');
    // `path.${key}` throws for a symbol key, as Symbol.asyncIterator is.
    const odd = new Proxy({}, { get: (_t, key) => (key === 'then' ? undefined : `path.${key as string}`) });
    await expect(trace.generation('async', { model: 'm' }, async () => odd)).resolves.toBe(odd);
    expect(trace.generation('sync', { model: 'm' }, () => odd)).toBe(odd);
    expect(spans.map((s) => s.name)).toEqual(['async', 'sync']);
  });
});
