import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Type from 'typebox';
import { createLogger, createRuntime, defineAgent, defineTool } from '../src/index.js';

describe('library API', () => {
  it('runs a code-defined agent with a code-defined tool, no HTTP involved', async () => {
    const lookups: string[] = [];
    const weather = defineTool({
      name: 'weather',
      description: 'Current weather for a city',
      parameters: Type.Object({ city: Type.String() }),
      handler: ({ city }) => {
        lookups.push(city);
        return { city, forecast: 'sunny', celsius: 21 };
      },
    });
    const runtime = await createRuntime({
      env: {},
      config: { storage: { path: ':memory:' } },
      logger: createLogger({ level: 'silent' }),
      agents: [
        defineAgent({
          name: 'forecaster',
          model: `mock/mock?call=weather&args=${encodeURIComponent('{"city":"Hangzhou"}')}`,
          tools: [weather],
          maxIterations: 3,
        }),
      ],
    });
    try {
      const task = await runtime.run('forecaster', 'Weather in Hangzhou?');
      assert.equal(task.status, 'succeeded');
      assert.deepEqual(lookups, ['Hangzhou']);
      assert.match(task.result ?? '', /sunny/);
      assert.ok(
        runtime.agents().some((a) => a.name === 'assistant'),
        'the default assistant is still there',
      );
    } finally {
      await runtime.close();
    }
  });

  it('rejects invalid agent and tool declarations at once', () => {
    assert.throws(() => defineAgent({ name: 'bad name' }), /must match/);
    assert.throws(
      () => defineAgent({ name: 'x', maxIterations: 0 }),
      /maxIterations must be a positive integer/,
    );
  });
});
