import { reportInternal } from './reportInternal';

type Fn = (this: unknown, ...args: unknown[]) => unknown;

/**
 * Replaces the method `target[key]` with `make(original)` and returns a function that undoes it.
 *
 * Undoing puts the original back only while our wrapper is still the one installed: if another
 * library wrapped it after us, removing ours would silently drop theirs. In that case the wrapper
 * stays, but lets go of what `make()` built (the tracer, its buffers): what stays installed is a
 * thin function that passes every call to the original, so `init()` and `stop()` repeated under
 * another library's wrapper (hot reload) keep nothing alive, and what `make()` built never runs
 * after the undo.
 * A property that lived on the prototype (`history.pushState`) is deleted again rather than
 * left behind as an own property.
 */
export const patch = <T extends object, K extends keyof T>(
  target: T,
  key: K,
  make: (original: T[K]) => T[K],
): (() => void) => {
  const hadOwn = Object.prototype.hasOwnProperty.call(target, key);
  const original = target[key];
  const made = make(original) as Fn;
  let impl: Fn | undefined = made;
  // `arguments` rather than a rest parameter: no array per call on the way into fetch.
  const wrapper = function (this: unknown) {
    return (impl ?? (original as Fn)).apply(this, arguments as unknown as unknown[]);
  };
  // Libraries read a patched global's name (`fetch.name`) and arity.
  Object.defineProperties(wrapper, { name: { value: made.name }, length: { value: made.length } });
  target[key] = wrapper as T[K];
  return () => {
    impl = undefined;
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
