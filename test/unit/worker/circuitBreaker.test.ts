import { describe, expect, it } from 'vitest';
import { afterFailure, afterSuccess, CLOSED, mayAttempt } from '../../../worker/circuitBreaker';

const opts = { failures: 3, openMs: 10_000 };

describe('circuit breaker', () => {
  it('opens after the given number of consecutive failures', () => {
    let c = CLOSED;
    c = afterFailure(c, 0, opts);
    c = afterFailure(c, 0, opts);
    expect(c.state).toBe('closed');
    c = afterFailure(c, 100, opts);
    expect(c).toEqual({ state: 'open', failures: 3, until: 10_100 });
  });

  it('blocks while open and lets one probe through when the time is up', () => {
    const open = { state: 'open' as const, failures: 3, until: 10_000 };
    expect(mayAttempt(open, 9_999)).toEqual({ allowed: false, circuit: open });
    const probe = mayAttempt(open, 10_000);
    expect(probe.allowed).toBe(true);
    expect(probe.circuit.state).toBe('half-open');
  });

  it('probes early when forced (back online, or asked)', () => {
    const open = { state: 'open' as const, failures: 3, until: 10_000 };
    expect(mayAttempt(open, 1, true).circuit.state).toBe('half-open');
  });

  it('closes after a successful probe and reopens after a failed one', () => {
    const half = { state: 'half-open' as const, failures: 3, until: 10_000 };
    expect(afterSuccess()).toEqual(CLOSED);
    expect(afterFailure(half, 20_000, opts)).toEqual({ state: 'open', failures: 4, until: 30_000 });
  });

  it('lets everything through while closed', () => {
    expect(mayAttempt(CLOSED, 0)).toEqual({ allowed: true, circuit: CLOSED });
  });
});
