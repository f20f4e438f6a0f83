import type { AttributeValue, ScoreRecord, SpanRecord } from '../../protocol';
import { wellFormed } from '../../lib/wellFormed';

/** A value, or a promise of it: stores may be synchronous (SQLite in-process) or not (a remote database). */
export type MaybePromise<T> = T | Promise<T>;

/** Filters and paging for {@link TraceStore.listTraces}. Every field is optional. */
export interface TraceQuery {
  /** Traces with at least one span from this `service.name`. */
  service?: string;
  /** The trace's name (its root span's name, or `langfuse.trace.name`), exactly. */
  name?: string;
  /** `user.id`. */
  userId?: string;
  /** `session.id`. */
  sessionId?: string;
  /** `error`: traces with an error span; `ok`: traces without one. */
  status?: 'ok' | 'error';
  /** Traces that started at or after this time (epoch ms). */
  fromMs?: number;
  /** Traces that started before this time (epoch ms). */
  toMs?: number;
  /** Page size, 1 to 500. Default 50. */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
}

/** One row of the trace list. */
export interface TraceSummary {
  traceId: string;
  name: string;
  /** `service.name` of the span that named the trace. */
  service?: string;
  userId?: string;
  sessionId?: string;
  startMs: number;
  endMs: number;
  durationMs: number;
  spanCount: number;
  errorCount: number;
  status: 'ok' | 'error';
  inputTokens: number;
  outputTokens: number;
  /** USD, from `gen_ai.usage.cost` or Langfuse cost details. */
  costUsd: number;
}

/** A page of traces, newest first. */
export interface TraceList {
  traces: TraceSummary[];
  /** Pass as `cursor` for the next page; absent on the last page. */
  nextCursor?: string;
}

/** A span in a trace tree: the record as received, with its duration, service and children. */
export interface SpanNode extends SpanRecord {
  durationMs: number;
  service?: string;
  children: SpanNode[];
}

/** A whole trace: its summary, its spans as a tree (orphans and cycles become roots) and its scores. */
export interface TraceTree {
  summary: TraceSummary;
  roots: SpanNode[];
  scores: ScoreRecord[];
}

/** Time range and scope of {@link TraceStore.stats}. */
export interface StatsQuery {
  /** Spans that started at or after this time (epoch ms). */
  fromMs?: number;
  /** Spans that started before this time (epoch ms). */
  toMs?: number;
  service?: string;
  /** Rows per table, 1 to 500. Default 100. */
  limit?: number;
}

/** Latency and errors of the spans of one name. */
export interface NameStats {
  name: string;
  count: number;
  errors: number;
  errorRate: number;
  /** Nearest-rank percentiles of the duration, in ms. */
  p50Ms: number;
  p95Ms: number;
}

/** Usage and cost of one model. */
export interface ModelStats {
  model: string;
  /** Spans that named this model (generations). */
  count: number;
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
  costUsd: number;
}

/** Span statistics for a time range. */
export interface TraceStats {
  spans: number;
  errors: number;
  errorRate: number;
  byName: NameStats[];
  byModel: ModelStats[];
}

/**
 * The `code` of the RangeError a store's `stats()` throws for a window too large to read at once:
 * the query API answers it with 400, where any other error is the store's own, a 500.
 */
export const STATS_WINDOW_TOO_LARGE = 'ERR_STATS_WINDOW_TOO_LARGE';

/** What {@link TraceStore.prune} removed. */
export interface PruneResult {
  traces: number;
  spans: number;
  scores: number;
}

/**
 * Where the collector keeps spans and scores. The collector runs without one (forwarding only);
 * `openSqliteStore()` gives the embedded SQLite one. Writes are idempotent: a span is keyed by
 * (traceId, spanId) and a score by its id, so re-sent batches change nothing.
 */
export interface TraceStore {
  /** Stores spans in one transaction, all or none. Resolves to how many were new. */
  insertSpans(spans: readonly SpanRecord[]): MaybePromise<number>;
  /** Stores scores (a re-sent id replaces the earlier one). Resolves to how many were written. */
  insertScores(scores: readonly ScoreRecord[]): MaybePromise<number>;
  listTraces(query?: TraceQuery): MaybePromise<TraceList>;
  /** The whole trace, or undefined when no span of it is stored. */
  getTrace(traceId: string): MaybePromise<TraceTree | undefined>;
  stats(query?: StatsQuery): MaybePromise<TraceStats>;
  /**
   * Deletes traces whose last span ended before `beforeMs`, with their spans and scores, and scores
   * of traces never stored dated before it. Resolves to what it removed, or the number of traces.
   */
  prune(beforeMs: number): MaybePromise<PruneResult | number>;
  /**
   * A fault that writes do not show, or undefined: the SQLite store's file deleted or replaced
   * while open, so that what it stores is lost at the next start. `/health` reports it.
   */
  check?(): string | undefined;
  close(): MaybePromise<void>;
}

// --- what the store reads from a span's attributes ---

/** The facts a store indexes, read from the attributes the tracer writes (see core/semconv.ts). */
export interface SpanFacts {
  service?: string;
  userId?: string;
  sessionId?: string;
  traceName?: string;
  observationType?: string;
  model?: string;
  inputTokens?: number;
  outputTokens?: number;
  costUsd?: number;
  isError: boolean;
}

// Well-formed: a lone surrogate would reach SQLite's columns as bytes that are not UTF-8, which
// no filter matches. (The span's detail JSON keeps it, escaped.)
const text = (v: AttributeValue | undefined): string | undefined => (typeof v === 'string' && v !== '' ? wellFormed(v) : undefined);

const count = (v: AttributeValue | undefined): number | undefined => {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v;
  return typeof n === 'number' && Number.isFinite(n) && n >= 0 ? n : undefined;
};

// Langfuse's usage and cost details are JSON text: {"input": 812, "output": 96} / {"total": 0.01}.
const detail = (v: AttributeValue | undefined, ...keys: string[]): number | undefined => {
  if (typeof v !== 'string' || v[0] !== '{') return undefined;
  try {
    const parsed = JSON.parse(v) as Record<string, unknown>;
    for (const k of keys) {
      const n = parsed[k];
      if (typeof n === 'number' && Number.isFinite(n) && n >= 0) return n;
    }
  } catch {
    // Not JSON after all: nothing to read.
  }
  return undefined;
};

/**
 * Reads service, user, session, model, tokens and cost from a span: `gen_ai.*` first, then
 * `langfuse.observation.*` (usage and cost details), then older names.
 */
export const spanFacts = (r: SpanRecord): SpanFacts => {
  const a = r.attrs ?? {};
  const usage = a['langfuse.observation.usage_details'];
  const cost = a['langfuse.observation.cost_details'];
  return {
    service: text(r.resource?.attrs?.['service.name']),
    userId: text(a['user.id']) ?? text(a['langfuse.user.id']),
    sessionId: text(a['session.id']) ?? text(a['langfuse.session.id']),
    traceName: text(a['langfuse.trace.name']),
    observationType: text(a['langfuse.observation.type']),
    model: text(a['langfuse.observation.model.name']) ?? text(a['gen_ai.request.model']) ?? text(a['gen_ai.response.model']),
    inputTokens: count(a['gen_ai.usage.input_tokens']) ?? detail(usage, 'input', 'prompt_tokens', 'input_tokens') ?? count(a['gen_ai.usage.prompt_tokens']),
    outputTokens:
      count(a['gen_ai.usage.output_tokens']) ?? detail(usage, 'output', 'completion_tokens', 'output_tokens') ?? count(a['gen_ai.usage.completion_tokens']),
    costUsd: count(a['gen_ai.usage.cost']) ?? detail(cost, 'total'),
    isError: r.status?.code === 'error',
  };
};

/**
 * Deepest nesting a tree gives: below it, a span starts a new root. Whoever holds an ingest token
 * can post a chain of thousands of spans into any trace, and a tree that deep breaks whatever
 * walks it recursively, `JSON.stringify` of the API's reply first.
 */
export const MAX_TREE_DEPTH = 256;

/**
 * Nests spans under their parents, children ordered by start. A span whose parent is missing,
 * one caught in a parent cycle, and one that would nest deeper than {@link MAX_TREE_DEPTH}
 * becomes a root (its `parentId` still names its parent), so every span appears exactly once.
 */
export const buildTree = (records: readonly SpanRecord[]): SpanNode[] => {
  const sorted = [...records].sort((a, b) => a.startMs - b.startMs);
  const nodes = new Map<string, SpanNode>();
  for (const r of sorted) {
    if (nodes.has(r.spanId)) continue;
    nodes.set(r.spanId, { ...r, durationMs: Math.max(0, r.endMs - r.startMs), service: text(r.resource?.attrs?.['service.name']), children: [] });
  }
  const childrenOf = new Map<string, SpanNode[]>();
  const roots: SpanNode[] = [];
  for (const node of nodes.values()) {
    const p = node.parentId;
    if (p && p !== node.spanId && nodes.has(p)) {
      const list = childrenOf.get(p);
      if (list) list.push(node);
      else childrenOf.set(p, [node]);
    } else roots.push(node);
  }
  const placed = new Set<string>();
  const attach = (root: SpanNode): void => {
    // Iterative: a chain of thousands of spans must not exhaust the stack.
    placed.add(root.spanId);
    const stack: [SpanNode, number][] = [[root, 1]];
    while (stack.length) {
      const [node, depth] = stack.pop()!;
      for (const child of childrenOf.get(node.spanId) ?? []) {
        if (placed.has(child.spanId)) continue;
        placed.add(child.spanId);
        if (depth < MAX_TREE_DEPTH) {
          node.children.push(child);
          stack.push([child, depth + 1]);
        } else roots.push(child);
      }
    }
  };
  // Roots found on the way (spans cut below MAX_TREE_DEPTH) are attached as they are reached.
  let next = 0;
  const attachRoots = (): void => {
    for (; next < roots.length; next++) attach(roots[next]!);
  };
  attachRoots();
  for (const node of nodes.values()) {
    if (placed.has(node.spanId)) continue;
    roots.push(node);
    attachRoots();
  }
  return roots;
};
