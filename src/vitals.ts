// TODO(#4): the web-vitals bridge arrives with the browser instrumentation work.
export type { SpanRecord, Attributes, AttributeValue } from './protocol';
