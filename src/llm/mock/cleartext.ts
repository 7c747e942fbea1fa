import { createServer as createHttp1Server, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  createServer as createHttp2Server,
  type Http2ServerRequest,
  type Http2ServerResponse,
} from 'node:http2';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';

/** The client connection preface of HTTP/2 with prior knowledge (RFC 9113 §3.4). */
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

/**
 * HTTP/2 session options of both mock servers. Thousands of streams per session: Node's 10 MB
 * session memory default answers ENHANCE_YOUR_CALM to new streams under a burst (the concurrency
 * benchmark's warm-up).
 */
export function http2SessionOptions(maxConcurrentStreams: number): {
  maxSessionMemory: number;
  settings: { maxConcurrentStreams: number };
} {
  return { maxSessionMemory: 1024, settings: { maxConcurrentStreams } };
}

/**
 * One cleartext port that serves HTTP/1.1 and HTTP/2 with prior knowledge (h2c): each connection's
 * first bytes say which. Node's cleartext HTTP/2 server has no HTTP/1.1 fallback, so the socket
 * is handed, with the bytes already read put back, to the server its preface belongs to.
 */
export function createCleartextServer(
  onHttp1: (req: IncomingMessage, res: ServerResponse) => void,
  onHttp2: (req: Http2ServerRequest, res: Http2ServerResponse) => void,
  maxConcurrentStreams: number,
): Server {
  const http1 = createHttp1Server({ keepAliveTimeout: 65_000, requestTimeout: 0 }, onHttp1);
  const http2 = createHttp2Server(http2SessionOptions(maxConcurrentStreams), onHttp2);
  return createNetServer((socket) => sniff(socket, http1, http2));
}

function sniff(
  socket: Socket,
  http1: ReturnType<typeof createHttp1Server>,
  http2: ReturnType<typeof createHttp2Server>,
): void {
  let head: Buffer = Buffer.alloc(0);
  const onData = (chunk: Buffer): void => {
    head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
    const compared = Math.min(head.length, H2_PREFACE.length);
    const isH2 = head.subarray(0, compared).equals(H2_PREFACE.subarray(0, compared));
    // A prefix of the preface may still turn out to be either protocol: wait for more.
    if (isH2 && head.length < H2_PREFACE.length) return;
    socket.off('data', onData);
    socket.pause();
    socket.unshift(head);
    if (isH2) {
      // The session takes the socket over and reads the bytes put back itself.
      http2.emit('connection', socket);
    } else {
      http1.emit('connection', socket);
      socket.resume();
    }
  };
  socket.on('data', onData);
}
