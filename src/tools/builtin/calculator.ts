import Type from 'typebox';
import { ToolArgumentsError } from '../../errors.js';
import { defineTool } from '../types.js';

const MAX_LENGTH = 1_000;
const MAX_DEPTH = 64;

// Maps, not object literals: a name like `constructor` must not resolve through a prototype.
const FUNCTIONS = new Map<string, (...args: number[]) => number>(
  Object.entries({
    sqrt: Math.sqrt,
    abs: Math.abs,
    round: Math.round,
    floor: Math.floor,
    ceil: Math.ceil,
    exp: Math.exp,
    ln: Math.log,
    log: Math.log10,
    log2: Math.log2,
    sin: Math.sin,
    cos: Math.cos,
    tan: Math.tan,
    min: Math.min,
    max: Math.max,
    pow: Math.pow,
  }),
);

const CONSTANTS = new Map<string, number>([
  ['pi', Math.PI],
  ['e', Math.E],
]);

/**
 * Evaluates an arithmetic expression without `eval`: a recursive-descent parser over
 * numbers, + - * / % ^ (or **), parentheses, unary signs, and a fixed set of functions and
 * constants. Length and nesting are bounded, so hostile input cannot exhaust the stack.
 */
export function evaluate(expression: string): number {
  if (expression.length > MAX_LENGTH)
    throw new ToolArgumentsError(`expression is longer than ${MAX_LENGTH} characters`);
  const parser = new Parser(expression.replace(/×/g, '*').replace(/÷/g, '/').replace(/\*\*/g, '^'));
  const value = parser.parse();
  if (!Number.isFinite(value)) throw new ToolArgumentsError(`"${expression}" has no finite value`);
  return value;
}

class Parser {
  readonly #text: string;
  #pos = 0;
  #depth = 0;

  constructor(text: string) {
    this.#text = text;
  }

  parse(): number {
    const value = this.#expression();
    this.#skipSpace();
    if (this.#pos < this.#text.length) this.#fail(`unexpected "${this.#text[this.#pos]}"`);
    return value;
  }

  #expression(): number {
    if (++this.#depth > MAX_DEPTH) this.#fail('expression is nested too deeply');
    let value = this.#term();
    for (;;) {
      const op = this.#peek();
      if (op === '+') {
        this.#pos++;
        value += this.#term();
      } else if (op === '-') {
        this.#pos++;
        value -= this.#term();
      } else break;
    }
    this.#depth--;
    return value;
  }

  #term(): number {
    let value = this.#power();
    for (;;) {
      const op = this.#peek();
      if (op === '*') {
        this.#pos++;
        value *= this.#power();
      } else if (op === '/') {
        this.#pos++;
        value /= this.#power();
      } else if (op === '%') {
        this.#pos++;
        value %= this.#power();
      } else break;
    }
    return value;
  }

  #power(): number {
    const base = this.#unary();
    if (this.#peek() !== '^') return base;
    this.#pos++;
    if (++this.#depth > MAX_DEPTH) this.#fail('expression is nested too deeply');
    const exponent = this.#power();
    this.#depth--;
    return base ** exponent;
  }

  #unary(): number {
    const op = this.#peek();
    if (op === '-' || op === '+') {
      this.#pos++;
      if (++this.#depth > MAX_DEPTH) this.#fail('expression is nested too deeply');
      const value = this.#unary();
      this.#depth--;
      return op === '-' ? -value : value;
    }
    return this.#primary();
  }

  #primary(): number {
    const c = this.#peek();
    if (c === '(') {
      this.#pos++;
      const value = this.#expression();
      this.#expect(')');
      return value;
    }
    if (c !== undefined && /[0-9.]/.test(c)) return this.#number();
    if (c !== undefined && /[a-z]/i.test(c)) return this.#identifier();
    return this.#fail(c === undefined ? 'unexpected end of expression' : `unexpected "${c}"`);
  }

  #number(): number {
    const match = /^(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?/i.exec(this.#text.slice(this.#pos));
    if (match === null) return this.#fail('malformed number');
    this.#pos += match[0].length;
    return Number(match[0]);
  }

  #identifier(): number {
    const match = /^[a-z][a-z0-9]*/i.exec(this.#text.slice(this.#pos));
    const name = match![0].toLowerCase();
    this.#pos += match![0].length;
    if (this.#peek() === '(') {
      const fn = FUNCTIONS.get(name);
      if (fn === undefined) return this.#fail(`unknown function "${name}"`);
      this.#pos++;
      const args: number[] = [];
      if (this.#peek() !== ')') {
        args.push(this.#expression());
        while (this.#peek() === ',') {
          this.#pos++;
          args.push(this.#expression());
        }
      }
      this.#expect(')');
      return fn(...args);
    }
    const constant = CONSTANTS.get(name);
    if (constant === undefined) return this.#fail(`unknown name "${name}"`);
    return constant;
  }

  #peek(): string | undefined {
    this.#skipSpace();
    return this.#text[this.#pos];
  }

  #skipSpace(): void {
    while (this.#pos < this.#text.length && /\s/.test(this.#text[this.#pos]!)) this.#pos++;
  }

  #expect(char: string): void {
    if (this.#peek() !== char) this.#fail(`expected "${char}"`);
    this.#pos++;
  }

  #fail(reason: string): never {
    throw new ToolArgumentsError(`cannot evaluate expression: ${reason} at position ${this.#pos + 1}`);
  }
}

export const calculator = defineTool({
  name: 'calculator',
  description:
    'Evaluate an arithmetic expression exactly. Supports + - * / % ^, parentheses, sqrt, abs, round, floor, ceil, exp, ln, log, sin, cos, tan, min, max, pow, pi, e.',
  parameters: Type.Object(
    { expression: Type.String({ minLength: 1, maxLength: MAX_LENGTH, description: 'for example "17*23"' }) },
    { additionalProperties: false },
  ),
  handler: ({ expression }) => ({ expression, result: evaluate(expression) }),
});
