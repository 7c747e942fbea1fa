// Http1Pool over real sockets: request bytes, response framing, connection reuse, the connection cap,
// and realistic servers (node:http, https with a test-made CA, an SSE stream). Failures, aborts, pause
// and close are in http1-pool-failures.test.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as delay } from 'node:timers/promises';
import type { TLSSocket } from 'node:tls';
import { Http1Pool } from '../../src/llm/http1-pool.js';
import {
  exchange,
  gate,
  OK,
  type RawRequest,
  response,
  settled,
  until,
  withPool,
} from '../helpers/raw-http1.js';
import { selfSignedCertificate } from '../helpers/tls.js';

/** A responder that writes `bytes` in two reads, split at the byte the request's path names (`/17`). */
function splitAtRequestedByte(bytes: Buffer): (req: RawRequest) => Promise<void> {
  return async (req) => {
    const at = Number(req.path.slice(1));
    req.socket.write(bytes.subarray(0, at));
    await delay(2);
    req.socket.write(bytes.subarray(at));
  };
}

describe('Http1Pool: the request on the wire', () => {
  it('sends the request line, host, the given headers, the body and its content-length', async () => {
    await withPool(
      (req) => void req.socket.write(OK),
      {},
      async (server, pool) => {
        const sent = exchange(pool, {
          method: 'POST',
          path: '/v1/chat/completions?x=1',
          headers: { authorization: 'Bearer k', accept: 'text/event-stream' },
          body: '{"q":"héllo"}',
        });
        assert.deepEqual(sent.events, ['requestStart'], 'onRequestStart runs synchronously inside dispatch');
        await settled(sent);
        assert.equal(sent.error, null);
        const [req] = server.requests;
        assert.ok(req);
        assert.ok(req.head.startsWith('POST /v1/chat/completions?x=1 HTTP/1.1\r\n'), req.head);
        assert.deepEqual(req.headers.host, [`127.0.0.1:${server.port}`]);
        assert.deepEqual(req.headers.authorization, ['Bearer k']);
        assert.deepEqual(req.headers.accept, ['text/event-stream']);
        // content-length counts bytes, not UTF-16 code units ('é' is two bytes).
        assert.deepEqual(req.headers['content-length'], ['14']);
        assert.equal(req.body.toString('utf8'), '{"q":"héllo"}');
      },
    );
  });

  it('sends content-length: 0 without a body, and a Buffer body byte for byte', async () => {
    await withPool(
      (req) => void req.socket.write(OK),
      {},
      async (server, pool) => {
        await settled(exchange(pool, { method: 'GET', path: '/a' }));
        const bytes = Buffer.from([0, 1, 2, 0xff, 0xfe, 13, 10, 13, 10]);
        await settled(exchange(pool, { method: 'PUT', path: '/b', body: bytes }));
        const [a, b] = server.requests;
        assert.deepEqual(a?.headers['content-length'], ['0']);
        assert.deepEqual(b?.headers['content-length'], ['9']);
        assert.deepEqual(b?.body, bytes);
      },
    );
  });

  it('ignores host, content-length, connection and transfer-encoding given by the caller', async () => {
    await withPool(
      (req) => void req.socket.write(OK),
      {},
      async (server, pool) => {
        const sent = await settled(
          exchange(pool, {
            method: 'POST',
            headers: {
              host: 'evil.example',
              'content-length': '999',
              connection: 'close',
              'transfer-encoding': 'chunked',
              'x-kept': 'yes',
            },
            body: 'abc',
          }),
        );
        assert.equal(sent.error, null);
        const [req] = server.requests;
        assert.deepEqual(req?.headers.host, [`127.0.0.1:${server.port}`]);
        assert.deepEqual(req?.headers['content-length'], ['3']);
        assert.equal(req?.headers['transfer-encoding'], undefined);
        assert.ok(!(req?.headers.connection ?? []).some((v) => /close/i.test(v)), req?.head);
        assert.deepEqual(req?.headers['x-kept'], ['yes']);
        assert.equal(req?.body.toString(), 'abc');
      },
    );
  });

  it('ignores those four names in any letter case (HTTP names are case-insensitive)', async () => {
    await withPool(
      (req) => void req.socket.write(OK),
      {},
      async (server, pool) => {
        await settled(
          exchange(pool, {
            method: 'POST',
            headers: { Host: 'evil.example', 'Content-Length': '999', 'Transfer-Encoding': 'chunked' },
            body: 'abc',
          }),
        );
        const [req] = server.requests;
        assert.deepEqual(req?.headers.host, [`127.0.0.1:${server.port}`], req?.head);
        assert.deepEqual(req?.headers['content-length'], ['3'], req?.head);
        assert.equal(req?.headers['transfer-encoding'], undefined, req?.head);
      },
    );
  });
});

describe('Http1Pool: response framing', () => {
  it('reads a content-length body; header names are lower-case and repeats become arrays', async () => {
    const reply = response(
      '200 OK',
      ['Content-Type: text/plain', 'Set-Cookie: a=1', 'Set-Cookie: b=2', 'Content-Length: 11'],
      'hello world',
    );
    await withPool(
      (req) => void req.socket.write(reply),
      {},
      async (_server, pool) => {
        const got = await settled(exchange(pool));
        assert.equal(got.error, null);
        assert.equal(got.statusCode, 200);
        assert.equal(got.headers['content-type'], 'text/plain');
        assert.deepEqual(got.headers['set-cookie'], ['a=1', 'b=2']);
        assert.equal(got.body, 'hello world');
        assert.deepEqual(got.trailers, {});
        assert.equal(got.count('responseStart'), 1);
        assert.equal(got.count('end'), 1);
        assert.equal(got.count('error'), 0);
      },
    );
  });

  it('accepts repeated equal content-length values and an empty content-length body', async () => {
    const replies = [
      response('200 OK', ['Content-Length: 5', 'Content-Length: 5'], 'hello'),
      response('200 OK', ['Content-Length: 0']),
    ];
    await withPool(
      (req) => void req.socket.write(replies[Number(req.path.slice(1))] ?? ''),
      {},
      async (_server, pool) => {
        const twice = await settled(exchange(pool, { path: '/0' }));
        assert.equal(twice.error, null);
        assert.equal(twice.body, 'hello');
        const empty = await settled(exchange(pool, { path: '/1' }));
        assert.equal(empty.error, null);
        assert.equal(empty.count('data'), 0);
        assert.equal(empty.count('end'), 1);
      },
    );
  });

  const chunked = Buffer.from(
    response(
      '200 OK',
      ['Content-Type: text/event-stream', 'Transfer-Encoding: chunked'],
      '5;ext=1\r\nhello\r\n' +
        '1a; name="a;b"\r\nabcdefghijklmnopqrstuvwxyz\r\n' +
        'C\r\n0123456789\r\n\r\n' +
        '0\r\nX-Checksum: abc\r\nX-Rep: 1\r\nX-Rep: 2\r\n\r\n',
    ),
  );
  const chunkedBody = 'helloabcdefghijklmnopqrstuvwxyz0123456789\r\n';
  const chunkedTrailers = { 'x-checksum': 'abc', 'x-rep': ['1', '2'] };

  it('reads a chunked body split at every byte boundary (data and trailers intact, one socket)', async () => {
    await withPool(splitAtRequestedByte(chunked), { connections: 1 }, async (server, pool) => {
      for (let at = 1; at < chunked.length; at++) {
        const got = await settled(exchange(pool, { path: `/${at}` }));
        assert.equal(got.error, null, `split at ${at}: ${got.error}`);
        assert.equal(got.statusCode, 200, `split at ${at}`);
        assert.equal(got.body, chunkedBody, `split at ${at}`);
        assert.deepEqual(got.trailers, chunkedTrailers, `split at ${at}`);
        assert.equal(got.count('end'), 1, `split at ${at}`);
      }
      assert.equal(server.accepted, 1, 'every response ended cleanly, so one socket served them all');
    });
  });

  it('reads a chunked body written one byte at a time', async () => {
    await withPool(
      async (req) => {
        for (let i = 0; i < chunked.length; i++) {
          req.socket.write(chunked.subarray(i, i + 1));
          if (i % 4 === 0) await delay(1);
        }
      },
      {},
      async (_server, pool) => {
        const got = await settled(exchange(pool));
        assert.equal(got.error, null);
        assert.equal(got.body, chunkedBody);
        assert.deepEqual(got.trailers, chunkedTrailers);
      },
    );
  });

  it('skips a 100 and a 103 head before the final one, split at every byte boundary', async () => {
    const reply = Buffer.from(
      'HTTP/1.1 100 Continue\r\n\r\n' +
        'HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n' +
        response('200 OK', ['Content-Length: 4', 'X-Final: 1'], 'done'),
    );
    await withPool(splitAtRequestedByte(reply), { connections: 1 }, async (server, pool) => {
      for (let at = 1; at < reply.length; at++) {
        const got = await settled(exchange(pool, { path: `/${at}` }));
        assert.equal(got.error, null, `split at ${at}: ${got.error}`);
        assert.equal(got.statusCode, 200, `split at ${at}`);
        assert.equal(got.count('responseStart'), 1, `split at ${at}`);
        assert.equal(got.headers['x-final'], '1', `split at ${at}`);
        assert.equal(got.headers.link, undefined, `split at ${at}`);
        assert.equal(got.body, 'done', `split at ${at}`);
      }
      assert.equal(server.accepted, 1);
    });
  });

  it('delivers a 256 KiB binary body byte for byte, chunked in uneven sizes and written in uneven pieces', async () => {
    const body = Buffer.alloc(256 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7919 + (i >> 8)) & 0xff;
    const framed: Buffer[] = [Buffer.from(response('200 OK', ['Transfer-Encoding: chunked']))];
    for (let at = 0, size = 1; at < body.length; at += size, size = (size * 31 + 17) % 9000 || 1) {
      const piece = body.subarray(at, at + size);
      framed.push(Buffer.from(`${piece.length.toString(16)}\r\n`), piece, Buffer.from('\r\n'));
    }
    framed.push(Buffer.from('0\r\n\r\n'));
    const wire = Buffer.concat(framed);
    await withPool(
      async (req) => {
        for (let at = 0, size = 1; at < wire.length; at += size, size = (size * 13 + 5) % 20000 || 1) {
          req.socket.write(wire.subarray(at, at + size));
          if (at % 7 === 0) await delay(0);
        }
      },
      {},
      async (_server, pool) => {
        const got = await settled(exchange(pool), 8000);
        assert.equal(got.error, null);
        assert.ok(Buffer.concat(got.chunks).equals(body));
      },
    );
  });

  it('ignores chunk extensions', async () => {
    const reply = response(
      '200 OK',
      ['Transfer-Encoding: chunked'],
      '5;name=value\r\nhello\r\n6;a;b="c d"\r\n world\r\n0;last=1\r\n\r\n',
    );
    await withPool(
      (req) => void req.socket.write(reply),
      {},
      async (_server, pool) => {
        const got = await settled(exchange(pool));
        assert.equal(got.error, null);
        assert.equal(got.body, 'hello world');
        assert.deepEqual(got.trailers, {});
      },
    );
  });

  it('hands trailers to onResponseEnd and reuses the socket after them', async () => {
    const reply = response(
      '200 OK',
      ['Transfer-Encoding: chunked', 'Trailer: X-Checksum'],
      '2\r\nok\r\n0\r\nX-Checksum: abc\r\nX-Rep: 1\r\nX-Rep: 2\r\n\r\n',
    );
    await withPool(
      (req) => void req.socket.write(reply),
      {},
      async (server, pool) => {
        for (let i = 0; i < 2; i++) {
          const got = await settled(exchange(pool));
          assert.equal(got.error, null);
          assert.equal(got.body, 'ok');
          assert.deepEqual(got.trailers, { 'x-checksum': 'abc', 'x-rep': ['1', '2'] });
        }
        assert.equal(server.accepted, 1);
      },
    );
  });

  it('uses chunked framing when the last transfer coding is chunked (body bytes passed as they are)', async () => {
    const reply = response('200 OK', ['Transfer-Encoding: gzip, chunked'], '3\r\nabc\r\n0\r\n\r\n');
    await withPool(
      (req) => void req.socket.write(reply),
      {},
      async (server, pool) => {
        const got = await settled(exchange(pool));
        assert.equal(got.error, null);
        assert.equal(got.body, 'abc');
        await settled(exchange(pool));
        assert.equal(server.accepted, 1);
      },
    );
  });

  it('gives 204, 304 and HEAD responses no body, and reuses the socket after each', async () => {
    const replies: Record<string, string> = {
      '/204': response('204 No Content', []),
      '/304': response('304 Not Modified', ['Content-Length: 10', 'ETag: "x"']),
      '/head': response('200 OK', ['Content-Length: 5']),
      '/after': OK,
    };
    await withPool(
      (req) => void req.socket.write(replies[req.path] ?? ''),
      { connections: 1 },
      async (server, pool) => {
        for (const [method, path, status] of [
          ['GET', '/204', 204],
          ['GET', '/304', 304],
          ['HEAD', '/head', 200],
        ] as const) {
          const got = await settled(exchange(pool, { method, path }));
          assert.equal(got.error, null, path);
          assert.equal(got.statusCode, status, path);
          assert.equal(got.count('data'), 0, path);
          assert.equal(got.count('end'), 1, path);
          const next = await settled(exchange(pool, { path: '/after' }));
          assert.equal(next.error, null, `after ${path}`);
          assert.equal(next.body, 'ok', `after ${path}`);
        }
        assert.equal(server.accepted, 1);
      },
    );
  });

  it('reads a body without length or chunking until the server closes, and does not reuse that socket', async () => {
    await withPool(
      async (req) => {
        if (req.path === '/after') return void req.socket.write(OK);
        req.socket.write(response('200 OK', ['Content-Type: text/plain'], 'part one, '));
        await delay(5);
        req.socket.end('part two');
      },
      {},
      async (server, pool) => {
        const got = await settled(exchange(pool));
        assert.equal(got.error, null);
        assert.equal(got.body, 'part one, part two');
        assert.equal(got.count('end'), 1);
        const next = await settled(exchange(pool, { path: '/after' }));
        assert.equal(next.body, 'ok');
        assert.equal(server.accepted, 2);
      },
    );
  });
});

describe('Http1Pool: connection reuse', () => {
  it('reuses one socket for sequential requests and reports it idle', async () => {
    await withPool(
      (req) => void req.socket.write(OK),
      {},
      async (server, pool) => {
        for (let i = 0; i < 5; i++) assert.equal((await settled(exchange(pool))).body, 'ok');
        assert.equal(server.accepted, 1);
        assert.equal(server.requests.length, 5);
        assert.deepEqual(pool.stats, { open: 1, idle: 1, busy: 0, queued: 0 });
      },
    );
  });

  const notReused: Array<[string, string]> = [
    ['connection: close', response('200 OK', ['Content-Length: 2', 'Connection: close'], 'ok')],
    ['an HTTP/1.0 reply', 'HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok'],
    [
      'both transfer-encoding and content-length',
      response('200 OK', ['Transfer-Encoding: chunked', 'Content-Length: 2'], '2\r\nok\r\n0\r\n\r\n'),
    ],
    ['extra bytes after the end', `${OK}HTTP/1.1 200 OK\r\n`],
  ];
  for (const [what, reply] of notReused) {
    it(`does not reuse a socket after ${what} (the server keeps it open)`, async () => {
      await withPool(
        (req) => void req.socket.write(reply),
        {},
        async (server, pool) => {
          for (let i = 0; i < 2; i++) {
            const got = await settled(exchange(pool, { path: `/${i}` }));
            assert.equal(got.error, null, `${what}: ${got.error}`);
            assert.equal(got.body, 'ok');
          }
          assert.equal(server.accepted, 2);
          assert.deepEqual(
            server.requests.map((r) => r.connection),
            [1, 2],
          );
        },
      );
    });

    it(`closes the socket it will not reuse after ${what}`, async () => {
      await withPool(
        (req) => void req.socket.write(reply),
        {},
        async (server, pool) => {
          await settled(exchange(pool));
          await until(() => server.closed === 1, 'the client closes the socket');
          await until(() => pool.stats.open === 0, 'the pool forgets it');
        },
      );
    });
  }

  it('drops an idle socket the server closed, and the next request succeeds on a new one', async () => {
    await withPool(
      (req) => {
        req.socket.write(OK);
        if (req.connection === 1) setTimeout(() => req.socket.end(), 20);
      },
      {},
      async (server, pool) => {
        assert.equal((await settled(exchange(pool))).body, 'ok');
        await until(() => server.closed === 1, 'the server closes the idle socket');
        await until(() => pool.stats.open === 0, 'the pool drops it');
        const next = await settled(exchange(pool));
        assert.equal(next.error, null);
        assert.equal(next.body, 'ok');
        assert.equal(server.accepted, 2);
      },
    );
  });

  it('drops an idle socket the server resets, without an error anywhere', async () => {
    await withPool(
      (req) => {
        req.socket.write(OK);
        if (req.connection === 1) setTimeout(() => req.socket.resetAndDestroy(), 20);
      },
      {},
      async (server, pool) => {
        assert.equal((await settled(exchange(pool))).body, 'ok');
        await until(() => pool.stats.open === 0, 'the pool drops the reset socket');
        const next = await settled(exchange(pool));
        assert.equal(next.error, null);
        assert.equal(server.accepted, 2);
      },
    );
  });

  it('reuses a socket within a `Keep-Alive: timeout=5` hint', async () => {
    await withPool(
      (req) =>
        void req.socket.write(response('200 OK', ['Content-Length: 2', 'Keep-Alive: timeout=5'], 'ok')),
      {},
      async (server, pool) => {
        await settled(exchange(pool));
        await settled(exchange(pool));
        assert.equal(server.accepted, 1);
      },
    );
  });

  it('does not reuse a socket idle longer than a `Keep-Alive: timeout=1` hint', async () => {
    await withPool(
      (req) =>
        void req.socket.write(response('200 OK', ['Content-Length: 2', 'Keep-Alive: timeout=1'], 'ok')),
      {},
      async (server, pool) => {
        await settled(exchange(pool));
        await delay(1200);
        const next = await settled(exchange(pool));
        assert.equal(next.error, null);
        assert.equal(next.body, 'ok');
        assert.equal(server.accepted, 2);
      },
    );
  });

  it('does not reuse a socket idle longer than keepAliveTimeoutMs when the server gives no hint', async () => {
    await withPool(
      (req) => void req.socket.write(OK),
      { keepAliveTimeoutMs: 200 },
      async (server, pool) => {
        await settled(exchange(pool));
        await settled(exchange(pool));
        assert.equal(server.accepted, 1, 'reused within the limit');
        await delay(400);
        assert.equal((await settled(exchange(pool))).body, 'ok');
        assert.equal(server.accepted, 2, 'not reused past it');
      },
    );
  });

  it('takes the most recently released idle socket first (LIFO)', async () => {
    const held = new Map([
      ['/a', gate()],
      ['/b', gate()],
    ]);
    await withPool(
      async (req) => {
        await held.get(req.path)?.promise;
        req.socket.write(OK);
      },
      { connections: 2 },
      async (server, pool) => {
        const a = exchange(pool, { path: '/a' });
        const b = exchange(pool, { path: '/b' });
        await until(() => server.requests.length === 2, 'both requests arrive');
        held.get('/a')?.open();
        await settled(a);
        held.get('/b')?.open();
        await settled(b);
        const bConnection = server.requests.find((r) => r.path === '/b')?.connection;
        await settled(exchange(pool, { path: '/c' }));
        assert.equal(server.requests[2]?.connection, bConnection);
      },
    );
  });
});

describe('Http1Pool: the connection cap', () => {
  it('with connections=2, a third request waits (queued=1) and completes after one finishes', async () => {
    const held = new Map(['/1', '/2', '/3'].map((p) => [p, gate()]));
    await withPool(
      async (req) => {
        await held.get(req.path)?.promise;
        req.socket.write(OK);
      },
      { connections: 2 },
      async (server, pool) => {
        const sent = ['/1', '/2', '/3'].map((path) => exchange(pool, { path }));
        await until(() => server.requests.length === 2, 'two requests arrive');
        await delay(50);
        assert.equal(server.requests.length, 2, 'the third is held back');
        assert.equal(server.accepted, 2);
        assert.deepEqual(pool.stats, { open: 2, idle: 0, busy: 2, queued: 1 });
        assert.equal(sent[2]?.count('responseStart'), 0);
        held.get('/1')?.open();
        await until(() => server.requests.length === 3, 'the third is sent once a socket frees');
        assert.equal(server.requests[2]?.path, '/3');
        assert.equal(pool.stats.queued, 0);
        held.get('/2')?.open();
        held.get('/3')?.open();
        for (const got of sent) assert.equal((await settled(got)).body, 'ok');
        assert.equal(server.accepted, 2);
      },
    );
  });

  it('50 concurrent requests over connections=8 all complete, on at most 8 sockets', async () => {
    await withPool(
      async (req) => {
        await delay(Number(req.path.slice(1)) % 3);
        req.socket.write(response('200 OK', ['Content-Length: ' + req.path.length], req.path));
      },
      { connections: 8 },
      async (server, pool) => {
        const sent = Array.from({ length: 50 }, (_, i) => exchange(pool, { path: `/${i}` }));
        for (const [i, got] of sent.entries()) {
          await settled(got);
          assert.equal(got.error, null);
          assert.equal(got.body, `/${i}`);
        }
        assert.ok(server.accepted <= 8, `accepted ${server.accepted}`);
        assert.deepEqual(pool.stats, { open: server.accepted, idle: server.accepted, busy: 0, queued: 0 });
      },
    );
  });

  it('sends queued requests in the order they were dispatched (FIFO)', async () => {
    const first = gate();
    await withPool(
      async (req) => {
        if (req.path === '/0') await first.promise;
        req.socket.write(OK);
      },
      { connections: 1 },
      async (server, pool) => {
        const sent = [0, 1, 2, 3, 4].map((i) => exchange(pool, { path: `/${i}` }));
        await until(() => server.requests.length === 1, 'the first request arrives');
        assert.equal(pool.stats.queued, 4);
        first.open();
        for (const got of sent) await settled(got);
        assert.deepEqual(server.paths, ['/0', '/1', '/2', '/3', '/4']);
      },
    );
  });

  it('keeps order and loses nothing when a queue that never empties drops its used front', async () => {
    // One connection and 3,000 requests dispatched at once: the queue drops its used front (at
    // 1,500 used slots, half of it) while 1,499 requests are still waiting.
    await withPool(
      (req) => void req.socket.write(OK),
      { connections: 1 },
      async (server, pool) => {
        const count = 3000;
        const sent = Array.from({ length: count }, (_, i) => exchange(pool, { path: `/${i}` }));
        await Promise.all(sent.map((got) => got.done));
        assert.ok(sent.every((got) => got.error === null && got.statusCode === 200));
        assert.deepEqual(
          server.paths,
          Array.from({ length: count }, (_, i) => `/${i}`),
        );
        assert.deepEqual(pool.stats, { open: 1, idle: 1, busy: 0, queued: 0 });
      },
    );
  });
});

describe('Http1Pool: node:http and https servers', () => {
  let dir: string;
  let httpServer: HttpServer;
  let httpsServer: HttpsServer;
  let ca: string;
  let connections = { http: 0, https: 0 };
  const events = Array.from({ length: 200 }, (_, i) => `data: {"i":${i},"text":"token ${i} ✓"}\n\n`);
  let written = 0;

  const handle = async (
    req: import('node:http').IncomingMessage,
    res: import('node:http').ServerResponse,
  ): Promise<void> => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    if (req.url === '/sse') {
      res.socket?.setNoDelay(true);
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      written = 0;
      for (const event of events) {
        res.write(event);
        written++;
        await delay(1);
      }
      res.end();
      return;
    }
    if (req.url === '/close') {
      // Each reply closes its connection; the header says whether this TLS connection resumed a session.
      const resumed = 'isSessionReused' in req.socket ? (req.socket as TLSSocket).isSessionReused() : false;
      res.writeHead(200, { connection: 'close', 'x-resumed': String(resumed), 'content-length': '2' });
      res.end('ok');
      return;
    }
    const body = JSON.stringify({ method: req.method, url: req.url, body: Buffer.concat(chunks).toString() });
    res.writeHead(200, { 'content-type': 'application/json', 'x-echo': String(req.headers['x-echo']) });
    res.end(body);
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'agentd-http1-'));
    const { key, cert } = selfSignedCertificate(dir);
    ca = cert.toString();
    httpServer = createHttpServer((req, res) => void handle(req, res));
    httpServer.on('connection', () => connections.http++);
    httpsServer = createHttpsServer({ key, cert }, (req, res) => void handle(req, res));
    httpsServer.on('secureConnection', () => connections.https++);
    await new Promise<void>((resolve) => httpServer.listen(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => httpsServer.listen(0, '127.0.0.1', resolve));
  });
  after(async () => {
    httpServer.closeAllConnections();
    httpsServer.closeAllConnections();
    await new Promise((resolve) => httpServer.close(resolve));
    await new Promise((resolve) => httpsServer.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  const origin = (scheme: 'http' | 'https'): string => {
    const server = scheme === 'http' ? httpServer : httpsServer;
    return `${scheme}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  };

  for (const scheme of ['http', 'https'] as const) {
    it(`request() against a ${scheme} server: status, headers, body; sequential calls share one connection`, async () => {
      connections = { http: 0, https: 0 };
      const pool = new Http1Pool(origin(scheme), scheme === 'https' ? { ca } : {});
      try {
        for (let i = 0; i < 3; i++) {
          const res = await pool.request({
            method: 'POST',
            path: `/echo/${i}`,
            headers: { 'content-type': 'application/json', 'x-echo': `e${i}` },
            body: `{"n":${i}}`,
          });
          assert.equal(res.statusCode, 200);
          assert.equal(res.headers['content-type'], 'application/json');
          assert.equal(res.headers['x-echo'], `e${i}`);
          assert.ok(Buffer.isBuffer(res.body));
          assert.deepEqual(JSON.parse(res.body.toString()), {
            method: 'POST',
            url: `/echo/${i}`,
            body: `{"n":${i}}`,
          });
        }
        assert.equal(connections[scheme], 1);
      } finally {
        await pool.close();
      }
    });

    it(`an SSE stream of 200 events written one by one over ${scheme} arrives intact, in order, as it is written`, async () => {
      const pool = new Http1Pool(origin(scheme), scheme === 'https' ? { ca } : {});
      let writtenAtFirstData = -1;
      try {
        const got = await settled(
          exchange(
            pool,
            { method: 'POST', path: '/sse', headers: { accept: 'text/event-stream' }, body: '{}' },
            {
              onResponseData: () => {
                if (writtenAtFirstData < 0) writtenAtFirstData = written;
              },
            },
          ),
          8000,
        );
        assert.equal(got.error, null);
        assert.equal(got.statusCode, 200);
        assert.equal(got.headers['content-type'], 'text/event-stream');
        assert.equal(got.body, events.join(''));
        const order = got.body
          .split('\n\n')
          .filter((e) => e !== '')
          .map((e) => (JSON.parse(e.slice('data: '.length)) as { i: number }).i);
        assert.deepEqual(
          order,
          events.map((_, i) => i),
        );
        assert.ok(writtenAtFirstData < events.length, 'the first bytes arrive before the stream ends');
      } finally {
        await pool.close();
      }
    });
  }

  it('a new TLS connection resumes the session the server gave an earlier one, and still works', async () => {
    const pool = new Http1Pool(origin('https'), { ca, connections: 1 });
    try {
      const resumed: string[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await pool.request({ method: 'GET', path: '/close', headers: {} });
        assert.equal(res.statusCode, 200);
        assert.equal(res.body.toString(), 'ok');
        resumed.push(String(res.headers['x-resumed']));
        // The server closed the connection; wait until the pool has let it go.
        await until(() => pool.stats.open === 0, 'the pool drops the closed connection');
      }
      assert.equal(resumed[0], 'false');
      assert.deepEqual(resumed.slice(1), ['true', 'true']);
    } finally {
      await pool.close();
    }
  });

  it('refuses an https server whose certificate the ca option does not vouch for, every time', async () => {
    const pool = new Http1Pool(origin('https'));
    try {
      // Twice: a session from a refused handshake must not let a later connection skip verification.
      for (let i = 0; i < 2; i++) {
        await assert.rejects(
          pool.request({ method: 'GET', path: '/echo', headers: {} }),
          (error: NodeJS.ErrnoException) => /SELF_SIGNED|UNABLE_TO_VERIFY/.test(String(error.code)),
        );
      }
    } finally {
      await pool.close();
    }
  });
});
