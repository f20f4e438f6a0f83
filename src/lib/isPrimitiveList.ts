/**
 * Whether `a` can be an attribute as it is: all strings, all numbers or all booleans, or empty.
 * A hole fails, where `every()` would skip it: the encoders would then drop it and move the later
 * values up.
 */
export const isPrimitiveList = (a: readonly unknown[]): a is string[] | number[] | boolean[] => {
  const t = a.length ? typeof a[0] : 'string';
  if (t !== 'string' && t !== 'number' && t !== 'boolean') return false;
  for (let i = 1; i < a.length; i++) if (typeof a[i] !== t) return false;
  return true;
};
