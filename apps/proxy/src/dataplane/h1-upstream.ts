/**
 * The fast path's upstream side: keep-alive HTTP/1.1 connections on raw sockets, one idle list
 * per endpoint (LIFO: the warmest socket first), the response head parsed by Node's llhttp
 * binding. No http.Agent, ClientRequest or IncomingMessage per request.
 */
import net from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import type { ClusterConfig, Endpoint } from '../config/model.ts';
import {
  headersFromRaw, HTTPParser, kOnBody, kOnHeaders, kOnHeadersComplete, kOnMessageBegin, kOnMessageComplete, newParser,
  SKIP_BODY, type NativeParser,
} from './h1-parser.ts';
import type { ClusterBreakers } from './resilience/breakers.ts';

/** What an upstream connection reports to the request it carries (implemented by Exchange). */
export interface UpstreamUser {
  readonly method: string;
  /** Response head (1xx other than 101 are skipped); `headers` in IncomingMessage's shape. */
  onUpHead(status: number, headers: IncomingHttpHeaders): void;
  onUpBody(chunk: Buffer): void;
  /** The response ended; trailers if any. The connection is already released or closed. */
  onUpEnd(trailers: IncomingHttpHeaders | undefined): void;
  /** The connection failed; `retryable`: nothing of the response arrived on a reused connection. */
  onUpError(err: NodeJS.ErrnoException, retryable: boolean): void;
  /** The socket can take more request body. */
  onUpDrain(): void;
  /** Around each upstream read: batch what it causes downstream into one write. */
  cork(): void;
  uncork(): void;
}

export const CONNECT_TIMEOUT = 'ECONNECTTIMEOUT';

export class H1Conn {
  readonly socket: net.Socket;
  private readonly parser: NativeParser;
  user: UpstreamUser | undefined;
  /** Served a request before: a failure with nothing received may be a stale keep-alive socket. */
  reused = false;
  /** Bytes of the current response seen. */
  private received = false;
  private info = false;
  private keepAlive = true;
  /** The current request is fully written (its body ended). */
  requestDone = false;
  private headDone = false;
  private trailers: IncomingHttpHeaders | undefined;
  private completed: UpstreamUser | undefined;
  private inExecute = false;
  private connectTimer: NodeJS.Timeout | undefined;
  error: NodeJS.ErrnoException | undefined;
  closed = false;
  /** Requests served (max_requests_per_connection). */
  private served = 0;
  /** The cluster's circuit breakers this connection is counted in (max_connections). */
  private readonly breakers: ClusterBreakers | undefined;

  constructor(public pool: H1EndpointPool) {
    const ep = pool.endpoint;
    this.breakers = pool.breakers;
    this.breakers?.addConnection();
    // A TLS endpoint (upstream-tls.ts) gets a TLSSocket: same stream API, connected once secure.
    const tlsSocket = pool.connectTls?.(ep);
    const socket = tlsSocket ?? (ep.isPipe ? net.connect({ path: ep.address }) : net.connect({ host: ep.address, port: ep.port, noDelay: true }));
    this.socket = socket;
    (socket as TaggedSocket)[kConn] = this;
    const ms = pool.cluster.connectTimeoutMs;
    if (ms > 0) {
      this.connectTimer = setTimeout(connectTimedOut, ms, socket, ms);
      socket.once(tlsSocket ? 'secureConnect' : 'connect', onConnect);
    }
    const p = (this.parser = newParser(HTTPParser.RESPONSE));
    p[kOnMessageBegin] = onMessageBegin;
    p[kOnHeaders] = onHeaders;
    p[kOnHeadersComplete] = onHeadersComplete;
    p[kOnBody] = onBody;
    p[kOnMessageComplete] = onMessageComplete;
    (p as TaggedParser)[kConn] = this;
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.on('drain', onDrain);
    socket.on('timeout', onIdleTimeout);
  }

  /** Starts a request: the head as one write. */
  send(user: UpstreamUser, head: string, requestDone: boolean): void {
    this.user = user;
    this.received = false;
    this.headDone = false;
    this.requestDone = requestDone;
    this.trailers = undefined;
    this.socket.write(head, 'latin1');
  }

  write(chunk: Buffer | string): boolean {
    return this.socket.write(chunk);
  }

  /** The request body ended (after the last write). */
  endRequest(): void {
    this.requestDone = true;
  }

  /** The request is abandoned before its response completed: the connection cannot be reused. */
  abandon(): void {
    this.user = undefined;
    this.socket.destroy();
  }

  private fail(err: NodeJS.ErrnoException): void {
    const user = this.user;
    if (!user) return;
    this.user = undefined;
    user.onUpError(err, this.reused && !this.received);
  }

  // ---- parser callbacks (this = the connection)

  messageBegin(): void {
    this.received = true;
    if (!this.user) this.socket.destroy(); // a response nobody asked for
  }

  headersComplete(raw: string[] | undefined, status: number, keepAlive: boolean): number {
    const user = this.user;
    if (!user) return 0;
    if (status < 200 && status !== 101) {
      // 100 Continue / 103 Early Hints: informational, the final response follows.
      this.info = true;
      return 0;
    }
    this.headDone = true;
    this.keepAlive = keepAlive;
    user.onUpHead(status, headersFromRaw(raw ?? this.pendingRaw ?? []));
    this.pendingRaw = undefined;
    return user.method === 'HEAD' ? SKIP_BODY : 0;
  }

  pendingRaw: string[] | undefined;

  headers(raw: string[]): void {
    if (this.headDone) this.trailers = headersFromRaw(raw, this.trailers);
    else this.pendingRaw = this.pendingRaw ? this.pendingRaw.concat(raw) : raw;
  }

  body(chunk: Buffer): void {
    this.user?.onUpBody(chunk);
  }

  messageComplete(): void {
    if (this.info) {
      this.info = false;
      return;
    }
    const user = this.user;
    if (!user) return;
    this.user = undefined;
    this.completed = user;
    if (!this.inExecute) this.settle();
  }

  /** After a complete response: back to the idle list (or closed), then tell the request. */
  private settle(): void {
    const user = this.completed!;
    this.completed = undefined;
    const trailers = this.trailers;
    this.trailers = undefined;
    const max = this.pool.cluster.maxRequestsPerConnection;
    const spent = max !== undefined && max > 0 && ++this.served >= max;
    if (this.keepAlive && this.requestDone && !this.closed && !spent) {
      this.reused = true;
      // Paused for downstream backpressure during the body: an idle socket must read again.
      if (this.socket.isPaused()) this.socket.resume();
      this.pool.release(this);
    } else {
      this.socket.destroy();
    }
    user.onUpEnd(trailers);
  }

  data(chunk: Buffer): void {
    const user = this.user;
    user?.cork();
    this.inExecute = true;
    const r = this.parser.execute(chunk);
    this.inExecute = false;
    if (typeof r !== 'number') {
      this.completed = undefined;
      this.socket.destroy();
      this.fail(r);
    } else if (this.completed) this.settle();
    user?.uncork();
  }

  end(): void {
    // A close-delimited body ends here.
    this.inExecute = true;
    const r = this.parser.finish();
    this.inExecute = false;
    if (this.completed) this.settle();
    else if (r) this.fail(r);
    this.socket.destroy();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.connectTimer);
    this.pool.forget(this);
    this.breakers?.releaseConnection();
    this.parser.close();
    if (this.user) this.fail(this.error ?? Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }));
  }
}

const kConn = Symbol('tern.h1conn');
type TaggedSocket = net.Socket & { [kConn]?: H1Conn };
type TaggedParser = NativeParser & { [kConn]?: H1Conn };

function onConnect(this: TaggedSocket): void {
  clearTimeout(this[kConn]!['connectTimer']);
}
function connectTimedOut(socket: net.Socket, ms: number): void {
  socket.destroy(Object.assign(new Error(`connect timeout after ${ms} ms`), { code: CONNECT_TIMEOUT }));
}
function onData(this: TaggedSocket, chunk: Buffer): void {
  this[kConn]!.data(chunk);
}
function onEnd(this: TaggedSocket): void {
  this[kConn]!.end();
}
function onError(this: TaggedSocket, err: NodeJS.ErrnoException): void {
  this[kConn]!.error ??= err;
}
function onClose(this: TaggedSocket): void {
  this[kConn]!.close();
}
function onDrain(this: TaggedSocket): void {
  this[kConn]!.user?.onUpDrain();
}
function onIdleTimeout(this: TaggedSocket): void {
  const c = this[kConn]!;
  if (!c.user) this.destroy();
}
function onMessageBegin(this: TaggedParser): void {
  this[kConn]!.messageBegin();
}
function onHeaders(this: TaggedParser, raw: string[]): void {
  this[kConn]!.headers(raw);
}
function onHeadersComplete(this: TaggedParser, _maj: number, _min: number, raw: string[] | undefined, _m: unknown, _u: unknown, status: number, _sm: unknown, _up: boolean, keepAlive: boolean): number {
  return this[kConn]!.headersComplete(raw, status, keepAlive);
}
function onBody(this: TaggedParser, chunk: Buffer): void {
  this[kConn]!.body(chunk);
}
function onMessageComplete(this: TaggedParser): void {
  this[kConn]!.messageComplete();
}

/** Idle keep-alive connections to one endpoint. */
export class H1EndpointPool {
  private readonly idle: H1Conn[] = [];
  retired = false;

  constructor(
    public cluster: ClusterConfig,
    readonly endpoint: Endpoint,
    readonly breakers?: ClusterBreakers,
    /** Opens a TLS connection when the endpoint's transport socket is TLS (undefined: plaintext). */
    readonly connectTls?: (ep: Endpoint) => net.Socket | undefined,
  ) {}

  /** An idle connection is ready for a request. */
  hasIdle(): boolean {
    for (const c of this.idle) if (!c.closed && !c.socket.destroyed && c.socket.writable) return true;
    return false;
  }

  /** Closes the oldest idle connection, if any (frees a max_connections slot). */
  closeOneIdle(): boolean {
    const c = this.idle.shift();
    if (!c) return false;
    c.socket.destroy();
    return true;
  }

  /** Takes over the idle connections of the pool this one replaces (same endpoint key). */
  adopt(old: H1EndpointPool): void {
    for (const c of old.idle.splice(0)) {
      c.pool = this;
      this.idle.push(c);
    }
    old.successor = this;
  }

  /** Set when replaced: busy connections of the old pool are released into the new one. */
  successor: H1EndpointPool | undefined;

  acquire(): H1Conn {
    const idle = this.idle;
    while (idle.length > 0) {
      const c = idle.pop()!;
      if (c.closed || c.socket.destroyed || !c.socket.writable) continue;
      if (this.cluster.idleTimeoutMs > 0) c.socket.setTimeout(0);
      return c;
    }
    return new H1Conn(this);
  }

  release(c: H1Conn): void {
    if (this.successor) {
      c.pool = this.successor;
      this.successor.release(c);
      return;
    }
    if (this.retired || this.idle.length >= 1024) {
      c.socket.destroy();
      return;
    }
    if (this.cluster.idleTimeoutMs > 0) c.socket.setTimeout(this.cluster.idleTimeoutMs);
    this.idle.push(c);
    // After the current response settles: a request waiting for a connection may take this one.
    const b = this.breakers;
    if (b?.hasSlotWaiters()) queueMicrotask(() => b.notifySlot());
  }

  forget(c: H1Conn): void {
    const i = this.idle.indexOf(c);
    if (i >= 0) this.idle.splice(i, 1);
  }

  retire(): void {
    this.retired = true;
    for (const c of this.idle.splice(0)) c.socket.destroy();
  }
}
