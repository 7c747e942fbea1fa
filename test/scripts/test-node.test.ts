import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';

const script = join(new URL('../..', import.meta.url).pathname, 'scripts', 'test-node.mjs');

describe('npm run test:node', () => {
  for (const args of [[], ['latest'], ['22.1'], ['--', '24']]) {
    it(`refuses ${JSON.stringify(args)} with its usage, before fetching anything`, () => {
      const result = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', timeout: 10_000 });
      assert.equal(result.status, 2);
      assert.match(result.stderr, /usage: node scripts\/test-node\.mjs <major or x\.y\.z>/);
    });
  }
});
