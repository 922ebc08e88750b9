// Requests Node's HTTP parser rejects before Fastify sees them (headers too large, a duplicate
// Content-Length, an unknown method, a malformed request line, a request that took too long): they are
// answered here, on the raw socket, as problem+json like every other refusal, and the socket is closed.
// So is CONNECT, which Node hands to a 'connect' listener instead of the request handler.
import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { makeProblem, PROBLEM_TYPE, type ProblemCode } from './problem.ts';

interface ParserError extends Error {
  code?: string;
}

/** Status and detail for a parser error code (llhttp's HPE_* and Node's ERR_HTTP_*). */
export function describeClientError(code: string | undefined): { status: number; detail: string } {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, detail: 'the request headers are larger than the server accepts' };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, detail: 'the request was not received in time' };
    case 'HPE_INVALID_METHOD':
      return { status: 400, detail: 'the request method is not a known HTTP method' };
    case 'HPE_UNEXPECTED_CONTENT_LENGTH':
      return { status: 400, detail: 'the request has more than one Content-Length, or one beside chunked' };
    case 'HPE_INVALID_CONTENT_LENGTH':
      return { status: 400, detail: 'the request has an invalid Content-Length' };
    case 'HPE_INVALID_TRANSFER_ENCODING':
      return { status: 400, detail: 'the request has an invalid Transfer-Encoding' };
    default:
      return { status: 400, detail: 'the request is not valid HTTP/1.1' };
  }
}

/** Fastify's clientErrorHandler: writes one problem+json response, then closes the socket. */
export function clientErrorHandler(err: ParserError, socket: Socket): void {
  // A reset socket has no one to answer.
  if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const { status, detail } = describeClientError(err.code);
  // Garbage after a whole request on the same connection: that request is being answered (its write
  // may commit), so its response goes out first, then the problem for the rest; never interleaved.
  const pending = (socket as Socket & { _httpMessage?: ServerResponse })._httpMessage;
  // That request's body stopped short (the client ended, or sent garbage, mid-body): it can never be
  // answered, and waiting for its answer would hold the connection open for good. Abort it.
  if (pending && !pending.writableFinished && !pending.req.complete) {
    socket.destroy();
    return;
  }
  if (pending && !pending.writableFinished) {
    pending.once('finish', () => {
      if (!socket.destroyed && socket.writable) writeProblem(socket, status, 'VALIDATION', detail);
    });
    pending.once('close', () => {
      if (!pending.writableFinished) socket.destroy();
    });
    return;
  }
  writeProblem(socket, status, 'VALIDATION', detail);
}

/** The server's 'connect' listener: CONNECT (a proxy tunnel) is not served; Node alone would just hang up. */
export function refuseConnect(_req: unknown, socket: Socket): void {
  if (socket.destroyed || !socket.writable) return;
  writeProblem(socket, 405, 'NOT_FOUND', 'CONNECT is not served: this is not a proxy'); // as the app's 405s
}

/** One problem+json response written straight to the socket, which is then closed. */
function writeProblem(socket: Socket, status: number, code: ProblemCode, detail: string): void {
  const id = randomUUID();
  const body = JSON.stringify(makeProblem(status, code, detail, id));
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n` +
      `Content-Type: ${PROBLEM_TYPE}\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      `X-Request-Id: ${id}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}
