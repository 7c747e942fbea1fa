#!/usr/bin/env node
import { VERSION } from '../runtime/index.js';
import { configCheck } from './config-check.js';
import { keys } from './keys.js';
import { memory } from './memory.js';
import { mockLlm } from './mock-llm.js';
import { run } from './run.js';
import { serve } from './serve.js';
import { tool } from './tool.js';

const HELP = `agentd ${VERSION} — a high-performance runtime for AI agents

Usage: agentd <command> [options]

Commands:
  serve                 start the server (HTTP API, SSE)
  run <agent> "<input>" run an agent here and stream its answer
  mock-llm              start the offline OpenAI-compatible mock model
  config check          validate the configuration and show what it resolves to
  keys                  create, list and revoke API keys
  tool run <name>       run one tool directly (e.g. run_python) and print its result
  memory <action>       add, search, export, import or reindex long-term memories

Run "agentd <command> --help" for a command's options.`;

const COMMANDS: Record<string, (args: string[]) => Promise<void>> = {
  serve,
  run,
  'mock-llm': mockLlm,
  config: configCheck,
  keys,
  tool,
  memory,
};

async function main(argv: string[]): Promise<void> {
  const [command, ...args] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(`${HELP}\n`);
    return;
  }
  if (command === '--version' || command === '-v') {
    process.stdout.write(`${VERSION}\n`);
    return;
  }
  const handler = COMMANDS[command];
  if (handler === undefined) {
    process.stderr.write(`agentd: unknown command "${command}"\n\n${HELP}\n`);
    process.exitCode = 2;
    return;
  }
  await handler(args);
}

main(process.argv.slice(2)).catch((err: unknown) => {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`agentd: ${message}\n`);
  process.exitCode = 1;
});
