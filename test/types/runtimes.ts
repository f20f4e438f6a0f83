// Compiled by `npm run test:types` without the DOM lib, with skipLibCheck off: once as a Node
// project (tsconfig.node.json: `@types/node`, no DOM) and once as a Workers one
// (tsconfig.workers.json: the WebWorker lib, no Node types). Every declaration file that the
// root, server and otel entries load must compile in both, or such a project cannot import them.

import { createTracer, inject, type Span } from 'edgetrace';
import { createCollector, requestTrace, withTracing, type NodeListener } from 'edgetrace/server';
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

const collector = createCollector({});
void collector.fetch;

// @ts-expect-error a Node listener takes a request and a response
const wrong: NodeListener = (req: string) => void req;
void wrong;
