import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { call, tempDir } from '../helpers/agentd.js';

const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const dir = tempDir('agentd-cli-');
/** A clean environment: no provider keys, a private database. */
const env = {
  PATH: process.env.PATH,
  HOME: dir.path,
  AGENTD_DB: join(dir.path, 'cli.db'),
} as NodeJS.ProcessEnv;

function agentd(args: string[], extraEnv: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [CLI, ...args], {
    env: { ...env, ...extraEnv },
    encoding: 'utf8',
    timeout: 30_000,
  });
}

describe('agentd CLI', () => {
  after(() => dir.remove());

  it('run: streams the answer to stdout and tool calls and a summary to stderr', () => {
    const result = agentd(['run', 'assistant', 'What is 17*23?']);
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.trim(), 'The result is 391.');
    assert.match(result.stderr, /built-in mock model/);
    assert.match(result.stderr, /calculator\(\{"expression":"17\*23"\}\)/);
    assert.match(
      result.stderr,
      /succeeded · model mock-medium · \d+ in \/ \d+ out tokens · \$0\.\d+ · \d+ ms/,
    );
  });

  it('run --json: prints the finished task', () => {
    const result = agentd(['run', 'assistant', 'hello', '--json', '--tier', 'small']);
    assert.equal(result.status, 0, result.stderr);
    const task = JSON.parse(result.stdout);
    assert.equal(task.status, 'succeeded');
    assert.equal(task.model, 'mock-small');
  });

  it('run: exits non-zero with the error for an unknown agent or flag', () => {
    const unknown = agentd(['run', 'nobody', 'hi']);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /no agent named "nobody"/);
    const flag = agentd(['run', 'assistant', 'hi', '--bogus']);
    assert.equal(flag.status, 2);
    assert.match(flag.stderr, /Unknown option '--bogus'/);
  });

  it('config check: shows the resolved configuration, or every bad field with its expected type', () => {
    const ok = agentd(['config', 'check']);
    assert.equal(ok.status, 0, ok.stderr);
    assert.match(ok.stdout, /configuration is valid/);
    assert.match(ok.stdout, /assistant: model medium, tools \[calculator, current_time\]/);
    const file = join(dir.path, 'bad.yaml');
    writeFileSync(file, 'server:\n  port: high\nagents:\n  a:\n    tools: calculator\n');
    const bad = agentd(['config', 'check', '--config', file]);
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /server\.port: expected integer, got string "high"/);
    assert.match(bad.stderr, /agents\.a\.tools: expected array, got string "calculator"/);
  });

  it('config check: reads environment overrides and names a bad one', () => {
    const bad = agentd(['config', 'check'], { AGENTD_LLM__RETRY__MAX_ATTEMPTS: 'lots' });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /llm\.retry\.max_attempts: expected integer/);
  });

  it('prints help for every command', () => {
    for (const args of [
      ['--help'],
      ['serve', '--help'],
      ['run', '--help'],
      ['mock-llm', '--help'],
      ['config', '--help'],
    ]) {
      const result = agentd(args);
      assert.equal(result.status, 0, args.join(' '));
      assert.match(result.stdout, /Usage: agentd/);
    }
    assert.equal(agentd(['frobnicate']).status, 2);
  });

  it('serve: answers requests, then drains and exits 0 on SIGTERM', async () => {
    const child: ChildProcess = spawn(process.execPath, [CLI, 'serve', '--port', '0'], {
      env: { ...env, AGENTD_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const address = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        const match = /"address":"(http:\/\/[^"]+)"/.exec(out);
        if (match) resolve(match[1]!);
      });
      child.once('exit', (code) => reject(new Error(`serve exited early with ${code}: ${out}`)));
    });
    const res = await call(address, 'POST', '/v1/agents/assistant/run', { input: 'What is 2+3?' });
    assert.equal(res.body.result, 'The result is 5.');
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  });

  it('mock-llm: serves OpenAI-compatible completions', async () => {
    const child = spawn(process.execPath, [CLI, 'mock-llm', '--port', '0'], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const url = await new Promise<string>((resolve) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        const match = /listening on (\S+)/.exec(chunk.toString());
        if (match) resolve(match[1]!);
      });
    });
    const res = await call(url, 'POST', '/chat/completions', {
      model: 'mock',
      messages: [{ role: 'user', content: 'hi' }],
    });
    assert.equal(res.status, 200);
    assert.equal(res.body.object, 'chat.completion');
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  });
});
