import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { tempDir } from '../helpers/agentd.js';

function issuesOf(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn();
  } catch (err) {
    return (err as { details?: { issues?: { path: string; message: string }[] } }).details?.issues ?? [];
  }
  assert.fail('expected a configuration error');
}

describe('configuration', () => {
  it('defaults to the mock provider, three tiers and the assistant agent', () => {
    const { config, providerSource } = loadConfig({ env: {}, cwd: '/nonexistent' });
    assert.equal(providerSource, 'mock');
    assert.equal(config.server.port, 8787);
    assert.equal(config.server.host, '127.0.0.1');
    assert.deepEqual(config.tiers.small, ['mock-small', 'mock-medium']);
    assert.deepEqual(config.agents.assistant?.tools, ['calculator', 'current_time']);
    assert.equal(config.agents.assistant?.max_iterations, 8);
  });

  it('picks the provider from the environment: base URL, then OpenAI, then DeepSeek', () => {
    const custom = loadConfig({
      env: { AGENTD_PROVIDER_BASE_URL: 'http://127.0.0.1:11434/v1', AGENTD_MODEL: 'llama3' },
    });
    assert.equal(custom.providerSource, 'AGENTD_PROVIDER_BASE_URL');
    assert.equal(custom.config.providers.custom?.base_url, 'http://127.0.0.1:11434/v1');
    assert.deepEqual(custom.config.tiers.medium, ['llama3']);
    const openai = loadConfig({ env: { OPENAI_API_KEY: 'sk-test' } });
    assert.equal(openai.providerSource, 'OPENAI_API_KEY');
    assert.equal(openai.config.providers.openai?.api_key_env, 'OPENAI_API_KEY');
    assert.ok(openai.config.models['gpt-4o-mini']!.input_usd_per_mtok > 0);
    const deepseek = loadConfig({ env: { DEEPSEEK_API_KEY: 'sk-test' } });
    assert.equal(deepseek.providerSource, 'DEEPSEEK_API_KEY');
    assert.deepEqual(deepseek.config.tiers.large, ['deepseek-reasoner', 'deepseek-chat']);
  });

  it('applies AGENTD_* overrides, parsed as JSON where they parse', () => {
    const { config } = loadConfig({
      env: {
        AGENTD_PORT: '9999',
        AGENTD_LLM__RETRY__MAX_ATTEMPTS: '5',
        AGENTD_TOOLS__HTTP_FETCH__ALLOWED_HOSTS: '["a.com"]',
      },
    });
    assert.equal(config.server.port, 9999);
    assert.equal(config.llm.retry.max_attempts, 5);
    assert.deepEqual(config.tools.http_fetch.allowed_hosts, ['a.com']);
  });

  it('reads YAML files and reports every problem with its field path and expected type', () => {
    const dir = tempDir();
    const file = join(dir.path, 'agentd.yaml');
    writeFileSync(
      file,
      'server:\n  port: "eighty"\nagents:\n  helper:\n    max_iterations: many\n    toolz: []\nbogus: 1\n',
    );
    const issues = issuesOf(() => loadConfig({ file, env: {} }));
    dir.remove();
    const byPath = new Map(issues.map((i) => [i.path, i.message]));
    assert.equal(byPath.get('server.port'), 'expected integer, got string "eighty"');
    assert.equal(byPath.get('agents.helper.max_iterations'), 'expected integer, got string "many"');
    assert.equal(byPath.get('agents.helper.toolz'), 'unknown field');
    assert.equal(byPath.get('bogus'), 'unknown field');
  });

  it('checks that references point at declared providers, models and tiers', () => {
    const issues = issuesOf(() =>
      loadConfig({
        env: {},
        config: {
          providers: { p: { base_url: 'http://127.0.0.1:1/v1' } },
          models: { m: { provider: 'nope', fallbacks: ['ghost'] } },
          tiers: { medium: ['missing'] },
          agents: { a: { model: 'unknown' } },
        },
      }),
    );
    const paths = issues.map((i) => i.path).sort();
    assert.deepEqual(paths, [
      'agents.a.model',
      'models.m.fallbacks.0',
      'models.m.provider',
      'tiers.medium.0',
    ]);
  });

  it('says which file is missing or unreadable', () => {
    assert.throws(() => loadConfig({ file: '/nonexistent/agentd.yaml', env: {} }), /config file not found/);
    const dir = tempDir();
    const file = join(dir.path, 'agentd.json');
    writeFileSync(file, '{ not json');
    assert.throws(() => loadConfig({ file, env: {} }), /is not valid JSON/);
    dir.remove();
  });
});
