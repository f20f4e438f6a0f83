/**
 * A set of spans (or anything with `isEnded`) that lets ended ones go as it grows: when it reaches
 * its bound, the ended are dropped and the bound set to twice what stays (at least 64). For spans
 * that may end without telling the set (a discarded click, a filtered trace), so that it never
 * holds more than about twice what is still open.
 */
export const liveSet = <T extends { readonly isEnded: boolean }>() => {
  const items = new Set<T>();
  let bound = 64;
  return {
    items,
    add(item: T): void {
      if (items.size >= bound) {
        for (const i of items) if (i.isEnded) items.delete(i);
        bound = Math.max(64, items.size * 2);
      }
      items.add(item);
    },
  };
};
