import { describe, expect, it } from 'vitest';
import { findInteraction, remember, shortSelector } from '../../../src/instrument/interaction';
import { createTracer } from '../../../src/core/tracer';

/** The parts of an element shortSelector reads. */
const el = (tagName: string, a: { id?: string; className?: string; name?: string; role?: string } = {}): Element =>
  ({
    tagName,
    id: a.id ?? '',
    className: a.className ?? '',
    getAttribute: (k: string) => (k === 'name' ? (a.name ?? null) : k === 'role' ? (a.role ?? null) : null),
  }) as unknown as Element;

describe('shortSelector', () => {
  it('names an element by id, then classes, then name, then role', () => {
    expect(shortSelector(el('BUTTON', { id: 'send', className: 'primary' }))).toBe('button#send');
    expect(shortSelector(el('A', { className: ' nav  primary wide ' }))).toBe('a.nav.primary');
    expect(shortSelector(el('INPUT', { name: 'q' }))).toBe('input[name=q]');
    expect(shortSelector(el('DIV', { role: 'tab' }))).toBe('div[role=tab]');
    expect(shortSelector(el('SPAN'))).toBe('span');
  });

  it('passes over ids, classes and names built from data: emails, long numbers, hex ids', () => {
    expect(shortSelector(el('BUTTON', { id: 'row-bob.smith@example.com', className: 'row-action' }))).toBe('button.row-action');
    expect(shortSelector(el('LI', { className: 'contact user-18273645 vip' }))).toBe('li.contact.vip');
    expect(shortSelector(el('TR', { id: 'item-9f3a2c1b', name: 'order-550e8400' }))).toBe('tr');
    // Numbers written in groups: a card number, a social security number, a phone number.
    expect(shortSelector(el('BUTTON', { id: 'card-4111-1111-1111-1111', className: 'pay' }))).toBe('button.pay');
    expect(shortSelector(el('A', { id: 'ssn-123-45-6789', className: 'call_+49_30_1234' }))).toBe('a');
    // Short numbers are a developer's: a column, a step, a version.
    expect(shortSelector(el('DIV', { id: 'step-3', className: 'col-12' }))).toBe('div#step-3');
    expect(shortSelector(el('DIV', { id: 'step-1-of-3', className: 'v1-2-0' }))).toBe('div#step-1-of-3');
  });

  it('passes over ids and classes a tool made, which change from build to build or render to render', () => {
    // React's useId, in the forms of React 18, 19.0 and 19.3, alone or inside a library's id.
    for (const id of [':r1:', '«r1»', '_r_0_', 'radix-:r3:-trigger']) expect(shortSelector(el('BUTTON', { id, className: 'save' })), id).toBe('button.save');
    // CSS modules (Vite, webpack), emotion, styled-components, Svelte: the hand-written class stays.
    expect(shortSelector(el('BUTTON', { className: '_primary_1sqgt_1 send' }))).toBe('button.send');
    expect(shortSelector(el('BUTTON', { className: 'Button_primary__3xYz9 send' }))).toBe('button.send');
    expect(shortSelector(el('BUTTON', { className: 'css-1x2y3z4 send' }))).toBe('button.send');
    expect(shortSelector(el('BUTTON', { className: 'sc-bdVaJa kXyZab send' }))).toBe('button.send');
    expect(shortSelector(el('BUTTON', { className: 'svelte-1ab2c3d' }))).toBe('button');
    expect(shortSelector(el('BUTTON', { className: 'Home_main__nLjYH send' }))).toBe('button.send');
    // Hand-written names with digits, units, capitals, tool-like prefixes, BEM or other scripts stay.
    expect(shortSelector(el('BUTTON', { id: 'link42', className: 'h1-title' }))).toBe('button#link42');
    expect(shortSelector(el('DIV', { className: 'navBarItem col-2xl btn-primary' }))).toBe('div.navBarItem.col-2xl');
    for (const name of ['h-100vh', 'w-100px', 'col-10rem', 'grid-3cols', 'report-2024q1', 'css-grid', 'sc-header', 'jsx-button', 'card__title', 'café', '登录']) {
      expect(shortSelector(el('DIV', { className: name })), name).toBe(`div.${name}`);
    }
    for (const id of ['chatUI', 'appUI', 'myNavBar', 'logInBtn']) expect(shortSelector(el('DIV', { id })), id).toBe(`div#${id}`);
    // A form field's name may hold brackets and dots (Rails, nested forms).
    expect(shortSelector(el('INPUT', { name: 'post[title]' }))).toBe('input[name=post[title]]');
  });
});

describe('findInteraction', () => {
  const tracer = createTracer();
  const at = (name: string, timeStamp: number) => {
    const span = tracer.createTrace(name);
    remember(span, timeStamp);
    return span;
  };
  const earlier = at('click button#a', 1000);
  const busy = at('click button#b', 5100);
  const idle = at('click p', 9000);
  idle.discard();

  it('matches the click an entry measured, also one made later within a long entry', () => {
    // Event Timing's startTime is the event's own timeStamp.
    expect(findInteraction([{ startTime: 1000, duration: 16 }])?.span).toBe(earlier);
    // Pressed while the page was busy: web-vitals keeps the pointerdown, and the click came
    // 100 ms later, within its 400 ms.
    expect(findInteraction([{ name: 'pointerdown', startTime: 5000, duration: 400 }])?.span).toBe(busy);
  });

  it('matches nothing for a key press 200 ms after a click, nor a click that was not sent', () => {
    expect(findInteraction([{ name: 'keydown', startTime: 1200, duration: 300 }])).toBeUndefined();
    // A click made during a slow keystroke is not what the keystroke's entry measured.
    expect(findInteraction([{ name: 'keydown', startTime: 5050, duration: 300 }])).toBeUndefined();
    expect(findInteraction([{ startTime: 9000, duration: 16 }])).toBeUndefined();
  });
});
