/**
 * W3C Baggage: application key/value pairs that travel with a request, `k=v;prop,k2=v2`.
 * Spec: https://www.w3.org/TR/baggage/
 *
 * Shape: a null-prototype record keyed by the member key (so `__proto__` is just a key), whose
 * values are percent-decoded and whose properties are kept as one normalised metadata string.
 *
 * Policy (the spec leaves invalid input and over-limit handling to us):
 * - Members without `=`, with a key that is not an RFC 7230 token, or with a value holding
 *   characters outside baggage-octet are dropped; the other members are kept. Empty values are
 *   valid (`k=`), as the grammar says.
 * - Keys are taken verbatim (the spec does not percent-encode keys). A duplicate key overwrites
 *   the earlier value, as assigning into a record does.
 * - Incoming: up to 64 members and 8192 bytes are accepted (the amount the spec says MUST be
 *   propagated); the first member that would exceed either limit and everything after it is
 *   dropped, never part of a member.
 * - Outgoing: members are emitted until 8192 bytes; a member that would not fit is skipped.
 *   There is no per-member cap: a single 8192-byte member is valid and is sent.
 * - Added to a request's own header: only the keys it lacks, the two within 180 members (the
 *   grammar's) and 8192 bytes.
 */
import { joinHeader, trimOws } from './carrier';
import { wellFormed } from '../lib/wellFormed';

/** One baggage member. */
export interface BaggageEntry {
  /** The decoded value. */
  value: string;
  /** Properties as written after the value, `;`-separated (`p1;p2=v`), percent-encoding kept. */
  metadata?: string;
}

/** Baggage keyed by member key. Parsed baggage has a null prototype. */
export type Baggage = Record<string, BaggageEntry>;

/** Most members accepted from an incoming header. */
export const MAX_BAGGAGE_MEMBERS = 64;
/** Most bytes of baggage accepted or emitted, commas included. */
export const MAX_BAGGAGE_BYTES = 8192;

// token = 1*tchar (RFC 7230); baggage-octet = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E
const TOKEN_RE = /^[!#$%&'*+\-.^_`|~0-9a-zA-Z]+$/;
const VALUE_RE = /^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*$/;
const HEX2_RE = /^[0-9a-fA-F]{2}$/;
// encodeURIComponent leaves these alone although RFC 3986 reserves them; encoding them too
// gives the output the W3C reference serializer expects.
const EXTRA_ENCODE_RE = /[!'()*]/g;
// encodeURIComponent throws on a lone surrogate; WHATWG's UTF-8 encoder writes U+FFFD instead,
// and so do we (wellFormed).
const percentEncode = (s: string): string =>
  encodeURIComponent(wellFormed(s)).replace(
    EXTRA_ENCODE_RE,
    (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase(),
  );

/** Percent-decodes `s` (ASCII only, already validated). Bad UTF-8 becomes U+FFFD; a stray `%` stays. */
const percentDecode = (s: string): string => {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    // Invalid UTF-8 or a `%` without two hex digits: decode byte by byte instead.
  }
  const bytes = new Uint8Array(s.length);
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const hex = s.slice(i + 1, i + 3);
    if (s.charCodeAt(i) === 37 && HEX2_RE.test(hex)) {
      bytes[n++] = parseInt(hex, 16);
      i += 2;
    } else {
      bytes[n++] = s.charCodeAt(i);
    }
  }
  return new TextDecoder().decode(bytes.subarray(0, n));
};

/**
 * Normalises a property list (`p1 ; p2 = v`) to `p1;p2=v`, dropping empty and malformed properties.
 */
const normaliseMetadata = (metadata: string): string | undefined => {
  const out: string[] = [];
  for (const part of metadata.split(';')) {
    const prop = trimOws(part);
    const eq = prop.indexOf('=');
    if (eq < 0) {
      if (TOKEN_RE.test(prop)) out.push(prop);
      continue;
    }
    const key = trimOws(prop.slice(0, eq));
    const value = trimOws(prop.slice(eq + 1));
    if (TOKEN_RE.test(key) && VALUE_RE.test(value)) out.push(key + '=' + value);
  }
  return out.length ? out.join(';') : undefined;
};

/**
 * Parses `baggage` header field(s): a string, or an array of strings joined in order. Whitespace
 * around `,`, `;` and `=` is ignored, values are percent-decoded, and invalid members are dropped
 * while the others are kept (see the policy above). Returns `undefined` when no member is left.
 * Never throws.
 */
export const parseBaggage = (value: unknown): Baggage | undefined => {
  const joined = joinHeader(value);
  if (!joined) return undefined;
  const out: Baggage = Object.create(null);
  let count = 0;
  let bytes = -1; // the first member has no comma before it
  for (const part of joined.split(',')) {
    const member = trimOws(part);
    const semi = member.indexOf(';');
    const pair = semi < 0 ? member : member.slice(0, semi);
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    const key = trimOws(pair.slice(0, eq));
    const raw = trimOws(pair.slice(eq + 1));
    if (!TOKEN_RE.test(key) || !VALUE_RE.test(raw)) continue;
    // The header is ASCII by now, so characters are bytes.
    bytes += member.length + 1;
    if (count === MAX_BAGGAGE_MEMBERS || bytes > MAX_BAGGAGE_BYTES) break;
    count++;
    const entry: BaggageEntry = { value: percentDecode(raw) };
    const metadata = semi < 0 ? undefined : normaliseMetadata(member.slice(semi + 1));
    if (metadata) entry.metadata = metadata;
    out[key] = entry;
  }
  return count ? out : undefined;
};

/**
 * `base` with `members` set (a text value, or an entry with its properties) or removed
 * (`undefined`), as a new object: at most {@link MAX_BAGGAGE_MEMBERS} members, the ones already
 * there first. Anything else is left out. `undefined` when no member is left.
 */
export const withMembers = (base: Baggage | undefined, members: Record<string, string | BaggageEntry | undefined>): Baggage | undefined => {
  // No prototype: "__proto__" and "toString" are keys like any other.
  const next: Baggage = Object.assign(Object.create(null), base);
  for (const [key, v] of Object.entries(members)) {
    const value = typeof v === 'string' ? v : v?.value;
    if (v === undefined) delete next[key];
    else if (key && typeof value === 'string' && (Object.hasOwn(next, key) || Object.keys(next).length < MAX_BAGGAGE_MEMBERS)) {
      next[key] = typeof v === 'object' && v.metadata !== undefined ? { value, metadata: String(v.metadata) } : { value };
    }
  }
  return Object.keys(next).length ? next : undefined;
};

/**
 * Splits a member's metadata into its properties, in order, with values percent-decoded.
 * A property without `=` is a bare key and is returned as written (not decoded).
 */
export const parseBaggageMetadata = (
  metadata: string | undefined,
): Array<{ key: string; value?: string }> => {
  const normal = typeof metadata === 'string' ? normaliseMetadata(metadata) : undefined;
  if (!normal) return [];
  return normal.split(';').map((prop) => {
    const eq = prop.indexOf('=');
    return eq < 0 ? { key: prop } : { key: prop.slice(0, eq), value: percentDecode(prop.slice(eq + 1)) };
  });
};

/**
 * Serialises baggage for the `baggage` header. Values are percent-encoded (everything except
 * `A-Z a-z 0-9 - _ . ~`); a key that is not a valid token is percent-encoded the same way;
 * metadata is normalised, and dropped if malformed. Members are added in key order until 8192
 * bytes; one that would not fit is skipped. Returns `undefined` when nothing is left to send.
 */
export const formatBaggage = (baggage: Baggage | undefined): string | undefined => {
  if (!baggage || typeof baggage !== 'object') return undefined;
  let out = '';
  for (const key of Object.keys(baggage)) {
    const entry = baggage[key];
    if (!key || !entry || typeof entry.value !== 'string') continue;
    const metadata = typeof entry.metadata === 'string' ? normaliseMetadata(entry.metadata) : undefined;
    const member =
      (TOKEN_RE.test(key) ? key : percentEncode(key)) +
      '=' +
      percentEncode(entry.value) +
      (metadata ? ';' + metadata : '');
    if (out.length + (out ? 1 : 0) + member.length > MAX_BAGGAGE_BYTES) continue;
    out += (out ? ',' : '') + member;
  }
  return out || undefined;
};

/** Most members of one `baggage` header: the spec's grammar has a first and up to 179 more. */
const MAX_HEADER_MEMBERS = 180;

/**
 * The members of `baggage` to add to a request that has a `baggage` header already (the app's,
 * or another tracer's), formatted to go after it: those whose keys `header` lacks, so its own
 * members stay as they are, and one the app set wins for its key. With the comma and space that
 * join them, the two stay within 180 members and 8192 bytes (members past that are left off the
 * end). Without `header`, all of `baggage`, as {@link formatBaggage} formats it.
 */
export const baggageAfter = (baggage: Baggage | undefined, header?: string | null): string | undefined => {
  if (!header) return formatBaggage(baggage);
  const keys = new Set<string>();
  let members = 0;
  for (const member of header.split(',')) {
    const key = trimOws(member.split('=', 1)[0]!);
    if (!key) continue;
    keys.add(key);
    members++;
  }
  const rest: Baggage = Object.create(null);
  for (const key in baggage) if (!keys.has(key) && members++ < MAX_HEADER_MEMBERS) rest[key] = baggage[key]!;
  let out = formatBaggage(rest);
  while (out && header.length + 2 + out.length > MAX_BAGGAGE_BYTES) out = out.slice(0, Math.max(out.lastIndexOf(','), 0)) || undefined;
  return out;
};
