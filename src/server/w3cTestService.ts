import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fromEnv } from './fromEnv';
import { toNodeListener } from './node';
import { withTracing } from './withTracing';

/**
 * The "test service" the official W3C trace-context suite drives (see
 * ../shared/reference/w3c-trace-context/HARNESS.md), built from nothing but `withTracing` and the
 * global `fetch` it traces. Not part of the package entry: `npm run w3c-service -- --port N`
 * bundles and starts it.
 *
 * Each POST carries a JSON array of `{url, arguments}`. For each, in order, it POSTs
 * `JSON.stringify(arguments)` to `url`; the outgoing `traceparent`/`tracestate` come from
 * `withTracing` continuing the incoming context (a new parent-id per call, flags carried over, a
 * fresh trace when the incoming one is missing or invalid). It answers only after every callback
 * has been answered, because the harness deletes the scope once it has the reply.
 */
export const w3cTestHandler = withTracing(
  async (request: Request): Promise<Response> => {
    if (request.method !== 'POST') return new Response('POST a JSON array of {url, arguments}\n', { status: 405 });
    let steps: unknown;
    try {
      steps = await request.json();
    } catch {
      return new Response('the body must be JSON\n', { status: 400 });
    }
    if (!Array.isArray(steps)) return new Response('the body must be a JSON array\n', { status: 400 });
    for (const step of steps) {
      const url = (step as { url?: unknown } | null)?.url;
      if (typeof url !== 'string') continue;
      const args = (step as { arguments?: unknown }).arguments;
      try {
        const res = await fetch(url, {
          method: 'POST',
          // The harness records a callback only after `await request.json()` succeeds.
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(args === undefined ? [] : args),
        });
        await res.arrayBuffer();
      } catch {
        // An unreachable callback fails that test, not the service.
      }
    }
    return new Response('{}', { status: 200, headers: { 'content-type': 'application/json' } });
  },
  // Spans go wherever TRACING_MODE says (default nowhere), e.g. TRACING_MODE=console.
  (env: Record<string, unknown>) => ({ exporter: fromEnv(env), serviceName: 'w3c-test-service' }),
);

/** Options for {@link startW3cTestService}. */
export interface W3cServiceOptions {
  /** Default 5000; 0 picks a free port. */
  port?: number | undefined;
  /** Default 127.0.0.1. */
  host?: string | undefined;
  /** Variables for `fromEnv` (TRACING_MODE and friends). */
  env?: Record<string, unknown> | undefined;
}

/** Starts the test service on Node's http server; resolves with its URL and the server. */
export const startW3cTestService = async (opts: W3cServiceOptions = {}): Promise<{ url: string; server: Server }> => {
  const server = createServer(toNodeListener(w3cTestHandler, { env: opts.env ?? {} }));
  // The harness may keep connections open between steps; nothing here needs long keep-alives.
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 5000, opts.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return { url: `http://${host}:${address.port}/test`, server };
};
