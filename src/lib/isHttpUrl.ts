/** Whether `value` is an http: or https: URL that `new URL()` accepts: absolute, or relative to `base` when given. */
export const isHttpUrl = (value: unknown, base?: string): value is string => {
  if (typeof value !== 'string') return false;
  try {
    const { protocol } = new URL(value, base);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
};

/** The page's or worker's own URL, which relative URLs resolve against; undefined elsewhere. */
export const pageBase = (): string | undefined => {
  const href = (globalThis as { location?: { href?: unknown } }).location?.href;
  return typeof href === 'string' ? href : undefined;
};
