/**
 * DOM building for the demo, without innerHTML: every piece of data becomes a text node or an
 * attribute value, so a span named `<img src=x onerror=alert(1)>` is shown as those characters.
 */

export type Child = Node | string | number | null | undefined | false;

export interface Props {
  class?: string;
  title?: string;
  style?: Partial<Record<'left' | 'width' | 'right' | 'paddingLeft' | 'background' | 'borderColor', string>>;
  dataset?: Record<string, string>;
  /** Plain attributes (never event handlers, never URLs from data). */
  attrs?: Record<string, string | number | boolean | undefined>;
  onClick?: (event: MouseEvent) => void;
}

/** Creates an element with text children; nothing is ever parsed as HTML. */
export const h = <K extends keyof HTMLElementTagNameMap>(tag: K, props: Props = {}, ...children: Child[]): HTMLElementTagNameMap[K] => {
  const el = document.createElement(tag);
  if (props.class) el.className = props.class;
  if (props.title !== undefined) el.title = props.title;
  if (props.style) Object.assign(el.style, props.style);
  if (props.dataset) Object.assign(el.dataset, props.dataset);
  for (const [name, value] of Object.entries(props.attrs ?? {})) {
    if (value === undefined || value === false) continue;
    if (/^on/i.test(name)) throw new Error(`h(): refusing event-handler attribute ${name}`);
    el.setAttribute(name, value === true ? '' : String(value));
  }
  if (props.onClick) (el as HTMLElement).addEventListener('click', props.onClick);
  append(el, ...children);
  return el;
};

/** Appends children as nodes or text. */
export const append = (el: Element, ...children: Child[]): void => {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === 'object' ? c : String(c));
  }
};

/** Replaces an element's children. */
export const replace = (el: Element, ...children: Child[]): void => {
  el.replaceChildren();
  append(el, ...children);
};

/** The element with this id; throws at start-up when the page and the script disagree. */
export const byId = <T extends HTMLElement = HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from index.html`);
  return el as T;
};

const SVG = 'http://www.w3.org/2000/svg';

/** A thumbs-up outline (turned over for thumbs down), drawn in currentColor. */
export const thumbIcon = (down = false): SVGSVGElement => {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('width', '16');
  svg.setAttribute('height', '16');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('fill', 'none');
  svg.setAttribute('stroke', 'currentColor');
  svg.setAttribute('stroke-width', '1.8');
  svg.setAttribute('stroke-linejoin', 'round');
  if (down) svg.setAttribute('transform', 'rotate(180)');
  const cuff = document.createElementNS(SVG, 'rect');
  for (const [k, v] of Object.entries({ x: '3', y: '10', width: '4', height: '10', rx: '1' })) cuff.setAttribute(k, v);
  const hand = document.createElementNS(SVG, 'path');
  hand.setAttribute('d', 'M7 11 L10.6 4 C12.3 4 13.6 5.2 13.2 7 L12.6 10 H18.4 C19.9 10 21 11.4 20.5 12.8 L18.8 18.6 C18.5 19.5 17.8 20 17 20 H7 Z');
  svg.append(cuff, hand);
  return svg;
};

// --- formatting ---

/** 0.4 ms, 312 ms, 1.24 s, 2 min 3 s. */
export const fmtMs = (ms: number | undefined): string => {
  if (ms === undefined || !Number.isFinite(ms)) return '–';
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
};

/** $0.0042, $0.000041, <$0.000001, or – for nothing. */
export const fmtCost = (usd: number | undefined): string => {
  if (!usd || !Number.isFinite(usd)) return '–';
  if (usd < 0.000001) return '<$0.000001';
  if (usd >= 1) return `$${usd.toFixed(2)}`;
  return `$${Number(usd.toPrecision(2)).toFixed(Math.max(2, 1 - Math.floor(Math.log10(usd))))}`;
};

export const fmtInt = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? '–' : Math.round(n).toLocaleString('en-US'));

/** 14:03:22 */
export const fmtClock = (epochMs: number): string => new Date(epochMs).toLocaleTimeString('en-GB', { hour12: false });

export const fmtPercent = (share: number): string => (Number.isFinite(share) ? `${(share * 100).toFixed(share > 0 && share < 0.1 ? 1 : 0)}%` : '–');

/** The first characters of an id, for display. */
export const shortId = (id: string): string => id.slice(0, 8);
