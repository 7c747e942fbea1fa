import { Runtime } from '../runtime/index.js';
import { assertSafeBinding, buildServer } from '../server/index.js';
import { fail, intFlag, parse, str } from './args.js';

export const SERVE_HELP = `Usage: agentd serve [options]

Starts the agentd server (HTTP API, SSE) on the configured address.

Options:
  -c, --config <file>   configuration file (default: $AGENTD_CONFIG or ./agentd.yaml)
  -p, --port <port>     port to listen on (default: 8787, or server.port)
      --host <host>     address to bind (default: 127.0.0.1, or server.host)
      --allow-unauthenticated
                        serve without API keys on a non-loopback address
  -h, --help            show this help

With no provider configured and no OPENAI_API_KEY, DEEPSEEK_API_KEY or
AGENTD_PROVIDER_BASE_URL set, agentd uses its built-in mock model and says so.
SIGTERM or SIGINT drains running tasks (server.drain_timeout_ms), then exits 0;
a second signal exits at once.`;

export async function serve(args: string[]): Promise<void> {
  const { values } = parse(args, {
    config: { type: 'string', short: 'c' },
    port: { type: 'string', short: 'p' },
    host: { type: 'string' },
    'allow-unauthenticated': { type: 'boolean' },
  });
  if (values.help) {
    process.stdout.write(`${SERVE_HELP}\n`);
    return;
  }
  const port = intFlag(values.port, 'port');
  const server: Record<string, unknown> = {};
  if (port !== undefined) server.port = port;
  if (str(values.host) !== undefined) server.host = str(values.host);
  const runtime = await Runtime.create({
    configFile: str(values.config),
    config: Object.keys(server).length > 0 ? { server } : {},
  }).catch((err: Error) => fail(err.message));
  const { host, port: listenPort } = runtime.config.server;
  const allowOpen = values['allow-unauthenticated'] === true || runtime.config.auth.allow_unauthenticated;
  try {
    await assertSafeBinding(host, runtime.keys, allowOpen);
  } catch (err) {
    await runtime.close({ drainMs: 0 });
    fail((err as Error).message);
  }
  if (!(await runtime.keys.enabled())) {
    runtime.log.warn(
      { host },
      'no API keys exist: serving open as the default tenant (create one: agentd keys create --tenant <id>)',
    );
  }
  const app = await buildServer(runtime);
  const address = await app.listen({ host, port: listenPort });
  runtime.log.info(
    { address, agents: runtime.agents().map((a) => a.name), provider: runtime.providerSource },
    'agentd is listening',
  );

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) {
      runtime.log.warn({ signal }, 'second signal: exiting without draining');
      process.exit(1);
    }
    stopping = true;
    const drainMs = runtime.config.server.drain_timeout_ms;
    runtime.log.info(
      { signal, drain_timeout_ms: drainMs },
      'draining: new tasks are refused, running tasks may finish',
    );
    await runtime.close({ drainMs });
    await app.close();
    runtime.log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', (signal) => void stop(signal));
  process.on('SIGINT', (signal) => void stop(signal));
}
