import type { Generation, Span } from '../core/span';
import type { Usage } from '../core/cost';
import * as A from '../core/semconv';
import { now } from '../lib/now';
import { hasNoBody } from '../lib/hasNoBody';
import { createSseCounter, isOutputEvent, leadingType, modelIn, modelOf, usageFromBody, usageFromEvent } from './stream';

const SSE_RE = /^\s*text\/event-stream/i;
/**
 * Streams of JSON lines (Ollama's `application/x-ndjson`) and of text (hand-written token streams,
 * the AI SDK's data stream): inside a generation their first text is the first token.
 */
const LINES_RE = /^\s*(application\/(x-)?ndjson|application\/jsonl|text\/plain)/i;
// What is kept of such a stream's end, for the usage its last line may carry.
const MAX_TAIL_CHARS = 1 << 15;

/**
 * Events an LLM stream may send before its first output (Responses API streams send about six);
 * past them the stream is taken as one whose events cannot be told apart, and not parsed further.
 */
const SETUP_EVENTS = 32;

/**
 * The event a model stream ends with: OpenAI's `[DONE]`, Anthropic's `message_stop`, the Responses
 * API's `response.completed`. An app may stop reading once it has it (`break` in `for await`),
 * which cancels the stream without cutting anything short.
 */
const LAST_TYPES = new Set(['message_stop', 'response.completed']);

/** The generation a request runs in, whose first-token time and usage its response may fill. */
export const generationOf = (parent: Span | undefined): Generation | undefined =>
  parent && typeof (parent as Generation).setCompletionStart === 'function' ? (parent as Generation) : undefined;

/** Whether a response of `status` to `method` fills `gen`: one still recording, and a response with a body. */
export const fillsGeneration = (gen: Generation, status: number, method: string): boolean => gen.isRecording && !gen.isEnded && !hasNoBody(status, method);

/** What a response body fed to {@link generationBody} tells, chunk by chunk and at its end. */
export interface GenerationBody {
  /** Whether the response is a `text/event-stream`. */
  readonly isSse: boolean;
  /** Whether the body is a stream of a model's output: an event stream, or JSON lines or text sent as made. */
  readonly isStream: boolean;
  /** Whether a model stream's last event came: a cancel after it ended nothing early. */
  readonly done: boolean;
  /**
   * Feeds a chunk the app read through `response.body` (or `text()` of a stream), which came at
   * `atMs` (default now): a first token in it is timed then, not a moment later while parsed.
   */
  push(chunk: unknown, atMs?: number): void;
  /**
   * The body was read; `value` is what a read method gave the app, `complete` whether it was read
   * to its end (default true). Returns the SSE events seen.
   */
  end(value?: unknown, complete?: boolean): number;
}

/** A body with no generation to fill that is not an event stream: nothing to follow. */
const NOTHING: GenerationBody = { isSse: false, isStream: false, done: false, push() {}, end: () => 0 };

/**
 * Follows a response body for the generation the request runs in (none: SSE events are only
 * counted). A `text/event-stream` sets the first-token time (`completion_start_time`) at the first
 * event with output, looked for among the first SETUP_EVENTS, or at its end at its first event
 * when its events cannot be told apart; its usage events fill usage. A body that did not stream
 * fills usage from what `json()` or `text()` gave the app. A first-token time already set (by the
 * app, or by an earlier stream of the same generation) is kept.
 */
export const generationBody = (res: { readonly ok?: boolean; readonly headers: { get(name: string): string | null } }, gen: Generation | undefined): GenerationBody => {
  const type = res.headers.get('content-type') ?? '';
  const isSse = SSE_RE.test(type);
  // Most responses: no generation to fill and nothing to count.
  if (!gen && !isSse) return NOTHING;
  // An error's text (a 500's message) is no first token, nor is its last line usage.
  const lines = !isSse && LINES_RE.test(type) && res.ok !== false;
  // Only a body sent as it is made is a stream of tokens: one whose length was known ahead (a
  // prompt template fetched before the model call) is not.
  const streamed = lines && res.headers.get('content-length') === null;
  let decoder: TextDecoder | undefined;
  let tail = '';
  let firstEventMs: number | undefined;
  let sawOutput = false;
  // The AI SDK's data stream (`0:"text"` lines): its text parts are the tokens, not its first line.
  const dataStream = lines && res.headers.get('x-vercel-ai-data-stream') !== null;
  let usage: Usage | undefined;
  let done = false;
  // When the chunk being parsed came.
  let chunkMs: number | undefined;
  /** Sets the first-token time unless one is set already. */
  const startOnce = (timeMs?: number): void => {
    if (gen!.attrs[A.COMPLETION_START_TIME] === undefined) gen!.setCompletionStart(timeMs);
  };
  /** Records the model that answered (a dated version of the one asked for, the one a router chose), once. */
  const answeredBy = (find: () => string | undefined): void => {
    if (gen!.attrs[A.GEN_AI_RESPONSE_MODEL] !== undefined) return;
    const name = find();
    if (name) gen!.setAttribute(A.GEN_AI_RESPONSE_MODEL, name);
  };
  const sse = isSse
    ? createSseCounter((data, index, end) => {
        done ||= data === '[DONE]' || LAST_TYPES.has(leadingType(data)!);
        // Without a generation the events are only counted: no usage parsing per event.
        if (!gen) return;
        if (index < SETUP_EVENTS) {
          answeredBy(() => modelOf(data));
          if (index === 0) firstEventMs = chunkMs ?? now();
          if (!sawOutput && isOutputEvent(data)) {
            sawOutput = true;
            startOnce(chunkMs);
          }
        }
        const found = usageFromEvent(data, end);
        // Anthropic's message_start carries the input and a placeholder output of 1, which its
        // message_delta replaces: a stream stopped between them produced no output to price.
        if (found && leadingType(data) === 'message_start') delete found.output;
        if (found) {
          // Anthropic splits usage over two events; OpenAI sends it once, at the end.
          usage = { ...usage, ...found };
          gen.setUsage(usage);
        }
      })
    : undefined;
  return {
    isSse,
    isStream: isSse || streamed,
    get done() {
      return done;
    },
    push(chunk, atMs) {
      chunkMs = atMs;
      if (sse) return sse.push(chunk);
      if (!lines) return;
      const text = typeof chunk === 'string' ? chunk : ArrayBuffer.isView(chunk) ? (decoder ??= new TextDecoder()).decode(chunk, { stream: true }) : '';
      if (streamed && (dataStream ? /(^|\n)[0g]:/ : /\S/).test(text)) startOnce(chunkMs);
      tail = (tail + text).slice(-MAX_TAIL_CHARS);
    },
    end(value, complete = true) {
      // A stream read to its end whose events could not be told apart: its first event is the
      // best guess. Not for one stopped early: no output may have come at all (a person who
      // stopped a slow model). firstEventMs is set only while a generation listens.
      if (complete && !sawOutput && firstEventMs !== undefined) startOnce(firstEventMs);
      // A call that did not stream: its usage is in the body the app parsed. A stream of lines
      // has it in its last line (the AI SDK's data stream behind its `d:` prefix).
      if (gen && !sse) {
        let found = usageFromBody(value);
        let last: string | undefined;
        if (lines) {
          const text = (typeof value === 'string' ? value.slice(-MAX_TAIL_CHARS) : tail).trimEnd();
          last = text.slice(text.lastIndexOf('\n') + 1);
          found ??= usageFromBody(dataStream ? last.replace(/^[0-9a-z]+:/, '') : last);
        }
        if (found) {
          gen.setUsage(found);
          // Only a body with usage is a model's answer: another (a tool's JSON) may have a `model`
          // of its own. A stream of lines names it in its last line (Ollama's); the AI SDK's data
          // stream names none.
          answeredBy(() =>
            lines ? (dataStream ? undefined : modelOf(last!)) : typeof value === 'string' ? modelOf(value) : modelIn(Array.isArray(value) ? value[value.length - 1] : value),
          );
        }
      }
      return sse ? sse.events : 0;
    },
  };
};
