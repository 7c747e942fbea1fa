#!/usr/bin/env node
// Copies the dashboard's static files (HTML, CSS, browser modules) from src/ to dist/: tsc only
// emits what it compiles, and the server reads these files at start-up.
import { cpSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const from = join(root, 'src/server/dashboard');
const to = join(root, 'dist/server/dashboard');
rmSync(to, { recursive: true, force: true });
mkdirSync(to, { recursive: true });
const files = readdirSync(from).filter((name) => /\.(html|css|js|svg)$/.test(name));
for (const name of files) cpSync(join(from, name), join(to, name));
console.log(`copied ${files.length} dashboard files to dist/server/dashboard`);
