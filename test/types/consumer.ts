// Compiled by `npm run test:types` against the built package under "moduleResolution":
// "nodenext", importing edgetrace by its own name as an app does. Each `@ts-expect-error` proves
// the types are real: if an import resolved to `any`, the line would compile and tsc would fail.

import { createTracer, init, inject, extract, Span, Generation } from 'edgetrace';
import { installTraceWorker } from 'edgetrace/worker';
import { instrumentVitals } from 'edgetrace/vitals';
import { toOtlpJson } from 'edgetrace/otlp';
import { otelTracer, otelTracerProvider } from 'edgetrace/otel';
import { createServer } from 'node:http';
import { fromEnv, requestSpan, requestTrace, requestWaitUntil, setRoute, toNodeListener, withNodeTracing, withTracing } from 'edgetrace/server';
import type { IncomingMessage, ServerResponse } from 'node:http';

// @ts-expect-error serviceName is a string
init({ serviceName: 1 });

// Spans come from the tracer: the public types show no constructor an app could call bare, and
// none of the internals (a span's discard(), which would drop it without a word).
// @ts-expect-error the constructor needs the tracer's internals
export const bare = () => new Span();
// @ts-expect-error nor a generation's
export const bareGeneration = () => new Generation();
// @ts-expect-error discard() is internal
export const dropped = (s: Span) => s.discard();

const tracer = createTracer({ serviceName: 'types' });
const answer: Promise<string> = tracer.withTrace('chat', (trace) =>
  trace.generation('llm', { model: 'small' }, async (gen) => {
    gen.setUsage({ input: 3, output: 5 });
    return 'ok';
  }),
);
void answer;

const span: Span = tracer.startSpan('manual');
// @ts-expect-error end() takes a time in ms, not a string
span.end('now');

// Langfuse's level, score config and metadata, a request's own release and environment, and a
// mask that tells metadata from inputs and outputs.
span.setLevel('WARNING', 'fell back to a smaller model');
// @ts-expect-error Langfuse's levels are upper case
span.setLevel('warning');
span.score('accuracy', 0.9, { configId: 'cfg-1', metadata: { judge: 'gpt-4o' } });
tracer.createTrace('canary').update({ environment: 'canary', release: 'r2' });
createTracer({ mask: (value, field) => (field === 'metadata' ? undefined : value) });

const headers = new Headers();
inject(span.spanContext(), headers);
const { context } = extract(headers);
void context?.traceId.toUpperCase();

const handler = withTracing(
  async (request: Request) => {
    // README section 4: the trace's own fields from anywhere inside the handler.
    requestTrace()?.update({ name: 'chat', input: { q: request.url }, output: 'ok' });
    // @ts-expect-error update() is the trace's: requestSpan() may be any span of the request
    requestSpan()?.update({ name: 'chat' });
    // README section 4: Fastify's routeOptions.url, undefined on a 404.
    setRoute(new URL(request.url).pathname === '/' ? '/' : (undefined as string | undefined));
    return new Response(request.url);
  },
  { serviceName: 'api', exporter: fromEnv(process.env) },
);
// Next.js: a route handler typed with its own request (a subtype of Request) and { params },
// and a middleware that answers nothing to let the request go on.
interface NextLikeRequest extends Request {
  nextUrl: URL;
}
export const GET = withTracing(async (req: NextLikeRequest, { params }: { params: Promise<{ id: string }> }) => Response.json({ id: (await params).id, path: req.nextUrl.pathname }));
export const middleware = withTracing(async (req: Request): Promise<Response | undefined> => (req.url.endsWith('/old') ? Response.redirect('https://app.test/new') : undefined));
const goesOn: Promise<Response | undefined> = middleware(new Request('https://app.test/'));
void goesOn;
// An unannotated request is a Request; a handler of something else is refused.
withTracing(async (request, env: { KEY?: string }) => new Response(request.url + (env.KEY ?? '')));
// @ts-expect-error a handler takes a request
withTracing((n: number) => new Response(String(n)));
// @ts-expect-error a middleware that may answer nothing is no handler for toNodeListener
toNodeListener(middleware);
const listener = toNodeListener(handler);
// Node's own request and response fit the listener's declared shapes.
createServer(listener).close();
// @ts-expect-error a Node listener takes (req, res)
listener('not a request');

// withNodeTracing keeps the listener's own parameters, and its hooks get the listener's request.
const app = (req: IncomingMessage & { user?: string }, res: ServerResponse): void => void res.end(req.user);
const tracedApp = withNodeTracing(app, { route: (req) => (req.user ? '/me' : undefined), exporter: fromEnv(process.env) });
createServer(tracedApp).close();
void tracedApp.drain();
// The wrapped listener's own result comes back (h3 awaits its handler's promise).
void (tracedApp({} as IncomingMessage & { user?: string }, {} as ServerResponse) as Promise<void>);
// @ts-expect-error route returns a string or undefined
withNodeTracing(app, { route: () => 42 });
// Work handed off past the response keeps its type.
const handedOff: Promise<number> = requestWaitUntil(Promise.resolve(1));
void handedOff;
// Requests left untraced: paths and RegExps, or a function of each wrapper's own request.
withNodeTracing(app, { ignoreRequests: (req) => req.user === 'probe' || req.url === '/healthz' });
withTracing(() => new Response(), { ignoreRequests: ['/healthz', /\.css$/] });
withTracing(() => new Response(), { ignoreRequests: (request) => request.headers.has('x-probe') });
// @ts-expect-error a path, a RegExp or a function
withTracing(() => new Response(), { ignoreRequests: [42] });

void installTraceWorker;
void instrumentVitals;
// @ts-expect-error toOtlpJson takes records
toOtlpJson(42);

// The OpenTelemetry API shapes: what a library calls on the tracer it is given.
const otel = otelTracerProvider(tracer).getTracer('lib', '1.0.0');
const answered: Promise<number> = otel.startActiveSpan('call', { kind: 2 }, async (s) => {
  s.setAttribute('n', 1).addEvent('done', [1, 0]).setStatus({ code: 1 });
  s.end();
  return 1;
});
void answered;
// @ts-expect-error a span's name is a string
otelTracer(tracer).startSpan(1);

// Under exactOptionalPropertyTypes, an option read from a variable that may be unset is still an
// option: undefined is the default, as at run time.
declare const unset: string | undefined;
declare const unsetNumber: number | undefined;
createTracer({ serviceName: unset, sampleRate: unsetNumber, limits: { maxAttributes: unsetNumber }, batch: { delayMs: unsetNumber } });
init({ endpoint: unset, serviceName: unset, headers: undefined, propagateTo: undefined, delivery: { maxRecords: unsetNumber } });
withTracing(() => new Response(), { serviceName: unset, route: undefined, waitUntil: undefined });
fromEnv(process.env, { timeoutMs: unsetNumber });
installTraceWorker({ endpoint: '/v1/traces', headers: undefined });
tracer.createTrace({ name: 'x', userId: unset, sessionId: unset });
// The resolved configuration has every option filled in, also under exactOptionalPropertyTypes.
const delayMs: number = tracer.config.batch.delayMs;
void delayMs;
