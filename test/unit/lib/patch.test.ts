import { describe, expect, it } from 'vitest';
import { patch } from '../../../src/lib/patch';
import { collectGarbage } from '../../helpers/gc';

describe('patch', () => {
  it('wraps a method, keeps its name and arity, and puts the original back', () => {
    const target = { greet(name: string, punctuation: string) { return `hi ${name}${punctuation}`; } };
    const original = target.greet;
    const undo = patch(target, 'greet', (orig) => function greet(this: unknown, name: string, p: string) { return orig.call(this, name.toUpperCase(), p); });
    expect(target.greet('ada', '!')).toBe('hi ADA!');
    expect([target.greet.name, target.greet.length]).toEqual(['greet', 2]);
    undo();
    expect(target.greet).toBe(original);
  });

  it('under a wrapper installed after it, stays in place, passes calls through and lets go of its state', async () => {
    const target = { run: (x: number) => x + 1 };
    let state: { tracer: object } | undefined = { tracer: {} };
    const held = new WeakRef(state.tracer);
    const undo = patch(target, 'run', (orig) => {
      const captured = state!;
      return (x: number) => (captured.tracer ? orig(x) * 10 : orig(x));
    });
    state = undefined;
    // Another library wraps after us.
    const ours = target.run;
    target.run = (x: number) => ours(x) + 1000;
    expect(target.run(1)).toBe(1020);
    undo();
    expect(target.run(1)).toBe(1002);
    await collectGarbage();
    expect(held.deref()).toBeUndefined();
  });
});
