// Writes one section of BENCHMARKS.md: the text between `<!-- NAME:start -->` and
// `<!-- NAME:end -->` is replaced, or the marked block is appended when it is not there yet, so
// each benchmark owns its section and leaves the others as they are.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';

export const REPORT = new URL('../BENCHMARKS.md', import.meta.url);

const HEADER = `# Benchmarks

Written by \`npm run bench\` (bench/run.js), which builds first and replaces the sections between the
markers below. On a shared 2-core virtual machine the absolute figures move by tens of percent
between runs; the ratio within one run is much steadier, so compare that.
`;

/** Replaces (or appends) the section `name` of BENCHMARKS.md with `text`. */
export const writeSection = (name, text) => {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  let doc = existsSync(REPORT) ? readFileSync(REPORT, 'utf8') : HEADER;
  const block = `${start}\n${text}\n${end}`;
  const a = doc.indexOf(start);
  const b = doc.indexOf(end);
  doc = a >= 0 && b > a ? doc.slice(0, a) + block + doc.slice(b + end.length) : `${doc.trimEnd()}\n\n${block}\n`;
  writeFileSync(REPORT, doc);
};
