/**
 * Bench-only packages (the peer frameworks and memory libraries) live in their own folder with
 * their own lockfile, so agentd's install stays small; they are installed on first use.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * Runs `npm <steps…>` in `dir` unless its node_modules exists; a failing step is reported and
 * the rest skipped (the subjects it would have installed are then reported as missing).
 */
export function installBenchPackages(dir: string, what: string, steps: string[][]): void {
  if (existsSync(join(dir, 'node_modules'))) return;
  process.stderr.write(`installing ${what} (npm ci in ${relative(process.cwd(), dir) || '.'})…\n`);
  for (const args of steps) {
    const result = spawnSync('npm', args, { cwd: dir, stdio: 'inherit' });
    if (result.status !== 0) {
      process.stderr.write(`npm ${args[0]} in ${dir} failed: those subjects will be reported as missing\n`);
      return;
    }
  }
}

/** The installed versions of `packages` under `dir`, or which one is missing and how to install it. */
export function installedVersions(
  dir: string,
  packages: readonly string[],
): { versions: Record<string, string>; missing?: string } {
  const found: Record<string, string> = {};
  for (const name of packages) {
    const path = join(dir, 'node_modules', name, 'package.json');
    if (!existsSync(path))
      return {
        versions: found,
        missing: `${name} is not installed (npm ci --prefix ${relative(process.cwd(), dir) || '.'})`,
      };
    found[name] = (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
  }
  return { versions: found };
}
