import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Started, startNode } from './processes.js';

const root = new URL('../..', import.meta.url).pathname;
export const CLI = join(root, 'dist', 'cli', 'main.js');

/** Starts `agentd mock-llm` on a free port; `match` is its origin (no /v1). */
export function startMockProcess(extraArgs: string[] = []): Promise<Started> {
  return startNode([CLI, 'mock-llm', '--port', '0', ...extraArgs], /listening on (http:\/\/\S+)\/v1/);
}

/**
 * Writes `config` (plus quiet logging and a private SQLite file) to `<dir>/<name>.json` and
 * starts `agentd serve` with it; `match` is the server's origin.
 */
export function startAgentdProcess(
  dir: string,
  name: string,
  config: Record<string, unknown>,
  env: NodeJS.ProcessEnv = {},
  execArgv: string[] = [],
  timeoutMs?: number,
): Promise<Started> {
  const path = join(dir, `${name}.json`);
  writeFileSync(
    path,
    JSON.stringify({ log: { level: 'warn' }, storage: { path: join(dir, `${name}.db`) }, ...config }),
  );
  return startNode([CLI, 'serve', '--port', '0', '--config', path], /"address":"(http:\/\/[^"]+)"/, {
    env: { AGENTD_LOG_LEVEL: 'info', ...env },
    execArgv,
    timeoutMs,
  });
}

/** agentd configuration pointing at a mock process, with a `bench` agent (no tools) and `assistant` (calculator). */
export function mockBackedConfig(mockOrigin: string): Record<string, unknown> {
  return {
    providers: { mock: { type: 'mock', base_url: `${mockOrigin}/v1` } },
    models: { 'mock-medium': { provider: 'mock', name: 'mock' } },
    tiers: { small: ['mock-medium'], medium: ['mock-medium'], large: ['mock-medium'] },
    agents: {
      bench: { model: 'mock-medium', system_prompt: 'You are a benchmark.' },
      assistant: { model: 'mock-medium', tools: ['calculator'], system_prompt: 'Use the calculator.' },
    },
  };
}
