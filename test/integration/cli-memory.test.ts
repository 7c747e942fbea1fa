import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir } from '../helpers/agentd.js';

const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const dir = tempDir('agentd-cli-memory-');
const env = {
  PATH: process.env.PATH,
  HOME: dir.path,
  AGENTD_DB: join(dir.path, 'cli.db'),
} as NodeJS.ProcessEnv;

function agentd(args: string[], extra: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [CLI, 'memory', ...args], {
    env: { ...env, ...extra },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

describe('agentd memory', () => {
  after(() => dir.remove());

  it('adds, searches, exports, imports into another tenant and re-indexes', () => {
    const added = agentd(['add', 'Ada prefers green tea', '--user', 'ada', '--tag', 'pref']);
    assert.equal(added.status, 0, added.stderr);
    const memory = JSON.parse(added.stdout);
    assert.equal(memory.user_id, 'ada');
    assert.equal(agentd(['add', 'Bob drinks espresso', '--user', 'bob']).status, 0);

    const search = agentd(['search', 'green tea', '--user', 'ada', '--json']);
    assert.equal(search.status, 0, search.stderr);
    assert.deepEqual(
      JSON.parse(search.stdout).hits.map((h: { memory: { id: string } }) => h.memory.id),
      [memory.id],
    );

    const file = join(dir.path, 'out.jsonl');
    assert.equal(agentd(['export', '-o', file]).status, 0);
    assert.equal(readFileSync(file, 'utf8').trim().split('\n').length, 2);
    const imported = agentd(['import', file, '--tenant', 'copy']);
    assert.match(imported.stderr, /imported 2 memories/);
    assert.match(agentd(['import', file, '--tenant', 'copy']).stderr, /skipped 2 already present/);

    // Another embedder: vector search refuses until reindex, then works.
    const other = { AGENTD_MEMORY__EMBEDDER__DIMENSIONS: '64' };
    const refused = agentd(['search', 'tea', '--mode', 'semantic'], other);
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /agentd memory reindex/);
    assert.equal(agentd(['reindex'], other).status, 0);
    const semantic = agentd(['search', 'tea', '--mode', 'semantic', '--json'], other);
    assert.equal(semantic.status, 0, semantic.stderr);
    assert.equal(JSON.parse(semantic.stdout).hits[0].memory.text, 'Ada prefers green tea');

    assert.equal(agentd(['frobnicate']).status, 2);
  });
});
