import type { Attributes, Exporter, ExportResult } from '../protocol';
import type { TracerOptions } from '../config';
import { createTracer, type Tracer } from '../core/tracer';
import { refusalTeller, requestProcessor } from './requestProcessor';
import { guardedContext, outsideRequest, serverContext } from './scope';
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
 * `exporter`, its exports run outside any request (see `outsideRequest`); with `tell`, what it
 * answers is told to it as well.
 */
const exportingOutside = (exporter: Exporter, tell?: (result: ExportResult) => void): Exporter => {
  const outside: Exporter = Object.create(exporter);
  outside.export = (records) => {
    const answer = outsideRequest(() => exporter.export(records));
    if (tell) void Promise.resolve(answer).then((result) => result && tell(result), () => undefined);
    return answer;
  };
  return outside;
};

/**
 * {@link createServerTracer}, its errors naming `call`, the function the app called. With
 * `perRequest` false, for a long-lived process, `exporter` sits behind the tracer's batch
 * processor instead.
 */
export const serverTracer = (opts: ServerTracerOptions, call: string, perRequest = true): Tracer => {
  const { exporter, ...rest } = opts;
  // Not an array: createTracer says so, naming the option.
  const processors = opts.processors === undefined ? [] : Array.isArray(opts.processors) ? [...opts.processors] : opts.processors;
  let sent: Exporter | undefined;
  if (exporter !== undefined) {
    if (typeof (exporter as Exporter | null)?.export !== 'function') {
      throw new TypeError(`[edgetrace] ${call}: "exporter" must be an object with an export(records) method, got ${String(exporter)}.`);
    }
    // The request processor tells a refusal itself; the batch processor only with `debug`.
    sent = exportingOutside(exporter, perRequest ? undefined : refusalTeller());
    if (perRequest) {
      if (Array.isArray(processors)) processors.push(requestProcessor(sent, { maxBatchSize: opts.batch?.maxBatchSize, maxQueueSize: opts.batch?.maxQueueSize, exportTimeoutMs: opts.batch?.exportTimeoutMs }));
      sent = undefined;
    }
  }
  // `fromEnv(env)` carries OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES on the exporter it
  // returns; explicit options win over them, and they over what the runtime tells.
  const fromEnv = exporter as { serviceName?: unknown; resource?: unknown } | undefined;
  const envName = fromEnv?.serviceName;
  const serviceName = opts.serviceName ?? (typeof envName === 'string' ? envName : undefined);
  const envResource = fromEnv?.resource;
  const detected = { ...runtimeResource(), ...(typeof envResource === 'object' && envResource !== null ? (envResource as Attributes) : undefined) };
  // A context manager of the app's that throws would otherwise throw into every request.
  const given = opts.contextManager;
  const contextManager = typeof given?.with === 'function' && typeof given.active === 'function' ? guardedContext(given) : (given ?? serverContext());
  return createTracer({ ...rest, contextManager, serviceName, processors, exporter: sent }, call, detected);
};
