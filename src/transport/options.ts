import type { DeliveryOptions } from '../protocol';
import { fail, isHeader, wholeOption, type Filled } from '../config';
import { DELIVERY_DEFAULTS, resolveDelivery } from './resolveDelivery';
import { checkKeys, type AllKeys } from '../lib/checkKeys';

/** How `init()` delivers what the page records (see DESIGN.md section 4). Every field is optional. */
export interface TransportOptions {
  /**
   * Which path records take. `auto` (default): the service worker where the browser allows one,
   * else the page outbox (IndexedDB in the page, one tab flushing at a time). `worker`: the service
   * worker, waiting for it as long as it takes (an app whose own worker registers late).
   * `page`: the page outbox. `memory`: plain batches from memory, as on servers.
   * Where there is no page (Node, edge runtimes) it is always `memory`.
   */
  transport?: 'auto' | 'worker' | 'page' | 'memory' | undefined;
  /**
   * The service-worker script to register. Default `"/edgetrace-sw.js"` (from `dist/`). `false`
   * registers nothing: the page's own service worker calls `installTraceWorker()`. Where Trusted
   * Types are enforced, give a `TrustedScriptURL` made by one of the page's policies.
   */
  workerUrl?: string | false | TrustedScriptUrlLike | undefined;
  /** Scope to register the worker with. Default: the browser's (the script's folder). */
  workerScope?: string | undefined;
  /** How long `auto` waits for an active worker that answers before the page outbox takes over. Default 10000 ms. */
  workerTimeoutMs?: number | undefined;
  /** A public ingest token for your collector, sent in `ingestTokenHeader`. */
  ingestToken?: string | undefined;
  /** Header for `ingestToken`. Default `"x-edgetrace-token"`, which the edgetrace collector reads. */
  ingestTokenHeader?: string | undefined;
  /** Outbox bounds, batching, backoff and circuit breaker (the worker uses them too). */
  delivery?: DeliveryOptions | undefined;
  /** The page's own small buffer in front of the outbox. */
  pageBuffer?: PageBufferOptions | undefined;
}

const TRANSPORT_LIST = ['transport', 'workerUrl', 'workerScope', 'workerTimeoutMs', 'ingestToken', 'ingestTokenHeader', 'delivery', 'pageBuffer'] as const satisfies readonly (keyof TransportOptions)[];
/** Every transport option of `init()`; one added to `TransportOptions` and not here fails to compile. */
export const TRANSPORT_KEYS: AllKeys<TransportOptions, typeof TRANSPORT_LIST> = TRANSPORT_LIST;

/** The buffer that collects finished records in the page until they are handed over. */
export interface PageBufferOptions {
  /**
   * Records held. Reaching it hands them over at once; while there is nowhere to hand them yet,
   * beyond it the oldest are dropped and counted. Default 5000.
   */
  maxRecords?: number | undefined;
  /** Hand over in the next task once this many wait. Default 256. */
  batchRecords?: number | undefined;
  /** Longest wait for an idle moment before handing over anyway. Default 1000 ms. */
  maxDelayMs?: number | undefined;
}

const PAGE_BUFFER_LIST = ['maxRecords', 'batchRecords', 'maxDelayMs'] as const satisfies readonly (keyof PageBufferOptions)[];
const PAGE_BUFFER_KEYS: AllKeys<PageBufferOptions, typeof PAGE_BUFFER_LIST> = PAGE_BUFFER_LIST;

/** A `TrustedScriptURL` (Trusted Types): what a page that enforces them must register a worker with. */
export interface TrustedScriptUrlLike {
  toJSON(): string;
}

/** Whether `v` is a `TrustedScriptURL` of this page's. */
const isTrustedScriptUrl = (v: unknown): v is TrustedScriptUrlLike => {
  const T = (globalThis as { TrustedScriptURL?: new () => object }).TrustedScriptURL;
  return typeof T === 'function' && v instanceof T;
};

/** The validated form of `TransportOptions`. */
export interface ResolvedTransport {
  transport: NonNullable<TransportOptions['transport']>;
  workerUrl: string | false | TrustedScriptUrlLike;
  /** Whether `workerUrl` is the default: the app said nothing of a worker of its own. */
  defaultWorker: boolean;
  workerScope?: string;
  workerTimeoutMs: number;
  /** Extra headers from the ingest token. */
  tokenHeaders: Record<string, string>;
  /** Only the delivery options the caller gave (validated): the worker fills in the rest. */
  delivery: DeliveryOptions;
  pageBuffer: Filled<PageBufferOptions>;
}

const TRANSPORTS = ['auto', 'worker', 'page', 'memory'];

/** Validates the transport options of `init()` and fills in defaults; throws like `resolveConfig`. */
export const resolveTransport = (opts: TransportOptions, call = 'init()'): ResolvedTransport => {
  const transport = opts.transport ?? 'auto';
  if (!TRANSPORTS.includes(transport)) fail(call, 'transport', `one of ${TRANSPORTS.map((t) => `"${t}"`).join(', ')}`, transport);
  const workerUrl = opts.workerUrl ?? '/edgetrace-sw.js';
  if (workerUrl !== false && !isTrustedScriptUrl(workerUrl) && (typeof workerUrl !== 'string' || !workerUrl)) fail(call, 'workerUrl', 'a script URL, a TrustedScriptURL or false', workerUrl);
  if (opts.workerScope !== undefined && (typeof opts.workerScope !== 'string' || !opts.workerScope)) {
    fail(call, 'workerScope', 'a non-empty URL string', opts.workerScope);
  }
  const count = (name: string, v: unknown, dflt: number, min: number): number => wholeOption(call, name, v, dflt, min);
  const workerTimeoutMs = count('workerTimeoutMs', opts.workerTimeoutMs, 10_000, 0);
  const tokenHeaders: Record<string, string> = {};
  if (opts.ingestToken !== undefined) {
    if (typeof opts.ingestToken !== 'string' || !opts.ingestToken) fail(call, 'ingestToken', 'a non-empty string', opts.ingestToken);
    const header = opts.ingestTokenHeader ?? 'x-edgetrace-token';
    if (typeof header !== 'string' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(header)) {
      fail(call, 'ingestTokenHeader', 'an HTTP header name', header);
    }
    if (!isHeader(header, opts.ingestToken)) fail(call, 'ingestToken', 'text a request header can carry (Latin-1)', opts.ingestToken);
    tokenHeaders[header] = opts.ingestToken;
  }
  // Validated in full here, so a bad option throws at init() rather than in the worker.
  resolveDelivery(opts.delivery, call, fail);
  // After resolveDelivery, which refuses a delivery that is not an object; the worker's size
  // budget leaves the key check to the page.
  if (opts.delivery) checkKeys(call, opts.delivery, Object.keys(DELIVERY_DEFAULTS), 'delivery.');
  const pb = opts.pageBuffer ?? {};
  if (typeof pb !== 'object' || pb === null) fail(call, 'pageBuffer', 'an object', pb);
  checkKeys(call, pb, PAGE_BUFFER_KEYS, 'pageBuffer.');
  const pageBuffer = {
    maxRecords: count('pageBuffer.maxRecords', pb.maxRecords, 5000, 1),
    batchRecords: count('pageBuffer.batchRecords', pb.batchRecords, 256, 1),
    maxDelayMs: count('pageBuffer.maxDelayMs', pb.maxDelayMs, 1000, 0),
  };
  const out: ResolvedTransport = { transport, workerUrl, defaultWorker: opts.workerUrl === undefined, workerTimeoutMs, tokenHeaders, delivery: { ...opts.delivery }, pageBuffer };
  if (opts.workerScope) out.workerScope = opts.workerScope;
  return out;
};
