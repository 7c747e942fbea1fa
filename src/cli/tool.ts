import { readFileSync } from 'node:fs';
import { pino } from 'pino';
import { createLogger } from '../observability/index.js';
import { DEFAULT_TENANT, Runtime } from '../runtime/index.js';
import { fail, parse, red, str } from './args.js';

export const TOOL_HELP = `Usage: agentd tool run <name> [--args '<json>'] [options]
       agentd tool list

Runs one tool in this process, without a model, and prints its result as JSON
on stdout. Run as an agent (--agent) to apply that agent's allow-list and
limits; without it any registered tool runs (you hold the configuration).

Options:
  -a, --args <json>      the tool's arguments, a JSON object (default {})
      --code <file>      set arguments.code from a file (run_javascript, run_python)
      --agent <name>     run as this agent
  -c, --config <file>    configuration file (default: $AGENTD_CONFIG or ./agentd.yaml)
  -h, --help             show this help

Exit code: 0 when the tool answered, 1 when it failed or refused, 2 bad usage.
(A program that fails inside run_python is still an answer: see its "exit" and "error".)

Examples:
  agentd tool run calculator --args '{"expression":"2^10"}'
  agentd tool run run_python --args '{"code":"sum(range(10))"}'
  agentd tool run run_javascript --code script.js --args '{"timeout_ms":2000}'`;

/** `agentd tool run|list`. */
export async function tool(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, {
    args: { type: 'string', short: 'a' },
    code: { type: 'string' },
    agent: { type: 'string' },
    config: { type: 'string', short: 'c' },
  });
  const [action, name] = positionals;
  if (values.help || action === undefined) {
    process.stdout.write(`${TOOL_HELP}\n`);
    return;
  }
  if (action !== 'run' && action !== 'list') fail(`unknown action "${action}" (see agentd tool --help)`);
  if (action === 'run' && name === undefined) fail("usage: agentd tool run <name> --args '{…}'");
  const toolArgs = parseArguments(str(values.args), str(values.code));
  const runtime = await Runtime.create({
    configFile: str(values.config),
    logger: createLogger({
      level: process.env.AGENTD_LOG_LEVEL ?? 'error',
      destination: pino.destination(2),
    }),
    recover: false,
  }).catch((err: Error) => fail(err.message));
  try {
    if (action === 'list') {
      for (const toolName of runtime.registry.names()) {
        const description = runtime.registry.get(toolName)!.definition.description.split('. ')[0];
        process.stdout.write(`${toolName.padEnd(16)} ${description}\n`);
      }
      return;
    }
    const cancel = () => {
      process.stderr.write('\ncancelling…\n');
      process.exitCode = 130;
      void runtime.close({ drainMs: 0 });
    };
    process.once('SIGINT', cancel);
    let outcome: Awaited<ReturnType<Runtime['executeTool']>>;
    try {
      outcome = await runtime.executeTool({
        tool: name!,
        arguments: toolArgs,
        agent: str(values.agent),
        tenantId: DEFAULT_TENANT,
        direct: 'any',
      });
    } catch (err) {
      process.stderr.write(`${red('error')}: ${(err as Error).message}\n`);
      process.exitCode = 1;
      return;
    }
    process.off('SIGINT', cancel);
    if (outcome.ok) {
      process.stdout.write(`${JSON.stringify(outcome.result, null, 2)}\n`);
    } else {
      process.stdout.write(`${JSON.stringify({ error: outcome.error }, null, 2)}\n`);
      process.stderr.write(`${red(outcome.error!.code)}: ${outcome.error!.message}\n`);
      process.exitCode = 1;
    }
  } finally {
    await runtime.close({ drainMs: 0 });
  }
}

function parseArguments(json: string | undefined, codeFile: string | undefined): Record<string, unknown> {
  let parsed: unknown = {};
  if (json !== undefined) {
    try {
      parsed = JSON.parse(json);
    } catch (err) {
      fail(`--args is not valid JSON: ${(err as Error).message}`);
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
      fail('--args must be a JSON object');
  }
  const args = parsed as Record<string, unknown>;
  if (codeFile !== undefined) {
    try {
      args.code = readFileSync(codeFile, 'utf8');
    } catch (err) {
      fail(`--code: ${(err as Error).message}`);
    }
  }
  return args;
}
