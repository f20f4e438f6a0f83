import type { ExportResult, Exporter, ScoreRecord, SpanRecord, TelemetryRecord } from '../protocol';

/** An exporter that keeps what it receives, for tests. */
export interface MemoryExporter extends Exporter {
  /** Every record exported so far, in order. The same array for the exporter's lifetime. */
  readonly records: TelemetryRecord[];
  /** The span records exported so far. */
  spans(): SpanRecord[];
  /** The score records exported so far. */
  scores(): ScoreRecord[];
  /** Forgets everything received. */
  reset(): void;
  shutdown(): Promise<void>;
}

/** Creates an exporter that stores every record in memory and always succeeds. */
export const createMemoryExporter = (): MemoryExporter => {
  const records: TelemetryRecord[] = [];
  return {
    records,
    export(batch): Promise<ExportResult> {
      for (const r of batch) records.push(r);
      return Promise.resolve({ ok: true });
    },
    spans: () => records.filter((r): r is SpanRecord => r.rec === 'span'),
    scores: () => records.filter((r): r is ScoreRecord => r.rec === 'score'),
    reset() {
      records.length = 0;
    },
    shutdown: () => Promise.resolve(),
  };
};
