import { describe, it, expect } from 'vitest';
import {
  MAX_TRACESTATE_LENGTH,
  MAX_TRACESTATE_MEMBERS,
  getTracestate,
  parseTracestate,
  setTracestate,
  unsetTracestate,
} from '../../../src/propagation/tracestate';

const range = (n: number, from = 1) => Array.from({ length: n }, (_, i) => i + from);
const pad2 = (i: number) => String(i).padStart(2, '0');
/** `kNN=` followed by `v`s, `length` characters in all. */
const member = (i: number, length: number) => `k${pad2(i)}=`.padEnd(length, 'v');

describe('parseTracestate: parsing', () => {
  it('joins several header fields with "," and keeps their order', () => {
    expect(parseTracestate(['foo=1,bar=2', 'rojo=1,congo=2', 'baz=3'])).toBe(
      'foo=1,bar=2,rojo=1,congo=2,baz=3',
    );
  });

  it('returns undefined for an empty header', () => {
    expect(parseTracestate('')).toBeUndefined();
    expect(parseTracestate([''])).toBeUndefined();
    expect(parseTracestate(' \t , ,')).toBeUndefined();
  });

  it('ignores an empty header field mixed with non-empty ones', () => {
    expect(parseTracestate(['foo=1', ''])).toBe('foo=1');
    expect(parseTracestate(['', 'foo=1'])).toBe('foo=1');
    expect(parseTracestate(['', 'foo=1', '', 'bar=2'])).toBe('foo=1,bar=2');
  });

  it.each([
    ['foo=1 \t , \t bar=2, \t baz=3'],
    ['foo=1\t \t,\t \tbar=2,\t \tbaz=3'],
    [' \t foo=1,bar=2,baz=3 \t '],
  ])('ignores whitespace around commas and at the ends (%j)', (value) => {
    expect(parseTracestate(value)).toBe('foo=1,bar=2,baz=3');
  });

  it.each([[' foo=1'], ['\tfoo=1'], ['foo=1 '], ['foo=1\t'], ['\t foo=1 \t']])(
    'trims a single member (%j)',
    (value) => {
      expect(parseTracestate(value)).toBe('foo=1');
    },
  );

  it('allows empty list members', () => {
    expect(parseTracestate('a=1,,b=2')).toBe('a=1,b=2');
    expect(parseTracestate(',a=1,  ,\t,b=2,')).toBe('a=1,b=2');
  });

  it('keeps spaces inside a value and drops trailing ones as whitespace', () => {
    expect(parseTracestate('foo=bar baz')).toBe('foo=bar baz');
    expect(parseTracestate('foo=bar ')).toBe('foo=bar');
    expect(parseTracestate('foo= bar')).toBe('foo= bar');
  });

  it('accepts every allowed key and value character', () => {
    const key = 'abcdefghijklmnopqrstuvwxyz0123456789_-*/';
    const keyWithVendor = key + '@a-z0-9_-*/';
    let value = '';
    for (let c = 0x20; c <= 0x7e; c++) if (c !== 0x2c && c !== 0x3d) value += String.fromCharCode(c);
    expect(parseTracestate(`${key}=${value}`)).toBe(`${key}=${value}`);
    expect(parseTracestate(`${keyWithVendor}=${value}`)).toBe(`${keyWithVendor}=${value}`);
    expect(getTracestate(parseTracestate(`${keyWithVendor}=${value}`), keyWithVendor)).toBe(value);
  });

  it.each([
    ['empty', 'foo='],
    ['257 characters', 'foo=' + 'v'.repeat(257)],
    ['a tab inside', 'foo=a\tb'],
    ['a non-ASCII character', 'foo=caf\u00e9'],
    ['a control character', 'foo=a\u0001b'],
  ])('rejects a value that is %s', (_, value) => {
    expect(parseTracestate(value)).toBeUndefined();
  });

  it('accepts a value of exactly 256 characters', () => {
    const value = 'foo=' + 'v'.repeat(256);
    expect(parseTracestate(value)).toBe(value);
  });

  it.each([
    ['1_key', true],
    ['6num', true],
    ['fw529a3039@dt', true],
    ['6cab5bb-29a@dt', true],
    ['baz-', true],
    ['baz*bar', true],
    ['baz/', true],
    ['Key', false],
    ['KEY', false],
    ['', false],
    ['k'.repeat(257), false],
  ])('judges OTel key example %j by the current grammar (valid: %s)', (key, isValid) => {
    expect(parseTracestate(`${key}=1`)).toBe(isValid ? `${key}=1` : undefined);
  });

  it('rejects a key containing ","', () => {
    // The comma splits it into a member without "=", which is malformed.
    expect(parseTracestate('foo,bar=1')).toBeUndefined();
  });

  it.each([
    ['foo@'],
    ['foo@@bar'],
    ['foo@bar@baz'],
    ['1special'],
    ['t'.repeat(242) + '@v'],
    ['t'.repeat(241) + '@' + 'v'.repeat(14)],
    ['t@' + 'v'.repeat(15)],
    ['z'.repeat(256)],
  ])('accepts key %j under the current spec grammar', (key) => {
    expect(parseTracestate(`${key}=1,bar=2`)).toBe(`${key}=1,bar=2`);
  });

  it.each([['@foo'], ['FOO'], ['foo.bar'], ['foo '], ['foo@bar '], ['z'.repeat(257)], ['-foo'], ['_foo']])(
    'rejects key %j and with it the whole header',
    (key) => {
      expect(parseTracestate(`${key}=1,bar=2`)).toBeUndefined();
    },
  );

  it('drops the whole header when a member has no "="', () => {
    expect(parseTracestate('a=1,b,c=3')).toBeUndefined();
  });

  it.each([['a=1='], ['foo=bar=baz'], ['foo==bar']])('rejects a value containing "=" (%j)', (value) => {
    expect(parseTracestate(`${value},ok=1`)).toBeUndefined();
  });

  it('keeps the first of duplicate keys', () => {
    expect(parseTracestate('foo=1,foo=2')).toBe('foo=1');
    expect(parseTracestate('foo=1,foo=1')).toBe('foo=1');
    expect(parseTracestate('foo=1,bar=2,foo=3')).toBe('foo=1,bar=2');
  });

  it('keeps the first of duplicate keys split across header fields', () => {
    expect(parseTracestate(['foo=1', 'foo=2'])).toBe('foo=1');
    expect(parseTracestate(['foo=1', 'foo=1'])).toBe('foo=1');
  });

  it.each([
    ['a number', 42],
    ['null', null],
    ['an object', { foo: '1' }],
    ['an array with a number', ['foo=1', 2]],
    ['a symbol', Symbol('x')],
  ])('returns undefined for %s without throwing', (_, value) => {
    expect(parseTracestate(value)).toBeUndefined();
  });
});

describe('parseTracestate: limits and invalid input', () => {
  const headers32 = [
    range(10).map((i) => `bar${pad2(i)}=${pad2(i)}`).join(','),
    range(10, 11).map((i) => `bar${pad2(i)}=${pad2(i)}`).join(','),
    range(10, 21).map((i) => `bar${pad2(i)}=${pad2(i)}`).join(','),
    'bar31=31,bar32=32',
  ];

  it('accepts 32 members', () => {
    const state = parseTracestate(headers32);
    expect(state?.split(',')).toHaveLength(MAX_TRACESTATE_MEMBERS);
    expect(getTracestate(state, 'bar01')).toBe('01');
  });

  it('drops the whole header at 33 members', () => {
    expect(parseTracestate([...headers32.slice(0, 3), 'bar31=31,bar32=32,bar33=33'])).toBeUndefined();
  });

  it('does not count empty members toward the 32', () => {
    expect(parseTracestate([...headers32, '', ' , '])?.split(',')).toHaveLength(32);
  });

  it.each([
    ['@foo=1,bar=2'],
    ['foo=,bar=3'],
    ['bar=3,foo='],
    ['FOO=1,bar=2'],
    ['foo =1,bar=2'],
  ])('drops the whole header when one member is malformed (%j)', (value) => {
    expect(parseTracestate(value)).toBeUndefined();
  });

  it('drops a whole header with a value over 256 characters (strict, unlike OTel which keeps c=d)', () => {
    expect(parseTracestate(`a=${'b'.repeat(512)},c=d`)).toBeUndefined();
  });

  it('removes a single valid member longer than 512 characters and keeps the rest', () => {
    const huge = `${'k'.repeat(256)}=${'v'.repeat(256)}`;
    expect(huge.length).toBe(513);
    expect(parseTracestate(`${huge},c=d`)).toBe('c=d');
    expect(parseTracestate(huge)).toBeUndefined();
  });

  it('keeps exactly 512 characters', () => {
    // 16 members of 31 characters plus 15 commas is 511; one more character makes 512.
    const members = range(16).map((i) => member(i, 31));
    members[15] = member(16, 32);
    const value = members.join(',');
    expect(value.length).toBe(MAX_TRACESTATE_LENGTH);
    expect(parseTracestate(value)).toBe(value);
  });

  it('removes entries over 128 characters first, right-most first, until it fits', () => {
    const small = [member(1, 30), member(2, 30), member(3, 30), member(4, 30)];
    const big1 = 'big1='.padEnd(204, 'x');
    const big2 = 'big2='.padEnd(204, 'x');
    const value = [small[0], big1, small[1], small[2], big2, small[3]].join(',');
    expect(value.length).toBeGreaterThan(512);
    expect(parseTracestate(value)).toBe([small[0], big1, small[1], small[2], small[3]].join(','));
  });

  it('then removes entries from the right end', () => {
    const members = range(20).map((i) => member(i, 30));
    expect(parseTracestate(members.join(','))).toBe(members.slice(0, 16).join(','));
  });

  it('removes a large entry at the front before small entries at the end', () => {
    const big = 'big='.padEnd(140, 'x');
    const members = range(18).map((i) => member(i, 30));
    expect(parseTracestate([big, ...members].join(','))).toBe(members.slice(0, 16).join(','));
  });
});

describe('tracestate mutation', () => {
  it('serialises an unchanged parsed state in input order', () => {
    expect(parseTracestate('a=1,b=2')).toBe('a=1,b=2');
    expect(parseTracestate('b=2,a=1')).toBe('b=2,a=1');
  });

  it('moves an updated key to the front and leaves the original untouched', () => {
    const state = parseTracestate('a=1,b=2');
    expect(setTracestate(state, 'b', '3')).toBe('b=3,a=1');
    expect(state).toBe('a=1,b=2');
    expect(getTracestate(state, 'b')).toBe('2');
  });

  it('puts a new key at the front', () => {
    expect(setTracestate('a=1,b=2', 'c', '3')).toBe('c=3,a=1,b=2');
    expect(setTracestate(undefined, 'c', '3')).toBe('c=3');
    expect(setTracestate('', 'c', '3')).toBe('c=3');
  });

  it.each([
    ['an uppercase key', 'FOO', 'v'],
    ['an empty key', '', 'v'],
    ['a key starting with "@"', '@foo', 'v'],
    ['a key with "="', 'a=b', 'v'],
    ['a 257-character key', 'k'.repeat(257), 'v'],
    ['a 257-character value', 'foo', 'v'.repeat(257)],
    ['an empty value', 'foo', ''],
    ['a value with ","', 'foo', 'a,b'],
    ['a value with "="', 'foo', 'a=b'],
    ['a value ending in a space', 'foo', 'bar '],
    ['a value with a tab', 'foo', 'a\tb'],
  ])('returns the same state for %s', (_, key, value) => {
    const state = 'a=1,b=2';
    expect(setTracestate(state, key, value)).toBe(state);
    expect(setTracestate(undefined, key, value)).toBeUndefined();
  });

  it('returns the same state when the new entry alone cannot fit in 512 characters', () => {
    const state = 'a=1';
    expect(setTracestate(state, 'k'.repeat(256), 'v'.repeat(256))).toBe(state);
  });

  it('returns the same state when the new entry would take the total past 512', () => {
    const members = range(16).map((i) => member(i, 31)); // 511 characters
    const state = members.join(',');
    expect(setTracestate(state, 'new', 'x'.repeat(20))).toBe(state);
    // Replacing an entry by one of the same length still fits.
    expect(setTracestate(state, members[3]!.split('=')[0]!, 'y'.repeat(members[3]!.split('=')[1]!.length))!.length).toBe(511);
  });

  it('removes the right-most member when adding a 33rd', () => {
    const members = range(32).map((i) => `k${pad2(i)}=${i}`);
    const next = setTracestate(members.join(','), 'new', '1')!.split(',');
    expect(next).toHaveLength(32);
    expect(next[0]).toBe('new=1');
    expect(next).not.toContain('k32=32');
    expect(next).toContain('k31=31');
  });

  it('does not remove anything when updating one of 32 members', () => {
    const members = range(32).map((i) => `k${pad2(i)}=${i}`);
    const next = setTracestate(members.join(','), 'k32', 'x')!.split(',');
    expect(next).toHaveLength(32);
    expect(next[0]).toBe('k32=x');
    expect(next[31]).toBe('k31=31');
  });

  it('unsets a key', () => {
    expect(unsetTracestate('a=1,b=2,c=3', 'b')).toBe('a=1,c=3');
    expect(unsetTracestate('a=1', 'a')).toBeUndefined();
  });

  it('returns the same state when unsetting a missing key or one differing in case', () => {
    const state = 'a=1,b=2';
    expect(unsetTracestate(state, 'c')).toBe(state);
    expect(unsetTracestate(state, 'A')).toBe(state);
    expect(unsetTracestate(undefined, 'a')).toBeUndefined();
  });

  it('gets a value by exact key', () => {
    expect(getTracestate('a=1,b=2', 'b')).toBe('2');
    expect(getTracestate('ab=1', 'a')).toBeUndefined();
    expect(getTracestate('a=1', 'A')).toBeUndefined();
    expect(getTracestate(undefined, 'a')).toBeUndefined();
  });
});
