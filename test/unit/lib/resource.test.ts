import { describe, it, expect } from 'vitest';
import { browserResource } from '../../../src/lib/browserResource';
import { runtimeResource } from '../../../src/server/runtimeResource';

describe('runtimeResource', () => {
  it('names this runtime: Node, with its version', () => {
    expect(runtimeResource()).toEqual({ 'process.runtime.name': 'nodejs', 'process.runtime.version': process.versions.node });
  });

  it('tells apart the runtimes that also have Node’s process', () => {
    const node = { process: { versions: { node: '22.1.0' } } };
    expect(runtimeResource({ ...node, Deno: { version: { deno: '2.1.4' } } })).toEqual({ 'process.runtime.name': 'deno', 'process.runtime.version': '2.1.4' });
    expect(runtimeResource({ ...node, Bun: { version: '1.2.0' } })).toEqual({ 'process.runtime.name': 'bun', 'process.runtime.version': '1.2.0' });
    expect(runtimeResource({ ...node, navigator: { userAgent: 'Cloudflare-Workers' } })).toEqual({ 'process.runtime.name': 'cloudflare-workers' });
    expect(runtimeResource({ EdgeRuntime: 'edge-runtime', process: {} })).toEqual({ 'process.runtime.name': 'edge-runtime' });
    expect(runtimeResource(node)).toEqual({ 'process.runtime.name': 'nodejs', 'process.runtime.version': '22.1.0' });
  });

  it('adds nothing for a runtime it does not know, or one whose globals throw', () => {
    expect(runtimeResource({})).toEqual({});
    expect(runtimeResource({ navigator: { userAgent: 'Mozilla/5.0' } })).toEqual({});
    const hostile = Object.defineProperty({}, 'Deno', {
      get() {
        throw new Error('no');
      },
    });
    expect(runtimeResource(hostile)).toEqual({});
  });
});

describe('browserResource', () => {
  const chrome = {
    userAgent: 'Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0.0.0',
    language: 'de-CH',
    userAgentData: { brands: [{ brand: 'Chromium', version: '156' }, { brand: 'Not.A/Brand', version: '99' }], mobile: false, platform: 'Linux' },
  };

  it('reads the user agent, the language and the client hints', () => {
    expect(browserResource(chrome)).toEqual({
      'user_agent.original': chrome.userAgent,
      'browser.language': 'de-CH',
      'browser.platform': 'Linux',
      'browser.mobile': false,
      'browser.brands': ['Chromium 156', 'Not.A/Brand 99'],
    });
  });

  it('leaves out what a browser does not have (no client hints: Firefox, Safari)', () => {
    expect(browserResource({ userAgent: 'Mozilla/5.0 Firefox/140.0', language: '' })).toEqual({ 'user_agent.original': 'Mozilla/5.0 Firefox/140.0' });
    expect(browserResource({ ...chrome, userAgentData: { brands: [{ brand: 1 }], mobile: 'yes' } })).not.toHaveProperty('browser.brands');
    expect(browserResource(undefined)).toEqual({});
  });

  it('keeps what it read before a getter threw', () => {
    const nav = { userAgent: 'UA' };
    Object.defineProperty(nav, 'language', {
      get() {
        throw new Error('locked down');
      },
    });
    expect(browserResource(nav)).toEqual({ 'user_agent.original': 'UA' });
  });
});
