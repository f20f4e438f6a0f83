/**
 * Attribute names the tracer writes. Langfuse reads its own `langfuse.*` names and the OpenTelemetry
 * `gen_ai.*` conventions from any OTLP span, and other receivers keep them as plain attributes,
 * so one record serves every receiver.
 * Names from Langfuse's OpenTelemetry integration and the OTel GenAI semantic conventions.
 */

// --- trace level (on the root span; copied to every span of the trace but input, output and long metadata) ---
export const TRACE_NAME = 'langfuse.trace.name';
export const TRACE_TAGS = 'langfuse.trace.tags';
/** Whether anyone with the trace's link may view it in Langfuse. */
export const TRACE_PUBLIC = 'langfuse.trace.public';
export const TRACE_INPUT = 'langfuse.trace.input';
export const TRACE_OUTPUT = 'langfuse.trace.output';
/** Prefix: `langfuse.trace.metadata.<key>` holds one metadata entry. */
export const TRACE_METADATA = 'langfuse.trace.metadata';
export const USER_ID = 'user.id';
export const SESSION_ID = 'session.id';
export const ENVIRONMENT = 'langfuse.environment';
export const RELEASE = 'langfuse.release';

// --- observation level ---
export const OBSERVATION_TYPE = 'langfuse.observation.type';
export const OBSERVATION_INPUT = 'langfuse.observation.input';
export const OBSERVATION_OUTPUT = 'langfuse.observation.output';
/** Prefix: `langfuse.observation.metadata.<key>`. */
export const OBSERVATION_METADATA = 'langfuse.observation.metadata';
export const OBSERVATION_LEVEL = 'langfuse.observation.level';
export const OBSERVATION_STATUS_MESSAGE = 'langfuse.observation.status_message';
export const COMPLETION_START_TIME = 'langfuse.observation.completion_start_time';
export const MODEL_NAME = 'langfuse.observation.model.name';
export const MODEL_PARAMETERS = 'langfuse.observation.model.parameters';
export const USAGE_DETAILS = 'langfuse.observation.usage_details';
export const COST_DETAILS = 'langfuse.observation.cost_details';
/** The Langfuse prompt a generation used: name and version are set together or not at all. */
export const PROMPT_NAME = 'langfuse.observation.prompt.name';
export const PROMPT_VERSION = 'langfuse.observation.prompt.version';

// --- OpenTelemetry GenAI conventions ---
export const GEN_AI_REQUEST_MODEL = 'gen_ai.request.model';
export const GEN_AI_RESPONSE_MODEL = 'gen_ai.response.model';
export const GEN_AI_OPERATION = 'gen_ai.operation.name';
export const GEN_AI_PROVIDER = 'gen_ai.provider.name';
export const GEN_AI_INPUT_TOKENS = 'gen_ai.usage.input_tokens';
export const GEN_AI_OUTPUT_TOKENS = 'gen_ai.usage.output_tokens';
export const GEN_AI_COST = 'gen_ai.usage.cost';

// --- OpenTelemetry exception event ---
export const EXCEPTION_EVENT = 'exception';
export const EXCEPTION_TYPE = 'exception.type';
export const EXCEPTION_MESSAGE = 'exception.message';
export const EXCEPTION_STACKTRACE = 'exception.stacktrace';

// --- edgetrace diagnostics ---
/** Set on a span that `finish()` ended because its trace finished first. */
export const UNFINISHED = 'edgetrace.unfinished';
/** On a SERVER span: the client went away before the response was complete. */
export const RESPONSE_CANCELLED = 'edgetrace.response.cancelled';
/** The operation was cancelled on purpose (an AbortError): not a failure. */
export const CANCELLED = 'edgetrace.cancelled';
/**
 * On a request span whose context the server does not get: `skipped`, the request carried a
 * trace header another tracer (or the app) set, which went instead; `overridden`, a wrapper of
 * fetch or XHR installed before ours replaced the `traceparent` we set, or added a second one.
 */
export const PROPAGATION = 'edgetrace.propagation';
/** Count of string values shortened by `maxStringLength` on this span. */
export const TRUNCATED = 'edgetrace.truncated_values';
/** Count of items a traced generator function yielded. */
export const YIELDED_ITEMS = 'edgetrace.yielded_items';
/** Count of records dropped before this batch (bounded buffers); set on the first span of a batch. */
export const DROPPED_RECORDS = 'edgetrace.dropped_records';
