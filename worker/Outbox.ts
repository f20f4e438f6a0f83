import { wrap, type DBSchema, type IDBPDatabase, type IDBPObjectStore, type StoreNames } from 'idb';
import type { DeadLetterRecord, DeliveryConfig, TelemetryRecord } from '../src/protocol';
import { stampDropped } from '../src/lib/stampDropped';

/*
 * The outbox: records waiting for delivery, in IndexedDB. This is the only file that imports
 * `idb` or knows a store name. Records are kept in chunks, one per handed-over batch, because one
 * put per record is an order of magnitude slower in Chromium (about 9,000 records/s against
 * 180,000 in chunks, measured with 500-record batches). Chunks are trimmed from the head as
 * records are delivered, dropped or dead-lettered, always in order.
 *
 * The page outbox and the service worker share this database (same origin, same name), so records
 * written by one are delivered by the other; the counters live in the same transactions as the
 * records, so they stay exact across contexts.
 *
 * A factory of closures rather than a class: the worker bundle has a 6 KB budget, and a minifier
 * shortens local variables but not property names.
 */

/** Database name, shared by the service worker and the page fallback of one origin. */
export const DB_NAME = 'edgetrace';
/** Schema version: bump it together with `SpanRecord.v` and add an upgrade step. */
export const DB_VERSION = 1;

const STATS = 'stats';
const TARGET = 'target';

/** One handed-over batch, as stored. */
interface ChunkEntry {
  id?: number;
  /** When the chunk was written, epoch ms (the age bound reads it). */
  atMs: number;
  /** Index, in the batch as first written, of `recs[0]`: trimming moves it forward. */
  base: number;
  recs: TelemetryRecord[];
  /** Estimated bytes of each record (its JSON length), parallel to `recs`. */
  sizes: number[];
}

/** Counters kept next to the records, so they survive restarts and stay exact across tabs. */
export interface OutboxStats {
  /** Records stored. */
  count: number;
  /** Estimated bytes stored. */
  bytes: number;
  /** Dropped records not yet reported on a delivered batch. */
  dropped: number;
  droppedTotal: number;
  delivered: number;
  deadLettered: number;
  rejected: number;
  /**
   * The flusher's waits, so that a restarted context honours them: `[retryAfterUntil,
   * nextAttemptAt]` in epoch ms (see Flusher.ts). Kept with the counters, which every
   * transaction reads and writes anyway.
   */
  hold?: Hold;
}

/** See {@link OutboxStats.hold}. */
export type Hold = [retryAfterUntil: number, nextAttemptAt: number];

interface OutboxDb extends DBSchema {
  chunks: { key: number; value: ChunkEntry };
  dead: { key: number; value: DeadLetterRecord & { id?: number } };
  meta: { key: string; value: OutboxStats | DeliveryConfig };
}

/** Bounds the outbox enforces; read on every write, so they can change at run time. */
export interface OutboxLimits {
  maxRecords: number;
  maxBytes: number;
  maxAgeMs: number;
  maxDeadLetters: number;
}

/**
 * Records taken for one request. Settle them front first, each range starting where the last
 * one ended: settling removes everything stored up to the range's last record.
 */
export interface OutboxBatch {
  records: TelemetryRecord[];
  /** Estimated bytes per record. */
  sizes: number[];
  /** Where each record is stored: chunk id, and index in the chunk as first written. */
  pos: [id: number, abs: number][];
  /** Dropped-record count stamped on `records[droppedAt]` (0 when none). */
  dropped: number;
  droppedAt: number;
}

/** What became of `records[from..to)` of a batch. */
export type Settlement =
  | { delivered: number; rejected?: number }
  | { dead: string; status?: number; atMs: number };

/** The outbox's operations. */
export interface Outbox {
  /**
   * Stores `records` as one chunk in one transaction, then drops the oldest beyond the record and
   * byte bounds. Resolves, once committed, with how many of `records` stayed. On
   * `QuotaExceededError` it evicts the oldest half and tries once more; if that fails too, the
   * batch is dropped and counted.
   */
  append(records: readonly TelemetryRecord[], nowMs: number): Promise<number>;
  /**
   * The oldest records for one request: at most `maxRecords` and `maxBytes` (estimated; a single
   * larger record still comes alone). Records older than `maxAgeMs` are dropped and counted on the
   * way. While drops wait to be reported, the batch's first span carries their count as
   * `edgetrace.dropped_records`. Nothing leaves until settled.
   */
  takeBatch(maxRecords: number, maxBytes: number, nowMs: number): Promise<OutboxBatch>;
  /**
   * Removes `batch.records[from..to)` (and, as the ranges go front first, what was before them),
   * in one transaction with its counters: delivered (after a 2xx) or moved to the dead-letter
   * store (bounded: beyond `maxDeadLetters` the oldest entry goes). Records dropped by a bound
   * while the request was under way are simply gone already.
   */
  settle(batch: OutboxBatch, from: number, to: number, how: Settlement): Promise<void>;
  stats(): Promise<OutboxStats>;
  /** Keeps the flusher's waits (read back through `stats()`). */
  hold(hold: Hold): Promise<void>;
  /** The dead-letter store, oldest first. */
  deadLetters(): Promise<DeadLetterRecord[]>;
  /** Remembers where to send, so a restarted service worker knows before any page talks to it. */
  saveTarget(config: DeliveryConfig): Promise<void>;
  loadTarget(): Promise<DeliveryConfig | undefined>;
  /** Closes the connection; the next call opens it again. */
  close(): void;
}

type Store<N extends StoreNames<OutboxDb>> = IDBPObjectStore<OutboxDb, StoreNames<OutboxDb>[], N, 'readwrite'>;
type Stores = [chunks: Store<'chunks'>, stats: OutboxStats, dead: Store<'dead'>, meta: Store<'meta'>];

const STORES = ['chunks', 'dead', 'meta'] as const;

// An estimate of what a record adds to a request. For a span, its fixed fields (ids, times, kind:
// about 200 characters of OTLP JSON; the resource goes once per request) plus the JSON of what
// varies. Stringifying only that is a fifth of the cost of the whole record, which matters where
// the page itself runs the outbox. A record that cannot be stringified still needs a size; the
// encoder turns it down later and it is dead-lettered then.
const sizeOf = (r: TelemetryRecord): number => {
  try {
    const span = r.rec === 'span';
    return JSON.stringify(span ? [r.name, r.attrs, r.events, r.links] : r).length + (span ? 200 : 0);
  } catch {
    return 1024;
  }
};

/**
 * While drops wait to be reported, the batch's first span carries their count as
 * `edgetrace.dropped_records` (added to any count it already has).
 */
const stamp = (batch: OutboxBatch, stats: OutboxStats): OutboxBatch => {
  // A copy: the stored record stays as it was, in case this batch must be sent again.
  const at = stats.dropped ? stampDropped(batch.records, stats.dropped) : -1;
  if (at >= 0) {
    batch.dropped = stats.dropped;
    batch.droppedAt = at;
  }
  return batch;
};

/** Creates the IndexedDB outbox (see the file comment). */
export const createOutbox = (limits: () => OutboxLimits, dbName = DB_NAME): Outbox => {
  let db: Promise<IDBPDatabase<OutboxDb>> | undefined;
  /** Drops the stats could not take (the quota was full); added on the next write. */
  let lost = 0;

  const close = (): void => {
    db?.then((d) => d.close(), () => undefined);
    db = undefined;
  };

  /**
   * Opens the database, creating its stores the first time. Through `indexedDB.open()` and idb's
   * `wrap()` rather than `openDB()`, whose general options the worker's size budget cannot carry.
   */
  const open = async (): Promise<IDBPDatabase<OutboxDb>> => {
    const request = indexedDB.open(dbName, DB_VERSION);
    // Chunks and dead letters by an increasing id; meta by a name (STATS, TARGET).
    request.onupgradeneeded = () => STORES.map((name, i) => request.result.createObjectStore(name, i < 2 ? { keyPath: 'id', autoIncrement: true } : {}));
    const d = (await wrap(request)) as unknown as IDBPDatabase<OutboxDb>;
    // Another context wants a newer schema: step aside rather than block it.
    d.onversionchange = close;
    // The browser closed the connection (storage cleared, a crash): open it again next time.
    d.onclose = () => (db = undefined);
    return d;
  };

  /**
   * Runs `fn` in one read-write transaction over every store, with the stats read first and
   * written back after; resolves with `fn`'s result once committed. Every operation goes through
   * here, so the service worker bundle needs none of idb's shortcut methods (see vite.config.ts).
   */
  const inTx = async <T>(fn: (...stores: Stores) => Promise<T>): Promise<T> => {
    const d = await (db ??= open().catch((error: unknown) => {
      db = undefined;
      throw error;
    }));
    const tx = d.transaction(STORES, 'readwrite');
    // A request that fails (the quota) aborts the transaction, and idb's `done` then rejects even
    // when we no longer wait for it: handled here, or a page (the page outbox runs there) would
    // see it as an unhandled rejection of its own. The await below still sees the failure.
    tx.done.catch(() => undefined);
    const meta = tx.objectStore('meta');
    const stats: OutboxStats = { count: 0, bytes: 0, dropped: 0, droppedTotal: 0, delivered: 0, deadLettered: 0, rejected: 0, ...((await meta.get(STATS)) as OutboxStats | undefined) };
    const carried = lost;
    stats.dropped += carried;
    stats.droppedTotal += carried;
    lost = 0;
    try {
      const out = await fn(tx.objectStore('chunks'), stats, tx.objectStore('dead'), meta);
      // Estimates can drift by rounding across contexts; an empty outbox holds no bytes.
      if (stats.count <= 0) stats.count = stats.bytes = 0;
      await meta.put(stats, STATS);
      await tx.done;
      return out;
    } catch (error) {
      lost += carried;
      throw error;
    }
  };

  /**
   * Removes stored records from the oldest on, one at a time, while `test(chunk, index in
   * chunk.recs)` holds; takes them off the counts and, unless `settled`, counts them as dropped.
   * Every removal goes through here: bounds, age, quota eviction and settling.
   */
  const removeOldest = async (chunks: Store<'chunks'>, stats: OutboxStats, test: (c: ChunkEntry, k: number) => boolean, settled?: boolean): Promise<number> => {
    let removed = 0;
    for (let cursor = await chunks.openCursor(); cursor && test(cursor.value, 0); cursor = await cursor.continue()) {
      const c = cursor.value;
      let k = 0;
      while (k < c.recs.length && test(c, k)) {
        stats.count--;
        stats.bytes -= c.sizes[k++]!;
      }
      await (k < c.recs.length ? chunks.put({ ...c, base: c.base + k, recs: c.recs.slice(k), sizes: c.sizes.slice(k) }) : chunks.delete(c.id!));
      removed += k;
    }
    if (!settled) {
      stats.dropped += removed;
      stats.droppedTotal += removed;
    }
    return removed;
  };

  return {
    async append(records, nowMs) {
      const recs = records.slice();
      const sizes = recs.map(sizeOf);
      for (let attempt = 0; recs.length; attempt++) {
        try {
          return await inTx(async (chunks, stats) => {
            const before = stats.count;
            await chunks.add({ atMs: nowMs, base: 0, recs, sizes });
            stats.count += recs.length;
            for (const s of sizes) stats.bytes += s;
            const { maxRecords, maxBytes } = limits();
            const dropped = await removeOldest(chunks, stats, () => stats.count > maxRecords || stats.bytes > maxBytes);
            // The newest go last: only what did not fit of this batch counts against it.
            return recs.length - Math.max(0, dropped - before);
          });
        } catch (error) {
          if ((error as Error | null)?.name !== 'QuotaExceededError') throw error;
          if (attempt) {
            lost += recs.length;
            // Best effort: with the quota still full this may fail too, and `lost` then waits.
            await inTx(async () => 0).catch(() => 0);
            return 0;
          }
          await inTx((chunks, stats) => {
            const keep = stats.count >> 1;
            return removeOldest(chunks, stats, () => stats.count > keep);
          });
        }
      }
      return 0;
    },

    takeBatch: (maxRecords, maxBytes, nowMs) =>
      inTx(async (chunks, stats) => {
        const cutoff = nowMs - limits().maxAgeMs;
        await removeOldest(chunks, stats, (c) => c.atMs < cutoff);
        const batch: OutboxBatch = { records: [], sizes: [], pos: [], dropped: 0, droppedAt: -1 };
        const { records, sizes } = batch;
        let bytes = 0;
        for (let cursor = await chunks.openCursor(); cursor; cursor = await cursor.continue()) {
          const c = cursor.value;
          for (let i = 0; i < c.recs.length; i++) {
            const size = c.sizes[i]!;
            if (records.length >= maxRecords || (records.length && bytes + size > maxBytes)) return stamp(batch, stats);
            records.push(c.recs[i]!);
            sizes.push(size);
            batch.pos.push([c.id!, c.base + i]);
            bytes += size;
          }
        }
        return stamp(batch, stats);
      }),

    settle: (batch, from, to, how) =>
      inTx(async (chunks, stats, dead) => {
        const [id, abs] = batch.pos[to - 1]!;
        // Records a bound evicted while they were in flight were counted as dropped; they reached
        // the receiver after all.
        const gone = to - from - (await removeOldest(chunks, stats, (c, k) => c.id! < id || (c.id === id && c.base + k <= abs), true));
        const refused = 'dead' in how;
        // The count this batch carried was reported only if the receiver took the batch.
        const reported = !refused && batch.droppedAt >= from && batch.droppedAt < to ? batch.dropped : 0;
        stats.dropped = Math.max(0, stats.dropped - gone - reported);
        stats.droppedTotal -= gone;
        if (refused) {
          // A status that is undefined (a refusal without one) is stored as such: no test for it.
          await dead.add({ atMs: how.atMs, reason: how.dead, status: how.status, records: batch.records.slice(from, to) });
          stats.deadLettered += to - from;
          // The oldest entries beyond the bound go, in one ranged delete.
          const keys = await dead.getAllKeys();
          const over = keys.length - limits().maxDeadLetters;
          if (over > 0) await dead.delete(IDBKeyRange.upperBound(keys[over - 1]!));
        } else {
          // Spans the receiver turned down (OTLP partial success) count as rejected, not delivered.
          const rejected = how.rejected ?? 0;
          stats.delivered += how.delivered - rejected;
          stats.rejected += rejected;
        }
      }),

    stats: () => inTx(async (_c, stats) => ({ ...stats })),
    hold: (hold) => inTx(async (_c, stats) => void (stats.hold = hold)),
    deadLetters: () => inTx(async (_c, _s, dead) => (await dead.getAll()).map(({ id: _id, ...rest }) => rest)),
    saveTarget: (config) => inTx(async (_c, _s, _d, meta) => void (await meta.put(config, TARGET))),
    loadTarget: () => inTx(async (_c, _s, _d, meta) => (await meta.get(TARGET)) as DeliveryConfig | undefined),
    close,
  };
};
