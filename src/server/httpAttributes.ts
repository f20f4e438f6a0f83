/**
 * OpenTelemetry HTTP semantic conventions (stable, v1.23+) for server and client spans.
 * Query values in `url.full` are redacted by the tracer (see core/redact.ts).
 */

import type { Span } from '../core/span';
import { withoutCredentials } from '../lib/withoutCredentials';

// Methods the conventions name; anything else is recorded as `_OTHER` plus the original.
const KNOWN_METHODS = new Set(['CONNECT', 'DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT', 'TRACE', 'QUERY']);

/** Parses `url`, or undefined when it is not absolute. */
export const parseUrl = (url: string): URL | undefined => {
  try {
    return new URL(url);
  } catch {
    return undefined;
  }
};

/** `http.request.method` (and `_original` for unknown ones), as the conventions spell it. */
export const methodAttributes = (method: string): Record<string, string> => {
  const upper = method.toUpperCase();
  return KNOWN_METHODS.has(upper) ? { 'http.request.method': upper } : { 'http.request.method': '_OTHER', 'http.request.method_original': method };
};

/** The method as a span name uses it: `GET`, or `HTTP` for unknown methods. */
export const spanMethod = (method: string): string => {
  const upper = method.toUpperCase();
  return KNOWN_METHODS.has(upper) ? upper : 'HTTP';
};

const portOf = (url: URL): number | undefined => {
  if (url.port) return Number(url.port);
  return url.protocol === 'https:' ? 443 : url.protocol === 'http:' ? 80 : undefined;
};

/** What {@link serverRequestAttributes} reads of a request: a fetch `Request` has it. */
export interface RequestHead {
  readonly method: string;
  readonly url: string;
  readonly headers: { get(name: string): string | null };
}

/** Attributes of an incoming request for its SERVER span (`url`, when the caller has parsed it). */
export const serverRequestAttributes = (request: RequestHead, route: string | undefined, url = parseUrl(request.url)): Record<string, unknown> => {
  const attrs: Record<string, unknown> = methodAttributes(request.method);
  if (url) {
    attrs['url.full'] = withoutCredentials(url);
    attrs['url.path'] = url.pathname;
    attrs['url.scheme'] = url.protocol.slice(0, -1);
    attrs['server.address'] = url.hostname;
    const port = portOf(url);
    if (port !== undefined) attrs['server.port'] = port;
  }
  if (route) attrs['http.route'] = route;
  const h = request.headers;
  const agent = h.get('user-agent');
  if (agent) attrs['user_agent.original'] = agent;
  // Cloudflare sets cf-connecting-ip itself; x-forwarded-for is whatever the last proxy wrote.
  const client = h.get('cf-connecting-ip') ?? h.get('x-real-ip') ?? h.get('x-forwarded-for')?.split(',')[0]?.trim();
  if (client) attrs['client.address'] = client;
  return attrs;
};

/** Attributes of an outgoing request for its CLIENT span. */
export const clientRequestAttributes = (method: string, href: string, url = parseUrl(href)): Record<string, unknown> => {
  const attrs: Record<string, unknown> = methodAttributes(method);
  attrs['url.full'] = url ? withoutCredentials(url) : href;
  if (url) {
    attrs['server.address'] = url.hostname;
    const port = portOf(url);
    if (port !== undefined) attrs['server.port'] = port;
  }
  return attrs;
};

/** `error.type` for a thrown value: its name (`TypeError`), else `_OTHER`, also when reading it throws. */
export const errorType = (error: unknown): string => {
  try {
    const name = (error as { name?: unknown } | null)?.name;
    return typeof name === 'string' && name ? name : '_OTHER';
  } catch {
    return '_OTHER';
  }
};

/**
 * Records a SERVER span's response status. Only a 5xx makes it an error (a 4xx is the client's
 * mistake, say the conventions); an error type or status message already recorded (a throw, the
 * app's `recordError()`) stays.
 */
export const setServerStatus = (span: Span, status: number): void => {
  span.setAttribute('http.response.status_code', status);
  if (status < 500) return;
  if (span.attrs['error.type'] === undefined) span.setAttribute('error.type', String(status));
  if (span.status.code !== 'error') span.setStatus('error', `HTTP ${status}`);
};
