// Http1Pool when things go wrong: malformed responses, servers that close, reset or refuse, handlers
// that throw, header injection. Abort, pause, request() and close() are in http1-pool-control.test.ts.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import { Http1Pool, type Http1PoolOptions } from '../../src/llm/http1-pool.js';
import {
  assertFailedWith,
  exchange,
  gate,
  OK,
  RawHttpServer,
  type RawRequest,
  response,
  settled,
  until,
  withPool,
} from '../helpers/raw-http1.js';

describe('Http1Pool: malformed responses', () => {
  const cases: Array<[string, string, string, Http1PoolOptions?]> = [
    ['a status code that is not three digits', 'HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n', 'HTTP1_PARSE'],
    ['a status line that is not HTTP', 'SPDY/3 200 OK\r\nContent-Length: 0\r\n\r\n', 'HTTP1_PARSE'],
    ['a status line without a code', 'HTTP/1.1\r\nContent-Length: 0\r\n\r\n', 'HTTP1_PARSE'],
    ['a status code in exponent notation', 'HTTP/1.1 2e2 OK\r\nContent-Length: 0\r\n\r\n', 'HTTP1_PARSE'],
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
      // A refused connect leaves the pool holding nothing.
      await until(() => pool.stats.open === 0, 'the pool forgets the refused socket');
      assert.deepEqual(pool.stats, { open: 0, idle: 0, busy: 0, queued: 0 });
    } finally {
      await pool.close();
    }
  });

  it('with connections=1, every queued exchange to a refusing origin fails with ECONNREFUSED (none hangs)', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as import('node:net').AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const pool = new Http1Pool(`http://127.0.0.1:${port}`, { connections: 1 });
    try {
      const sent = [0, 1, 2].map((i) => exchange(pool, { path: `/${i}` }));
      for (const got of sent) {
        await settled(got);
        assert.equal((got.error as NodeJS.ErrnoException | null)?.code, 'ECONNREFUSED', String(got.error));
      }
    } finally {
      await pool.close();
    }
  });

  it('a TLS handshake that never completes fails with HTTP1_CONNECT_TIMEOUT after connectTimeoutMs', async () => {
    // A TCP server that accepts and never answers the ClientHello: the connection is never usable.
    const server = await RawHttpServer.start(() => {});
    const pool = new Http1Pool(`https://127.0.0.1:${server.port}`, { connectTimeoutMs: 200 });
    try {
      const got = await settled(exchange(pool));
      assertFailedWith(got, 'HTTP1_CONNECT_TIMEOUT');
      await until(() => server.closed === 1, 'the half-open connection is closed');
    } finally {
      await pool.close();
      await server.stop();
    }
  });
});

describe('Http1Pool: header names that are also Object.prototype members', () => {
  it('reads response headers and trailers named constructor, toString or hasOwnProperty', async () => {
    await withPool(
      (req) =>
        void req.socket.write(
          response(
            '200 OK',
            ['Constructor: c', 'toString: t', 'Transfer-Encoding: chunked'],
            '2\r\nok\r\n0\r\nhasOwnProperty: h\r\n\r\n',
          ),
        ),
      {},
      async (_server, pool) => {
        const got = await settled(exchange(pool));
        assert.equal(got.error, null, String(got.error));
        assert.equal(got.headers.constructor, 'c');
        assert.equal(got.headers.tostring, 't');
        assert.equal(got.body, 'ok');
        assert.equal(got.trailers?.hasownproperty, 'h');
      },
    );
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

  const failures: Array<[string, (req: RawRequest) => void]> = [
    ['a parse error', (req) => void req.socket.write('NOT HTTP\r\n\r\n')],
    [
      'a server close mid-body',
      (req) => void req.socket.end(response('200 OK', ['Content-Length: 9'], 'abc')),
    ],
    [
      'a reset mid-body',
      (req) => {
        req.socket.write(response('200 OK', ['Content-Length: 9'], 'abc'));
        setTimeout(() => req.socket.resetAndDestroy(), 20);
      },
    ],
  ];
  for (const [what, responder] of failures) {
    it(`a throw in onResponseError (after ${what}) is contained, and the process keeps running`, async () => {
      await withPool(
        (req) => (req.path === '/ok' ? void req.socket.write(OK) : responder(req)),
        {},
        async (_server, pool) => {
          const got = await settled(
            exchange(
              pool,
              {},
              {
                onResponseError: () => {
                  throw new Error(`thrown by onResponseError after ${what}`);
                },
              },
            ),
          );
          assert.equal(got.count('error'), 1);
          await delay(20);
          assert.equal(got.count('error'), 1);
          assert.equal((await settled(exchange(pool, { path: '/ok' }))).body, 'ok');
        },
      );
    });
  }

  it('a throw in onResponseEnd after a read-until-close body is contained', async () => {
    await withPool(
      (req) =>
        void (req.path === '/ok' ? req.socket.write(OK) : req.socket.end(response('200 OK', [], 'all'))),
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
        assert.equal(got.body, 'all');
        assert.equal(got.count('end'), 1);
        assert.equal(got.count('error'), 0);
        await delay(20);
        assert.equal((await settled(exchange(pool, { path: '/ok' }))).body, 'ok');
      },
    );
  });

  it("a throw in one exchange's onResponseEnd does not fail the queued exchange that takes its socket", async () => {
    const first = gate();
    await withPool(
      async (req) => {
        if (req.path === '/first') await first.promise;
        req.socket.write(OK);
      },
      { connections: 1 },
      async (server, pool) => {
        const thrower = exchange(
          pool,
          { path: '/first' },
          {
            onResponseEnd: () => {
              throw new Error('thrown by the first exchange');
            },
          },
        );
        await until(() => server.requests.length === 1, 'the first request arrives');
        const queued = exchange(pool, { path: '/queued' });
        first.open();
        await settled(thrower);
        await settled(queued);
        assert.equal(queued.error, null, `the queued exchange failed with: ${queued.error}`);
        assert.equal(queued.body, 'ok');
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

  it('a headers object changed between dispatches is sent as it is now', async () => {
    await withPool(
      (req) => void req.socket.write(OK),
      {},
      async (server, pool) => {
        const headers: Record<string, string> = { authorization: 'Bearer old-key' };
        await settled(exchange(pool, { headers }));
        headers.authorization = 'Bearer new-key';
        headers['x-request-id'] = 'r2';
        await settled(exchange(pool, { headers }));
        assert.deepEqual(server.requests[1]?.headers.authorization, ['Bearer new-key']);
        assert.deepEqual(server.requests[1]?.headers['x-request-id'], ['r2']);
      },
    );
  });

  it('a headers object given CR LF after an earlier dispatch still throws TypeError', async () => {
    await withPool(
      (req) => void req.socket.write(OK),
      {},
      async (server, pool) => {
        const headers: Record<string, string> = { 'x-a': 'fine' };
        await settled(exchange(pool, { headers }));
        headers['x-a'] = 'b\r\nx-injected: 1';
        assert.throws(() => exchange(pool, { headers }), TypeError);
        await delay(30);
        assert.equal(server.requests.length, 1);
      },
    );
  });
});
