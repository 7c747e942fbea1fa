/**
 * VoltAgent: `Agent`s with an AI SDK model (`@ai-sdk/openai-compatible` pointed at the mock), a
 * warn-level pino logger (`@voltagent/logger`), `createTool` with a zod schema, answers from
 * `agent.streamText()`; a session is a `conversationId` in the agent's default in-memory memory,
 * as VoltAgent's memory guide shows. Everything else is left at its defaults.
 */
import { randomUUID } from 'node:crypto';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { Agent, createTool } from '@voltagent/core';
import { createPinoLogger } from '@voltagent/logger';
import { z } from 'zod';
import {
  CALCULATOR_DESCRIPTION,
  type Conversation,
  calculate,
  type Subject,
  type SubjectContext,
} from '../subject.js';

export async function create(context: SubjectContext): Promise<Subject> {
  const model = createOpenAICompatible({ name: 'mock', baseURL: context.baseURL, apiKey: 'bench' }).chatModel(
    context.model,
  );
  const logger = createPinoLogger({ level: 'warn' });
  const calculator = createTool({
    name: 'calculator',
    description: CALCULATOR_DESCRIPTION,
    parameters: z.object({ expression: z.string() }),
    execute: async ({ expression }) => String(calculate(expression)),
  });
  const bench = new Agent({ name: 'bench', instructions: 'You are a benchmark.', model, logger });
  const assistant = new Agent({
    name: 'assistant',
    instructions: 'Use the calculator.',
    model,
    tools: [calculator],
    logger,
  });
  return {
    async oneShot(input) {
      return (await bench.streamText(input)).text;
    },
    async toolRoundTrip(input) {
      return (await assistant.streamText(input, { maxSteps: 5 })).text;
    },
    conversation(): Conversation {
      const conversationId = randomUUID();
      return {
        async send(input) {
          return (await bench.streamText(input, { userId: 'bench', conversationId })).text;
        },
      };
    },
    close: async () => {},
  };
}
