type Clock = () => number;

const fromPerformance = (): Clock | undefined => {
  const perf = (globalThis as { performance?: Performance }).performance;
  if (!perf || typeof perf.now !== 'function') return undefined;
  const origin = perf.timeOrigin;
  // Cloudflare Workers report a zero timeOrigin, and some runtimes freeze performance.now()
  // between I/O; only trust the pair when it agrees with the wall clock to within a minute.
  if (!(origin > 0) || Math.abs(origin + perf.now() - Date.now()) > 60_000) return undefined;
  return () => origin + perf.now();
};

let clock: Clock | undefined;

/**
 * Epoch milliseconds with sub-millisecond precision where the runtime has it
 * (`performance.timeOrigin + performance.now()`), else `Date.now()`.
 * Feature detection waits for the first call, so importing this touches no global.
 */
export const now = (): number => (clock ??= fromPerformance() ?? Date.now)();

/**
 * Whether `ms` can be given as a time: after the epoch and before 2^44 ms (the year 2527), so that
 * its OTLP form, nanoseconds in 64 bits, cannot overflow. A time in µs or ns by mistake is not one.
 */
export const isTime = (ms: unknown): ms is number => typeof ms === 'number' && ms > 0 && ms < 2 ** 44;
