// Http1Pool under the caller's control: abort (in flight and queued), pause/resume, request() with an
// AbortSignal or a time limit, and close() (failing what is left, leaving no handles).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Http1Pool } from '../../src/llm/http1-pool.js';
import {
  assertFailedWith,
  exchange,
  gate,
  OK,
  RawHttpServer,
  response,
  settled,
  until,
  withPool,
} from '../helpers/raw-http1.js';

describe('Http1Pool: abort', () => {
  const partial = response('200 OK', ['Content-Length: 100'], '0123456789');

  it('abort mid-body: onResponseError once with the reason, the socket destroyed, the next request on a new one', async () => {
    const rest = gate();
    await withPool(
      async (req) => {
        if (req.path === '/next') return void req.socket.write(OK);
        req.socket.write(partial);
        await rest.promise;
        if (!req.socket.destroyed) req.socket.write('x'.repeat(90));
      },
      {},
      async (server, pool) => {
        const reason = new Error('caller gave up');
        const got = exchange(
          pool,
          { path: '/stream' },
          {
            onResponseData: (controller) => {
              controller.abort(reason);
              controller.abort(new Error('second abort'));
            },
          },
        );
        await settled(got);
        assert.equal(got.error, reason);
        assert.equal(got.count('error'), 1);
        assert.equal(got.count('end'), 0);
        assert.equal(got.controller?.aborted, true);
        await until(() => server.closed === 1, 'the server sees the socket close');
        rest.open();
        await delay(20);
        assert.equal(got.count('data'), 1, 'nothing is delivered after abort');
        const next = await settled(exchange(pool, { path: '/next' }));
        assert.equal(next.body, 'ok');
        assert.equal(server.accepted, 2);
      },
    );
  });

  it('abort from outside while waiting for the head: onResponseError once, the socket destroyed', async () => {
    await withPool(
      () => {},
      {},
      async (server, pool) => {
        const got = exchange(pool);
        await until(() => server.requests.length === 1, 'the request arrives');
        const reason = new Error('deadline');
        got.controller?.abort(reason);
        await settled(got);
        assert.equal(got.error, reason);
        assert.equal(got.count('error'), 1);
        await until(() => server.closed === 1, 'the server sees the socket close');
        await until(() => pool.stats.open === 0, 'the pool forgets the socket');
        assert.deepEqual(pool.stats, { open: 0, idle: 0, busy: 0, queued: 0 });
      },
    );
  });

  it('abort inside onResponseStart: no data is delivered, onResponseError once with the reason', async () => {
    await withPool(
      (req) => void req.socket.write(response('200 OK', ['Content-Length: 5'], 'hello')),
      {},
      async (server, pool) => {
        const reason = new Error('status not wanted');
        const got = await settled(
          exchange(pool, {}, { onResponseStart: (controller) => controller.abort(reason) }),
        );
        assert.equal(got.error, reason);
        assert.equal(got.count('data'), 0);
        assert.equal(got.count('error'), 1);
        assert.equal(got.count('end'), 0);
        await until(() => server.closed === 1, 'the server sees the socket close');
      },
    );
  });

  it('abort while queued: onResponseError once with the reason, and the request is never sent', async () => {
    const first = gate();
    await withPool(
      async (req) => {
        if (req.path === '/held') await first.promise;
        req.socket.write(OK);
      },
      { connections: 1 },
      async (server, pool) => {
        const held = exchange(pool, { path: '/held' });
        await until(() => server.requests.length === 1, 'the first request arrives');
        const queued = exchange(pool, { path: '/queued' });
        assert.equal(pool.stats.queued, 1);
        const reason = new Error('not needed any more');
        queued.controller?.abort(reason);
        await settled(queued);
        assert.equal(queued.error, reason);
        assert.equal(queued.count('error'), 1);
        assert.equal(queued.count('responseStart'), 0);
        assert.equal(pool.stats.queued, 0);
        first.open();
        await settled(held);
        assert.equal((await settled(exchange(pool, { path: '/next' }))).body, 'ok');
        assert.deepEqual(server.paths, ['/held', '/next']);
        assert.equal(server.accepted, 1);
      },
    );
  });
});

describe('Http1Pool: pause and resume', () => {
  it('pause stops delivery while the server writes more; resume delivers all of it', async () => {
    const more = gate();
    let moreWritten = false;
    await withPool(
      async (req) => {
        req.socket.write(response('200 OK', ['Transfer-Encoding: chunked'], '5\r\nfirst\r\n'));
        await more.promise;
        for (let i = 0; i < 5; i++) {
          req.socket.write(`1\r\n${i}\r\n`);
          await delay(2);
        }
        await new Promise<void>((resolve) => req.socket.write('0\r\n\r\n', () => resolve()));
        moreWritten = true;
      },
      {},
      async (_server, pool) => {
        const got = exchange(
          pool,
          {},
          {
            onResponseData: (controller) => {
              if (got.count('data') === 1) controller.pause();
            },
          },
        );
        await until(() => got.count('data') === 1, 'the first chunk arrives');
        assert.equal(got.controller?.paused, true);
        more.open();
        await until(() => moreWritten, 'the server writes the rest');
        await delay(100);
        assert.equal(got.count('data'), 1, 'no data while paused');
        assert.equal(got.count('end'), 0, 'no end while paused');
        got.controller?.resume();
        assert.equal(got.controller?.paused, false);
        await settled(got);
        assert.equal(got.error, null);
        assert.equal(got.body, 'first01234');
        assert.equal(got.count('end'), 1);
      },
    );
  });

  it('pause before the reply (in onRequestStart) holds everything back until resume', async () => {
    await withPool(
      (req) => void req.socket.write(response('200 OK', ['Content-Length: 5'], 'hello')),
      {},
      async (server, pool) => {
        const got = exchange(pool, {}, { onRequestStart: (controller) => controller.pause() });
        await until(() => server.requests.length === 1, 'the request is sent while paused');
        await delay(100);
        assert.deepEqual(got.events, ['requestStart'], 'nothing delivered while paused');
        got.controller?.resume();
        await settled(got);
        assert.equal(got.statusCode, 200);
        assert.equal(got.body, 'hello');
      },
    );
  });
});

describe('Http1Pool: request()', () => {
  it('returns status, headers and the whole body', async () => {
    await withPool(
      (req) =>
        void req.socket.write(
          response(
            '201 Created',
            ['Transfer-Encoding: chunked', 'X-Id: 7'],
            '3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n',
          ),
        ),
      {},
      async (_server, pool) => {
        const res = await pool.request({ method: 'POST', path: '/', headers: {}, body: 'x' });
        assert.equal(res.statusCode, 201);
        assert.equal(res.headers['x-id'], '7');
        assert.ok(Buffer.isBuffer(res.body));
        assert.equal(res.body.toString(), 'abcdef');
      },
    );
  });

  it('rejects with the reason when its AbortSignal fires, and destroys the socket', async () => {
    await withPool(
      () => {},
      {},
      async (server, pool) => {
        const controller = new AbortController();
        const pending = pool.request(
          { method: 'GET', path: '/', headers: {} },
          { signal: controller.signal },
        );
        await until(() => server.requests.length === 1, 'the request arrives');
        const reason = new Error('user cancelled');
        controller.abort(reason);
        await assert.rejects(pending, (error) => error === reason || (error as Error).name === 'AbortError');
        await until(() => server.closed === 1, 'the server sees the socket close');
      },
    );
  });

  it('rejects at once on an already-aborted signal and sends nothing', async () => {
    await withPool(
      (req) => void req.socket.write(OK),
      {},
      async (server, pool) => {
        const signal = AbortSignal.abort(new Error('too late'));
        await assert.rejects(pool.request({ method: 'GET', path: '/', headers: {} }, { signal }));
        await delay(30);
        assert.equal(server.requests.length, 0);
      },
    );
  });

  it('rejects when timeoutMs passes without a complete response, and destroys the socket', async () => {
    await withPool(
      (req) => void req.socket.write(response('200 OK', ['Content-Length: 10'], 'abc')),
      {},
      async (server, pool) => {
        await assert.rejects(pool.request({ method: 'GET', path: '/', headers: {} }, { timeoutMs: 150 }));
        await until(() => server.closed === 1, 'the server sees the socket close');
      },
    );
  });
});

describe('Http1Pool: close()', () => {
  it('fails active and queued exchanges with HTTP1_POOL_CLOSED and destroys every socket', async () => {
    const server = await RawHttpServer.start((req) => {
      if (req.path === '/ok') req.socket.write(OK);
    });
    const pool = new Http1Pool(server.origin, { connections: 2 });
    try {
      await settled(exchange(pool, { path: '/ok' }));
      const active = exchange(pool, { path: '/held-1' });
      const other = exchange(pool, { path: '/held-2' });
      const queued = exchange(pool, { path: '/queued' });
      await until(() => server.requests.length === 3, 'both held requests arrive');
      assert.equal(pool.stats.queued, 1);
      await pool.close();
      for (const got of [active, other, queued]) {
        await settled(got);
        assertFailedWith(got, 'HTTP1_POOL_CLOSED');
      }
      await until(() => server.closed === 2, 'the server sees both sockets close');
      assert.deepEqual(pool.stats, { open: 0, idle: 0, busy: 0, queued: 0 });
    } finally {
      await server.stop();
    }
  });

  it('a handler whose onResponseError throws does not stop close() failing the rest', async () => {
    const server = await RawHttpServer.start(() => {});
    const pool = new Http1Pool(server.origin, { connections: 1 });
    try {
      const active = exchange(pool, { path: '/active' });
      await until(() => server.requests.length === 1, 'the active request arrives');
      const thrower = exchange(
        pool,
        { path: '/queued-1' },
        {
          onResponseError: () => {
            throw new Error('thrown while the pool closes');
          },
        },
      );
      const after = exchange(pool, { path: '/queued-2' });
      try {
        await pool.close();
      } catch {
        // close() itself throwing is reported by the assertions below (what it left undone).
      }
      for (const got of [active, thrower, after]) {
        await settled(got);
        assertFailedWith(got, 'HTTP1_POOL_CLOSED');
      }
      await until(() => server.closed === 1, 'the active socket is destroyed');
    } finally {
      await pool.close().catch(() => {});
      await server.stop();
    }
  });

  it('destroys idle sockets', async () => {
    const server = await RawHttpServer.start((req) => void req.socket.write(OK));
    const pool = new Http1Pool(server.origin);
    try {
      await settled(exchange(pool));
      assert.equal(pool.stats.idle, 1);
      await pool.close();
      await until(() => server.closed === 1, 'the server sees the idle socket close');
    } finally {
      await server.stop();
    }
  });

  const modulePath = pathToFileURL(
    fileURLToPath(new URL('../../src/llm/http1-pool.ts', import.meta.url)),
  ).href;
  const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

  /** Runs `source` as a child process (tsx) that must exit on its own; returns its stdout. */
  async function runChild(source: string, args: string[]): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), 'agentd-http1-child-'));
    const file = join(dir, 'child.mts');
    writeFileSync(file, source);
    try {
      return await new Promise<string>((resolve, reject) => {
        execFile(
          process.execPath,
          ['--import', 'tsx', file, ...args],
          { cwd: repoRoot, timeout: 8000, killSignal: 'SIGKILL' },
          (error, stdout, stderr) => {
            if (error) reject(new Error(`child did not exit cleanly (${error.message}): ${stderr}`));
            else resolve(stdout);
          },
        );
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it('after close() no handle is left: a process with held, queued and idle exchanges exits by itself', async () => {
    const server = await RawHttpServer.start((req) => {
      if (req.path === '/ok') req.socket.write(OK);
    });
    try {
      const stdout = await runChild(
        `import { Http1Pool } from '${modulePath}';
const pool = new Http1Pool(process.argv[2], { connections: 2 });
const first = await pool.request({ method: 'GET', path: '/ok', headers: {} });
const codes = ['/held', '/queued-1', '/queued-2'].map((path) =>
  pool.request({ method: 'GET', path, headers: {} }).then(() => 'resolved', (e) => e.code));
await new Promise((r) => setTimeout(r, 100));
await pool.close();
console.log(JSON.stringify({ status: first.statusCode, codes: await Promise.all(codes) }));
`,
        [server.origin],
      );
      assert.deepEqual(JSON.parse(stdout), {
        status: 200,
        codes: ['HTTP1_POOL_CLOSED', 'HTTP1_POOL_CLOSED', 'HTTP1_POOL_CLOSED'],
      });
    } finally {
      await server.stop();
    }
  });

  it('idle sockets do not keep the process alive (no close() call)', async () => {
    const server = await RawHttpServer.start((req) => void req.socket.write(OK));
    try {
      const stdout = await runChild(
        `import { Http1Pool } from '${modulePath}';
const pool = new Http1Pool(process.argv[2]);
const res = await pool.request({ method: 'GET', path: '/ok', headers: {} });
console.log(JSON.stringify({ status: res.statusCode, idle: pool.stats.idle }));
`,
        [server.origin],
      );
      assert.deepEqual(JSON.parse(stdout), { status: 200, idle: 1 });
      assert.equal(server.accepted, 1);
    } finally {
      await server.stop();
    }
  });
});
