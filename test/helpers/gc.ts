import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/** V8's `gc()`, exposed on first use (tests run without `--expose-gc`). */
const gc = (): void => {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
};

/** The heap in use right after a full collection, in bytes. */
export const heapAfterGc = (): number => {
  gc();
  return getHeapStatistics().used_heap_size;
};

/** Collects garbage so that WeakRef targets nothing holds are gone. */
export const collectGarbage = async (): Promise<void> => {
  // WeakRef targets stay alive until the job that touched them ends.
  for (let i = 0; i < 3; i++) {
    await new Promise((r) => setTimeout(r, 10));
    gc();
  }
};
