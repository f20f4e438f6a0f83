import type { AttributeValue, Exporter, ScoreRecord, SpanRecord } from '../protocol';
import { checkOptions, fail } from '../config';
import type { AllKeys } from '../lib/checkKeys';

// Attributes worth a glance in a terminal, with the short label they print under.
const KEY_ATTRS: readonly (readonly [string, string])[] = [
  ['langfuse.observation.type', 'type'],
  // The model that answered (a dated version, a router's choice) before the one asked for.
  ['gen_ai.response.model', 'model'],
  ['gen_ai.request.model', 'model'],
  ['langfuse.observation.model.name', 'model'],
  ['gen_ai.usage.input_tokens', 'in'],
  ['gen_ai.usage.output_tokens', 'out'],
  ['http.request.method', 'method'],
  ['http.response.status_code', 'status'],
  ['url.full', 'url'],
  ['user.id', 'user'],
  ['session.id', 'session'],
];

const MAX_VALUE_CHARS = 40;

const short = (v: AttributeValue): string => {
  const s = Array.isArray(v) ? `[${v.join(',')}]` : String(v);
  return s.length > MAX_VALUE_CHARS ? s.slice(0, MAX_VALUE_CHARS - 1) + '…' : s;
};

const line = (s: SpanRecord, depth: number): string => {
  let out = `${'  '.repeat(depth)}${s.name}  ${s.kind}  ${(s.endMs - s.startMs).toFixed(1)} ms`;
  if (s.status?.code === 'error') out += s.status.message ? `  [error: ${s.status.message}]` : '  [error]';
  const parts: string[] = [];
  const seen = new Set<string>();
  for (const [key, label] of KEY_ATTRS) {
    const v = s.attrs?.[key];
    if (v === undefined || seen.has(label)) continue;
    seen.add(label);
    parts.push(`${label}=${short(v)}`);
  }
  if (parts.length) out += `  {${parts.join(' ')}}`;
  return out;
};

const byStart = (a: SpanRecord, b: SpanRecord): number => a.startMs - b.startMs;

/**
 * Renders spans as one indented tree per trace (in first-seen order), children under their
 * parent and ordered by start time. A span whose parent is not in the list starts its own root.
 * Each line reads `name  kind  12.3 ms  [error: msg]  {type=generation model=gpt-4o}`.
 */
export const formatTree = (spans: readonly SpanRecord[]): string => {
  const traces = new Map<string, SpanRecord[]>();
  for (const s of spans) {
    const list = traces.get(s.traceId);
    if (list) list.push(s);
    else traces.set(s.traceId, [s]);
  }
  const lines: string[] = [];
  for (const [traceId, list] of traces) {
    lines.push(`trace ${traceId}`);
    const ids = new Set(list.map((s) => s.spanId));
    const children = new Map<string, SpanRecord[]>();
    const roots: SpanRecord[] = [];
    for (const s of list) {
      if (s.parentId && ids.has(s.parentId) && s.parentId !== s.spanId) {
        const c = children.get(s.parentId);
        if (c) c.push(s);
        else children.set(s.parentId, [s]);
      } else roots.push(s);
    }
    const printed = new Set<SpanRecord>();
    const walk = (s: SpanRecord, depth: number): void => {
      if (printed.has(s)) return;
      printed.add(s);
      lines.push(line(s, depth + 1));
      for (const c of (children.get(s.spanId) ?? []).sort(byStart)) walk(c, depth + 1);
    };
    for (const r of roots.sort(byStart)) walk(r, 0);
    // Spans caught in a parent cycle are reachable from no root; print them rather than lose them.
    for (const s of list) walk(s, 0);
  }
  return lines.join('\n');
};

const scoreLine = (s: ScoreRecord): string =>
  `score ${s.name}=${s.value}  trace ${s.traceId}${s.observationId ? ` span ${s.observationId}` : ''}` +
  (s.comment ? `  "${short(s.comment)}"` : '');

/** Options for {@link createConsoleExporter}. */
export interface ConsoleExporterOptions {
  /** Where each batch's text goes. Default `console.log`. */
  log?: ((text: string) => void) | undefined;
}

const CONSOLE_LIST = ['log'] as const;
const CONSOLE_KEYS: AllKeys<ConsoleExporterOptions, typeof CONSOLE_LIST> = CONSOLE_LIST;

/**
 * Creates an exporter that prints each batch as readable trace trees (see {@link formatTree})
 * followed by its scores. For development; always succeeds.
 */
export const createConsoleExporter = (opts: ConsoleExporterOptions = {}): Exporter => {
  const call = 'createConsoleExporter()';
  checkOptions(call, opts, CONSOLE_KEYS);
  if (opts.log !== undefined && typeof opts.log !== 'function') fail(call, 'log', 'a function', opts.log);
  const log = opts.log ?? ((text: string) => console.log(text));
  return {
    async export(records) {
      try {
        const spans: SpanRecord[] = [];
        const scores: string[] = [];
        for (const r of records) {
          if (r.rec === 'span') spans.push(r);
          else if (r.rec === 'score') scores.push(scoreLine(r));
        }
        const text = [spans.length ? formatTree(spans) : '', ...scores].filter(Boolean).join('\n');
        if (text) log(text);
      } catch {
        // printing is best effort; a broken logger must not fail delivery
      }
      return { ok: true };
    },
    async shutdown() {},
  };
};
