import type { Attributes, Exporter } from '../protocol';
import { checkOptions, fail } from '../config';
import { nearestKey, type AllKeys } from '../lib/checkKeys';
import { createOtlpExporter, type Compression } from '../export/http';
import { createLangfuseExporter, ENVIRONMENT_RULE, isLangfuseEnvironment, LANGFUSE_CLOUD_URL } from '../export/langfuse';
import { createConsoleExporter } from '../export/console';
import { noneExporter } from '../export/none';
import { createJsonlExporter, DEFAULT_JSONL_PATH } from './jsonl';
import { isHttpUrl } from '../lib/isHttpUrl';
import { warnOnce } from '../lib/reportInternal';

/** The values of `TRACING_MODE`. */
export type TracingMode = 'langfuse' | 'otlp' | 'console' | 'jsonl' | 'none';

const MODES: readonly TracingMode[] = ['langfuse', 'otlp', 'console', 'jsonl', 'none'];

/** Whether the `none` chosen for want of variables was announced (once per process). */
let saidNone = false;

/** An exporter made by {@link fromEnv}, with what it was made from. */
export interface EnvExporter extends Exporter {
  readonly mode: TracingMode;
  /** `OTEL_SERVICE_NAME`, when set, else `service.name` from `OTEL_RESOURCE_ATTRIBUTES`. */
  readonly serviceName?: string;
  /** `OTEL_RESOURCE_ATTRIBUTES`, when set: the resource attributes every span of a tracer using this exporter carries. */
  readonly resource?: Attributes;
  /**
   * The share of new traces kept, from `OTEL_TRACES_SAMPLER` (with `OTEL_TRACES_SAMPLER_ARG`) or
   * `LANGFUSE_SAMPLE_RATE`, when one of them sets it: a tracer using this exporter takes it as
   * its `sampleRate` unless given one.
   */
  readonly sampleRate?: number;
  /** `LANGFUSE_RELEASE`, when set: a tracer using this exporter takes it as its `release` (for the traces it starts) unless given one. */
  readonly release?: string;
  /**
   * Where spans go: a URL (origin and path only: a user name, password or query in the
   * configured one stays out), a file, `console` or `none`.
   */
  readonly target: string;
}

/** Options for {@link fromEnv}. */
export interface FromEnvOptions {
  /** The fetch the HTTP exporters send with. Default the global one. */
  fetch?: typeof fetch | undefined;
  /** How long one request of the HTTP exporters may take. Default 10000 ms. */
  timeoutMs?: number | undefined;
}

const CALL = 'fromEnv()';

const OPTION_LIST = ['fetch', 'timeoutMs'] as const;
const OPTION_KEYS: AllKeys<FromEnvOptions, typeof OPTION_LIST> = OPTION_LIST;

/** `Deno.env`: its variables are read through `toObject()` or `get()`, not as properties. */
export interface DenoEnv {
  toObject(): Record<string, string>;
  get?(name: string): string | undefined;
}

/**
 * The names of Langfuse's base URL, first found wins: today's, the one Langfuse's JS SDK v3 reads,
 * and the older one. A self-hosted team's `.env` with either of the others would otherwise send
 * its traces to Langfuse Cloud.
 */
const BASE_URL_NAMES = ['LANGFUSE_BASE_URL', 'LANGFUSE_BASEURL', 'LANGFUSE_HOST'];

/** Every variable {@link fromEnv} reads. */
const VARIABLES = [
  'TRACING_MODE',
  'TRACING_JSONL_PATH',
  'OTEL_SERVICE_NAME',
  'OTEL_RESOURCE_ATTRIBUTES',
  'OTEL_EXPORTER_OTLP_ENDPOINT',
  'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT',
  'OTEL_EXPORTER_OTLP_HEADERS',
  'OTEL_EXPORTER_OTLP_TRACES_HEADERS',
  'OTEL_EXPORTER_OTLP_COMPRESSION',
  'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION',
  'LANGFUSE_PUBLIC_KEY',
  'LANGFUSE_SECRET_KEY',
  ...BASE_URL_NAMES,
  'LANGFUSE_TRACING_ENVIRONMENT',
  'LANGFUSE_SAMPLE_RATE',
  'LANGFUSE_RELEASE',
  'OTEL_TRACES_SAMPLER',
  'OTEL_TRACES_SAMPLER_ARG',
];

/** The prefixes of those variables: a name with one that fromEnv does not read may be a typo. */
const OUR_PREFIX = /^(OTEL|LANGFUSE|TRACING)_/i;

/**
 * The variables `env` holds that are likely typos of one of `wanted` (a letter or two off, or in
 * other case: `OTEL_EXPORTER_OTLP_ENDPOINTS`), each said as `X is set: did you mean Y?`. Only
 * names with our prefixes are looked at, and never their values.
 */
const nearMisses = (env: Record<string, unknown>, wanted: readonly string[] = VARIABLES): string[] => {
  const found: string[] = [];
  for (const name of Object.keys(env)) {
    if (!OUR_PREFIX.test(name) || VARIABLES.includes(name) || str(env, name) === undefined) continue;
    const near = nearestKey(name.toUpperCase(), wanted);
    if (near) found.push(`${name} is set: did you mean ${near}?`);
  }
  return found;
};

/** {@link nearMisses} of `wanted`, as an aside to a message that `wanted` is not set. */
const typosOf = (env: Record<string, unknown>, wanted: readonly string[]): string => {
  const found = nearMisses(env, wanted);
  return found.length ? ` (${found.join('; ')})` : '';
};

/** What of Deno's global the environment is read through: `Deno.env`, and its permission queries. */
interface DenoGlobal {
  env?: Partial<DenoEnv>;
  permissions?: { querySync?(d: { name: 'env'; variable?: string }): { state?: unknown } };
}

/**
 * Whether Deno lets `variable` (or, without one, the whole environment) be read without asking:
 * `true` or `false` where it can be asked quietly, `undefined` where it cannot (an older Deno).
 */
const denoAllows = (deno: DenoGlobal, variable?: string): boolean | undefined => {
  try {
    const state = deno.permissions?.querySync?.(variable === undefined ? { name: 'env' } : { name: 'env', variable })?.state;
    return state === undefined ? undefined : state === 'granted';
  } catch {
    return undefined;
  }
};

/**
 * The variables of `Deno.env` (or of Deno's `process.env`, which reads through it): all of them
 * with `--allow-env`, else those Deno allows by name (`--allow-env=OTEL_EXPORTER_OTLP_ENDPOINT,…`),
 * read one by one. Where Deno can say what it allows, only that is read: in a terminal, a read it
 * does not allow would stop the request at a prompt, one for each variable. Throws, naming the
 * flag, when Deno allows none.
 */
const denoVariables = (deno: DenoGlobal): Record<string, unknown> => {
  const env = deno.env!;
  const denied = (): never => fail(CALL, 'env', 'readable (Deno needs --allow-env)', 'Deno.env without permission');
  if (denoAllows(deno) !== false && typeof env.toObject === 'function') {
    try {
      return env.toObject();
    } catch {
      // Allowed by name only: read below.
    }
  }
  if (typeof env.get !== 'function') return denied();
  const out: Record<string, unknown> = {};
  let refused = 0;
  for (const name of VARIABLES) {
    try {
      if (denoAllows(deno, name) === false) throw new Error(name);
      const v = env.get(name);
      if (v !== undefined) out[name] = v;
    } catch {
      refused++;
    }
  }
  return refused === VARIABLES.length ? denied() : out;
};

/**
 * The variables of a plain object, or of `Deno.env` and Deno's `process.env` (see
 * {@link denoVariables}), told apart by identity: a property read on Deno's `process.env` is a
 * variable read, which Deno may refuse or prompt for.
 */
const variablesOf = (env: object): Record<string, unknown> => {
  const g = globalThis as { Deno?: DenoGlobal; process?: { env?: unknown } };
  const deno = g.Deno;
  if (deno?.env && (env === deno.env || env === g.process?.env)) return denoVariables(deno);
  const given = env as Partial<DenoEnv>;
  // Another object with Deno.env's shape (a copy of Deno.env's, a test's).
  return typeof given.toObject === 'function' ? denoVariables({ env: given }) : (env as Record<string, unknown>);
};

/** Set when Deno refused to show the environment: the "nothing configured" notice says why. */
let unreadable = false;

/**
 * The process's environment where the runtime has one (`process.env` in Node and Bun,
 * `Deno.env`, as far as Deno allows), else an empty object. Never throws.
 */
export const processEnv = (): Record<string, unknown> => {
  const g = globalThis as { Deno?: { env?: object }; process?: { env?: unknown } };
  const env = g.Deno?.env ?? g.process?.env;
  try {
    const all = env && typeof env === 'object' ? { ...variablesOf(env) } : {};
    unreadable = false;
    return all;
  } catch {
    // Deno without --allow-env for any of the variables.
    unreadable = true;
    return {};
  }
};

/** A percent-encoded value of the `key=value` variables, trimmed; a `%` that starts no escape stays as written. */
const decoded = (s: string): string => {
  try {
    return decodeURIComponent(s.trim());
  } catch {
    return s.trim();
  }
};

/**
 * Parses `OTEL_EXPORTER_OTLP_HEADERS`: `key=value` pairs joined by `,`, values percent-encoded
 * (OpenTelemetry's exporter configuration). Whitespace around keys and values is dropped.
 */
export const parseOtlpHeaders = (value: string, variable = 'OTEL_EXPORTER_OTLP_HEADERS'): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const part of value.split(',')) {
    if (!part.trim()) continue;
    const eq = part.indexOf('=');
    const key = eq > 0 ? part.slice(0, eq).trim() : '';
    if (!key || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(key)) {
      // Never the value itself: these headers carry credentials.
      fail(CALL, variable, 'a list of key=value pairs separated by commas', `a malformed pair at position ${value.indexOf(part) + 1} (value not shown)`);
    }
    out[key.toLowerCase()] = decoded(part.slice(eq + 1));
  }
  return out;
};

/**
 * Parses `OTEL_RESOURCE_ATTRIBUTES`: `key=value` pairs joined by `,`, keys and values
 * percent-encoded, every value a string (OpenTelemetry's resource SDK); a `%` that starts no
 * escape stays as written, as in the header variables. Throws naming the variable and the pair
 * when a pair has no `=` or no key.
 */
export const parseResourceAttributes = (value: string): Attributes => {
  const out: Attributes = {};
  for (const part of value.split(',')) {
    if (!part.trim()) continue;
    const eq = part.indexOf('=');
    const key = eq > 0 ? decoded(part.slice(0, eq)) : '';
    if (!key) fail(CALL, 'OTEL_RESOURCE_ATTRIBUTES', 'a list of key=value pairs separated by commas, percent-encoded', part.trim());
    out[key] = decoded(part.slice(eq + 1));
  }
  return out;
};

/**
 * Tells once on the console that a variable which only changes how spans are described or sent
 * is invalid and left out, as OpenTelemetry's SDKs do: a typo there must not stop tracing.
 */
const ignored = (error: unknown): undefined => {
  try {
    console.warn(`[edgetrace] ${error instanceof Error ? error.message.replace(/^\[edgetrace\] /, '') : String(error)} It is ignored.`);
  } catch {
    // A console replaced by the host.
  }
  return undefined;
};

/** Tells once per process (per `key`) what a variable was read as, when that is not quite what it says. */
const noted = (key: string, message: string): void => warnOnce(key, `${CALL}: ${message}`, true);

/** A share from 0 to 1 written as a number (`0.25`, `1`), else undefined. */
const share = (value: string | undefined): number | undefined => {
  if (value === undefined || !/^\s*(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?\s*$/i.test(value)) return undefined;
  const n = Number(value);
  return n >= 0 && n <= 1 ? n : undefined;
};

/**
 * The sample rate OpenTelemetry's `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` ask for:
 * `always_on` 1, `always_off` 0, `traceidratio` the argument (1 when it is unset or invalid),
 * each also as `parentbased_…`. edgetrace always follows a caller's sampled flag, which is what
 * the `parentbased_` forms do; the other three are read as those, and said so. A sampler edgetrace
 * has not (`jaeger_remote`, `xray`, a typo) or an invalid argument is logged and left out, as
 * OpenTelemetry's SDKs do.
 */
export const samplerRate = (env: Record<string, unknown>): number | undefined => {
  const sampler = str(env, 'OTEL_TRACES_SAMPLER')?.toLowerCase();
  if (sampler === undefined) return undefined;
  const kind = sampler.replace(/^parentbased_/, '');
  if (kind !== 'always_on' && kind !== 'always_off' && kind !== 'traceidratio') {
    return ignored(
      new TypeError(`${CALL}: "OTEL_TRACES_SAMPLER" must be one of always_on, always_off, traceidratio, each also as parentbased_…, got ${JSON.stringify(env.OTEL_TRACES_SAMPLER)}.`),
    );
  }
  if (kind === sampler) noted(`sampler-${sampler}`, `OTEL_TRACES_SAMPLER=${sampler} is read as parentbased_${sampler}: a trace continued from a caller keeps the caller's sampled flag.`);
  if (kind !== 'traceidratio') return kind === 'always_on' ? 1 : 0;
  const arg = str(env, 'OTEL_TRACES_SAMPLER_ARG');
  const rate = share(arg);
  if (arg !== undefined && rate === undefined) {
    ignored(new TypeError(`${CALL}: "OTEL_TRACES_SAMPLER_ARG" must be a number from 0 to 1 for ${sampler}, got ${JSON.stringify(env.OTEL_TRACES_SAMPLER_ARG)}; the rate is 1.`));
  }
  return rate ?? 1;
};

/**
 * The sample rate of the environment: `OTEL_TRACES_SAMPLER`'s, else `LANGFUSE_SAMPLE_RATE`
 * (a number from 0 to 1, as Langfuse's SDKs read it; an invalid one is logged and left out).
 */
const sampleRateOf = (env: Record<string, unknown>): number | undefined => {
  const langfuse = str(env, 'LANGFUSE_SAMPLE_RATE');
  let fromLangfuse = share(langfuse);
  if (langfuse !== undefined && fromLangfuse === undefined) {
    fromLangfuse = ignored(new TypeError(`${CALL}: "LANGFUSE_SAMPLE_RATE" must be a number from 0 to 1, got ${JSON.stringify(env.LANGFUSE_SAMPLE_RATE)}.`));
  }
  const fromOtel = samplerRate(env);
  if (fromOtel !== undefined && fromLangfuse !== undefined && fromOtel !== fromLangfuse) {
    noted('sample-rates', `OTEL_TRACES_SAMPLER asks for a rate of ${fromOtel} and LANGFUSE_SAMPLE_RATE for ${fromLangfuse}; OTEL_TRACES_SAMPLER's is used.`);
  } else if (fromOtel === undefined && fromLangfuse !== undefined && fromLangfuse < 1) {
    // Langfuse's Python SDK and its JS SDK v3 sample by it; its JS SDK v4 and later do not, so a
    // variable a JS service ignored before (set for the Python ones beside it) now drops traces.
    noted('langfuse-rate', `LANGFUSE_SAMPLE_RATE=${fromLangfuse} keeps that share of new traces (Langfuse's JS SDK v4 and later leave the variable unread; its Python SDK reads it as edgetrace does).`);
  }
  return fromOtel ?? fromLangfuse;
};

const httpUrl = (variable: string, value: string): string => {
  if (!isHttpUrl(value)) fail(CALL, variable, 'an absolute http(s) URL', value);
  return value;
};

/**
 * The trace endpoint from OpenTelemetry's variables: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` as it
 * is, else `OTEL_EXPORTER_OTLP_ENDPOINT` as the base with `/v1/traces` appended (unless it already
 * ends so, a common slip that would otherwise give `/v1/traces/v1/traces`).
 */
export const otlpTracesUrl = (env: Record<string, unknown>): string | undefined => {
  const signal = str(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  if (signal) return httpUrl('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', signal);
  const base = str(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  if (!base) return undefined;
  httpUrl('OTEL_EXPORTER_OTLP_ENDPOINT', base);
  // The signal's path goes on the base's path, ahead of any query the receiver wants.
  const url = new URL(base);
  if (!/\/v1\/traces\/?$/.test(url.pathname)) url.pathname = url.pathname.replace(/\/+$/, '') + '/v1/traces';
  return url.href;
};

/**
 * Langfuse's base URL from `variable`, without an API path pasted along with it (`/api/public`,
 * `/api/public/otel`, `/api/public/otel/v1/traces`): the exporter appends its own, and would
 * otherwise post to `/api/public/api/public/otel/v1/traces`.
 */
const langfuseBaseUrl = (variable: string, value: string): string => {
  const url = new URL(httpUrl(variable, value));
  const bare = url.pathname.replace(/\/api\/public(?:\/otel(?:\/v1\/traces)?)?\/*$/, '');
  if (bare === url.pathname) return value;
  url.pathname = bare;
  return url.href;
};

/** A URL as logs and status pages show it: without user name, password, query or fragment. */
const shownUrl = (href: string): string => {
  const url = new URL(href);
  return url.origin + url.pathname;
};

const str = (env: Record<string, unknown>, name: string): string | undefined => {
  const v = env[name];
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
};

const need = (env: Record<string, unknown>, name: string, mode: TracingMode, what: string): string => {
  const v = str(env, name);
  if (v === undefined) {
    throw new TypeError(`[edgetrace] ${CALL}: TRACING_MODE=${mode} needs ${name} (${what}), which is not set${typosOf(env, [name])}.`);
  }
  return v;
};

/**
 * Creates the exporter an environment asks for, from an object of variables (Workers pass
 * `env`; Node and Bun pass `process.env`, Deno `Deno.env`):
 * - `TRACING_MODE`: `langfuse` | `otlp` | `console` | `jsonl` | `none`. When unset: `langfuse` if
 *   both Langfuse keys are set, else `otlp` if an OTLP endpoint is, else `none`.
 * - langfuse: `LANGFUSE_PUBLIC_KEY`, `LANGFUSE_SECRET_KEY`, `LANGFUSE_BASE_URL` (or its older
 *   names `LANGFUSE_BASEURL` and `LANGFUSE_HOST`; default Langfuse Cloud; a trailing `/api/public`,
 *   `/api/public/otel` or `/api/public/otel/v1/traces` left out), `LANGFUSE_TRACING_ENVIRONMENT`.
 * - otlp: `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, or `OTEL_EXPORTER_OTLP_ENDPOINT` plus `/v1/traces`;
 *   `OTEL_EXPORTER_OTLP_HEADERS` and `OTEL_EXPORTER_OTLP_TRACES_HEADERS` (`k=v,k2=v2`, percent-decoded).
 * - otlp and langfuse: `OTEL_EXPORTER_OTLP_TRACES_COMPRESSION` or `OTEL_EXPORTER_OTLP_COMPRESSION`,
 *   `gzip` or `none` (the default).
 * - jsonl: `TRACING_JSONL_PATH` (default `.edgetrace/spans.jsonl`), Node, Deno and Bun only.
 * - every mode: `OTEL_SERVICE_NAME` is carried as `serviceName`, `OTEL_RESOURCE_ATTRIBUTES`
 *   (`k=v,k2=v2`, percent-decoded) as `resource`; `createServerTracer` and `withTracing` put both
 *   on their spans. `OTEL_TRACES_SAMPLER` (with `OTEL_TRACES_SAMPLER_ARG`), else
 *   `LANGFUSE_SAMPLE_RATE`, is carried as `sampleRate`, which they sample new traces by, and
 *   `LANGFUSE_RELEASE` as `release` (`langfuse.release` on the traces they start).
 * Throws a `TypeError` naming the variable that is missing or invalid, except for those that
 * only describe, compress or sample (`OTEL_RESOURCE_ATTRIBUTES`, the compression and sampling
 * variables): an invalid one of those is logged and left out, as OpenTelemetry's SDKs do.
 * Where a variable is missing, or none chose an exporter, one set under a name a letter or two
 * off (`LANGFUSE_PUBLICKEY`) is named as the likely typo.
 */
// `object` (which `Deno.env`, a DenoEnv, is too), not a record type: a Workers `interface Env { … }`
// has no index signature, and an interface is not assignable to one.
export const fromEnv = (given: object = {}, opts: FromEnvOptions = {}): EnvExporter => {
  if (typeof given !== 'object' || given === null) fail(CALL, 'env', 'an object of environment variables', given);
  // A misspelt timeout would leave the default in place: refused, as the exporters refuse it.
  checkOptions(CALL, opts, OPTION_KEYS);
  const env = variablesOf(given);
  const attrs = str(env, 'OTEL_RESOURCE_ATTRIBUTES');
  let resource: Attributes | undefined;
  try {
    resource = attrs ? parseResourceAttributes(attrs) : undefined;
  } catch (error) {
    resource = ignored(error);
  }
  // OpenTelemetry's order: OTEL_SERVICE_NAME over the service.name in OTEL_RESOURCE_ATTRIBUTES.
  const fromAttrs = resource?.['service.name'];
  const serviceName = str(env, 'OTEL_SERVICE_NAME') ?? (typeof fromAttrs === 'string' && fromAttrs ? fromAttrs : undefined);
  const named = str(env, 'TRACING_MODE')?.toLowerCase();
  if (named !== undefined && !MODES.includes(named as TracingMode)) fail(CALL, 'TRACING_MODE', `one of ${MODES.join(', ')}`, env.TRACING_MODE);
  if (named === undefined) {
    // Without TRACING_MODE the mode is read from the variables set; half of a configuration is a
    // mistake to name, not a reason to trace nothing in silence.
    const missing = (set: string[], partner: string): void => {
      const given = set.find((name) => str(env, name) !== undefined);
      if (given && str(env, partner) === undefined) {
        throw new TypeError(`[edgetrace] ${CALL}: ${given} is set but ${partner} is not${typosOf(env, [partner])}; set both (or TRACING_MODE to choose a mode).`);
      }
    };
    missing(['LANGFUSE_PUBLIC_KEY', ...BASE_URL_NAMES], 'LANGFUSE_SECRET_KEY');
    missing(['LANGFUSE_SECRET_KEY'], 'LANGFUSE_PUBLIC_KEY');
    if (!str(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT')) missing(['OTEL_EXPORTER_OTLP_HEADERS', 'OTEL_EXPORTER_OTLP_TRACES_HEADERS'], 'OTEL_EXPORTER_OTLP_ENDPOINT');
  }
  const mode: TracingMode =
    (named as TracingMode | undefined) ??
    (str(env, 'LANGFUSE_PUBLIC_KEY') && str(env, 'LANGFUSE_SECRET_KEY')
      ? 'langfuse'
      : str(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') || str(env, 'OTEL_EXPORTER_OTLP_ENDPOINT')
        ? 'otlp'
        : 'none');

  const sampleRate = sampleRateOf(env);
  const release = str(env, 'LANGFUSE_RELEASE');
  const make = (exporter: Exporter, target: string): EnvExporter => ({
    export: (records) => exporter.export(records),
    shutdown: () => exporter.shutdown?.() ?? Promise.resolve(),
    mode,
    serviceName,
    resource,
    sampleRate,
    release,
    target,
  });

  // OpenTelemetry's compression variables, the signal's over the general one; Langfuse's
  // endpoint is an OTLP one too. Read by the modes that send over HTTP only.
  const compression = (): Compression | undefined => {
    const name = str(env, 'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION') ? 'OTEL_EXPORTER_OTLP_TRACES_COMPRESSION' : 'OTEL_EXPORTER_OTLP_COMPRESSION';
    const zip = str(env, name)?.toLowerCase();
    if (zip === undefined || zip === 'gzip' || zip === 'none') return zip;
    return ignored(new TypeError(`${CALL}: "${name}" must be "gzip" or "none", got ${JSON.stringify(env[name])}.`));
  };

  switch (mode) {
    case 'langfuse': {
      const publicKey = need(env, 'LANGFUSE_PUBLIC_KEY', mode, 'the project public key, pk-lf-…');
      const secretKey = need(env, 'LANGFUSE_SECRET_KEY', mode, 'the project secret key, sk-lf-…');
      // Each key in the other's variable passes every check here and fails the first send with a
      // 401 that names neither. Told by their prefixes only: the secret key is never shown.
      const swapped = [
        ...(publicKey.startsWith('sk-lf-') ? ['LANGFUSE_PUBLIC_KEY holds a secret key (sk-lf-…)'] : []),
        ...(secretKey.startsWith('pk-lf-') ? ['LANGFUSE_SECRET_KEY holds a public key (pk-lf-…)'] : []),
      ];
      if (swapped.length) {
        throw new TypeError(`[edgetrace] ${CALL}: LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY look swapped: ${swapped.join(' and ')}; the public key is pk-lf-…, the secret key sk-lf-….`);
      }
      const named = BASE_URL_NAMES.find((name) => str(env, name) !== undefined);
      const baseUrl = named ? langfuseBaseUrl(named, str(env, named)!) : LANGFUSE_CLOUD_URL;
      // It only describes, as the resource attributes do: an environment Langfuse does not keep is said and left out.
      let environment = str(env, 'LANGFUSE_TRACING_ENVIRONMENT');
      if (environment !== undefined && !isLangfuseEnvironment(environment)) {
        environment = ignored(new TypeError(`${CALL}: "LANGFUSE_TRACING_ENVIRONMENT" must be ${ENVIRONMENT_RULE}, got ${JSON.stringify(environment)}.`));
      }
      const exporter = createLangfuseExporter({ publicKey, secretKey, baseUrl, environment, fetch: opts.fetch, timeoutMs: opts.timeoutMs, compression: compression() });
      return make(exporter, shownUrl(`${baseUrl.replace(/\/+$/, '')}/api/public/otel/v1/traces`));
    }
    case 'otlp': {
      const url = otlpTracesUrl(env);
      if (!url) {
        throw new TypeError(
          `[edgetrace] ${CALL}: TRACING_MODE=otlp needs OTEL_EXPORTER_OTLP_ENDPOINT (the receiver's base URL, e.g. http://localhost:4318) or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, which is not set${typosOf(env, ['OTEL_EXPORTER_OTLP_ENDPOINT', 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'])}.`,
        );
      }
      const general = str(env, 'OTEL_EXPORTER_OTLP_HEADERS');
      const signal = str(env, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS');
      const headers = {
        ...(general ? parseOtlpHeaders(general) : {}),
        ...(signal ? parseOtlpHeaders(signal, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS') : {}),
      };
      return make(createOtlpExporter({ url, headers, fetch: opts.fetch, timeoutMs: opts.timeoutMs, compression: compression() }), shownUrl(url));
    }
    case 'console':
      return make(createConsoleExporter(), 'console');
    case 'jsonl': {
      const path = str(env, 'TRACING_JSONL_PATH') ?? DEFAULT_JSONL_PATH;
      return make(createJsonlExporter({ path }), path);
    }
    default:
      // `next build` loads route modules to collect page data, without the variables meant for
      // run time: nothing is sent there, and the notice would only mislead.
      if (named === undefined && !saidNone && str(env, 'NEXT_PHASE') !== 'phase-production-build') {
        // Chosen for want of variables, not asked for: say it once, or nothing is sent in silence.
        saidNone = true;
        // A typo in a variable's name is a mistake to mend, not a choice: a warning, naming it.
        const typos = nearMisses(env);
        try {
          console[typos.length ? 'warn' : 'info'](
            unreadable
              ? `[edgetrace] ${CALL}: no exporter configured: Deno refused to read the environment, so spans are not sent. Run with --allow-env (or --allow-env=${VARIABLES.join(',')}), or pass an exporter.`
              : `[edgetrace] ${CALL}: no exporter configured (TRACING_MODE, OTEL_EXPORTER_OTLP_ENDPOINT and the LANGFUSE_* keys are unset${typos.map((t) => `; ${t}`).join('')}), so spans are not sent. Set TRACING_MODE=none to say that is meant.`,
          );
        } catch {
          // A console replaced by the host.
        }
      }
      return make(noneExporter, 'none');
  }
};
