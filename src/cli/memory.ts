import { createReadStream, createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { DEFAULT_TENANT } from '../admission/index.js';
import { loadConfig } from '../config/index.js';
import {
  createEmbedder,
  createLongTermMemory,
  type ImportedMemory,
  type LongTermMemory,
  type MemoryFilter,
  type MemoryRecord,
  SEARCH_MODES,
  type SearchMode,
} from '../memory/index.js';
import { dim, fail, intFlag, parse, str } from './args.js';

export const MEMORY_HELP = `Usage: agentd memory <action> [options]

Actions:
  add "<text>"            store a memory; prints it as JSON
  search "<query>"        search memories; prints the hits
  export                  write every memory of the tenant as JSON lines
  import <file.jsonl>     add memories from JSON lines (ids and times kept; existing ids skipped)
  reindex                 re-embed every memory with the configured embedder (needed after
                          changing memory.embedder)

Options:
      --tenant <id>       tenant (default "${DEFAULT_TENANT}")
      --user <id>         user of the memory (add), or only this user's (search, export)
      --agent <id>        agent of the memory (add), or only this agent's (search, export)
      --tag <tag>         a tag (add); only memories with it (search)
      --metadata <json>   metadata object (add)
      --filter <json>     a full search filter (search; see docs/memory.md)
      --mode <mode>       ${SEARCH_MODES.join(', ')} (search; default hybrid)
  -k, --top-k <n>         results (search; default 10)
  -o, --out <file>        output file (export; default stdout)
      --json              print JSON (search)
  -c, --config <file>     configuration file (default: $AGENTD_CONFIG or ./agentd.yaml)
  -h, --help              show this help

Examples:
  agentd memory add "Ada prefers tea" --user ada --tag preference
  agentd memory search "what does Ada drink" --user ada
  agentd memory export -o memories.jsonl && agentd memory import memories.jsonl --tenant copy`;

function json(value: string | undefined, flag: string): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  try {
    const parsed: unknown = JSON.parse(value);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed))
      return parsed as Record<string, unknown>;
  } catch {
    // Reported below.
  }
  return fail(`--${flag} must be a JSON object`);
}

/** `agentd memory add|search|export|import|reindex`. */
export async function memory(args: string[]): Promise<void> {
  const { values, positionals } = parse(args, {
    tenant: { type: 'string' },
    user: { type: 'string' },
    agent: { type: 'string' },
    tag: { type: 'string' },
    metadata: { type: 'string' },
    filter: { type: 'string' },
    mode: { type: 'string' },
    'top-k': { type: 'string', short: 'k' },
    out: { type: 'string', short: 'o' },
    json: { type: 'boolean' },
    config: { type: 'string', short: 'c' },
  });
  const [action, argument] = positionals;
  if (values.help || action === undefined) {
    process.stdout.write(`${MEMORY_HELP}\n`);
    return;
  }
  if (!['add', 'search', 'export', 'import', 'reindex'].includes(action))
    fail(`unknown action "${action}" (see agentd memory --help)`);
  if ((action === 'add' || action === 'search' || action === 'import') && argument === undefined)
    fail(`usage: agentd memory ${action} ${action === 'import' ? '<file.jsonl>' : '"<text>"'}`);
  const mode = str(values.mode);
  if (mode !== undefined && !(SEARCH_MODES as readonly string[]).includes(mode))
    fail(`--mode must be one of ${SEARCH_MODES.join(', ')}`);

  const { config } = loadConfig({ file: str(values.config) });
  const store = await createLongTermMemory({
    config: config.memory,
    storage: config.storage,
    env: process.env,
  });
  const tenant = str(values.tenant) ?? DEFAULT_TENANT;
  const scope: MemoryFilter = { user_id: str(values.user), agent_id: str(values.agent) };
  try {
    switch (action) {
      case 'add': {
        const [added] = await store.add({ tenant_id: tenant }, [
          {
            text: argument!,
            user_id: scope.user_id,
            agent_id: scope.agent_id,
            tags: str(values.tag) === undefined ? undefined : [str(values.tag)!],
            metadata: json(str(values.metadata), 'metadata'),
          },
        ]);
        process.stdout.write(`${JSON.stringify(added)}\n`);
        break;
      }
      case 'search': {
        const filter: MemoryFilter = {
          ...(json(str(values.filter), 'filter') as MemoryFilter | undefined),
          ...scope,
        };
        if (str(values.tag) !== undefined) filter.tags = [str(values.tag)!];
        const result = await store.search({
          tenant_id: tenant,
          text: argument,
          mode: mode as SearchMode | undefined,
          filter,
          top_k: intFlag(values['top-k'], 'top-k') ?? 10,
        });
        if (values.json === true) {
          process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
          break;
        }
        for (const hit of result.hits)
          process.stdout.write(`${hit.score.toFixed(4)}  ${hit.memory.text}  ${dim(hit.memory.id)}\n`);
        process.stderr.write(
          dim(
            `${result.hits.length} of ${result.candidates} candidates, mode ${result.mode}, vectors ${result.strategy}\n`,
          ),
        );
        break;
      }
      case 'export':
        await exportMemories(store, tenant, scope, str(values.out));
        break;
      case 'import':
        await importMemories(store, tenant, argument!);
        break;
      case 'reindex': {
        const embedder = createEmbedder(config.memory.embedder, process.env);
        const done = await store.reindex(embedder, (n) => process.stderr.write(dim(`\rre-embedded ${n}`)));
        process.stderr.write(
          `\nre-indexed ${done} memories with ${embedder.name} (${embedder.dimensions} dimensions)\n`,
        );
        break;
      }
    }
  } finally {
    await store.close();
  }
}

async function exportMemories(
  store: LongTermMemory,
  tenant: string,
  filter: MemoryFilter,
  out: string | undefined,
): Promise<void> {
  const stream: NodeJS.WritableStream = out === undefined ? process.stdout : createWriteStream(out);
  let cursor: string | undefined;
  let count = 0;
  do {
    const page = await store.list({ tenant_id: tenant, filter, limit: 1000, cursor });
    for (const record of page.items) {
      if (!stream.write(`${JSON.stringify(record)}\n`))
        await new Promise<void>((resolve) => stream.once('drain', () => resolve()));
      count++;
    }
    cursor = page.next_cursor ?? undefined;
  } while (cursor !== undefined);
  if (stream !== process.stdout) await new Promise<void>((resolve) => stream.end(() => resolve()));
  process.stderr.write(dim(`exported ${count} memories\n`));
}

async function importMemories(store: LongTermMemory, tenant: string, file: string): Promise<void> {
  const lines = createInterface({ input: createReadStream(file), crlfDelay: Number.POSITIVE_INFINITY });
  let batch: ImportedMemory[] = [];
  let added = 0;
  let skipped = 0;
  let line = 0;
  const flush = async () => {
    const fresh: ImportedMemory[] = [];
    for (const item of batch) {
      if (item.id !== undefined && (await store.get(tenant, item.id)) !== undefined) skipped++;
      else fresh.push(item);
    }
    added += (await store.add({ tenant_id: tenant }, fresh)).length;
    batch = [];
  };
  for await (const text of lines) {
    line++;
    if (text.trim() === '') continue;
    let record: Partial<MemoryRecord>;
    try {
      record = JSON.parse(text) as Partial<MemoryRecord>;
    } catch {
      fail(`${file}:${line}: not JSON`);
    }
    batch.push({
      id: record.id,
      text: record.text as string,
      user_id: record.user_id,
      agent_id: record.agent_id,
      session_id: record.session_id,
      metadata: record.metadata,
      tags: record.tags,
      importance: record.importance,
      expires_at: record.expires_at,
      created_at: record.created_at,
      updated_at: record.updated_at,
    });
    if (batch.length >= store.maxBatch) await flush();
  }
  if (batch.length > 0) await flush();
  process.stderr.write(
    `imported ${added} memories${skipped > 0 ? `, skipped ${skipped} already present` : ''}\n`,
  );
}
