import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { selectFilterChain } from '../config/chain-select.ts';
import type { FilterChain, ListenerConfig, ProxySnapshot } from '../config/model.ts';
import type { Logger } from '../log.ts';
import { HttpContext } from './context.ts';
import type { Engine } from './engine.ts';
import { Exchange } from './exchange.ts';
import { serverTls, type ServerTls } from './tls.ts';
import { TcpContext } from './tcp.ts';
import { FastConn, fastPathEnabled, startTimeoutSweep } from './h1-fast.ts';

/** Why a listener cannot be served by this proxy, or undefined. */
export function unsupportedListener(l: ListenerConfig): string | undefined {
  if (l.useOriginalDst) {
    return `listener "${l.name}": use_original_dst needs the original destination of redirected connections (SO_ORIGINAL_DST), which Node.js cannot read without a native addon; Tern serves explicit-port listeners only`;
  }
  if (l.address.isPipe) return undefined;
  return undefined;
}

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** A filter chain ready to take connections. */
interface ChainRuntime {
  chain: FilterChain;
  tls?: ServerTls;
  http?: { ctx: HttpContext; h1: http.Server; h2: http2.Http2Server; sessions: Set<http2.ServerHttp2Session>; fast: Set<FastConn>; sweep?: NodeJS.Timeout };
  tcp?: TcpContext;
  /** A never-listening tls.Server that terminates TLS for connections handed to it. */
  tlsServer?: tls.Server;
}

function makeTlsServer(rt: ChainRuntime, t: ServerTls): tls.Server {
  const server = tls.createServer({
    ...t.options,
    ALPNProtocols: rt.http ? t.alpn : t.alpn.filter((p) => p !== 'h2'),
    requestCert: t.requestCert,
    rejectUnauthorized: t.requestCert,
    handshakeTimeout: 10000,
  });
  server.on('secureConnection', (ts: tls.TLSSocket) => {
    ts.on('error', noop);
    if (rt.tcp) rt.tcp.handle(ts);
    else if (ts.alpnProtocol === 'h2') rt.http!.h2.emit('connection', ts);
    else rt.http!.h1.emit('connection', ts);
  });
  server.on('tlsClientError', noop);
  return server;
}

/** One bound listener; its socket survives configuration updates that keep its address. */
class RunningListener {
  readonly server: net.Server;
  readonly sockets = new Set<net.Socket>();
  chains: ChainRuntime[] = [];
  byChain = new Map<FilterChain, ChainRuntime>();
  fallback: ChainRuntime | undefined;
  /** Every chain runtime ever used by this listener that may still own connections. */
  readonly runtimes = new Set<ChainRuntime>();
  rawKey = '';
  draining = false;
  needsPeek = false;

  constructor(
    readonly manager: ListenerManager,
    public config: ListenerConfig,
  ) {
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => this.onConnection(s));
  }

  configure(config: ListenerConfig, snap: ProxySnapshot): void {
    this.config = config;
    this.rawKey = JSON.stringify(config.raw);
    const engine = this.manager.engine;
    const build = (chain: FilterChain, i: string): ChainRuntime => {
      const rt: ChainRuntime = { chain };
      if (chain.transportSocket) rt.tls = serverTls(chain.transportSocket, snap, `listener ${config.name} filter_chains[${i}].transport_socket`);
      const h = chain.handler;
      if (h.kind === 'http') rt.http = makeHttp(new HttpContext(engine, config, chain, h), rt);
      else rt.tcp = new TcpContext(engine, config, chain, h);
      if (rt.tls) rt.tlsServer = makeTlsServer(rt, rt.tls);
      this.runtimes.add(rt);
      this.byChain.set(chain, rt);
      return rt;
    };
    const replaced = [...this.byChain.values()];
    this.byChain = new Map();
    this.chains = config.filterChains.map((c, i) => build(c, String(i)));
    this.fallback = config.defaultFilterChain ? build(config.defaultFilterChain, 'default') : undefined;
    const all = this.fallback ? [...this.chains, this.fallback] : this.chains;
    // Wait for the first bytes only when something needs them: TLS detection, SNI/ALPN matching,
    // or HTTP/1.1-vs-HTTP/2 detection. Server-first TCP protocols must not wait.
    this.needsPeek = all.some((c) => c.chain.match.transportProtocol !== undefined || c.chain.match.serverNames.length > 0 || c.chain.match.applicationProtocols.length > 0) ||
      (all.length === 1 && all[0]!.http !== undefined && !all[0]!.tls && all[0]!.http.ctx.hcm.codecType === 'AUTO') ||
      (all.length > 1);
    if (replaced.length > 0) this.retire(replaced);
  }

  /**
   * Connections accepted on replaced chains drain as on a listener drain (Envoy drains the
   * connections of a changed filter chain), but idle HTTP/1.1 ones are closed only after a grace
   * period: a connection that looks idle may have the client's next request on the wire, and
   * closing it would fail that request. Busy clients leave sooner through Connection: close.
   */
  private retire(replaced: ChainRuntime[]): void {
    for (const rt of replaced) drainRuntime(rt, false);
    setTimeout(() => {
      for (const rt of replaced) if (rt.http) closeIdle(rt.http);
    }, RETIRED_IDLE_GRACE_MS).unref();
  }

  private onConnection(socket: net.Socket): void {
    if (this.draining) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', noop);
    if (!this.needsPeek) {
      this.dispatch(socket, undefined);
      return;
    }
    socket.once('readable', () => {
      const first = socket.read() as Buffer | null;
      if (first === null) {
        // EOF before any byte (a port probe): nothing to serve. The listener allows half-open
        // sockets (for TCP proxying), so this one would otherwise stay open.
        socket.destroy();
        return;
      }
      socket.unshift(first);
      this.dispatch(socket, first);
    });
  }

  private dispatch(socket: net.Socket, first: Buffer | undefined): void {
    const isTls = first !== undefined && first[0] === 0x16;
    let rt: ChainRuntime | undefined;
    if (this.chains.length === 1 && isPlainMatch(this.chains[0]!.chain)) rt = this.chains[0];
    else {
      const isH2 = first !== undefined && !isTls && startsWithPreface(first);
      // SNI and ALPN of a TLS client are not parsed (no ClientHello inspector): chains that
      // require them do not match (documented limit).
      const chain = selectFilterChain(this.config, {
        destinationPort: socket.localPort,
        destinationIp: plain(socket.localAddress),
        transportProtocol: isTls ? 'tls' : 'raw_buffer',
        ...(first !== undefined && !isTls ? { applicationProtocols: [isH2 ? 'h2c' : 'http/1.1'] } : {}),
        sourceIp: plain(socket.remoteAddress),
        sourcePort: socket.remotePort,
      });
      rt = chain ? this.byChain.get(chain) : this.fallback;
    }
    if (!rt) {
      socket.destroy();
      return;
    }
    if (rt.tlsServer) {
      rt.tlsServer.emit('connection', socket);
      return;
    }
    if (rt.tcp) {
      rt.tcp.handle(socket);
      return;
    }
    const h = rt.http!;
    const codec = h.ctx.hcm.codecType;
    const h2 = codec === 'HTTP2' || (codec === 'AUTO' && first !== undefined && startsWithPreface(first));
    if (h2) h.h2.emit('connection', socket);
    else if (fastPathEnabled) {
      // Plaintext HTTP/1.1: the raw-socket fast path (it hands upgrades etc. to h.h1 itself).
      if (h.sweep === undefined) {
        const hcm = h.ctx.hcm;
        h.sweep = startTimeoutSweep(h.fast, Math.min(hcm.requestHeadersTimeoutMs || 60000, hcm.requestTimeoutMs || Infinity), hcm.requestTimeoutMs ?? 0, hcm.idleTimeoutMs, () => (h.sweep = undefined));
      }
      new FastConn(socket, h.ctx, h.h1, h.fast);
    } else h.h1.emit('connection', socket);
  }

  setDraining(): void {
    this.draining = true;
    for (const rt of this.runtimes) drainRuntime(rt, true);
  }

  /** Stops accepting; in-flight requests have until `deadline` (ms) before their sockets are cut. */
  async close(drainMs: number): Promise<void> {
    this.setDraining();
    // close() stops accepting now; its callback only fires once every connection is gone.
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const until = Date.now() + drainMs;
    while (this.sockets.size > 0 && Date.now() < until) {
      for (const rt of this.runtimes) if (rt.http) closeIdle(rt.http);
      await sleep(25);
    }
    for (const s of this.sockets) s.destroy();
    for (const rt of this.runtimes) {
      for (const s of rt.http?.sessions ?? []) s.destroy();
      rt.http?.h1.close();
      if (rt.http?.sweep) clearInterval(rt.http.sweep);
    }
    await closed;
  }
}

/** How long idle HTTP/1.1 connections of a replaced filter chain are left open (see retire()). */
const RETIRED_IDLE_GRACE_MS = 1000;

/**
 * Tells a chain's HTTP connections to finish: HTTP/1.1 responses carry Connection: close from now
 * on (the connection closes after them), HTTP/2 sessions get GOAWAY (streams in flight complete).
 */
function drainRuntime(rt: ChainRuntime, closeIdleNow: boolean): void {
  const h = rt.http;
  if (!h) return;
  h.ctx.draining = true;
  if (closeIdleNow) closeIdle(h);
  for (const s of h.sessions) if (!s.closed) s.close();
}

/** Closes the chain's HTTP/1.1 connections that have no request in progress. */
function closeIdle(h: NonNullable<ChainRuntime['http']>): void {
  h.h1.closeIdleConnections();
  for (const c of h.fast) c.closeIfIdle();
}

function makeHttp(ctx: HttpContext, rt: ChainRuntime): NonNullable<ChainRuntime['http']> {
  const hcm = ctx.hcm;
  const h1 = http.createServer({
    // Streaming bodies may take as long as they take: only the HCM's own limits apply.
    requestTimeout: hcm.requestTimeoutMs ?? 0,
    // Node rejects a headers timeout longer than a (non-zero) request timeout.
    headersTimeout: Math.min(hcm.requestHeadersTimeoutMs || 60000, hcm.requestTimeoutMs || Infinity),
    keepAliveTimeout: hcm.idleTimeoutMs,
    noDelay: true,
  });
  // The server never listens (connections are handed over): 'listening' starts its connection
  // tracking, which closeIdleConnections() needs for draining.
  h1.emit('listening');
  h1.on('request', function onRequest(req, res) {
    new Exchange(ctx).fromH1(req, res);
  });
  h1.on('upgrade', function onUpgrade(req: http.IncomingMessage, socket: net.Socket, head: Buffer) {
    const type = String(req.headers.upgrade ?? '').toLowerCase();
    if (!ctx.hcm.upgradeTypes.includes(type)) {
      socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
      return;
    }
    new Exchange(ctx).fromUpgrade(req, socket, head);
  });
  h1.on('connect', (_req: http.IncomingMessage, socket: net.Socket) => {
    socket.end('HTTP/1.1 405 Method Not Allowed\r\ncontent-type: text/plain\r\ncontent-length: 39\r\nconnection: close\r\n\r\nCONNECT is not supported by this proxy\n');
  });
  h1.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
    // As Node's default handler: 431 for an oversized head, 400 for other parse errors.
    if (socket.writable && err.code !== 'ECONNRESET') socket.end(err.code === 'HPE_HEADER_OVERFLOW' ? 'HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n' : 'HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n');
    else socket.destroy();
  });
  const h2 = http2.createServer({ settings: { maxConcurrentStreams: 1000, enableConnectProtocol: false }, maxSessionMemory: 64 });
  const sessions = new Set<http2.ServerHttp2Session>();
  h2.on('session', (s: http2.ServerHttp2Session) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
    s.on('error', noop);
    if (ctx.draining) s.close();
  });
  h2.on('stream', function onStream(stream, headers, flags) {
    if (headers[':method'] === 'CONNECT') {
      stream.respond({ ':status': 405 }, { endStream: true });
      return;
    }
    new Exchange(ctx).fromH2(stream, headers, flags);
  });
  h2.on('sessionError', noop);
  void rt;
  return { ctx, h1, h2, sessions, fast: new Set() };
}

/**
 * Keeps the bound listeners in step with the snapshot: new addresses are bound, unchanged ones
 * keep their socket (their chains are rebuilt if the listener changed), removed ones stop
 * accepting and drain.
 */
export class ListenerManager {
  private readonly running = new Map<string, RunningListener>();
  /** Listeners that could not be started, with the reason (shown by /listeners and /ready). */
  readonly failed = new Map<string, string>();
  private chain: Promise<void> = Promise.resolve();

  constructor(
    readonly engine: Engine,
    private readonly log: Logger,
    private readonly drainMs = 5000,
  ) {}

  /** Serialised: each call waits for the previous one's binds. */
  apply(snap: ProxySnapshot): Promise<void> {
    this.chain = this.chain.then(() => this.applyNow(snap));
    return this.chain;
  }

  private async applyNow(snap: ProxySnapshot): Promise<void> {
    this.engine.applySnapshot(snap);
    const wanted = new Map<string, ListenerConfig>();
    this.failed.clear();
    for (const l of snap.listeners.values()) {
      if (!l.bindToPort) continue; // a virtual listener reached only through original-dst hand-off
      const why = unsupportedListener(l);
      if (why) {
        this.failed.set(l.name, why);
        this.log.error({ listener: l.name }, why);
        continue;
      }
      wanted.set(l.name, l);
    }
    // Listeners are identified by name (as in Envoy); one whose address changed is rebound.
    for (const [key, rl] of this.running) {
      const next = wanted.get(key);
      if (!next || addressKey(next) !== addressKey(rl.config)) {
        this.running.delete(key);
        this.log.info({ listener: rl.config.name, address: boundAddress(rl) }, next ? 'listener address changed: draining the old socket' : 'listener removed: draining');
        void rl.close(this.drainMs);
      }
    }
    const binds: Promise<void>[] = [];
    for (const [key, l] of wanted) {
      const existing = this.running.get(key);
      try {
        if (existing) {
          if (existing.rawKey !== JSON.stringify(l.raw) || existing.config.name !== l.name) existing.configure(l, snap);
          else existing.config = l;
          continue;
        }
        const rl = new RunningListener(this, l);
        rl.configure(l, snap);
        this.running.set(key, rl);
        binds.push(listen(rl).then(
          () => this.log.info({ listener: l.name, address: boundAddress(rl) }, 'listener bound'),
          (err: Error) => {
            this.running.delete(key);
            this.failed.set(l.name, `listener "${l.name}": cannot bind ${addressKey(l)}: ${err.message}`);
            this.log.error({ listener: l.name, err: err.message }, 'listener bind failed');
          },
        ));
      } catch (err) {
        this.failed.set(l.name, (err as Error).message);
        this.log.error({ listener: l.name, err: (err as Error).message }, 'listener not started');
      }
    }
    await Promise.all(binds);
  }

  /** The bound address of a listener by name (port 0 in the config resolves to the real port). */
  address(name: string): net.AddressInfo | string | undefined {
    for (const rl of this.running.values()) if (rl.config.name === name) return rl.server.address() ?? undefined;
    return undefined;
  }

  /** Listener name → bound address, for /listeners. */
  list(): { name: string; address: string }[] {
    return [...this.running.values()].map((rl) => ({ name: rl.config.name, address: boundAddress(rl) }));
  }

  /** Stop accepting everywhere and let keep-alive peers know (Connection: close, GOAWAY). */
  startDrain(): void {
    for (const rl of this.running.values()) rl.setDraining();
  }

  async close(drainMs = this.drainMs): Promise<void> {
    await this.chain;
    const all = [...this.running.values()];
    this.running.clear();
    await Promise.all(all.map((rl) => rl.close(drainMs)));
  }
}

function addressKey(l: ListenerConfig): string {
  return l.address.isPipe ? `unix:${l.address.address}` : `${l.address.address}:${l.address.port}`;
}

function boundAddress(rl: RunningListener): string {
  const a = rl.server.address();
  if (a === null) return '';
  return typeof a === 'string' ? a : `${a.address}:${a.port}`;
}

function listen(rl: RunningListener): Promise<void> {
  const a = rl.config.address;
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    rl.server.once('error', onError);
    const done = () => {
      rl.server.off('error', onError);
      rl.server.on('error', noop);
      resolve();
    };
    if (a.isPipe) rl.server.listen(a.address, done);
    else rl.server.listen({ host: a.address, port: a.port, backlog: 1024 }, done);
  });
}

function noop(): void {}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

function isPlainMatch(c: FilterChain): boolean {
  const m = c.match;
  return m.destinationPort === undefined && !m.prefixRanges.length && !m.serverNames.length && m.transportProtocol === undefined && !m.applicationProtocols.length && m.sourceType === 'ANY' && !m.sourcePrefixRanges.length && !m.sourcePorts.length;
}

/** The HTTP/2 connection preface, or as much of it as arrived (at least 4 bytes: "PRI "). */
function startsWithPreface(b: Buffer): boolean {
  const n = Math.min(b.length, H2_PREFACE.length);
  return n >= 4 && H2_PREFACE.compare(b, 0, n, 0, n) === 0;
}

function plain(a: string | undefined): string {
  return a && a.startsWith('::ffff:') ? a.slice(7) : a ?? '';
}
