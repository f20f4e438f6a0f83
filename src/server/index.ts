// The `edgetrace/server` entry: request middleware, exporters, the env factory and the collector.
// Named re-exports only.
export { withTracing, withMessage, requestWaitUntil } from './withTracing';
export { createServerTracer } from './serverTracer';
export { requestProcessor } from './requestProcessor';
export { serverContext, requestSpan, requestTrace } from './scope';
export { setRoute } from './route';
export { tracedFetch, tracedFetcher, instrumentServerFetch } from './fetch';
export { instrumentNodeHttp } from './nodeHttp';
export { toNodeListener } from './node';
export { withNodeTracing } from './nodeTracing';
export { fromEnv, parseOtlpHeaders, otlpTracesUrl } from './fromEnv';
export { createJsonlExporter } from './jsonl';
export { createCollector } from './collector/createCollector';
export { CollectorError } from './collector/collectorError';
export { decodeOtlp } from './collector/decodeOtlp';
export { decodeScores } from './collector/decodeScores';
export { openSqliteStore, createSqliteStore, DEFAULT_DB_PATH } from './collector/sqliteStore';
export { createRateLimiter } from './collector/rateLimit';
export { createOtlpExporter } from '../export/http';
export { createLangfuseExporter } from '../export/langfuse';
export { createConsoleExporter } from '../export/console';
export { createMemoryExporter } from '../export/memory';
export { noneExporter } from '../export/none';
export { alsContext } from '../core/context';

export type { WithTracingOptions, ServerTracingOptions, ResponseHeader, TracedHandler, TracedHandlers, TracedEventHandler, WorkerHandlers, QueueMessageLike } from './withTracing';
export type { NodeTracingOptions } from './nodeTracing';
export type { ServerTracerOptions } from './serverTracer';
export type { RequestProcessor, RequestProcessorOptions } from './requestProcessor';
export type { RequestScope } from './scope';
export type { NodeContext, NodeListener, NodeListenerOptions, NodeRequestLike, NodeResponseLike } from './node';
export type { EnvExporter, FromEnvOptions, TracingMode } from './fromEnv';
export type { JsonlExporterOptions } from './jsonl';
export type { WaitUntil } from './waitUntil';
export type { Collector, CollectorHealth, CollectorOptions, ForwardHealth, PruneReport } from './collector/createCollector';
export type { DecodeLimits, DecodeResult } from './collector/decodeOtlp';
export type { ScoreDecodeResult } from './collector/decodeScores';
export type { SqliteDatabase, SqliteStatement, SqliteStoreOptions } from './collector/sqliteStore';
export type { RateLimiter, RateLimitOptions, RateDecision } from './collector/rateLimit';
export type {
  TraceStore,
  TraceQuery,
  TraceList,
  TraceSummary,
  TraceTree,
  SpanNode,
  StatsQuery,
  TraceStats,
  NameStats,
  ModelStats,
  PruneResult,
  MaybePromise,
} from './collector/store';
export type { Compression, OtlpExporterOptions } from '../export/http';
export type { LangfuseExporterOptions } from '../export/langfuse';
export type { ConsoleExporterOptions } from '../export/console';
export type { MemoryExporter } from '../export/memory';
export type { ContextManager, AsyncLocalStorageLike } from '../core/context';
export type { Tracer } from '../core/tracer';
export type { Trace } from '../core/trace';
export type { Span } from '../core/span';
export type { Exporter, ExportResult, SpanRecord, ScoreRecord, TelemetryRecord } from '../protocol';
