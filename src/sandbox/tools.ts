import Type from 'typebox';
import { defineTool, type ToolDefinition } from '../tools/index.js';
import type { Sandbox } from './sandbox.js';
import type { Language } from './types.js';

/** Longest program accepted, in characters. */
const MAX_CODE_CHARS = 200_000;
/** Time a call may wait for a free interpreter on top of its own timeout before the tool gives up. */
const QUEUE_ALLOWANCE_MS = 15_000;

/** The largest value of a limit across the language's defaults and every agent's overrides. */
function largest(sandbox: Sandbox, language: Language, key: 'max_timeout_ms' | 'max_memory_mb'): number {
  let max = sandbox.config[language][key];
  for (const agent of Object.values(sandbox.config.agents)) max = Math.max(max, agent[language]?.[key] ?? 0);
  return max;
}

function describeLimits(sandbox: Sandbox, language: Language): string {
  const l = sandbox.config[language];
  return (
    `Limits: ${l.timeout_ms} ms unless timeout_ms asks for more (up to ${l.max_timeout_ms}), ` +
    `${l.memory_mb} MB of memory unless memory_mb asks for more (up to ${l.max_memory_mb}), ` +
    `${l.max_output_bytes} bytes each of stdout and stderr (a run that writes more is stopped). ` +
    'The answer is {stdout, stderr, result, exit, timed_out, memory_exceeded, output_truncated, crashed, error, duration_ms}.'
  );
}

/** `run_javascript` and `run_python`, backed by `sandbox`. Agents get them only by listing them. */
export function createSandboxTools(sandbox: Sandbox): ToolDefinition<never, unknown>[] {
  const runJavascript = defineTool({
    name: 'run_javascript',
    description:
      'Run JavaScript (ES2023, QuickJS) in an isolated sandbox and get its output. The value of the last ' +
      'expression is returned as `result` (JSON); a returned promise is awaited. console.log/info/debug write ' +
      'to stdout, console.warn/error to stderr. There is no require/import, filesystem, network, timers or ' +
      `process: only the language and its built-in objects. Each run starts from nothing. ${describeLimits(sandbox, 'javascript')}`,
    parameters: Type.Object(
      {
        code: Type.String({ minLength: 1, maxLength: MAX_CODE_CHARS, description: 'the program' }),
        timeout_ms: Type.Optional(
          Type.Integer({ minimum: 1, maximum: largest(sandbox, 'javascript', 'max_timeout_ms') }),
        ),
        memory_mb: Type.Optional(
          Type.Integer({ minimum: 1, maximum: largest(sandbox, 'javascript', 'max_memory_mb') }),
        ),
      },
      { additionalProperties: false },
    ),
    timeoutMs: largest(sandbox, 'javascript', 'max_timeout_ms') + QUEUE_ALLOWANCE_MS,
    handler: ({ code, timeout_ms, memory_mb }, ctx) =>
      sandbox.run(
        {
          language: 'javascript',
          code,
          tenantId: ctx.tenantId,
          agent: ctx.agent,
          timeoutMs: timeout_ms,
          memoryMb: memory_mb,
        },
        ctx.signal,
      ),
  });

  const py = sandbox.config.python;
  const runPython = defineTool({
    name: 'run_python',
    description:
      'Run Python 3.12 (standard library only, no packages can be installed) in an isolated sandbox and get its ' +
      'output. The value of a final expression statement is returned as `result` (JSON, or its repr() when ' +
      'not JSON-serialisable); print() writes to stdout. The working directory /scratch is empty apart from ' +
      '`files`, and is deleted after the run; set return_files to get back what the program wrote there. There ' +
      `is no network, no subprocess and no environment. Each run starts a fresh interpreter. ${describeLimits(sandbox, 'python')}`,
    parameters: Type.Object(
      {
        code: Type.String({ minLength: 1, maxLength: MAX_CODE_CHARS, description: 'the program' }),
        timeout_ms: Type.Optional(
          Type.Integer({ minimum: 1, maximum: largest(sandbox, 'python', 'max_timeout_ms') }),
        ),
        memory_mb: Type.Optional(
          Type.Integer({ minimum: 1, maximum: largest(sandbox, 'python', 'max_memory_mb') }),
        ),
        files: Type.Optional(
          Type.Array(
            Type.Object(
              {
                name: Type.String({
                  minLength: 1,
                  maxLength: 100,
                  description: 'a plain file name, no directories',
                }),
                content: Type.String(),
                encoding: Type.Optional(Type.Union([Type.Literal('utf8'), Type.Literal('base64')])),
              },
              { additionalProperties: false },
            ),
            {
              maxItems: py.max_files,
              description: `files placed in /scratch before the run (each up to ${py.max_file_bytes} bytes)`,
            },
          ),
        ),
        return_files: Type.Optional(
          Type.Boolean({
            description: `return the files left in /scratch (up to ${py.max_files}, each cut at ${py.max_file_bytes} bytes)`,
          }),
        ),
      },
      { additionalProperties: false },
    ),
    timeoutMs: largest(sandbox, 'python', 'max_timeout_ms') + QUEUE_ALLOWANCE_MS,
    handler: ({ code, timeout_ms, memory_mb, files, return_files }, ctx) =>
      sandbox.run(
        {
          language: 'python',
          code,
          tenantId: ctx.tenantId,
          agent: ctx.agent,
          timeoutMs: timeout_ms,
          memoryMb: memory_mb,
          files,
          returnFiles: return_files,
        },
        ctx.signal,
      ),
  });
  return [runJavascript, runPython] as unknown as ToolDefinition<never, unknown>[];
}

/** The language a sandbox tool runs, or undefined for any other tool name. */
export function sandboxLanguage(tool: string): Language | undefined {
  return tool === 'run_javascript' ? 'javascript' : tool === 'run_python' ? 'python' : undefined;
}
