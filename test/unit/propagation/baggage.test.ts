import { describe, it, expect } from 'vitest';
import type { Baggage } from '../../../src/propagation/baggage';
import {
  MAX_BAGGAGE_BYTES,
  MAX_BAGGAGE_MEMBERS,
  baggageAfter,
  formatBaggage,
  parseBaggage,
  parseBaggageMetadata,
} from '../../../src/propagation/baggage';

/** What the W3C reference serializer (Python `urllib.parse.quote`) makes of DECODED. */
const DECODED = '\t "\';=asdf!@#$%^&*()';
const ENCODED = '%09%20%22%27%3B%3Dasdf%21%40%23%24%25%5E%26%2A%28%29';

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

describe('parseBaggage: W3C reference vectors', () => {
  it('parses a single member', () => {
    expect(parseBaggage('SomeKey=SomeValue')).toEqual({ SomeKey: { value: 'SomeValue' } });
  });

  it('parses several members with a bare property and a key=value property', () => {
    expect(parseBaggage('SomeKey=SomeValue;SomeProp,SomeKey2=SomeValue2;ValueProp=PropVal')).toEqual({
      SomeKey: { value: 'SomeValue', metadata: 'SomeProp' },
      SomeKey2: { value: 'SomeValue2', metadata: 'ValueProp=PropVal' },
    });
  });

  it('ignores whitespace around "=", ";" and ","', () => {
    expect(
      parseBaggage(
        'SomeKey \t = \t SomeValue \t ; \t SomeProp \t , \t SomeKey2 \t = \t SomeValue2 \t ; \t ValueProp \t = \t PropVal',
      ),
    ).toEqual({
      SomeKey: { value: 'SomeValue', metadata: 'SomeProp' },
      SomeKey2: { value: 'SomeValue2', metadata: 'ValueProp=PropVal' },
    });
  });

  it('parses key=value properties on several members, with and without whitespace', () => {
    const expected = {
      SomeKey: { value: 'SomeValue', metadata: 'SomePropKey=SomePropValue' },
      SomeKey2: { value: 'SomeValue2', metadata: 'SomePropKey2=SomePropValue2' },
    };
    expect(
      parseBaggage('SomeKey=SomeValue;SomePropKey=SomePropValue,SomeKey2=SomeValue2;SomePropKey2=SomePropValue2'),
    ).toEqual(expected);
    expect(
      parseBaggage(
        'SomeKey \t = \t SomeValue \t ; \t SomePropKey=SomePropValue \t , \t SomeKey2 \t = \t SomeValue2 \t ; \t SomePropKey2 \t = \t SomePropValue2',
      ),
    ).toEqual(expected);
  });

  it('parses a single member with surrounding whitespace', () => {
    expect(parseBaggage('SomeKey \t = \t SomeValue \t ')).toEqual({ SomeKey: { value: 'SomeValue' } });
  });

  it('keeps "=" inside a value', () => {
    expect(parseBaggage('SomeKey=SomeValue=equals')).toEqual({ SomeKey: { value: 'SomeValue=equals' } });
  });

  it('percent-decodes a value', () => {
    expect(parseBaggage(`SomeKey=${ENCODED}`)?.SomeKey?.value).toBe(DECODED);
  });

  it('percent-decodes a value surrounded by whitespace', () => {
    expect(parseBaggage(`SomeKey \t = \t ${ENCODED} \t `)?.SomeKey?.value).toBe(DECODED);
  });

  it('keeps several properties in order, bare and key=value', () => {
    const baggage = parseBaggage('SomeKey \t = \t SomeValue \t ; \t SomeProp \t ; \t SecondProp \t = \t PropValue');
    expect(baggage?.SomeKey).toEqual({ value: 'SomeValue', metadata: 'SomeProp;SecondProp=PropValue' });
    expect(parseBaggageMetadata(baggage?.SomeKey?.metadata)).toEqual([
      { key: 'SomeProp' },
      { key: 'SecondProp', value: 'PropValue' },
    ]);
  });

  it('keeps repeated property names in order', () => {
    const baggage = parseBaggage('k=v;p=1;p;p=2');
    expect(baggage?.k?.metadata).toBe('p=1;p;p=2');
    expect(parseBaggageMetadata(baggage?.k?.metadata)).toEqual([
      { key: 'p', value: '1' },
      { key: 'p' },
      { key: 'p', value: '2' },
    ]);
  });

  it('keeps property values encoded in metadata and decodes them on request', () => {
    const baggage = parseBaggage(`k=v;ValueProp=${ENCODED}`);
    expect(baggage?.k?.metadata).toBe(`ValueProp=${ENCODED}`);
    expect(parseBaggageMetadata(baggage?.k?.metadata)).toEqual([{ key: 'ValueProp', value: DECODED }]);
  });

  it('keeps a property that looks encoded but has no "=" as one bare key, not decoded', () => {
    const prop = 'ValueProp%20%09%20%3D%20PropVal';
    const baggage = parseBaggage(`k=v;${prop}`);
    expect(baggage?.k?.metadata).toBe(prop);
    expect(parseBaggageMetadata(baggage?.k?.metadata)).toEqual([{ key: prop }]);
  });
});

describe('formatBaggage: W3C reference vectors', () => {
  it('percent-encodes a value as the reference serializer does', () => {
    expect(formatBaggage({ SomeKey: { value: DECODED } })).toBe(`SomeKey=${ENCODED}`);
  });

  it('round-trips the encoded reference value', () => {
    expect(formatBaggage(parseBaggage(`SomeKey=${ENCODED}`))).toBe(`SomeKey=${ENCODED}`);
  });

  it('serialises 64 members', () => {
    const baggage: Baggage = {};
    for (const i of range(64)) baggage[`key${i}`] = { value: 'value' };
    expect(formatBaggage(baggage)?.split(',')).toHaveLength(64);
  });

  it('serialises a single 8192-byte member', () => {
    const value = '0123456789'.repeat(819);
    const header = formatBaggage({ a: { value } });
    expect(header).toHaveLength(8192);
    expect(header).toBe(`a=${value}`);
  });

  it('serialises 512 members adding up to 8192 bytes', () => {
    const baggage: Baggage = {};
    // Keys "k000".."k511" keep string order (integer-like keys would be reordered by the record).
    for (const i of range(512)) baggage[`k${String(i).padStart(3, '0')}`] = { value: '0123456789' };
    baggage.k511 = { value: '0123456789a' }; // 15 bytes each, 16 for the last, 511 commas
    const header = formatBaggage(baggage);
    expect(header).toHaveLength(MAX_BAGGAGE_BYTES);
    expect(header?.split(',')).toHaveLength(512);
  });

  it('drops the member that would pass 8192 bytes, whole', () => {
    const baggage: Baggage = {};
    for (const i of range(512)) baggage[`k${String(i).padStart(3, '0')}`] = { value: '0123456789' };
    baggage.k511 = { value: '0123456789ab' };
    const header = formatBaggage(baggage)!;
    expect(header.split(',')).toHaveLength(511);
    expect(header.endsWith(',k510=0123456789')).toBe(true);
  });
});

describe('parseBaggage: spec and policy', () => {
  it('replaces invalid UTF-8 after decoding with U+FFFD', () => {
    expect(parseBaggage('k=%C3%28')?.k?.value).toBe('\ufffd(');
    expect(parseBaggage('k=a%FFb')?.k?.value).toBe('a\ufffdb');
    expect(parseBaggage('k=%F0%9F%98')?.k?.value).toBe('\ufffd');
  });

  it('decodes multi-byte UTF-8', () => {
    expect(parseBaggage('k=caf%C3%A9%20%F0%9F%98%80')?.k?.value).toBe('caf\u00e9 \u{1f600}');
  });

  it('keeps a "%" that does not start an escape', () => {
    expect(parseBaggage('k=100%')?.k?.value).toBe('100%');
    expect(parseBaggage('k=%zz%41')?.k?.value).toBe('%zzA');
    expect(parseBaggage('k=%C3%28%')?.k?.value).toBe('\ufffd(%');
  });

  it('does not turn "+" into a space', () => {
    expect(parseBaggage('k=a+b')?.k?.value).toBe('a+b');
  });

  it('joins several header fields, in order', () => {
    expect(parseBaggage(['a=1', 'b=2;p', 'c=3'])).toEqual({
      a: { value: '1' },
      b: { value: '2', metadata: 'p' },
      c: { value: '3' },
    });
  });

  it('keeps the other members when one has no "=" (OTel: key1:value,key2=value2)', () => {
    expect(parseBaggage('key1:value,key2=value2')).toEqual({ key2: { value: 'value2' } });
    expect(parseBaggage('key1,key2=value2,key3')).toEqual({ key2: { value: 'value2' } });
  });

  it('returns undefined when no member is valid (OTel: key1:value;key2=value2, garbage)', () => {
    expect(parseBaggage('key1:value;key2=value2')).toBeUndefined();
    expect(parseBaggage('garbage')).toBeUndefined();
    expect(parseBaggage('=')).toBeUndefined();
    expect(parseBaggage(',,, ,')).toBeUndefined();
    expect(parseBaggage('')).toBeUndefined();
  });

  it('keeps an empty value, as the grammar allows (OTel drops key1=)', () => {
    expect(parseBaggage('key1=,key2=v')).toEqual({ key1: { value: '' }, key2: { value: 'v' } });
  });

  it.each([
    ['a space inside the value', 'a=b c'],
    ['a double quote', 'a="x"'],
    ['a backslash', 'a=x\\y'],
    ['a non-ASCII character', 'a=caf\u00e9'],
    ['a key with a space', 'a b=1'],
    ['a key with "/"', 'with/slash=1'],
    ['a key with "@"', 'a@b=1'],
    ['an empty key', '=1'],
  ])('drops a member with %s and keeps the others', (_, member) => {
    expect(parseBaggage(`${member},ok=1`)).toEqual({ ok: { value: '1' } });
  });

  it('accepts every token character in a key', () => {
    const key = "!#$%&'*+-.^_`|~09azAZ";
    expect(parseBaggage(`${key}=v`)).toEqual({ [key]: { value: 'v' } });
  });

  it('drops malformed properties but keeps the member', () => {
    expect(parseBaggage('k=v;ok;bad prop;=x;p=a b;q=1')).toEqual({ k: { value: 'v', metadata: 'ok;q=1' } });
    expect(parseBaggage('k=v;;')).toEqual({ k: { value: 'v' } });
  });

  it('lets a later duplicate key overwrite an earlier one', () => {
    expect(parseBaggage('a=1,b=2,a=3')).toEqual({ a: { value: '3' }, b: { value: '2' } });
  });

  it('treats __proto__ as an ordinary key', () => {
    const baggage = parseBaggage('__proto__=x,constructor=y')!;
    expect(Object.keys(baggage)).toEqual(['__proto__', 'constructor']);
    expect(baggage.__proto__).toEqual({ value: 'x' });
    expect(Object.getPrototypeOf(baggage)).toBeNull();
  });

  it('accepts 64 members and drops the ones after', () => {
    const members = range(70).map((i) => `k${i}=${i}`);
    const baggage = parseBaggage(members.join(','))!;
    expect(Object.keys(baggage)).toHaveLength(MAX_BAGGAGE_MEMBERS);
    expect(baggage.k63).toEqual({ value: '63' });
    expect(baggage.k64).toBeUndefined();
  });

  it('applies the member limit to all header fields together', () => {
    const first = range(40).map((i) => `a${i}=1`).join(',');
    const second = range(40).map((i) => `b${i}=1`).join(',');
    const baggage = parseBaggage([first, second])!;
    expect(Object.keys(baggage)).toHaveLength(64);
    expect(baggage.b23).toBeDefined();
    expect(baggage.b24).toBeUndefined();
  });

  it('does not count invalid members toward the limit', () => {
    const members = range(64).map((i) => `k${i}=${i}`);
    const baggage = parseBaggage(['bad', 'bad too', ...members].join(','))!;
    expect(Object.keys(baggage)).toHaveLength(64);
  });

  it('accepts exactly 8192 bytes', () => {
    const value = `a=${'v'.repeat(8190)}`;
    expect(parseBaggage(value)?.a?.value).toHaveLength(8190);
  });

  it('drops whole members from the end beyond 8192 bytes', () => {
    const big = `a=${'v'.repeat(8000)}`;
    const fits = `b=${'w'.repeat(189)}`; // 8002 + 1 + 191 = 8194 > 8192
    expect(parseBaggage(`${big},${fits.slice(0, -2)},c=1`)).toEqual({
      a: { value: 'v'.repeat(8000) },
      b: { value: 'w'.repeat(187) },
    });
    expect(parseBaggage(`${big},${fits},c=1`)).toEqual({ a: { value: 'v'.repeat(8000) } });
  });

  it('drops a single member over 8192 bytes', () => {
    expect(parseBaggage(`a=${'v'.repeat(8191)}`)).toBeUndefined();
  });

  it.each([
    ['a number', 42],
    ['null', null],
    ['an object', { a: '1' }],
    ['an array with a number', ['a=1', 2]],
    ['a symbol', Symbol('x')],
  ])('returns undefined for %s without throwing', (_, value) => {
    expect(parseBaggage(value)).toBeUndefined();
  });
});

describe('formatBaggage: policy', () => {
  it('percent-encodes keys that are not tokens and values (OTel: with/slash=with spaces)', () => {
    expect(formatBaggage({ 'with/slash': { value: 'with spaces' } })).toBe('with%2Fslash=with%20spaces');
  });

  it('leaves token keys and unreserved value characters as they are', () => {
    expect(formatBaggage({ "a!#$%&'*+-.^_`|~": { value: 'AZaz09-_.~' } })).toBe("a!#$%&'*+-.^_`|~=AZaz09-_.~");
  });

  it('encodes non-ASCII values as UTF-8 and parses them back', () => {
    const header = formatBaggage({ k: { value: 'caf\u00e9 \u{1f600}' } });
    expect(header).toBe('k=caf%C3%A9%20%F0%9F%98%80');
    expect(parseBaggage(header)?.k?.value).toBe('caf\u00e9 \u{1f600}');
  });

  it('encodes a lone surrogate as U+FFFD instead of throwing', () => {
    expect(formatBaggage({ k: { value: 'a\ud800b' } })).toBe('k=a%EF%BF%BDb');
    expect(formatBaggage({ k: { value: '\udc00\ud83d\ude00\ud83d' } })).toBe('k=%EF%BF%BD%F0%9F%98%80%EF%BF%BD');
  });

  it('writes metadata after the value', () => {
    expect(formatBaggage({ k: { value: 'v', metadata: 'p;q=1' } })).toBe('k=v;p;q=1');
  });

  it('normalises metadata and drops it when malformed', () => {
    expect(formatBaggage({ k: { value: 'v', metadata: ' p ; q = 1 ' } })).toBe('k=v;p;q=1');
    expect(formatBaggage({ k: { value: 'v', metadata: 'a,b=c' } })).toBe('k=v');
  });

  it('sends members larger than 4096 bytes (the spec has no per-member limit; OTel skips them)', () => {
    const value = 'v'.repeat(5000);
    expect(formatBaggage({ k: { value } })).toBe(`k=${value}`);
  });

  it('skips a member that would not fit and keeps smaller ones after it', () => {
    const header = formatBaggage({
      a: { value: 'v'.repeat(8000) },
      b: { value: 'w'.repeat(500) },
      c: { value: '1' },
    });
    expect(header).toBe(`a=${'v'.repeat(8000)},c=1`);
  });

  it('round-trips parsed baggage', () => {
    const header = 'a=1;p,b=x%20y,c=;q=r%2C';
    expect(formatBaggage(parseBaggage(header))).toBe(header);
  });

  it.each([
    ['undefined', undefined],
    ['an empty object', {}],
    ['an entry without a string value', { k: { value: 1 } }],
    ['a null entry', { k: null }],
    ['a non-object', 'k=v'],
    ['an empty key', { '': { value: 'v' } }],
  ])('returns undefined for %s', (_, baggage) => {
    expect(formatBaggage(baggage as unknown as Baggage)).toBeUndefined();
  });
});

describe('baggageAfter', () => {
  const trace: Baggage = { tenant: { value: 'acme' }, plan: { value: 'pro plus' } };

  it("adds the members whose keys a request's own header lacks; the header's members win", () => {
    // Sentry's baggage, set before ours.
    expect(baggageAfter(trace, 'sentry-trace_id=abc,sentry-sampled=true')).toBe('tenant=acme,plan=pro%20plus');
    expect(baggageAfter(trace, ' tenant = mine ;p, x=1')).toBe('plan=pro%20plus');
    expect(baggageAfter(trace, 'tenant=mine,plan=free')).toBeUndefined();
  });

  it('is formatBaggage without a header', () => {
    expect(baggageAfter(trace, undefined)).toBe(formatBaggage(trace));
    expect(baggageAfter(trace, null)).toBe(formatBaggage(trace));
    expect(baggageAfter(undefined, 'a=1')).toBeUndefined();
  });

  it('keeps the header and what it adds within 8192 bytes, joined by a comma and a space, leaving members off the end', () => {
    const header = `big=${'x'.repeat(MAX_BAGGAGE_BYTES - 20)}`;
    const more = baggageAfter({ fits: { value: '123456789' }, over: { value: '1' } }, header)!;
    expect(more).toBe('fits=123456789');
    expect(`${header}, ${more}`).toHaveLength(MAX_BAGGAGE_BYTES);
    expect(baggageAfter({ tooLong: { value: '1234567890' } }, header)).toBeUndefined();
  });

  it('keeps the header and what it adds within 180 members', () => {
    const header = range(175).map((i) => `h${i}=1`).join(',');
    const baggage: Baggage = {};
    for (const i of range(10)) baggage[`t${i}`] = { value: '1' };
    expect(baggageAfter(baggage, header)!.split(',')).toEqual(['t0=1', 't1=1', 't2=1', 't3=1', 't4=1']);
  });
});
