/**
 * The scores route beside an OTLP trace endpoint: `…/v1/traces` becomes `…/v1/scores` (query
 * kept). Undefined when the URL does not end in `/v1/traces`: a plain OTLP receiver has no
 * place for scores. Its own file: the page's instrumentation needs it (to leave our own uploads
 * untraced) without loading the exporter.
 */
export const scoresUrlFor = (tracesUrl: string): string | undefined => {
  const m = /^([^?#]*\/v1\/)traces\/?([?#].*)?$/s.exec(tracesUrl);
  return m ? `${m[1]}scores${m[2] ?? ''}` : undefined;
};
