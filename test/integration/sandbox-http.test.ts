import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { call, startAgentd, type TestAgentd } from '../helpers/agentd.js';

// The sandbox tools over HTTP: direct execution (POST /v1/tools/:name/execute) with the same
// allow-lists and limits as inside an agent, admission (429), an agent calling run_javascript
// through the model, and agentd serving on while interpreters crash under it.
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 10));
}

/** Waits until every Python interpreter is started and waiting for a program. */
function idle(agentd: TestAgentd): Promise<void> {
  return until(() => agentd.runtime.sandbox.stats().python?.busy === 0);
}

describe('sandbox tools over HTTP', () => {
  let agentd: TestAgentd;
  const execute = (tool: string, body: unknown) =>
    call(agentd.url, 'POST', `/v1/tools/${tool}/execute`, body);

  before(async () => {
    agentd = await startAgentd({
      config: {
        tools: { direct_execute: ['run_javascript', 'calculator'] },
        sandbox: {
          max_concurrent_per_tenant: 1,
          breaker: { min_requests: 3, failure_rate: 0.5, open_ms: 1_000 },
          javascript: { workers: 1, timeout_ms: 2_000 },
          python: { processes: 1, isolation: 'process', timeout_ms: 5_000, memory_mb: 64 },
          agents: { coder: { python: { max_timeout_ms: 8_000 } } },
        },
        agents: {
          coder: {
            model: `mock/mock?call=run_javascript&args=${encodeURIComponent('{"code":"[1,2,3].map(x => x * 14)[2]"}')}`,
            tools: ['run_javascript', 'run_python'],
          },
        },
      },
    });
    await agentd.runtime.sandbox.warm(['javascript', 'python']);
  });
  after(() => agentd.close());

  it('runs Python as an agent that lists run_python', async () => {
    const res = await execute('run_python', { agent: 'coder', arguments: { code: 'print("hi")\n2 ** 10' } });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.object, 'tool_result');
    assert.equal(res.body.tool, 'run_python');
    assert.equal(res.body.result.result, 1024);
    assert.equal(res.body.result.stdout, 'hi\n');
    assert.equal(typeof res.body.duration_ms, 'number');
  });

  it('applies the allow-list: 403 for an agent without the tool, and without an agent unless listed', async () => {
    const asAssistant = await execute('run_python', { agent: 'assistant', arguments: { code: '1' } });
    assert.equal(asAssistant.status, 403);
    assert.equal(asAssistant.body.error.code, 'AGENTD_TOOL_FORBIDDEN');
    const direct = await execute('run_python', { arguments: { code: '1' } });
    assert.equal(direct.status, 403);
    assert.match(direct.body.error.message, /tools\.direct_execute/);
    const listed = await execute('run_javascript', { arguments: { code: '"direct"' } });
    assert.equal(listed.status, 200);
    assert.equal(listed.body.result.result, 'direct');
  });

  it('answers 404 for an unknown tool or agent and 400 naming the bad argument', async () => {
    assert.equal((await execute('nope', { arguments: {} })).body.error.code, 'AGENTD_TOOL_NOT_FOUND');
    assert.equal((await execute('run_python', { agent: 'nobody', arguments: { code: '1' } })).status, 404);
    const bad = await execute('run_javascript', { arguments: { code: 42 } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.code, 'AGENTD_TOOL_ARGUMENTS_INVALID');
    assert.equal(bad.body.error.details.field, 'code');
    const tooLong = await execute('run_python', {
      agent: 'coder',
      arguments: { code: '1', timeout_ms: 9_000 },
    });
    assert.equal(tooLong.status, 400);
    assert.match(tooLong.body.error.message, /timeout_ms may be at most 8000/);
    const unknownField = await execute('run_javascript', { arguments: { code: '1' }, extra: true });
    assert.equal(unknownField.status, 400);
  });

  it('lists tools with their schemas and whether they run without an agent', async () => {
    const res = await call(agentd.url, 'GET', '/v1/tools');
    const python = res.body.data.find((t: { name: string }) => t.name === 'run_python');
    assert.equal(python.direct, false);
    assert.deepEqual(python.parameters.required, ['code']);
    assert.equal(res.body.data.find((t: { name: string }) => t.name === 'run_javascript').direct, true);
  });

  it('refuses a second concurrent run of the same tenant with 429 and Retry-After', async () => {
    const slow = execute('run_javascript', { arguments: { code: 'while (true) {}', timeout_ms: 1_500 } });
    await until(() => agentd.runtime.sandbox.stats().javascript?.busy === 1);
    const second = await execute('run_javascript', { arguments: { code: '1' } });
    assert.equal(second.status, 429);
    assert.equal(second.body.error.code, 'AGENTD_CONCURRENCY_LIMITED');
    assert.equal(second.headers['retry-after'], '1');
    const first = await slow;
    assert.equal(first.status, 200);
    assert.equal(first.body.result.timed_out, true);
  });

  it('lets an agent call run_javascript through the model', async () => {
    const res = await call(agentd.url, 'POST', '/v1/agents/coder/run', { input: 'compute' });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.result, 'The result is 42.');
    assert.equal(res.body.tool_calls, 1);
  });

  it('keeps serving while Python interpreters crash and are killed under it; repeated crashes open the breaker', async () => {
    const trapped = await execute('run_python', {
      agent: 'coder',
      arguments: { code: 'import os\nos.abort()' },
    });
    assert.equal(trapped.status, 200);
    assert.equal(trapped.body.result.crashed, true);
    await idle(agentd); // so the next run starts at once, and the kill below lands mid-run
    const looping = execute('run_python', { agent: 'coder', arguments: { code: 'while True:\n    pass' } });
    await until(() => agentd.runtime.sandbox.stats().python?.busy === 1);
    for (const pid of agentd.runtime.sandbox.pythonPids()) process.kill(pid, 'SIGKILL');
    const killed = await looping;
    assert.equal(killed.status, 200, JSON.stringify(killed.body));
    assert.equal(killed.body.result.crashed, true);
    // Two crashes in three runs: this tenant's Python runs pause; everything else serves on.
    const paused = await execute('run_python', { agent: 'coder', arguments: { code: '1' } });
    assert.equal(paused.status, 503);
    assert.equal(paused.body.error.code, 'AGENTD_CIRCUIT_OPEN');
    assert.ok(Number(paused.headers['retry-after']) >= 1);
    assert.equal((await call(agentd.url, 'GET', '/healthz')).status, 200);
    const js = await execute('run_javascript', { arguments: { code: '"and here"' } });
    assert.equal(js.body.result.result, 'and here');
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const next = await execute('run_python', { agent: 'coder', arguments: { code: '"still here"' } });
    assert.equal(next.status, 200, JSON.stringify(next.body));
    assert.equal(next.body.result.result, 'still here');
  });
});
