/**
 * Reading and writing propagation headers on whatever the host hands us: a fetch `Headers`,
 * anything with `get(name)` / `set(name, value)`, a plain object such as Node's
 * `IncomingHttpHeaders`, or a setter function. Nothing here throws, whatever the carrier does.
 */

/** Where incoming headers are read from. */
export type HeaderCarrier =
  | Headers
  | { get(name: string): string | null }
  | Record<string, string | string[] | undefined>;

/** A function that sets one outgoing header, for carriers we cannot write to directly. */
export type HeaderSetter = (name: string, value: string) => void;

/** Where outgoing headers are written to. */
export type WritableCarrier =
  | Headers
  | { set(name: string, value: string): unknown }
  | Record<string, string | string[] | undefined>
  | HeaderSetter;

const OWS_RE = /^[ \t]+|[ \t]+$/g;

/** Removes optional whitespace (spaces and horizontal tabs only, as RFC 7230 defines OWS) from both ends. */
export const trimOws = (s: string): string => {
  // Most values have none: checking the two ends is far cheaper than running the regex.
  const first = s.charCodeAt(0);
  const last = s.charCodeAt(s.length - 1);
  return first === 32 || first === 9 || last === 32 || last === 9 ? s.replace(OWS_RE, '') : s;
};

/**
 * Turns a header value that may arrive as several fields into one string, joined with `,`
 * (RFC 7230 §3.2.2). Gives `undefined` for anything that is not a string or an array of strings.
 */
export const joinHeader = (value: unknown): string | undefined => {
  if (typeof value === 'string') return value;
  if (!Array.isArray(value)) return undefined;
  for (const v of value) if (typeof v !== 'string') return undefined;
  return value.join(',');
};

/**
 * Reads header `name` from `carrier`, ignoring the case of the name.
 * Returns the raw value: a string, an array when the carrier holds several fields (including
 * keys of a plain object that differ only in case), or `undefined` when absent or unreadable.
 * Objects with a `get` method are asked for the lowercase name; fetch `Headers.get` joins
 * repeated fields with `", "`, which is what the parsers expect.
 */
export const readHeader = (carrier: unknown, name: string): string | string[] | undefined => {
  try {
    if (!carrier || typeof carrier !== 'object') return undefined;
    const lower = name.toLowerCase();
    const get = (carrier as { get?: unknown }).get;
    if (typeof get === 'function') {
      const v: unknown = get.call(carrier, lower);
      return typeof v === 'string' || Array.isArray(v) ? (v as string | string[]) : undefined;
    }
    // A plain object may spell the name in any case, and may even hold two spellings: collect
    // them all so that two `traceparent` fields are seen as two and rejected.
    const record = carrier as Record<string, unknown>;
    let found: unknown[] | undefined;
    for (const key of Object.keys(record)) {
      if (key.toLowerCase() !== lower) continue;
      const v = record[key];
      if (v === undefined || v === null) continue;
      (found ??= []).push(...(Array.isArray(v) ? v : [v]));
    }
    if (!found) return undefined;
    const [first] = found;
    if (found.length === 1 && typeof first === 'string') return first;
    return found as string[];
  } catch {
    // A hostile getter or Proxy: treat the header as absent.
    return undefined;
  }
};

/**
 * Writes header `name` (use lowercase) to `carrier`: calls a setter function, or `set()` on
 * `Headers`-like objects, or assigns the key on a plain object after removing other spellings
 * of the same name. Returns `false` when the carrier cannot be written (read-only `Headers`,
 * frozen object, getter-only carrier) instead of throwing.
 */
export const writeHeader = (carrier: unknown, name: string, value: string): boolean => {
  try {
    if (typeof carrier === 'function') {
      (carrier as HeaderSetter)(name, value);
      return true;
    }
    if (!carrier || typeof carrier !== 'object') return false;
    const set = (carrier as { set?: unknown }).set;
    if (typeof set === 'function') {
      set.call(carrier, name, value);
      return true;
    }
    // Something that can only be read (a `get`-only wrapper) is not ours to add keys to.
    if (typeof (carrier as { get?: unknown }).get === 'function') return false;
    const record = carrier as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (key !== name && key.toLowerCase() === name) delete record[key];
    }
    record[name] = value;
    return true;
  } catch {
    return false;
  }
};
