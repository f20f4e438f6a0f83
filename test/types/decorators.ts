// Compiled by `npm run test:types` against the built package with legacy decorators
// (`experimentalDecorators`), as NestJS, Angular and TypeORM projects keep them on. consumer.ts
// checks the standard form.

import { traced } from 'edgetrace';

class Agent {
  @traced('agent')
  run(task: string): string {
    return task;
  }

  @traced({ type: 'tool', captureInput: false })
  async lookup(id: number): Promise<number> {
    return id;
  }

  @traced('chain')
  static create(): Agent {
    return new Agent();
  }
}

const agent: Agent = Agent.create();
const out: string = agent.run('t');
const found: Promise<number> = agent.lookup(1);
void out;
void found;

// The two-argument form is the same with either setting.
const wrapped: (a: string) => number = traced('tool', (a: string) => a.length);
void wrapped;
