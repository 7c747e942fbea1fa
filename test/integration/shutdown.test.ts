import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MockLlmServer } from '../../src/llm/index.js';
import { call, readSse, tempDir } from '../helpers/agentd.js';

const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;

function serve(configPath: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--config', configPath], {
    env: { PATH: process.env.PATH, AGENTD_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /"address":"(http:\/\/[^"]+)"/.exec(out);
      if (match) resolve({ url: match[1]!, child });
    });
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${out}`)));
  });
}

function exitOf(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

describe('graceful shutdown', () => {
  let mock: MockLlmServer;
  const dir = tempDir('agentd-shutdown-');
  const configPath = join(dir.path, 'agentd.json');

  before(async () => {
    mock = await MockLlmServer.start();
    writeFileSync(
      configPath,
      JSON.stringify({
        storage: { path: join(dir.path, 'agentd.db') },
        providers: { mock: { type: 'mock', base_url: mock.url } },
        models: { slow: { provider: 'mock', name: 'mock?tokens=15&interval_ms=40' } },
        tiers: { small: ['slow'], medium: ['slow'], large: ['slow'] },
        server: { drain_timeout_ms: 8000 },
        tasks: { max_concurrency: 2 },
      }),
    );
  });
  after(async () => {
    await mock.close();
    dir.remove();
  });

  it('SIGTERM under load: refuses new work, lets running tasks finish, keeps queued ones, exits 0 — nothing accepted fails', async () => {
    const first = await serve(configPath);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await call(first.url, 'POST', '/v1/tasks', { agent: 'assistant', input: `task ${i}` });
      assert.equal(res.status, 202);
      ids.push(res.body.id);
    }
    const stream = readSse(`${first.url}/v1/tasks/${ids[0]}/events`);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const exited = exitOf(first.child);
    const signalled = performance.now();
    first.child.kill('SIGTERM');
    // Readiness and refusal turn with the same drain flag: once /readyz reports draining the
    // process has taken the signal, however long a loaded machine took to deliver it.
    while ((await call(first.url, 'GET', '/readyz')).body.checks?.draining !== true) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }

    const refused = await call(first.url, 'POST', '/v1/tasks', { agent: 'assistant', input: 'too late' });
    assert.equal(refused.status, 503);
    assert.equal(refused.body.error.code, 'AGENTD_SHUTTING_DOWN');
    assert.ok(Number(refused.headers['retry-after']) >= 1);

    assert.equal((await call(first.url, 'GET', '/readyz')).status, 503, 'unready while draining');

    const { events } = await stream;
    assert.equal(events.at(-1)!.event, 'task.completed', 'the SSE client got its final event');
    assert.equal(events.at(-1)!.data.status, 'succeeded');
    assert.equal(await exited, 0);
    assert.ok(performance.now() - signalled < 8000 + 2000, 'exited within the drain timeout');

    const second = await serve(configPath);
    try {
      for (const id of ids) {
        const { events: rest } = await readSse(`${second.url}/v1/tasks/${id}/events`);
        assert.equal(rest.at(-1)!.data.status, 'succeeded', `task ${id}`);
      }
      const failed = await call(second.url, 'GET', '/v1/tasks?status=failed');
      assert.deepEqual(failed.body.data, []);
    } finally {
      const done = exitOf(second.child);
      second.child.kill('SIGTERM');
      await done;
    }
  });

  it('a second signal exits at once without draining', async () => {
    const node = await serve(configPath);
    await call(node.url, 'POST', '/v1/tasks', {
      agent: 'assistant',
      input: 'long',
      model: 'mock/mock?tokens=500&interval_ms=50',
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const exited = exitOf(node.child);
    node.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 200));
    node.child.kill('SIGTERM');
    assert.equal(await exited, 1);
  });
});
