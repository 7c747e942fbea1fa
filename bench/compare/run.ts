/**
 * `npm run bench:compare -- <git-ref>`: the regression guard. Builds `<git-ref>` in a temporary
 * git worktree (npm ci — or a link to this tree's node_modules when the lockfiles are identical —
 * then npm run build), starts agentd from both trees against one mock, and measures the core
 * benchmarks on both side by side, in alternating rounds:
 *   one-call task and tool round trip — throughput at 32 connections, the agentd process's CPU
 *   time per request under that load (/proc), latency p50/p99 at one connection.
 * Prints each figure for both trees and the ratio current ÷ ref; writes bench/results/compare-<date>.json.
 *
 * Flags: --rounds N (3)  --seconds S (5)  --requests N (2000)
 *        --fail-below R: exit 1 when a throughput ratio is below R (e.g. 0.9), for CI
 *        --env NAME=VALUE (repeatable): set for this tree's agentd only, to measure a setting
 *          against the same code (`npm run bench:compare -- HEAD --env AGENTD_TASKS__RECENT_LIMIT=0`)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { tempDir } from '../../test/helpers/agentd.js';
import { mockBackedConfig, startMockProcess } from '../lib/agentd.js';
import {
  type LatencyResult,
  measureLatencyInterleaved,
  measureThroughputAndCpu,
  type ThroughputAndCpu,
} from '../lib/load.js';
import { describeMachine } from '../lib/machine.js';
import { type Started, startNode } from '../lib/processes.js';
import { table, writeResult } from '../lib/report.js';
import { median, round } from '../lib/stats.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    requests: { type: 'string', default: '2000' },
    'fail-below': { type: 'string' },
    env: { type: 'string', multiple: true, default: [] },
  },
});
const ref = positionals[0];
if (ref === undefined) {
  process.stderr.write(
    'usage: npm run bench:compare -- <git-ref> [--rounds N] [--seconds S] [--fail-below R]\n',
  );
  process.exit(2);
}
const rounds = Number(values.rounds);
const seconds = Number(values.seconds);
const requests = Number(values.requests);
/** Environment for the current tree's agentd only (`--env NAME=VALUE`). */
const currentEnv: Record<string, string> = {};
for (const pair of values.env) {
  const eq = pair.indexOf('=');
  if (eq < 1) {
    process.stderr.write(`--env takes NAME=VALUE, not ${JSON.stringify(pair)}\n`);
    process.exit(2);
  }
  currentEnv[pair.slice(0, eq)] = pair.slice(eq + 1);
}
const root = new URL('../..', import.meta.url).pathname;

function run(command: string, args: string[], cwd: string): string {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (result.status !== 0)
    throw new Error(`${command} ${args.join(' ')} failed in ${cwd} (exit ${result.status})`);
  return result.stdout.trim();
}

const commit = run('git', ['rev-parse', '--verify', `${ref}^{commit}`], root);
const head = run('git', ['rev-parse', 'HEAD'], root);
const dirty = run('git', ['status', '--porcelain', '--untracked-files=no'], root) !== '';
const work = tempDir('agentd-compare-');
const refTree = join(work.path, 'tree');

/** A checkout of the ref with its own dependencies and build. */
function prepareRefTree(): void {
  process.stderr.write(`preparing ${ref} (${commit.slice(0, 10)}) in ${refTree}\n`);
  run('git', ['worktree', 'add', '--detach', refTree, commit], root);
  const sameLock =
    existsSync(join(refTree, 'package-lock.json')) &&
    readFileSync(join(refTree, 'package-lock.json'), 'utf8') ===
      readFileSync(join(root, 'package-lock.json'), 'utf8');
  if (sameLock) symlinkSync(join(root, 'node_modules'), join(refTree, 'node_modules'), 'dir');
  else run('npm', ['ci', '--no-audit', '--no-fund'], refTree);
  run('npm', ['run', 'build'], refTree);
}

function startAgentd(
  tree: string,
  name: string,
  mockOrigin: string,
  env: Record<string, string> = {},
): Promise<Started> {
  const path = join(work.path, `${name}.json`);
  writeFileSync(
    path,
    JSON.stringify({
      log: { level: 'warn' },
      storage: { path: join(work.path, `${name}.db`) },
      ...mockBackedConfig(mockOrigin),
    }),
  );
  return startNode(
    [join(tree, 'dist', 'cli', 'main.js'), 'serve', '--port', '0', '--config', path],
    /"address":"(http:\/\/[^"]+)"/,
    { env: { AGENTD_LOG_LEVEL: 'info', ...env } },
  );
}

/** Removes the temporary worktree (also on Ctrl-C), so no stale worktree stays registered. */
function removeRefTree(): void {
  if (existsSync(refTree))
    spawnSync('git', ['worktree', 'remove', '--force', refTree], { cwd: root, stdio: 'ignore' });
  spawnSync('git', ['worktree', 'prune'], { cwd: root, stdio: 'ignore' });
  work.remove();
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    removeRefTree();
    process.exit(130);
  });
}

const processes: Started[] = [];
const latency = new Map<string, LatencyResult[]>();
const throughput = new Map<string, ThroughputAndCpu[]>();
try {
  run('npm', ['run', 'build'], root);
  prepareRefTree();
  const mock = await startMockProcess();
  processes.push(mock);
  const trees = [
    { name: 'current', agentd: await startAgentd(root, 'current', mock.match, currentEnv) },
    { name: 'ref', agentd: await startAgentd(refTree, 'ref', mock.match) },
  ];
  for (const tree of trees) processes.push(tree.agentd);
  const succeeded = (s: number, b: string) => s === 200 && b.includes('"succeeded"');
  const workloads = [
    { name: 'one-call task', path: '/v1/agents/bench/run', body: { input: 'hello' }, check: succeeded },
    {
      name: 'tool round trip',
      path: '/v1/agents/assistant/run',
      body: { input: 'What is 17*23?' },
      check: (s: number, b: string) => succeeded(s, b) && b.includes('391'),
    },
  ];
  for (let r = 1; r <= rounds; r++) {
    for (const workload of workloads) {
      // Alternate which tree goes first, so drift on a shared machine hits both alike; latency
      // requests take turns of 100 between the trees.
      const order = r % 2 === 1 ? trees : [...trees].reverse();
      const targets = order.map((tree) => ({
        name: `${tree.name} ${workload.name}`,
        url: tree.agentd.match,
        path: workload.path,
        body: JSON.stringify(workload.body),
        validate: workload.check,
      }));
      const lats = await measureLatencyInterleaved(targets, requests, Math.min(500, requests));
      for (const [t, tree] of order.entries()) {
        const target = targets[t]!;
        const lat = lats[t]!;
        const thr = await measureThroughputAndCpu(target, 32, seconds, tree.agentd.child.pid!);
        latency.set(target.name, [...(latency.get(target.name) ?? []), lat]);
        throughput.set(target.name, [...(throughput.get(target.name) ?? []), thr]);
        process.stderr.write(
          `round ${r} ${target.name}: ${Math.round(thr.requests_per_sec)} req/s, ${Math.round(thr.server_cpu_us_per_request)} µs CPU/request, p50 ${round(lat.p50_ms)} ms, p99 ${round(lat.p99_ms)} ms\n`,
        );
      }
    }
  }
  const rows: (string | number)[][] = [];
  const summary: Record<string, unknown>[] = [];
  let worst = Number.POSITIVE_INFINITY;
  for (const workload of workloads) {
    const figure = (tree: string) => {
      const lats = latency.get(`${tree} ${workload.name}`)!;
      const thrs = throughput.get(`${tree} ${workload.name}`)!;
      return {
        rps: median(thrs.map((t) => t.requests_per_sec)),
        cpuUs: median(thrs.map((t) => t.server_cpu_us_per_request)),
        p50: median(lats.map((l) => l.p50_ms)),
        p99: median(lats.map((l) => l.p99_ms)),
        errors: thrs.reduce((sum, t) => sum + t.errors + t.non2xx, 0),
      };
    };
    const current = figure('current');
    const base = figure('ref');
    worst = Math.min(worst, current.rps / base.rps);
    rows.push(
      [
        workload.name,
        'req/s @32 (higher is better)',
        Math.round(current.rps),
        Math.round(base.rps),
        round(current.rps / base.rps),
      ],
      [
        workload.name,
        'server CPU µs/request @32 (lower is better)',
        Math.round(current.cpuUs),
        Math.round(base.cpuUs),
        round(current.cpuUs / base.cpuUs),
      ],
      [
        workload.name,
        'p50 ms @1 (lower is better)',
        round(current.p50),
        round(base.p50),
        round(current.p50 / base.p50),
      ],
      [
        workload.name,
        'p99 ms @1 (lower is better)',
        round(current.p99),
        round(base.p99),
        round(current.p99 / base.p99),
      ],
      [workload.name, 'errors', current.errors, base.errors, '—'],
    );
    summary.push({ workload: workload.name, current, ref: base });
  }
  const text = table(
    [
      'workload',
      'figure',
      `current (${head.slice(0, 10)}${dirty ? ' + changes' : ''}${values.env.map((pair) => `, ${pair}`).join('')})`,
      `${ref} (${commit.slice(0, 10)})`,
      'current ÷ ref',
    ],
    rows,
  );
  process.stdout.write(
    `\n${text}\n\nMedians of ${rounds} alternating rounds; ${seconds} s per throughput run, ${requests} sequential requests per tree and latency run, the trees taking turns of 100.\n`,
  );
  const file = writeResult('compare', {
    machine: describeMachine(),
    ref,
    commit,
    head,
    dirty,
    env: currentEnv,
    rounds,
    seconds,
    requests,
    summary,
  });
  process.stdout.write(`results: ${file}\n`);
  const threshold = values['fail-below'] === undefined ? undefined : Number(values['fail-below']);
  if (threshold !== undefined && worst < threshold) {
    process.stderr.write(`throughput ratio ${round(worst)} is below ${threshold}: regression\n`);
    process.exitCode = 1;
  }
} finally {
  for (const started of processes.reverse()) await started.stop();
  removeRefTree();
}
