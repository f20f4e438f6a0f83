// Run by `npm run build` after tsc has written the declaration files to dist/types.
//
// The sources import each other without file extensions, which bundlers and TypeScript's
// "Bundler" resolution accept, and tsc copies those specifiers into the .d.ts files unchanged.
// A consumer compiling with "moduleResolution": "node16" or "nodenext" resolves the package's
// types as ES modules, where a relative import needs its extension: without one, every type
// from edgetrace silently became `any` there. This gives each relative specifier the `.js` of
// the file (or folder index) it names, which both resolutions read.

import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../dist/types');
// `from './x'`, `import('./x')` and `import './x'`: the relative specifiers a .d.ts can hold.
const SPECIFIER = /(\bfrom\s+|\bimport\s*\(\s*|\bimport\s+)(['"])(\.\.?\/[^'"]*)\2/g;

const files = (dir) =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : name.endsWith('.d.ts') ? [path] : [];
  });

if (!existsSync(ROOT)) {
  console.error('dts-extensions: dist/types is missing; run tsc -p tsconfig.build.json first.');
  process.exit(1);
}

const unresolved = [];
let changed = 0;
for (const file of files(ROOT)) {
  const text = readFileSync(file, 'utf8');
  const out = text.replace(SPECIFIER, (whole, lead, quote, spec) => {
    if (/\.(js|mjs|cjs|json)$/.test(spec)) return whole;
    const base = resolve(dirname(file), spec);
    const target = existsSync(`${base}.d.ts`) ? `${spec}.js` : existsSync(join(base, 'index.d.ts')) ? `${spec.replace(/\/$/, '')}/index.js` : undefined;
    if (!target) {
      unresolved.push(`${file.slice(ROOT.length + 1)}: ${spec}`);
      return whole;
    }
    return `${lead}${quote}${target}${quote}`;
  });
  if (out !== text) {
    writeFileSync(file, out);
    changed++;
  }
}

if (unresolved.length) {
  console.error(`dts-extensions: no declaration file for:\n  ${unresolved.join('\n  ')}`);
  process.exit(1);
}
console.log(`dts-extensions: relative imports given extensions in ${changed} declaration files.`);
