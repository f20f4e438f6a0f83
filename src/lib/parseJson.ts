/** JSON text's value, or undefined when it is not JSON. Never throws. */
export const parseJson = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
};
