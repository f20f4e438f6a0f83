// `edgetrace/otlp`: the OTLP/HTTP JSON encoder and exporter for code that sends from where it
// runs (a page without the outbox, a worker of your own, tests). Kept out of `edgetrace` so a
// page whose service worker does the sending never downloads them; `edgetrace/server` has the
// same exporter.
export { toOtlpJson, encodeOtlp } from './export/otlp';
export { createOtlpExporter } from './export/http';

export type { OtlpExporterOptions } from './export/http';
export type { OtlpTraceRequest, OtlpResourceSpans, OtlpScopeSpans, OtlpScope, OtlpSpan, OtlpStatus, OtlpEvent, OtlpLink, OtlpKeyValue, OtlpAnyValue } from './export/otlp';
