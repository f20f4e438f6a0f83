// Type-level assertions on the page ↔ worker protocol, checked by `tsc --noEmit`; nothing runs.
import { expectTypeOf } from 'vitest';
import type { Remote } from 'comlink';
import type { DeliveryStatus, FlushResult, PackedRecords, TelemetryRecord, WorkerApi } from '../../src/protocol';

declare const api: Remote<WorkerApi>;

// Seen through comlink, every method keeps its parameters and resolves to the same value type,
// so the page can rely on what worker/index.ts exposes.
expectTypeOf(api.enqueue).parameter(0).toEqualTypeOf<TelemetryRecord[] | PackedRecords>();
expectTypeOf(api.enqueue).returns.resolves.toEqualTypeOf<number>();
expectTypeOf<Awaited<ReturnType<typeof api.flushNow>>>().toEqualTypeOf<FlushResult>();
expectTypeOf<Awaited<ReturnType<typeof api.getStatus>>>().toEqualTypeOf<DeliveryStatus>();

// Worker methods return results as values; a FlushResult is a discriminated union on `ok`.
declare const result: FlushResult;
if (result.ok) expectTypeOf(result.sent).toEqualTypeOf<number>();
else expectTypeOf(result.retryable).toEqualTypeOf<boolean>();

// Records crossing postMessage are plain: a span record has no methods to lose.
expectTypeOf<Extract<TelemetryRecord, { rec: 'span' }>['attrs']>().toEqualTypeOf<Record<string, import('../../src/protocol').AttributeValue>>();
