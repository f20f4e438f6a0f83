/**
 * Responses whose body `fetch()` has already decoded while their headers still name the
 * Content-Encoding: Node's fetch (undici) hands out gzip, deflate and br bodies decompressed.
 * Written to a Node socket as they are, those headers would label plain bytes as compressed, so
 * the Node adapter leaves them out. A constructed Response (type `default`) is taken at its word:
 * its body is what its headers say, unless it was marked as a copy of a decoded one.
 */
const copies = new WeakSet<Response>();
const DECODED = /^(x-gzip|gzip|deflate|br)$/i;

/** Whether `response`'s body was decoded by fetch although `content-encoding` says otherwise. */
export const isDecoded = (response: Response): boolean => {
  if (copies.has(response)) return true;
  const encoding = response.type !== 'default' ? response.headers.get('content-encoding') : null;
  return !!encoding && encoding.split(',').every((coding) => DECODED.test(coding.trim()));
};

/** Marks a copy of a decoded response (same headers, same decoded body) as decoded too. */
export const markDecoded = (response: Response): void => {
  copies.add(response);
};
