import { ApiKeys, hashKey } from '../admission/index.js';
import { type LimitSet, loadConfig } from '../config/index.js';
import { AgentdError } from '../errors.js';
import { openStore } from '../store/index.js';
import { bold, dim, fail, parse, str } from './args.js';

export const KEYS_HELP = `Usage: agentd keys <create|list|revoke|hash> [options]

Manages API keys. Keys are stored hashed (sha256) in the database named by the
configuration; a key is shown once, when it is created. As soon as one key exists,
every /v1/ request must send it: Authorization: Bearer <key>.

  agentd keys create --tenant <id> [--user <id>] [--name <text>]
                     [--agents a,b] [--limits '<json>']
      --limits takes the same fields as limits.tenants.<id> in the configuration,
      e.g. '{"requests_per_second":5,"tokens_per_minute":20000,"usd_per_day":10}'
  agentd keys list [--tenant <id>]
  agentd keys revoke <key-id>
  agentd keys hash <key>       print the sha256 form used by auth.keys in agentd.yaml

Options:
  -c, --config <file>   configuration file (default: $AGENTD_CONFIG or ./agentd.yaml)
  -h, --help            show this help`;

export async function keys(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, {
    config: { type: 'string', short: 'c' },
    tenant: { type: 'string' },
    user: { type: 'string' },
    name: { type: 'string' },
    agents: { type: 'string' },
    limits: { type: 'string' },
  });
  const [action, argument] = positionals;
  if (values.help || action === undefined) {
    process.stdout.write(`${KEYS_HELP}\n`);
    if (!values.help) process.exitCode = 2;
    return;
  }
  if (action === 'hash') {
    if (argument === undefined) fail('usage: agentd keys hash <key>');
    process.stdout.write(`${hashKey(argument)}\n`);
    return;
  }
  let config: ReturnType<typeof loadConfig>['config'];
  try {
    config = loadConfig({ file: str(values.config) }).config;
  } catch (err) {
    fail((err as Error).message);
  }
  const store = await openStore(config);
  const apiKeys = new ApiKeys(store, config);
  try {
    switch (action) {
      case 'create': {
        const tenant = str(values.tenant);
        if (tenant === undefined) fail('--tenant is required');
        const { key, record } = await apiKeys.create({
          tenant,
          user: str(values.user),
          name: str(values.name),
          agents: str(values.agents)
            ?.split(',')
            .map((a) => a.trim())
            .filter((a) => a !== ''),
          limits: parseLimits(str(values.limits)),
        });
        process.stdout.write(`${key}\n`);
        process.stderr.write(
          dim(
            `created ${record.id} for tenant ${record.tenant_id}: store the key now, it is not shown again\n`,
          ),
        );
        return;
      }
      case 'list': {
        const list = await apiKeys.list(str(values.tenant));
        if (list.length === 0) {
          process.stdout.write('no keys: the server runs open (loopback only)\n');
          return;
        }
        process.stdout.write(
          `${bold(['id', 'prefix', 'tenant', 'user', 'agents', 'created', 'status'].join('\t'))}\n`,
        );
        for (const key of list) {
          const row = [
            key.id,
            `${key.prefix}…`,
            key.tenant_id,
            key.user_id ?? '-',
            key.agents?.join(',') ?? '*',
            new Date(key.created_at).toISOString().slice(0, 19),
            key.revoked_at === null
              ? 'active'
              : `revoked ${new Date(key.revoked_at).toISOString().slice(0, 19)}`,
          ];
          process.stdout.write(`${row.join('\t')}\n`);
        }
        return;
      }
      case 'revoke': {
        if (argument === undefined) fail('usage: agentd keys revoke <key-id>');
        if (!(await apiKeys.revoke(argument))) fail(`no active key "${argument}"`);
        process.stdout.write(`revoked ${argument}\n`);
        return;
      }
      default:
        fail(`unknown action "${action}" (create, list, revoke, hash)`);
    }
  } catch (err) {
    if (err instanceof AgentdError) fail(err.message);
    throw err;
  } finally {
    await store.close();
  }
}

function parseLimits(text: string | undefined): LimitSet | undefined {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as LimitSet;
  } catch {
    return fail('--limits must be JSON, e.g. \'{"requests_per_second":5}\'');
  }
}
