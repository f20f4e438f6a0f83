// Depth and breadth bounds keep one huge or hostile object from stalling the page.
const MAX_DEPTH = 8;
const MAX_KEYS = 200;

const describeNode = (node: { nodeName?: unknown; id?: unknown; className?: unknown }): string => {
  const name = String(node.nodeName ?? 'node').toLowerCase();
  const id = typeof node.id === 'string' && node.id ? `#${node.id}` : '';
  const cls = typeof node.className === 'string' && node.className ? `.${node.className.trim().split(/\s+/).join('.')}` : '';
  return `<${name}${id}${cls}>`;
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
      return `[Function ${value.name || 'anonymous'}]`;
  }
  if (value === null) return null;
  const obj = value as Record<string, unknown>;
  if (ancestors.includes(obj)) return '[Circular]';
  if (depth >= MAX_DEPTH) return '[Object]';
  if (value instanceof Error) {
    const out: Record<string, unknown> = { name: value.name, message: value.message };
    if (value.stack) out.stack = value.stack;
    if ('cause' in value && value.cause !== undefined) {
      out.cause = toPlain(value.cause, depth + 1, [...ancestors, obj]);
    }
    return out;
  }
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'Invalid Date' : value.toISOString();
  if (value instanceof RegExp) return String(value);
  if (typeof (obj as { nodeType?: unknown }).nodeType === 'number' && 'nodeName' in obj) return describeNode(obj);
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) {
    return `[${value.constructor.name}(${value.byteLength})]`;
  }
  const inner = [...ancestors, obj];
  if (typeof (obj as { toJSON?: unknown }).toJSON === 'function') {
    try {
      return toPlain((obj as { toJSON(): unknown }).toJSON(), depth + 1, inner);
    } catch {
      return '[Unserializable]';
    }
  }
  if (Array.isArray(value) || value instanceof Set) {
    const out: unknown[] = [];
    for (const item of value) {
      if (out.length >= MAX_KEYS) {
        out.push('[…]');
        break;
      }
      const plain = toPlain(item, depth + 1, inner);
      out.push(plain === undefined ? null : plain);
    }
    return out;
  }
  const out: Record<string, unknown> = {};
  const entries: Iterable<[unknown, unknown]> = value instanceof Map ? value.entries() : Object.entries(obj);
  let n = 0;
  try {
    for (const [k, v] of entries) {
      if (n++ >= MAX_KEYS) {
        out['…'] = '[truncated]';
        break;
      }
      const plain = toPlain(v, depth + 1, inner);
      if (plain !== undefined) out[String(k)] = plain;
    }
  } catch {
    // A throwing getter or proxy trap: keep what was read.
    out['…'] = '[Unserializable]';
  }
  return out;
};

/**
 * JSON for any value, never throwing: cycles become "[Circular]", BigInt a decimal string,
 * functions and symbols a description, Errors `{name, message, stack}`, DOM nodes `<tag#id.class>`,
 * Maps objects, Sets arrays. Strings, BigInts, symbols and functions come back as plain text (not quoted).
 */
export const safeJson = (value: unknown): string => {
  if (typeof value === 'string') return value;
  // Non-JSON primitives are described as plain text rather than as a quoted JSON string.
  if (typeof value === 'bigint' || typeof value === 'symbol' || typeof value === 'function') return String(toPlain(value, 0, []));
  try {
    return JSON.stringify(toPlain(value, 0, [])) ?? String(value);
  } catch {
    return '[Unserializable]';
  }
};
