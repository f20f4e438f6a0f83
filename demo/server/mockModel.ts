import { createServerTracer, requestSpan, withTracing } from '../../src/server/index';
import type { Exporter, Span, Tracer } from '../../src/server/index';
import { findModel, MODELS, RATE_LIMIT_RETRY_AFTER_S, type FailureMode, type MockModel } from '../models';
import { composeAnswer, countPromptTokens, toTokens } from './mockAnswer';

/**
 * The mock model server: an OpenAI-style `POST /v1/chat/completions` that streams tokens over
 * server-sent events with realistic timing (queueing, a first-token delay, a token rate with
 * jitter, a final usage event), and `GET /v1/models`. It is traced with `withTracing`, so its
 * SERVER span continues the page's trace from `traceparent`, and its own steps (validate, rate
 * limiter, queue, prefill, decode) hang under it.
 *
 * The `x-mock-failure` request header makes it misbehave on demand: `error` (HTTP 500), `stall`
 * (a few tokens, then silence until the client gives up) or `rate-limit` (429 + Retry-After).
 */

/** Options of {@link createMockModel}. */
export interface MockModelOptions {
  /** Where the server's spans go (the playground passes the local collector). */
  exporter: Exporter;
  /** Multiplies every delay: 1 is the models' own pace. Default 1. */
  pace?: number;
  /** Longest a stalled stream stays open before the server gives up. Default 60000 ms. */
  stallMaxMs?: number;
}

/** A running mock model server. */
export interface MockModelServer {
  /** The fetch-style handler (use `toNodeListener` for Node's http server). */
  fetch(request: Request, env?: unknown, ctx?: unknown): Promise<Response>;
  readonly tracer: Tracer;
  /** Ends every stream still running (for shutdown). */
  close(): void;
}

interface ChatMessage {
  role: string;
  content: string;
}

interface ChatRequest {
  model: MockModel;
  messages: ChatMessage[];
  temperature: number;
  maxTokens: number;
  stream: boolean;
  includeUsage: boolean;
}

class BadRequest extends Error {
  constructor(
    message: string,
    readonly status = 400,
    readonly code = 'invalid_request_error',
  ) {
    super(message);
  }
}

const FAILURES: readonly FailureMode[] = ['none', 'error', 'stall', 'rate-limit'];

const json = (status: number, body: unknown, headers: Record<string, string> = {}): Response =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers } });

const errorJson = (status: number, message: string, type: string, code: string | null, headers: Record<string, string> = {}): Response =>
  json(status, { error: { message, type, param: null, code } }, headers);

/** Resolves after `ms`, or rejects with the signal's reason when it aborts first. */
const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise<void>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal.addEventListener('abort', onAbort, { once: true });
  });

/** Around `ms`, between 0.75× and 1.35× of it. */
const vary = (ms: number): number => ms * (0.75 + Math.random() * 0.6);

const parseChat = async (request: Request): Promise<ChatRequest> => {
  let body: Record<string, unknown>;
  try {
    body = (await request.json()) as Record<string, unknown>;
  } catch {
    throw new BadRequest('The body must be JSON.');
  }
  if (typeof body !== 'object' || body === null) throw new BadRequest('The body must be a JSON object.');
  const model = findModel(body.model);
  if (!model) {
    throw new BadRequest(`The model "${String(body.model)}" does not exist. Try one of: ${MODELS.map((m) => m.id).join(', ')}.`, 404, 'model_not_found');
  }
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) throw new BadRequest('"messages" must be a non-empty array.');
  for (const m of messages as unknown[]) {
    const msg = m as Partial<ChatMessage> | null;
    if (!msg || typeof msg.role !== 'string' || typeof msg.content !== 'string') throw new BadRequest('Each message needs a "role" and a string "content".');
  }
  const temperature = body.temperature === undefined ? 1 : Number(body.temperature);
  if (!(temperature >= 0 && temperature <= 2)) throw new BadRequest('"temperature" must be a number from 0 to 2.');
  const maxTokens = body.max_tokens === undefined ? 256 : Number(body.max_tokens);
  if (!Number.isInteger(maxTokens) || maxTokens < 1 || maxTokens > 4096) throw new BadRequest('"max_tokens" must be a whole number from 1 to 4096.');
  const options = body.stream_options as { include_usage?: unknown } | undefined;
  return {
    model,
    messages: messages as ChatMessage[],
    temperature,
    maxTokens,
    stream: body.stream === true,
    includeUsage: options?.include_usage !== false,
  };
};

/** Creates the mock model server. */
export const createMockModel = (opts: MockModelOptions): MockModelServer => {
  const pace = opts.pace ?? 1;
  const stallMaxMs = opts.stallMaxMs ?? 60_000;
  const tracer = createServerTracer({ serviceName: 'mock-model', serviceVersion: '1.0.0', environment: 'local', exporter: opts.exporter });
  const shutdown = new AbortController();
  let requests = 0;

  const models = (): Response =>
    json(200, {
      object: 'list',
      data: MODELS.map((m) => ({ id: m.id, object: 'model', owned_by: 'edgetrace-demo', pricing: { input_per_token: m.price.input, output_per_token: m.price.output } })),
    });

  const chat = async (request: Request): Promise<Response> => {
    const root = requestSpan();
    const signal = AbortSignal.any([request.signal, shutdown.signal]);
    const header = request.headers.get('x-mock-failure') ?? 'none';
    const failure: FailureMode = FAILURES.includes(header as FailureMode) ? (header as FailureMode) : 'none';
    const id = `chatcmpl-${(++requests).toString(36)}${Math.random().toString(36).slice(2, 10)}`;
    root?.setAttributes({ 'mock.request_id': id, 'mock.failure': failure });

    let req: ChatRequest;
    try {
      req = await tracer.span('validate request', async (span) => {
        const parsed = await parseChat(request);
        span.setAttributes({
          'mock.model': parsed.model.id,
          'mock.messages': parsed.messages.length,
          'mock.temperature': parsed.temperature,
          'mock.max_tokens': parsed.maxTokens,
          'mock.stream': parsed.stream,
        });
        return parsed;
      });
    } catch (error) {
      if (error instanceof BadRequest) return errorJson(error.status, error.message, 'invalid_request_error', error.code);
      throw error;
    }
    const { model } = req;
    const promptTokens = countPromptTokens(req.messages);
    root?.setAttributes({ 'mock.model': model.id, 'mock.prompt_tokens': promptTokens });

    const limited = await tracer.span('rate limiter', async (span) => {
      await sleep(2 + Math.random() * 4, signal);
      const isLimited = failure === 'rate-limit';
      span.setAttributes({ 'mock.rate_limited': isLimited, 'mock.requests_remaining': isLimited ? 0 : 59 });
      if (isLimited) span.recordEvent('rate limit exceeded', { 'mock.retry_after_s': RATE_LIMIT_RETRY_AFTER_S });
      return isLimited;
    });
    if (limited) {
      return errorJson(
        429,
        `Rate limit reached for ${model.id} (simulated). Please try again in ${RATE_LIMIT_RETRY_AFTER_S}s.`,
        'requests',
        'rate_limit_exceeded',
        { 'retry-after': String(RATE_LIMIT_RETRY_AFTER_S), 'x-ratelimit-limit-requests': '60', 'x-ratelimit-remaining-requests': '0' },
      );
    }

    const firstTokenMs = vary(model.firstTokenMs) * pace;
    await tracer.span('queue', async (span) => {
      const queueMs = Math.max(15, firstTokenMs * 0.15);
      span.setAttribute('mock.queue_position', Math.floor(Math.random() * 3));
      await sleep(queueMs, signal);
    });

    if (failure === 'error') {
      const failed = await tracer.span('prefill', async (span) => {
        span.setAttribute('mock.prompt_tokens', promptTokens);
        await sleep(firstTokenMs * 0.4, signal);
        const error = new Error('CUDA error: out of memory while allocating the KV cache (simulated)');
        error.name = 'ModelCrash';
        span.recordError(error);
        return error;
      });
      return errorJson(500, `The model server had an error while processing your request: ${failed.message}`, 'server_error', null);
    }

    const answer = composeAnswer({
      prompt: req.messages.filter((m) => m.role === 'user').map((m) => m.content).join('\n'),
      system: req.messages.filter((m) => m.role === 'system').map((m) => m.content).join('\n'),
      temperature: req.temperature,
    });
    const all = toTokens(answer);
    const tokens = all.slice(0, req.maxTokens);
    const finishReason = tokens.length < all.length ? 'length' : 'stop';
    const created = Math.floor(Date.now() / 1000);
    const tokenMs = (): number => {
      const base = (1000 / model.tokensPerSecond) * (0.5 + Math.random());
      // Now and then a token takes noticeably longer, as real decoding does.
      return (Math.random() < 0.05 ? base * 4 : base) * pace;
    };
    const usage = { prompt_tokens: promptTokens, completion_tokens: tokens.length, total_tokens: promptTokens + tokens.length };
    const prefillMs = firstTokenMs * 0.85;

    if (!req.stream) {
      const prefill = root?.startSpan('prefill', { attributes: { 'mock.prompt_tokens': promptTokens } });
      await sleep(prefillMs, signal);
      prefill?.end();
      const decode = root?.startSpan('decode', { attributes: { 'mock.output_tokens': tokens.length } });
      await sleep(tokens.reduce((ms) => ms + tokenMs(), 0), signal);
      decode?.end();
      return json(200, {
        id,
        object: 'chat.completion',
        created,
        model: model.id,
        choices: [{ index: 0, message: { role: 'assistant', content: tokens.join('') }, finish_reason: finishReason }],
        usage,
      });
    }

    // Streaming: the headers go out now; prefill and decode happen while the body streams.
    const encoder = new TextEncoder();
    const stream = new AbortController();
    const streamSignal = AbortSignal.any([stream.signal, signal]);
    const prefill = root?.startSpan('prefill', { attributes: { 'mock.prompt_tokens': promptTokens } });
    let decode: Span | undefined;
    const stallAt = failure === 'stall' ? Math.min(tokens.length - 1, 3 + Math.floor(Math.random() * 5)) : -1;
    let stalling = false;
    const event = (data: unknown): string => `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
    const chunk = (delta: Record<string, string>, finish: string | null = null): string =>
      event({ id, object: 'chat.completion.chunk', created, model: model.id, system_fingerprint: 'fp_mock', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });

    async function* produce(): AsyncGenerator<string> {
      await sleep(prefillMs, streamSignal);
      prefill?.end();
      const startedMs = Date.now();
      decode = root?.startSpan('decode', { attributes: { 'mock.model': model.id } });
      for (let i = 0; i < tokens.length; i++) {
        if (i === stallAt) {
          stalling = true;
          decode?.recordEvent('stalled', { 'mock.tokens_sent': i });
          await sleep(stallMaxMs, streamSignal);
          decode?.setStatus('error', `stalled after ${i} tokens; gave up after ${stallMaxMs} ms`);
          decode?.end();
          return;
        }
        if (i === 0) decode?.recordEvent('first token');
        else await sleep(tokenMs(), streamSignal);
        yield chunk(i === 0 ? { role: 'assistant', content: tokens[i]! } : { content: tokens[i]! });
      }
      yield chunk({}, finishReason);
      if (req.includeUsage) yield event({ id, object: 'chat.completion.chunk', created, model: model.id, choices: [], usage });
      yield event('[DONE]');
      const seconds = (Date.now() - startedMs) / 1000;
      decode?.setAttributes({
        'mock.output_tokens': tokens.length,
        'mock.finish_reason': finishReason,
        'mock.tokens_per_second': seconds > 0 ? Math.round(tokens.length / seconds) : tokens.length,
      });
      decode?.end();
    }

    /**
     * Ends the steps the client interrupted. Leaving is the client's choice, not a fault here,
     * unless it gave up on a stall, which is the model's fault. Reached through `cancel()` or
     * through the request's abort signal, whichever comes first.
     */
    const clientGone = (): void => {
      stream.abort(new Error('the client went away'));
      for (const span of [prefill, decode]) {
        if (!span || span.isEnded) continue;
        span.setAttribute('mock.client_gone', true);
        span.recordEvent('client went away');
        if (stalling) span.setStatus('error', 'stalled: the client went away waiting for the next token');
        span.end();
      }
    };
    /** The server is stopping (Ctrl-C): the spans still open end now, saying so, and are sent before it exits. */
    const stopped = (): void => {
      for (const span of [prefill, decode]) {
        if (!span || span.isEnded) continue;
        span.recordEvent('server shutting down');
        span.end();
      }
    };

    const events = produce();
    const body = new ReadableStream<Uint8Array>(
      {
        async pull(controller) {
          try {
            const next = await events.next();
            if (next.done) controller.close();
            else controller.enqueue(encoder.encode(next.value));
          } catch (error) {
            if (shutdown.signal.aborted) stopped();
            else clientGone();
            try {
              controller.error(error);
            } catch {
              // Already cancelled: nothing more to tell.
            }
          }
        },
        cancel: clientGone,
      },
      { highWaterMark: 0 },
    );
    return new Response(body, {
      status: 200,
      headers: {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache',
        'x-request-id': id,
        'x-ratelimit-limit-requests': '60',
        'x-ratelimit-remaining-requests': '59',
      },
    });
  };

  const handler = async (request: Request): Promise<Response> => {
    const path = new URL(request.url).pathname;
    if (path === '/v1/models') return request.method === 'GET' ? models() : errorJson(405, 'Use GET.', 'invalid_request_error', null);
    if (path !== '/v1/chat/completions') return errorJson(404, `Nothing at ${path}.`, 'invalid_request_error', null);
    if (request.method !== 'POST') return errorJson(405, 'Use POST.', 'invalid_request_error', null, { allow: 'POST' });
    try {
      return await chat(request);
    } catch (error) {
      // A client that went away mid-request, or the server shutting down.
      if (request.signal.aborted || shutdown.signal.aborted) return errorJson(499, 'The request was cancelled.', 'cancelled', null);
      throw error;
    }
  };

  const traced = withTracing(handler, {
    tracer,
    // The mock makes no outgoing calls; leave the process's fetch alone.
    traceFetch: false,
    route: (request) => new URL(request.url).pathname,
  });

  return {
    fetch: (request, env, ctx) => traced(request, env, ctx),
    tracer,
    close: () => shutdown.abort(new Error('the mock model server is shutting down')),
  };
};
