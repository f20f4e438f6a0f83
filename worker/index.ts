// TODO(#3): the outbox, the flusher and installTraceWorker() arrive with the delivery work.
export type { SpanRecord, ScoreRecord, TelemetryRecord, Exporter, ExportResult } from '../src/protocol';
