/**
 * agentd as a library (`createRuntime`, as its README shows): the production runtime with its
 * defaults — admission, the scheduler, SQLite storage of every task and session — pointed at the
 * mock as an OpenAI-compatible provider. Connections and task limits are sized to the in-flight
 * count, as a user would for this load.
 */
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { createRuntime, type TaskRecord } from '../../../dist/index.js';
import type { Conversation, Subject, SubjectContext } from '../subject.js';

function answer(record: TaskRecord): string {
  if (record.status !== 'succeeded')
    throw new Error(`task ${record.status}: ${record.error?.code ?? ''} ${record.error?.message ?? ''}`);
  return record.result ?? '';
}

export async function create(context: SubjectContext): Promise<Subject> {
  const runtime = await createRuntime({
    recover: false,
    env: {},
    config: {
      log: { level: 'warn' },
      storage: { path: join(context.dir, 'agentd.db') },
      providers: {
        mock: {
          type: 'openai',
          base_url: context.baseURL,
          api_key: 'bench',
          connections: Math.max(128, context.inflight),
        },
      },
      models: { bench: { provider: 'mock', name: context.model } },
      tiers: { small: ['bench'], medium: ['bench'], large: ['bench'] },
      tasks: {
        max_concurrency: Math.max(4096, context.inflight),
        max_queue: Math.max(10_000, context.inflight),
      },
      agents: {
        bench: { model: 'bench', system_prompt: 'You are a benchmark.' },
        assistant: { model: 'bench', tools: ['calculator'], system_prompt: 'Use the calculator.' },
      },
    },
  });
  return {
    async oneShot(input) {
      return answer(await runtime.run('bench', input));
    },
    async toolRoundTrip(input) {
      return answer(await runtime.run('assistant', input));
    },
    conversation(): Conversation {
      const sessionId = randomUUID();
      return {
        async send(input) {
          return answer(await runtime.run('bench', input, { sessionId }));
        },
      };
    },
    close: () => runtime.close(),
  };
}
