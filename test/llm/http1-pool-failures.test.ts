// Http1Pool when things go wrong: malformed responses, servers that close or reset, refused connects,
// handlers that throw, header injection, aborts, pause/resume, request() cancellation and close().
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Http1Error, Http1Pool, type Http1PoolOptions } from '../../src/llm/http1-pool.js';
import {
  type Exchange,
  exchange,
  gate,
  RawHttpServer,
  type Responder,
  response,
  settled,
  until,
} from '../helpers/raw-http1.js';

async function withPool(
  responder: Responder,
  options: Http1PoolOptions,
  body: (server: RawHttpServer, pool: Http1Pool) => Promise<void>,
): Promise<void> {
  const server = await RawHttpServer.start(responder);
  const pool = new Http1Pool(server.origin, options);
  try {
    await body(server, pool);
  } finally {
    await pool.close();
    await server.stop();
  }
}

const OK = response('200 OK', ['Content-Length: 2'], 'ok');

/** Asserts the exchange failed exactly once, with an Http1Error of `code`, and never ended. */
function assertFailedWith(got: Exchange, code: string, what = ''): void {
  assert.ok(got.error instanceof Http1Error, `${what}: expected Http1Error ${code}, got ${got.error}`);
  assert.equal((got.error as Http1Error).code, code, what);
  assert.equal(got.count('error'), 1, what);
  assert.equal(got.count('end'), 0, what);
}

describe('Http1Pool: malformed responses', () => {
  const cases: Array<[string, string, string, Http1PoolOptions?]> = [
    ['a status code that is not three digits', 'HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n', 'HTTP1_PARSE'],
    ['a status line that is not HTTP', 'SPDY/3 200 OK\r\nContent-Length: 0\r\n\r\n', 'HTTP1_PARSE'],
    ['a status line without a code', 'HTTP/1.1\r\nContent-Length: 0\r\n\r\n', 'HTTP1_PARSE'],
    [
      'a header line without a colon',
      response('200 OK', ['Content-Length: 0', 'NoColonHere']),
      'HTTP1_PARSE',
    ],
    ['whitespace before a colon', response('200 OK', ['X-Foo : bar', 'Content-Length: 0']), 'HTTP1_PARSE'],
    [
      'a chunk size that is not hex',
      response('200 OK', ['Transfer-Encoding: chunked'], 'zz\r\nhello\r\n0\r\n\r\n'),
      'HTTP1_PARSE',
    ],
    [
      'an empty chunk size',
      response('200 OK', ['Transfer-Encoding: chunked'], '\r\nhello\r\n0\r\n\r\n'),
      'HTTP1_PARSE',
    ],
    [
      'a chunk size too large to represent',
      response('200 OK', ['Transfer-Encoding: chunked'], 'fffffffffffffffffff\r\nhello'),
      'HTTP1_PARSE',
    ],
    [
      'no CRLF after chunk data',
      response('200 OK', ['Transfer-Encoding: chunked'], '5\r\nhelloXX0\r\n\r\n'),
      'HTTP1_PARSE',
    ],
    [
      'differing content-length values',
      response('200 OK', ['Content-Length: 5', 'Content-Length: 6'], 'hello!'),
      'HTTP1_PARSE',
    ],
    ['a content-length with a non-digit', response('200 OK', ['Content-Length: 5x'], 'hello'), 'HTTP1_PARSE'],
    ['a negative content-length', response('200 OK', ['Content-Length: -1'], 'hello'), 'HTTP1_PARSE'],
    ['a content-length with a sign', response('200 OK', ['Content-Length: +5'], 'hello'), 'HTTP1_PARSE'],
    [
      'a 101 Switching Protocols',
      response('101 Switching Protocols', ['Upgrade: websocket', 'Connection: Upgrade']),
      'HTTP1_PARSE',
    ],
    [
      'a head over maxHeaderBytes',
      response('200 OK', [`X-Big: ${'a'.repeat(2000)}`, 'Content-Length: 0']),
      'HTTP1_HEADERS_TOO_LARGE',
      { maxHeaderBytes: 1024 },
    ],
  ];
  for (const [what, reply, code, options] of cases) {
    it(`fails on ${what} with ${code} and destroys the socket`, async () => {
      await withPool(
        (req) => void req.socket.write(reply),
        options ?? {},
        async (server, pool) => {
          const got = await settled(exchange(pool));
          assertFailedWith(got, code, what);
          await until(() => server.closed === 1, 'the client destroys the socket');
        },
      );
    });
  }

  it('fails with HTTP1_HEADERS_TOO_LARGE on a head that never ends (default 64 KiB), rather than buffering', async () => {
    let stop = false;
    await withPool(
      async (req) => {
        req.socket.write('HTTP/1.1 200 OK\r\n');
        for (let i = 0; i < 200 && !stop && !req.socket.destroyed; i++) {
          req.socket.write(`X-Filler-${i}: ${'b'.repeat(1000)}\r\n`);
          if (i % 20 === 0) await delay(1);
        }
      },
      {},
      async (server, pool) => {
        const got = await settled(exchange(pool));
        stop = true;
        assertFailedWith(got, 'HTTP1_HEADERS_TOO_LARGE');
        await until(() => server.closed === 1, 'the client destroys the socket');
      },
    );
  });
});

describe('Http1Pool: servers that close, reset or refuse', () => {
  const closes: Array<[string, string]> = [
    ['mid-body (content-length)', response('200 OK', ['Content-Length: 10'], 'abc')],
    ['mid-body (chunked)', response('200 OK', ['Transfer-Encoding: chunked'], '5\r\nhel')],
    [
      'mid-body (chunked, between chunks)',
      response('200 OK', ['Transfer-Encoding: chunked'], '5\r\nhello\r\n'),
    ],
    ['mid-head', 'HTTP/1.1 200 OK\r\nContent-Le'],
    ['before answering', ''],
  ];
  for (const [when, partial] of closes) {
    it(`a server close ${when} fails the exchange with HTTP1_CLOSED`, async () => {
      await withPool(
        (req) => void req.socket.end(partial),
        {},
        async (_server, pool) => {
          const got = await settled(exchange(pool));
          assertFailedWith(got, 'HTTP1_CLOSED', when);
        },
      );
    });
  }

  it('a reset mid-body passes through as ECONNRESET', async () => {
    await withPool(
      async (req) => {
        req.socket.write(response('200 OK', ['Content-Length: 10'], 'abc'));
        await delay(20);
        req.socket.resetAndDestroy();
      },
      {},
      async (_server, pool) => {
        const got = await settled(exchange(pool));
        assert.equal((got.error as NodeJS.ErrnoException | null)?.code, 'ECONNRESET', String(got.error));
        assert.equal(got.count('error'), 1);
        assert.equal(got.count('end'), 0);
      },
    );
  });

  it('a refused connect passes through as ECONNREFUSED', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as import('node:net').AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const pool = new Http1Pool(`http://127.0.0.1:${port}`);
    try {
      const got = await settled(exchange(pool));
      assert.equal((got.error as NodeJS.ErrnoException | null)?.code, 'ECONNREFUSED', String(got.error));
      assert.equal(got.count('error'), 1);
      assert.equal(got.count('responseStart'), 0);
      // A refused connect leaves the pool usable and holding nothing.
      assert.deepEqual(pool.stats, { open: 0, idle: 0, busy: 0, queued: 0 });
    } finally {
      await pool.close();
    }
  });
});

describe('Http1Pool: handlers that throw', () => {
  for (const where of ['onResponseStart', 'onResponseData'] as const) {
    it(`a throw in ${where} fails the exchange with that error, and the pool keeps working`, async () => {
      await withPool(
        (req) => void req.socket.write(response('200 OK', ['Content-Length: 5'], 'hello')),
        {},
        async (server, pool) => {
          const thrown = new Error(`thrown by ${where}`);
          const got = await settled(
            exchange(
              pool,
              { path: '/throws' },
              {
                [where]: () => {
                  throw thrown;
                },
              },
            ),
          );
          assert.equal(got.error, thrown);
          assert.equal(got.count('error'), 1);
          assert.equal(got.count('end'), 0);
          const next = await settled(exchange(pool));
          assert.equal(next.error, null);
          assert.equal(next.body, 'hello');
          assert.equal(server.requests.length, 2);
        },
      );
    });
  }

  it('a throw in onResponseEnd does not also report an error, and the process keeps running', async () => {
    await withPool(
      (req) => void req.socket.write(OK),
      {},
      async (_server, pool) => {
        const got = await settled(
          exchange(
            pool,
            {},
            {
              onResponseEnd: () => {
                throw new Error('thrown by onResponseEnd');
              },
            },
          ),
        );
        assert.equal(got.count('end'), 1);
        assert.equal(got.count('error'), 0, 'at most one of End/Error');
        assert.equal((await settled(exchange(pool))).body, 'ok');
      },
    );
  });

  it('a throw in onResponseError is contained, and the process keeps running', async () => {
    await withPool(
      (req) => void req.socket.write('NOT HTTP\r\n\r\n'),
      {},
      async (_server, pool) => {
        const got = await settled(
          exchange(
            pool,
            {},
            {
              onResponseError: () => {
                throw new Error('thrown by onResponseError');
              },
            },
          ),
        );
        assert.equal(got.count('error'), 1);
        await delay(20);
        assert.equal(got.count('error'), 1);
      },
    );
  });
});

describe('Http1Pool: header injection', () => {
  const bad: Array<[string, Record<string, string>]> = [
    ['CR LF in a value', { 'x-a': 'b\r\nx-injected: 1' }],
    ['a lone LF in a value', { 'x-a': 'b\nx-injected: 1' }],
    ['a lone CR in a value', { 'x-a': 'b\rx' }],
    ['CR LF in a name', { 'x-a\r\nx-injected': '1' }],
  ];
  for (const [what, headers] of bad) {
    it(`throws TypeError at dispatch for ${what}, and sends nothing`, async () => {
      await withPool(
        (req) => void req.socket.write(OK),
        {},
        async (server, pool) => {
          const seen: string[] = [];
          assert.throws(
            () =>
              pool.dispatch(
                { method: 'GET', path: '/', headers },
                {
                  onRequestStart: () => seen.push('requestStart'),
                  onResponseStart: () => seen.push('responseStart'),
                  onResponseData: () => seen.push('data'),
                  onResponseEnd: () => seen.push('end'),
                  onResponseError: () => seen.push('error'),
                },
              ),
            TypeError,
          );
          await assert.rejects(async () => pool.request({ method: 'GET', path: '/', headers }), TypeError);
          await delay(30);
          assert.equal(server.accepted, 0);
          assert.deepEqual(seen, []);
        },
      );
    });
  }
});

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
        assert.deepEqual(pool.stats, { open: 0, idle: 0, busy: 0, queued: 0 });
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
