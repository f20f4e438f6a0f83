import { afterEach, describe, expect, it } from 'vitest';
import { proxy, releaseProxy, wrap, type Remote } from 'comlink';
import { answerCalls } from '../../../worker/answerCalls';

// The page side is comlink's real wrap(); the worker side is answerCalls(). If comlink's message
// format changes, these fail before the browser specs do.

interface Api {
  add(a: number, b: number): number;
  later(value: string): Promise<string>;
  fails(): Promise<void>;
  throwsString(): void;
  counter: number;
}

const channels: MessageChannel[] = [];
afterEach(() => {
  for (const c of channels.splice(0)) {
    c.port1.close();
    c.port2.close();
  }
});

const connect = (api: object): Remote<Api> => {
  const channel = new MessageChannel();
  channels.push(channel);
  answerCalls(api, channel.port2);
  return wrap<Api>(channel.port1);
};

const makeApi = () => {
  const calls: unknown[][] = [];
  const api = {
    add: (a: number, b: number) => {
      calls.push([a, b]);
      return a + b;
    },
    later: async (value: string) => `got ${value}`,
    fails: async () => {
      throw new RangeError('out of range');
    },
    throwsString: () => {
      throw 'plain string';
    },
    counter: 7,
  };
  return { api, calls };
};

describe('answerCalls (the worker side of comlink)', () => {
  it('answers method calls from wrap() with their results, sync or async, and structured-clone arguments', async () => {
    const { api, calls } = makeApi();
    const remote = connect(api);
    expect(await remote.add(2, 3)).toBe(5);
    expect(await remote.later('records')).toBe('got records');
    expect(calls).toEqual([[2, 3]]);
    const records = [{ traceId: 'a'.repeat(32), attrs: { n: 1, nested: { deep: [1, 2] } } }];
    const echo = connect({ echo: (r: unknown) => r }) as unknown as { echo(r: unknown): Promise<unknown> };
    expect(await echo.echo(records)).toEqual(records);
  });

  it('refuses to read a value (GET): the page only calls methods', async () => {
    const remote = connect(makeApi().api);
    await expect(Promise.resolve(remote.counter)).rejects.toThrow(/GET is not supported/);
  });

  it('passes a rejection or a throw to the caller as comlink does', async () => {
    const remote = connect(makeApi().api);
    const error = await remote.fails().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error).toMatchObject({ name: 'RangeError', message: 'out of range' });
    await expect(remote.throwsString()).rejects.toBe('plain string');
  });

  it('rejects the call with the DataCloneError when the result cannot cross postMessage', async () => {
    const odd = connect({ fn: () => () => 1 }) as unknown as { fn(): Promise<unknown> };
    const error = await odd.fn().catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'DataCloneError' });
  });

  it('refuses members that are not the API object\'s own, and calls nothing', async () => {
    const { api, calls } = makeApi();
    const remote = connect(api) as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>;
    await expect(remote.missing!()).rejects.toThrow(/no method/);
    await expect(remote.toString!()).rejects.toThrow(/no method/);
    await expect(remote.hasOwnProperty!('add')).rejects.toThrow(/no method/);
    expect(calls).toEqual([]);
  });

  it('refuses what it does not support (proxied callbacks, SET) with a TypeError', async () => {
    const { api, calls } = makeApi();
    const remote = connect(api);
    await expect((remote.add as unknown as (f: unknown) => Promise<number>)(proxy(() => 1))).rejects.toThrow(/plain arguments only/);
    expect(calls).toEqual([]);
    // comlink's set trap cannot report a failure to the caller, so send the message by hand.
    const channel = new MessageChannel();
    channels.push(channel);
    answerCalls(api, channel.port2);
    const reply = new Promise<unknown>((resolve) => channel.port1.addEventListener('message', (e) => resolve(e.data), { once: true }));
    channel.port1.start();
    channel.port1.postMessage({ id: 'set-1', type: 'SET', path: ['counter'], value: { type: 'RAW', value: 9 } });
    expect(await reply).toMatchObject({ id: 'set-1', type: 'HANDLER', name: 'throw', value: { isError: true, value: { name: 'TypeError' } } });
    expect(api.counter).toBe(7);
  });

  it('answers RELEASE and closes its port', async () => {
    const remote = connect(makeApi().api);
    expect(await remote.add(1, 1)).toBe(2);
    await remote[releaseProxy]();
    expect(() => remote.add(1, 2)).toThrow(/released/);
  });
});
