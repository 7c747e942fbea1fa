import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { Sandbox, type SandboxResult } from '../../src/sandbox/index.js';

// Every case here is an attack a hostile or careless program could make. Each must end in a
// result (never a thrown error or a hung call) within its limit, and the next run must work.
const config = loadConfig({
  env: {},
  config: {
    // A generous default deadline: memory and output bombs must end by their own limits even on
    // a machine so loaded that they run slowly. Deadline tests set their own.
    sandbox: { javascript: { workers: 1, timeout_ms: 20_000, memory_mb: 48, max_output_bytes: 4096 } },
  },
}).config;
const sandbox = new Sandbox(config.sandbox);
const run = (code: string, extra: { timeoutMs?: number; memoryMb?: number; tenantId?: string } = {}) =>
  sandbox.run({ language: 'javascript', code, tenantId: extra.tenantId ?? 't', ...extra });

function assertStopped(result: SandboxResult, what: keyof SandboxResult): void {
  assert.equal(result[what], true, JSON.stringify(result));
  assert.equal(result.exit, null);
  assert.ok(result.error !== null);
}

describe('run_javascript: QuickJS in a worker', () => {
  before(() => sandbox.warm(['javascript']));
  after(() => sandbox.close());

  it('returns the last expression as JSON, console output, and exit 0', async () => {
    const result = await run(
      'console.log("hi", {a: 1}); console.error("warn"); ({ sum: [1, 2, 3].reduce((a, b) => a + b) })',
    );
    assert.deepEqual(result.result, { sum: 6 });
    assert.equal(result.stdout, 'hi {"a":1}\n');
    assert.equal(result.stderr, 'warn\n');
    assert.equal(result.exit, 0);
    assert.equal(result.error, null);
  });

  it('awaits a returned promise', async () => {
    const result = await run('(async () => { const x = await Promise.resolve(20); return x + 1; })()');
    assert.equal(result.result, 21);
  });

  it('reports an uncaught exception with its trace on stderr and exit 1', async () => {
    const result = await run('function f() { throw new TypeError("bad input") }\nf()');
    assert.equal(result.exit, 1);
    assert.equal(result.error, 'TypeError: bad input');
    assert.match(result.stderr, /TypeError: bad input\n\s+at f \(main\.js:1/);
  });

  it('has no host objects: no process, require, timers, fetch or std/os modules', async () => {
    const result = await run(
      '[typeof process, typeof require, typeof setTimeout, typeof fetch, typeof std, typeof os, typeof WebAssembly, typeof globalThis.__agentd]',
    );
    assert.deepEqual(result.result, Array(8).fill('undefined'));
  });

  it('starts every run from nothing: globals of one run are gone in the next', async () => {
    await run('globalThis.secret = "tenant A"; Object.prototype.leak = 1;');
    const result = await run('[typeof secret, ({}).leak]');
    assert.deepEqual(result.result, ['undefined', null]);
  });

  it('stops an infinite loop at its deadline', async () => {
    const result = await run('while (true) {}', { timeoutMs: 300 });
    assertStopped(result, 'timed_out');
    assert.equal(result.crashed, false);
    assert.ok(result.duration_ms >= 300);
  });

  it('stops a loop that catches the interrupt', async () => {
    const result = await run('for (;;) { try { for (;;) {} } catch (e) {} }', { timeoutMs: 300 });
    assertStopped(result, 'timed_out');
  });

  it('stops a catastrophic regular expression', async () => {
    const result = await run('/^(a+)+$/.test("a".repeat(40) + "b")', { timeoutMs: 300 });
    assertStopped(result, 'timed_out');
  });

  it('ends deep recursion with a clean stack overflow error', async () => {
    const result = await run('function f(n) { return f(n + 1) + 1 }\nf(0)');
    assert.equal(result.exit, 1);
    assert.equal(result.error, 'InternalError: stack overflow');
    assert.equal(result.crashed, false);
  });

  for (const [name, code] of [
    ['an array', 'const a = []; while (true) a.push([a.length, a.length]);'],
    ['a string', 'let s = "x".repeat(1 << 20); const keep = []; while (true) keep.push(s + keep.length);'],
    ['typed arrays', 'const keep = []; while (true) keep.push(new Float64Array(1 << 20));'],
    ['one huge ArrayBuffer', 'new ArrayBuffer(1024 * 1024 * 1024).byteLength'],
  ] as const) {
    it(`stops a memory bomb made of ${name} at the memory limit`, async () => {
      const result = await run(code);
      assert.equal(result.memory_exceeded, true, JSON.stringify(result));
      assert.equal(result.error, 'memory limit exceeded');
      assert.notEqual(result.exit, 0);
    });
  }

  it('stops a program that floods its output, keeping the first bytes', async () => {
    const result = await run('while (true) console.log("spam spam spam")');
    assertStopped(result, 'output_truncated');
    assert.ok(result.stdout.startsWith('spam spam spam\n'));
    assert.ok(Buffer.byteLength(result.stdout) <= 4096);
  });

  it('gives each call its own memory limit', async () => {
    const small = await run('new Uint8Array(40 * 1024 * 1024).length', { memoryMb: 32 });
    assert.equal(small.memory_exceeded, true);
    const large = await run('new Uint8Array(40 * 1024 * 1024).length', { memoryMb: 96 });
    assert.equal(large.result, 40 * 1024 * 1024);
  });

  it('refuses limits above the configured maximum, naming the field', async () => {
    await assert.rejects(run('1', { timeoutMs: 10_000_000 }), { code: 'AGENTD_TOOL_ARGUMENTS_INVALID' });
    await assert.rejects(run('1', { memoryMb: 100_000 }), { code: 'AGENTD_TOOL_ARGUMENTS_INVALID' });
  });

  it('terminates the worker of a cancelled run and serves the next run with a new one', async () => {
    const controller = new AbortController();
    const pending = sandbox.run(
      { language: 'javascript', code: 'while (true) {}', tenantId: 't', timeoutMs: 30_000 },
      controller.signal,
    );
    // Cancel once the program runs (before that, cancelling is refusing: the call rejects).
    while (sandbox.stats().javascript!.busy === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    controller.abort(new Error('stop'));
    const result = await pending;
    assert.equal(result.error, 'cancelled');
    const next = await run('"still serving"');
    assert.equal(next.result, 'still serving');
    assert.ok(sandbox.stats().javascript!.replaced >= 1);
  });
});
