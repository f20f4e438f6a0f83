// The Vercel AI SDK (v6) traces through the OpenTelemetry API: `experimental_telemetry.tracer`
// takes any API tracer. These tests run the real SDK with its mock model and check what edgetrace
// records through `otelTracer()`.
import { AsyncLocalStorage } from 'node:async_hooks';
import { describe, expect, it } from 'vitest';
import { generateText, simulateReadableStream, stepCountIs, streamText, tool } from 'ai';
import { MockLanguageModelV3 } from 'ai/test';
import { z } from 'zod';
import { otelTracer } from '../../../src/core/otel';
import { createTracer } from '../../../src/core/tracer';
import { alsContext } from '../../../src/core/context';
import { toOtlpJson } from '../../../src/export/otlp';
import type { SpanRecord } from '../../../src/protocol';
import * as A from '../../../src/core/semconv';

const usage = (input: number, output: number) => ({
  inputTokens: { total: input, noCache: input, cacheRead: 0, cacheWrite: 0 },
  outputTokens: { total: output, text: output, reasoning: 0 },
});

const setup = (prices?: Record<string, Record<string, number>>) => {
  const spans: SpanRecord[] = [];
  const tracer = createTracer({ serviceName: 'chat-api', contextManager: alsContext(AsyncLocalStorage), processors: [{ onEnd: (r) => spans.push(r) }], prices });
  const named = (name: string): SpanRecord[] => spans.filter((s) => s.name === name);
  const one = (name: string): SpanRecord => {
    const [found, ...more] = named(name);
    if (!found || more.length) throw new Error(`expected one span ${name}, got: ${spans.map((s) => s.name).join(', ')}`);
    return found;
  };
  return { spans, tracer, named, one };
};

describe('the Vercel AI SDK through otelTracer()', () => {
  it('nests a streamed generation under the app’s trace, with usage and the first chunk', async () => {
    const { tracer, one, spans } = setup();
    const model = new MockLanguageModelV3({
      modelId: 'mock-chat',
      doStream: async () => ({
        stream: simulateReadableStream({
          chunks: [
            { type: 'stream-start', warnings: [] },
            { type: 'text-start', id: 't' },
            { type: 'text-delta', id: 't', delta: 'Hello' },
            { type: 'text-delta', id: 't', delta: ', world' },
            { type: 'text-end', id: 't' },
            { type: 'finish', finishReason: { unified: 'stop', raw: 'stop' }, usage: usage(12, 3) },
          ],
        }),
      }),
    });

    const text = await tracer.withTrace('chat-turn', async () => {
      const result = streamText({
        model,
        prompt: 'Say hello',
        experimental_telemetry: { isEnabled: true, functionId: 'greet', tracer: otelTracer(tracer) },
      });
      let out = '';
      for await (const part of result.textStream) out += part;
      return out;
    });

    expect(text).toBe('Hello, world');
    const turn = one('chat-turn');
    const call = one('ai.streamText');
    const doStream = one('ai.streamText.doStream');
    expect(call).toMatchObject({ traceId: turn.traceId, parentId: turn.spanId });
    expect(doStream).toMatchObject({ traceId: turn.traceId, parentId: call.spanId });
    expect(doStream.attrs).toMatchObject({
      'gen_ai.request.model': 'mock-chat',
      'gen_ai.usage.input_tokens': 12,
      'gen_ai.usage.output_tokens': 3,
      'ai.telemetry.functionId': 'greet',
      'ai.response.text': 'Hello, world',
    });
    expect(doStream.events.map((e) => e.name)).toContain('ai.stream.firstChunk');
    // Every span of the turn is one trace, and encodes as OTLP with its ids intact.
    expect(new Set(spans.map((s) => s.traceId))).toEqual(new Set([turn.traceId]));
    const encoded = toOtlpJson(spans).resourceSpans.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans));
    expect(encoded.find((s) => s.name === 'ai.streamText.doStream')?.parentSpanId).toBe(call.spanId);
  });

  it('puts the app’s own spans inside a tool call under that tool call', async () => {
    const { tracer, one, named } = setup();
    let step = 0;
    const model = new MockLanguageModelV3({
      modelId: 'mock-agent',
      doGenerate: async () =>
        step++ === 0
          ? {
              content: [{ type: 'tool-call', toolCallId: 'c1', toolName: 'weather', input: JSON.stringify({ city: 'Oslo' }) }],
              finishReason: { unified: 'tool-calls', raw: 'tool_calls' },
              usage: usage(20, 5),
              warnings: [],
            }
          : { content: [{ type: 'text', text: 'It is 4 °C in Oslo.' }], finishReason: { unified: 'stop', raw: 'stop' }, usage: usage(30, 8), warnings: [] },
    });

    const result = await tracer.withTrace('agent-turn', () =>
      generateText({
        model,
        prompt: 'Weather in Oslo?',
        stopWhen: stepCountIs(3),
        tools: {
          weather: tool({
            inputSchema: z.object({ city: z.string() }),
            // The app's own tracing inside the tool, through edgetrace's API.
            execute: async ({ city }) => tracer.span('weather-lookup', async (s) => (s.setAttribute('city', city), { city, celsius: 4 })),
          }),
        },
        experimental_telemetry: { isEnabled: true, tracer: otelTracer(tracer) },
      }),
    );

    expect(result.text).toBe('It is 4 °C in Oslo.');
    const turn = one('agent-turn');
    const call = one('ai.generateText');
    const toolCall = one('ai.toolCall');
    const lookup = one('weather-lookup');
    expect(call.parentId).toBe(turn.spanId);
    expect(named('ai.generateText.doGenerate').map((s) => s.parentId)).toEqual([call.spanId, call.spanId]);
    expect(toolCall.parentId).toBe(call.spanId);
    expect(toolCall.attrs).toMatchObject({ 'ai.toolCall.name': 'weather' });
    expect(lookup).toMatchObject({ parentId: toolCall.spanId, attrs: { city: 'Oslo' } });
  });

  it('records a failing model call as an error on the SDK’s spans, and the app gets the error', async () => {
    const { tracer, one } = setup();
    const failure = new Error('upstream 500');
    const model = new MockLanguageModelV3({
      doGenerate: async () => {
        throw failure;
      },
    });

    await expect(
      tracer.withTrace('failing-turn', () =>
        generateText({ model, prompt: 'x', maxRetries: 0, experimental_telemetry: { isEnabled: true, tracer: otelTracer(tracer) } }),
      ),
    ).rejects.toBe(failure);

    const call = one('ai.generateText');
    expect(call.status).toEqual({ code: 'error', message: 'upstream 500' });
    expect(call.events.find((e) => e.name === A.EXCEPTION_EVENT)?.attrs).toMatchObject({ [A.EXCEPTION_MESSAGE]: 'upstream 500' });
    expect(one('failing-turn').status.code).toBe('error');
  });

  it('prices each model call from the tracer’s prices, as a generation is priced, and only the call', async () => {
    const { tracer, one, named } = setup({ 'mock-': { input: 1e-6, output: 4e-6 } });
    let step = 0;
    const model = new MockLanguageModelV3({
      modelId: 'mock-priced',
      doGenerate: async () =>
        step++ === 0
          ? { content: [{ type: 'tool-call', toolCallId: 'c1', toolName: 'noop', input: '{}' }], finishReason: { unified: 'tool-calls', raw: 'tool_calls' }, usage: usage(20, 5), warnings: [] }
          : { content: [{ type: 'text', text: 'done' }], finishReason: { unified: 'stop', raw: 'stop' }, usage: usage(30, 8), warnings: [] },
    });
    await tracer.withTrace('priced-turn', () =>
      generateText({
        model,
        prompt: 'Go',
        stopWhen: stepCountIs(3),
        tools: { noop: tool({ inputSchema: z.object({}), execute: async () => 'ok' }) },
        experimental_telemetry: { isEnabled: true, tracer: otelTracer(tracer) },
      }),
    );
    const calls = named('ai.generateText.doGenerate');
    expect(calls.map((c) => c.attrs[A.GEN_AI_COST])).toEqual([40e-6, 62e-6]);
    expect(JSON.parse(String(calls[0]!.attrs[A.COST_DETAILS]))).toEqual({ input: 20e-6, output: 20e-6, total: 40e-6 });
    // The call around the steps carries the steps' sums in ai.usage.*, not gen_ai.usage.*: not priced again.
    expect(one('ai.generateText').attrs[A.GEN_AI_COST]).toBeUndefined();
    // Without prices, or with a cost the instrumentation set, nothing is added or changed.
    const bare = setup();
    const span = otelTracer(bare.tracer).startSpan('llm', { attributes: { [A.GEN_AI_REQUEST_MODEL]: 'mock-x', [A.GEN_AI_INPUT_TOKENS]: 10 } });
    span.end();
    expect(bare.one('llm').attrs[A.GEN_AI_COST]).toBeUndefined();
    const own = otelTracer(tracer).startSpan('llm-own', { attributes: { [A.GEN_AI_REQUEST_MODEL]: 'mock-x', [A.GEN_AI_INPUT_TOKENS]: 10, [A.GEN_AI_COST]: 0.5 } });
    own.end();
    expect(one('llm-own').attrs[A.GEN_AI_COST]).toBe(0.5);
  });

  it('prices a model call by the model it called when the dated model it got is not in the table', () => {
    const { tracer, one } = setup({ 'claude-sonnet-latest': { input: 3e-6, output: 15e-6 } });
    const call = otelTracer(tracer).startSpan('llm', {
      attributes: { [A.GEN_AI_REQUEST_MODEL]: 'claude-sonnet-latest', 'gen_ai.response.model': 'claude-sonnet-20241022', [A.GEN_AI_INPUT_TOKENS]: 100, [A.GEN_AI_OUTPUT_TOKENS]: 20 },
    });
    call.end();
    expect(one('llm').attrs[A.GEN_AI_COST]).toBeCloseTo(600e-6, 12);
  });
});
