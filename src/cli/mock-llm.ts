import { readFileSync } from 'node:fs';
import { MockLlmServer } from '../llm/index.js';
import { fail, intFlag, parse, str } from './args.js';

export const MOCK_HELP = `Usage: agentd mock-llm [options]

Starts the offline OpenAI-compatible mock model server (POST /v1/chat/completions,
GET /v1/models). Replies are deterministic; behaviour is chosen per request by
the model name, e.g.:
  mock                                   a short generated answer
  mock?tokens=200&interval_ms=100        200 tokens, one every 100 ms
  mock?ttft_ms=500                       first token after 500 ms
  mock?fault=429&retry_after=2&times=1   first request rate-limited, then normal
  mock?call=calculator&args={"expression":"2+2"}   a scripted tool call
Faults: 429 500 502 503 reset hang stall cut cut_reset malformed no_done
        no_done_hang context_length content_policy error_event

Options:
  -p, --port <port>        port (default 8788)
      --host <host>        address (default 127.0.0.1)
      --latency-ms <ms>    delay before response headers (default 0)
      --ttft-ms <ms>       delay before the first token (default 0)
      --interval-ms <ms>   delay between tokens (default 0)
      --tokens <n>         tokens in a generated answer (default 12)
      --tls-key <file>     serve HTTPS with HTTP/2 (and HTTP/1.1) instead of cleartext
                           HTTP/1.1 and h2c: PEM private key…
      --tls-cert <file>    …and certificate
  -h, --help               show this help`;

export async function mockLlm(args: string[]): Promise<void> {
  const { values } = parse(args, {
    port: { type: 'string', short: 'p' },
    host: { type: 'string' },
    'latency-ms': { type: 'string' },
    'ttft-ms': { type: 'string' },
    'interval-ms': { type: 'string' },
    tokens: { type: 'string' },
    'tls-key': { type: 'string' },
    'tls-cert': { type: 'string' },
  });
  if (values.help) {
    process.stdout.write(`${MOCK_HELP}\n`);
    return;
  }
  const defaults: Record<string, number> = {};
  const latency = intFlag(values['latency-ms'], 'latency-ms');
  const ttft = intFlag(values['ttft-ms'], 'ttft-ms');
  const interval = intFlag(values['interval-ms'], 'interval-ms');
  const tokens = intFlag(values.tokens, 'tokens');
  if (latency !== undefined) defaults.latencyMs = latency;
  if (ttft !== undefined) defaults.ttftMs = ttft;
  if (interval !== undefined) defaults.intervalMs = interval;
  if (tokens !== undefined) defaults.tokens = tokens;
  const key = str(values['tls-key']);
  const cert = str(values['tls-cert']);
  if ((key === undefined) !== (cert === undefined)) fail('--tls-key and --tls-cert go together');
  const mock = await MockLlmServer.start({
    ...(key !== undefined && cert !== undefined
      ? { tls: { key: readFileSync(key), cert: readFileSync(cert) } }
      : {}),
    port: intFlag(values.port, 'port') ?? 8788,
    host: str(values.host) ?? '127.0.0.1',
    defaults,
  });
  process.stdout.write(`mock LLM listening on ${mock.url}\n`);
  const stop = (): void => {
    void mock.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
