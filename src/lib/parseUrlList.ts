/**
 * Reads a list of URL matchers written in one attribute (the script tag's `data-propagate-to`):
 * origins or URL prefixes separated by spaces or commas, and regular expressions written as
 * `/pattern/flags`, set apart by white space. A pattern ends at white space, not at a comma, so
 * `\d{1,5}` stays whole (write a space in a pattern as `\s` or `\x20`). A pattern is tried
 * against the whole URL: anchor it (`/^https:\/\/api\.example\.com\//`), or `/api/` matches
 * every URL with `api` in it, on any origin. Text that looks like a pattern but does not compile
 * throws a `TypeError` naming it: taken as a URL prefix instead, it would match nothing, and
 * the requests it was meant for would lose their trace headers in silence.
 */
export const parseUrlList = (text: string): (string | RegExp)[] => {
  const out: (string | RegExp)[] = [];
  for (const word of text.split(/\s+/)) {
    const m = /^\/(.+)\/([a-z]*)$/.exec(word);
    if (!m) {
      for (const item of word.split(',')) if (item) out.push(item);
      continue;
    }
    try {
      out.push(new RegExp(m[1]!, m[2]));
    } catch (error) {
      throw new TypeError(`${word} is not a regular expression (${(error as Error).message})`);
    }
  }
  return out;
};
