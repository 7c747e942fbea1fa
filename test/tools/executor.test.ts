import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Type from 'typebox';
import { CancelledError, RateLimitedError } from '../../src/errors.js';
import { Cancellation } from '../../src/lib/cancellation.js';
import type { ToolCall } from '../../src/llm/index.js';
import { AgentdMetrics } from '../../src/observability/index.js';
import {
  calculator,
  defineTool,
  ToolExecutor,
  ToolRegistry,
  type ToolRunContext,
} from '../../src/tools/index.js';

function toolCall(name: string, args: unknown, id = `call_${name}`): ToolCall {
  return {
    id,
    type: 'function',
    function: { name, arguments: typeof args === 'string' ? args : JSON.stringify(args) },
  };
}

const sleepTool = defineTool({
  name: 'sleep',
  description: 'waits',
  parameters: Type.Object({ ms: Type.Integer({ minimum: 0 }) }),
  handler: ({ ms }, ctx) =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => resolve({ slept: ms }), ms);
      ctx.signal.addEventListener('abort', () => {
        clearTimeout(timer);
        reject(ctx.signal.reason);
      });
    }),
});

function setup(allowed: string[], overrides: Partial<ToolRunContext> = {}) {
  const registry = new ToolRegistry();
  registry.register(calculator);
  registry.register(sleepTool);
  const executor = new ToolExecutor(registry, { maxResultChars: 100 });
  const ctx: ToolRunContext = {
    allowed: new Set(allowed),
    cancellation: new Cancellation(),
    taskId: 't',
    tenantId: 'default',
    agent: 'a',
    timeoutMs: 1000,
    maxParallel: 2,
    ...overrides,
  };
  return { registry, executor, ctx };
}

describe('ToolExecutor', () => {
  it('runs an allowed tool with valid arguments', async () => {
    const { executor, ctx } = setup(['calculator']);
    const [outcome] = await executor.run([toolCall('calculator', { expression: '2+2' })], ctx);
    assert.equal(outcome!.ok, true);
    assert.deepEqual(outcome!.result, { expression: '2+2', result: 4 });
    assert.equal(outcome!.content, '{"expression":"2+2","result":4}');
  });

  it('refuses a tool outside the allow-list with a clear error the model can read', async () => {
    const { executor, ctx } = setup(['calculator']);
    const [outcome] = await executor.run([toolCall('sleep', { ms: 1 })], ctx);
    assert.equal(outcome!.ok, false);
    assert.equal(outcome!.error?.code, 'AGENTD_TOOL_FORBIDDEN');
    assert.match(outcome!.error!.message, /not allowed for agent "a"/);
    assert.equal(JSON.parse(outcome!.content).error.code, 'AGENTD_TOOL_FORBIDDEN');
  });

  it('reports unknown tools, invalid JSON and schema violations as tool errors naming the field', async () => {
    const { executor, ctx } = setup(['calculator', 'ghost']);
    const outcomes = await executor.run(
      [
        toolCall('ghost', {}),
        toolCall('calculator', '{"expression":', 'c2'),
        toolCall('calculator', { expression: 5 }, 'c3'),
        toolCall('calculator', { expression: '1', extra: true }, 'c4'),
      ],
      ctx,
    );
    assert.deepEqual(
      outcomes.map((o) => o.error?.code),
      [
        'AGENTD_TOOL_NOT_FOUND',
        'AGENTD_TOOL_ARGUMENTS_INVALID',
        'AGENTD_TOOL_ARGUMENTS_INVALID',
        'AGENTD_TOOL_ARGUMENTS_INVALID',
      ],
    );
    assert.match(outcomes[2]!.error!.message, /expression must be string/);
  });

  it('stops a tool at its deadline', async () => {
    const { executor, ctx } = setup(['sleep'], { timeoutMs: 30 });
    const [outcome] = await executor.run([toolCall('sleep', { ms: 5000 })], ctx);
    assert.equal(outcome!.error?.code, 'AGENTD_TOOL_TIMEOUT');
  });

  it('runs parallel calls at most maxParallel at a time and keeps their order', async () => {
    const registry = new ToolRegistry();
    let running = 0;
    let peak = 0;
    registry.register(
      defineTool({
        name: 'probe',
        description: 'x',
        parameters: Type.Object({ n: Type.Integer() }),
        handler: async ({ n }) => {
          running++;
          peak = Math.max(peak, running);
          await new Promise((resolve) => setTimeout(resolve, 5));
          running--;
          return n;
        },
      }),
    );
    const executor = new ToolExecutor(registry);
    const calls = Array.from({ length: 7 }, (_, n) => toolCall('probe', { n }, `c${n}`));
    const outcomes = await executor.run(calls, { ...setup(['probe']).ctx, maxParallel: 3 });
    assert.deepEqual(
      outcomes.map((o) => o.result),
      [0, 1, 2, 3, 4, 5, 6],
    );
    assert.equal(peak, 3);
  });

  it('propagates cancellation of the task instead of returning a result', async () => {
    const cancellation = new Cancellation();
    const { executor, ctx } = setup(['sleep'], { cancellation });
    setTimeout(() => cancellation.abortWith(new CancelledError('stop')), 10);
    await assert.rejects(executor.run([toolCall('sleep', { ms: 5000 })], ctx), { code: 'AGENTD_CANCELLED' });
  });

  it('truncates oversized results before they reach the model', async () => {
    const registry = new ToolRegistry();
    registry.register(
      defineTool({
        name: 'big',
        description: 'x',
        parameters: Type.Object({}),
        handler: () => 'x'.repeat(500),
      }),
    );
    const [outcome] = await new ToolExecutor(registry, { maxResultChars: 100 }).run(
      [toolCall('big', {})],
      setup(['big']).ctx,
    );
    assert.equal(outcome!.content.length < 200, true);
    assert.match(outcome!.content, /truncated 400 characters/);
  });

  it('counts a refusal by the tool gate as an admission rejection naming the limit', async () => {
    const registry = new ToolRegistry();
    registry.register(calculator);
    const metrics = new AgentdMetrics();
    const gate = {
      admitTool: () => {
        throw new RateLimitedError('rate limit tool.calculator.requests_per_second reached', {
          retryAfterMs: 500,
          details: { limit: 'tool.calculator.requests_per_second' },
        });
      },
    };
    const executor = new ToolExecutor(registry, { gate, metrics });
    const [outcome] = await executor.run([toolCall('calculator', { expression: '1+1' })], {
      allowed: new Set(['calculator']),
      cancellation: new Cancellation(),
      taskId: 't',
      tenantId: 'default',
      agent: 'a',
      timeoutMs: 1000,
      maxParallel: 1,
    });
    assert.equal(outcome!.ok, false);
    assert.equal(outcome!.error?.code, 'AGENTD_RATE_LIMITED');
    const text = await metrics.render();
    assert.match(text, /agentd_admission_rejections_total\{reason="tool.calculator.requests_per_second"\} 1/);
    assert.match(text, /agentd_tool_calls_total\{tool="calculator",status="AGENTD_RATE_LIMITED"\} 1/);
  });

  it('rejects duplicate registrations and invalid tool names', () => {
    const registry = new ToolRegistry();
    registry.register(calculator);
    assert.throws(() => registry.register(calculator), /already registered/);
    assert.throws(
      () => defineTool({ name: 'bad name', description: 'x', parameters: Type.Object({}), handler: () => 1 }),
      /must match/,
    );
  });
});
