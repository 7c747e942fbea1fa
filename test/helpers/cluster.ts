import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './agentd.js';
import { dropSchema, TEST_DATABASE_URL, uniqueSchema } from './postgres.js';
import { dropPrefix, SHARED_REDIS_URL, testPrefix } from './redis.js';

const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;

export interface ClusterNode {
  name: string;
  url: string;
  child: ChildProcess;
  /** Everything the node wrote (JSON log lines), for failure messages. */
  output(): string;
  /** Resolves with the exit code or signal. */
  exited: Promise<number | string | null>;
}

/**
 * A cluster of `agentd serve` processes on 127.0.0.1 sharing the local Redis (a private key
 * prefix) and Postgres (a private schema); `close` stops every node and removes both.
 */
export class TestCluster {
  readonly prefix = testPrefix();
  readonly schema = uniqueSchema('agentd_cluster');
  readonly nodes: ClusterNode[] = [];
  readonly #dir = tempDir('agentd-cluster-');
  readonly #configFile: string;
  readonly #env: Record<string, string>;

  constructor(config: Record<string, unknown>, env: Record<string, string> = {}) {
    this.#configFile = join(this.#dir.path, 'agentd.json');
    writeFileSync(this.#configFile, JSON.stringify(config));
    this.#env = {
      PATH: process.env.PATH ?? '',
      REDIS_URL: SHARED_REDIS_URL,
      DATABASE_URL: TEST_DATABASE_URL,
      AGENTD_REDIS__KEY_PREFIX: this.prefix,
      AGENTD_STORAGE__SCHEMA: this.schema,
      AGENTD_DISTRIBUTED__ENABLED: 'true',
      AGENTD_LOG_LEVEL: 'info',
      ...env,
    };
  }

  /** Starts one node and resolves once it listens. */
  async start(name: string, env: Record<string, string> = {}): Promise<ClusterNode> {
    const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '-c', this.#configFile], {
      env: { ...this.#env, AGENTD_STORAGE__PATH: join(this.#dir.path, `${name}.db`), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
    });
    const exited = new Promise<number | string | null>((resolve) =>
      child.once('exit', (code, signal) => resolve(code ?? signal)),
    );
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`node ${name} did not start: ${out}`)), 60_000);
      const look = (): void => {
        const match = /"address":"(http:\/\/[^"]+)"/.exec(out);
        if (match === null) return;
        clearTimeout(timer);
        resolve(match[1]!);
      };
      child.stdout!.on('data', look);
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`node ${name} exited with ${code}: ${out}`));
      });
    });
    const node: ClusterNode = { name, url, child, output: () => out, exited };
    this.nodes.push(node);
    return node;
  }

  /** Kills a node at once (SIGKILL: no drain, no cleanup, locks left to expire). */
  async kill(node: ClusterNode): Promise<void> {
    node.child.kill('SIGKILL');
    await node.exited;
  }

  async close(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (node) => {
        if (node.child.exitCode !== null || node.child.signalCode !== null) return;
        node.child.kill('SIGTERM');
        const timer = setTimeout(() => node.child.kill('SIGKILL'), 10_000);
        await node.exited;
        clearTimeout(timer);
      }),
    );
    await dropPrefix(SHARED_REDIS_URL, this.prefix);
    await dropSchema(this.schema);
    this.#dir.remove();
  }
}
