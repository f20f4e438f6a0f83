import type { TelemetryRecord } from '../protocol';

/**
 * The id a receiver knows a record by: a span's trace and span ids, a score's id and time (the
 * app scores again with the same id to replace a score: that is another record, a retry is not).
 */
export const recordId = (r: TelemetryRecord): string => (r.rec === 'span' ? r.traceId + r.spanId : `${r.id}@${r.timeMs}`);

/**
 * Most ids remembered of records a receiver already took: about a hundred full batches, a few MB.
 * Past it the oldest go first, the ones least likely to be sent again.
 */
const MAX_TAKEN = 50_000;

/** What one receiver recently took, so that a batch sent again leaves it out. */
export interface TakenIds {
  /** The records of `batch` the receiver has not taken yet. */
  fresh<R extends TelemetryRecord>(batch: readonly R[]): readonly R[];
  /** Whether the receiver took the record of this {@link recordId}. */
  has(id: string): boolean;
  /**
   * After an attempt at `batch`: when it comes back (`again`), remembers that the receiver took
   * `took`; when it is done, forgets all of it.
   */
  settle(batch: readonly TelemetryRecord[], took: readonly TelemetryRecord[], again: boolean): void;
  /** `settle(batch, took, true)` for a caller that has the ids of both already. */
  remember(batchIds: readonly string[], tookIds: readonly string[]): void;
}

/**
 * Memory of the records a receiver took, so that a batch sent again leaves them out: receivers
 * such as Langfuse v4 keep every copy they get. The Langfuse exporter keeps what it took from a
 * batch that failed as a whole and will be retried (its spans, when its scores failed) until that
 * batch is done; the collector keeps all of it (`again` every time), since a sender that gave up
 * waiting sends again what a forward target took.
 */
export const takenIds = (): TakenIds => {
  const ids = new Set<string>();
  const remember = (batchIds: readonly string[], tookIds: readonly string[]): void => {
    // Ids this batch had taken before move to the newest end with the ones it took now: the
    // bound lets go of batches no longer retried, not of the one under way.
    for (const id of batchIds) if (ids.delete(id)) ids.add(id);
    for (const id of tookIds) ids.add(id);
    // A Set iterates in insertion order, and deleting what was visited is safe.
    for (const id of ids) {
      if (ids.size <= MAX_TAKEN) break;
      ids.delete(id);
    }
  };
  return {
    // Nearly always nothing is remembered: the batch is then passed on as it is.
    fresh: (batch) => (ids.size ? batch.filter((r) => !ids.has(recordId(r))) : batch),
    has: (id) => ids.has(id),
    settle(batch, took, again) {
      if (again) remember(batch.map(recordId), took.map(recordId));
      else if (ids.size) for (const r of batch) ids.delete(recordId(r));
    },
    remember,
  };
};
