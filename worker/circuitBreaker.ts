import type { CircuitState } from '../src/protocol';

/**
 * A circuit breaker as plain data. Closed: requests flow and failures are counted. After
 * `failures` consecutive failures it opens: nothing is sent until `until`. Then it is half-open:
 * one probe goes; success closes it, failure opens it again for another period.
 */
export interface Circuit {
  state: CircuitState;
  /** Consecutive failures seen. */
  failures: number;
  /** Epoch ms when an open circuit lets a probe through. */
  until: number;
}

/** Thresholds of a circuit breaker. */
export interface CircuitOptions {
  /** Consecutive failures that open the circuit. */
  failures: number;
  /** How long it stays open before a probe. */
  openMs: number;
}

/** A closed circuit with no failures. */
export const CLOSED: Circuit = { state: 'closed', failures: 0, until: 0 };

/**
 * Whether a request may start at `nowMs`, and the circuit to keep: an open circuit whose time
 * is up becomes half-open and lets this one request through as the probe. `force` (the network
 * came back, or the app asked) probes an open circuit early.
 */
export const mayAttempt = (c: Circuit, nowMs: number, force = false): { allowed: boolean; circuit: Circuit } => {
  if (c.state !== 'open') return { allowed: true, circuit: c };
  if (force || nowMs >= c.until) return { allowed: true, circuit: { ...c, state: 'half-open' } };
  return { allowed: false, circuit: c };
};

/** The circuit after a request the receiver accepted (or answered for good). */
export const afterSuccess = (): Circuit => CLOSED;

/** The circuit after a failed request: a failed probe, or one failure too many, opens it. */
export const afterFailure = (c: Circuit, nowMs: number, opts: CircuitOptions): Circuit => {
  const failures = c.failures + 1;
  if (c.state === 'half-open' || failures >= opts.failures) return { state: 'open', failures, until: nowMs + opts.openMs };
  return { state: 'closed', failures, until: 0 };
};
