export { encodeOtlp, msToNanos, parseOtlpResponse, toAnyValue, toKeyValues, toOtlpJson } from './otlp';
export type {
  OtlpAnyValue,
  OtlpEvent,
  OtlpKeyValue,
  OtlpLink,
  OtlpResourceSpans,
  OtlpScope,
  OtlpScopeSpans,
  OtlpSpan,
  OtlpStatus,
  OtlpTraceRequest,
} from './otlp';
export { combineResults, httpReason, isRetryableStatus, networkError, parseRetryAfter, toExportResult } from './result';
export { captureFetch, createOtlpExporter, DEFAULT_TIMEOUT_MS, sendJson, splitSpans } from './http';
export type { Compression, JsonRequest, OtlpExporterOptions } from './http';
export {
  basicAuth,
  createLangfuseExporter,
  LANGFUSE_CLOUD_URL,
  toIngestionResult,
  toScoreEvents,
  utf8ToBase64,
} from './langfuse';
export type { LangfuseExporterOptions, ScoreEvent } from './langfuse';
export { createConsoleExporter, formatTree } from './console';
export type { ConsoleExporterOptions } from './console';
export { createMemoryExporter } from './memory';
export type { MemoryExporter } from './memory';
export { noneExporter } from './none';
