/** A URL pattern in options such as `propagateTo` and `ignoreUrls`. */
export type UrlPattern = string | RegExp;

/** Tests an absolute URL (`href`) whose origin is `origin`. */
export type UrlTest = (href: string, origin: string) => boolean;

/**
 * Turns a pattern into a test on absolute URLs:
 * - a RegExp is tested against the whole URL;
 * - a string that is only an origin (`https://api.example.com`, with or without a trailing `/`)
 *   matches that origin exactly, so `https://api.example.com.evil.test` does not match;
 * - any other string matches URLs that start with it, after resolving it against `base`
 *   (so `/v1/traces` means that path on the page's own origin).
 * Never a substring match: `api.example.com` anywhere in a query string must not qualify.
 */
export const toUrlTest = (pattern: UrlPattern, base?: string): UrlTest => {
  if (pattern instanceof RegExp) {
    return (href) => {
      // A `g` or `y` flag makes test() start at lastIndex, which would make matches alternate.
      pattern.lastIndex = 0;
      return pattern.test(href);
    };
  }
  let url: URL | undefined;
  try {
    url = new URL(pattern, base);
  } catch {
    // Not a URL even with the base (no base outside a page): compare the text as given.
  }
  if (!url) return (href) => href.startsWith(pattern);
  if (/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*\/?$/i.test(pattern)) {
    const origin = url.origin;
    return (_href, o) => o === origin;
  }
  const prefix = url.href;
  return (href) => href.startsWith(prefix);
};

/**
 * Whether `p` is a pattern that can match: a RegExp, a URL with its scheme
 * (`https://api.example.com`), or, on a page, a path (`/api/`, `./x`, `//host`). A bare host
 * (`api.example.com`, as other SDKs take it) or `*` would resolve as a path of the page, or
 * nothing on a server, and match nothing.
 */
export const isUrlPattern = (p: unknown, page: boolean): boolean =>
  p instanceof RegExp || (typeof p === 'string' && (/^[a-z][a-z0-9+.-]*:\/\/[^/?#]/i.test(p) || (page && /^\.{0,2}\//.test(p))));

/** Tells whether any of `tests` matches. */
export const anyUrl = (tests: readonly UrlTest[], href: string, origin: string): boolean => {
  for (let i = 0; i < tests.length; i++) if (tests[i]!(href, origin)) return true;
  return false;
};
