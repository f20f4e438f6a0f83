import { describe, expect, it } from 'vitest';
import { generationBody } from '../../../src/instrument/generationBody';

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
