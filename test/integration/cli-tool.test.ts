import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { tempDir } from '../helpers/agentd.js';

const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const dir = tempDir('agentd-cli-tool-');
const env = {
  PATH: process.env.PATH,
  HOME: dir.path,
  AGENTD_DB: join(dir.path, 'cli.db'),
  AGENTD_SANDBOX__PYTHON__ISOLATION: 'process',
} as NodeJS.ProcessEnv;

function agentd(args: string[]) {
  return spawnSync(process.execPath, [CLI, ...args], { env, encoding: 'utf8', timeout: 60_000 });
}

describe('agentd tool', () => {
  after(() => dir.remove());

  it('run: runs run_javascript with --args and prints the result as JSON', () => {
    const result = agentd([
      'tool',
      'run',
      'run_javascript',
      '--args',
      '{"code":"console.log(1); [1,2,3].map(x => x * 2)"}',
    ]);
    assert.equal(result.status, 0, result.stderr);
    const answer = JSON.parse(result.stdout);
    assert.deepEqual(answer.result, [2, 4, 6]);
    assert.equal(answer.stdout, '1\n');
  });

  it('run: takes a Python program from a file with --code', () => {
    const file = join(dir.path, 'script.py');
    writeFileSync(file, 'import json\nprint(json.dumps({"ok": True}))\nsum(range(5))\n');
    const result = agentd(['tool', 'run', 'run_python', '--code', file]);
    assert.equal(result.status, 0, result.stderr);
    const answer = JSON.parse(result.stdout);
    assert.equal(answer.result, 10);
    assert.equal(answer.stdout, '{"ok": true}\n');
  });

  it('run: exits 1 with the error for a refused call, 2 for bad usage', () => {
    const forbidden = agentd(['tool', 'run', 'run_python', '--agent', 'assistant', '--args', '{"code":"1"}']);
    assert.equal(forbidden.status, 1);
    assert.match(forbidden.stderr, /not allowed for agent "assistant"/);
    assert.equal(agentd(['tool', 'run', 'calculator', '--args', 'not json']).status, 2);
    assert.equal(agentd(['tool', 'frobnicate']).status, 2);
  });

  it('--help describes the command', () => {
    const help = agentd(['tool', '--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /Usage: agentd tool run <name>/);
  });
});
