// Depth, breadth and total bounds keep one huge or hostile object from stalling the page.
const MAX_DEPTH = 8;
const MAX_KEYS = 200;
const MAX_NODES = 4000;
const UNREADABLE = '[Unserializable]';

const describeNode = (node: { nodeName?: unknown; id?: unknown; className?: unknown }): string => {
  const name = String(node.nodeName ?? 'node').toLowerCase();
  const id = typeof node.id === 'string' && node.id ? `#${node.id}` : '';
  const cls = typeof node.className === 'string' && node.className ? `.${node.className.trim().split(/\s+/).join('.')}` : '';
  return `<${name}${id}${cls}>`;
};

/** A property's value, or the marker when its getter or proxy trap throws. */
const read = (obj: object, key: PropertyKey): unknown => {
  try {
    return (obj as Record<PropertyKey, unknown>)[key];
  } catch {
    return UNREADABLE;
  }
};

/** One walk over a value: `nodes` counts the values it has visited, across every branch. */
const plainer = () => {
  let nodes = 0;

  const child = (value: unknown, depth: number, ancestors: object[]): unknown => {
    if (++nodes > MAX_NODES) return '[…]';
    try {
      return toPlain(value, depth, ancestors);
    } catch {
      // A trap or getter that throws loses this value only, not its siblings.
      return UNREADABLE;
    }
  };

  /** An Error's name, message and stack, its cause and inner errors, and its primitive fields (code, errno, status). */
  const errorToPlain = (error: Error, depth: number, inner: object[]): Record<string, unknown> => {
    const out: Record<string, unknown> = { name: read(error, 'name'), message: read(error, 'message') };
    const stack = read(error, 'stack');
    if (stack) out.stack = stack;
    for (const key of Object.keys(error)) {
      const v = read(error, key);
      if (v === null || (typeof v !== 'object' && typeof v !== 'function' && v !== undefined)) out[key] ??= child(v, depth + 1, inner);
    }
    const cause = read(error, 'cause');
    if (cause !== undefined) out.cause = child(cause, depth + 1, inner);
    // AggregateError keeps its errors in an own property that is not enumerable.
    const errors = read(error, 'errors');
    if (Array.isArray(errors)) out.errors = child(errors, depth + 1, inner);
    return out;
  };

  const toPlain = (value: unknown, depth: number, ancestors: object[]): unknown => {
    switch (typeof value) {
      case 'string':
      case 'boolean':
        return value;
      case 'number':
        return Number.isFinite(value) ? value : String(value);
      case 'bigint':
        return value.toString();
      case 'undefined':
        return undefined;
      case 'symbol':
        return value.toString();
      case 'function':
        return `[Function ${(read(value, 'name') as string) || 'anonymous'}]`;
    }
    if (value === null) return null;
    const obj = value as Record<string, unknown>;
    if (ancestors.includes(obj)) return '[Circular]';
    if (depth >= MAX_DEPTH) return '[Object]';
    const inner = [...ancestors, obj];
    if (value instanceof Error) return errorToPlain(value, depth, inner);
    if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
    if (value instanceof RegExp) return String(value);
    // new String('hi') is "hi", not {"0":"h","1":"i"}.
    if (value instanceof String || value instanceof Number || value instanceof Boolean) return toPlain(value.valueOf(), depth, ancestors);
    if (typeof read(obj, 'nodeType') === 'number' && 'nodeName' in obj) return describeNode(obj);
    if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
      // A typed array by its element count, as consoles show it; a buffer or DataView by its bytes.
      return `[${value.constructor.name}(${(value as { length?: number }).length ?? value.byteLength})]`;
    }
    const toJSON = read(obj, 'toJSON');
    if (typeof toJSON === 'function') {
      try {
        return toPlain(toJSON.call(obj), depth + 1, inner);
      } catch {
        return UNREADABLE;
      }
    }
    if (Array.isArray(value) || value instanceof Set) {
      const out: unknown[] = [];
      // A Set is read only as far as it is kept (one past MAX_KEYS says there is more), not copied whole.
      let items: unknown[] = [];
      if (Array.isArray(value)) items = value;
      else for (const item of value) if (items.push(item) > MAX_KEYS) break;
      for (let i = 0; i < items.length; i++) {
        if (i >= MAX_KEYS) {
          out.push('[…]');
          break;
        }
        const plain = child(read(items, i), depth + 1, inner);
        out.push(plain === undefined ? null : plain);
      }
      return out;
    }
    const out: Record<string, unknown> = {};
    let n = 0;
    const put = (k: unknown, v: unknown): boolean => {
      if (n++ >= MAX_KEYS) {
        out['…'] = '[truncated]';
        return false;
      }
      const plain = child(v, depth + 1, inner);
      if (plain !== undefined) out[String(k)] = plain;
      return true;
    };
    try {
      if (value instanceof Map) {
        for (const [k, v] of value) if (!put(k, v)) break;
      } else {
        // Each key is read on its own: one throwing getter loses its value, not the others.
        for (const k of Object.keys(obj)) if (!put(k, read(obj, k))) break;
      }
    } catch {
      // A proxy whose key listing throws: keep what was read.
      out['…'] = UNREADABLE;
    }
    return out;
  };

  return child;
};

/**
 * JSON for any value, never throwing: cycles become "[Circular]", BigInt a decimal string,
 * functions and symbols a description, Errors `{name, message, stack, cause, errors}` with their
 * primitive fields (`code`, `status`), DOM nodes `<tag#id.class>`, Maps objects, Sets arrays. A
 * value that cannot be read becomes "[Unserializable]" and the rest is kept. Strings, BigInts,
 * symbols and functions come back as plain text (not quoted).
 */
export const safeJson = (value: unknown): string => {
  if (typeof value === 'string') return value;
  const plain = plainer()(value, 0, []);
  // Non-JSON primitives are described as plain text rather than as a quoted JSON string.
  if (typeof value === 'bigint' || typeof value === 'symbol' || typeof value === 'function') return String(plain);
  try {
    return JSON.stringify(plain) ?? String(value);
  } catch {
    return UNREADABLE;
  }
};
