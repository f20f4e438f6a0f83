import type { Span } from '../core/span';
import type { Trace } from '../core/trace';
import type { Tracer } from '../core/tracer';
import { getTracer } from '../core/global';
import { isBrowserPage } from '../lib/isPage';
import { reportInternal } from '../lib/reportInternal';
import { epochOf } from '../lib/now';
import { getPageContext, interactionContext, setPageContext, type InteractionContext } from './interactionContext';
import type { Stop } from './index';

/** Options for {@link instrumentInteractions}. */
export interface InteractionOptions {
  /** The tracer to record with. Default: the global one, looked up at each interaction. */
  tracer?: Tracer | undefined;
  /** Where interactions become the fallback parent. Default: the page's, created if missing. */
  context?: InteractionContext | undefined;
}

/** Attribute names on interaction spans. */
export const INTERACTION_ATTRS = {
  type: 'edgetrace.interaction.type',
  target: 'edgetrace.interaction.target',
  key: 'edgetrace.interaction.key',
} as const;

/** A recent interaction, kept so that a later INP report can find the span it belongs to. */
export interface InteractionEntry {
  span: Span;
  /** The DOM event's `timeStamp` (ms since time origin), which Event Timing reports as `startTime`. */
  timeStamp: number;
}

// INP is reported late (on page hide), so a few dozen recent interactions are kept to match it.
const MAX_RECENT = 50;
const recent: InteractionEntry[] = [];
// Slack around an entry: its duration is rounded to 8 ms.
const MATCH_MS = 10;

/** Keeps `span`, an interaction whose event happened at `timeStamp`, for {@link findInteraction}. */
export const remember = (span: Span, timeStamp: number): void => {
  recent.push({ span, timeStamp });
  if (recent.length > MAX_RECENT) recent.shift();
};

/**
 * The interaction whose event Event Timing measured in `entries` (one interaction's entries,
 * as web-vitals gives INP's), if it is still remembered. An entry's `startTime` is its event's
 * own timeStamp, but web-vitals keeps only the longest of the events handled together: when the
 * page was busy as the user pressed, that is the pointerdown (or keydown), and the click we
 * recorded came later, within that entry's duration. So a recorded event at an entry's start
 * matches, and after a press also one up to the press's end, the nearest to a start first; a key
 * press in a text field (no interaction of ours) does not match a click before or during it.
 */
export const findInteraction = (entries: readonly { name?: string; startTime: number; duration: number }[]): InteractionEntry | undefined => {
  let best: InteractionEntry | undefined;
  let bestGap = Infinity;
  for (const entry of recent) {
    // A click that turned out to be nothing was not sent.
    if (!entry.span.isRecording) continue;
    for (const { name, startTime, duration } of entries) {
      const gap = entry.timeStamp - startTime;
      // Only a press (pointerdown, mousedown) is followed by a click within its duration; a key
      // press is recorded as itself, and a click during a slow keystroke is another interaction.
      const reach = /^(pointer|mouse)down$/.test(name ?? '') ? duration : 0;
      if (gap >= -MATCH_MS && gap <= reach + MATCH_MS && Math.abs(gap) < bestGap) {
        best = entry;
        bestGap = Math.abs(gap);
      }
    }
  }
  return best;
};

// Native controls turn Enter and Space into a click event, which is traced as the click (a link
// with an href turns only Enter into one).
const CLICKS_ON_KEY = /^(BUTTON|SUMMARY|SELECT)$/;
// Roles of controls that act like buttons, which Space and Enter activate; links take Enter only
// (Space scrolls the page), and other roles (a focused dialog, a list) neither.
const BUTTON_ROLES = 'button|checkbox|switch|menuitem|menuitemcheckbox|menuitemradio|tab|option|radio';
const SPACE_ROLES = new RegExp(`^(${BUTTON_ROLES})$`);
const ENTER_ROLES = new RegExp(`^(${BUTTON_ROLES}|link)$`);
const CLICK_INPUT_TYPES = /^(button|submit|reset|image|checkbox|radio|file|color)$/i;
const TEXT_INPUT_TYPES = /^(text|search|email|url|tel|password|number)$/i;
const CONTROL_SELECTOR =
  'button,a[href],input,select,textarea,summary,label,[role=button],[role=link],[role=menuitem],[role=tab],[role=option],[role=checkbox],[role=switch],[contenteditable=""],[contenteditable=true]';
// Two events this close belong to one gesture: Enter in a field and the submit it causes.
const SAME_GESTURE_MS = 50;

/** Whether `el` is typed into, where a click only places the caret. */
const isTextEntry = (el: Element): boolean =>
  el.tagName === 'TEXTAREA' || (el as HTMLElement).isContentEditable || (el.tagName === 'INPUT' && TEXT_INPUT_TYPES.test((el as HTMLInputElement).type));

/** Whether a key press on `el` is an interaction of its own (not turned into a click). */
const isKeyInteraction = (el: Element, e: KeyboardEvent): boolean => {
  if (e.repeat || e.isComposing) return false;
  const key = e.key;
  if (key !== 'Enter' && key !== ' ') return false;
  const tag = el.tagName;
  if (CLICKS_ON_KEY.test(tag) || (tag === 'A' && key === 'Enter' && el.hasAttribute('href'))) return false;
  if (tag === 'INPUT') return key === 'Enter' && !CLICK_INPUT_TYPES.test((el as HTMLInputElement).type);
  // Shift+Enter in a text area is a new line, not a send.
  if (tag === 'TEXTAREA') return key === 'Enter' && !e.shiftKey;
  if ((el as HTMLElement).isContentEditable) return key === 'Enter' && !e.shiftKey;
  return (key === ' ' ? SPACE_ROLES : ENTER_ROLES).test(el.getAttribute('role') ?? '');
};

// An id, class or name built from data rather than chosen by a developer: an email address, a
// long number, also one written in groups, a hex id (`row-bob@example.com`, `user-18273645`,
// `card-4111-1111-1111-1111`, `ssn-123-45-6789`, `item-9f3a2c1b`).
const DATA_LIKE = /@|\d(?:[-_. ]?\d){4}|[\da-f]{8}/i;
// An id or class made by a tool, different from build to build or from render to render: React's
// useId (`:r1:`, `«r1»`, `_r_0_`), CSS-module hashes (Vite's `_primary_1sqgt_1`, webpack's and
// Next's `Home_main__nLjYH`) and CSS-in-JS classes (`css-1x2y3z4`, `sc-bdVaJa`, `svelte-1ab2c3d`):
// each with a digit or a capital in its hash, so `css-grid` or BEM's `card__title` stay.
const GENERATED = /[:«»]|^_r_\w*_$|^_.+_[\da-z]{5}_\d+$|__(?=[\w-]{5}$)[\w-]*[\dA-Z]|^(?:css|jsx|svelte|emotion|sc)-(?=[\w-]*[\dA-Z])/;
// styled-components' second class, beside its `sc-` one: a few letters, mixed case (`kXyZab`).
const MIXED_CASE = /^(?=[a-zA-Z]{5,8}$)[a-z]+[A-Z][a-z]*[A-Z]/;
const chosen = (v: string | null): v is string => !!v && !DATA_LIKE.test(v);
const handWritten = (v: string): boolean => chosen(v) && !GENERATED.test(v);

/** The parts of `Element` that {@link shortSelector} reads, by shape (no DOM lib in the declarations). */
export interface ElementLike {
  readonly tagName: string;
  readonly id: string;
  /** A string on HTML elements; an SVG element's is an object, and is passed over. */
  readonly className: unknown;
  getAttribute(name: string): string | null;
}

/**
 * A short, stable selector for naming: `button#send`, `a.nav.primary`, `input[name=q]`.
 * No text content: it may hold personal data, and changes with the language. Ids, classes and
 * names that look like data are passed over for the same reason, and because a name per row
 * would make every row's clicks a trace name of their own.
 */
export const shortSelector = (el: ElementLike): string => {
  const tag = el.tagName.toLowerCase();
  if (handWritten(el.id)) return `${tag}#${el.id}`.slice(0, 80);
  const all = typeof el.className === 'string' ? el.className.trim().split(/\s+/) : [];
  const styled = all.some((c) => c.startsWith('sc-'));
  const cls = all.filter((c) => handWritten(c) && !(styled && MIXED_CASE.test(c))).slice(0, 2);
  if (cls.length) return `${tag}.${cls.join('.')}`.slice(0, 80);
  const name = el.getAttribute('name');
  if (chosen(name)) return `${tag}[name=${name}]`.slice(0, 80);
  const role = el.getAttribute('role');
  return role ? `${tag}[role=${role}]` : tag;
};

const targetOf = (e: Event): Element | undefined => {
  // The element inside an open shadow root, not the host the event was retargeted to.
  const path = typeof e.composedPath === 'function' ? e.composedPath() : [];
  const first = (path[0] ?? e.target) as Element | null;
  if (first && typeof first.closest === 'function') return first;
  const parent = (first as Node | null)?.parentElement;
  return parent ?? undefined;
};

/**
 * The nearest element matching `selector` on the event's way to `el`: along its composed path,
 * which crosses open shadow roots where `closest()` stops (a design system's `<button>` inside
 * its custom element, a `data-trace-name` on the host).
 */
const nearest = (e: Event, el: Element, selector: string): Element | null => {
  for (const n of e.composedPath?.() ?? []) if ((n as Element).matches?.(selector)) return n as Element;
  // A path without elements in it (an event built by hand): from the target, as closest() goes.
  return el.closest(selector);
};

/** The element that names a control: itself, or for one inside a shadow root, its host. */
const namedBy = (el: Element): Element => (el.getRootNode?.() as ShadowRoot | undefined)?.host ?? el;

/** Epoch ms of a DOM event, or undefined when its timeStamp is not on the performance clock. */
const eventEpochMs = (e: Event): number | undefined => {
  const perf = (globalThis as { performance?: Performance }).performance;
  if (!perf) return undefined;
  // epochOf() is undefined where the clock does not read performance (no time origin).
  const age = perf.now() - e.timeStamp;
  return age >= 0 && age < 60_000 ? epochOf(e.timeStamp) : undefined;
};

/**
 * Starts an interaction span for every click, form submit, and Enter/Space on controls that do
 * not turn those keys into a click (text fields, custom controls with a button-like or link
 * `role`). The span is named from the nearest `data-trace-name` attribute, else `<event>
 * <short selector>` (of the shadow host for a control inside an open shadow root), starts a new
 * trace, and becomes the parent of the work the handler starts, also after `await`s, until that
 * work settles (see `interactionContext`). Listeners run in the capture phase on `window`, before the
 * app's, and never stop or change the event. Call the returned function to remove them.
 */
export const instrumentInteractions = (opts: InteractionOptions = {}): Stop => {
  const w = globalThis as { addEventListener?: typeof addEventListener; removeEventListener?: typeof removeEventListener };
  if (!isBrowserPage()) return () => undefined;
  let ctx = opts.context ?? getPageContext();
  if (!ctx) {
    ctx = interactionContext();
    setPageContext(ctx);
  }
  const context = ctx;
  /** The latest interaction; `inTask` until the task that dispatched its event is over. */
  let last: { span: Trace; timeStamp: number; type: string; inTask: boolean } | undefined;

  const onEvent = (e: Event): void => {
    try {
      const type = e.type;
      const el = targetOf(e);
      if (!el) return;
      if (type === 'keydown' && !isKeyInteraction(el, e as KeyboardEvent)) return;
      const named = nearest(e, el, '[data-trace-name]');
      const label = named?.getAttribute('data-trace-name');
      const onControl = named ?? nearest(e, el, CONTROL_SELECTOR);
      // Every design-system button is a `button.button` in its shadow root: the host tells them apart.
      const selector = shortSelector(namedBy(onControl ?? el));
      const name = label || `${type} ${selector}`;

      const active = context.current();
      // An event in the task of the one before (a label's click passed on to its control, a
      // submit button's submit), a submit shortly after, and anything shortly after a key press
      // (the click Enter or Space causes): one gesture. Two clicks of the user's are two, however quick.
      if (last && active === last.span && (last.inTask || ((type === 'submit' || last.type === 'keydown') && Math.abs(e.timeStamp - last.timeStamp) < SAME_GESTURE_MS))) {
        // One gesture: the submit that a key press or click causes joins its interaction, and
        // names it, because "submit form#chat" says more than "keydown input[name=q]". A submit
        // button's click submits in the same task, however long its handlers ran.
        if (type === 'submit' && last.type !== 'submit' && !label) {
          last.span.update({ name });
          last.span.setAttribute(INTERACTION_ATTRS.type, type);
          last.span.setAttribute(INTERACTION_ATTRS.target, selector);
          last.type = type;
        }
        return;
      }
      const tracer = opts.tracer ?? getTracer();
      const attributes: Record<string, unknown> = { [INTERACTION_ATTRS.type]: type, [INTERACTION_ATTRS.target]: selector };
      if (type === 'keydown') attributes[INTERACTION_ATTRS.key] = (e as KeyboardEvent).key === ' ' ? 'Space' : 'Enter';
      const span = tracer.createTrace({ name, startMs: eventEpochMs(e), attributes });
      // A click on no control (text, a blank spot) may still run a handler (a card, a row), and
      // so may one into a text field, or Enter in a text area (a new line, or a chat's send):
      // each is sent only if it turns out to be something. Enter in a one-line field submits.
      const minor = type === 'click' ? !onControl || isTextEntry(onControl) : type === 'keydown' && el.tagName !== 'INPUT' && isTextEntry(el) && 'key';
      context.begin(span, { minor });
      const mark: typeof last = (last = { span, timeStamp: e.timeStamp, type, inTask: true });
      setTimeout(() => (mark.inTask = false), 0);
      remember(span, e.timeStamp);
    } catch (error) {
      reportInternal(error);
    }
  };

  const types = ['click', 'submit', 'keydown'];
  for (const type of types) w.addEventListener!(type, onEvent, true);
  return () => {
    for (const type of types) w.removeEventListener?.(type, onEvent, true);
  };
};
