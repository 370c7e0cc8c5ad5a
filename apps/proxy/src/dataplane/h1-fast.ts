/**
 * The HTTP/1.1 fast path: a downstream connection served on its raw socket. Request heads are
 * parsed by Node's llhttp binding, each request becomes an Exchange (the same routing, flags,
 * metrics and access log as the node:http path), and responses are written as one head string
 * plus the body (content-length as is, otherwise chunked). Requests are answered strictly in
 * order; pipelined ones wait in a queue with their bodies buffered.
 *
 * What it does not do — HTTP/1.0 clients, upgrades (WebSocket), CONNECT — goes to node:http:
 * at a request boundary the parsed head is written back in front of the unread bytes and the
 * socket is handed to the chain's http.Server.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders, Server as HttpServer } from 'node:http';
import type { Socket } from 'node:net';
import type { HttpContext } from './context.ts';
import { Exchange } from './exchange.ts';
import {
  headerLines, headersFromRaw, httpDate, HTTPParser, kOnBody, kOnHeaders, kOnHeadersComplete, kOnMessageBegin, kOnMessageComplete,
  METHODS, newParser, statusLine, STOP_AFTER_HEAD, type NativeParser,
} from './h1-parser.ts';

/** Pipelined requests waiting beyond this (or this many buffered body bytes) pause reading. */
const MAX_QUEUE = 32;
const MAX_BUFFERED = 1 << 20;

const kFast = Symbol('tern.fastconn');
type TaggedSocket = Socket & { [kFast]?: FastConn };
type TaggedParser = NativeParser & { [kFast]?: FastConn };

/** One downstream request and its response writer. */
export class FastRequest {
  ex: Exchange | undefined;
  /** Body chunks received before the request was dispatched (pipelining). */
  buffered: Buffer[] | undefined;
  bufferedBytes = 0;
  /** The whole request (body included) has been read. */
  complete = false;
  headSent = false;
  chunked = false;
  noBody = false;
  finished = false;
  closeAfter: boolean;

  constructor(
    readonly conn: FastConn,
    readonly method: string,
    readonly url: string,
    readonly headers: IncomingHttpHeaders,
    keepAlive: boolean,
    readonly bodyless: boolean,
  ) {
    this.closeAfter = !keepAlive;
  }

  /** The response head as one write. `endStream`: no body follows. */
  writeHead(status: number, headers: OutgoingHttpHeaders, endStream: boolean): void {
    if (this.headSent) return;
    this.headSent = true;
    const conn = this.conn;
    if (conn.ctx.draining || conn.ending) this.closeAfter = true;
    let s = statusLine(status);
    let hasLength = false;
    let hasDate = false;
    for (const name in headers) {
      const v = headers[name];
      if (v === undefined || name.charCodeAt(0) === 58) continue;
      if (name === 'content-length') hasLength = true;
      else if (name === 'date') hasDate = true;
      else if (name === 'connection' || name === 'transfer-encoding' || name === 'keep-alive') continue;
      if (Array.isArray(v)) for (const x of v) s += `${name}: ${x}\r\n`;
      else s += `${name}: ${v}\r\n`;
    }
    if (!hasDate) s += `date: ${httpDate()}\r\n`;
    this.noBody = this.method === 'HEAD' || status === 204 || status === 304 || status < 200;
    if (!hasLength && !this.noBody) {
      if (endStream) s += 'content-length: 0\r\n';
      else {
        s += 'transfer-encoding: chunked\r\n';
        this.chunked = true;
      }
    }
    s += this.closeAfter ? 'connection: close\r\n' : 'connection: keep-alive\r\n';
    conn.socket.write(s + '\r\n', 'latin1');
    if (endStream) this.end(undefined);
  }

  /** A body chunk; false when the socket wants a 'drain' first. */
  write(chunk: Buffer): boolean {
    if (this.finished || this.noBody || chunk.length === 0) return true;
    const socket = this.conn.socket;
    if (socket.destroyed) return true;
    if (!this.chunked) return socket.write(chunk);
    socket.cork();
    socket.write(`${chunk.length.toString(16)}\r\n`, 'latin1');
    socket.write(chunk);
    const ok = socket.write('\r\n', 'latin1');
    socket.uncork();
    return ok;
  }

  /** Ends the response (with a last chunk or chunked trailers). */
  end(trailers: OutgoingHttpHeaders | undefined, last?: string | Buffer): void {
    if (this.finished) return;
    if (last !== undefined && last.length > 0 && !this.noBody) this.conn.socket.write(last);
    if (this.chunked) this.conn.socket.write(trailers ? `0\r\n${headerLines(trailers)}\r\n` : '0\r\n\r\n', 'latin1');
    this.finished = true;
    this.conn.responseDone(this);
  }
}

/** One downstream connection on the fast path. */
export class FastConn {
  private readonly parser: NativeParser;
  /** Requests in arrival order; queue[0] is the one being answered. */
  private readonly queue: FastRequest[] = [];
  /** The request whose body is being read. */
  private reading: FastRequest | undefined;
  private pendingRaw: string[] | undefined;
  private pendingUrl = '';
  /** Hand over to node:http at this request boundary (the head to replay). */
  private handoff: Buffer | undefined;
  private stopAfterHead = false;
  /** An error response to send once the queue is empty, then close. */
  private failure: string | undefined;
  /** Downstream sent FIN, or asked for Connection: close: no more requests are read. */
  ending = false;
  private paused = false;
  private bufferedBytes = 0;
  /** When the current request head started (headers timeout), 0 = none. */
  headStart = 0;
  requestStart = 0;
  /** When the connection last became idle (idle timeout), 0 = busy. */
  idleSince = 0;
  closed = false;

  constructor(
    readonly socket: Socket,
    readonly ctx: HttpContext,
    private readonly fallback: HttpServer,
    private readonly registry: Set<FastConn>,
  ) {
    const p = (this.parser = newParser(HTTPParser.REQUEST));
    (p as TaggedParser)[kFast] = this;
    p[kOnMessageBegin] = onMessageBegin;
    p[kOnHeaders] = onHeaders;
    p[kOnHeadersComplete] = onHeadersComplete;
    p[kOnBody] = onBody;
    p[kOnMessageComplete] = onMessageComplete;
    (socket as TaggedSocket)[kFast] = this;
    registry.add(this);
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onClose);
    socket.on('drain', onDrain);
    this.idleSince = performance.now();
  }

  get isIdle(): boolean {
    return this.queue.length === 0 && this.reading === undefined && this.headStart === 0;
  }

  // ------------------------------------------------------------ reading

  data(chunk: Buffer): void {
    // After Connection: close, a hand-off or an error, nothing beyond the current body is read.
    if ((this.ending && this.reading === undefined) || this.failure !== undefined) return;
    const r = this.parser.execute(chunk);
    if (typeof r !== 'number') {
      // Node answers an oversized head with 431, any other parse error with 400.
      const status = r.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
      this.fail(`${statusLine(status)}content-length: 0\r\nconnection: close\r\n\r\n`);
      return;
    }
    if (this.stopAfterHead) {
      this.stopAfterHead = false;
      const rest = chunk.subarray(r);
      this.handoff = rest.length ? Buffer.concat([this.handoff!, rest]) : this.handoff;
      this.ending = true; // read no further: the bytes now belong to node:http
      if (this.queue.length === 0) this.handOver();
      else this.pause();
    }
  }

  private fail(response: string): void {
    this.failure = response;
    this.reading = undefined;
    this.headStart = 0;
    if (this.queue.length === 0) this.sendFailure();
  }

  private sendFailure(): void {
    if (!this.socket.destroyed) this.socket.end(this.failure!, 'latin1');
    this.socket.destroySoon();
  }

  messageBegin(): void {
    this.headStart = performance.now();
  }

  headers(raw: string[], url: string | undefined): void {
    const r = this.reading;
    if (r !== undefined && r.headers !== undefined && this.headStart === 0) return; // trailers: not forwarded
    this.pendingRaw = this.pendingRaw ? this.pendingRaw.concat(raw) : raw;
    if (url) this.pendingUrl += url;
  }

  headersComplete(major: number, minor: number, rawIn: string[] | undefined, methodIndex: number, urlIn: string | undefined, upgrade: boolean, keepAlive: boolean): number {
    const raw = rawIn ?? this.pendingRaw ?? [];
    const url = urlIn ?? this.pendingUrl;
    this.pendingRaw = undefined;
    this.pendingUrl = '';
    const method = METHODS[methodIndex] ?? 'GET';
    this.headStart = 0;
    if (upgrade || method === 'CONNECT' || major !== 1 || minor !== 1) {
      // node:http serves these (upgrade hand-off to the WebSocket path, CONNECT's 405, HTTP/1.0
      // framing): replay the head to it at this request boundary.
      let head = `${method} ${url} HTTP/${major}.${minor}\r\n`;
      for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
      this.handoff = Buffer.from(head + '\r\n', 'latin1');
      this.stopAfterHead = true;
      return STOP_AFTER_HEAD;
    }
    const headers = headersFromRaw(raw);
    const cl = headers['content-length'];
    const bodyless = (cl === undefined || cl === '0') && headers['transfer-encoding'] === undefined;
    const req = new FastRequest(this, method, url, headers, keepAlive, bodyless);
    if (!keepAlive) this.ending = true;
    this.reading = req;
    this.requestStart = performance.now();
    this.queue.push(req);
    if (this.queue.length === 1) this.dispatch(req);
    else if (this.queue.length > MAX_QUEUE) this.pause();
    return 0;
  }

  body(chunk: Buffer): void {
    const r = this.reading;
    if (r === undefined || r.finished) return;
    if (r.ex !== undefined) {
      r.ex.fastBody(chunk);
      return;
    }
    (r.buffered ??= []).push(chunk);
    r.bufferedBytes += chunk.length;
    this.bufferedBytes += chunk.length;
    if (this.bufferedBytes > MAX_BUFFERED) this.pause();
  }

  messageComplete(): void {
    const r = this.reading;
    this.reading = undefined;
    this.requestStart = 0;
    if (r === undefined) return;
    r.complete = true;
    if (r.ex !== undefined && !r.finished) r.ex.fastBodyEnd();
  }

  /**
   * A body chunk the exchange cannot send yet (it is waiting out a fault delay): kept for
   * pumpBody like a pipelined request's, reading pauses beyond the buffer limit.
   */
  hold(req: FastRequest, chunk: Buffer): void {
    (req.buffered ??= []).push(chunk);
    req.bufferedBytes += chunk.length;
    this.bufferedBytes += chunk.length;
    if (this.bufferedBytes > MAX_BUFFERED) this.pause();
  }

  /** The exchange takes the body: what arrived before dispatch first. */
  pumpBody(req: FastRequest, ex: Exchange): void {
    const b = req.buffered;
    if (b !== undefined) {
      req.buffered = undefined;
      this.bufferedBytes -= req.bufferedBytes;
      req.bufferedBytes = 0;
      for (const c of b) ex.fastBody(c);
    }
    if (req.complete) ex.fastBodyEnd();
  }

  pause(): void {
    if (!this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  resume(): void {
    if (this.paused && this.queue.length <= MAX_QUEUE && this.bufferedBytes <= MAX_BUFFERED && this.handoff === undefined) {
      this.paused = false;
      this.socket.resume();
    }
  }

  // ------------------------------------------------------------ answering

  private dispatch(req: FastRequest): void {
    this.idleSince = 0;
    const ex = new Exchange(this.ctx);
    req.ex = ex;
    if (!req.bodyless && !req.complete) {
      const expect = req.headers.expect;
      // Node's server answers 100-continue itself unless told otherwise: so does the fast path.
      if (typeof expect === 'string' && expect.toLowerCase() === '100-continue') this.socket.write('HTTP/1.1 100 Continue\r\n\r\n', 'latin1');
    }
    ex.fromFast(req);
  }

  /** The response to queue[0] is written: account for it and start the next one. */
  responseDone(req: FastRequest): void {
    if (this.queue[0] !== req) return;
    this.queue.shift();
    req.ex?.finish(false);
    if (req.closeAfter) {
      this.ending = true;
      this.queue.length = 0;
      this.socket.destroySoon();
      return;
    }
    this.next();
  }

  private next(): void {
    const nextReq = this.queue[0];
    if (nextReq !== undefined) {
      if (this.paused) this.resume();
      this.dispatch(nextReq);
      return;
    }
    if (this.failure !== undefined) {
      this.sendFailure();
      return;
    }
    if (this.handoff !== undefined) {
      this.handOver();
      return;
    }
    if (this.ending) {
      this.socket.destroySoon();
      return;
    }
    if (this.paused) this.resume();
    if (this.ctx.draining && this.isIdle) {
      this.socket.destroySoon();
      return;
    }
    this.idle();
  }

  private idle(): void {
    this.idleSince = performance.now();
  }

  /** The response writer's socket can take more: resume the upstream that was paused. */
  drained(): void {
    this.queue[0]?.ex?.fastDrained();
  }

  /** Gives the connection, from the current request boundary on, to node:http. */
  private handOver(): void {
    const head = this.handoff!;
    this.handoff = undefined;
    this.detach();
    const socket = this.socket;
    socket.unshift(head);
    this.fallback.emit('connection', socket);
    if (this.paused) socket.resume();
  }

  private detach(): void {
    const s = this.socket;
    s.removeListener('data', onData);
    s.removeListener('end', onEnd);
    s.removeListener('close', onClose);
    s.removeListener('drain', onDrain);
    this.registry.delete(this);
    this.parser.close();
    this.closed = true;
  }

  end(): void {
    // Downstream FIN: answer what was asked, then close (the listener allows half-open sockets).
    this.ending = true;
    if (this.reading !== undefined && !this.reading.complete) {
      // The body was cut short: the exchange sees a reset when the socket closes.
      this.socket.destroy();
      return;
    }
    if (this.queue.length === 0 && this.handoff === undefined) this.socket.destroySoon();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.registry.delete(this);
    this.parser.close();
    const q = this.queue.splice(0);
    // Only the request being answered has an exchange; queued ones were never started.
    const cur = q[0];
    if (cur?.ex !== undefined && !cur.finished) cur.ex.finish(true);
  }

  /** Closes the connection if no request is in progress (drain, idle timeout). */
  closeIfIdle(): void {
    if (this.isIdle) this.socket.destroy();
  }

  /** Headers/request timeouts, checked by the listener's sweep (Node's server does the same). */
  checkTimeouts(now: number, headersMs: number, requestMs: number, idleMs: number): void {
    if (this.idleSince > 0 && idleMs > 0 && this.headStart === 0 && this.queue.length === 0 && now - this.idleSince > idleMs) {
      this.socket.destroy();
    } else if (this.headStart > 0 && headersMs > 0 && now - this.headStart > headersMs && this.queue.length === 0) {
      this.fail(`${statusLine(408)}content-length: 0\r\nconnection: close\r\n\r\n`);
    } else if (this.requestStart > 0 && requestMs > 0 && now - this.requestStart > requestMs && this.queue.length === 0) {
      this.fail(`${statusLine(408)}content-length: 0\r\nconnection: close\r\n\r\n`);
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function onData(this: TaggedSocket, chunk: Buffer): void {
  this[kFast]!.data(chunk);
}
function onEnd(this: TaggedSocket): void {
  this[kFast]!.end();
}
function onClose(this: TaggedSocket): void {
  this[kFast]!.close();
}
function onDrain(this: TaggedSocket): void {
  this[kFast]!.drained();
}
function onMessageBegin(this: TaggedParser): void {
  this[kFast]!.messageBegin();
}
function onHeaders(this: TaggedParser, raw: string[], url: string | undefined): void {
  this[kFast]!.headers(raw, url);
}
function onHeadersComplete(this: TaggedParser, major: number, minor: number, raw: string[] | undefined, method: number, url: string | undefined, _status: unknown, _msg: unknown, upgrade: boolean, keepAlive: boolean): number {
  return this[kFast]!.headersComplete(major, minor, raw, method, url, upgrade, keepAlive);
}
function onBody(this: TaggedParser, chunk: Buffer): void {
  this[kFast]!.body(chunk);
}
function onMessageComplete(this: TaggedParser): void {
  this[kFast]!.messageComplete();
}

/** Whether the fast path is on (TERN_H1_FASTPATH=0 turns it off: everything through node:http). */
export const fastPathEnabled = process.env.TERN_H1_FASTPATH !== '0';

/** Periodic headers/request-timeout check over a set of fast connections (unref'd). */
export function startTimeoutSweep(conns: Set<FastConn>, headersMs: number, requestMs: number, idleMs: number, stopped: () => void): NodeJS.Timeout {
  const t = setInterval(() => {
    if (conns.size === 0) {
      // Nothing to watch (e.g. a chain replaced by a configuration update): stop until needed.
      clearInterval(t);
      stopped();
      return;
    }
    const now = performance.now();
    for (const c of conns) c.checkTimeouts(now, headersMs, requestMs, idleMs);
  }, 1000);
  t.unref();
  return t;
}
