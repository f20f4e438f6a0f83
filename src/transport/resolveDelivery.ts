import type { DeliveryOptions } from '../protocol';
import { wholeNumber, type Filled } from '../config';

/** Delivery options with every default filled in. */
export type ResolvedDelivery = Filled<DeliveryOptions>;

/** Throws the configuration error; `fail` from config.ts fits, and the worker passes its own. */
export type Fail = (call: string, option: string, expected: string, got: unknown) => never;

/** Defaults for {@link DeliveryOptions}; each field's JSDoc says why it is what it is. */
export const DELIVERY_DEFAULTS: ResolvedDelivery = {
  maxBatchRecords: 512,
  // Well under the 1 MiB to 4 MiB body limits common in OTLP receivers and proxies.
  maxBatchBytes: 256_000,
  flushIntervalMs: 1000,
  backoffBaseMs: 1000,
  backoffCapMs: 60_000,
  backoffMaxElapsedMs: 900_000,
  backoffJitter: 1,
  circuitFailures: 5,
  circuitOpenMs: 30_000,
  maxRecords: 10_000,
  maxBytes: 5_000_000,
  maxAgeMs: 86_400_000,
  maxDeadLetters: 50,
  requestTimeoutMs: 10_000,
};

// Options that must be whole numbers of at least 1 (the rest may be 0).
const AT_LEAST_ONE = new Set(['maxBatchRecords', 'maxBatchBytes', 'circuitFailures', 'maxRecords', 'maxBytes', 'requestTimeoutMs']);

/**
 * Validates delivery options and fills in defaults; `base` supplies values not given in `opts`.
 * Throws through `fail`, naming the option as `delivery.<name>`.
 */
export const resolveDelivery = (
  opts: DeliveryOptions | undefined,
  call: string,
  fail: Fail,
  base: ResolvedDelivery = DELIVERY_DEFAULTS,
): ResolvedDelivery => {
  if (opts === undefined) return { ...base };
  if (typeof opts !== 'object' || opts === null) fail(call, 'delivery', 'an object', opts);
  const out = { ...base };
  for (const key of Object.keys(base) as (keyof ResolvedDelivery)[]) {
    const v = opts[key];
    if (v === undefined) continue;
    if (key === 'backoffJitter') {
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) fail(call, `delivery.${key}`, 'a number from 0 to 1', v);
    } else {
      const problem = wholeNumber(v, AT_LEAST_ONE.has(key) ? 1 : 0);
      if (problem) fail(call, `delivery.${key}`, problem, v);
    }
    out[key] = v;
  }
  return out;
};

/**
 * The delivery options actually given: `{ requestTimeoutMs: undefined }` means the default, but
 * spread over the defaults it would replace it with `undefined`. The options are plain numbers,
 * so a JSON round trip, which leaves undefined out, is exact (and the shortest code for the
 * 6 kB worker, which layers every page's and its own options with it).
 */
export const givenDelivery = (opts: DeliveryOptions | undefined): DeliveryOptions => JSON.parse(JSON.stringify(opts ?? {})) as DeliveryOptions;

// --- names shared by the page and the worker below ---

/** `data.edgetrace` of the message that hands the worker a MessagePort to expose its API on. */
export const CONNECT_MESSAGE = 'connect';
/** BroadcastChannel on which whoever flushes (worker or page) posts its `DeliveryStatus`. */
export const STATUS_CHANNEL = 'edgetrace-status';
/** Web Lock held while flushing, so one context per origin sends at a time. */
export const FLUSH_LOCK = 'edgetrace-flush';
/** Background Sync tag registered while records wait for the network. */
export const SYNC_TAG = 'edgetrace-flush';
