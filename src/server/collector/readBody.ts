/** A request body's bytes, or why it was refused (with the HTTP status to answer). */
export type BodyResult = { ok: true; bytes: Uint8Array } | { ok: false; status: 400 | 413 | 415 | 503; message: string };

/** Room shared by the bodies being read at once: `take` reserves bytes, or says there is none. */
export interface BodyBudget {
  take(bytes: number): boolean;
}

/** The first bytes of every gzip stream (RFC 1952). Neither JSON nor protobuf can start with them. */
const GZIP_MAGIC = [0x1f, 0x8b];

/**
 * `stream`'s bytes, with whether they start as gzip does: at least two bytes are read to tell, and
 * given back at the front of the stream returned.
 */
const sniffGzip = async (stream: ReadableStream<Uint8Array>): Promise<{ stream: ReadableStream<Uint8Array>; isGzip: boolean }> => {
  const reader = stream.getReader();
  const head: Uint8Array[] = [];
  let seen = 0;
  let done = false;
  while (seen < GZIP_MAGIC.length && !done) {
    const r = await reader.read();
    if (r.done) done = true;
    else {
      head.push(r.value);
      seen += r.value.byteLength;
    }
  }
  const bytes = head.flatMap((c) => [...c.subarray(0, GZIP_MAGIC.length)]).slice(0, GZIP_MAGIC.length);
  const isGzip = GZIP_MAGIC.every((b, i) => bytes[i] === b);
  const rest = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const c of head) controller.enqueue(c);
      if (done) controller.close();
    },
    async pull(controller) {
      const r = await reader.read();
      if (r.done) controller.close();
      else controller.enqueue(r.value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
  return { stream: rest, isGzip };
};

/**
 * Reads a request body, at most `maxBytes` after decompression. `Content-Encoding`
 * may be absent, `identity` or `gzip` (through `DecompressionStream`, where the runtime has it).
 * A body without it that starts as gzip does is gzip too: a proxy dropped the header.
 * A declared `Content-Length` above the limit is refused before anything is read; otherwise
 * reading stops, and the stream is cancelled, as soon as the limit is passed, so a small
 * compressed body cannot inflate into a large one. Each chunk's bytes are reserved from
 * `budget` as they arrive; when it has no room, reading stops the same way (503).
 */
export const readBody = async (request: Request, maxBytes: number, budget: BodyBudget): Promise<BodyResult> => {
  const encoding = (request.headers.get('content-encoding') ?? 'identity').trim().toLowerCase();
  const declaredGzip = encoding === 'gzip' || encoding === 'x-gzip';
  if (!declaredGzip && encoding !== 'identity' && encoding !== '') {
    return { ok: false, status: 415, message: `content-encoding "${encoding.slice(0, 40)}" is not supported; send gzip or none` };
  }
  const declared = Number(request.headers.get('content-length'));
  if (Number.isFinite(declared) && declared > maxBytes) {
    return { ok: false, status: 413, message: `the body is ${declared} bytes; the limit is ${maxBytes}` };
  }
  if (!request.body) return { ok: true, bytes: new Uint8Array(0) };
  let raw: ReadableStream<Uint8Array> = request.body;
  let gzip = declaredGzip;
  if (!gzip) {
    try {
      ({ stream: raw, isGzip: gzip } = await sniffGzip(raw));
    } catch (error) {
      return { ok: false, status: 400, message: `the body could not be read: ${error instanceof Error ? error.message : String(error)}` };
    }
  }
  let stream: ReadableStream<Uint8Array> = raw;
  if (gzip) {
    if (typeof DecompressionStream !== 'function') {
      await raw.cancel().catch(() => undefined);
      return { ok: false, status: 415, message: 'gzip bodies are not supported in this runtime; send the body uncompressed' };
    }
    stream = raw.pipeThrough(new DecompressionStream('gzip') as unknown as ReadableWritablePair<Uint8Array, Uint8Array>);
  }
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => undefined);
        return { ok: false, status: 413, message: `the body is over the limit of ${maxBytes} bytes${gzip ? ' (after gzip decompression)' : ''}` };
      }
      if (!budget.take(value.byteLength)) {
        await reader.cancel().catch(() => undefined);
        return { ok: false, status: 503, message: 'the collector is reading as many bodies as it holds at once, in all or from this client; send again later' };
      }
      chunks.push(value);
    }
  } catch (error) {
    await reader.cancel().catch(() => undefined);
    const detail = error instanceof Error ? error.message : String(error);
    const undeclared = gzip && !declaredGzip ? ' (it starts as gzip does but came without Content-Encoding: gzip, which a proxy may have dropped)' : '';
    return { ok: false, status: 400, message: gzip ? `the gzip body could not be decompressed${undeclared}: ${detail}` : `the body could not be read: ${detail}` };
  }
  if (chunks.length === 1) return { ok: true, bytes: chunks[0]! };
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  return { ok: true, bytes };
};
