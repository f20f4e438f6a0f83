import { startTraceWorker, type TraceWorkerOptions } from './startTraceWorker';
import { fail } from '../src/config';
import { DELIVERY_DEFAULTS, givenDelivery, resolveDelivery } from '../src/transport/resolveDelivery';
import { checkKeys, type AllKeys } from '../src/lib/checkKeys';

export type {
  DeadLetterRecord,
  DeliveryConfig,
  DeliveryOptions,
  DeliveryStatus,
  DeliveryTarget,
  FlushResult,
  WorkerApi,
  SpanRecord,
  ScoreRecord,
  TelemetryRecord,
  Exporter,
  ExportResult,
} from '../src/protocol';

export type { TraceWorkerOptions } from './startTraceWorker';

const WORKER_LIST = ['endpoint', 'headers', 'delivery', 'takeControl', 'debug'] as const;
const WORKER_KEYS: AllKeys<TraceWorkerOptions, typeof WORKER_LIST> = WORKER_LIST;

/**
 * Makes the current service worker the origin's trace outbox: it accepts records from pages
 * (the page's comlink calls, on a MessagePort it sends in a `{ edgetrace: 'connect' }` message), keeps
 * them in IndexedDB and delivers them as OTLP/HTTP JSON with retries, also after a restart.
 * Call it once, at the top level of the worker script. Endpoint and options given here win over
 * what pages send. Returns a function that removes its listeners.
 *
 * ```ts
 * // sw.ts, an app's own service worker
 * import { installTraceWorker } from 'edgetrace/worker';
 * installTraceWorker({ endpoint: '/v1/traces' });
 * ```
 */
export const installTraceWorker = (options: TraceWorkerOptions = {}): (() => void) => {
  const { endpoint, headers, delivery } = options;
  // Configuration errors throw here, once, when the worker script starts, in init()'s format
  // (config's `fail`), with the page's `delivery` rules, since these options win over what pages
  // send: no records per batch, say, must not get through here. (resolveInit() would check
  // endpoint and headers too, but brings its Langfuse key checks into the worker bundle.)
  const call = 'installTraceWorker()';
  if (endpoint !== undefined && (typeof endpoint !== 'string' || !endpoint)) fail(call, 'endpoint', 'a non-empty URL string', endpoint);
  if (headers !== undefined && (typeof headers !== 'object' || !headers)) fail(call, 'headers', 'an object of header names to values', headers);
  resolveDelivery(delivery, call, fail);
  // An unknown key (a config shared with the page's init(), a typo) is said, not thrown: a throw
  // here stops the site's whole worker from installing, its offline cache and push with it.
  try {
    checkKeys(call, options, WORKER_KEYS);
    if (delivery) checkKeys(call, delivery, Object.keys(DELIVERY_DEFAULTS), 'delivery.');
  } catch (error) {
    console.warn((error as Error).message);
  }
  // A module of the worker imported elsewhere by mistake (server rendering, a unit test): only a
  // service worker has a `registration`.
  if (typeof (globalThis as { registration?: unknown }).registration !== 'object') throw new TypeError(`[edgetrace] ${call} must run in a service worker, at its script's top level`);
  return startTraceWorker({ ...options, delivery: givenDelivery(delivery) });
};
