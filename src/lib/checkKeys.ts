/**
 * `K`, the list of keys of `T`, when it names every one of them; else a type the list does not
 * fit, whose `missing` names what it lacks. A `satisfies readonly (keyof T)[]` on the list keeps
 * out keys `T` does not have, so an option added to an interface and not to its list fails to
 * compile, at no cost in the bundle.
 */
export type AllKeys<T, K extends readonly (keyof T)[]> = [Exclude<keyof T, K[number]>] extends [never] ? K : { missing: Exclude<keyof T, K[number]> };

/** Edit distance of `a` and `b`, for a suggestion: a typo is a letter or two away. */
const distance = (a: string, b: string): number => {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
};

/** A key as compared: lower case, without a tag attribute's `data-`. */
const bare = (key: string): string => key.toLowerCase().replace(/^data-/, '');

/**
 * The entry of `known` that `key` is likely a typo of: the same but for case, a letter or two
 * away, or the start or end of it (`service` for `serviceName`, `data-propagate` for
 * `data-propagate-to`, `token` for `ingestToken`).
 */
export const nearestKey = (key: string, known: readonly string[]): string | undefined => {
  const b = bare(key);
  return known.find((k) => {
    const kb = bare(k);
    return kb === b || distance(k, key) <= 2 || (b.length > 3 && (kb.startsWith(b) || kb.endsWith(b)));
  });
};

/**
 * Throws a `TypeError` naming the first key of `opts` that `known` lacks, with the known key it
 * is likely a typo of, rather than leave it ignored: `propagateTO` would otherwise send no trace
 * headers to the API, and `exporer` fall back to the environment's exporter, without a word.
 * `prefix` places a nested object's keys (`"limits."`).
 */
export const checkKeys = (call: string, opts: object, known: readonly string[], prefix = ''): void => {
  for (const key of Object.keys(opts)) {
    if (known.includes(key)) continue;
    const near = nearestKey(key, known);
    throw new TypeError(`[edgetrace] ${call}: "${prefix}${key}" is not an option${near ? ` (did you mean "${prefix}${near}"?)` : ''}.`);
  }
};
