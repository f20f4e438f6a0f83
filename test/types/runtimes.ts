// Compiled by `npm run test:types` without the DOM lib, with skipLibCheck off: once as a Node
// project (tsconfig.node.json: `@types/node`, no DOM) and once as a Workers one
// (tsconfig.workers.json: the WebWorker lib, no Node types). Every declaration file that the
// root, server and otel entries load must compile in both, or such a project cannot import them.

import { createTracer, inject, type Span } from 'edgetrace';
import { createCollector, fromEnv, requestTrace, withMessage, withTracing, type NodeListener } from 'edgetrace/server';
import { otelTracer } from 'edgetrace/otel';

const tracer = createTracer({ serviceName: 'edge' });
const span: Span = tracer.startSpan('work');
const headers = new Headers();
inject(span.spanContext(), headers);
otelTracer(tracer).startSpan('library call', undefined, undefined).end();
span.end();

export default {
  fetch: withTracing(async (request: Request) => {
    requestTrace()?.update({ name: 'edge', input: request.url });
    return new Response('ok');
  }),
};

// A Workers project declares its bindings as an interface (by hand or with `wrangler types`).
interface Env {
  LANGFUSE_PUBLIC_KEY: string;
  LANGFUSE_SECRET_KEY: string;
}
export const worker = {
  fetch: withTracing(
    (request: Request, env: Env) => new Response(`${request.url} ${env.LANGFUSE_PUBLIC_KEY}`),
    (env: Env) => ({ exporter: fromEnv(env) }),
  ),
};
// The traced handler always answers with a promise, also for a handler that does not.
const answer: Promise<Response> = worker.fetch(new Request('https://example.test/'), { LANGFUSE_PUBLIC_KEY: 'pk', LANGFUSE_SECRET_KEY: 'sk' });
// @ts-expect-error a promise has no status
void answer.status;
// A Worker's whole `export default`: a Cron Trigger and a Queues consumer beside fetch, typed
// with the app's own controller and batch types; other keys pass through.
interface Job {
  doc: string;
}
export const whole = withTracing(
  {
    fetch: (request: Request, env: Env) => new Response(`${request.url} ${env.LANGFUSE_PUBLIC_KEY}`),
    async scheduled(controller: { readonly cron: string; readonly scheduledTime: number }, env: Env, ctx: { waitUntil(p: Promise<unknown>): void }) {
      ctx.waitUntil(fetch(`https://sync.example/${controller.cron}?k=${env.LANGFUSE_PUBLIC_KEY}`));
    },
    async queue(batch: { readonly queue: string; readonly messages: readonly { readonly id: string; readonly body: Job; ack(): void }[] }) {
      for (const m of batch.messages) {
        // The callback's own result comes back, typed.
        const doc: Promise<string> = withMessage(m, async () => m.body.doc);
        await doc;
        m.ack();
      }
    },
    email: (message: { from: string }) => void message.from,
  },
  (env: Env) => ({ exporter: fromEnv(env) }),
);
const fromWhole: Promise<Response> = whole.fetch(new Request('https://example.test/'), { LANGFUSE_PUBLIC_KEY: 'pk', LANGFUSE_SECRET_KEY: 'sk' });
void fromWhole;
whole.email({ from: 'a@example.test' });
// Unannotated, the event is `any`, as env and ctx are: the platform's own methods stay callable.
export const loose = withTracing({
  async queue(batch) {
    for (const m of batch.messages) withMessage(m, () => m.ack());
    batch.ackAll();
  },
  async scheduled(controller) {
    controller.noRetry();
  },
});
// @ts-expect-error a handler in the object must be a function
withTracing({ fetch: 'app' });
// @ts-expect-error withMessage takes a queued message, not its body
withMessage('job', () => 1);
// @ts-expect-error fromEnv takes an object of variables
fromEnv('TRACING_MODE=none');

const collector = createCollector({});
void collector.fetch;

// @ts-expect-error a Node listener takes a request and a response
const wrong: NodeListener = (req: string) => void req;
void wrong;
