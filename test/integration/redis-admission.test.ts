import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { MockLlmServer } from '../../src/llm/index.js';
import { call, startAgentd, type TestAgentd, tempDir } from '../helpers/agentd.js';
import { dropPrefix, PrivateRedis, SHARED_REDIS_URL, testPrefix } from '../helpers/redis.js';

const CLI = new URL('../../dist/cli/main.js', import.meta.url).pathname;

/** Starts `agentd serve` as its own process and resolves with its address. */
function serveProcess(
  configPath: string,
  env: NodeJS.ProcessEnv,
): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [CLI, 'serve', '--port', '0', '--config', configPath], {
    env: { PATH: process.env.PATH, AGENTD_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /"address":"(http:\/\/[^"]+)"/.exec(out);
      if (match) resolve({ url: match[1]!, child });
    });
    child.once('exit', (code) => reject(new Error(`agentd exited with ${code}: ${out}`)));
  });
}

describe('limits shared through Redis', () => {
  let mock: MockLlmServer;
  const dir = tempDir('agentd-redis-');

  before(async () => {
    mock = await MockLlmServer.start();
  });
  after(async () => {
    await mock.close();
    dir.remove();
  });

  it('two agentd processes sharing one Redis enforce one combined rate (within 2%)', async () => {
    const prefix = testPrefix();
    const rate = 50;
    const config = (name: string) => {
      const path = join(dir.path, `${name}.json`);
      writeFileSync(
        path,
        JSON.stringify({
          storage: { path: join(dir.path, `${name}.db`) },
          providers: { mock: { type: 'mock', base_url: mock.url } },
          models: { m: { provider: 'mock', name: 'mock' } },
          tiers: { small: ['m'], medium: ['m'], large: ['m'] },
          redis: { key_prefix: prefix },
          // A bucket far deeper than the window's refill (150): even if every client stalls on a
          // loaded machine, the level never reaches the cap, so no refill is lost and the count is exact.
          limits: { default_tenant: { requests_per_second: rate, burst: rate * 10 } },
        }),
      );
      return path;
    };
    const env = { REDIS_URL: SHARED_REDIS_URL };
    const nodes = await Promise.all([serveProcess(config('one'), env), serveProcess(config('two'), env)]);
    const redis = new Redis(SHARED_REDIS_URL);
    // The shared bucket stores `level|time of its last draw` (Redis's clock): the window is
    // measured where the decisions are made, not by this busy client.
    const bucket = async () => {
      const [level, at] = String(await redis.get(`${prefix}t:default:rps`))
        .split('|')
        .map(Number);
      return { level: level!, at: at! };
    };
    const submit = (url: string) => call(url, 'POST', '/v1/tasks', { agent: 'assistant', input: 'hi' });
    try {
      for (const node of nodes) for (let i = 0; i < 3; i++) await submit(node.url);
      // Drain the bucket first: starting far from its capacity, no refill is lost to the cap.
      while ((await submit(nodes[0]!.url)).status !== 429);
      const first = await bucket();
      let admitted = 0;
      let refused = 0;
      let stop = false;
      // Eight concurrent clients per node keep the offered load above the limit even on a busy machine.
      const loops = nodes.flatMap((node) =>
        Array.from({ length: 8 }, async () => {
          while (!stop) {
            const res = await submit(node.url);
            if (res.status === 202) admitted++;
            else if (res.status === 429) refused++;
            else assert.fail(`unexpected ${res.status}: ${JSON.stringify(res.body)}`);
          }
        }),
      );
      await new Promise((resolve) => setTimeout(resolve, 3000));
      stop = true;
      await Promise.all(loops);
      const last = await bucket();
      const windowSeconds = (last.at - first.at) / 1000;
      const expected = rate * windowSeconds + first.level - last.level;
      assert.ok(refused > 0, `the load stayed above the limit (admitted ${admitted}, refused ${refused})`);
      assert.ok(
        Math.abs(admitted - expected) <= expected * 0.02,
        `admitted ${admitted} by two processes, expected ${expected.toFixed(1)} (${rate}/s over ${windowSeconds.toFixed(3)} s)`,
      );
    } finally {
      redis.disconnect();
      for (const node of nodes) node.child.kill('SIGTERM');
      await dropPrefix(SHARED_REDIS_URL, prefix);
    }
  });

  describe('when Redis goes away', () => {
    const redis = new PrivateRedis();
    before(() => redis.start());
    after(() => redis.kill());

    async function agentdWith(failMode: 'open' | 'closed'): Promise<TestAgentd> {
      return startAgentd({
        config: {
          providers: { mock: { type: 'mock', base_url: mock.url } },
          models: { m: { provider: 'mock', name: 'mock' } },
          tiers: { small: ['m'], medium: ['m'], large: ['m'] },
          redis: { url: redis.url, key_prefix: testPrefix() },
          limits: { default_tenant: { requests_per_second: 0.001, burst: 3 }, redis_fail_mode: failMode },
        },
      });
    }

    async function until(agentd: TestAgentd, state: RegExp): Promise<Record<string, unknown>> {
      for (let i = 0; i < 100; i++) {
        const ready = await call(agentd.url, 'GET', '/readyz');
        if (state.test(String(ready.body.checks.redis)))
          return { status: ready.status, ...ready.body.checks };
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.fail(`readiness never reported redis ${state}`);
    }

    const submit = (agentd: TestAgentd) =>
      call(agentd.url, 'POST', '/v1/tasks', { agent: 'assistant', input: 'x' });

    it('fail-open: falls back to local limits, says so in readiness, and shares again once Redis returns', async () => {
      const agentd = await agentdWith('open');
      try {
        await until(agentd, /^ok$/);
        assert.equal((await submit(agentd)).status, 202);
        await redis.kill();
        const down = await until(agentd, /unreachable \(failing open\)/);
        assert.equal(down.status, 200, 'still ready: failing open is a configured, visible state');
        const statuses = [];
        for (let i = 0; i < 4; i++) statuses.push((await submit(agentd)).status);
        assert.deepEqual(statuses, [202, 202, 202, 429], 'the local limits apply (a fresh burst of 3)');
        await redis.start();
        await until(agentd, /^ok$/);
        const shared = await submit(agentd);
        assert.equal(shared.status, 202, "Redis's bucket still had two tokens");
      } finally {
        await agentd.close();
      }
    });

    it('fail-closed: refuses with 503 and Retry-After, unready, until Redis returns', async () => {
      const agentd = await agentdWith('closed');
      try {
        await until(agentd, /^ok$/);
        await redis.kill();
        const down = await until(agentd, /unreachable \(failing closed\)/);
        assert.equal(down.status, 503);
        const refused = await submit(agentd);
        assert.equal(refused.status, 503);
        assert.equal(refused.body.error.code, 'AGENTD_OVERLOADED');
        assert.equal(refused.body.error.details.limit, 'redis');
        assert.ok(Number(refused.headers['retry-after']) >= 1);
        await redis.start();
        await until(agentd, /^ok$/);
        assert.equal((await submit(agentd)).status, 202);
      } finally {
        await agentd.close();
      }
    });
  });
});
