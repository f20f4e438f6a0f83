// `edgetrace/otel`: OpenTelemetry API tracers that record edgetrace spans, for libraries that
// trace through `@opentelemetry/api` (the Vercel AI SDK, OpenTelemetry instrumentations). An
// entry of its own, so the script tag build, which carries everything `edgetrace` exports, does
// not carry it for the few pages that would use it.
export { otelTracer, otelTracerProvider } from './core/otel';

export type { OtelTracer, OtelTracerProvider, OtelSpan, OtelSpanContext, OtelSpanOptions, OtelSpanStatus, OtelLink, OtelContext, OtelTraceState, OtelTimeInput } from './core/otel';
