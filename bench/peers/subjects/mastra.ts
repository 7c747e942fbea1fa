/**
 * Mastra: `Agent`s registered on a `Mastra` instance (warn-level logger), the model given as an
 * OpenAI-compatible config (`{ providerId, modelId, url, apiKey }`), answers from `agent.stream()`,
 * the tool made with `createTool`. A session passes the conversation's messages to each call
 * (Mastra's persistent memory needs a storage adapter package; in-memory history is the lighter
 * choice and the one its docs show for stateless use).
 */
import { Mastra } from '@mastra/core';
import { Agent } from '@mastra/core/agent';
import { ConsoleLogger } from '@mastra/core/logger';
import { createTool } from '@mastra/core/tools';
import { z } from 'zod';
import {
  CALCULATOR_DESCRIPTION,
  type Conversation,
  calculate,
  type Subject,
  type SubjectContext,
} from '../subject.js';

export async function create(context: SubjectContext): Promise<Subject> {
  const model = { providerId: 'mock', modelId: context.model, url: context.baseURL, apiKey: 'bench' };
  const calculator = createTool({
    id: 'calculator',
    description: CALCULATOR_DESCRIPTION,
    inputSchema: z.object({ expression: z.string() }),
    execute: async ({ context: input }) => String(calculate(input.expression)),
  });
  const mastra = new Mastra({
    agents: {
      bench: new Agent({ name: 'bench', instructions: 'You are a benchmark.', model }),
      assistant: new Agent({
        name: 'assistant',
        instructions: 'Use the calculator.',
        model,
        tools: { calculator },
      }),
    },
    logger: new ConsoleLogger({ level: 'warn' }),
  });
  const bench = mastra.getAgent('bench');
  const assistant = mastra.getAgent('assistant');
  return {
    async oneShot(input) {
      return (await bench.stream(input)).text;
    },
    async toolRoundTrip(input) {
      return (await assistant.stream(input, { maxSteps: 5 })).text;
    },
    conversation(): Conversation {
      const messages: ({ role: 'user'; content: string } | { role: 'assistant'; content: string })[] = [];
      return {
        async send(input) {
          messages.push({ role: 'user', content: input });
          const text = await (await bench.stream(messages)).text;
          messages.push({ role: 'assistant', content: text });
          return text;
        },
      };
    },
    close: async () => {},
  };
}
