import type { Attributes, Exporter, ObservationType, SpanKind, SpanRecord } from './protocol';
import type { ContextManager } from './core/context';
import type { SpanProcessor } from './core/processors';
import { DEFAULT_SECRET_PATTERNS, SECRET_KEY, USERINFO } from './core/redact';
import { warnOnce } from './lib/reportInternal';
import type { TransportOptions } from './transport/options';
import type { InstrumentOptions } from './instrument/options';
import { MAX_BAGGAGE_MEMBERS, withMembers, type Baggage } from './propagation/baggage';
import { isHttpUrl, pageBase } from './lib/isHttpUrl';
import { isBrowser } from './lib/isPage';
import { isPrimitiveList } from './lib/isPrimitiveList';
import { SDK_NAME, SDK_VERSION, sdkLanguage } from './lib/sdk';
import { checkKeys, type AllKeys } from './lib/checkKeys';

/** Matches a span by name: an exact string, a RegExp, or a predicate on the finished record. */
export type SpanMatcher = string | RegExp | ((span: SpanRecord) => boolean);

/** USD per unit of each usage type, e.g. `{ input: 2.5e-6, output: 1e-5 }` per token. */
export type ModelPrice = Record<string, number>;

/** Options for `createTracer()` (and `init()`). Every field is optional. */
export interface TracerOptions {
  /** `service.name` on every span. Default `"unknown_service"`. */
  serviceName?: string | undefined;
  /** `service.version`. */
  serviceVersion?: string | undefined;
  /** Deployment environment (`langfuse.environment`), e.g. `"production"`. */
  environment?: string | undefined;
  /** Release or build id (`langfuse.release`). */
  release?: string | undefined;
  /** Extra resource attributes for every span. */
  resource?: Attributes | undefined;
  /** Where finished records go. A shortcut for `processors: [batchProcessor(exporter)]`. */
  exporter?: Exporter | undefined;
  /** Receivers of span start and end, in order. */
  processors?: SpanProcessor[] | undefined;
  /** Share of new traces that are recorded, from 0 to 1 (by trace id). Default 1. */
  sampleRate?: number | undefined;
  /** Size limits; what is cut is counted on the span. */
  limits?: LimitOptions | undefined;
  /** Secret redaction. `false` turns it off. */
  redact?: false | RedactOptions | undefined;
  /**
   * Rewrites inputs, outputs and each metadata entry's value before they are stored, e.g. to
   * drop personal data; `undefined` leaves the value out.
   */
  mask?: ((value: unknown, field: 'input' | 'output' | 'metadata') => unknown) | undefined;
  /** Last look at each finished span; return `null` to drop it or a changed record to replace it. */
  beforeSend?: ((span: SpanRecord) => SpanRecord | null | undefined | void) | undefined;
  /** Which finished spans are kept. */
  filter?: FilterOptions | undefined;
  /** Prices by model name (exact, else the longest matching prefix) to compute cost from usage. */
  prices?: Record<string, ModelPrice> | undefined;
  /**
   * W3C baggage every new trace starts with, e.g. `{ tenant: 'acme' }`: sent in a `baggage`
   * header wherever `traceparent` goes (see `Trace.setBaggage()`), never recorded on spans.
   */
  baggage?: Record<string, string> | undefined;
  /** How spans are batched for the exporter. */
  batch?: BatchOptions | undefined;
  /** How the current span is tracked; `edgetrace/server` installs AsyncLocalStorage. */
  contextManager?: ContextManager | undefined;
  /** Clock in epoch milliseconds, for tests and frozen-clock runtimes. */
  now?: (() => number) | undefined;
  /** Logs internal errors and dropped data to the console. Default false. */
  debug?: boolean | undefined;
}

/** Options for `init()`: the tracer's options plus where the page sends what it records. */
export interface InitOptions extends TracerOptions, TransportOptions, InstrumentOptions {
  /** OTLP/HTTP endpoint (`…/v1/traces`) for the default exporter when none is given. */
  endpoint?: string | undefined;
  /** Extra headers for `endpoint`, such as a public ingest token. */
  headers?: Record<string, string> | undefined;
  /** Langfuse project keys, for sending straight to Langfuse from a server. */
  langfuse?: { publicKey: string; secretKey?: string | undefined; baseUrl?: string | undefined } | undefined;
  /**
   * Lets a page hold a Langfuse secret key. Only for local development against a local Langfuse:
   * anyone who opens the page can read the key.
   */
  dangerouslyAllowSecretInBrowser?: boolean | undefined;
}

export interface LimitOptions {
  /** Attributes per span. Default 128. */
  maxAttributes?: number | undefined;
  /** Characters per string value; longer ones are cut. Default 16384. */
  maxStringLength?: number | undefined;
  /**
   * Characters per input or output (`setInput()`, `setOutput()`, a trace's `input`, and the
   * prompts and completions libraries record through the OpenTelemetry API). Default 65536, or
   * `maxStringLength` when that is more.
   */
  maxIoLength?: number | undefined;
  /** Events per span. Default 128. */
  maxEvents?: number | undefined;
  /** Links per span. Default 32. */
  maxLinks?: number | undefined;
}

export interface RedactOptions {
  /** Extra patterns whose matches are replaced with `[REDACTED]`. Use the `g` flag. */
  patterns?: RegExp[] | undefined;
  /** Keep the built-in patterns (bearer tokens, API keys). Default true. */
  defaults?: boolean | undefined;
  /**
   * Redact URL query values in `url.full`-like attributes and in URLs quoted by messages. Default
   * true. False keeps the values; fragments and user:password still go.
   */
  queryValues?: boolean | undefined;
  /** Query keys whose values are kept, e.g. `["page"]`. */
  keepQueryKeys?: string[] | undefined;
}

export interface FilterOptions {
  /** Spans shorter than this are dropped (their children stay, parented to the dropped id). */
  minDurationMs?: number | undefined;
  /** When set, only spans matching one of these are kept. */
  include?: SpanMatcher[] | undefined;
  /** Spans matching one of these are dropped. */
  exclude?: SpanMatcher[] | undefined;
  /** Only keep these observation types (`span`, `generation`, `tool`…). */
  types?: ObservationType[] | undefined;
  /** Only keep these span kinds. */
  kinds?: SpanKind[] | undefined;
}

export interface BatchOptions {
  /** Records per export. Default 512. */
  maxBatchSize?: number | undefined;
  /** Records held while an export is pending; beyond it the oldest are dropped and counted. Default 2048. */
  maxQueueSize?: number | undefined;
  /** How long a record may wait for its batch. Default 1000 ms. */
  delayMs?: number | undefined;
  /** How long one export may take before it counts as a failed, retryable attempt. Default 30000 ms. */
  exportTimeoutMs?: number | undefined;
}

const TRACER_LIST = [
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
/** Every option of `createTracer()`; one added to `TracerOptions` and not here fails to compile. */
export const TRACER_KEYS: AllKeys<TracerOptions, typeof TRACER_LIST> = TRACER_LIST;

const INIT_LIST = ['endpoint', 'headers', 'langfuse', 'dangerouslyAllowSecretInBrowser'] as const satisfies readonly (keyof InitOptions)[];
/** What `init()` adds to the tracer's, transport's and instrumentations' options. */
export const INIT_KEYS: AllKeys<Omit<InitOptions, keyof TracerOptions | keyof TransportOptions | keyof InstrumentOptions>, typeof INIT_LIST> = INIT_LIST;

// The nested options' keys, checked the same way.
const LIMIT_LIST = ['maxAttributes', 'maxStringLength', 'maxIoLength', 'maxEvents', 'maxLinks'] as const satisfies readonly (keyof LimitOptions)[];
const LIMIT_KEYS: AllKeys<LimitOptions, typeof LIMIT_LIST> = LIMIT_LIST;
const REDACT_LIST = ['patterns', 'defaults', 'queryValues', 'keepQueryKeys'] as const satisfies readonly (keyof RedactOptions)[];
const REDACT_KEYS: AllKeys<RedactOptions, typeof REDACT_LIST> = REDACT_LIST;
const FILTER_LIST = ['minDurationMs', 'include', 'exclude', 'types', 'kinds'] as const satisfies readonly (keyof FilterOptions)[];
const FILTER_KEYS: AllKeys<FilterOptions, typeof FILTER_LIST> = FILTER_LIST;
const BATCH_LIST = ['maxBatchSize', 'maxQueueSize', 'delayMs', 'exportTimeoutMs'] as const satisfies readonly (keyof BatchOptions)[];
const BATCH_KEYS: AllKeys<BatchOptions, typeof BATCH_LIST> = BATCH_LIST;
const LANGFUSE_LIST = ['publicKey', 'secretKey', 'baseUrl'] as const satisfies readonly (keyof NonNullable<InitOptions['langfuse']>)[];
const LANGFUSE_KEYS: AllKeys<NonNullable<InitOptions['langfuse']>, typeof LANGFUSE_LIST> = LANGFUSE_LIST;

/**
 * `T` with every option filled in. Not `Required<T>`: where an app compiles with
 * `exactOptionalPropertyTypes`, that keeps the options' `| undefined`.
 */
export type Filled<T> = { [K in keyof T]-?: Exclude<T[K], undefined> };

/** The validated form of `TracerOptions`. */
export interface ResolvedConfig {
  resource: Attributes;
  serviceName: string;
  environment?: string;
  release?: string;
  sampleRate: number;
  maxAttributes: number;
  maxStringLength: number;
  maxIoLength: number;
  maxEvents: number;
  maxLinks: number;
  secretPatterns: readonly RegExp[];
  /** URLs are redacted (their fragments and user:password go); false only with `redact: false`. */
  redactQuery: boolean;
  /** Query keys whose values stay, or true for all of them (`redact.queryValues: false`). */
  keepQueryKeys: readonly string[] | true;
  mask?: TracerOptions['mask'];
  beforeSend?: TracerOptions['beforeSend'];
  filter?: FilterOptions;
  prices?: Record<string, ModelPrice>;
  baggage?: Baggage;
  batch: Filled<BatchOptions>;
  debug: boolean;
}

/** Throws the one configuration error format: call, option, what was expected, what was received. */
export const fail = (call: string, option: string, expected: string, got: unknown): never => {
  let shown: string;
  try {
    shown = typeof got === 'string' ? JSON.stringify(got) : typeof got === 'function' ? 'a function' : String(got);
    // Error messages end up in logs: a URL's password is not repeated there.
    if (typeof got === 'string' && USERINFO.test(got)) shown = `${JSON.stringify(got.replace(USERINFO, '$1[REDACTED]@'))}, with user:password, which fetch refuses (credentials go in headers)`;
  } catch {
    shown = typeof got;
  }
  throw new TypeError(`[edgetrace] ${call}: "${option}" must be ${expected}, got ${shown}.`);
};

/** Throws, naming `call`, unless `opts` is an object of options whose every key is one of `known`. */
export const checkOptions = (call: string, opts: unknown, known: readonly string[]): void => {
  if (typeof opts !== 'object' || opts === null) fail(call, 'options', 'an object', opts);
  checkKeys(call, opts as object, known);
};

/** The largest whole-number option: no timer waits longer (setTimeout would fire at once), and no count needs more. */
export const MAX_WHOLE = 2 ** 31 - 1;

/** What a whole-number option from `min` to {@link MAX_WHOLE} must be when `v` is not one; else undefined. */
export const wholeNumber = (v: unknown, min: number): string | undefined =>
  !Number.isInteger(v) || (v as number) < min ? `a whole number ≥ ${min}` : (v as number) > MAX_WHOLE ? `a whole number ≤ ${MAX_WHOLE}` : undefined;

/** A whole-number option: `dflt` when undefined, else `v` from `min` to {@link MAX_WHOLE}; throws naming it otherwise. */
export const wholeOption = (call: string, name: string, v: unknown, dflt: number, min: number): number => {
  if (v === undefined) return dflt;
  const problem = wholeNumber(v, min);
  return problem ? fail(call, name, problem, v) : (v as number);
};

/** Whether `name: value` can go on a request: `Headers` refuses what fetch would refuse. */
export const isHeader = (name: string, value: unknown): boolean => {
  if (typeof value !== 'string') return false;
  if (typeof Headers !== 'function') return true;
  try {
    new Headers([[name, value]]);
    return true;
  } catch {
    return false;
  }
};

/** Throws, naming the header, unless `headers` is undefined or an object of headers a request can carry. */
export const checkHeaders = (call: string, headers: unknown): void => {
  if (headers === undefined) return;
  if (typeof headers !== 'object' || headers === null) fail(call, 'headers', 'an object of header names to values', headers);
  for (const [name, value] of Object.entries(headers as object)) {
    if (!isHeader(name, value)) fail(call, `headers["${name}"]`, 'a string a request header can carry (a token name, Latin-1 value)', value);
  }
};

/** OpenTelemetry span kinds, in OTLP's order: Span.SpanKind numbers each as its position plus one. */
export const SPAN_KINDS: readonly SpanKind[] = ['internal', 'server', 'client', 'producer', 'consumer'];
const OBSERVATION_TYPES: readonly ObservationType[] = ['span', 'generation', 'event', 'agent', 'tool', 'chain', 'retriever', 'evaluator', 'embedding', 'guardrail'];

const isScalar = (v: unknown): boolean => typeof v === 'string' || typeof v === 'boolean' || typeof v === 'number';
const isAttributeValue = (v: unknown): boolean => isScalar(v) || (Array.isArray(v) && isPrimitiveList(v));

/**
 * Validates options and fills in defaults. This is the one place edgetrace throws: a `TypeError`
 * naming the call, the option, what was expected and what was received. `detected` are resource
 * attributes found in the runtime (the browser, the server runtime, `OTEL_RESOURCE_ATTRIBUTES`):
 * the options given explicitly, `resource` above all, win over them.
 */
export const resolveConfig = (opts: TracerOptions = {}, call = 'init()', detected?: Attributes): ResolvedConfig => {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
  if (!isObject(opts)) fail(call, 'options', 'an object', opts);
  // One checker per kind of option; each returns the value or throws naming the option.
  const check = <T>(name: string, v: unknown, ok: boolean, expected: string): T | undefined => {
    if (v !== undefined && !ok) fail(call, name, expected, v);
    return v as T | undefined;
  };
  const str = (name: keyof TracerOptions): string | undefined =>
    check(name, opts[name], typeof opts[name] === 'string' && opts[name] !== '', 'a non-empty string');
  const count = (name: string, v: unknown, dflt: number, min = 0): number => wholeOption(call, name, v, dflt, min);
  const object = (name: string, v: unknown, expected = 'an object'): Record<string, unknown> =>
    check(name, v, isObject(v), expected) ?? {};
  const array = (name: string, v: unknown, expected = 'an array'): unknown[] | undefined => check(name, v, Array.isArray(v), expected);
  const bool = (name: string, v: unknown): void => void check(name, v, typeof v === 'boolean', 'true or false');

  const serviceName = str('serviceName') ?? 'unknown_service';
  const serviceVersion = str('serviceVersion');
  const environment = str('environment');
  const release = str('release');
  for (const name of ['mask', 'beforeSend', 'now'] as const) check(name, opts[name], typeof opts[name] === 'function', 'a function');
  const rate = opts.sampleRate;
  const sampleRate = check<number>('sampleRate', rate, typeof rate === 'number' && rate >= 0 && rate <= 1, 'a number from 0 to 1') ?? 1;
  const resourceOpt = object('resource', opts.resource, 'an object of attributes');
  // Checked here: one value the encoder cannot write (a BigInt, a cycle) would fail every batch.
  for (const [key, v] of Object.entries(resourceOpt)) {
    if (!isAttributeValue(v)) fail(call, `resource["${key}"]`, 'a string, number, boolean or an array of one of them', v);
  }
  check('exporter', opts.exporter, typeof opts.exporter?.export === 'function', 'an object with an export(records) method');
  for (const [i, p] of (array('processors', opts.processors, 'an array of span processors') ?? []).entries()) {
    if (!isObject(p)) fail(call, `processors[${i}]`, 'a span processor object', p);
  }
  bool('debug', opts.debug);
  check('contextManager', opts.contextManager, typeof opts.contextManager?.with === 'function', 'an object with active() and with()');
  const limits = object('limits', opts.limits);
  checkKeys(call, limits, LIMIT_KEYS, 'limits.');

  let secretPatterns: readonly RegExp[] = DEFAULT_SECRET_PATTERNS;
  const redactQuery = opts.redact !== false;
  let keepQueryKeys: readonly string[] | true = [];
  if (opts.redact === false) secretPatterns = [];
  else if (opts.redact !== undefined) {
    const r = object('redact', opts.redact, 'false or an object') as RedactOptions;
    checkKeys(call, r, REDACT_KEYS, 'redact.');
    const extra = (array('redact.patterns', r.patterns) ?? []) as RegExp[];
    if (!extra.every((p) => p instanceof RegExp)) fail(call, 'redact.patterns', 'an array of RegExp', r.patterns);
    // Patterns are used with replace(); without the g flag only the first match would go.
    const global = extra.map((p) => (p.global ? p : new RegExp(p.source, `${p.flags}g`)));
    for (const key of ['defaults', 'queryValues'] as const) bool(`redact.${key}`, r[key]);
    secretPatterns = [...(r.defaults === false ? [] : DEFAULT_SECRET_PATTERNS), ...global];
    keepQueryKeys = r.queryValues === false || ((array('redact.keepQueryKeys', r.keepQueryKeys) ?? []) as string[]);
  }

  const filter = opts.filter;
  if (filter !== undefined) {
    checkKeys(call, object('filter', filter), FILTER_KEYS, 'filter.');
    const min = filter.minDurationMs;
    check('filter.minDurationMs', min, typeof min === 'number' && min >= 0, 'a number ≥ 0');
    for (const key of ['include', 'exclude', 'types', 'kinds'] as const) array(`filter.${key}`, filter[key]);
    // A misspelt kind or type ("SERVER", "generations") would silently drop every span.
    const oneOf = (key: 'types' | 'kinds', names: readonly string[]): void => {
      const list: unknown[] = filter[key] ?? [];
      if (!list.every((n) => names.includes(n as string))) fail(call, `filter.${key}`, `an array of ${names.map((n) => `"${n}"`).join(', ')}`, list);
    };
    oneOf('kinds', SPAN_KINDS);
    oneOf('types', OBSERVATION_TYPES);
    for (const key of ['include', 'exclude'] as const) {
      const list = filter[key];
      if (list && !list.every((m) => typeof m === 'string' || m instanceof RegExp || typeof m === 'function')) {
        fail(call, `filter.${key}`, 'an array of names, RegExps and functions', list);
      }
    }
  }

  for (const [model, price] of Object.entries(object('prices', opts.prices, 'an object of model names to prices'))) {
    if (!isObject(price) || !Object.values(price).every((p) => typeof p === 'number' && p >= 0)) {
      fail(call, `prices["${model}"]`, 'an object of usage types to non-negative USD per unit', price);
    }
  }

  const given = object('baggage', opts.baggage, 'an object of keys to text');
  const members = Object.entries(given);
  for (const [key, value] of members) if (!key || typeof value !== 'string') fail(call, `baggage["${key}"]`, 'text', value);
  if (members.length > MAX_BAGGAGE_MEMBERS) fail(call, 'baggage', `at most ${MAX_BAGGAGE_MEMBERS} members`, members.length);
  const baggage = withMembers(undefined, given as Record<string, string>);

  const b = object('batch', opts.batch);
  checkKeys(call, b, BATCH_KEYS, 'batch.');
  const batch = {
    maxBatchSize: count('batch.maxBatchSize', b.maxBatchSize, 512, 1),
    maxQueueSize: count('batch.maxQueueSize', b.maxQueueSize, 2048, 1),
    delayMs: count('batch.delayMs', b.delayMs, 1000),
    exportTimeoutMs: count('batch.exportTimeoutMs', b.exportTimeoutMs, 30_000, 1),
  };
  if (batch.maxBatchSize > batch.maxQueueSize) {
    // Odd but usable: clamp, as OpenTelemetry does for the same pair.
    warnOnce('batch-size', 'batch.maxBatchSize is larger than batch.maxQueueSize; using maxQueueSize.');
    batch.maxBatchSize = batch.maxQueueSize;
  }

  const resource: Attributes = {
    ...detected,
    'service.name': serviceName,
    'telemetry.sdk.name': SDK_NAME,
    'telemetry.sdk.language': sdkLanguage(),
    'telemetry.sdk.version': SDK_VERSION,
  };
  if (serviceVersion) resource['service.version'] = serviceVersion;
  if (environment) resource['deployment.environment.name'] = environment;
  Object.assign(resource, resourceOpt);

  const maxStringLength = count('limits.maxStringLength', limits.maxStringLength, 16_384, 16);
  return {
    resource,
    serviceName,
    environment,
    release,
    sampleRate,
    maxAttributes: count('limits.maxAttributes', limits.maxAttributes, 128),
    maxStringLength,
    maxIoLength: count('limits.maxIoLength', limits.maxIoLength, Math.max(65_536, maxStringLength), 16),
    maxEvents: count('limits.maxEvents', limits.maxEvents, 128),
    maxLinks: count('limits.maxLinks', limits.maxLinks, 32),
    secretPatterns,
    redactQuery,
    keepQueryKeys,
    mask: opts.mask,
    beforeSend: opts.beforeSend,
    filter,
    prices: opts.prices,
    baggage,
    batch,
    debug: opts.debug === true,
  };
};

/** The validated extra options of `init()`. */
export interface ResolvedInit {
  endpoint?: string;
  headers?: Record<string, string>;
  langfuse?: { publicKey: string; secretKey: string; baseUrl?: string };
}

let warnedRelative = false;

/** Whether `value`, a header or token a page would send, holds a secret key, also inside Basic credentials (Langfuse's OTLP setup). */
const holdsSecretKey = (value: unknown): boolean => {
  if (typeof value !== 'string') return false;
  const basic = /^\s*Basic\s+([\w+/=-]+)\s*$/i.exec(value);
  try {
    // search() reads the global pattern from its start and leaves its lastIndex alone.
    return value.search(SECRET_KEY) >= 0 || (!!basic && atob(basic[1]!).search(SECRET_KEY) >= 0);
  } catch {
    return false;
  }
};

/** Validates what `init()` adds to the tracer options; throws like `resolveConfig`. */
export const resolveInit = (opts: InitOptions, call = 'init()'): ResolvedInit => {
  let endpoint = opts.endpoint;
  if (endpoint !== undefined) {
    // A page or worker sends to a URL relative to its own; elsewhere there is nothing to resolve against.
    const page = pageBase();
    // A path of the page starts with `/`, `./` or `../`: `collector.example.com/v1/traces` (a host
    // without its scheme) or `v1/traces` (relative to the route the page is on) is a mistake.
    // (Read as URL parsing reads it: without the whitespace around it.)
    const relative = /^\s*\.{0,2}\//.test(endpoint);
    if (endpoint === '' || !isHttpUrl(endpoint, page) || (page && !relative && !/^\s*https?:\/\//i.test(endpoint))) {
      if (page || !relative) fail(call, 'endpoint', page ? 'an http(s) URL with its scheme, or a path of the page ("/v1/traces")' : 'an absolute http(s) URL', endpoint);
      // A page's relative endpoint where there is no page: its code also runs in server-side
      // rendering. That init() records nothing, and says so once, rather than break the render.
      if (!warnedRelative) console.warn(`[edgetrace] ${call}: "endpoint" ${JSON.stringify(endpoint)} is relative, and this runtime has no page to resolve it against: nothing is sent from here. Servers use an absolute URL, or edgetrace/server.`);
      warnedRelative = true;
      endpoint = undefined;
    }
  }
  checkHeaders(call, opts.headers);
  if (isBrowser() && opts.dangerouslyAllowSecretInBrowser !== true) {
    // What a page sends, anyone who opens it can read: a key there is a key given away.
    const sent: [string, unknown][] = [...Object.entries(opts.headers ?? {}).map(([name, v]): [string, unknown] => [`headers["${name}"]`, v]), ['ingestToken', (opts as { ingestToken?: unknown }).ingestToken]];
    const found = sent.find(([, v]) => holdsSecretKey(v));
    if (found) {
      throw new TypeError(
        `[edgetrace] ${call}: "${found[0]}" holds a secret API key (sk-…), which anyone who opens the page can read. ` +
          'Send spans to your own collector (`endpoint`, with a public ingest token at most), which holds the keys on the server. For local development only, set "dangerouslyAllowSecretInBrowser: true".',
      );
    }
  }
  const lf = opts.langfuse;
  if (lf !== undefined) {
    if (typeof lf === 'object' && lf !== null) checkKeys(call, lf, LANGFUSE_KEYS, 'langfuse.');
    if (typeof lf !== 'object' || lf === null || typeof lf.publicKey !== 'string' || !lf.publicKey) {
      fail(call, 'langfuse.publicKey', 'a non-empty string', lf?.publicKey);
    }
    // Said first, with or without a secret key given: a page with the public key alone could send nothing.
    if (isBrowser() && opts.dangerouslyAllowSecretInBrowser !== true) {
      throw new TypeError(
        `[edgetrace] ${call}: "langfuse" cannot be used in a browser: Langfuse takes spans only with the project's secret key ("langfuse.secretKey"), and anyone who opens the page can read it. ` +
          'Send spans to your own collector (`endpoint`), which relays them to Langfuse with the secret key kept on the server ' +
          '(see edgetrace/server createCollector). For local development only, set "dangerouslyAllowSecretInBrowser: true".',
      );
    }
    // Langfuse takes spans only with both keys; without the secret nothing could ever be sent.
    if (typeof lf.secretKey !== 'string' || !lf.secretKey) fail(call, 'langfuse.secretKey', 'a non-empty string', lf.secretKey);
    if (lf.baseUrl !== undefined && !isHttpUrl(lf.baseUrl)) fail(call, 'langfuse.baseUrl', 'an absolute http(s) URL', lf.baseUrl);
  }

  return {
    endpoint,
    headers: opts.headers,
    langfuse: lf as ResolvedInit['langfuse'],
  };
};
