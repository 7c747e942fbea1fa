import type { ChatMessage, ToolSpec } from '../types.js';
import type { Scenario } from './scenario.js';

/** What the mock model answers: text split into tokens, or tool calls. */
export interface MockReply {
  tokens: string[];
  toolCalls: { name: string; arguments: string }[];
}

/** A reply a test queued for a model with `MockLlmServer.enqueue`. */
export interface ScriptedReply {
  content?: string;
  toolCalls?: { name: string; arguments: unknown }[];
}

const WORDS = [
  'agentd',
  'runs',
  'agent',
  'tasks',
  'with',
  'micro',
  'second',
  'overhead',
  'and',
  'bounded',
  'memory',
];

/** An arithmetic expression with at least one operator, as a user might type it. */
const EXPRESSION = /\(?\s*-?\d+(?:\.\d+)?(?:\s*[-+*/%^]\s*\(?\s*-?\d+(?:\.\d+)?\s*\)?)+/;

/**
 * Decides the mock's reply. Deterministic: the same request always gets the same answer, so
 * tests and benchmarks are repeatable. Order: scripted reply, forced tool call, answer to a tool
 * result, calculator call for arithmetic, fixed reply, generated words.
 */
export function decideReply(
  messages: readonly ChatMessage[],
  tools: readonly ToolSpec[] | undefined,
  scenario: Scenario,
  scripted: ScriptedReply | undefined,
): MockReply {
  if (scripted !== undefined) {
    return {
      tokens: scripted.content === undefined ? [] : tokenize(scripted.content),
      toolCalls: (scripted.toolCalls ?? []).map((call) => ({
        name: call.name,
        arguments: typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments ?? {}),
      })),
    };
  }
  const last = messages[messages.length - 1];
  if (last?.role === 'tool') {
    return { tokens: tokenize(`The result is ${toolResultText(last.content)}.`), toolCalls: [] };
  }
  if (scenario.call !== undefined) {
    return { tokens: [], toolCalls: [{ name: scenario.call, arguments: scenario.args ?? '{}' }] };
  }
  if (last?.role === 'user' && hasTool(tools, 'calculator')) {
    const match = EXPRESSION.exec(last.content ?? '');
    if (match !== null) {
      return {
        tokens: [],
        toolCalls: [{ name: 'calculator', arguments: JSON.stringify({ expression: match[0].trim() }) }],
      };
    }
  }
  if (scenario.reply !== undefined) return { tokens: tokenize(scenario.reply), toolCalls: [] };
  return { tokens: generated(scenario.tokens), toolCalls: [] };
}

function hasTool(tools: readonly ToolSpec[] | undefined, name: string): boolean {
  if (tools === undefined) return false;
  for (const tool of tools) if (tool.function.name === name) return true;
  return false;
}

function toolResultText(content: string | null): string {
  if (content === null) return 'empty';
  try {
    const parsed: unknown = JSON.parse(content);
    if (parsed !== null && typeof parsed === 'object' && 'result' in parsed) return String(parsed.result);
  } catch {
    // Plain text tool output.
  }
  return content;
}

/** Splits text into word tokens that keep their following space, like a BPE stream would. */
export function tokenize(text: string): string[] {
  const tokens = text.match(/\S+\s*/g);
  return tokens ?? [];
}

const generatedCache = new Map<number, string[]>();

function generated(count: number): string[] {
  let tokens = generatedCache.get(count);
  if (tokens === undefined) {
    tokens = [];
    for (let i = 0; i < count; i++)
      tokens.push(i === count - 1 ? `${WORDS[i % WORDS.length]}.` : `${WORDS[i % WORDS.length]} `);
    if (generatedCache.size < 1000) generatedCache.set(count, tokens);
  }
  return tokens;
}
