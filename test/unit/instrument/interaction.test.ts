import { describe, expect, it } from 'vitest';
import { shortSelector } from '../../../src/instrument/interaction';

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
    // Short numbers are a developer's: a column, a step.
    expect(shortSelector(el('DIV', { id: 'step-3', className: 'col-12' }))).toBe('div#step-3');
  });
});
