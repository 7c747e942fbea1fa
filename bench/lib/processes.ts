import { type ChildProcess, spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';

/** Every child a benchmark started and that still runs: killed when the benchmark ends, however it ends. */
const children = new Set<ChildProcess>();
let reaperInstalled = false;

function track(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
  if (reaperInstalled) return;
  reaperInstalled = true;
  const reap = (): void => {
    for (const running of children) running.kill('SIGKILL');
  };
  process.once('exit', reap);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
    process.once(signal, () => {
      reap();
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1));
    });
}

export interface Started {
  child: ChildProcess;
  /** The first capture group of `ready` in the process output. */
  match: string;
  stop(): Promise<void>;
}

/**
 * Starts a Node process and resolves when its output matches `ready` (a regex whose first group
 * is returned, typically the listening URL). Output is kept for error messages only.
 */
export function startNode(
  args: string[],
  ready: RegExp,
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number; execArgv?: string[] } = {},
): Promise<Started> {
  const child = spawn(process.execPath, [...(options.execArgv ?? []), ...args], {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child);
  let output = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${args.join(' ')} did not start:\n${output}`));
    }, options.timeoutMs ?? 20_000);
    const onData = (chunk: Buffer): void => {
      output += chunk.toString();
      if (output.length > 100_000) output = output.slice(-50_000);
      const found = ready.exec(output);
      if (found !== null) {
        clearTimeout(timer);
        resolve({
          child,
          match: found[1] ?? found[0],
          stop: () =>
            new Promise<void>((done) => {
              if (child.exitCode !== null) return done();
              child.once('exit', () => done());
              child.kill('SIGTERM');
              setTimeout(() => child.kill('SIGKILL'), 5000).unref();
            }),
        });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${args.join(' ')} exited with ${code}:\n${output}`));
    });
  });
}

/** What a driver process printed: its `RESULT <json>` line, or why it gave none. */
export type DriverOutcome<R> = R | { failed: string };

/**
 * Runs a benchmark driver (one subject, one workload, in a fresh process) and resolves with the
 * JSON of its `RESULT ` line; a `FAILED <json string>` line, a crash or the time limit resolve
 * with `{ failed }` and the reason, so one failing subject never stops the whole run.
 */
export function runDriver<R>(
  args: string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; timeoutMs: number },
): Promise<DriverOutcome<R>> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, {
      cwd: options.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...options.env },
    });
    track(child);
    let out = '';
    let err = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      err = (err + chunk.toString()).slice(-4000);
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(killer);
      const lines = out.split('\n');
      const line = lines.find((l) => l.startsWith('RESULT '));
      if (line !== undefined) return resolve(JSON.parse(line.slice(7)) as R);
      const failed = lines.find((l) => l.startsWith('FAILED '));
      const reason =
        failed !== undefined
          ? (JSON.parse(failed.slice(7)) as string)
          : `exit ${code ?? signal}: ${err.trim().split('\n').slice(-3).join(' ')}`;
      resolve({ failed: reason.slice(0, 400) });
    });
  });
}

/** CPU time (user + system) a process has used so far, in seconds (Linux: /proc, 10 ms ticks). */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  // Fields 14 and 15 of /proc/<pid>/stat (utime, stime) are at 11 and 12 after the command name.
  return (Number(stat[11]) + Number(stat[12])) / 100;
}

/** The whole machine's CPU time so far, all cores, and the part of it spent idle (Linux: /proc/stat). */
export async function machineCpu(): Promise<{ total: number; idle: number }> {
  const first = (await readFile('/proc/stat', 'utf8')).split('\n', 1)[0]!;
  // cpu  user nice system idle iowait irq softirq steal …
  const ticks = first.trim().split(/\s+/).slice(1).map(Number);
  return { total: ticks.reduce((sum, t) => sum + t, 0), idle: ticks[3]! + ticks[4]! };
}
