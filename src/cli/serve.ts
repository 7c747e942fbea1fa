import { Runtime } from '../runtime/index.js';
import { assertSafeBinding, buildServer, GrpcServer } from '../server/index.js';
import { fail, intFlag, parse, str } from './args.js';

export const SERVE_HELP = `Usage: agentd serve [options]

Starts the agentd server (HTTP API, SSE, WebSocket, OpenAI-compatible API) on the
configured address, and gRPC when a gRPC port is set.

Options:
  -c, --config <file>   configuration file (default: $AGENTD_CONFIG or ./agentd.yaml)
  -p, --port <port>     port to listen on (default: 8787, or server.port)
      --host <host>     address to bind (default: 127.0.0.1, or server.host)
      --grpc-port <port>
                        also serve gRPC (agentd.v1.AgentService, grpc.health.v1)
                        on this port (or server.grpc.port)
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
    'grpc-port': { type: 'string' },
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
  const grpcPort = intFlag(values['grpc-port'], 'grpc-port');
  if (grpcPort !== undefined) server.grpc = { port: grpcPort };
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
  const grpcConfig = runtime.config.server.grpc;
  let grpc: GrpcServer | undefined;
  if (grpcConfig.port !== undefined) {
    grpc = new GrpcServer(runtime);
    const grpcHost = grpcConfig.host ?? host;
    await assertSafeBinding(grpcHost, runtime.keys, allowOpen).catch(async (err: Error) => {
      await runtime.close({ drainMs: 0 });
      await app.close();
      fail(err.message);
    });
    const bound = await grpc.listen(grpcHost, grpcConfig.port).catch(async (err: Error) => {
      await runtime.close({ drainMs: 0 });
      await app.close();
      return fail(`cannot serve gRPC on ${grpcHost}:${grpcConfig.port}: ${err.message}`);
    });
    runtime.log.info({ address: `${grpcHost}:${bound}` }, 'agentd gRPC is listening');
  }

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
    await Promise.all([app.close(), grpc?.close()]);
    runtime.log.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', (signal) => void stop(signal));
  process.on('SIGINT', (signal) => void stop(signal));
}
