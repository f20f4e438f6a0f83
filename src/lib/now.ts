import { reportInternal } from './reportInternal';

type Clock = () => number;

// performance.now() stops while the machine sleeps (macOS, Linux) and never catches up, so
// `timeOrigin + now()` falls behind the wall clock by every sleep: a laptop woken the next morning
// stamps its spans with last night's date. The clock compares itself with Date.now() at most every
// CHECK_MS and takes a new origin when the two are more than DRIFT_MS apart. NTP slews the wall
// clock by milliseconds a day, far below that; a step of the wall clock is followed the same way.
const CHECK_MS = 100;
const DRIFT_MS = 1000;

/** Epoch ms at performance.now() = 0: `timeOrigin`, until a check finds the clocks apart. */
let origin = 0;
let checkAt = 0;

const fromPerformance = (): Clock | undefined => {
  const perf = (globalThis as { performance?: Performance }).performance;
  if (!perf || typeof perf.now !== 'function') return undefined;
  origin = perf.timeOrigin;
  // Cloudflare Workers report a zero timeOrigin, and some runtimes freeze performance.now()
  // between I/O; only trust the pair when it agrees with the wall clock to within a minute.
  if (!(origin > 0) || Math.abs(origin + perf.now() - Date.now()) > 60_000) return undefined;
  return () => {
    const t = perf.now();
    if (t >= checkAt) {
      checkAt = t + CHECK_MS;
      const wall = Date.now();
      if (Math.abs(origin + t - wall) > DRIFT_MS) origin = wall - t;
    }
    return origin + t;
  };
};

let clock: Clock | undefined;

/**
 * Epoch milliseconds with sub-millisecond precision where the runtime has it
 * (`performance.timeOrigin + performance.now()`, kept in step with the wall clock across sleeps),
 * else `Date.now()`. Feature detection waits for the first call, so importing this touches no global.
 */
export const now = (): number => (clock ??= fromPerformance() ?? Date.now)();

/**
 * Epoch milliseconds of a recent time on the performance clock (a DOM event's `timeStamp`), on
 * the same footing as {@link now}; undefined where `now()` does not read the performance clock.
 */
export const epochOf = (perfMs: number): number | undefined => {
  now();
  return origin > 0 && clock !== Date.now ? origin + perfMs : undefined;
};

/** @internal For tests: forget the clock, so the next call detects it again. */
export const resetClock = (): void => {
  clock = undefined;
  origin = checkAt = 0;
};

/**
 * Whether `ms` can be given as a time: after the epoch and before 2^44 ms (the year 2527), so that
 * its OTLP form, nanoseconds in 64 bits, cannot overflow. A time in µs or ns by mistake is not one.
 */
export const isTime = (ms: unknown): ms is number => typeof ms === 'number' && ms > 0 && ms < 2 ** 44;

/** An app's `now` option, where a throw or a value that is no epoch time falls back to {@link now}. */
export const ownClock =
  (given: () => number) =>
  (): number => {
    try {
      const t = given();
      if (isTime(t)) return t;
    } catch (error) {
      reportInternal(error);
    }
    return now();
  };
