import { currentInteraction } from '../../src/index';
import type { Generation, Trace, Tracer } from '../../src/index';
import { DEFAULT_MODEL, FAILURE_MODES, findModel, MODELS, type FailureMode } from '../models';
import { byId, fmtCost, fmtInt, fmtMs, h, replace, shortId, thumbIcon } from './dom';

/**
 * The prompt form and the streamed answer. Each run is one trace: the click on Send is its root
 * (the SDK's interaction span, named by `data-trace-name="send prompt"`), the generation is its
 * child, and the fetch to the model is the generation's child, so the fetch instrumentation marks
 * the generation's first-token time and usage from the stream, and the server's spans join
 * through `traceparent`. Thumbs up/down score the trace.
 */

export interface RunPanelOptions {
  tracer: Tracer;
  /** Called when a run starts (its trace has taken the current session). */
  onRun: () => void;
  /** Shows a trace in the viewer. */
  openTrace: (traceId: string) => void;
  /** A score was given to this trace: the viewer should look for it. */
  onScore?: (traceId: string) => void;
}

/** No token for this long and the run gives up on the stream. */
const STALL_MS = 5000;
const MAX_TOKENS = 256;

interface ChatChunk {
  choices?: { delta?: { content?: string }; finish_reason?: string | null }[];
  usage?: { prompt_tokens?: number; completion_tokens?: number };
}

/** A refusal from the model server, with what it said. */
class ModelError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly retryAfterS?: number,
  ) {
    super(message);
    this.name = status === 429 ? 'RateLimitError' : 'ModelError';
  }
}

export const startRunPanel = (opts: RunPanelOptions): void => {
  const form = byId<HTMLFormElement>('run-form');
  const system = byId<HTMLTextAreaElement>('system');
  const prompt = byId<HTMLTextAreaElement>('prompt');
  const model = byId<HTMLSelectElement>('model');
  const temperature = byId<HTMLInputElement>('temperature');
  const temperatureValue = byId<HTMLOutputElement>('temperature-value');
  const failure = byId<HTMLSelectElement>('failure');
  const send = byId<HTMLButtonElement>('send');
  const stop = byId<HTMLButtonElement>('stop');
  const run = byId('run');
  const status = byId('run-status');
  const answer = byId('answer');
  const metrics = byId('run-metrics');
  const feedback = byId('feedback');
  const thumbUp = byId<HTMLButtonElement>('thumb-up');
  const thumbDown = byId<HTMLButtonElement>('thumb-down');
  const feedbackNote = byId('feedback-note');

  thumbUp.append(thumbIcon());
  thumbDown.append(thumbIcon(true));
  for (const m of MODELS) model.append(h('option', { attrs: { value: m.id } }, m.label));
  model.value = DEFAULT_MODEL;
  for (const f of FAILURE_MODES) failure.append(h('option', { attrs: { value: f.id } }, f.label));
  temperature.addEventListener('input', () => (temperatureValue.value = Number(temperature.value).toFixed(1)));
  prompt.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      form.requestSubmit();
    }
  });

  let running: { controller: AbortController; stoppedByUser: boolean } | undefined;
  let scored: Trace | undefined;

  /** Takes the last run's answer, metrics and thumbs off the panel. */
  const clearLastRun = (): void => {
    scored = undefined;
    feedback.hidden = true;
    answer.textContent = '';
    metrics.replaceChildren();
  };

  const setStatus = (text: string, kind: 'busy' | 'ok' | 'error' | 'idle'): void => {
    status.className = `run-status ${kind}`;
    status.textContent = text;
  };

  stop.addEventListener('click', () => {
    if (!running) return;
    running.stoppedByUser = true;
    running.controller.abort(new DOMException('stopped by the user', 'AbortError'));
  });

  const score = (up: boolean): void => {
    const trace = scored;
    if (!trace) return;
    // A BOOLEAN score (1 or 0) on the trace; it travels through the outbox like the spans.
    trace.score('user-feedback', up, { comment: up ? 'thumbs up from the playground' : 'thumbs down from the playground' });
    thumbUp.disabled = thumbDown.disabled = true;
    (up ? thumbUp : thumbDown).classList.add('chosen');
    feedbackNote.textContent = `Scored user-feedback = ${up ? 1 : 0} (thumbs ${up ? 'up' : 'down'}) on trace ${shortId(trace.traceId)}.`;
    opts.onScore?.(trace.traceId);
  };
  thumbUp.addEventListener('click', () => score(true));
  thumbDown.addEventListener('click', () => score(false));

  form.addEventListener('submit', (event) => {
    event.preventDefault();
    if (running) return;
    const text = prompt.value.trim();
    if (!text) {
      // The last run's answer and thumbs go: a thumb now would seem to rate the empty prompt.
      clearLastRun();
      run.hidden = false;
      setStatus('Type a prompt first.', 'idle');
      prompt.focus();
      return;
    }
    // The interaction span the SDK opened for this click or key press is the run's trace.
    const interaction = currentInteraction();
    const isInteraction = interaction !== undefined;
    const trace = interaction ?? opts.tracer.createTrace({ name: 'send prompt' });
    const finish = isInteraction ? () => undefined : () => trace.finish();
    const chosen = findModel(model.value) ?? MODELS[0]!;
    void execute({ trace, finish, modelId: chosen.id, prompt: text, system: system.value.trim(), temperature: Number(temperature.value), failure: failure.value as FailureMode });
  });

  interface RunInput {
    trace: Trace;
    finish: () => void;
    modelId: string;
    prompt: string;
    system: string;
    temperature: number;
    failure: FailureMode;
  }

  const execute = async (input: RunInput): Promise<void> => {
    const { trace, modelId, temperature } = input;
    const controller = new AbortController();
    const state = { controller, stoppedByUser: false };
    running = state;
    clearLastRun();
    send.disabled = true;
    stop.hidden = false;
    run.hidden = false;
    thumbUp.disabled = thumbDown.disabled = false;
    thumbUp.classList.remove('chosen');
    thumbDown.classList.remove('chosen');
    feedbackNote.textContent = '';
    answer.className = 'answer streaming';
    setStatus('Waiting for the first token…', 'busy');

    const messages = [...(input.system ? [{ role: 'system', content: input.system }] : []), { role: 'user', content: input.prompt }];
    opts.onRun();
    trace.update({ input: { system: input.system, prompt: input.prompt }, tags: ['playground'], metadata: { model: modelId, temperature, failure: input.failure } });

    const startedMs = performance.now();
    let firstTokenMs: number | undefined;
    let text = '';
    let usage: ChatChunk['usage'];
    let finishReason: string | null | undefined;
    let stalled = false;
    let watchdog: ReturnType<typeof setTimeout> | undefined;
    const arm = (): void => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        stalled = true;
        controller.abort(new DOMException(`no token for ${STALL_MS / 1000} s`, 'TimeoutError'));
      }, STALL_MS);
    };

    const onEvent = (raw: string): boolean => {
      const data = raw
        .split(/\r?\n/)
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).replace(/^ /, ''))
        .join('\n');
      if (!data) return false;
      if (data === '[DONE]') return true;
      const chunk = JSON.parse(data) as ChatChunk;
      const choice = chunk.choices?.[0];
      const delta = choice?.delta?.content;
      if (delta) {
        if (firstTokenMs === undefined) {
          firstTokenMs = performance.now() - startedMs;
          setStatus('Streaming…', 'busy');
        }
        text += delta;
        answer.textContent = text;
      }
      if (choice?.finish_reason) finishReason = choice.finish_reason;
      if (chunk.usage) usage = chunk.usage;
      return false;
    };

    let failed: Error | undefined;
    try {
      await trace.generation('chat completion', { model: modelId, modelParameters: { temperature, max_tokens: MAX_TOKENS }, input: messages }, async (gen: Generation) => {
        arm();
        // Called synchronously inside the generation: the fetch span becomes its child, and its
        // stream sets the generation's first-token time and usage.
        const response = await fetch('/v1/chat/completions', {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-mock-failure': input.failure },
          body: JSON.stringify({ model: modelId, messages, temperature, max_tokens: MAX_TOKENS, stream: true, stream_options: { include_usage: true } }),
          signal: controller.signal,
        });
        try {
          if (!response.ok || !response.body) {
            const body = (await response.json().catch(() => undefined)) as { error?: { message?: string } } | undefined;
            const after = Number(response.headers.get('retry-after'));
            throw new ModelError(response.status, body?.error?.message ?? `HTTP ${response.status}`, Number.isFinite(after) && after > 0 ? after : undefined);
          }
          const reader = response.body.getReader();
          const decoder = new TextDecoder();
          let buffer = '';
          let done = false;
          // Read to the end (the server closes right after [DONE]), so the fetch span sees the
          // whole body.
          for (;;) {
            const next = await reader.read();
            if (next.done) break;
            arm();
            buffer += decoder.decode(next.value, { stream: true });
            for (let cut = buffer.search(/\r?\n\r?\n/); cut >= 0 && !done; cut = buffer.search(/\r?\n\r?\n/)) {
              const raw = buffer.slice(0, cut);
              buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, '');
              done = onEvent(raw);
            }
          }
          gen.setOutput(text);
          if (finishReason) gen.setAttribute('gen_ai.response.finish_reasons', [finishReason]);
        } catch (error) {
          if (state.stoppedByUser) {
            // Stopping is the person's choice, not a failure: the generation keeps what arrived.
            gen.setAttribute('edgetrace.cancelled', true);
            gen.setOutput(text);
            return;
          }
          if (stalled) throw new ModelError(0, `The model stalled: no token arrived for ${STALL_MS / 1000} s, so the run gave up.`);
          throw error;
        }
      });
    } catch (error) {
      failed =
        stalled && !(error instanceof ModelError)
          ? new ModelError(0, `The model stalled: no token arrived for ${STALL_MS / 1000} s, so the run gave up.`)
          : error instanceof Error
            ? error
            : new Error(String(error));
    } finally {
      clearTimeout(watchdog);
    }

    const totalMs = performance.now() - startedMs;
    answer.classList.remove('streaming');
    if (failed) {
      trace.setStatus('error', failed.message);
      // Said once: a message that already says when (OpenAI's "try again in 2s") gets no second line.
      const retry = failed instanceof ModelError && failed.retryAfterS && !/try again in/i.test(failed.message) ? ` Retry after ${failed.retryAfterS} s.` : '';
      const title = failed instanceof ModelError && failed.status === 429 ? 'Rate limited (HTTP 429)' : failed instanceof ModelError && failed.status ? `Failed (HTTP ${failed.status})` : 'Failed';
      setStatus(`${title}: ${failed.message}${retry}`, 'error');
      if (!text) answer.classList.add('empty');
    } else if (state.stoppedByUser) {
      setStatus('Stopped.', 'idle');
    } else {
      trace.update({ output: text });
      setStatus(finishReason === 'length' ? `Done (cut at ${MAX_TOKENS} tokens).` : 'Done.', 'ok');
    }

    const price = findModel(modelId)?.price;
    const cost = usage && price ? (usage.prompt_tokens ?? 0) * price.input + (usage.completion_tokens ?? 0) * price.output : undefined;
    replace(
      metrics,
      h('span', { dataset: { testid: 'run-first-token' } }, `first token ${fmtMs(firstTokenMs)}`),
      h('span', {}, `${fmtInt(usage?.completion_tokens)} tokens out, ${fmtInt(usage?.prompt_tokens)} in`),
      h('span', {}, fmtCost(cost)),
      h('span', {}, `${fmtMs(totalMs)} total`),
      h(
        'button',
        { class: 'link', attrs: { type: 'button', 'data-trace-name': 'open trace' }, title: trace.traceId, onClick: () => opts.openTrace(trace.traceId) },
        `trace ${shortId(trace.traceId)} →`,
      ),
    );
    input.finish();
    scored = trace;
    feedback.hidden = false;
    running = undefined;
    send.disabled = false;
    stop.hidden = true;
    opts.openTrace(trace.traceId);
  };
};
