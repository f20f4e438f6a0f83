// `npm run test:types`, second half: the consumer of test/types/consumer.ts compiled under the
// older "node" (node10) module resolution that many projects still use. It ignores package.json
// "exports" and has no self-reference, so the package is installed the way an app has it (a
// link in node_modules of a folder outside the repository) and its subpaths' types must come
// from "typesVersions". Then, in that app, build tools must find the files a site serves as they
// are (the service worker and the script tag) by the package's name, through "exports".
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url));
const app = mkdtempSync(join(tmpdir(), 'edgetrace-node10-'));
try {
  mkdirSync(join(app, 'node_modules'));
  symlinkSync(root, join(app, 'node_modules', 'edgetrace'), 'dir');
  copyFileSync(join(root, 'test/types/consumer.ts'), join(app, 'consumer.ts'));
  const compilerOptions = {
    target: 'ES2022',
    module: 'ES2022',
    moduleResolution: 'Node10',
    lib: ['ES2022', 'DOM', 'DOM.Iterable'],
    types: ['node'],
    typeRoots: [join(root, 'node_modules/@types')],
    strict: true,
    noEmit: true,
    skipLibCheck: false,
  };
  writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['consumer.ts'] }));
  execFileSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', app], { stdio: 'inherit' });
  console.log('types: node10 resolution ok');
  const require = createRequire(join(app, 'build.js'));
  for (const file of ['edgetrace-sw.js', 'edgetrace.iife.js']) {
    const found = require.resolve(`edgetrace/${file}`);
    if (found !== join(root, 'dist', file)) throw new Error(`edgetrace/${file} resolved to ${found}, not dist/${file}`);
  }
  console.log('exports: the service worker and the script tag resolve by name');
} finally {
  rmSync(app, { recursive: true, force: true });
}
