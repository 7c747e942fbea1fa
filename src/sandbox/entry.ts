import { fileURLToPath } from 'node:url';

/** Where a worker or child entry file is, and how Node loads it. */
export interface EntryPoint {
  /** The entry file. */
  path: string;
  /** Flags a child process needs to load it. */
  execArgv: string[];
  /** What to give `new Worker(…)`: the file, or (from sources) a loader script to evaluate. */
  worker: { script: string; eval: boolean };
}

/**
 * Resolves an entry module next to `base` (an `import.meta.url`). Built code loads `<name>.js`.
 * When agentd itself runs from TypeScript sources (tests and benchmarks run through tsx), the
 * entry is `<name>.ts`: a child process gets `--import tsx`, and a worker thread (where Node 20
 * ignores `--import`) a small script that registers tsx before importing the entry.
 */
export function entryPoint(base: string, name: string): EntryPoint {
  const fromSource = base.endsWith('.ts');
  const url = new URL(`${name}.${fromSource ? 'ts' : 'js'}`, base);
  const path = fileURLToPath(url);
  if (!fromSource) return { path, execArgv: [], worker: { script: path, eval: false } };
  const script = `import('tsx/esm/api').then((api) => { api.register(); return import(${JSON.stringify(url.href)}); });`;
  return { path, execArgv: ['--import', 'tsx'], worker: { script, eval: true } };
}
