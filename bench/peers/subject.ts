/**
 * What every subject of `npm run bench:peers` implements: agentd and each peer framework, driven
 * the way its own documentation recommends, against the same OpenAI-compatible mock.
 */
export interface SubjectContext {
  /** The mock's OpenAI-compatible base URL, including `/v1`. */
  baseURL: string;
  /** The model name sent to the mock. */
  model: string;
  /** Tasks this process will keep in flight at most (sizes connection pools and queues). */
  inflight: number;
  /** A scratch directory the subject may write to (agentd's SQLite file). */
  dir: string;
}

/** One conversation whose turns carry the earlier turns as history. */
export interface Conversation {
  send(input: string): Promise<string>;
}

export interface Subject {
  /** One streamed model call; resolves with the final answer. */
  oneShot(input: string): Promise<string>;
  /** The model calls the `calculator` tool once, then answers with its result. */
  toolRoundTrip(input: string): Promise<string>;
  conversation(): Conversation;
  close(): Promise<void>;
}

/** A subject module's exports. */
export interface SubjectModule {
  create(context: SubjectContext): Promise<Subject>;
}

export const CALCULATOR_DESCRIPTION = 'Evaluates an arithmetic expression, e.g. "17*23".';

/**
 * The calculator every subject's tool runs: + - * / and parentheses over decimal numbers, by
 * recursive descent (no `eval`), so that the tool costs the same everywhere.
 */
export function calculate(expression: string): number {
  let at = 0;
  const peek = (): string => {
    while (expression[at] === ' ') at++;
    return expression[at] ?? '';
  };
  const number = (): number => {
    if (peek() === '(') {
      at++;
      const value = sum();
      if (peek() !== ')') throw new Error(`expected ) at ${at}`);
      at++;
      return value;
    }
    if (peek() === '-') {
      at++;
      return -number();
    }
    const match = /^\d+(?:\.\d+)?/.exec(expression.slice(at));
    if (match === null) throw new Error(`expected a number at ${at}`);
    at += match[0].length;
    return Number(match[0]);
  };
  const product = (): number => {
    let value = number();
    for (let op = peek(); op === '*' || op === '/'; op = peek()) {
      at++;
      value = op === '*' ? value * number() : value / number();
    }
    return value;
  };
  const sum = (): number => {
    let value = product();
    for (let op = peek(); op === '+' || op === '-'; op = peek()) {
      at++;
      value = op === '+' ? value + product() : value - product();
    }
    return value;
  };
  const value = sum();
  if (peek() !== '') throw new Error(`unexpected ${peek()} at ${at}`);
  return value;
}
