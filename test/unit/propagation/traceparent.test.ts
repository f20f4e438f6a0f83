import { describe, it, expect } from 'vitest';
import {
  FLAG_RANDOM,
  FLAG_SAMPLED,
  formatTraceparent,
  isValidSpanId,
  isValidTraceId,
  parseTraceparent,
} from '../../../src/propagation/traceparent';

const TRACE = '12345678901234567890123456789012';
const SPAN = '1234567890123456';
const VALID = `00-${TRACE}-${SPAN}-01`;

describe('parseTraceparent: accepts', () => {
  it('parses version 00 with the sampled flag into ids, flags and isRemote', () => {
    expect(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')).toEqual({
      traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
      spanId: '00f067aa0ba902b7',
      flags: 1,
      isRemote: true,
    });
  });

  it('parses an unknown future version with exactly four fields', () => {
    expect(parseTraceparent(`cc-${TRACE}-${SPAN}-01`)).toMatchObject({ traceId: TRACE, spanId: SPAN, flags: 1 });
  });

  it('parses a future version and ignores extra trailing fields', () => {
    expect(parseTraceparent(`cc-${TRACE}-${SPAN}-01-what-the-future-will-be-like`)).toMatchObject({
      traceId: TRACE,
      spanId: SPAN,
      flags: 1,
    });
  });

  it('uses the only element of a one-element array', () => {
    expect(parseTraceparent([VALID])).toMatchObject({ traceId: TRACE, spanId: SPAN });
  });

  it.each([
    [' ' + VALID],
    ['\t' + VALID],
    [VALID + ' '],
    [VALID + '\t'],
    ['\t ' + VALID + ' \t'],
    ['   ' + VALID + '\t\t\t'],
  ])('trims leading and trailing spaces and tabs (%j)', (value) => {
    expect(parseTraceparent(value)).toMatchObject({ traceId: TRACE, spanId: SPAN, flags: 1 });
  });

  it('keeps the random flag (02) as a byte', () => {
    const ctx = parseTraceparent(`00-${TRACE}-${SPAN}-02`);
    expect(ctx?.flags).toBe(2);
    expect(ctx!.flags & FLAG_RANDOM).toBe(FLAG_RANDOM);
    expect(ctx!.flags & FLAG_SAMPLED).toBe(0);
  });

  it('reads 03 as sampled and random, bit by bit', () => {
    const ctx = parseTraceparent(`00-${TRACE}-${SPAN}-03`);
    expect(ctx?.flags).toBe(3);
    expect(ctx!.flags & FLAG_SAMPLED).toBe(FLAG_SAMPLED);
    expect(ctx!.flags & FLAG_RANDOM).toBe(FLAG_RANDOM);
  });

  it('finds the sampled bit in 09 by masking, not by equality', () => {
    const ctx = parseTraceparent(`00-${TRACE}-${SPAN}-09`);
    expect(ctx?.flags).toBe(9);
    expect(ctx!.flags & FLAG_SAMPLED).toBe(FLAG_SAMPLED);
    expect(ctx!.flags & FLAG_RANDOM).toBe(0);
  });

  it('clears unknown flag bits of a higher version, keeping sampled and random', () => {
    expect(parseTraceparent(`cc-${TRACE}-${SPAN}-ff`)?.flags).toBe(3);
    expect(parseTraceparent(`cc-${TRACE}-${SPAN}-fd-x`)?.flags).toBe(1);
  });

  it('exposes the flag constants as bits', () => {
    expect(FLAG_SAMPLED).toBe(1);
    expect(FLAG_RANDOM).toBe(2);
  });
});

describe('parseTraceparent: rejects', () => {
  it('rejects version ff', () => {
    expect(parseTraceparent(`ff-${TRACE}-${SPAN}-01`)).toBeUndefined();
    expect(parseTraceparent(`ff-${TRACE}-${SPAN}-01-future`)).toBeUndefined();
  });

  it.each([
    [`00-${TRACE}-${SPAN}-01-extra`],
    [`00-${TRACE}-${SPAN}-01.`],
    [`00-${TRACE}-${SPAN}-01-what-the-future-will-be-like`],
    [`00-${TRACE}-${SPAN}-01-`],
  ])('rejects version 00 with anything after the flags (%s)', (value) => {
    expect(parseTraceparent(value)).toBeUndefined();
  });

  it('rejects a future version whose flags are not followed by "-"', () => {
    expect(parseTraceparent(`cc-${TRACE}-${SPAN}-01.what-the-future-will-be-like`)).toBeUndefined();
    expect(parseTraceparent(`cc-${TRACE}-${SPAN}-011`)).toBeUndefined();
  });

  it.each([
    ['not hex', `0x-${TRACE}-${SPAN}-01`],
    ['leading dot', `.0-${TRACE}-${SPAN}-01`],
    ['trailing dot', `0.-${TRACE}-${SPAN}-01`],
    ['too short', `0-${TRACE}-${SPAN}-01`],
    ['three chars', `000-${TRACE}-${SPAN}-01`],
    ['four chars', `0000-${TRACE}-${SPAN}-01`],
  ])('rejects a bad version (%s)', (_, value) => {
    expect(parseTraceparent(value)).toBeUndefined();
  });

  it.each([
    ['only a trace-id', `00-${TRACE}`],
    ['no flags', `00-${TRACE}-${SPAN}`],
    ['empty trace-id', `00--${SPAN}-01`],
    ['empty span-id', `00-${TRACE}--01`],
    ['empty flags', `00-${TRACE}-${SPAN}-`],
  ])('rejects missing or empty fields (%s)', (_, value) => {
    expect(parseTraceparent(value)).toBeUndefined();
  });

  it.each([
    ['a leading dot', `00-.${TRACE.slice(1)}-${SPAN}-01`],
    ['a trailing dot', `00-${TRACE.slice(0, 31)}.-${SPAN}-01`],
    ['a non-hex letter', `00-${TRACE.slice(0, 31)}g-${SPAN}-01`],
    ['31 chars', `00-${TRACE.slice(1)}-${SPAN}-01`],
    ['33 chars', `00-${TRACE}3-${SPAN}-01`],
    ['33 chars in a future version', `cc-${TRACE}3-${SPAN}-01`],
    ['all zeros', `00-${'0'.repeat(32)}-${SPAN}-01`],
  ])('rejects a trace-id with %s', (_, value) => {
    expect(parseTraceparent(value)).toBeUndefined();
  });

  it.each([
    ['a leading dot', `00-${TRACE}-.${SPAN.slice(1)}-01`],
    ['a trailing dot', `00-${TRACE}-${SPAN.slice(0, 15)}.-01`],
    ['15 chars', `00-${TRACE}-${SPAN.slice(1)}-01`],
    ['17 chars', `00-${TRACE}-${SPAN}7-01`],
    ['all zeros', `00-${TRACE}-${'0'.repeat(16)}-01`],
    ['all zeros in a future version', `cc-${TRACE}-${'0'.repeat(16)}-01`],
  ])('rejects a span-id with %s', (_, value) => {
    expect(parseTraceparent(value)).toBeUndefined();
  });

  it.each([
    ['a leading dot', `00-${TRACE}-${SPAN}-.0`],
    ['a trailing dot', `00-${TRACE}-${SPAN}-0.`],
    ['one char', `00-${TRACE}-${SPAN}-1`],
    ['three chars', `00-${TRACE}-${SPAN}-001`],
  ])('rejects flags with %s', (_, value) => {
    expect(parseTraceparent(value)).toBeUndefined();
  });

  it.each([
    ['version', `CC-${TRACE}-${SPAN}-01`],
    ['trace-id', `00-${'ABCDEF'.padEnd(32, '1')}-${SPAN}-01`],
    ['span-id', `00-${TRACE}-${'ABCDEF'.padEnd(16, '1')}-01`],
    ['flags', `00-${TRACE}-${SPAN}-0A`],
  ])('rejects uppercase hex in the %s', (_, value) => {
    expect(parseTraceparent(value)).toBeUndefined();
  });

  it('accepts the same ids in lowercase (control for the uppercase cases)', () => {
    expect(parseTraceparent(`00-${'abcdef'.padEnd(32, '1')}-${'abcdef'.padEnd(16, '1')}-0a`)?.flags).toBe(10);
  });

  it.each([['invalid!'], [''], ['   '], ['-'.repeat(55)], ['0'.repeat(55)]])('rejects garbage (%j)', (value) => {
    expect(parseTraceparent(value)).toBeUndefined();
  });

  it('rejects two separate traceparent headers given as an array', () => {
    expect(parseTraceparent([VALID, `00-${TRACE.replace(/2$/, '1')}-${SPAN}-01`])).toBeUndefined();
    expect(parseTraceparent([VALID, VALID])).toBeUndefined();
  });

  it('rejects two traceparent headers joined with ", " by the HTTP stack', () => {
    expect(parseTraceparent(`${VALID}, ${VALID}`)).toBeUndefined();
    expect(parseTraceparent(`${VALID},${VALID}`)).toBeUndefined();
  });

  it.each([
    ['a number', 42],
    ['an empty array', []],
    ['undefined', undefined],
    ['null', null],
    ['an object', { traceparent: VALID }],
    ['an array holding a number', [42]],
    ['a boolean', true],
    ['a symbol', Symbol('x')],
  ])('returns undefined for %s without throwing', (_, value) => {
    expect(parseTraceparent(value)).toBeUndefined();
  });

  it('rejects a future version shorter than 55 characters', () => {
    const short = `cc-${TRACE}-${SPAN}-0`;
    expect(short.length).toBe(54);
    expect(parseTraceparent(short)).toBeUndefined();
  });
});

describe('isValidTraceId / isValidSpanId', () => {
  it('accepts 32 / 16 lowercase hex characters', () => {
    expect(isValidTraceId(TRACE)).toBe(true);
    expect(isValidSpanId(SPAN)).toBe(true);
  });

  it.each([
    ['all zeros', '0'.repeat(32), '0'.repeat(16)],
    ['uppercase', TRACE.replace('1', 'A'), SPAN.replace('1', 'A')],
    ['one char short', TRACE.slice(1), SPAN.slice(1)],
    ['one char long', TRACE + '1', SPAN + '1'],
    ['non-hex', TRACE.replace('1', 'g'), SPAN.replace('1', 'g')],
    ['empty', '', ''],
  ])('rejects %s', (_, trace, span) => {
    expect(isValidTraceId(trace)).toBe(false);
    expect(isValidSpanId(span)).toBe(false);
  });

  it('rejects non-strings', () => {
    expect(isValidTraceId(12345678901234567890123456789012n)).toBe(false);
    expect(isValidSpanId(undefined)).toBe(false);
    expect(isValidSpanId({})).toBe(false);
  });

  it('does not accept a trace-id as a span-id or the reverse', () => {
    expect(isValidSpanId(TRACE)).toBe(false);
    expect(isValidTraceId(SPAN)).toBe(false);
  });
});

describe('formatTraceparent', () => {
  it('emits version 00 with the flags as two lowercase hex digits', () => {
    expect(formatTraceparent({ traceId: TRACE, spanId: SPAN, flags: 1 })).toBe(`00-${TRACE}-${SPAN}-01`);
  });

  it.each([
    [0, '00'],
    [1, '01'],
    [2, '02'],
    [3, '03'],
    [9, '09'],
    [0x10, '10'],
    [0xab, 'ab'],
    [0xff, 'ff'],
  ])('zero-pads flags %i to "%s"', (flags, hex) => {
    expect(formatTraceparent({ traceId: TRACE, spanId: SPAN, flags })).toBe(`00-${TRACE}-${SPAN}-${hex}`);
  });

  it('keeps only the low byte of out-of-range flags', () => {
    expect(formatTraceparent({ traceId: TRACE, spanId: SPAN, flags: 0x101 })).toMatch(/-01$/);
    expect(formatTraceparent({ traceId: TRACE, spanId: SPAN, flags: Number.NaN })).toMatch(/-00$/);
  });

  it('downgrades a parsed higher version to 00 on output', () => {
    const ctx = parseTraceparent(`cc-${TRACE}-${SPAN}-03-more`)!;
    expect(formatTraceparent(ctx)).toBe(`00-${TRACE}-${SPAN}-03`);
  });

  it('round-trips a version 00 header unchanged', () => {
    for (const flags of ['00', '01', '02', '03']) {
      const header = `00-${TRACE}-${SPAN}-${flags}`;
      expect(formatTraceparent(parseTraceparent(header)!)).toBe(header);
    }
  });
});
