/**
 * A request as its client sent it, read from the headers the reverse proxies in front of the
 * collector add: `X-Forwarded-For` (the client's address), `X-Forwarded-Proto` and
 * `X-Forwarded-Host` (the URL the client used). Only for proxies the operator names by their
 * number: these are headers any client can write too.
 */

/**
 * The value the outermost of `hops` proxies wrote in a header they each add to (or, for one that
 * sets it, the only value): the entry `hops` from the right. What a client wrote itself stands
 * further left, so is never taken, unless there are fewer proxies than `hops`, when the leftmost
 * entry is all there is.
 */
export const outermost = (value: string | null, hops: number): string | undefined => {
  if (!value) return undefined;
  const entries = value.split(',').map((e) => e.trim());
  const entry = entries[Math.max(0, entries.length - hops)];
  return entry || undefined;
};

/** An address as `X-Forwarded-For` may spell it (`[::1]:443`, `203.0.113.9:52100`), without brackets or port. */
const addressOf = (entry: string): string => {
  const v6 = /^\[([^\]]+)\](?::\d+)?$/.exec(entry);
  if (v6) return v6[1]!;
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(entry);
  return (v4 ? v4[1]! : entry).slice(0, 100);
};

/** What `hops` proxies say of a request: the URL its client used, and the client's address when they name it. */
export const throughProxies = (request: Request, url: URL, hops: number): { url: URL; client?: string } => {
  const proto = outermost(request.headers.get('x-forwarded-proto'), hops)?.toLowerCase();
  const scheme = proto === 'https' || proto === 'http' ? proto : url.protocol.slice(0, -1);
  const host = outermost(request.headers.get('x-forwarded-host'), hops) ?? url.host;
  let seen = url;
  try {
    const origin = new URL(`${scheme}://${host}`);
    // scheme://host[:port] and nothing else: a host with a path or user in it is no host.
    if (origin.pathname === '/' && !origin.username && !origin.password && !origin.search && !origin.hash) {
      seen = new URL(origin.origin + url.pathname + url.search);
    }
  } catch {
    // Not a host: the URL as it arrived.
  }
  const forwardedFor = outermost(request.headers.get('x-forwarded-for'), hops);
  return forwardedFor ? { url: seen, client: addressOf(forwardedFor) } : { url: seen };
};
