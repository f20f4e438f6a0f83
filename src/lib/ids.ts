import { nanoid } from 'nanoid';

// Random bytes come from one pooled getRandomValues() call instead of one call per id: a span id
// then costs a few table look-ups. 4096 bytes hold about 170 trace and span id pairs.
const POOL_BYTES = 4096;
const HEX: string[] = [];
for (let i = 0; i < 256; i++) HEX.push((i < 16 ? '0' : '') + i.toString(16));

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

const hexId = (bytes: number): string => {
  for (;;) {
    const p = offset + bytes > POOL_BYTES ? refill() : (pool as Uint8Array);
    let out = '';
    let zero = true;
    for (let i = offset, end = offset + bytes; i < end; i++) {
      const b = p[i] as number;
      if (b !== 0) zero = false;
      out += HEX[b];
    }
    offset += bytes;
    // W3C forbids all-zero ids; the chance is 2^-64 at worst, but the check is free.
    if (!zero) return out;
  }
};

/** A new W3C trace id: 32 lowercase hex characters, never all zero. */
export const newTraceId = (): string => hexId(16);

/** A new W3C span id: 16 lowercase hex characters, never all zero. */
export const newSpanId = (): string => hexId(8);

/** A URL-safe unique id for records that are not spans (scores, sessions). */
export const newId = (): string => nanoid();
