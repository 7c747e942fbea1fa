/**
 * The floor every subject is measured against: the same model calls made with a bare undici
 * Pool and a minimal SSE reader — no framework, no agent runtime. "Added latency" is a subject's
 * latency minus this one's for the same workload.
 */
import { Pool } from 'undici';
import {
  CALCULATOR_DESCRIPTION,
  type Conversation,
  calculate,
  type Subject,
  type SubjectContext,
} from '../subject.js';

interface Message {
  role: string;
  content: string | null;
  tool_calls?: { id: string; type: 'function'; function: { name: string; arguments: string } }[];
  tool_call_id?: string;
}

const TOOLS = [
  {
    type: 'function',
    function: {
      name: 'calculator',
      description: CALCULATOR_DESCRIPTION,
      parameters: {
        type: 'object',
        properties: { expression: { type: 'string' } },
        required: ['expression'],
      },
    },
  },
];

export async function create(context: SubjectContext): Promise<Subject> {
  const url = new URL(context.baseURL);
  const pool = new Pool(url.origin, { connections: context.inflight, keepAliveTimeout: 30_000 });
  const path = `${url.pathname.replace(/\/$/, '')}/chat/completions`;

  async function complete(messages: Message[], tools: boolean): Promise<Message> {
    const response = await pool.request({
      path,
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer bench' },
      body: JSON.stringify({
        model: context.model,
        messages,
        stream: true,
        ...(tools ? { tools: TOOLS } : {}),
      }),
    });
    if (response.statusCode !== 200)
      throw new Error(`HTTP ${response.statusCode}: ${await response.body.text()}`);
    const text = await response.body.text();
    const parts: string[] = [];
    const calls: NonNullable<Message['tool_calls']> = [];
    for (const line of text.split('\n')) {
      if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
      const delta = JSON.parse(line.slice(6)).choices?.[0]?.delta;
      if (delta === undefined) continue;
      if (typeof delta.content === 'string') parts.push(delta.content);
      for (const call of delta.tool_calls ?? []) {
        const slot = calls[call.index] ?? { id: '', type: 'function', function: { name: '', arguments: '' } };
        calls[call.index] = slot;
        if (call.id) slot.id = call.id;
        if (call.function?.name) slot.function.name += call.function.name;
        if (call.function?.arguments) slot.function.arguments += call.function.arguments;
      }
    }
    return { role: 'assistant', content: parts.join(''), ...(calls.length > 0 ? { tool_calls: calls } : {}) };
  }

  return {
    async oneShot(input) {
      return (await complete([{ role: 'user', content: input }], false)).content ?? '';
    },
    async toolRoundTrip(input) {
      const messages: Message[] = [{ role: 'user', content: input }];
      for (let i = 0; i < 4; i++) {
        const reply = await complete(messages, true);
        messages.push(reply);
        if (reply.tool_calls === undefined) return reply.content ?? '';
        for (const call of reply.tool_calls) {
          const { expression } = JSON.parse(call.function.arguments) as { expression: string };
          messages.push({ role: 'tool', tool_call_id: call.id, content: String(calculate(expression)) });
        }
      }
      throw new Error('too many tool rounds');
    },
    conversation(): Conversation {
      const messages: Message[] = [];
      return {
        async send(input) {
          messages.push({ role: 'user', content: input });
          const reply = await complete(messages, false);
          messages.push(reply);
          return reply.content ?? '';
        },
      };
    },
    close: () => pool.close(),
  };
}
