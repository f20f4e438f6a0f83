import { describe, it, expect } from 'vitest';
import type { HeaderCarrier, SpanContext } from '../../../src/propagation/index';
import {
  FIELDS,
  FLAG_RANDOM,
  FLAG_SAMPLED,
  extract,
  inject,
  readHeader,
  writeHeader,
} from '../../../src/propagation/index';

const TRACE = '12345678901234567890123456789012';
const SPAN = '1234567890123456';
const TP = `00-${TRACE}-${SPAN}-01`;
const CTX: SpanContext = { traceId: TRACE, spanId: SPAN, flags: 1 };

/** Collects what `inject` writes through a setter, in order. */
const capture = (ctx: SpanContext | undefined, baggage?: Parameters<typeof inject>[2]) => {
  const written: Array<[string, string]> = [];
  inject(ctx, (name, value) => written.push([name, value]), baggage);
  return written;
};

describe('extract: traceparent', () => {
  it('reads a valid traceparent from a plain object as a remote context', () => {
    expect(extract({ traceparent: TP })).toEqual({
      context: { traceId: TRACE, spanId: SPAN, flags: 1, isRemote: true },
    });
  });

  it('reads from fetch Headers', () => {
    expect(extract(new Headers({ traceparent: TP })).context?.traceId).toBe(TRACE);
  });

  it('reads from any object with get()', () => {
    const headers = new Map([['traceparent', TP]]);
    expect(extract(headers as unknown as HeaderCarrier).context?.spanId).toBe(SPAN);
  });

  it.each([['TraceParent'], ['TRACEPARENT'], ['TrAcEpArEnT']])('accepts the header name spelled %s', (name) => {
    expect(extract({ [name]: TP }).context?.traceId).toBe(TRACE);
    expect(extract(new Headers([[name, TP]])).context?.traceId).toBe(TRACE);
  });

  it.each([['trace-parent'], ['trace.parent'], ['traceparent-'], ['x-traceparent']])(
    'ignores the wrong header name %s',
    (name) => {
      expect(extract({ [name]: TP })).toEqual({});
    },
  );

  it('rejects two traceparent headers joined by fetch Headers', () => {
    const headers = new Headers();
    headers.append('traceparent', `00-${TRACE.replace(/2$/, '1')}-${SPAN}-01`);
    headers.append('traceparent', TP);
    expect(headers.get('traceparent')).toContain(', ');
    expect(extract(headers).context).toBeUndefined();
  });

  it('rejects two traceparent headers given as an array or as two spellings', () => {
    expect(extract({ traceparent: [TP, TP] }).context).toBeUndefined();
    expect(extract({ traceparent: TP, TraceParent: TP }).context).toBeUndefined();
  });

  it('starts over on an invalid or all-zero traceparent', () => {
    expect(extract({ traceparent: `00-${'0'.repeat(32)}-${SPAN}-01` }).context).toBeUndefined();
    expect(extract({ traceparent: `00-${TRACE}-${'0'.repeat(16)}-01` }).context).toBeUndefined();
    expect(extract({ traceparent: 'invalid!' }).context).toBeUndefined();
  });

  it.each([
    ['a number', () => 42],
    ['an empty array', () => []],
    ['undefined', () => undefined],
    ['null', () => null],
    ['an object', () => ({ traceparent: TP })],
    ['a function', () => () => TP],
  ])('returns nothing, without throwing, when the getter returns %s', (_, value) => {
    const carrier = { get: value } as unknown as HeaderCarrier;
    expect(extract(carrier)).toEqual({});
  });

  it('returns nothing when the getter throws', () => {
    const carrier = {
      get() {
        throw new Error('boom');
      },
    };
    expect(extract(carrier)).toEqual({});
  });

  it('returns nothing for a Proxy that throws on every access', () => {
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error('boom');
        },
        ownKeys() {
          throw new Error('boom');
        },
      },
    );
    expect(extract(hostile as HeaderCarrier)).toEqual({});
  });

  it.each([
    ['null', null],
    ['undefined', undefined],
    ['a number', 7],
    ['a string', TP],
    ['an array', [TP]],
  ])('returns nothing for a %s carrier', (_, carrier) => {
    expect(extract(carrier as unknown as HeaderCarrier)).toEqual({});
  });

  it('ignores non-string values in a plain object', () => {
    expect(extract({ traceparent: 5 } as unknown as HeaderCarrier)).toEqual({});
    expect(extract({ traceparent: [5] } as unknown as HeaderCarrier)).toEqual({});
  });
});

describe('extract: tracestate', () => {
  it('puts a valid tracestate on the context', () => {
    expect(extract({ traceparent: TP, tracestate: 'foo=1,bar=2' }).context?.traceState).toBe('foo=1,bar=2');
  });

  it('drops tracestate when there is no traceparent', () => {
    expect(extract({ tracestate: 'foo=1' })).toEqual({});
  });

  it('drops tracestate when traceparent is invalid', () => {
    expect(extract({ traceparent: `ff-${TRACE}-${SPAN}-01`, tracestate: 'foo=1' })).toEqual({});
  });

  it.each([['TraceState'], ['TRACESTATE'], ['TrAcEsTaTe']])('accepts the header name spelled %s', (name) => {
    expect(extract({ traceparent: TP, [name]: 'foo=1' }).context?.traceState).toBe('foo=1');
  });

  it.each([['trace-state'], ['trace.state']])('ignores the wrong header name %s', (name) => {
    const { context } = extract({ traceparent: TP, [name]: 'foo=1' });
    expect(context?.traceId).toBe(TRACE);
    expect(context?.traceState).toBeUndefined();
  });

  it('joins several tracestate headers in order', () => {
    const headers = new Headers([['traceparent', TP]]);
    headers.append('tracestate', 'foo=1,bar=2');
    headers.append('tracestate', 'rojo=1,congo=2');
    headers.append('tracestate', 'baz=3');
    expect(extract(headers).context?.traceState).toBe('foo=1,bar=2,rojo=1,congo=2,baz=3');
    expect(extract({ traceparent: TP, tracestate: ['foo=1', 'bar=2'] }).context?.traceState).toBe('foo=1,bar=2');
  });

  it('accepts an empty tracestate header, alone or with others', () => {
    expect(extract({ traceparent: TP, tracestate: '' }).context).toEqual({
      traceId: TRACE,
      spanId: SPAN,
      flags: 1,
      isRemote: true,
    });
    const headers = new Headers([['traceparent', TP]]);
    headers.append('tracestate', '');
    headers.append('tracestate', 'foo=1');
    expect(extract(headers).context?.traceState).toBe('foo=1');
  });

  it('keeps the context but drops an invalid tracestate', () => {
    const { context } = extract({ traceparent: TP, tracestate: 'foo=1,@bar=2' });
    expect(context?.traceId).toBe(TRACE);
    expect(context?.traceState).toBeUndefined();
  });
});

describe('extract: baggage', () => {
  it('reads baggage with or without a trace context', () => {
    expect(extract({ baggage: 'a=1' })).toEqual({ baggage: { a: { value: '1' } } });
    expect(extract({ traceparent: TP, Baggage: 'a=%20' }).baggage).toEqual({ a: { value: ' ' } });
  });

  it('joins several baggage headers', () => {
    const headers = new Headers();
    headers.append('baggage', 'a=1');
    headers.append('baggage', 'b=2;p');
    expect(extract(headers).baggage).toEqual({ a: { value: '1' }, b: { value: '2', metadata: 'p' } });
  });

  it('omits baggage when nothing valid came in', () => {
    expect(extract({ baggage: 'garbage' })).toEqual({});
  });
});

describe('inject', () => {
  it('writes a lowercase version 00 traceparent', () => {
    expect(capture(CTX)).toEqual([['traceparent', TP]]);
  });

  it.each([
    [2, '02'],
    [3, '03'],
    [0, '00'],
    [0x1f, '1f'],
  ])('carries flags %i as "%s"', (flags, hex) => {
    expect(capture({ ...CTX, flags })).toEqual([['traceparent', `00-${TRACE}-${SPAN}-${hex}`]]);
  });

  it('keeps the trace-id and the random flag when a new span makes the outgoing call', () => {
    const incoming = extract({ traceparent: `00-${TRACE}-${SPAN}-03` }).context!;
    const child: SpanContext = { ...incoming, spanId: 'abcdef0123456789' };
    const [[, header] = []] = capture(child);
    expect(header).toBe(`00-${TRACE}-abcdef0123456789-03`);
    const flags = parseInt(header!.slice(-2), 16);
    expect(flags & FLAG_RANDOM).toBe(FLAG_RANDOM);
    expect(flags & FLAG_SAMPLED).toBe(FLAG_SAMPLED);
  });

  it('writes 00 and clears reserved bits when passing on a higher version', () => {
    const incoming = extract({ traceparent: `cc-${TRACE}-${SPAN}-fe-future` }).context;
    expect(capture(incoming)).toEqual([['traceparent', `00-${TRACE}-${SPAN}-02`]]);
  });

  it('writes tracestate only when there is one', () => {
    expect(capture({ ...CTX, traceState: 'foo=1' })).toEqual([
      ['traceparent', TP],
      ['tracestate', 'foo=1'],
    ]);
    expect(capture({ ...CTX, traceState: '' })).toEqual([['traceparent', TP]]);
    expect(capture({ ...CTX, traceState: ' , ' })).toEqual([['traceparent', TP]]);
  });

  it('never passes on a malformed tracestate', () => {
    expect(capture({ ...CTX, traceState: 'FOO=1' })).toEqual([['traceparent', TP]]);
    expect(capture({ ...CTX, traceState: 'foo=1,bar' })).toEqual([['traceparent', TP]]);
  });

  it.each([
    ['no context', undefined],
    ['an all-zero trace-id', { ...CTX, traceId: '0'.repeat(32) }],
    ['an all-zero span-id', { ...CTX, spanId: '0'.repeat(16) }],
    ['an uppercase trace-id', { ...CTX, traceId: TRACE.replace('1', 'A') }],
    ['a short span-id', { ...CTX, spanId: '123' }],
    ['a non-string trace-id', { ...CTX, traceId: 1 as unknown as string }],
  ])('writes no trace headers for %s', (_, ctx) => {
    expect(capture(ctx, undefined)).toEqual([]);
    expect(capture(ctx && { ...ctx, traceState: 'foo=1' })).toEqual([]);
  });

  it('writes baggage only when it has members', () => {
    expect(capture(CTX, { a: { value: 'x y' } })).toEqual([
      ['traceparent', TP],
      ['baggage', 'a=x%20y'],
    ]);
    expect(capture(CTX, {})).toEqual([['traceparent', TP]]);
  });

  it('writes baggage without a trace context', () => {
    expect(capture(undefined, { a: { value: '1' } })).toEqual([['baggage', 'a=1']]);
  });

  it('writes into fetch Headers', () => {
    const headers = new Headers();
    inject({ ...CTX, traceState: 'foo=1' }, headers, { a: { value: '1' } });
    expect([...headers.entries()]).toEqual([
      ['baggage', 'a=1'],
      ['traceparent', TP],
      ['tracestate', 'foo=1'],
    ]);
  });

  it('writes into a plain object, replacing other spellings of the same header', () => {
    const headers: Record<string, string> = { TraceParent: 'old', accept: '*/*' };
    inject(CTX, headers);
    expect(headers).toEqual({ traceparent: TP, accept: '*/*' });
  });

  it('does not throw when the carrier cannot be written', () => {
    expect(() => inject(CTX, Response.error().headers)).not.toThrow();
    expect(() =>
      inject(CTX, () => {
        throw new Error('boom');
      }),
    ).not.toThrow();
    expect(() => inject(CTX, Object.freeze({}) as Record<string, string>)).not.toThrow();
    expect(() => inject(CTX, null as unknown as Record<string, string>)).not.toThrow();
  });

  it('does not add keys to a get-only carrier', () => {
    const carrier = { get: () => null } as unknown as Record<string, string>;
    inject(CTX, carrier);
    expect(Object.keys(carrier)).toEqual(['get']);
  });

  it('does not throw for hostile contexts or baggage', () => {
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error('boom');
        },
        ownKeys() {
          throw new Error('boom');
        },
      },
    );
    expect(capture(hostile as SpanContext)).toEqual([]);
    expect(capture(CTX, hostile as never)).toEqual([['traceparent', TP]]);
    expect(capture(42 as unknown as SpanContext, 'x' as never)).toEqual([]);
  });

  it('round-trips extract then inject for the same context', () => {
    const incoming = { traceparent: `00-${TRACE}-${SPAN}-02`, tracestate: 'a=1 , b=2', baggage: 'k = v;p' };
    const { context, baggage } = extract(incoming);
    const out: Record<string, string> = {};
    inject(context, out, baggage);
    expect(out).toEqual({ traceparent: `00-${TRACE}-${SPAN}-02`, tracestate: 'a=1,b=2', baggage: 'k=v;p' });
  });
});

describe('FIELDS', () => {
  it('lists the lowercase header names inject may write', () => {
    expect(FIELDS).toEqual(['traceparent', 'tracestate', 'baggage']);
  });

  it('matches what inject actually writes', () => {
    const names = capture({ ...CTX, traceState: 'a=1' }, { k: { value: 'v' } }).map(([name]) => name);
    expect(names).toEqual([...FIELDS]);
  });
});

describe('readHeader / writeHeader', () => {
  it('returns the raw value, or an array for several spellings', () => {
    expect(readHeader({ Baggage: 'a=1' }, 'baggage')).toBe('a=1');
    expect(readHeader({ baggage: 'a=1', BAGGAGE: ['b=2'] }, 'baggage')).toEqual(['a=1', 'b=2']);
    expect(readHeader({ baggage: undefined }, 'baggage')).toBeUndefined();
  });

  it('asks get() for the lowercase name', () => {
    const asked: string[] = [];
    readHeader({ get: (name: string) => (asked.push(name), null) }, 'TraceParent');
    expect(asked).toEqual(['traceparent']);
  });

  it('reports whether it could write', () => {
    expect(writeHeader({}, 'a', '1')).toBe(true);
    expect(writeHeader(Response.error().headers, 'a', '1')).toBe(false);
    expect(writeHeader('nope', 'a', '1')).toBe(false);
  });
});
