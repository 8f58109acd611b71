#!/usr/bin/env node
// Runs the TypeScript sources through tsx in a checkout, and the compiled dist/ in a production
// image (which ships no src/).
import { existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const source = `${root}src/cli/main.ts`;
let entry = `${root}dist/cli/main.js`;
if (existsSync(source)) {
  try {
    const { register } = await import('tsx/esm/api');
    register();
    entry = source;
  } catch {
    // tsx is a development dependency; without it, use the build.
  }
}
if (!existsSync(entry)) {
  console.error('error: no build found; run `npm run build` (or install dev dependencies)');
  process.exit(1);
}
await import(pathToFileURL(entry).href);
