import type { Attributes, Exporter } from '../protocol';
import type { TracerOptions } from '../config';
import { createTracer, type Tracer } from '../core/tracer';
import { batchProcessor } from '../core/processors';
import { requestProcessor } from './requestProcessor';
import { serverContext } from './scope';
import { runtimeResource } from './runtimeResource';

/** Options for {@link createServerTracer}: the tracer's options; `exporter` is flushed per request. */
export type ServerTracerOptions = TracerOptions;

/**
 * Creates a tracer for a server or edge handler: the current span lives in AsyncLocalStorage
 * (unless `contextManager` says otherwise), and `exporter` sits behind a {@link requestProcessor},
 * which holds records until `tracer.flush()`, so `withTracing` sends each request's spans in one
 * export inside that request's `waitUntil`. Other `processors` are kept as given. The spans'
 * resource names the runtime (`process.runtime.name`, `process.runtime.version`), under
 * `OTEL_RESOURCE_ATTRIBUTES` when the exporter came from `fromEnv()`, under `resource`.
 * Throws a `TypeError` naming the option when `opts` is invalid.
 */
export const createServerTracer = (opts: ServerTracerOptions = {}): Tracer => serverTracer(opts, 'createServerTracer()');

/**
 * {@link createServerTracer}, its errors naming `call`, the function the app called. With
 * `perRequest` false, for a long-lived process, `exporter` sits behind a batch processor instead.
 */
export const serverTracer = (opts: ServerTracerOptions, call: string, perRequest = true): Tracer => {
  const { exporter, ...rest } = opts;
  if (opts.processors !== undefined && !Array.isArray(opts.processors)) {
    throw new TypeError(`[edgetrace] ${call}: "processors" must be an array of span processors, got ${String(opts.processors)}.`);
  }
  const processors = [...(opts.processors ?? [])];
  if (exporter !== undefined) {
    if (typeof (exporter as Exporter | null)?.export !== 'function') {
      throw new TypeError(`[edgetrace] ${call}: "exporter" must be an object with an export(records) method, got ${String(exporter)}.`);
    }
    processors.push(
      perRequest
        ? requestProcessor(exporter, { maxBatchSize: opts.batch?.maxBatchSize, maxQueueSize: opts.batch?.maxQueueSize, exportTimeoutMs: opts.batch?.exportTimeoutMs })
        : batchProcessor(exporter, opts.batch),
    );
  }
  // `fromEnv(env)` carries OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES on the exporter it
  // returns; explicit options win over them, and they over what the runtime tells.
  const fromEnv = exporter as { serviceName?: unknown; resource?: unknown } | undefined;
  const envName = fromEnv?.serviceName;
  const serviceName = opts.serviceName ?? (typeof envName === 'string' ? envName : undefined);
  const envResource = fromEnv?.resource;
  const detected = { ...runtimeResource(), ...(typeof envResource === 'object' && envResource !== null ? (envResource as Attributes) : undefined) };
  return createTracer({ contextManager: serverContext(), ...rest, serviceName, processors }, call, detected);
};
