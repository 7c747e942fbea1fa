import { Value } from 'typebox/value';
import { AgentSchema, type Config, ModelSchema, ProviderSchema, type Tier } from './schema.js';

type ModelEntry = Config['models'][string];

interface Preset {
  provider: string;
  baseUrl: string;
  /** Tier → model; prices are list prices in USD per million tokens at the time of writing. */
  tiers: Record<Tier, string>;
  models: Record<string, { input: number; output: number; context: number }>;
}

const OPENAI: Preset = {
  provider: 'openai',
  baseUrl: 'https://api.openai.com/v1',
  tiers: { small: 'gpt-4o-mini', medium: 'gpt-4.1-mini', large: 'gpt-4.1' },
  models: {
    'gpt-4o-mini': { input: 0.15, output: 0.6, context: 128_000 },
    'gpt-4.1-mini': { input: 0.4, output: 1.6, context: 1_047_576 },
    'gpt-4.1': { input: 2, output: 8, context: 1_047_576 },
  },
};

const DEEPSEEK: Preset = {
  provider: 'deepseek',
  baseUrl: 'https://api.deepseek.com/v1',
  tiers: { small: 'deepseek-chat', medium: 'deepseek-chat', large: 'deepseek-reasoner' },
  models: {
    'deepseek-chat': { input: 0.27, output: 1.1, context: 64_000 },
    'deepseek-reasoner': { input: 0.55, output: 2.19, context: 64_000 },
  },
};

/** The built-in mock model: three "sizes" so tiers, fallback and step-down can be exercised. */
const MOCK: Preset = {
  provider: 'mock',
  baseUrl: 'http://127.0.0.1/v1',
  tiers: { small: 'mock-small', medium: 'mock-medium', large: 'mock-large' },
  models: {
    'mock-small': { input: 0.1, output: 0.4, context: 16_000 },
    'mock-medium': { input: 1, output: 4, context: 64_000 },
    'mock-large': { input: 5, output: 20, context: 200_000 },
  },
};

/**
 * When the configuration declares no provider, one is chosen from the environment:
 * `AGENTD_PROVIDER_BASE_URL` (any OpenAI-compatible endpoint), then `OPENAI_API_KEY`, then
 * `DEEPSEEK_API_KEY`, and otherwise the built-in mock model. Tiers and the default `assistant`
 * agent are filled in where the configuration left them empty. Returns a description of the source.
 */
export function applyProviderDefaults(
  config: Config,
  env: NodeJS.ProcessEnv,
  file: string | undefined,
): string {
  let source: string;
  if (Object.keys(config.providers).length > 0) {
    source = file === undefined ? 'configuration' : file;
  } else if (env.AGENTD_PROVIDER_BASE_URL) {
    source = 'AGENTD_PROVIDER_BASE_URL';
    const fallbackModel = env.AGENTD_MODEL ?? 'default';
    const apiKey = env.AGENTD_PROVIDER_API_KEY ?? env.OPENAI_API_KEY;
    config.providers.custom = provider({
      base_url: env.AGENTD_PROVIDER_BASE_URL,
      ...(apiKey ? { api_key: apiKey } : {}),
    });
    for (const tier of ['small', 'medium', 'large'] as const) {
      const model = env[`AGENTD_MODEL_${tier.toUpperCase()}`] ?? fallbackModel;
      if (!(model in config.models)) config.models[model] = modelEntry({ provider: 'custom' });
      config.tiers[tier] ??= [model];
    }
  } else if (env.OPENAI_API_KEY) {
    source = 'OPENAI_API_KEY';
    usePreset(config, OPENAI, {
      api_key_env: 'OPENAI_API_KEY',
      base_url: env.OPENAI_BASE_URL ?? OPENAI.baseUrl,
    });
  } else if (env.DEEPSEEK_API_KEY) {
    source = 'DEEPSEEK_API_KEY';
    usePreset(config, DEEPSEEK, { api_key_env: 'DEEPSEEK_API_KEY', base_url: DEEPSEEK.baseUrl });
  } else {
    source = 'mock';
    usePreset(config, MOCK, { type: 'mock' });
  }
  if (config.agents.assistant === undefined) {
    config.agents.assistant = Value.Default(AgentSchema, {
      description: 'A general assistant that can calculate and tell the time.',
      system_prompt: 'You are a helpful assistant. Use the calculator for arithmetic and answer briefly.',
      tools: ['calculator', 'current_time'],
      tier: 'medium',
    }) as Config['agents'][string];
  }
  return source;
}

function usePreset(config: Config, preset: Preset, providerFields: Record<string, unknown>): void {
  config.providers[preset.provider] = provider(providerFields);
  for (const [id, price] of Object.entries(preset.models)) {
    config.models[id] ??= modelEntry({
      provider: preset.provider,
      input_usd_per_mtok: price.input,
      output_usd_per_mtok: price.output,
      context_window: price.context,
    });
  }
  // Each tier falls back to the next larger model, and the largest to the medium one.
  config.tiers.small ??= unique([preset.tiers.small, preset.tiers.medium]);
  config.tiers.medium ??= unique([preset.tiers.medium, preset.tiers.large]);
  config.tiers.large ??= unique([preset.tiers.large, preset.tiers.medium]);
}

function unique(ids: string[]): string[] {
  return [...new Set(ids)];
}

function provider(fields: Record<string, unknown>): Config['providers'][string] {
  return Value.Default(ProviderSchema, fields) as Config['providers'][string];
}

function modelEntry(fields: Record<string, unknown>): ModelEntry {
  return Value.Default(ModelSchema, fields) as ModelEntry;
}
