import { AsyncLocalStorage } from 'node:async_hooks';
import { alsContext, type ContextManager } from '../core/context';

// The `edgetrace/server` entry. The exporters run in any JS runtime; the request middleware,
// `fromEnv()` and the collector handler are added here with the server work.
export { createOtlpExporter } from '../export/http';
export { createLangfuseExporter } from '../export/langfuse';
export { createConsoleExporter } from '../export/console';
export { noneExporter } from '../export/none';
export { alsContext } from '../core/context';

/**
 * A context manager backed by `AsyncLocalStorage` from `node:async_hooks`, so the current span
 * follows `await`, timers and promise callbacks. Works in Node, Deno, Bun and Workers with
 * `nodejs_compat`. Pass it as `contextManager` to `init()` or `createTracer()`.
 */
export const serverContext = (): ContextManager => alsContext(AsyncLocalStorage);

export type { OtlpExporterOptions } from '../export/http';
export type { LangfuseExporterOptions } from '../export/langfuse';
export type { ConsoleExporterOptions } from '../export/console';
export type { ContextManager, AsyncLocalStorageLike } from '../core/context';
export type { Exporter, ExportResult, SpanRecord, ScoreRecord, TelemetryRecord } from '../protocol';
