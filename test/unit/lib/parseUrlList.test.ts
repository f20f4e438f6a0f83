import { describe, expect, it } from 'vitest';
import { parseUrlList } from '../../../src/lib/parseUrlList';

describe('parseUrlList (the script tag data-propagate-to)', () => {
  it('splits origins and prefixes on spaces and commas', () => {
    expect(parseUrlList(' https://a.test, https://b.test/api\nhttps://c.test,,')).toEqual(['https://a.test', 'https://b.test/api', 'https://c.test']);
  });

  it('keeps a pattern with a comma in it whole', () => {
    const [re] = parseUrlList('/^http:\\/\\/localhost:\\d{1,5}\\//i') as RegExp[];
    expect(re).toBeInstanceOf(RegExp);
    expect(re!.flags).toBe('i');
    expect(re!.test('http://LOCALHOST:8080/x')).toBe(true);
    expect(re!.test('http://localhost:123456/x')).toBe(false);
  });

  it('reads patterns and origins side by side, a pattern set apart by white space', () => {
    const out = parseUrlList('https://a.test, /^https:\\/\\/b\\.test\\// https://c.test');
    expect(out.map((x) => (x instanceof RegExp ? `re:${x.source}` : x))).toEqual(['https://a.test', 're:^https:\\/\\/b\\.test\\/', 'https://c.test']);
  });

  it('names a pattern that does not compile, rather than take it for a URL prefix', () => {
    expect(() => parseUrlList('https://a.test /^(/')).toThrow(/\/\^\(\/ is not a regular expression/);
  });
});
