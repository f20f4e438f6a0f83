/** Keeps a timer from holding a Node, Deno or Bun process open; returns the timer. */
export const unref = <T>(timer: T): T => {
  (timer as { unref?: () => void } | undefined)?.unref?.();
  return timer;
};
