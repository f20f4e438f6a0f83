type WellFormed = { isWellFormed?(): boolean; toWellFormed(): string };

const SURROGATE = /[\ud800-\udfff]/;
// A pair is kept as it is; any other surrogate is lone. (No lookbehind: before Safari 16.4 a
// regular expression with one is a syntax error that would stop the whole bundle.)
const SURROGATES = /([\ud800-\udbff][\udc00-\udfff])|[\ud800-\udfff]/g;

/**
 * The string with each lone surrogate replaced by U+FFFD. A lone surrogate has no UTF-8 form:
 * JSON carries it as a `\ud83d` escape that strict protobuf JSON parsers refuse, and with it the
 * whole request, and SQLite stores it as bytes that are not UTF-8. Runtimes without
 * `isWellFormed()` (before Chrome 111, Firefox 119, Safari 16.4) look for a surrogate first, so a
 * string without one costs one scan.
 */
export const wellFormed = (s: string): string => {
  const w = s as unknown as WellFormed;
  if (w.isWellFormed) return w.isWellFormed() ? s : w.toWellFormed();
  return SURROGATE.test(s) ? s.replace(SURROGATES, (_, pair?: string) => pair ?? '\ufffd') : s;
};
