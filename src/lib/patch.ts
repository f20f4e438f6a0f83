import { reportInternal } from './reportInternal';

/**
 * Replaces `target[key]` with `make(original, isOn)` and returns a function that undoes it.
 *
 * Undoing puts the original back only while our wrapper is still the one installed: if another
 * library wrapped it after us, removing ours would silently drop theirs. In that case the wrapper
 * stays, but `isOn()` turns false and it must pass every call straight to the original.
 * A property that lived on the prototype (`history.pushState`) is deleted again rather than
 * left behind as an own property.
 */
export const patch = <T extends object, K extends keyof T>(
  target: T,
  key: K,
  make: (original: T[K], isOn: () => boolean) => T[K],
): (() => void) => {
  let on = true;
  const hadOwn = Object.prototype.hasOwnProperty.call(target, key);
  const original = target[key];
  const wrapper = make(original, () => on);
  target[key] = wrapper;
  return () => {
    on = false;
    try {
      if (target[key] !== wrapper) return;
      if (hadOwn) target[key] = original;
      else delete target[key];
    } catch (error) {
      reportInternal(error);
    }
  };
};

/**
 * Applies several patches in order and returns one function that undoes them all. If one of them
 * throws (a property that cannot be written), those already applied are undone before the error
 * goes on, so nothing is left half patched.
 */
export const patchAll = (...apply: (() => () => void)[]): (() => void) => {
  const undo: (() => void)[] = [];
  try {
    for (const a of apply) undo.push(a());
  } catch (error) {
    for (const u of undo.reverse()) u();
    throw error;
  }
  return () => {
    for (const u of undo) u();
  };
};

/**
 * `patchAll` for an instrumentation that is skipped when it cannot be installed: a patch that
 * throws (a read-only global on a locked-down page) leaves everything as it was, is reported,
 * and the returned function does nothing. The rest of the instrumentation runs on.
 */
export const patchAllOrSkip = (...apply: (() => () => void)[]): (() => void) => {
  try {
    return patchAll(...apply);
  } catch (error) {
    reportInternal(error);
    return () => undefined;
  }
};
