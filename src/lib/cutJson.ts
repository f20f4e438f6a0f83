import { cutAt } from './cutAt';

/**
 * The start of `json` (a JSON text, or the start of one) as valid JSON of at most `n` characters:
 * the containers still open at the cut are closed, a string value cut short ends in `…`, and a
 * key, number or literal that does not fit whole is left out with its member. A chat's messages
 * cut this way still read as messages, where a plain cut leaves text no JSON parser takes.
 * `cutAt(json, n)` when not even the outermost container fits (a number, `n` below 2).
 */
export const cutJson = (json: string, n: number): string => {
  // Closers of the containers open at the scan, innermost first; per container, whether the next
  // string in it is a key.
  let closers = '';
  const keyNext: boolean[] = [];
  let inString = false;
  let isKey = false;
  let escaped = false;
  let hexLeft = 0;
  // The best cut so far: the text up to `bestEnd`, then (inside a string value) `…"`, then closers.
  let bestEnd = -1;
  let bestInString = false;
  let bestClosers = '';
  const note = (end: number, open: boolean): void => {
    if (end + (open ? 2 : 0) + closers.length > n) return;
    bestEnd = end;
    bestInString = open;
    bestClosers = closers;
  };
  for (let i = 0; i < json.length && i <= n; i++) {
    const c = json.charCodeAt(i);
    if (inString) {
      if (hexLeft > 0) hexLeft--;
      else if (escaped) {
        escaped = false;
        if (c === 0x75 /* u */) hexLeft = 4;
      } else if (c === 0x22 /* " */) {
        inString = false;
        if (!isKey) note(i + 1, false);
      } else {
        // Before this character, unless it is the second half of a surrogate pair.
        if (!isKey && (c < 0xdc00 || c > 0xdfff)) note(i, true);
        escaped = c === 0x5c; /* \ */
      }
      continue;
    }
    switch (c) {
      case 0x22 /* " */:
        inString = true;
        isKey = keyNext.length > 0 && keyNext[keyNext.length - 1] === true;
        break;
      case 0x7b /* { */:
      case 0x5b /* [ */:
        closers = (c === 0x7b ? '}' : ']') + closers;
        keyNext.push(c === 0x7b);
        note(i + 1, false);
        break;
      case 0x7d /* } */:
      case 0x5d /* ] */:
        closers = closers.slice(1);
        keyNext.pop();
        note(i + 1, false);
        break;
      case 0x3a /* : */:
        if (keyNext.length) keyNext[keyNext.length - 1] = false;
        break;
      case 0x2c /* , */:
        // After a whole member or element: a number or literal ends here.
        note(i, false);
        if (closers[0] === '}') keyNext[keyNext.length - 1] = true;
        break;
    }
  }
  // A text that ends inside a string value (one already cut short) can end there too.
  if (inString && !isKey && !escaped && hexLeft === 0 && json.length <= n) note(json.length, true);
  if (bestEnd < 0) return cutAt(json, n);
  return json.slice(0, bestEnd) + (bestInString ? '…"' : '') + bestClosers;
};
