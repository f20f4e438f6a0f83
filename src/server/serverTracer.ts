import type { Exporter } from '../protocol';
import type { TracerOptions } from '../config';
import { createTracer, type Tracer } from '../core/tracer';
import { requestProcessor } from './requestProcessor';
import { serverContext } from './scope';

/** Options for {@link createServerTracer}: the tracer's options; `exporter` is flushed per request. */
export type ServerTracerOptions = TracerOptions;

/**
 * Creates a tracer for a server or edge handler: the current span lives in AsyncLocalStorage
 * (unless `contextManager` says otherwise), and `exporter` sits behind a {@link requestProcessor},
 * which holds records until `tracer.flush()`, so `withTracing` sends each request's spans in one
 * export inside that request's `waitUntil`. Other `processors` are kept as given.
 * Throws a `TypeError` naming the option when `opts` is invalid.
 */
export const createServerTracer = (opts: ServerTracerOptions = {}): Tracer => {
  const { exporter, ...rest } = opts;
  const processors = [...(opts.processors ?? [])];
  if (exporter !== undefined) {
    if (typeof (exporter as Exporter | null)?.export !== 'function') {
      throw new TypeError(`[edgetrace] createServerTracer(): "exporter" must be an object with an export(records) method, got ${String(exporter)}.`);
    }
    processors.push(requestProcessor(exporter, { maxBatchSize: opts.batch?.maxBatchSize, maxQueueSize: opts.batch?.maxQueueSize, exportTimeoutMs: opts.batch?.exportTimeoutMs }));
  }
  // `fromEnv(env)` carries OTEL_SERVICE_NAME on the exporter it returns; an explicit option wins.
  const envName = (exporter as { serviceName?: unknown } | undefined)?.serviceName;
  const serviceName = opts.serviceName ?? (typeof envName === 'string' ? envName : undefined);
  return createTracer({ contextManager: serverContext(), ...rest, serviceName, processors }, 'createServerTracer()');
};
