/**
 * W3C Trace Context `tracestate`: an ordered list of vendor entries, `key=value` joined by `,`.
 * Spec: https://www.w3.org/TR/trace-context-2/#tracestate-header
 *
 * A trace state is kept as its normalised serialised string (`k=v,k2=v2`, no whitespace), which is
 * what goes on the wire, so passing one on costs nothing. All functions are pure: they return a
 * new string, or the very same one when nothing changes.
 *
 * Policy (the spec lets vendors choose; this is what the W3C suite checks at STRICT_LEVEL=2):
 * - Any malformed member, or more than 32 members, drops the WHOLE header.
 * - Duplicate keys: the first (left-most, most recent) entry is kept, later ones are dropped.
 * - Above 512 characters, whole entries are removed: entries longer than 128 characters first
 *   (from the right), then entries from the right end, until it fits.
 */
import { joinHeader, trimOws } from './carrier';

/** Most members a trace state may hold. */
export const MAX_TRACESTATE_MEMBERS = 32;
/** Longest trace state we propagate, in characters (the spec's "at least 512"). */
export const MAX_TRACESTATE_LENGTH = 512;
/** Entries longer than this are the first to go when truncating (spec). */
const LARGE_MEMBER_LENGTH = 128;

// key   = (lcalpha / DIGIT) 0*255(lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@")  (current spec grammar)
// value = 0*255(chr) nblk-chr; chr = %x20 / nblk-chr; nblk-chr = %x21-2B / %x2D-3C / %x3E-7E
const MEMBER_RE = /^[a-z0-9][a-z0-9_\-*/@]{0,255}=[\x20-\x2b\x2d-\x3c\x3e-\x7e]{0,255}[\x21-\x2b\x2d-\x3c\x3e-\x7e]$/;

const keyOf = (member: string): string => member.slice(0, member.indexOf('='));

/** Removes whole members until the list serialises to at most `max` characters (mutates). */
const fit = (members: string[], max: number): string[] => {
  let total = members.join(',').length;
  while (total > max && members.length) {
    let i = members.length - 1;
    while (i >= 0 && members[i]!.length <= LARGE_MEMBER_LENGTH) i--;
    const [removed] = members.splice(i < 0 ? members.length - 1 : i, 1);
    total -= removed!.length + 1;
  }
  return members;
};

/**
 * Parses `tracestate` header field(s) into the normalised form `k=v,k2=v2`. Takes a string or an
 * array of strings (several header fields, joined in order). Whitespace around members and empty
 * members are ignored. Returns `undefined` when the result is empty, or when the header is
 * invalid as a whole (see the policy above). Never throws.
 */
export const parseTracestate = (value: unknown): string | undefined => {
  const joined = joinHeader(value);
  if (!joined) return undefined;
  const members: string[] = [];
  const keys: string[] = [];
  let count = 0;
  for (const part of joined.split(',')) {
    const member = trimOws(part);
    if (!member) continue;
    if (++count > MAX_TRACESTATE_MEMBERS || !MEMBER_RE.test(member)) return undefined;
    const key = keyOf(member);
    if (keys.includes(key)) continue;
    keys.push(key);
    members.push(member);
  }
  return fit(members, MAX_TRACESTATE_LENGTH).join(',') || undefined;
};

/**
 * Returns the value stored under `key` in a normalised trace state, or `undefined`.
 */
export const getTracestate = (state: string | undefined, key: string): string | undefined => {
  if (typeof state !== 'string') return undefined;
  const prefix = key + '=';
  for (const member of state.split(',')) {
    if (member.startsWith(prefix)) return member.slice(prefix.length);
  }
  return undefined;
};

/**
 * Sets `key=value` as the left-most entry (new and updated keys go to the front, as the spec
 * requires), keeping the order of the others. A 33rd member pushes out the right-most one. An
 * invalid key or value, or an entry that would take the whole past 512 characters, returns
 * `state` unchanged (the same string), as OpenTelemetry's TraceState.set does.
 */
export const setTracestate = (
  state: string | undefined,
  key: string,
  value: string,
): string | undefined => {
  const member = `${key}=${value}`;
  if (!MEMBER_RE.test(member) || member.length > MAX_TRACESTATE_LENGTH) return state;
  const rest = typeof state === 'string' && state ? state.split(',') : [];
  const next = [member, ...rest.filter((m) => keyOf(m) !== key).slice(0, MAX_TRACESTATE_MEMBERS - 1)].join(',');
  return next.length > MAX_TRACESTATE_LENGTH ? state : next;
};

/**
 * Removes `key` (exact, case-sensitive match) from a normalised trace state. Returns the same
 * `state` when the key is absent, and `undefined` when nothing is left.
 */
export const unsetTracestate = (state: string | undefined, key: string): string | undefined => {
  if (typeof state !== 'string' || !state) return state;
  const members = state.split(',');
  const kept = members.filter((m) => keyOf(m) !== key);
  if (kept.length === members.length) return state;
  return kept.join(',') || undefined;
};
