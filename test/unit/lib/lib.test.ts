import { afterEach, describe, expect, it, vi } from 'vitest';
import { safeJson } from '../../../src/lib/safeJson';
import { newId, newSpanId, newTraceId } from '../../../src/lib/ids';
import { epochOf, now, ownClock, resetClock } from '../../../src/lib/now';
import { guard } from '../../../src/lib/guard';
import { internalErrorCount } from '../../../src/lib/reportInternal';
import { SDK_VERSION, sdkLanguage } from '../../../src/lib/sdk';
import { createTracer } from '../../../src/core/tracer';
import { readFileSync } from 'node:fs';

describe('sdk', () => {
  it("is package.json's version", () => {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(SDK_VERSION).toBe(pkg.version);
  });

  it('tells Node-like runtimes from web ones, and says so in every resource', () => {
    expect(sdkLanguage({ process: { versions: { node: '20.19.0' } } })).toBe('nodejs');
    for (const web of [{}, { process: {} }, { process: { versions: {} } }]) expect(sdkLanguage(web)).toBe('webjs');
    const { resource } = createTracer({ serviceName: 'api' }).config;
    expect(resource).toMatchObject({ 'telemetry.sdk.name': 'edgetrace', 'telemetry.sdk.language': 'nodejs', 'telemetry.sdk.version': SDK_VERSION });
  });
});

describe('safeJson', () => {
  it('serialises values that JSON.stringify cannot', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.me = cyclic;
    const err = new TypeError('bad', { cause: new Error('root') });
    const fakeNode = { nodeType: 1, nodeName: 'BUTTON', id: 'send', className: 'btn primary' };
    const out = JSON.parse(
      safeJson({ cyclic, big: 12345678901234567890n, fn: function named() {}, sym: Symbol('s'), err, node: fakeNode, undef: undefined, nan: NaN, date: new Date(0), set: new Set([1]), map: new Map([['k', 2]]), bytes: new Uint8Array(3), floats: new Float64Array([1.5, 2]), buffer: new ArrayBuffer(16) }),
    );
    expect(out).toMatchObject({
      cyclic: { a: 1, me: '[Circular]' },
      big: '12345678901234567890',
      fn: '[Function named]',
      sym: 'Symbol(s)',
      err: { name: 'TypeError', message: 'bad', cause: { name: 'Error', message: 'root' } },
      node: '<button#send.btn.primary>',
      nan: 'NaN',
      date: '1970-01-01T00:00:00.000Z',
      set: [1],
      map: { k: 2 },
      bytes: '[Uint8Array(3)]',
      floats: '[Float64Array(2)]',
      buffer: '[ArrayBuffer(16)]',
    });
    expect('undef' in out).toBe(false);
  });

  it('keeps repeated (non-cyclic) references', () => {
    const shared = { x: 1 };
    expect(safeJson({ a: shared, b: shared })).toBe('{"a":{"x":1},"b":{"x":1}}');
  });

  it('survives throwing getters and toJSON', () => {
    const hostile = {
      get boom() {
        throw new Error('getter');
      },
    };
    expect(() => safeJson(hostile)).not.toThrow();
    expect(safeJson({ toJSON: () => { throw new Error('x'); } })).toBe('"[Unserializable]"');
  });

  it('loses only the value that cannot be read, not its siblings', () => {
    const getter = {
      answer: 'Paris',
      get bad() {
        throw new Error('getter');
      },
      tokens: 12,
    };
    expect(JSON.parse(safeJson(getter))).toEqual({ answer: 'Paris', bad: '[Unserializable]', tokens: 12 });
    const trap = new Proxy({}, { get: () => { throw new Error('trap'); } });
    expect(JSON.parse(safeJson([1, trap, 3]))).toEqual([1, {}, 3]);
    expect(JSON.parse(safeJson({ a: 1, fn: new Proxy(() => 1, { get: () => { throw new Error('trap'); } }) })).a).toBe(1);
    const { proxy, revoke } = Proxy.revocable({}, {});
    revoke();
    expect(JSON.parse(safeJson({ a: 1, revoked: proxy, c: 3 }))).toEqual({ a: 1, revoked: '[Unserializable]', c: 3 });
  });

  it('keeps the fields of errors and the errors of an AggregateError', () => {
    const failure = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED', errno: -111, config: { huge: true } });
    const out = JSON.parse(safeJson(new AggregateError([failure, new TypeError('t')], 'all failed')));
    expect(out).toMatchObject({ name: 'AggregateError', message: 'all failed', errors: [{ message: 'connect ECONNREFUSED', code: 'ECONNREFUSED', errno: -111 }, { name: 'TypeError' }] });
    // Only primitive fields: an HTTP client's error carries its whole request and config.
    expect(out.errors[0].config).toBeUndefined();
  });

  it('unwraps boxed primitives', () => {
    // eslint-disable-next-line no-new-wrappers
    expect(safeJson({ s: new String('hi'), n: new Number(42), b: new Boolean(false) })).toBe('{"s":"hi","n":42,"b":false}');
  });

  it('bounds the whole walk, not only each level', () => {
    const wide = (depth: number): unknown => (depth === 0 ? 1 : Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, wide(depth - 1)])));
    const text = safeJson(wide(3));
    expect(text).toContain('[…]');
    expect(text.length).toBeLessThan(60_000);
  });

  it('bounds depth', () => {
    let deep: Record<string, unknown> = {};
    const root = deep;
    for (let i = 0; i < 50; i++) deep = deep.next = {};
    expect(safeJson(root)).toContain('[Object]');
  });

  it('returns strings unquoted', () => {
    expect(safeJson('plain')).toBe('plain');
  });
});

describe('ids', () => {
  it('makes W3C trace and span ids: lowercase hex of the right length, unique', () => {
    const traces = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const t = newTraceId();
      const s = newSpanId();
      expect(t).toMatch(/^[0-9a-f]{32}$/);
      expect(s).toMatch(/^[0-9a-f]{16}$/);
      traces.add(t);
    }
    expect(traces.size).toBe(2000);
  });

  it('makes url-safe unique ids for other records', () => {
    expect(newId()).toMatch(/^[A-Za-z0-9_-]{21}$/);
    expect(newId()).not.toBe(newId());
  });
});

describe('ownClock', () => {
  it('passes an epoch time through, and falls back to now() for a throw or anything else', () => {
    expect(ownClock(() => 1_700_000_000_000)()).toBe(1_700_000_000_000);
    for (const bad of [() => { throw new Error('clock down'); }, () => Number.NaN, () => 'x' as unknown as number, () => 0, () => -1]) {
      const before = Date.now();
      const t = ownClock(bad)();
      expect(t).toBeGreaterThanOrEqual(before - 1);
      expect(t).toBeLessThanOrEqual(Date.now() + 1);
    }
  });
});

describe('now', () => {
  afterEach(() => {
    vi.unstubAllGlobals();
    vi.restoreAllMocks();
    resetClock();
  });

  it('agrees with the wall clock and has sub-millisecond precision', () => {
    const a = now();
    expect(Math.abs(a - Date.now())).toBeLessThan(1000);
    const samples = Array.from({ length: 20 }, () => now());
    expect(samples.some((t) => !Number.isInteger(t))).toBe(true);
  });

  /** A performance clock that stops while the machine sleeps, beside a wall clock that does not. */
  const machine = () => {
    const ORIGIN = 1_700_000_000_000;
    const m = { mono: 5_000.25, wall: ORIGIN + 5_000 };
    vi.stubGlobal('performance', { timeOrigin: ORIGIN, now: () => m.mono });
    vi.spyOn(Date, 'now').mockImplementation(() => m.wall);
    resetClock();
    return {
      ORIGIN,
      run: (ms: number) => ((m.mono += ms), (m.wall += ms)),
      sleep: (ms: number) => (m.wall += ms),
      stepWall: (ms: number) => (m.wall += ms),
    };
  };

  it('follows the wall clock again after the machine slept, and keeps sub-millisecond steps', () => {
    const clock = machine();
    const before = now();
    expect(before).toBe(clock.ORIGIN + 5_000.25);
    const EIGHT_HOURS = 8 * 3600_000;
    clock.sleep(EIGHT_HOURS);
    clock.run(150);
    // Woken: the first reading after the check interval is on the wall clock, not 8 h behind it.
    const woken = now();
    expect(woken - (before + 150)).toBeGreaterThan(EIGHT_HOURS - 1);
    expect(woken - (before + 150)).toBeLessThan(EIGHT_HOURS + 1);
    clock.run(0.5);
    expect(now() - woken).toBeCloseTo(0.5, 6);
    // A DOM event's timeStamp converts on the same footing.
    expect(epochOf(5_000.25 + 150)).toBeCloseTo(woken, 0);
  });

  it('keeps its own time while the clocks agree within a second', () => {
    const clock = machine();
    const a = now();
    clock.stepWall(400);
    clock.run(200);
    // A 400 ms difference is below DRIFT_MS: durations stay on the monotonic clock alone.
    expect(now() - a).toBeCloseTo(200, 6);
  });
});

describe('guard', () => {
  it('returns the value, or undefined after counting a throw', () => {
    const before = internalErrorCount();
    expect(guard((a: number) => a + 1)(1)).toBe(2);
    expect(guard(() => { throw new Error('x'); })()).toBeUndefined();
    expect(internalErrorCount()).toBe(before + 1);
  });
});

describe('ids across pool refills', () => {
  it('stay well-formed and unique over several refills of the random pool', () => {
    // 65,536 pool bytes hold 8,192 span ids; 30,000 ids cross three refills, some mid-trace-id.
    const seen = new Set<string>();
    for (let i = 0; i < 10_000; i++) {
      const t = newTraceId();
      const s = newSpanId();
      expect(t.length + s.length).toBe(48);
      seen.add(t);
    }
    expect(seen.size).toBe(10_000);
    expect([...seen].every((t) => /^[0-9a-f]{32}$/.test(t))).toBe(true);
  });
});

describe('ids where crypto cannot be read', () => {
  it('still come, from Math.random, when reading crypto throws', async () => {
    vi.resetModules();
    const { newTraceId: trace, newSpanId: span } = await import('../../../src/lib/ids');
    const own = Object.getOwnPropertyDescriptor(globalThis, 'crypto');
    Object.defineProperty(globalThis, 'crypto', {
      configurable: true,
      get() {
        throw new Error('crypto is locked down');
      },
    });
    try {
      const ids = [trace(), span(), trace()];
      expect(ids[0]).toMatch(/^[0-9a-f]{32}$/);
      expect(ids[1]).toMatch(/^[0-9a-f]{16}$/);
      expect(ids[0]).not.toBe(ids[2]);
    } finally {
      if (own) Object.defineProperty(globalThis, 'crypto', own);
    }
  });
});

describe('ids from a source that returns zeros', () => {
  it('skips all-zero bytes, which W3C forbids as an id', async () => {
    vi.resetModules();
    const { newTraceId: trace, newSpanId: span } = await import('../../../src/lib/ids');
    // The first fill is all zeros, later ones have one set byte in 16.
    let fills = 0;
    vi.stubGlobal('crypto', {
      getRandomValues: (a: Uint8Array) => {
        a.fill(0);
        if (fills++ > 0) for (let i = 15; i < a.length; i += 16) a[i] = 0xab;
        return a;
      },
    });
    try {
      const ids = [trace(), span(), span(), trace()];
      expect(ids.map((id) => id.length)).toEqual([32, 16, 16, 32]);
      for (const id of ids) {
        expect(id).toMatch(/^[0-9a-f]+$/);
        expect(id).not.toMatch(/^0+$/);
      }
    } finally {
      vi.unstubAllGlobals();
    }
  });
});

describe('isAbortError', () => {
  it('takes an abort reason the app gave as a cancel: an object as long as it lives, a text for a few seconds', async () => {
    const { isAbortError, noteAbortReason } = await import('../../../src/lib/isAbortError');
    vi.useFakeTimers();
    try {
      const reason = { why: 'stop' };
      expect(isAbortError(reason)).toBe(false);
      noteAbortReason(reason);
      noteAbortReason('stopped by user');
      expect(isAbortError(reason)).toBe(true);
      expect(isAbortError('stopped by user')).toBe(true);
      expect(isAbortError(new DOMException('x', 'AbortError'))).toBe(true);
      // Nothing empty, nothing null: a later `throw null` is no cancel.
      noteAbortReason('');
      noteAbortReason(null);
      expect(isAbortError('')).toBe(false);
      expect(isAbortError(null)).toBe(false);
      // The same text thrown much later, for another reason, is an error again.
      vi.advanceTimersByTime(6000);
      expect(isAbortError('stopped by user')).toBe(false);
      expect(isAbortError(reason)).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });
});
