/**
 * Stores `value` under `key` as an own data property, whatever the key: `out[key] = value` with
 * the key `__proto__` (which `JSON.parse` makes an own key) would set the object's prototype
 * instead, losing a primitive value and making an object's entries look like attributes.
 */
export const setOwn = (out: Record<string, unknown>, key: string, value: unknown): void => {
  if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  else out[key] = value;
};
