import type { Attributes } from '../protocol';

/** The globals that tell one server or edge runtime from another. */
export interface RuntimeGlobals {
  Deno?: { version?: { deno?: unknown } };
  Bun?: { version?: unknown };
  EdgeRuntime?: unknown;
  navigator?: { userAgent?: unknown };
  process?: { versions?: { node?: unknown } };
}

const runtime = (name: string, version: unknown): Attributes =>
  typeof version === 'string' && version ? { 'process.runtime.name': name, 'process.runtime.version': version } : { 'process.runtime.name': name };

/**
 * OpenTelemetry's `process.runtime.name` and `process.runtime.version` for the runtime `g` is:
 * `deno`, `bun`, `edge-runtime` (Vercel Edge and the `edge-runtime` package), `cloudflare-workers`
 * (workerd, also under miniflare) or `nodejs`; nothing for a runtime it does not know. Deno, Bun
 * and workerd with `nodejs_compat` also have Node's `process`, so they are told apart first.
 */
export const runtimeResource = (g: RuntimeGlobals = globalThis as RuntimeGlobals): Attributes => {
  try {
    const deno = g.Deno?.version?.deno;
    if (deno !== undefined) return runtime('deno', deno);
    const bun = g.Bun?.version;
    if (bun !== undefined) return runtime('bun', bun);
    if (typeof g.EdgeRuntime === 'string') return runtime('edge-runtime', undefined);
    if (g.navigator?.userAgent === 'Cloudflare-Workers') return runtime('cloudflare-workers', undefined);
    const node = g.process?.versions?.node;
    if (node !== undefined) return runtime('nodejs', node);
  } catch {
    // A global whose getter throws: the spans go without these attributes.
  }
  return {};
};

/**
 * Whether this runtime is a long-lived process (Node, Deno, Bun), where one request's work may
 * wait on another's, rather than an isolate that serves each request apart (Workers, Vercel
 * Edge), where it must not.
 */
export const isProcess = (g: RuntimeGlobals = globalThis as RuntimeGlobals): boolean => {
  const name = runtimeResource(g)['process.runtime.name'];
  return name === 'nodejs' || name === 'deno' || name === 'bun';
};
