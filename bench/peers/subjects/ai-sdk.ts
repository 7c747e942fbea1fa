/**
 * Vercel AI SDK: `streamText` with the OpenAI-compatible provider, a `tool()` with a zod input
 * schema and `stopWhen: stepCountIs(n)` for the tool loop, and the response messages appended to
 * the caller's history for a session — as its documentation shows.
 */
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { type ModelMessage, stepCountIs, streamText, tool } from 'ai';
import { z } from 'zod';
import {
  CALCULATOR_DESCRIPTION,
  type Conversation,
  calculate,
  type Subject,
  type SubjectContext,
} from '../subject.js';

const SYSTEM = 'You are a benchmark.';

export async function create(context: SubjectContext): Promise<Subject> {
  const provider = createOpenAICompatible({ name: 'mock', baseURL: context.baseURL, apiKey: 'bench' });
  const model = provider.chatModel(context.model);
  const tools = {
    calculator: tool({
      description: CALCULATOR_DESCRIPTION,
      inputSchema: z.object({ expression: z.string() }),
      execute: async ({ expression }) => String(calculate(expression)),
    }),
  };
  return {
    async oneShot(input) {
      return streamText({ model, system: SYSTEM, prompt: input }).text;
    },
    async toolRoundTrip(input) {
      return streamText({
        model,
        system: 'Use the calculator.',
        prompt: input,
        tools,
        stopWhen: stepCountIs(5),
      }).text;
    },
    conversation(): Conversation {
      const messages: ModelMessage[] = [];
      return {
        async send(input) {
          messages.push({ role: 'user', content: input });
          const result = streamText({ model, system: SYSTEM, messages });
          const text = await result.text;
          messages.push(...(await result.response).messages);
          return text;
        },
      };
    },
    close: async () => {},
  };
}
