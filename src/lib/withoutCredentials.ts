/**
 * The URL as a span records it (`url.full`): without `user:password@`, which the HTTP semantic
 * conventions forbid keeping.
 */
export const withoutCredentials = (url: URL): string => {
  if (!url.username && !url.password) return url.href;
  const copy = new URL(url.href);
  copy.username = '';
  copy.password = '';
  return copy.href;
};
