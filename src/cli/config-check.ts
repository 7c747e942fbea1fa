import { loadConfig } from '../config/index.js';
import { AgentdError } from '../errors.js';
import { bold, green, parse, red, str } from './args.js';

export const CONFIG_HELP = `Usage: agentd config check [--config <file>]

Validates the configuration (file, then AGENTD_* environment overrides) and
prints what agentd would run with, or every problem with its field path and
the expected type. Exits 1 when the configuration is invalid.`;

export async function configCheck(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, { config: { type: 'string', short: 'c' } });
  if (values.help || positionals[0] !== 'check') {
    process.stdout.write(`${CONFIG_HELP}\n`);
    if (!values.help) process.exitCode = 2;
    return;
  }
  try {
    const { config, file, providerSource } = loadConfig({ file: str(values.config) });
    const out: string[] = [];
    out.push(
      `${green('✓')} configuration is valid${file === undefined ? ' (no file: defaults and environment)' : ` (${file})`}`,
    );
    out.push(
      `${bold('provider')}  ${providerSource}${providerSource === 'mock' ? ' (built-in mock model)' : ''}`,
    );
    for (const [name, provider] of Object.entries(config.providers)) {
      const key = provider.api_key !== undefined || provider.api_key_env !== undefined ? ', key set' : '';
      out.push(
        `  ${name}: ${provider.type}${provider.base_url === undefined ? '' : ` ${provider.base_url}`}${key}`,
      );
    }
    out.push(bold('tiers'));
    for (const [tier, chain] of Object.entries(config.tiers))
      out.push(`  ${tier}: ${(chain ?? []).join(' → ')}`);
    out.push(bold('agents'));
    for (const [name, agent] of Object.entries(config.agents)) {
      out.push(
        `  ${name}: model ${agent.model ?? agent.tier ?? 'medium'}, tools [${agent.tools.join(', ')}], max_iterations ${agent.max_iterations}`,
      );
    }
    out.push(
      `${bold('server')}    ${config.server.host}:${config.server.port}, storage ${config.storage.path}`,
    );
    process.stdout.write(`${out.join('\n')}\n`);
  } catch (err) {
    if (!(err instanceof AgentdError)) throw err;
    process.stderr.write(`${red('✗')} ${err.message}\n`);
    process.exitCode = 1;
  }
}
