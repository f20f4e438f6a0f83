import type { Exporter, SpanRecord, TelemetryRecord } from '../../src/protocol';

/** An exporter that accepts at once and keeps what it is given; `spans()` are the span records among them. */
export const recorder = () => {
  const records: TelemetryRecord[] = [];
  const exporter: Exporter = {
    export: async (batch) => {
      records.push(...batch);
      return { ok: true };
    },
  };
  const spans = (): SpanRecord[] => records.filter((r): r is SpanRecord => r.rec === 'span');
  return { exporter, records, spans };
};
