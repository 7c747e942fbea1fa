/**
 * The runtime's ceiling on this machine: a minimal reverse proxy (raw node:http in, undici
 * Pool out) that forwards a chat completion to the mock and pipes the answer back, with no
 * agent logic at all. agentd's one-call task is compared against it.
 *
 * Usage: node --import tsx bench/macro/passthrough-proxy.ts <upstream-origin>
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';

const upstream = process.argv[2];
if (upstream === undefined) throw new Error('usage: passthrough-proxy <upstream-origin>');
const pool = new Pool(upstream, { connections: 256, pipelining: 1, keepAliveTimeout: 30_000 });

const server = createServer({ keepAliveTimeout: 72_000 }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    pool
      .request({
        path: req.url ?? '/',
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: Buffer.concat(chunks),
      })
      .then(
        (response) => {
          res.writeHead(response.statusCode, { 'content-type': String(response.headers['content-type']) });
          response.body.pipe(res);
        },
        (err: Error) => {
          res.writeHead(502);
          res.end(err.message);
        },
      );
  });
});
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address() as AddressInfo;
  process.stdout.write(`proxy listening on http://127.0.0.1:${port}\n`);
});
process.on('SIGTERM', () => {
  server.close();
  void pool.destroy().then(() => process.exit(0));
});
