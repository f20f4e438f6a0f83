/**
 * Redaction of secrets in strings before they are stored anywhere.
 */

/** What replaces a redacted secret or query value. */
export const REDACTED = '[REDACTED]';

/** A secret API key: OpenAI's and Anthropic's `sk-…`, Langfuse's `sk-lf-…`. */
export const SECRET_KEY = /\bsk-(?:lf-|ant-|proj-)?[A-Za-z0-9_-]{16,}/g;

/**
 * Default secret patterns: bearer/basic credentials, `key=value` pairs whose key names a secret,
 * and well-known API key shapes (OpenAI/Anthropic `sk-…`, Langfuse `sk-lf-…`, AWS access keys,
 * GitHub and Slack tokens, Google API keys, JWTs).
 */
export const DEFAULT_SECRET_PATTERNS: readonly RegExp[] = [
  /\b(Bearer|Basic|Token)\s+[A-Za-z0-9._~+/=-]{8,}/gi,
  // A double-quoted value runs to its closing quote, spaces and all (`"password": "correct horse
  // battery staple"`, the JSON of an input). The quotes may be escaped (`\"api_key\":\"…\"`):
  // JSON text stored inside JSON, such as a request body among a function's recorded arguments.
  /\b((?:api[_-]?key|apikey|(?:access|auth|refresh|id)[_-]?token|token|secret|password|passwd|client[_-]?secret)(?:\\*["'])?\s*[:=]\s*\\*")[^"\\\n]{4,}/gi,
  // Any other value ends at a space, a quote, an escaped quote or a separator.
  /\b((?:api[_-]?key|apikey|(?:access|auth|refresh|id)[_-]?token|token|secret|password|passwd|client[_-]?secret)(?:\\*["'])?\s*[:=]\s*(?:\\*["'])?)(?:[^\s"'&,;\\]|\\(?![\\"'])){4,}/gi,
  SECRET_KEY,
  /\bAKIA[0-9A-Z]{16}\b/g,
  /\bgh[pousr]_[A-Za-z0-9]{30,}\b/g,
  /\bxox[abposr]-[A-Za-z0-9-]{10,}/g,
  /\bAIza[0-9A-Za-z_-]{35}\b/g,
  /\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/g,
];

/**
 * Shorter strings skip the default regexes. Below this, only `token=` with a 4-character value
 * would match, which is no credential; a span name such as `grandchild` then costs no lookup.
 */
const MIN_SECRET_LENGTH = 11;

/**
 * Whether `patterns` could find anything in `value`. A user's patterns may match short strings (a
 * 6-digit PIN): only the defaults let short values through unscanned.
 */
export const mayHoldSecret = (value: string, patterns: readonly RegExp[]): boolean =>
  patterns.length > 0 && (value.length >= MIN_SECRET_LENGTH || patterns !== DEFAULT_SECRET_PATTERNS);

const DEFAULTS = new Set(DEFAULT_SECRET_PATTERNS);

/**
 * Replaces every match of `patterns` in `value` with `[REDACTED]`. A default pattern keeps its
 * first group, the part that names the secret (`Bearer`, `api_key=`); an app's own pattern loses
 * its whole match, since its groups usually capture the secret itself.
 */
export const redactSecrets = (value: string, patterns: readonly RegExp[]): string => {
  if (!mayHoldSecret(value, patterns)) return value;
  let out = value;
  for (const re of patterns) {
    re.lastIndex = 0;
    if (!re.test(out)) continue;
    re.lastIndex = 0;
    out = DEFAULTS.has(re)
      ? out.replace(re, (_match: string, prefix?: unknown) => (typeof prefix === 'string' ? `${prefix}${/\w$/.test(prefix) ? ' ' : ''}${REDACTED}` : REDACTED))
      : out.replace(re, REDACTED);
  }
  return out;
};

/** The user:password of a URL (its first group is the scheme and `//`). */
export const USERINFO = /^([a-z][a-z\d+.-]*:\/\/)[^/?#]*@/i;

/** A fragment that is a hash router's route (`#/users/1`, `#!/users/1`), not an anchor or a token. */
export const HASH_ROUTE = /^#!?\//;

/** `part` with the values of its query (after the first `?`) redacted. */
const queryRedacted = (part: string, keep: readonly string[] | true): string => {
  const q = keep === true ? -1 : part.indexOf('?');
  return q < 0 ? part : `${part.slice(0, q)}?${redactQueryValues(part.slice(q + 1), keep)}`;
};

/**
 * Replaces every query value of a URL with `[REDACTED]`, keeping the keys, and drops its fragment
 * (OAuth's `#access_token=…`) and any user name and password:
 * `https://u:p@a.test/p?q=cats&key=1#x` → `https://a.test/p?q=[REDACTED]&key=[REDACTED]`.
 * A hash router's route stays, its query values redacted the same way (`…/app#/users/1?t=[REDACTED]`).
 * Works on relative URLs too and never throws.
 */
export const redactUrl = (url: string, keep: readonly string[] | true = []): string => {
  // Credentials end with the authority's `@`; the authority ends at `/`, `?` or `#`.
  url = url.replace(USERINFO, '$1');
  const h = url.indexOf('#');
  const fragment = h < 0 ? '' : url.slice(h);
  return queryRedacted(h < 0 ? url : url.slice(0, h), keep) + (HASH_ROUTE.test(fragment) ? routeRedacted(fragment, keep) : '');
};

/**
 * A hash route with its query values redacted; a route that is a query itself (Vue Router's hash
 * mode turns an OAuth answer's `#state=…&code=…` into `#/state=…&code=…`) has its values redacted
 * after the route's `/`.
 */
const routeRedacted = (fragment: string, keep: readonly string[] | true): string => {
  const q = fragment.indexOf('?');
  if (!(q < 0 ? fragment : fragment.slice(0, q)).includes('=')) return queryRedacted(fragment, keep);
  const at = fragment.indexOf('/') + 1;
  return fragment.slice(0, at) + redactQueryValues(fragment.slice(at), keep);
};

/**
 * Redacts the values of a query string without its `?` (`a=1&b=2`, OTel's `url.query`), except
 * `keep` keys (true: all of them). A part with no `=` is a value too: magic links read `?<token>`.
 */
export const redactQueryValues = (query: string, keep: readonly string[] | true = []): string =>
  keep === true
    ? query
    : query
        .split('&')
        .map((pair) => {
          const eq = pair.indexOf('=');
          if (eq < 0) return pair === '' || keep.includes(pair) ? pair : REDACTED;
          const key = pair.slice(0, eq);
          return keep.includes(key) ? pair : `${key}=${REDACTED}`;
        })
        .join('&');

// A URL inside text: a scheme, `://`, then up to a space, a quote or a bracket other than `[ ]`
// (IPv6 hosts, and `[REDACTED]`: text redacted once comes out the same again). Or a path with a
// query after a space, a quote or a bracket (`[GET] "/api/users?email=…": 404`, as fetch
// wrappers word their errors): its first group is what comes before it.
const URL_IN_TEXT = /\b[a-z][a-z\d+.-]*:\/\/[^\s"'`<>(){}]+|(^|[\s"'`(])(\/[^\s"'`<>(){}?#]*\?[^\s"'`<>(){}]+)/gi;
// A stack frame's URL ends in `:line:column`, which is kept apart from its query.
const LINE_COLUMN = /(?::\d+){1,2}$/;

/**
 * {@link redactUrl} for every URL found in a message, stack trace or name, absolute or a path with
 * a query: `at f (https://a.test/cb?code=x:5:7)` → `at f (https://a.test/cb?code=[REDACTED]:5:7)`.
 */
export const redactUrlsIn = (text: string, keep: readonly string[] | true = []): string =>
  text.replace(URL_IN_TEXT, (match: string, before: string | undefined, path: string | undefined) => {
    const url = path ?? match;
    const tail = /[?#@]/.test(url) ? (LINE_COLUMN.exec(url)?.[0] ?? '') : '';
    return (before ?? '') + redactUrl(url.slice(0, url.length - tail.length), keep) + tail;
  });
