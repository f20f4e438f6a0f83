/**
 * Whether `value` is an http: or https: URL that `new URL()` accepts: absolute, or relative to
 * `base` when given. Not one with user:password, which fetch refuses to send to.
 */
export const isHttpUrl = (value: unknown, base?: string): value is string => {
  if (typeof value !== 'string') return false;
  try {
    const { protocol, username, password } = new URL(value, base);
    return (protocol === 'http:' || protocol === 'https:') && !username && !password;
  } catch {
    return false;
  }
};

/** The page's or worker's own URL, which relative URLs resolve against; undefined elsewhere. */
export const pageBase = (): string | undefined => {
  const href = (globalThis as { location?: { href?: unknown } }).location?.href;
  return typeof href === 'string' ? href : undefined;
};
