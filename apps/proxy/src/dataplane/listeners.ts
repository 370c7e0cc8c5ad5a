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
import { admitTlsConnection, listenerTlsCounters, type ListenerTlsCounters } from './listener-tls-stats.ts';
import { MissingSecretError, sdsSecretsKey, serverTls, type ServerTls } from './tls.ts';
import { TcpContext } from './tcp.ts';
import { FastConn, fastPathEnabled, startTimeoutSweep } from './h1-fast.ts';
import { CONNTRACK_PATH, conntrackAvailable, connectionDestination, readOriginalDst, setDestination, type Destination } from './original-dst.ts';
import { EXTENSION_TYPE_URL } from '@tern/xds';

/** Listeners that need the original destination of redirected connections (iptables). */
export function restoresDestination(l: ListenerConfig): boolean {
  return l.useOriginalDst || l.listenerFilters.includes(EXTENSION_TYPE_URL.originalDst);
}

/** Why a listener cannot be served by this proxy, or undefined. */
export function unsupportedListener(l: ListenerConfig, conntrackPath = CONNTRACK_PATH): string | undefined {
  if (restoresDestination(l)) {
    const why = conntrackAvailable(conntrackPath);
    if (why) return `listener "${l.name}": ${why}`;
  }
  return undefined;
}

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');

/** A filter chain ready to take connections. */
interface ChainRuntime {
  chain: FilterChain;
  tls?: ServerTls;
  /** The referenced SDS secrets' content when `tls` was built (sdsSecretsKey). */
  tlsSecrets?: string;
  http?: { ctx: HttpContext; h1: http.Server; h2: http2.Http2Server; sessions: Set<http2.ServerHttp2Session>; fast: Set<FastConn>; sweep?: NodeJS.Timeout };
  tcp?: TcpContext;
  /** A never-listening tls.Server that terminates TLS for connections handed to it. */
  tlsServer?: tls.Server;
  /** Why a TLS chain cannot terminate TLS yet: an SDS secret it names has not arrived. */
  tlsPending?: string;
}

function makeTlsServer(rt: ChainRuntime, t: ServerTls, stats: ListenerTlsCounters): tls.Server {
  const server = tls.createServer({
    ...t.options,
    ALPNProtocols: rt.http ? t.alpn : t.alpn.filter((p) => p !== 'h2'),
    requestCert: t.requestCert,
    // Judged in admitTlsConnection, to count why a client certificate was refused.
    rejectUnauthorized: false,
    handshakeTimeout: 10000,
  });
  server.on('secureConnection', (ts: tls.TLSSocket) => {
    ts.on('error', noop);
    if (!admitTlsConnection(stats, ts, t.requestCert)) {
      ts.destroy();
      return;
    }
    if (rt.tcp) rt.tcp.handle(ts);
    else if (ts.alpnProtocol === 'h2') rt.http!.h2.emit('connection', ts);
    else serveHttp1(rt.http!, ts);
  });
  server.on('tlsClientError', () => stats.connection_error++);
  return server;
}

/**
 * HTTP/1.1 on a plain or a TLS socket: the raw-socket fast path (it hands upgrades etc. to node:http
 * itself), or node:http when the fast path is off.
 */
function serveHttp1(h: NonNullable<ChainRuntime['http']>, socket: net.Socket): void {
  if (!fastPathEnabled) {
    h.h1.emit('connection', socket);
    return;
  }
  if (h.sweep === undefined) {
    const hcm = h.ctx.hcm;
    h.sweep = startTimeoutSweep(h.fast, Math.min(hcm.requestHeadersTimeoutMs || 60000, hcm.requestTimeoutMs || Infinity), hcm.requestTimeoutMs ?? 0, hcm.idleTimeoutMs, () => (h.sweep = undefined));
  }
  new FastConn(socket, h.ctx, h.h1, h.fast);
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
  /** Connections are matched (and handed off) by their original destination. */
  restoresDst = false;

  constructor(
    readonly manager: ListenerManager,
    public config: ListenerConfig,
  ) {
    this.server = net.createServer({ allowHalfOpen: true, noDelay: true }, (s) => this.onConnection(s));
  }

  configure(config: ListenerConfig, snap: ProxySnapshot): void {
    this.config = config;
    this.rawKey = JSON.stringify(config.raw);
    this.restoresDst = restoresDestination(config);
    const engine = this.manager.engine;
    const build = (chain: FilterChain, i: string): ChainRuntime => {
      const rt: ChainRuntime = { chain };
      if (chain.transportSocket) {
        rt.tlsSecrets = sdsSecretsKey(chain.transportSocket, snap);
        try {
          rt.tls = serverTls(chain.transportSocket, snap, `listener ${config.name} filter_chains[${i}].transport_socket`);
        } catch (err) {
          // Only this chain waits (Envoy warms the whole listener): a PERMISSIVE listener keeps
          // serving plain text while the workload certificate is on its way, or never comes.
          if (!(err instanceof MissingSecretError)) throw err;
          rt.tlsPending = err.message;
          this.manager.log.warn({ listener: config.name, chain: i, err: err.message }, 'TLS filter chain waits for its secret: its connections are refused until it arrives (no workload identity yet? docs/proxy.md "Workload identity")');
        }
      }
      const h = chain.handler;
      if (h.kind === 'http') rt.http = makeHttp(new HttpContext(engine, config, chain, h), rt);
      else rt.tcp = new TcpContext(engine, config, chain, h);
      if (rt.tls) rt.tlsServer = makeTlsServer(rt, rt.tls, this.tlsStats());
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
   * The listener is unchanged but SDS secrets it references changed (a rotated workload
   * certificate): new handshakes get the new SecureContext; established TLS connections keep the
   * one they were made with, so nothing drains. A secret that no longer builds keeps the old context.
   */
  refreshSecrets(snap: ProxySnapshot): void {
    for (const rt of this.byChain.values()) {
      const ts = rt.chain.transportSocket;
      if (!ts) continue;
      const key = sdsSecretsKey(ts, snap);
      if (key === rt.tlsSecrets) continue;
      try {
        const next = serverTls(ts, snap, `listener ${this.config.name} transport_socket`);
        if (rt.tlsServer) rt.tlsServer.setSecureContext(next.options);
        else {
          rt.tlsServer = makeTlsServer(rt, next, this.tlsStats());
          rt.tlsPending = undefined;
          this.manager.log.info({ listener: this.config.name }, 'TLS filter chain: its secret arrived, serving TLS');
        }
        rt.tls = next;
        rt.tlsSecrets = key;
      } catch (err) {
        if (err instanceof MissingSecretError && !rt.tlsServer) {
          rt.tlsSecrets = key;
          continue;
        }
        this.manager.log.error({ listener: this.config.name, err: (err as Error).message }, 'TLS secrets changed but do not build; keeping the previous certificate');
      }
    }
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

  /** This listener's downstream TLS counters (Envoy's `listener.<ip>_<port>.ssl.*`). */
  private tlsStats(): ListenerTlsCounters {
    const a = this.config.address;
    return listenerTlsCounters(this.manager.engine, `${a.address}_${a.port}`);
  }

  private onConnection(socket: net.Socket): void {
    if (this.draining) {
      socket.destroy();
      return;
    }
    this.track(socket);
    socket.on('error', noop);
    if (!this.restoresDst) {
      this.accept(socket);
      return;
    }
    readOriginalDst(socket, this.manager.conntrackPath).then(
      (dst) => {
        if (socket.destroyed) return;
        if (dst) setDestination(socket, dst);
        this.manager.handOff(this, socket, dst);
      },
      (err: Error) => {
        this.manager.logOnce('conntrack', `listener "${this.config.name}": cannot read the original destination: ${err.message}`);
        if (!socket.destroyed) this.accept(socket);
      },
    );
  }

  private track(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  /** A connection another listener accepted, whose original destination is this listener's address. */
  adopt(socket: net.Socket): void {
    if (this.draining) {
      socket.destroy();
      return;
    }
    this.track(socket);
    this.accept(socket);
  }

  accept(socket: net.Socket): void {
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
      const dst = connectionDestination(socket);
      const chain = selectFilterChain(this.config, {
        destinationPort: dst?.port,
        destinationIp: dst?.address,
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
    if (rt.tlsPending !== undefined) {
      this.tlsStats().connection_error++;
      socket.destroy();
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
    else serveHttp1(h, socket);
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
  /** bind_to_port: false listeners, reached only by hand-off from a use_original_dst listener. */
  private readonly virtual = new Map<string, RunningListener>();
  /** `ip:port` → listener, for hand-off by original destination (wildcard addresses as bound). */
  private byAddress = new Map<string, RunningListener>();
  /** Listeners that could not be started, with the reason (shown by /listeners and /ready). */
  readonly failed = new Map<string, string>();
  private chain: Promise<void> = Promise.resolve();
  private readonly logged = new Set<string>();

  constructor(
    readonly engine: Engine,
    readonly log: Logger,
    private readonly drainMs = 5000,
    /** Where the kernel's connection-tracking table is read (tests point it elsewhere). */
    readonly conntrackPath = CONNTRACK_PATH,
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
    this.applyVirtual(snap);
    for (const l of snap.listeners.values()) {
      if (!l.bindToPort) continue;
      const why = unsupportedListener(l, this.conntrackPath);
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
          else {
            existing.config = l;
            existing.refreshSecrets(snap);
          }
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
    this.indexAddresses();
  }

  /** Virtual listeners: their chains are built like any listener's; nothing is bound. */
  private applyVirtual(snap: ProxySnapshot): void {
    const wanted = new Map<string, ListenerConfig>();
    for (const l of snap.listeners.values()) if (!l.bindToPort) wanted.set(l.name, l);
    for (const [name, rl] of this.virtual) {
      if (wanted.get(name)?.address.port === rl.config.address.port && wanted.get(name)?.address.address === rl.config.address.address) continue;
      this.virtual.delete(name);
      void rl.close(this.drainMs);
    }
    for (const [name, l] of wanted) {
      try {
        const existing = this.virtual.get(name);
        if (existing) {
          if (existing.rawKey !== JSON.stringify(l.raw)) existing.configure(l, snap);
          else {
            existing.config = l;
            existing.refreshSecrets(snap);
          }
          continue;
        }
        const rl = new RunningListener(this, l);
        rl.configure(l, snap);
        this.virtual.set(name, rl);
      } catch (err) {
        this.failed.set(l.name, (err as Error).message);
        this.log.error({ listener: l.name, err: (err as Error).message }, 'listener not started');
      }
    }
  }

  private indexAddresses(): void {
    const index = new Map<string, RunningListener>();
    // Bound listeners win over virtual ones on the same address, as in Envoy's lookup.
    for (const rl of [...this.virtual.values(), ...this.running.values()]) {
      const a = rl.config.address;
      if (!a.isPipe) index.set(`${a.address}:${a.port}`, rl);
    }
    this.byAddress = index;
  }

  /**
   * Envoy's use_original_dst: the connection goes to the listener bound to its original
   * destination (exact address first, then the wildcard address on that port); with none, the
   * listener that accepted it serves it. A listener without use_original_dst only restores the
   * destination for its own filter-chain matching.
   */
  handOff(from: RunningListener, socket: net.Socket, dst: Destination | undefined): void {
    let target: RunningListener | undefined;
    if (dst && from.config.useOriginalDst) {
      const v6 = dst.address.includes(':');
      target = this.byAddress.get(`${dst.address}:${dst.port}`) ?? this.byAddress.get(`${v6 ? '::' : '0.0.0.0'}:${dst.port}`);
    }
    if (!target || target === from) {
      from.accept(socket);
      return;
    }
    from.sockets.delete(socket);
    target.adopt(socket);
  }

  logOnce(key: string, message: string): void {
    if (this.logged.has(key)) return;
    this.logged.add(key);
    this.log.error({}, message);
  }

  /** The bound address of a listener by name (port 0 in the config resolves to the real port). */
  address(name: string): net.AddressInfo | string | undefined {
    for (const rl of this.running.values()) if (rl.config.name === name) return rl.server.address() ?? undefined;
    return undefined;
  }

  /** Listener name → bound address, for /listeners (virtual listeners: their address, not bound). */
  list(): { name: string; address: string; virtual?: true }[] {
    return [
      ...[...this.running.values()].map((rl) => ({ name: rl.config.name, address: boundAddress(rl) })),
      ...[...this.virtual.values()].map((rl) => ({ name: rl.config.name, address: addressKey(rl.config), virtual: true as const })),
    ];
  }

  /** Stop accepting everywhere and let keep-alive peers know (Connection: close, GOAWAY). */
  startDrain(): void {
    for (const rl of [...this.running.values(), ...this.virtual.values()]) rl.setDraining();
  }

  async close(drainMs = this.drainMs): Promise<void> {
    await this.chain;
    const all = [...this.running.values(), ...this.virtual.values()];
    this.running.clear();
    this.virtual.clear();
    this.byAddress = new Map();
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
