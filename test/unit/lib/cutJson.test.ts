import { describe, expect, it } from 'vitest';
import { cutJson } from '../../../src/lib/cutJson';

// A small deterministic generator, so a failure names the seed that made it.
const random = (seed: number) => () => ((seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31);

const value = (next: () => number, depth: number): unknown => {
  const r = next();
  if (depth > 3 || r < 0.3) {
    const k = Math.floor(next() * 6);
    if (k === 0) return Math.floor(next() * 1e6) / 7;
    if (k === 1) return next() < 0.5;
    if (k === 2) return null;
    // Strings with what JSON escapes, and surrogate pairs.
    const pieces = ['plain text ', 'quote " ', 'back\\slash ', 'new\nline ', 'ctl\u0001 ', '😀', 'é', 'tab\t'];
    return Array.from({ length: Math.floor(next() * 6) }, () => pieces[Math.floor(next() * pieces.length)]).join('');
  }
  if (r < 0.65) return Array.from({ length: Math.floor(next() * 5) }, () => value(next, depth + 1));
  return Object.fromEntries(Array.from({ length: Math.floor(next() * 5) }, (_, i) => [`k${i}"\\${i}`, value(next, depth + 1)]));
};

describe('cutJson', () => {
  it('gives valid JSON of at most n characters for every cut of many values', () => {
    for (let seed = 1; seed <= 60; seed++) {
      const json = JSON.stringify(value(random(seed), 0));
      if (json[0] !== '{' && json[0] !== '[' && json[0] !== '"') continue;
      // From 3, the least a string needs ("…"); the tracer's limit is at least 16.
      for (let n = 3; n < json.length; n++) {
        const out = cutJson(json, n);
        expect(out.length, `seed ${seed}, n ${n}`).toBeLessThanOrEqual(n);
        expect(() => JSON.parse(out), `seed ${seed}, n ${n}: ${out}`).not.toThrow();
      }
    }
  });

  it('keeps the start: whole messages first, then the one cut short, marked', () => {
    const messages = [
      { role: 'system', content: 'You are terse.' },
      { role: 'user', content: 'Tell me everything about the history of tracing in distributed systems.' },
    ];
    const out = cutJson(JSON.stringify(messages), 80);
    expect(out.length).toBeLessThanOrEqual(80);
    const parsed = JSON.parse(out) as { role: string; content: string }[];
    expect(parsed[0]).toEqual(messages[0]);
    expect(parsed[1]!.role).toBe('user');
    expect(parsed[1]!.content.endsWith('…')).toBe(true);
    expect(messages[1]!.content.startsWith(parsed[1]!.content.slice(0, -1))).toBe(true);
  });

  it('leaves out a member whose key or number does not fit, and never splits an escape or a surrogate pair', () => {
    expect(cutJson('{"a":1,"longer key":2}', 12)).toBe('{"a":1}');
    expect(cutJson('[12345,67890]', 10)).toBe('[12345]');
    expect(cutJson('["\\u00e9\\u00e9"]', 11)).toBe('["\\u00e9…"]');
    expect(cutJson('["\\u00e9\\u00e9"]', 10)).toBe('["…"]');
    expect(cutJson('["ab😀cd"]', 8)).toBe('["ab…"]');
    // Nothing fits whole: the plain cut.
    expect(cutJson('123456', 3)).toBe('123');
  });

  it('closes the start of a text already cut short', () => {
    expect(JSON.parse(cutJson('{"messages":[{"role":"user","content":"hel', 60))).toEqual({ messages: [{ role: 'user', content: 'hel…' }] });
  });
});
