import { nanoid } from 'nanoid';

// Random bytes come from one pooled getRandomValues() call instead of one call per id: a span id
// then costs a few table look-ups. 4096 bytes hold about 170 trace and span id pairs.
const POOL_BYTES = 4096;
// Char codes of '0'-'9' and 'a'-'f', for building an id with one String.fromCharCode call: one
// flat string instead of a chain of concatenations.
const HEX = [48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 97, 98, 99, 100, 101, 102];
// One reusable buffer per id length, so String.fromCharCode.apply() reads exactly the id.
const CODES: Record<number, number[]> = { 8: new Array<number>(16).fill(48), 16: new Array<number>(32).fill(48) };

let pool: Uint8Array | undefined;
let offset = POOL_BYTES;

const refill = (): Uint8Array => {
  pool ??= new Uint8Array(POOL_BYTES);
  const c = (globalThis as { crypto?: Crypto }).crypto;
  if (c && typeof c.getRandomValues === 'function') c.getRandomValues(pool);
  else for (let i = 0; i < POOL_BYTES; i++) pool[i] = (Math.random() * 256) | 0;
  offset = 0;
  return pool;
};

const hexId = (bytes: 8 | 16): string => {
  for (;;) {
    const p = offset + bytes > POOL_BYTES ? refill() : (pool as Uint8Array);
    const codes = CODES[bytes] as number[];
    let zero = 0;
    for (let i = 0; i < bytes; i++) {
      const b = p[offset + i] as number;
      zero |= b;
      codes[2 * i] = HEX[b >> 4] as number;
      codes[2 * i + 1] = HEX[b & 15] as number;
    }
    offset += bytes;
    // W3C forbids all-zero ids; the chance is 2^-64 at worst, but the check is free.
    if (zero) return String.fromCharCode.apply(null, codes);
  }
};

/** A new W3C trace id: 32 lowercase hex characters, never all zero. */
export const newTraceId = (): string => hexId(16);

/** A new W3C span id: 16 lowercase hex characters, never all zero. */
export const newSpanId = (): string => hexId(8);

/** A URL-safe unique id for records that are not spans (scores, sessions). */
export const newId = (): string => nanoid();
