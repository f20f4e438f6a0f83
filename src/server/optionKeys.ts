import type { TracerOptions } from '../config';
import type { WithTracingOptions } from './withTracing';

/** Every option of `createTracer()`; the check below fails to compile when one is missing. */
const TRACER_KEYS = [
  'serviceName',
  'serviceVersion',
  'environment',
  'release',
  'resource',
  'exporter',
  'processors',
  'sampleRate',
  'limits',
  'redact',
  'mask',
  'beforeSend',
  'filter',
  'prices',
  'baggage',
  'batch',
  'contextManager',
  'now',
  'debug',
] as const satisfies readonly (keyof TracerOptions)[];

/** What the server wrappers add (`withNodeTracing` takes the same, with Node's request). */
const WRAPPER_KEYS = ['tracer', 'traceFetch', 'propagateTo', 'responseHeaders', 'spanName', 'route', 'onRequest', 'waitUntil'] as const satisfies readonly (keyof WithTracingOptions)[];

// A compile error here ("property … is missing") names an option added to the interfaces but
// not to the lists above. (WithTracingOptions extends TracerOptions.)
const unlisted: Record<Exclude<keyof WithTracingOptions, (typeof TRACER_KEYS | typeof WRAPPER_KEYS)[number]>, never> = {};
void unlisted;

const tracerKeys: ReadonlySet<string> = new Set(TRACER_KEYS);
const wrapperKeys: ReadonlySet<string> = new Set([...TRACER_KEYS, ...WRAPPER_KEYS]);

/** Edit distance of `a` and `b`, for a suggestion: a typo is a letter or two away. */
const distance = (a: string, b: string): number => {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
};

/**
 * Throws a `TypeError` naming the first key of `opts` that is no option of `call` (with the one
 * it is likely a typo of), rather than leave it ignored: `exporer` would otherwise fall back to
 * the environment's exporter, silently. `wrapper` says whether the wrappers' own options count.
 */
export const checkKeys = (opts: object, call: string, wrapper: boolean): void => {
  const known = wrapper ? wrapperKeys : tracerKeys;
  for (const key of Object.keys(opts)) {
    if (known.has(key)) continue;
    let near: string | undefined;
    for (const k of known) if (k.toLowerCase() === key.toLowerCase() || distance(k, key) <= 2) near ??= k;
    throw new TypeError(`[edgetrace] ${call}: "${key}" is not an option${near ? ` (did you mean "${near}"?)` : ''}.`);
  }
};
