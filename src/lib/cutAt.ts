/** The first `n` UTF-16 units of `s`, one fewer when the cut would split a surrogate pair. */
export const cutAt = (s: string, n: number): string => {
  const last = s.charCodeAt(n - 1);
  return s.slice(0, last >= 0xd800 && last <= 0xdbff ? n - 1 : n);
};

/** Longest `TEXT` score value Langfuse takes (1 to 500 characters); it refuses longer ones. */
const MAX_TEXT_SCORE_CHARS = 500;

/** A `TEXT` score value as Langfuse takes it: cut to its 500 characters. */
export const textScoreValue = (value: string): string => (value.length > MAX_TEXT_SCORE_CHARS ? cutAt(value, MAX_TEXT_SCORE_CHARS) : value);
