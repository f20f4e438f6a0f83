/** This package's name: `telemetry.sdk.name`, and the instrumentation scope of its own spans. */
export const SDK_NAME = 'edgetrace';

/** This package's version: the instrumentation scope's and `telemetry.sdk.version`. A unit test keeps it equal to package.json's. */
export const SDK_VERSION = '0.1.0';

/**
 * OpenTelemetry's `telemetry.sdk.language` for the runtime `g`: `nodejs` where Node's `process`
 * is (Node, Bun, Deno, workerd with nodejs_compat), else `webjs` (pages, web workers, edge
 * runtimes without it).
 */
export const sdkLanguage = (g: { process?: { versions?: { node?: unknown } } } = globalThis): string =>
  typeof g.process?.versions?.node === 'string' ? 'nodejs' : 'webjs';
