/**
 * OpenAI Agents SDK: an `Agent` run with `run(agent, input, { stream: true })`, the default client
 * pointed at the mock with `setDefaultOpenAIClient`, the Chat Completions API (the mock, like most
 * OpenAI-compatible servers, has no Responses API) and tracing off (its exporter sends to OpenAI)
 * — the SDK's documented set-up for other providers. A session passes `result.history` on.
 */
import {
  Agent,
  type AgentInputItem,
  run,
  setDefaultOpenAIClient,
  setOpenAIAPI,
  setTracingDisabled,
  tool,
} from '@openai/agents';
import OpenAI from 'openai';
import { z } from 'zod';
import {
  CALCULATOR_DESCRIPTION,
  type Conversation,
  calculate,
  type Subject,
  type SubjectContext,
} from '../subject.js';

export async function create(context: SubjectContext): Promise<Subject> {
  setDefaultOpenAIClient(new OpenAI({ baseURL: context.baseURL, apiKey: 'bench' }));
  setOpenAIAPI('chat_completions');
  setTracingDisabled(true);
  const bench = new Agent({ name: 'bench', instructions: 'You are a benchmark.', model: context.model });
  const calculator = tool({
    name: 'calculator',
    description: CALCULATOR_DESCRIPTION,
    parameters: z.object({ expression: z.string() }),
    execute: async ({ expression }) => String(calculate(expression)),
  });
  const assistant = new Agent({
    name: 'assistant',
    instructions: 'Use the calculator.',
    model: context.model,
    tools: [calculator],
  });

  async function streamed(
    agent: Agent,
    input: string | AgentInputItem[],
  ): Promise<{ text: string; history: AgentInputItem[] }> {
    const result = await run(agent, input, { stream: true });
    const parts: string[] = [];
    for await (const text of result.toTextStream()) parts.push(text);
    await result.completed;
    return { text: parts.join(''), history: result.history };
  }

  return {
    async oneShot(input) {
      return (await streamed(bench, input)).text;
    },
    async toolRoundTrip(input) {
      return (await streamed(assistant, input)).text;
    },
    conversation(): Conversation {
      let history: AgentInputItem[] = [];
      return {
        async send(input) {
          const result = await streamed(bench, [...history, { role: 'user', content: input }]);
          history = result.history;
          return result.text;
        },
      };
    },
    close: async () => {},
  };
}
