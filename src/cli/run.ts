import { pino } from 'pino';
import { AgentdApiError, AgentdClient, type CreateTaskRequest, type TaskJson } from '../client/index.js';
import { createLogger } from '../observability/index.js';
import { Runtime } from '../runtime/index.js';
import { bold, dim, fail, green, intFlag, parse, red, str } from './args.js';

export const RUN_HELP = `Usage: agentd run <agent> "<input>" [options]

Runs an agent in this process and streams its answer: tokens to stdout, tool
calls and a summary (model, tokens, cost, latency) to stderr. Ctrl-C cancels.

Options:
  -c, --config <file>    configuration file (default: $AGENTD_CONFIG or ./agentd.yaml)
  -s, --session <id>     continue a session (its history is the context)
  -m, --model <id>       model id, tier or provider/model
      --tier <tier>      small | medium | large
      --mode <mode>      simple | standard | complex | research
      --timeout <ms>     task time limit
      --json             print the finished task as JSON instead of streaming
      --url <url>        run on an agentd server instead of in this process
                         (API key from --api-key or $AGENTD_API_KEY)
      --api-key <key>    the server's API key
  -h, --help             show this help

Example:
  agentd run assistant "What is 17*23?"`;

export async function run(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, {
    config: { type: 'string', short: 'c' },
    session: { type: 'string', short: 's' },
    model: { type: 'string', short: 'm' },
    tier: { type: 'string' },
    mode: { type: 'string' },
    timeout: { type: 'string' },
    json: { type: 'boolean' },
    url: { type: 'string' },
    'api-key': { type: 'string' },
  });
  if (values.help) {
    process.stdout.write(`${RUN_HELP}\n`);
    return;
  }
  const [agent, ...words] = positionals;
  if (agent === undefined || words.length === 0)
    fail('usage: agentd run <agent> "<input>" (see agentd run --help)');
  const input = words.join(' ');
  const url = str(values.url);
  if (url !== undefined) {
    const request: CreateTaskRequest = {
      agent: agent!,
      input,
      session_id: str(values.session),
      model: str(values.model),
      tier: str(values.tier) as CreateTaskRequest['tier'],
      mode: str(values.mode) as CreateTaskRequest['mode'],
      timeout_ms: intFlag(values.timeout, 'timeout'),
    };
    await runRemote(url, str(values['api-key']) ?? process.env.AGENTD_API_KEY, request, values.json === true);
    return;
  }
  const runtime = await Runtime.create({
    configFile: str(values.config),
    logger: createLogger({
      level: process.env.AGENTD_LOG_LEVEL ?? 'error',
      destination: pino.destination(2),
    }),
    recover: false,
  }).catch((err: Error) => fail(err.message));
  if (runtime.mockUrl !== undefined && !values.json) {
    process.stderr.write(dim('(no provider key set: using the built-in mock model)\n'));
  }
  const started = performance.now();
  let task: Awaited<ReturnType<Runtime['submit']>>['task'];
  try {
    ({ task } = await runtime.submit({
      agent: agent!,
      input,
      sessionId: str(values.session),
      model: str(values.model),
      tier: str(values.tier),
      mode: str(values.mode),
      timeoutMs: intFlag(values.timeout, 'timeout'),
    }));
  } catch (err) {
    await runtime.close({ drainMs: 0 });
    fail((err as Error).message);
  }
  process.once('SIGINT', () => {
    process.stderr.write(dim('\ncancelling…\n'));
    void runtime.cancel(task.id, task.record.tenant_id);
  });
  if (!values.json) task.events.subscribe(0, render).backlog.forEach(render);
  await task.wait();
  const record = task.record;
  if (values.json) {
    process.stdout.write(`${JSON.stringify(record, null, 2)}\n`);
  } else {
    summarize(record.status, record.model, record.usage, record.cost_usd, performance.now() - started);
    if (record.error !== null) process.stderr.write(`${red(record.error.code)}: ${record.error.message}\n`);
  }
  await runtime.close({ drainMs: 0 });
  process.exitCode = record.status === 'succeeded' ? 0 : record.status === 'cancelled' ? 130 : 1;
}

/** `agentd run --url`: the same run on a server, through `agentd/client` (events resume after a break). */
async function runRemote(
  url: string,
  apiKey: string | undefined,
  request: CreateTaskRequest,
  json: boolean,
): Promise<void> {
  const client = new AgentdClient({ baseUrl: url, apiKey });
  const started = performance.now();
  let record: TaskJson;
  try {
    const task = await client.createTask(request);
    process.once('SIGINT', () => {
      process.stderr.write(dim('\ncancelling…\n'));
      void client.cancelTask(task.id).catch(() => {});
    });
    if (!json) for await (const event of client.events(task.id)) render(event);
    record = await client.getTask(task.id);
  } catch (err) {
    const error = err as Error & { code?: string };
    fail(error instanceof AgentdApiError ? `${error.code}: ${error.message}` : error.message);
  }
  if (json) process.stdout.write(`${JSON.stringify(record, null, 2)}\n`);
  else {
    summarize(record.status, record.model, record.usage, record.cost_usd, performance.now() - started);
    if (record.error !== null) process.stderr.write(`${red(record.error.code)}: ${record.error.message}\n`);
  }
  process.exitCode = record.status === 'succeeded' ? 0 : record.status === 'cancelled' ? 130 : 1;
}

function summarize(
  taskStatus: string,
  model: string | null,
  usage: { input_tokens: number; output_tokens: number },
  costUsd: number,
  elapsedMs: number,
): void {
  const status = taskStatus === 'succeeded' ? green(taskStatus) : red(taskStatus);
  const parts = [
    status,
    `model ${model ?? '-'}`,
    `${usage.input_tokens} in / ${usage.output_tokens} out tokens`,
    `$${costUsd.toFixed(6)}`,
    `${Math.round(elapsedMs)} ms`,
  ];
  process.stderr.write(`\n${dim('—')} ${parts.join(dim(' · '))}\n`);
}

let midLine = false;

function render(event: { type: string; data: Record<string, unknown> }): void {
  const data = event.data;
  switch (event.type) {
    case 'llm.delta':
      process.stdout.write(data.text as string);
      midLine = !(data.text as string).endsWith('\n');
      return;
    case 'llm.discarded':
      process.stderr.write(
        dim(`\n[${String(data.model)} failed (${String(data.code)}); discarding its partial answer]\n`),
      );
      return;
    case 'tool.started':
      if (midLine) process.stdout.write('\n');
      midLine = false;
      process.stderr.write(`${bold('⚙')} ${String(data.name)}(${String(data.arguments)})\n`);
      return;
    case 'tool.completed': {
      const outcome = data.ok ? JSON.stringify(data.result) : red(JSON.stringify(data.error));
      process.stderr.write(`${dim('→')} ${outcome} ${dim(`(${String(data.duration_ms)} ms)`)}\n`);
      return;
    }
  }
}
