import { describe, expect, it } from 'vitest';
import { generationBody } from '../../../src/instrument/generationBody';
import { createTracer } from '../../../src/core/tracer';

// Whether a model stream's last event came: an app that stops reading there (a `break` in its
// loop) cancelled a stream that had nothing more to say.
const sse = (...events: string[]) => new TextEncoder().encode(events.map((e) => `data: ${e}\n\n`).join(''));
const res = new Response('', { headers: { 'content-type': 'text/event-stream' } });

describe('generationBody: the last event of a model stream', () => {
  it.each([
    ['OpenAI', ['{"choices":[{"delta":{"content":"hi"}}]}', '[DONE]']],
    ['Anthropic', ['{"type":"content_block_delta","delta":{"text":"hi"}}', '{"type":"message_stop"}']],
    ['the Responses API', ['{"type":"response.output_text.delta","delta":"hi"}', '{ "type": "response.completed", "response": {} }']],
  ])('is seen in %s streams', (_, events) => {
    const body = generationBody(res, undefined);
    body.push(sse(...events.slice(0, -1)));
    expect(body.done).toBe(false);
    body.push(sse(events[events.length - 1]!));
    expect(body.done).toBe(true);
  });

  it('is not taken from output that only mentions it', () => {
    const body = generationBody(res, undefined);
    body.push(sse('{"choices":[{"delta":{"content":"[DONE]"}}]}', '{"type":"content_block_delta","delta":{"text":"message_stop"}}', '[DONE] soon'));
    expect(body.done).toBe(false);
  });
});

describe('generationBody: streams of lines and text in a generation', () => {
  const setup = (type: string) => {
    const records: import('../../../src/protocol').SpanRecord[] = [];
    const tracer = createTracer({ processors: [{ onEnd: (r) => void records.push(r) }] });
    const gen = tracer.createTrace('chat').startGeneration('answer', { model: 'llama3.2' });
    const body = generationBody(new Response('', { headers: { 'content-type': type } }), gen);
    return { gen, body, record: () => (gen.end(), records.find((r) => r.name === 'answer')!) };
  };
  const bytes = (text: string) => new TextEncoder().encode(text);
  // Ollama's /api/chat with stream: true; its last line carries the counts (after a long context
  // array for /api/generate).
  const ollama = [
    '{"model":"llama3.2","message":{"role":"assistant","content":"Hel"},"done":false}\n',
    '{"model":"llama3.2","message":{"role":"assistant","content":"lo"},"done":false}\n',
    `{"model":"llama3.2","message":{"role":"assistant","content":""},"done":true,"context":[${'1,'.repeat(20_000)}1],"prompt_eval_count":26,"eval_count":298}\n`,
  ];

  it('sets the first-token time at the first chunk with text, and usage from the last line of an NDJSON stream', () => {
    const { gen, body, record } = setup('application/x-ndjson');
    body.push(bytes('  \n'));
    expect(gen.attrs['langfuse.observation.completion_start_time']).toBeUndefined();
    body.push(bytes(ollama[0]!));
    const first = gen.attrs['langfuse.observation.completion_start_time'];
    expect(first).toBeDefined();
    body.push(bytes(ollama[1]!));
    // The last line, split across chunks the way a network splits it.
    const last = bytes(ollama[2]!);
    body.push(last.subarray(0, 5000));
    body.push(last.subarray(5000));
    body.end();
    expect(gen.attrs['langfuse.observation.completion_start_time']).toBe(first);
    expect(record().attrs['langfuse.observation.usage_details']).toBe(JSON.stringify({ input: 26, output: 298 }));
  });

  it('reads the usage of an NDJSON stream the app read with text(), and of an Ollama answer that did not stream', () => {
    const read = setup('application/x-ndjson; charset=utf-8');
    read.body.end(ollama.join(''));
    expect(read.record().attrs['langfuse.observation.usage_details']).toBe(JSON.stringify({ input: 26, output: 298 }));
    const json = setup('application/json');
    json.body.end({ model: 'llama3.2', message: { role: 'assistant', content: 'Hello' }, done: true, prompt_eval_count: 12, eval_count: 40 });
    expect(json.record().attrs['langfuse.observation.usage_details']).toBe(JSON.stringify({ input: 12, output: 40 }));
  });

  it('still reads usage from a whole text/plain body the app parsed: pretty-printed, or through json()', () => {
    const pretty = setup('text/plain');
    pretty.body.end(JSON.stringify({ choices: [], usage: { prompt_tokens: 7, completion_tokens: 2 } }, null, 2));
    expect(pretty.record().attrs['langfuse.observation.usage_details']).toBe(JSON.stringify({ input: 7, output: 2 }));
    const parsed = setup('text/plain');
    parsed.body.end({ choices: [], usage: { prompt_tokens: 4, completion_tokens: 1 } });
    expect(parsed.record().attrs['langfuse.observation.usage_details']).toBe(JSON.stringify({ input: 4, output: 1 }));
  });

  it('takes the first text of a plain-text stream as its first token, and leaves a JSON answer read in chunks without one', () => {
    const text = setup('text/plain; charset=utf-8');
    text.body.push(bytes('0:"Hi"\n'));
    expect(text.gen.attrs['langfuse.observation.completion_start_time']).toBeDefined();
    // An error's text is not the model's first token.
    const records: import('../../../src/protocol').SpanRecord[] = [];
    const failed = createTracer({ processors: [{ onEnd: (r) => void records.push(r) }] }).createTrace('chat').startGeneration('answer');
    const body = generationBody(new Response('', { status: 500, headers: { 'content-type': 'text/plain' } }), failed);
    body.push(bytes('upstream timed out'));
    expect(failed.attrs['langfuse.observation.completion_start_time']).toBeUndefined();
    // Nor is a text whose length was known before it was sent: a prompt template fetched in the
    // generation before the model call. Its JSON lines still give usage.
    const template = createTracer().createTrace('chat').startGeneration('answer');
    const file = generationBody(new Response('', { headers: { 'content-type': 'text/plain', 'content-length': '64' } }), template);
    file.push(bytes('You are a helpful assistant. Answer in {{language}}.\n'));
    file.end();
    expect(template.attrs['langfuse.observation.completion_start_time']).toBeUndefined();
    const buffered = createTracer().createTrace('chat').startGeneration('answer');
    const whole = generationBody(new Response('', { headers: { 'content-type': 'application/x-ndjson', 'content-length': '120' } }), buffered);
    whole.push(bytes(ollama[2]!));
    whole.end();
    expect(buffered.attrs['langfuse.observation.completion_start_time']).toBeUndefined();
    expect(buffered.attrs['langfuse.observation.usage_details']).toBe(JSON.stringify({ input: 26, output: 298 }));
    const json = setup('application/json');
    json.body.push(bytes('{"choices":[{"message":{"content":"Hi"}}]'));
    json.body.push(bytes(',"usage":{"prompt_tokens":3,"completion_tokens":1}}'));
    json.body.end('{"choices":[{"message":{"content":"Hi"}}],"usage":{"prompt_tokens":3,"completion_tokens":1}}');
    expect(json.gen.attrs['langfuse.observation.completion_start_time']).toBeUndefined();
    expect(json.record().attrs['langfuse.observation.usage_details']).toBe(JSON.stringify({ input: 3, output: 1 }));
  });
});

describe('generationBody: streams stopped early, and the AI SDK data stream', () => {
  const setup = (headers: Record<string, string>) => {
    const records: import('../../../src/protocol').SpanRecord[] = [];
    const tracer = createTracer({ processors: [{ onEnd: (r) => void records.push(r) }] });
    const gen = tracer.createTrace('chat').startGeneration('answer', { model: 'claude-x' });
    const body = generationBody(new Response('', { headers }), gen);
    return { gen, body, record: () => (gen.end(), records.find((r) => r.name === 'answer')!) };
  };
  const FIRST_TOKEN = 'langfuse.observation.completion_start_time';
  const usageOf = (r: import('../../../src/protocol').SpanRecord) => JSON.parse(String(r.attrs['langfuse.observation.usage_details'] ?? 'null'));

  it('invents no first token for a stream stopped before its output, and prices no placeholder output', () => {
    const { body, record } = setup({ 'content-type': 'text/event-stream' });
    body.push(sse('{"type":"message_start","message":{"usage":{"input_tokens":25,"output_tokens":1}}}', '{"type":"ping"}'));
    body.end(undefined, false);
    const r = record();
    expect(r.attrs[FIRST_TOKEN]).toBeUndefined();
    expect(usageOf(r)).toEqual({ input: 25 });
  });

  it('guesses the first event of a stream of unknown events only when it was read to its end', () => {
    const stopped = setup({ 'content-type': 'text/event-stream' });
    stopped.body.push(sse('{"type":"token.begin"}', '{"type":"token.begin"}'));
    stopped.body.end(undefined, false);
    expect(stopped.record().attrs[FIRST_TOKEN]).toBeUndefined();
    const read = setup({ 'content-type': 'text/event-stream' });
    read.body.push(sse('{"type":"token.begin"}'));
    read.body.end(undefined, true);
    expect(read.record().attrs[FIRST_TOKEN]).toBeDefined();
  });

  it('takes the first text part of an AI SDK data stream as its first token, and its usage from the d: line', () => {
    const { gen, body, record } = setup({ 'content-type': 'text/plain; charset=utf-8', 'x-vercel-ai-data-stream': 'v1' });
    const bytes = (text: string) => new TextEncoder().encode(text);
    body.push(bytes('f:{"messageId":"msg-1"}\n'));
    expect(gen.attrs[FIRST_TOKEN]).toBeUndefined();
    body.push(bytes('0:"Hel"\n0:"lo"\n'));
    expect(gen.attrs[FIRST_TOKEN]).toBeDefined();
    body.push(bytes('e:{"finishReason":"stop","usage":{"promptTokens":10,"completionTokens":20},"isContinued":false}\nd:{"finishReason":"stop","usage":{"promptTokens":10,"completionTokens":20}}\n'));
    body.end(undefined, true);
    expect(usageOf(record())).toEqual({ input: 10, output: 20 });
  });

  it("reads the AI SDK's own usage names (inputTokens, outputTokens) from a body", () => {
    const { body, record } = setup({ 'content-type': 'application/json' });
    body.end({ usage: { inputTokens: 3, outputTokens: 4, totalTokens: 7 } }, true);
    expect(usageOf(record())).toEqual({ input: 3, output: 4 });
  });
});

describe('generationBody: the model that answered', () => {
  const setup = (type: string, prices?: Record<string, { input: number; output: number }>) => {
    const records: import('../../../src/protocol').SpanRecord[] = [];
    const tracer = createTracer({ processors: [{ onEnd: (r) => void records.push(r) }], prices });
    const gen = tracer.createTrace('chat').startGeneration('answer', { model: 'gpt-4o' });
    const body = generationBody(new Response('', { headers: { 'content-type': type } }), gen);
    return { gen, body, record: () => (gen.end(), records.find((r) => r.name === 'answer')!) };
  };

  it.each([
    ['OpenAI chat chunks', ['{"id":"c1","object":"chat.completion.chunk","model":"gpt-4o-2024-08-06","choices":[{"delta":{"role":"assistant"}}]}', '{"id":"c1","model":"gpt-4o-2024-08-06","choices":[{"delta":{"content":"Hi"}}]}'], 'gpt-4o-2024-08-06'],
    ['the Responses API', ['{"type":"response.created","response":{"id":"r1","instructions":"Say \\"model\\": \\"none\\"","model":"gpt-4.1-2025-04-14","usage":null}}'], 'gpt-4.1-2025-04-14'],
    ['Anthropic', ['{"type":"message_start","message":{"id":"m1","role":"assistant","model":"claude-sonnet-4-5-20250929","usage":{"input_tokens":9,"output_tokens":1}}}'], 'claude-sonnet-4-5-20250929'],
    ['Gemini', ['{"candidates":[{"content":{"parts":[{"text":"Hi"}],"role":"model"}}],"modelVersion":"gemini-2.5-flash"}'], 'gemini-2.5-flash'],
    ['a router', ['{"id":"gen-1","model":"anthropic/claude-3.5-sonnet","choices":[{"delta":{"content":"Hi"}}]}'], 'anthropic/claude-3.5-sonnet'],
  ])('is read from %s streams', (_, events, model) => {
    const { body, record } = setup('text/event-stream');
    body.push(sse(...events));
    body.end();
    expect(record().attrs['gen_ai.response.model']).toBe(model);
    expect(record().attrs['gen_ai.request.model']).toBe('gpt-4o');
  });

  it('is read from an answer that did not stream, and only from one with usage', () => {
    const answer = setup('application/json');
    answer.body.end({ id: 'c1', object: 'chat.completion', model: 'gpt-4o-2024-08-06', choices: [], usage: { prompt_tokens: 3, completion_tokens: 1 } });
    expect(answer.record().attrs['gen_ai.response.model']).toBe('gpt-4o-2024-08-06');
    // A tool's JSON inside the generation: a `model` field that is no model's.
    const other = setup('application/json');
    other.body.end({ model: 'Corolla', year: 2021 });
    expect(other.record().attrs['gen_ai.response.model']).toBeUndefined();
    const text = setup('application/json');
    text.body.end('{"id":"m1","type":"message","model":"claude-haiku-4-5","content":[{"type":"text","text":"\\"model\\":\\"x\\""}],"usage":{"input_tokens":5,"output_tokens":2}}');
    expect(text.record().attrs['gen_ai.response.model']).toBe('claude-haiku-4-5');
  });

  it("is not taken from a model named in a tool's arguments or in content", () => {
    // Gemini calling a function whose arguments name a car before its own modelVersion.
    const gemini = setup('text/event-stream');
    gemini.body.push(sse('{"candidates":[{"content":{"parts":[{"functionCall":{"name":"price","args":{"model":"Model S"}}}],"role":"model"}}],"modelVersion":"gemini-2.5-flash"}'));
    gemini.body.end();
    expect(gemini.record().attrs['gen_ai.response.model']).toBe('gemini-2.5-flash');
    // The AI SDK's UI message stream: a tool's input, and no model named at all.
    const ui = setup('text/event-stream');
    ui.body.push(sse('{"type":"start"}', '{"type":"tool-input-available","toolCallId":"t1","toolName":"switch","input":{"model":"gpt-4o-mini"}}'));
    ui.body.end();
    expect(ui.record().attrs['gen_ai.response.model']).toBeUndefined();
    // The AI SDK's data stream names no model; its tool call lines may.
    const records: import('../../../src/protocol').SpanRecord[] = [];
    const tracer = createTracer({ processors: [{ onEnd: (r) => void records.push(r) }] });
    const gen = tracer.createTrace('chat').startGeneration('answer', { model: 'gpt-4o' });
    const data = generationBody(new Response('', { headers: { 'content-type': 'text/plain', 'x-vercel-ai-data-stream': 'v1' } }), gen);
    data.push(new TextEncoder().encode('0:"Hi"\n9:{"toolCallId":"t1","toolName":"switch","args":{"model":"tool-arg"}}\nd:{"finishReason":"stop","usage":{"promptTokens":5,"completionTokens":2}}\n'));
    data.end();
    gen.end();
    expect(records[0]!.attrs['gen_ai.usage.input_tokens']).toBe(5);
    expect(records[0]!.attrs['gen_ai.response.model']).toBeUndefined();
  });

  it('keeps the first model named, and one the app set', () => {
    const first = setup('text/event-stream');
    first.body.push(sse('{"model":"a-1","choices":[]}', '{"model":"b-2","choices":[]}'));
    first.body.end();
    expect(first.record().attrs['gen_ai.response.model']).toBe('a-1');
    const own = setup('text/event-stream');
    own.gen.setAttribute('gen_ai.response.model', 'mine');
    own.body.push(sse('{"model":"a-1","choices":[]}'));
    own.body.end();
    expect(own.record().attrs['gen_ai.response.model']).toBe('mine');
  });

  it("prices usage at the answering model's price when the table has it, else at the requested one's", () => {
    const prices = { 'gpt-4o': { input: 2.5e-6, output: 1e-5 }, 'anthropic/claude-3.5-sonnet': { input: 3e-6, output: 1.5e-5 } };
    const routed = setup('text/event-stream', prices);
    routed.body.push(sse('{"model":"anthropic/claude-3.5-sonnet","choices":[{"delta":{"content":"Hi"}}]}', '{"choices":[],"usage":{"prompt_tokens":1000,"completion_tokens":100}}'));
    routed.body.end();
    expect(JSON.parse(routed.record().attrs['langfuse.observation.cost_details'] as string).total).toBeCloseTo(0.0045, 10);
    const dated = setup('text/event-stream', prices);
    dated.body.push(sse('{"model":"gpt-4o-2024-08-06","choices":[{"delta":{"content":"Hi"}}]}', '{"choices":[],"usage":{"prompt_tokens":1000,"completion_tokens":100}}'));
    dated.body.end();
    expect(JSON.parse(dated.record().attrs['langfuse.observation.cost_details'] as string).total).toBeCloseTo(0.0035, 10);
  });
});

describe('generationBody: the first token is timed by its chunk', () => {
  it('takes the time the chunk came, not the time it was parsed, for events and for lines', () => {
    for (const [type, chunk] of [
      ['text/event-stream', sse('{"choices":[{"delta":{"role":"assistant"}}]}', '{"choices":[{"delta":{"content":"Hi"}}]}')],
      ['application/x-ndjson', new TextEncoder().encode('{"message":{"content":"Hi"},"done":false}\n')],
    ] as const) {
      const tracer = createTracer({});
      const gen = tracer.createTrace('chat').startGeneration('answer', { model: 'm' });
      const body = generationBody(new Response('', { headers: { 'content-type': type } }), gen);
      // A chunk that came a while before the app read it and handed it over.
      const cameMs = Date.now() - 2500;
      body.push(chunk, cameMs);
      body.end();
      expect(gen.attrs['langfuse.observation.completion_start_time']).toBe(new Date(cameMs).toISOString());
    }
  });
});

describe('generationBody: an error answer', () => {
  it('is no model stream, whatever its type (a 429 or a 500 sent as text, chunked)', () => {
    const gen = createTracer({}).createTrace('chat').startGeneration('answer', { model: 'm' });
    const headers = new Headers({ 'content-type': 'text/plain' });
    expect(generationBody({ ok: false, headers }, gen).isStream).toBe(false);
    expect(generationBody({ ok: true, headers }, gen).isStream).toBe(true);
  });
});
