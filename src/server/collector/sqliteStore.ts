import type { ScoreRecord, SpanRecord } from '../../protocol';
import { builtin } from '../builtin';
import { wellFormed } from '../../lib/wellFormed';
import { explainSqliteError, watchDbFile } from './sqliteFile';
import {
  buildTree,
  spanFacts,
  STATS_WINDOW_TOO_LARGE,
  type ModelStats,
  type NameStats,
  type PruneResult,
  type StatsQuery,
  type TraceList,
  type TraceQuery,
  type TraceStats,
  type TraceStore,
  type TraceSummary,
  type TraceTree,
} from './store';

/**
 * The embedded SQLite store: spans, a per-trace summary kept up to date on insert (so the trace
 * list never scans spans, and knows every service a trace touched), resources, and scores. It is
 * the only file that knows the schema.
 *
 * Write cost is mostly pages: every index with random keys (trace ids) dirties a page per trace
 * per batch, and each dirty page is written to the WAL and later copied by the checkpoint. So
 * there are few of them: spans by (trace, span) for idempotency and by start for stats, traces by
 * id and by start. Filters on user, session and service scan traces in start order instead.
 *
 * It talks to any synchronous SQLite binding with `exec`, `prepare` and statements with
 * `run/all/get` and positional `?` parameters: better-sqlite3 (Node; loaded on demand by
 * `openSqliteStore`), `bun:sqlite`, and `node:sqlite` (Node 22.5+, Deno).
 */

/** A prepared statement of a synchronous SQLite binding. */
export interface SqliteStatement {
  run(...params: unknown[]): { changes: number | bigint; lastInsertRowid: number | bigint };
  all(...params: unknown[]): unknown[];
  get(...params: unknown[]): unknown;
}

/** A synchronous SQLite connection (better-sqlite3, `bun:sqlite`, `node:sqlite`). */
export interface SqliteDatabase {
  exec(sql: string): unknown;
  prepare(sql: string): SqliteStatement;
  close(): unknown;
}

/** Options for {@link openSqliteStore}. */
export interface SqliteStoreOptions {
  /** Database file; its folder is created. `:memory:` keeps nothing. Default `.edgetrace/traces.db`. */
  path?: string | undefined;
  /** An open connection to use instead of opening `path` with better-sqlite3. */
  database?: SqliteDatabase | undefined;
}

/** Default database file of the collector. */
export const DEFAULT_DB_PATH = '.edgetrace/traces.db';

// Bump together with a migration in migrate().
const SCHEMA_VERSION = 1;
// A whole trace is returned in one reply; beyond this many spans the rest are left out.
const MAX_TRACE_SPANS = 10_000;
// Nor beyond this many bytes of stored span detail: anyone with the (public) ingest token can
// fill one trace id with large spans, and a reply of gigabytes would take the collector with it.
// The first span always comes, whatever its size.
const MAX_TRACE_BYTES = 32 * 1024 * 1024;
// Scores of one trace in its tree: anyone with the (public) ingest token can add scores to any
// trace id, so the read is bounded like the spans.
const MAX_TRACE_SCORES = 1000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS spans (
  trace_id TEXT NOT NULL,
  span_id TEXT NOT NULL,
  parent_id TEXT,
  name TEXT NOT NULL,
  kind TEXT NOT NULL,
  service TEXT,
  start_ms REAL NOT NULL,
  end_ms REAL NOT NULL,
  duration_ms REAL NOT NULL,
  status TEXT NOT NULL,
  user_id TEXT,
  session_id TEXT,
  observation_type TEXT,
  model TEXT,
  input_tokens REAL,
  output_tokens REAL,
  cost REAL,
  resource_id INTEGER NOT NULL,
  detail TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS spans_id ON spans (trace_id, span_id);
CREATE INDEX IF NOT EXISTS spans_start ON spans (start_ms);
CREATE TABLE IF NOT EXISTS traces (
  trace_id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  name_rank INTEGER NOT NULL,
  service TEXT,
  user_id TEXT,
  session_id TEXT,
  start_ms REAL NOT NULL,
  end_ms REAL NOT NULL,
  span_count INTEGER NOT NULL,
  error_count INTEGER NOT NULL,
  input_tokens REAL NOT NULL,
  output_tokens REAL NOT NULL,
  cost REAL NOT NULL,
  services TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS traces_start ON traces (start_ms DESC, trace_id DESC);
CREATE TABLE IF NOT EXISTS resources (
  id INTEGER PRIMARY KEY,
  json TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS scores (
  id TEXT PRIMARY KEY,
  trace_id TEXT NOT NULL,
  time_ms REAL NOT NULL,
  record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS scores_trace ON scores (trace_id);
`;

/**
 * What a span row keeps as JSON beside its columns: the parts no query filters on. Ids, name,
 * kind, times and status live in columns, and the resource (the same for every span of a
 * tracer) in the resources table, so a row holds about half the bytes of the whole record.
 */
interface SpanDetail {
  attrs: SpanRecord['attrs'];
  flags: number;
  events?: SpanRecord['events'];
  links?: SpanRecord['links'];
  traceState?: string;
  remoteParent?: true;
  dropped?: SpanRecord['dropped'];
  statusMessage?: string;
}

const toDetail = (r: SpanRecord): string => {
  const d: SpanDetail = { attrs: r.attrs, flags: r.flags };
  if (r.events?.length) d.events = r.events;
  if (r.links?.length) d.links = r.links;
  if (r.traceState) d.traceState = r.traceState;
  if (r.remoteParent) d.remoteParent = true;
  if (r.dropped) d.dropped = r.dropped;
  if (r.status?.message) d.statusMessage = r.status.message;
  // JSON has no NaN or Infinity and writes null for them: a span with one is written keeping
  // their OTLP/JSON names ("NaN", "Infinity", "-Infinity"), as text. Nearly every span has none.
  return JSON.stringify(d, hasNonFinite(r) ? nonFiniteAsText : undefined);
};

const isNonFinite = (v: unknown): boolean => typeof v === 'number' && !Number.isFinite(v);
const nonFiniteAsText = (_key: string, v: unknown): unknown => (isNonFinite(v) ? String(v) : v);
const anyNonFinite = (attrs: SpanRecord['attrs'] | undefined): boolean => {
  for (const k in attrs) {
    const v = attrs[k];
    if (isNonFinite(v) || (Array.isArray(v) && v.some(isNonFinite))) return true;
  }
  return false;
};
/** Whether any attribute value of `r`, its events or its links is, or holds, NaN or an infinity. */
const hasNonFinite = (r: SpanRecord): boolean =>
  anyNonFinite(r.attrs) || !!r.events?.some((e) => anyNonFinite(e.attrs)) || !!r.links?.some((l) => anyNonFinite(l.attrs));

interface SpanRow {
  trace_id: string;
  span_id: string;
  parent_id: string | null;
  name: string;
  kind: SpanRecord['kind'];
  start_ms: number;
  end_ms: number;
  status: SpanRecord['status']['code'];
  resource_id: number;
  detail: string;
}

const SPAN_COLUMNS = 'trace_id, span_id, parent_id, name, kind, start_ms, end_ms, status, resource_id, detail';

// How strongly a span names its trace: a span without parent (the real root) beats one carrying
// `langfuse.trace.name` (set by update() on a span that continued a remote trace), which beats a
// span whose parent is remote (a server's request span, while the browser's spans are yet to
// come), which beats any other span. Ranks already stored keep their order (root was 3, trace
// name 2).
const RANK_ROOT = 4;
const RANK_TRACE_NAME = 3;
const RANK_REMOTE_CHILD = 2;
const RANK_ANY = 1;

/** One trace's share of an insert batch. */
interface TraceDelta {
  traceId: string;
  name: string;
  rank: number;
  service: string | null;
  userId: string | null;
  sessionId: string | null;
  startMs: number;
  endMs: number;
  spans: number;
  errors: number;
  inputTokens: number;
  outputTokens: number;
  cost: number;
  services: Set<string>;
}

interface TraceRow {
  trace_id: string;
  name: string;
  service: string | null;
  user_id: string | null;
  session_id: string | null;
  start_ms: number;
  end_ms: number;
  span_count: number;
  error_count: number;
  input_tokens: number;
  output_tokens: number;
  cost: number;
}

const toSummary = (r: TraceRow): TraceSummary => {
  const s: TraceSummary = {
    traceId: r.trace_id,
    name: r.name,
    startMs: r.start_ms,
    endMs: r.end_ms,
    durationMs: Math.max(0, r.end_ms - r.start_ms),
    spanCount: Number(r.span_count),
    errorCount: Number(r.error_count),
    status: Number(r.error_count) > 0 ? 'error' : 'ok',
    inputTokens: Number(r.input_tokens),
    outputTokens: Number(r.output_tokens),
    costUsd: Math.round(Number(r.cost) * 1e12) / 1e12,
  };
  if (r.service) s.service = r.service;
  if (r.user_id) s.userId = r.user_id;
  if (r.session_id) s.sessionId = r.session_id;
  return s;
};

const TRACE_COLUMNS =
  'trace_id, name, service, user_id, session_id, start_ms, end_ms, span_count, error_count, input_tokens, output_tokens, cost';

const clampLimit = (n: number | undefined, dflt: number): number =>
  typeof n === 'number' && Number.isFinite(n) ? Math.min(500, Math.max(1, Math.floor(n))) : dflt;

/** `startMs:traceId` of the last row of a page. */
const CURSOR_RE = /^(\d+(?:\.\d+)?):([0-9a-f]{32})$/;

/** Tells whether `cursor` is one that `listTraces` handed out. */
export const isValidCursor = (cursor: string): boolean => CURSOR_RE.test(cursor);

/**
 * A service name as kept in a trace's ",web,api," list: percent-encoded where it holds `%` or a
 * comma, so no name can break the list or pass for another one (`a,b` and `a_b` stay apart).
 */
const listedService = (service: string): string => service.replace(/%/g, '%25').replace(/,/g, '%2C');

/**
 * Rows deleted per prune transaction. Each transaction's pages go through the WAL, which must have
 * room for them: one transaction that pruned 90,000 spans from a 170 MB file grew it to 74 MB,
 * and on a full disk failed. In chunks it stayed under 6 MB, and the event loop, which SQLite's
 * calls hold, was free between them: about 13 ms per chunk, 100 ms for one that checkpoints.
 */
const PRUNE_CHUNK_ROWS = 500;
/** Size the WAL is cut back to after a checkpoint (see journal_size_limit below). */
const WAL_LIMIT_BYTES = 32 * 1024 * 1024;

/** Spans stats read per query; each chunk holds the event loop for about 20 ms on a month's file. */
const STATS_CHUNK_ROWS = 2000;
/** Most spans one stats request reads: their durations are held in memory while it runs. */
const MAX_STATS_SPANS = 1_000_000;

/** A span's columns that stats read. */
interface StatsRow {
  id: number | bigint;
  start_ms: number;
  name: string;
  duration_ms: number;
  status: string;
  service: string | null;
  model: string | null;
  input_tokens: number | null;
  output_tokens: number | null;
  cost: number | null;
}

/** Orders names by UTF-16 code unit, so equal counts come in a stable order (SQLite's by UTF-8 byte differs past U+E000 only). */
const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Longest a write waits for another connection's lock, in ms; the server stands still meanwhile. */
const BUSY_WAIT_MS = 100;

/**
 * Whether an error is SQLite's "database is locked" (SQLITE_BUSY, or one of its extended codes such
 * as SQLITE_BUSY_SNAPSHOT), in the words of any driver.
 */
const isBusy = (error: unknown): boolean => {
  const e = error as { code?: unknown; errcode?: unknown; message?: unknown } | null;
  return (
    (typeof e?.code === 'string' && e.code.startsWith('SQLITE_BUSY')) ||
    (typeof e?.errcode === 'number' && (e.errcode & 0xff) === 5) ||
    (typeof e?.message === 'string' && /database is locked/i.test(e.message))
  );
};

/** Sets WAL mode and the schema up (see createSqliteStore). */
const setUp = (db: SqliteDatabase): void => {
  // WAL lets readers (the query API) run beside the writer; NORMAL sync is safe with WAL and
  // spares an fsync per transaction. Both are no-ops for :memory:.
  db.exec('PRAGMA journal_mode = WAL');
  db.exec('PRAGMA synchronous = NORMAL');
  // A checkpoint rewinds the WAL without shrinking it: one large transaction would leave a WAL of
  // its size until the process ends. It is cut back to this instead.
  db.exec(`PRAGMA journal_size_limit = ${WAL_LIMIT_BYTES}`);
  const version = Number((db.prepare('PRAGMA user_version').get() as { user_version?: number } | undefined)?.user_version ?? 0);
  if (version > SCHEMA_VERSION) {
    throw new Error(`[edgetrace] openSqliteStore(): the database has schema version ${version}; this edgetrace knows up to ${SCHEMA_VERSION}.`);
  }
  db.exec(SCHEMA);
  if (version < SCHEMA_VERSION) db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`);
  // SQLite's calls are synchronous: while another process (the CLI beside the playground) holds
  // the write lock, a wait stops the whole server, /health included (better-sqlite3 waits up to
  // 5 s). From here on a write waits BUSY_WAIT_MS at most, then fails, and its senders get a 503
  // and send again. Setting up the schema above waits as long as the driver's own timeout.
  db.exec(`PRAGMA busy_timeout = ${BUSY_WAIT_MS}`);
};

/**
 * Creates the store over an open SQLite connection: sets WAL mode (for files), creates or checks
 * the schema, and prepares every statement once. Then sets the connection's busy timeout to
 * 100 ms (a timeout given when it was opened no longer holds): a write finds another writer's
 * lock, waits that long at most, and fails. Throws when the database was written by a newer
 * schema than this version knows.
 *
 * For a file, writes stop (and fail) while its disk has less than 64 MB free, or a tenth of a
 * smaller disk, counting the pages pruning freed inside the file: what is left lets a prune run.
 */
export const createSqliteStore = (db: SqliteDatabase): TraceStore => {
  // '' in memory.
  const file = String((db.prepare('PRAGMA database_list').all() as { name?: unknown; file?: unknown }[]).find((r) => r.name === 'main')?.file ?? '');
  try {
    setUp(db);
  } catch (error) {
    throw explainSqliteError(error, file);
  }
  const watched = file ? watchDbFile(file) : undefined;
  const freelistCount = db.prepare('PRAGMA freelist_count');
  const pageSize = Number((db.prepare('PRAGMA page_size').get() as { page_size?: number } | undefined)?.page_size ?? 4096);
  /** Throws when the disk is too full to write (see createSqliteStore); SQLITE_FULL, as SQLite's own. */
  const checkRoom = (): void => {
    const free = Number((freelistCount.get() as { freelist_count?: number } | undefined)?.freelist_count ?? 0) * pageSize;
    const why = watched?.noRoom(free);
    if (why) throw Object.assign(new Error(why), { code: 'SQLITE_FULL' });
  };

  const insertSpan = db.prepare(
    `INSERT OR IGNORE INTO spans (trace_id, span_id, parent_id, name, kind, service, start_ms, end_ms, duration_ms, status,
       user_id, session_id, observation_type, model, input_tokens, output_tokens, cost, resource_id, detail)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const upsertTrace = db.prepare(
    `INSERT INTO traces (trace_id, name, name_rank, service, user_id, session_id, start_ms, end_ms, span_count, error_count,
       input_tokens, output_tokens, cost, services)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (trace_id) DO UPDATE SET
       name = CASE WHEN excluded.name_rank > traces.name_rank THEN excluded.name ELSE traces.name END,
       service = CASE WHEN excluded.name_rank > traces.name_rank THEN excluded.service ELSE COALESCE(traces.service, excluded.service) END,
       name_rank = max(traces.name_rank, excluded.name_rank),
       user_id = COALESCE(traces.user_id, excluded.user_id),
       session_id = COALESCE(traces.session_id, excluded.session_id),
       start_ms = min(traces.start_ms, excluded.start_ms),
       end_ms = max(traces.end_ms, excluded.end_ms),
       span_count = traces.span_count + excluded.span_count,
       error_count = traces.error_count + excluded.error_count,
       input_tokens = traces.input_tokens + excluded.input_tokens,
       output_tokens = traces.output_tokens + excluded.output_tokens,
       cost = traces.cost + excluded.cost,
       services = CASE WHEN instr(traces.services, excluded.services) > 0 THEN traces.services
                       ELSE traces.services || substr(excluded.services, 2) END`,
  );
  // Only for a batch that brings a trace more than one new service (rare).
  const addService = db.prepare(`UPDATE traces SET services = services || ? || ',' WHERE trace_id = ? AND instr(services, ',' || ? || ',') = 0`);
  // A score given again under its id (the app changed it) replaces it; an older copy arriving
  // late (a retry after the change) does not, nor one for another trace: an app's ids can be
  // guessed, and a sender holding the public ingest token must not move a user's score.
  const upsertScore = db.prepare(
    `INSERT INTO scores (id, trace_id, time_ms, record) VALUES (?, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET time_ms = excluded.time_ms, record = excluded.record
     WHERE excluded.time_ms >= scores.time_ms AND excluded.trace_id = scores.trace_id`,
  );
  const selectTrace = db.prepare(`SELECT ${TRACE_COLUMNS} FROM traces WHERE trace_id = ?`);
  // The ids first, in order with the running size of what comes before each (in bytes: a BLOB's
  // length), so the sort carries no span detail; then the rows of those within the bounds.
  const selectSpans = db.prepare(
    `SELECT ${SPAN_COLUMNS} FROM spans WHERE rowid IN (
       SELECT id FROM (
         SELECT rowid AS id, SUM(length(CAST(detail AS BLOB))) OVER (ORDER BY start_ms, rowid ROWS UNBOUNDED PRECEDING) - length(CAST(detail AS BLOB)) AS before
         FROM spans WHERE trace_id = ? ORDER BY start_ms, rowid LIMIT ${MAX_TRACE_SPANS}
       ) WHERE before < ${MAX_TRACE_BYTES}
     ) ORDER BY start_ms, rowid`,
  );
  const selectResourceId = db.prepare('SELECT id FROM resources WHERE json = ?');
  const insertResource = db.prepare('INSERT INTO resources (json) VALUES (?)');
  const selectResource = db.prepare('SELECT json FROM resources WHERE id = ?');
  // Resources repeat across batches (one per tracer): remembered both ways, a few hundred at most.
  // Rows are never deleted, so an id always names the same resource, also in the caches of other
  // processes sharing the file (the CLI and the playground): pruning them freed ids for SQLite to
  // hand to a different resource, which such a cache still mapped to the old one.
  const resourceIds = new Map<string, number>();
  const resourcesById = new Map<number, SpanRecord['resource']>();
  const MAX_CACHED_RESOURCES = 512;
  const remember = (json: string, id: number): void => {
    if (resourceIds.size >= MAX_CACHED_RESOURCES) resourceIds.clear();
    resourceIds.set(json, id);
  };
  /** The id of a resource, stored on first sight. Call inside a transaction. */
  const resourceIdOf = (json: string): number => {
    let id = resourceIds.get(json);
    if (id !== undefined) return id;
    const row = selectResourceId.get(json) as { id: number } | undefined;
    id = row ? Number(row.id) : Number(insertResource.run(json).lastInsertRowid);
    remember(json, id);
    return id;
  };
  const resourceById = (id: number): SpanRecord['resource'] => {
    let r = resourcesById.get(id);
    if (!r) {
      const row = selectResource.get(id) as { json: string } | undefined;
      r = row ? (JSON.parse(row.json) as SpanRecord['resource']) : { attrs: {}, scope: { name: '' } };
      if (resourcesById.size >= MAX_CACHED_RESOURCES) resourcesById.clear();
      resourcesById.set(id, r);
    }
    return r;
  };
  /** A stored row back as the record that was received. */
  const toRecord = (row: SpanRow): SpanRecord => {
    const d = JSON.parse(row.detail) as SpanDetail;
    const r: SpanRecord = {
      v: 1,
      rec: 'span',
      traceId: row.trace_id,
      spanId: row.span_id,
      flags: d.flags,
      name: row.name,
      kind: row.kind,
      startMs: row.start_ms,
      endMs: row.end_ms,
      attrs: d.attrs,
      events: d.events ?? [],
      links: d.links ?? [],
      status: d.statusMessage ? { code: row.status, message: d.statusMessage } : { code: row.status },
      resource: resourceById(Number(row.resource_id)),
    };
    if (row.parent_id) r.parentId = row.parent_id;
    if (d.remoteParent) r.remoteParent = true;
    if (d.traceState) r.traceState = d.traceState;
    if (d.dropped) r.dropped = d.dropped;
    return r;
  };
  const selectScores = db.prepare(`SELECT record FROM scores WHERE trace_id = ? ORDER BY time_ms LIMIT ${MAX_TRACE_SCORES}`);
  // Oldest first, through the start index: a trace ends after it starts.
  const selectExpired = db.prepare('SELECT trace_id FROM traces WHERE start_ms < ? AND end_ms < ? ORDER BY start_ms LIMIT ?');
  const pruneSpansOf = db.prepare('DELETE FROM spans WHERE rowid IN (SELECT rowid FROM spans WHERE trace_id = ? LIMIT ?)');
  // The scores of pruned traces go with them; a score whose trace was never stored goes by its own
  // time. A kept trace keeps its scores, whatever time their senders gave them.
  const pruneScoresOf = db.prepare('DELETE FROM scores WHERE rowid IN (SELECT rowid FROM scores WHERE trace_id = ? LIMIT ?)');
  const pruneTrace = db.prepare('DELETE FROM traces WHERE trace_id = ?');
  const pruneOrphanScores = db.prepare(
    'DELETE FROM scores WHERE rowid IN (SELECT rowid FROM scores WHERE time_ms < ? AND trace_id NOT IN (SELECT trace_id FROM traces) LIMIT ?)',
  );
  // Statements that depend on which filters are given are prepared once per shape.
  const cache = new Map<string, SqliteStatement>();
  const prepared = (sql: string): SqliteStatement => {
    let st = cache.get(sql);
    if (!st) {
      st = db.prepare(sql);
      cache.set(sql, st);
    }
    return st;
  };

  /**
   * Runs `fn` in one transaction: all of it is written, or none. IMMEDIATE takes the write lock
   * first, so a busy database is waited for (see busy_timeout) at BEGIN; a deferred transaction
   * that read first would fail at its first write without waiting.
   */
  const transaction = <R>(fn: () => R): R => {
    try {
      db.exec('BEGIN IMMEDIATE');
    } catch (error) {
      throw explainSqliteError(error, file);
    }
    try {
      const out = fn();
      db.exec('COMMIT');
      return out;
    } catch (error) {
      try {
        db.exec('ROLLBACK');
      } catch {
        // SQLite may have rolled back already (SQLITE_FULL and friends do).
      }
      // A resource stored in the rolled-back transaction is gone again.
      resourceIds.clear();
      throw explainSqliteError(error, file);
    }
  };

  /** Inserts one batch; call inside a transaction. Resolves to how many spans were new. */
  const insertBatch = (spans: readonly SpanRecord[]): number => {
    const deltas = new Map<string, TraceDelta>();
    // Spans decoded from one request share their resource object: one lookup per request.
    const resourceOf = new Map<SpanRecord['resource'], number>();
    let inserted = 0;
    for (const r of spans) {
      const f = spanFacts(r);
      const spanName = wellFormed(r.name);
      let resourceId = resourceOf.get(r.resource);
      if (resourceId === undefined) {
        resourceId = resourceIdOf(JSON.stringify(r.resource ?? { attrs: {}, scope: { name: '' } }));
        resourceOf.set(r.resource, resourceId);
      }
      const changes = insertSpan.run(
        r.traceId,
        r.spanId,
        r.parentId ?? null,
        spanName,
        r.kind,
        f.service ?? null,
        r.startMs,
        r.endMs,
        Math.max(0, r.endMs - r.startMs),
        r.status?.code ?? 'unset',
        f.userId ?? null,
        f.sessionId ?? null,
        f.observationType ?? null,
        f.model ?? null,
        f.inputTokens ?? null,
        f.outputTokens ?? null,
        f.costUsd ?? null,
        resourceId,
        toDetail(r),
      ).changes;
      // A span seen before changes nothing, so re-sent batches never count twice.
      if (Number(changes) === 0) continue;
      inserted++;
      const rank = !r.parentId ? RANK_ROOT : f.traceName ? RANK_TRACE_NAME : r.remoteParent ? RANK_REMOTE_CHILD : RANK_ANY;
      const name = rank === RANK_TRACE_NAME ? f.traceName! : spanName;
      let d = deltas.get(r.traceId);
      if (!d) {
        d = {
          traceId: r.traceId,
          name,
          rank,
          service: f.service ?? null,
          userId: null,
          sessionId: null,
          startMs: r.startMs,
          endMs: r.endMs,
          spans: 0,
          errors: 0,
          inputTokens: 0,
          outputTokens: 0,
          cost: 0,
          services: new Set(),
        };
        deltas.set(r.traceId, d);
      } else if (rank > d.rank) {
        d.rank = rank;
        d.name = name;
        d.service = f.service ?? null;
      }
      d.userId ??= f.userId ?? null;
      d.sessionId ??= f.sessionId ?? null;
      if (r.startMs < d.startMs) d.startMs = r.startMs;
      if (r.endMs > d.endMs) d.endMs = r.endMs;
      d.spans++;
      if (f.isError) d.errors++;
      d.inputTokens += f.inputTokens ?? 0;
      d.outputTokens += f.outputTokens ?? 0;
      d.cost += f.costUsd ?? 0;
      if (f.service) d.services.add(f.service);
    }
    for (const d of deltas.values()) {
      const [first, ...more] = [...d.services].map(listedService);
      upsertTrace.run(d.traceId, d.name, d.rank, d.service, d.userId, d.sessionId, d.startMs, d.endMs, d.spans, d.errors, d.inputTokens, d.outputTokens, d.cost, first ? `,${first},` : ',');
      for (const s of more) addService.run(s, d.traceId, s);
    }
    return inserted;
  };

  // Group commit: batches that arrive while the event loop is busy (concurrent requests) are
  // written in one transaction on the next turn. Most of a commit's cost is pages (random index
  // pages, the WAL), so four batches per commit cost about a quarter less per span than one.
  type Job = { spans: readonly SpanRecord[]; resolve: (n: number) => void; reject: (e: unknown) => void };
  let queue: Job[] = [];
  let scheduled = false;
  const later: (fn: () => void) => void =
    typeof setImmediate === 'function' ? (fn) => void setImmediate(fn) : (fn) => void setTimeout(fn, 0);
  const commitQueued = (): void => {
    scheduled = false;
    const jobs = queue;
    queue = [];
    if (jobs.length === 0) return;
    try {
      checkRoom();
    } catch (error) {
      for (const j of jobs) j.reject(error);
      return;
    }
    try {
      const counts = transaction(() => jobs.map((j) => insertBatch(j.spans)));
      jobs.forEach((j, i) => j.resolve(counts[i]!));
    } catch (error) {
      // Another writer holds the database: no batch is at fault, and trying each alone would
      // wait once per batch.
      if (jobs.length === 1 || isBusy(error)) {
        for (const j of jobs) j.reject(error);
        return;
      }
      // One batch that cannot be written must not fail the others: each on its own.
      for (const j of jobs) {
        try {
          j.resolve(transaction(() => insertBatch(j.spans)));
        } catch (e) {
          j.reject(e);
        }
      }
    }
  };
  const insertSpans = (spans: readonly SpanRecord[]): Promise<number> =>
    new Promise((resolve, reject) => {
      queue.push({ spans, resolve, reject });
      if (!scheduled) {
        scheduled = true;
        later(commitQueued);
      }
    });

  const insertScores = (scores: readonly ScoreRecord[]): number => {
    checkRoom();
    return transaction(() => {
      for (const s of scores) upsertScore.run(wellFormed(s.id), s.traceId, s.timeMs, JSON.stringify(s));
      return scores.length;
    });
  };

  const listTraces = (q: TraceQuery = {}): TraceList => {
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.service !== undefined) {
      where.push(`instr(t.services, ',' || ? || ',') > 0`);
      params.push(listedService(q.service));
    }
    if (q.name !== undefined) {
      where.push('t.name = ?');
      params.push(q.name);
    }
    if (q.userId !== undefined) {
      where.push('t.user_id = ?');
      params.push(q.userId);
    }
    if (q.sessionId !== undefined) {
      where.push('t.session_id = ?');
      params.push(q.sessionId);
    }
    if (q.status === 'error') where.push('t.error_count > 0');
    else if (q.status === 'ok') where.push('t.error_count = 0');
    if (q.fromMs !== undefined) {
      where.push('t.start_ms >= ?');
      params.push(q.fromMs);
    }
    if (q.toMs !== undefined) {
      where.push('t.start_ms < ?');
      params.push(q.toMs);
    }
    const m = q.cursor ? CURSOR_RE.exec(q.cursor) : null;
    if (m) {
      // Keyset paging: rows strictly after the last one shown, in (start_ms DESC, trace_id DESC) order.
      where.push('(t.start_ms < ? OR (t.start_ms = ? AND t.trace_id < ?))');
      params.push(Number(m[1]), Number(m[1]), m[2]);
    }
    const limit = clampLimit(q.limit, 50);
    const sql =
      `SELECT ${TRACE_COLUMNS} FROM traces t` +
      (where.length ? ` WHERE ${where.join(' AND ')}` : '') +
      ' ORDER BY t.start_ms DESC, t.trace_id DESC LIMIT ?';
    const rows = prepared(sql).all(...params, limit + 1) as TraceRow[];
    const page = rows.slice(0, limit).map(toSummary);
    const out: TraceList = { traces: page };
    const last = page[page.length - 1];
    if (rows.length > limit && last) out.nextCursor = `${last.startMs}:${last.traceId}`;
    return out;
  };

  const getTrace = (traceId: string): TraceTree | undefined => {
    const row = selectTrace.get(traceId) as TraceRow | undefined;
    if (!row) return undefined;
    const spans = (selectSpans.all(traceId) as SpanRow[]).map(toRecord);
    const scores = (selectScores.all(traceId) as { record: string }[]).map((r) => JSON.parse(r.record) as ScoreRecord);
    return { summary: toSummary(row), roots: buildTree(spans), scores };
  };

  // The spans of a stats window in start order, a chunk at a time, after (start, rowid) of the last.
  const selectStatsChunk = db.prepare(
    `SELECT rowid AS id, start_ms, name, duration_ms, status, service, model, input_tokens, output_tokens, cost FROM spans
     WHERE start_ms >= ? AND start_ms < ? AND (start_ms, rowid) > (?, ?) ORDER BY start_ms, rowid LIMIT ${STATS_CHUNK_ROWS}`,
  );
  // Through the start index alone: the service is in the rows, and counting by it would read them all.
  const countWindow = db.prepare('SELECT COUNT(*) AS n FROM spans WHERE start_ms >= ? AND start_ms < ?');
  /** The stats being worked out: one at a time, so that several do not hold their spans in memory together. */
  let statsQueue: Promise<unknown> = Promise.resolve();

  /**
   * Stats read the window's spans STATS_CHUNK_ROWS at a time, leaving the event loop to ingest
   * between chunks: one query sorting a month of spans held the process for seconds. The
   * percentiles are worked out here from the durations, by name.
   */
  const computeStats = async (q: StatsQuery): Promise<TraceStats> => {
    const fromMs = q.fromMs ?? Number.NEGATIVE_INFINITY;
    const toMs = q.toMs ?? Number.POSITIVE_INFINITY;
    const inWindow = Number((countWindow.get(fromMs, toMs) as { n: number }).n);
    if (inWindow > MAX_STATS_SPANS) {
      throw Object.assign(new RangeError(`the window holds ${inWindow} spans; stats read at most ${MAX_STATS_SPANS} at once (they share the process with ingest): narrow "from" and "to"`), {
        code: STATS_WINDOW_TOO_LARGE,
      });
    }
    let spans = 0;
    let errors = 0;
    const names = new Map<string, { durations: number[]; errors: number }>();
    const models = new Map<string, { count: number; input: number; output: number; cost: number }>();
    let after: [number, number] = [Number.NEGATIVE_INFINITY, 0];
    for (;;) {
      // From the cursor's start, not the window's: the index walk stays one chunk long.
      const rows = selectStatsChunk.all(Math.max(fromMs, after[0]), toMs, after[0], after[1]) as StatsRow[];
      for (const r of rows) {
        if (q.service !== undefined && r.service !== q.service) continue;
        const isError = r.status === 'error';
        spans++;
        if (isError) errors++;
        let n = names.get(r.name);
        if (!n) names.set(r.name, (n = { durations: [], errors: 0 }));
        n.durations.push(r.duration_ms);
        if (isError) n.errors++;
        if (r.model !== null) {
          let m = models.get(r.model);
          if (!m) models.set(r.model, (m = { count: 0, input: 0, output: 0, cost: 0 }));
          m.count++;
          m.input += Number(r.input_tokens ?? 0);
          m.output += Number(r.output_tokens ?? 0);
          m.cost += Number(r.cost ?? 0);
        }
      }
      if (rows.length < STATS_CHUNK_ROWS) break;
      const last = rows[rows.length - 1]!;
      after = [last.start_ms, Number(last.id)];
      await new Promise<void>(later);
    }
    const limit = clampLimit(q.limit, 100);
    // Nearest-rank percentiles: the smallest duration whose rank reaches p% of the count.
    const rank = (sorted: number[], p: number): number => sorted[Math.max(0, Math.ceil((sorted.length * p) / 100) - 1)]!;
    const byName = [...names]
      .sort(([a, x], [b, y]) => y.durations.length - x.durations.length || byText(a, b))
      .slice(0, limit)
      .map(([name, n]): NameStats => {
        const sorted = n.durations.sort((a, b) => a - b);
        return { name, count: sorted.length, errors: n.errors, errorRate: n.errors / sorted.length, p50Ms: rank(sorted, 50), p95Ms: rank(sorted, 95) };
      });
    const byModel = [...models]
      .sort(([a, x], [b, y]) => y.cost - x.cost || y.count - x.count || byText(a, b))
      .slice(0, limit)
      .map(
        ([model, m]): ModelStats => ({
          model,
          count: m.count,
          inputTokens: m.input,
          outputTokens: m.output,
          totalTokens: m.input + m.output,
          costUsd: Math.round(m.cost * 1e12) / 1e12,
        }),
      );
    return { spans, errors, errorRate: spans ? errors / spans : 0, byName, byModel };
  };
  const stats = (q: StatsQuery = {}): Promise<TraceStats> => {
    const run = statsQueue.then(() => computeStats(q));
    statsQueue = run.catch(() => undefined);
    return run;
  };

  /**
   * Deletes at most PRUNE_CHUNK_ROWS rows of what `prune` removes, in one transaction; a trace
   * goes once its spans and scores are gone. Resolves to what it deleted, nothing when done.
   */
  const pruneChunk = (beforeMs: number): PruneResult =>
    transaction(() => {
      const removed: PruneResult = { traces: 0, spans: 0, scores: 0 };
      let left = PRUNE_CHUNK_ROWS;
      for (const { trace_id: id } of selectExpired.all(beforeMs, beforeMs, PRUNE_CHUNK_ROWS) as { trace_id: string }[]) {
        const spans = Number(pruneSpansOf.run(id, left).changes);
        removed.spans += spans;
        left -= spans;
        if (left <= 0) return removed;
        const scores = Number(pruneScoresOf.run(id, left).changes);
        removed.scores += scores;
        left -= scores;
        if (left <= 0) return removed;
        pruneTrace.run(id);
        removed.traces++;
        if (--left <= 0) return removed;
      }
      removed.scores += Number(pruneOrphanScores.run(beforeMs, left).changes);
      return removed;
    });

  const pruneAll = async (beforeMs: number): Promise<PruneResult> => {
    const total: PruneResult = { traces: 0, spans: 0, scores: 0 };
    while (!closed) {
      const removed = pruneChunk(beforeMs);
      if (removed.traces + removed.spans + removed.scores === 0) break;
      total.traces += removed.traces;
      total.spans += removed.spans;
      total.scores += removed.scores;
      // The event loop serves requests meanwhile, and the batches they bring are written.
      await new Promise<void>(later);
    }
    // The pages freed are copied into the file, where new rows reuse them; the WAL then starts
    // over from its beginning, cut back to WAL_LIMIT_BYTES.
    if (!closed && total.traces + total.spans + total.scores > 0) db.exec('PRAGMA wal_checkpoint(PASSIVE)');
    return total;
  };
  /** The prune running, which a second call joins rather than running another beside it. */
  let pruning: Promise<PruneResult> | undefined;
  const prune = (beforeMs: number): Promise<PruneResult> =>
    (pruning ??= pruneAll(beforeMs).finally(() => {
      pruning = undefined;
    }));

  let closed = false;
  return {
    insertSpans,
    insertScores,
    listTraces,
    getTrace,
    stats,
    prune,
    check: () => watched?.moved(),
    close() {
      if (closed) return;
      closed = true;
      commitQueued();
      db.close();
    },
  };
};


/**
 * Opens the embedded store: `options.database` if given, else the file at `options.path` with
 * better-sqlite3 (an optional peer dependency, loaded here on first use; its folder is created).
 * Rejects with a clear message when better-sqlite3 is not installed.
 */
export const openSqliteStore = async (options: SqliteStoreOptions = {}): Promise<TraceStore> => {
  if (options.database) return createSqliteStore(options.database);
  const path = options.path ?? DEFAULT_DB_PATH;
  type Ctor = new (path: string) => SqliteDatabase;
  let Database: Ctor;
  try {
    // Required from here, as an import would resolve it (see builtin() for why not import()).
    const node = builtin<{ createRequire(from: string): (id: string) => unknown }>('node:module');
    if (!node) throw new Error('this runtime has no process.getBuiltinModule("node:module")');
    const load = (from: string | undefined): unknown => node.createRequire(from!)('better-sqlite3');
    let mod: unknown;
    try {
      mod = load(import.meta.url);
    } catch (error) {
      // Bundled into the app: esbuild's CommonJS output has no import.meta.url, and webpack
      // writes in the path of the build machine. The app's own folder is where it is installed.
      const cwd = (globalThis as { process?: { cwd?(): string } }).process?.cwd?.();
      if (!cwd) throw error;
      mod = load(`${cwd}/`);
    }
    Database = ((mod as { default?: Ctor }).default ?? mod) as Ctor;
  } catch (error) {
    const missing = (error as { code?: unknown } | null)?.code === 'MODULE_NOT_FOUND';
    throw new Error(
      missing
        ? `[edgetrace] openSqliteStore(): better-sqlite3 is needed for a SQLite file in Node (npm i better-sqlite3), or pass "database" (new Database(path) of better-sqlite3, bun:sqlite, node:sqlite). ${String(error)}`
        : `[edgetrace] openSqliteStore(): better-sqlite3 could not be loaded; pass "database" (new Database(path)) to open it yourself. ${String(error)}`,
      { cause: error },
    );
  }
  try {
    if (path !== ':memory:' && path !== '') {
      const i = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
      if (i > 0) {
        const fs = builtin<{ mkdirSync(p: string, o: { recursive: true }): unknown }>('node:fs');
        fs?.mkdirSync(path.slice(0, i), { recursive: true });
      }
    }
    return createSqliteStore(new Database(path));
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    // better-sqlite3 loads its native module at the first database: installed without its build
    // (an install script not allowed to run, as npm 12 asks) or built for another Node.
    if (NATIVE_MISSING_RE.test(message)) {
      throw new Error(
        `[edgetrace] openSqliteStore(): better-sqlite3 is installed but its native module did not load: its install script did not run (allow it, as npm 12 asks in package.json's "allowScripts", then \`npm rebuild better-sqlite3\`), or it was built for another Node version (\`npm rebuild better-sqlite3\`). ${message.split('\n')[0]!.replace(/\s*Tried:$/, '')}`,
        { cause: error },
      );
    }
    // SQLite's own words ("unable to open database file", "file is not a database") name no file.
    throw new Error(`[edgetrace] openSqliteStore(): cannot open the database at ${JSON.stringify(path)}: ${message}`, { cause: error });
  }
};

/** What better-sqlite3 throws when its native module is not built, or built for another Node. */
const NATIVE_MISSING_RE = /Could not locate the bindings file|NODE_MODULE_VERSION|better_sqlite3\.node/;
