import assert from 'node:assert/strict';
import { readFileSync, readlinkSync } from 'node:fs';
import { after, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { Sandbox } from '../../src/sandbox/index.js';
import { Isolation } from '../../src/sandbox/python/isolation.js';

// The optional bubblewrap layer. CI machines without bubblewrap skip this; the Python sandbox
// then runs as a plain child process (python.test.ts covers that path).
const available = (() => {
  try {
    return Isolation.choose('auto').level === 'bwrap';
  } catch {
    return false;
  }
})();

/** The direct children of a process (bwrap → its sandboxed child). */
function children(pid: number): number[] {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
    return text === '' ? [] : text.split(' ').map(Number);
  } catch {
    return []; // the process is gone
  }
}

describe(
  'run_python under bubblewrap',
  { skip: available ? false : 'bubblewrap is not installed or cannot run here' },
  () => {
    const config = loadConfig({
      env: {},
      config: { sandbox: { python: { processes: 1, isolation: 'bwrap', timeout_ms: 4_000, memory_mb: 64 } } },
    }).config;
    const sandbox = new Sandbox(config.sandbox);
    after(() => sandbox.close());

    it('runs programs, in its own network, PID and mount namespaces', async () => {
      const result = await sandbox.run({ language: 'python', code: 'print("inside")\n6 * 7', tenantId: 't' });
      assert.equal(result.result, 42);
      assert.equal(result.stdout, 'inside\n');
      assert.equal(sandbox.stats().python!.isolation, 'bwrap');
      const [bwrap] = sandbox.pythonPids();
      // bwrap's own child is the namespace's init; the interpreter host is below it.
      const inner = children(bwrap!).flatMap((pid) => [pid, ...children(pid)]);
      assert.ok(inner.length > 0, 'the sandboxed process is visible from outside');
      for (const ns of ['net', 'pid', 'mnt']) {
        const own = readlinkSync(`/proc/self/ns/${ns}`);
        for (const pid of inner)
          assert.notEqual(readlinkSync(`/proc/${pid}/ns/${ns}`), own, `${ns} namespace of ${pid}`);
      }
    });

    it('ends an infinite loop at its deadline and serves the next run', async () => {
      const result = await sandbox.run({
        language: 'python',
        code: 'while True:\n    pass',
        tenantId: 't',
        timeoutMs: 500,
      });
      assert.equal(result.timed_out, true);
      const next = await sandbox.run({ language: 'python', code: '"next"', tenantId: 't' });
      assert.equal(next.result, 'next');
    });
  },
);
