import { Ajv, type ValidateFunction } from 'ajv';
import type { ToolSpec } from '../llm/index.js';
import type { ToolDefinition } from './types.js';

export interface RegisteredTool {
  definition: ToolDefinition;
  validate: ValidateFunction;
  spec: ToolSpec;
}

/** All tools the runtime knows. Argument validators are compiled once, at registration. */
export class ToolRegistry {
  readonly #ajv = new Ajv({ strict: false, allErrors: false, useDefaults: true, coerceTypes: false });
  readonly #tools = new Map<string, RegisteredTool>();
  readonly #specs = new Map<string, ToolSpec[]>();

  /** Adds a tool; a second tool with the same name replaces the first only when `replace` is set. */
  register(definition: ToolDefinition<never, unknown>, options: { replace?: boolean } = {}): void {
    const tool = definition as unknown as ToolDefinition;
    if (this.#tools.has(tool.name) && options.replace !== true) {
      throw new Error(`a tool named "${tool.name}" is already registered`);
    }
    const validate = this.#ajv.compile(tool.parameters);
    const spec: ToolSpec = {
      type: 'function',
      function: { name: tool.name, description: tool.description, parameters: tool.parameters },
    };
    this.#tools.set(tool.name, { definition: tool, validate, spec });
    this.#specs.clear();
  }

  /** Removes a tool (an MCP server stopped offering it); whether it was there. */
  unregister(name: string): boolean {
    const removed = this.#tools.delete(name);
    if (removed) this.#specs.clear();
    return removed;
  }

  get(name: string): RegisteredTool | undefined {
    return this.#tools.get(name);
  }

  has(name: string): boolean {
    return this.#tools.has(name);
  }

  names(): string[] {
    return [...this.#tools.keys()];
  }

  /** The specs sent to the model for a list of tool names (cached per list). */
  specs(names: readonly string[]): ToolSpec[] {
    const key = names.join('\u0000');
    let specs = this.#specs.get(key);
    if (specs === undefined) {
      specs = [];
      for (const name of names) {
        const tool = this.#tools.get(name);
        if (tool !== undefined) specs.push(tool.spec);
      }
      this.#specs.set(key, specs);
    }
    return specs;
  }
}
