import { readFileSync } from 'node:fs';
import type { Config } from '../config/index.js';
import { MockLlmServer } from './mock/index.js';
import { OpenAICompatibleProvider } from './openai.js';
import type { Provider } from './types.js';

export interface StartedProviders {
  providers: Map<string, Provider>;
  /** The embedded mock model server, when a `mock` provider without `base_url` is configured. */
  mock: MockLlmServer | undefined;
  close(): Promise<void>;
}

/**
 * Builds one provider per `providers` entry. A `mock` provider without a `base_url` starts the
 * built-in mock model on a free loopback port and talks to it over HTTP, so the mock exercises
 * exactly the code path a real provider does.
 */
export async function startProviders(
  config: Config,
  env: NodeJS.ProcessEnv = process.env,
): Promise<StartedProviders> {
  const providers = new Map<string, Provider>();
  let mock: MockLlmServer | undefined;
  for (const [name, entry] of Object.entries(config.providers)) {
    let baseUrl = entry.base_url;
    if (entry.type === 'mock' && baseUrl === undefined) {
      mock ??= await MockLlmServer.start();
      baseUrl = mock.url;
    }
    if (baseUrl === undefined) throw new Error(`providers.${name}.base_url is required`);
    const apiKey = entry.api_key ?? (entry.api_key_env === undefined ? undefined : env[entry.api_key_env]);
    providers.set(
      name,
      new OpenAICompatibleProvider({
        name,
        baseUrl,
        ...(apiKey === undefined ? {} : { apiKey }),
        ...(entry.headers === undefined ? {} : { headers: entry.headers }),
        connections: entry.connections,
        http2: entry.http2,
        maxConcurrentStreams: entry.max_concurrent_streams,
        ...(entry.ca_file === undefined ? {} : { ca: readFileSync(entry.ca_file, 'utf8') }),
        connectTimeoutMs: entry.timeouts?.connect_ms ?? config.llm.timeouts.connect_ms,
        streamUsage: entry.stream_usage,
      }),
    );
  }
  return {
    providers,
    mock,
    async close() {
      await Promise.all([...providers.values()].map((provider) => provider.close()));
      await mock?.close();
    },
  };
}
