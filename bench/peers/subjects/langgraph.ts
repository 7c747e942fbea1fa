/**
 * LangGraph.js: the prebuilt ReAct agent (`createReactAgent`) over `ChatOpenAI` pointed at the
 * mock (`configuration.baseURL`), streamed with `streamMode: 'messages'`; a session is a thread of
 * a `MemorySaver` checkpointer (`thread_id`), as the LangGraph memory guide shows.
 */
import { randomUUID } from 'node:crypto';
import { AIMessageChunk } from '@langchain/core/messages';
import { tool } from '@langchain/core/tools';
import { MemorySaver } from '@langchain/langgraph';
import { createReactAgent } from '@langchain/langgraph/prebuilt';
import { ChatOpenAI } from '@langchain/openai';
import { z } from 'zod';
import {
  CALCULATOR_DESCRIPTION,
  type Conversation,
  calculate,
  type Subject,
  type SubjectContext,
} from '../subject.js';

export async function create(context: SubjectContext): Promise<Subject> {
  const llm = new ChatOpenAI({
    model: context.model,
    apiKey: 'bench',
    streaming: true,
    configuration: { baseURL: context.baseURL },
  });
  const calculator = tool(async ({ expression }) => String(calculate(expression)), {
    name: 'calculator',
    description: CALCULATOR_DESCRIPTION,
    schema: z.object({ expression: z.string() }),
  });
  const bench = createReactAgent({ llm, tools: [], prompt: 'You are a benchmark.' });
  const assistant = createReactAgent({ llm, tools: [calculator], prompt: 'Use the calculator.' });
  const checkpointer = new MemorySaver();
  const chat = createReactAgent({
    llm,
    tools: [],
    prompt: 'You are a benchmark.',
    checkpointSaver: checkpointer,
  });

  /** Streams the run's messages and returns the text of the last model turn. */
  async function streamed(
    agent: typeof bench,
    input: string,
    config: { configurable?: { thread_id: string } } = {},
  ): Promise<string> {
    const stream = await agent.stream(
      { messages: [{ role: 'user', content: input }] },
      { ...config, streamMode: 'messages' },
    );
    let parts: string[] = [];
    let lastId: string | undefined;
    for await (const [message] of stream) {
      if (!(message instanceof AIMessageChunk)) continue;
      if (message.id !== lastId) {
        parts = [];
        lastId = message.id;
      }
      if (typeof message.content === 'string') parts.push(message.content);
    }
    return parts.join('');
  }

  return {
    oneShot: (input) => streamed(bench, input),
    toolRoundTrip: (input) => streamed(assistant, input),
    conversation(): Conversation {
      const threadId = randomUUID();
      return { send: (input) => streamed(chat, input, { configurable: { thread_id: threadId } }) };
    },
    close: async () => {},
  };
}
