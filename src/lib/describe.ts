/** What a handler answered, as the error that says it is no Response names it. */
export const describe = (v: unknown): string => {
  if (v === null || v === undefined) return String(v);
  if (typeof v === 'string') return `a string (${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)})`;
  if (typeof v !== 'object' && typeof v !== 'function') return `${typeof v} ${String(v)}`;
  const name = (v as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name && name !== 'Object' ? `a ${name}` : `an ${typeof v}`;
};
