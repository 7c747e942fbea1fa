import assert from 'node:assert/strict';
import { readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config/index.js';
import { Sandbox, type SandboxResult } from '../../src/sandbox/index.js';

// Attacks on the Python sandbox (CPython on WASI in a child process). The default isolation
// path (a plain child process, what CI machines without bubblewrap get) is used here; see
// python-bwrap.test.ts for the namespace layer.
const config = loadConfig({
  env: {},
  config: {
    sandbox: {
      python: {
        processes: 1,
        isolation: 'process',
        timeout_ms: 4_000,
        memory_mb: 64,
        max_output_bytes: 4096,
        max_scratch_bytes: 1_048_576,
      },
    },
  },
}).config;
const sandbox = new Sandbox(config.sandbox);
const run = (
  code: string,
  extra: { timeoutMs?: number; files?: { name: string; content: string }[]; returnFiles?: boolean } = {},
) => sandbox.run({ language: 'python', code, tenantId: 't', ...extra });

function failedWith(result: SandboxResult, pattern: RegExp): void {
  assert.equal(result.exit, 1, JSON.stringify(result));
  assert.equal(result.crashed, false);
  assert.match(result.stderr, pattern);
}

describe('run_python: CPython (WASI) in a child process', () => {
  before(() => sandbox.warm(['python']));
  after(() => sandbox.close());

  it('returns the last expression as JSON, prints to stdout, and exits 0', async () => {
    const result = await run(
      'import sys\nprint("hello")\nprint("oops", file=sys.stderr)\n{"n": sum(range(10)), "t": (1, None)}',
    );
    assert.equal(result.stdout, 'hello\n');
    assert.equal(result.stderr, 'oops\n');
    assert.deepEqual(result.result, { n: 45, t: [1, null] });
    assert.equal(result.exit, 0);
  });

  it('reports an exception with a traceback of the program only, and sys.exit codes', async () => {
    const result = await run('def f():\n    raise ValueError("bad input")\nf()');
    assert.equal(result.error, 'ValueError: bad input');
    failedWith(
      result,
      /File "main.py", line 3, in <module>\n {2}File "main.py", line 2, in f\nValueError: bad input\n$/,
    );
    assert.doesNotMatch(result.stderr, /_agentd/);
    assert.equal((await run('import sys\nsys.exit(3)')).exit, 3);
  });

  it('has an empty environment and no agentd process to read', async () => {
    const result = await run(
      'import os\nout = {"env": dict(os.environ)}\nfor p in ["/proc/self/environ", "/proc/1/environ", "/etc/passwd"]:\n    try:\n        open(p).read()\n        out[p] = "READ"\n    except OSError as e:\n        out[p] = type(e).__name__\nout',
    );
    assert.deepEqual(result.result, {
      env: {},
      '/proc/self/environ': 'FileNotFoundError',
      '/proc/1/environ': 'FileNotFoundError',
      '/etc/passwd': 'FileNotFoundError',
    });
  });

  it('cannot leave the scratch directory with ..', async () => {
    const result = await run('open("/scratch/../../../../etc/passwd").read()');
    failedWith(result, /PermissionError: \[Errno 76\] Capabilities insufficient/);
    const relative = await run('import os\nos.listdir("..")');
    failedWith(relative, /PermissionError/);
  });

  it('cannot make a symlink or hard link (not even one that stays inside)', async () => {
    const out = await run('import os\nopen("a", "w").write("x")\nos.symlink("/etc/passwd", "evil")');
    failedWith(out, /PermissionError: \[Errno 63\] Operation not permitted/);
    const inside = await run('import os\nopen("a", "w").write("x")\nos.symlink("a", "b")');
    failedWith(inside, /PermissionError/);
    const hard = await run('import os\nopen("a", "w").write("x")\nos.link("a", "b")');
    failedWith(hard, /PermissionError/);
  });

  it('refuses to run in a scratch directory where the host planted a symlink', async () => {
    // Another process of agentd's user plants a link in the waiting interpreter's directory.
    const root = sandbox.scratchRoot!;
    for (const processDir of readdirSync(root)) {
      for (const runDir of readdirSync(join(root, processDir)))
        symlinkSync('/etc/passwd', join(root, processDir, runDir, 'evil'));
    }
    const result = await run('open("evil").read()');
    assert.equal(result.exit, null);
    assert.match(result.error!, /refused to run: the scratch directory holds a symlink \("evil"\)/);
    const next = await run('"served by a fresh interpreter"');
    assert.equal(next.result, 'served by a fresh interpreter');
  });

  it('has no network: sockets cannot be created or connected', async () => {
    const raw = await run(
      'import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_STREAM)\ns.connect(("127.0.0.1", 6379))',
    );
    failedWith(raw, /OSError: \[Errno 58\] Not supported/);
    const resolve = await run('import socket\nsocket.create_connection(("localhost", 6379), timeout=1)');
    failedWith(resolve, /has no attribute 'getaddrinfo'/);
  });

  it('cannot fork or start a subprocess', async () => {
    failedWith(
      await run('import subprocess\nsubprocess.run(["/bin/sh", "-c", "id"])'),
      /wasi does not support processes/,
    );
    failedWith(await run('import os\nos.fork()'), /AttributeError: module 'os' has no attribute 'fork'/);
    failedWith(await run('import os\nos.system("id")'), /AttributeError/);
  });

  it('stops an infinite loop at its deadline by killing the process', async () => {
    const result = await run('while True:\n    pass', { timeoutMs: 500 });
    assert.equal(result.timed_out, true);
    assert.equal(result.error, 'timed out after 500 ms');
    assert.ok(result.duration_ms >= 500);
  });

  it('stops a catastrophic regular expression', async () => {
    const result = await run('import re\nre.match(r"^(a+)+$", "a" * 40 + "b")', { timeoutMs: 500 });
    assert.equal(result.timed_out, true);
  });

  it('ends deep recursion with RecursionError', async () => {
    failedWith(
      await run('def f(n):\n    return f(n + 1)\nf(0)'),
      /RecursionError: maximum recursion depth exceeded/,
    );
  });

  for (const [name, code] of [
    ['bytearrays', 'keep = []\nwhile True:\n    keep.append(bytearray(8 * 1024 * 1024))'],
    ['strings', 's = "x"\nwhile True:\n    s = s + s'],
    ['a list', 'x = [0] * (10 ** 9)'],
    ['one huge bytes', 'b = bytes(2 ** 30)'],
  ] as const) {
    it(`stops a memory bomb made of ${name} with MemoryError`, async () => {
      const result = await run(code);
      assert.equal(result.memory_exceeded, true, JSON.stringify(result));
      assert.equal(result.error, 'memory limit exceeded');
      assert.match(result.stderr, /MemoryError/);
    });
  }

  it('stops a program that floods its output, keeping the first bytes', async () => {
    const result = await run('while True:\n    print("spam spam spam")');
    assert.equal(result.output_truncated, true);
    assert.ok(result.stdout.startsWith('spam spam spam\n'));
    assert.ok(Buffer.byteLength(result.stdout) <= 4096);
  });

  it('takes input files, returns created files, and deletes them after the run', async () => {
    const result = await run(
      'import os\ndata = open("in.csv").read()\nopen("out.txt", "w").write(data.upper())\nos.makedirs("sub")\nopen("sub/b.bin", "wb").write(bytes([0, 255]))\nsorted(os.listdir("."))',
      {
        files: [{ name: 'in.csv', content: 'a,b\n1,2\n' }],
        returnFiles: true,
      },
    );
    assert.deepEqual(result.result, ['in.csv', 'out.txt', 'sub']);
    assert.deepEqual(
      result.files!.map((f) => [f.name, f.encoding, f.content]),
      [
        ['in.csv', 'utf8', 'a,b\n1,2\n'],
        ['out.txt', 'utf8', 'A,B\n1,2\n'],
        ['sub/b.bin', 'base64', 'AP8='],
      ],
    );
    const next = await run('import os\nos.listdir(".")');
    assert.deepEqual(next.result, []);
  });

  it('holds writes to files to the scratch quota', async () => {
    const result = await run('f = open("big", "wb")\nwhile True:\n    f.write(b"x" * 65536)');
    failedWith(result, /OSError: \[Errno 51\] No space left on device/);
  });

  it('survives a crash of the interpreter (a trap) and serves the next run', async () => {
    const result = await run('import os\nos.abort()');
    assert.equal(result.crashed, true);
    assert.match(result.error!, /the interpreter crashed/);
    const overflow = await run(
      'import sys\nsys.setrecursionlimit(10 ** 6)\nclass A:\n    def __repr__(self):\n        return repr(A())\nrepr(A())',
    );
    assert.equal(overflow.crashed, true);
    assert.equal((await run('6 * 7')).result, 42);
  });

  it('survives the death of the interpreter process mid-run and serves the next run', async () => {
    while (sandbox.stats().python!.busy > 0) await new Promise((resolve) => setTimeout(resolve, 20));
    const pending = run('while True:\n    pass', { timeoutMs: 20_000 });
    while (sandbox.stats().python!.busy === 0) await new Promise((resolve) => setTimeout(resolve, 10));
    await new Promise((resolve) => setTimeout(resolve, 50)); // the program is written; it spins
    for (const pid of sandbox.pythonPids()) process.kill(pid, 'SIGKILL');
    const result = await pending;
    assert.equal(result.crashed, true);
    assert.match(result.error!, /the Python interpreter crashed \(killed by SIGKILL\)/);
    assert.equal((await run('"alive"')).result, 'alive');
  });
});
