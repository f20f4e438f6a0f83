import { init } from './index';
import type { InitOptions } from './config';
import { parseUrlList } from './lib/parseUrlList';
import { nearestKey } from './lib/checkKeys';
import { warn } from './lib/reportInternal';

// The `<script>` build: everything `edgetrace` and `edgetrace/otlp` export becomes `window.edgetrace`.
export * from './index';
export * from './otlp';

/** The tag's options besides `data-endpoint`. */
const OPTION_ATTRS = ['service-name', 'propagate-to', 'sample-rate', 'ingest-token', 'worker-url'].map((k) => `data-${k}`);

/**
 * Reads the options from the script tag that loaded us and calls `init()`, which traces the
 * page's fetches, clicks, page load and errors:
 * `<script src="edgetrace.iife.js" data-endpoint="/v1/traces" data-service-name="shop"
 * data-propagate-to="https://api.example.com" data-sample-rate="0.1" data-ingest-token="pub_…">`.
 * Does nothing without `data-*` options (the page may call `edgetrace.init()` itself). A bad or
 * missing option (other options without `data-endpoint`) turns tracing off with one console
 * warning; the page's own scripts keep running.
 */
const initFromScriptTag = (): void => {
  try {
    // Only defined while a classic script runs for the first time, so it is read right here.
    const script = typeof document === 'object' ? document.currentScript : null;
    // A module script has no currentScript, so it cannot find the tag its options are on.
    if (!script && typeof document === 'object' && document.querySelector(['data-endpoint', ...OPTION_ATTRS].map((a) => `script[type="module"][${a}]`).join())) {
      throw new TypeError('they cannot be read from a <script type="module">; use a classic <script>');
    }
    const data = (script as HTMLScriptElement | null)?.dataset;
    if (!data) return;
    // A misspelt option (data-propagte-to) would be ignored without a word: no trace headers to
    // the API. Other data-* attributes on the tag are someone else's, and left alone.
    const known = ['data-endpoint', ...OPTION_ATTRS];
    for (const name of script!.getAttributeNames()) {
      const near = known.includes(name) ? undefined : nearestKey(name, known);
      if (near) warn(`${name} is not an option of the tag and is ignored (did you mean ${near}?)`);
    }
    if (!data.endpoint) {
      // No options at all: the page calls edgetrace.init() itself. Options without an endpoint
      // were meant to trace, and would send nothing.
      const given = OPTION_ATTRS.filter((k) => script!.hasAttribute(k));
      if (given.length) throw new TypeError(`data-endpoint is missing (the tag sets ${given.join(', ')})`);
      return;
    }
    const opts: InitOptions = { endpoint: data.endpoint };
    if (data.serviceName !== undefined) opts.serviceName = data.serviceName;
    // The collector's public ingest token, sent as a header: a page that can only add a tag
    // would otherwise have to put it in data-endpoint's query.
    if (data.ingestToken !== undefined) opts.ingestToken = data.ingestToken;
    // The service worker to register, or "false" where the site's own worker calls installTraceWorker().
    const worker = data.workerUrl;
    if (worker !== undefined) opts.workerUrl = worker === 'false' ? false : worker;
    if (data.propagateTo !== undefined) {
      try {
        opts.propagateTo = parseUrlList(data.propagateTo);
      } catch (error) {
        throw new TypeError(`data-propagate-to: ${(error as Error).message}`);
      }
    }
    const rate = data.sampleRate;
    if (rate !== undefined) {
      // Hand over the raw text when it is not a number, so the warning shows what was written.
      const n = Number(rate);
      opts.sampleRate = rate.trim() !== '' && Number.isFinite(n) ? n : (rate as unknown as number);
    }
    init(opts);
  } catch (error) {
    // init()'s words name its options ("sampleRate"): name the attribute the page wrote instead.
    const reason = (error instanceof Error ? error.message.replace(/^\[edgetrace\]\s*(init\(\): )?/, '') : String(error)).replace(/"(\w+)(\[\d+\])?"/g, (text, key: string) => {
      const attr = `data-${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
      return attr === 'data-endpoint' || OPTION_ATTRS.includes(attr) ? attr : text;
    });
    warn(`tracing is off: the <script> tag's data-* options are invalid: ${reason}`);
  }
};

initFromScriptTag();
