#!/usr/bin/env node
// Runs the whole suite of the committed HEAD on another Node.js release, beside this tree.
// Usage: node scripts/test-node.mjs <major or version> [test filter ...]   (npm run test:node -- 24)
//
// Node comes from the npm registry (`node-<platform>-<arch>`, the packages the `node` package
// installs), so no other download site is needed; native addons build from source against the
// headers it ships. HEAD is cloned into a temporary directory (this tree's node_modules and dist/
// are built for the Node that runs it), installed with `npm ci` and tested with `npm test`.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const [wanted, ...filters] = process.argv.slice(2);
if (wanted === undefined || !/^\d+(\.\d+\.\d+)?$/.test(wanted)) {
  console.error('usage: node scripts/test-node.mjs <major or x.y.z> [test filter ...]');
  process.exit(2);
}
const PLATFORMS = { linux: 'linux', darwin: 'darwin' };
const platform = PLATFORMS[process.platform];
if (platform === undefined) {
  console.error(`no Node.js package for ${process.platform} on the npm registry; run this on Linux or macOS`);
  process.exit(2);
}
const pkg = `node-${platform}-${process.arch}`;

/** Runs a command (its output shown, or with `quiet` only when it fails); exits if it fails. */
function run(command, args, options = {}, quiet = false) {
  const result = spawnSync(command, args, {
    stdio: quiet ? 'pipe' : 'inherit',
    encoding: 'utf8',
    ...options,
  });
  if (result.status !== 0) {
    if (quiet) process.stderr.write(`${result.stdout}${result.stderr}`);
    console.error(`${command} ${args.join(' ')} failed (${result.status ?? result.signal})`);
    process.exit(result.status ?? 1);
  }
}

/** The newest version of `pkg` that `wanted` (a major or an exact version) names. */
function resolveVersion() {
  const result = spawnSync('npm', ['view', `${pkg}@${wanted}`, 'version', '--json'], { encoding: 'utf8' });
  if (result.status !== 0) {
    console.error(`npm view ${pkg}@${wanted} failed:\n${result.stderr}`);
    process.exit(1);
  }
  const found = JSON.parse(result.stdout);
  const versions = Array.isArray(found) ? found : [found];
  if (versions.length === 0) {
    console.error(`${pkg} has no version ${wanted}`);
    process.exit(1);
  }
  return versions[versions.length - 1];
}

const version = resolveVersion();
// Unpacked once per version and kept: about 190 MB each.
const nodeDir = join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'agentd', `${pkg}-${version}`);
const nodeBin = join(nodeDir, 'package', 'bin');
if (!existsSync(join(nodeBin, 'node'))) {
  mkdirSync(nodeDir, { recursive: true });
  console.log(`fetching ${pkg}@${version} from the npm registry`);
  run('npm', ['pack', `${pkg}@${version}`, '--pack-destination', nodeDir], {}, true);
  run('tar', ['xzf', join(nodeDir, `${pkg}-${version}.tgz`), '-C', nodeDir]);
  rmSync(join(nodeDir, `${pkg}-${version}.tgz`));
}

const work = mkdtempSync(join(tmpdir(), `agentd-node${version.split('.')[0]}-`));
const tree = join(work, 'agentd');
run('git', ['clone', '-q', root, tree]);
const env = {
  ...process.env,
  PATH: `${nodeBin}${delimiter}${process.env.PATH ?? ''}`,
  // node-gyp builds the native addons against the headers the package ships (no header download).
  npm_config_nodedir: join(nodeDir, 'package'),
};
// The memory benchmark tests read the LoCoMo data beside this tree, not beside the clone.
const locomo = join(root, '..', 'shared', 'data', 'locomo');
if (env.LOCOMO_DIR === undefined && existsSync(locomo)) env.LOCOMO_DIR = `${locomo}/`;

run(join(nodeBin, 'node'), ['--version'], { env });
run('npm', ['ci'], { cwd: tree, env });
const test = spawnSync('npm', filters.length === 0 ? ['test'] : ['test', '--', ...filters], {
  cwd: tree,
  env,
  stdio: 'inherit',
});
if (test.status === 0) rmSync(work, { recursive: true, force: true });
else console.error(`tests failed on Node ${version}; the tree is kept at ${tree}`);
process.exit(test.status ?? 1);
