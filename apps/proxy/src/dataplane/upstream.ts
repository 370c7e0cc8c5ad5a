import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { ClusterConfig, Endpoint, ProxySnapshot } from '../config/model.ts';
import { H1EndpointPool } from './h1-upstream.ts';
import { endpointTls, kTlsFailure, newTlsCounters, TlsConnector, type TlsCounters, type TlsFailedError } from './upstream-tls.ts';
import { BreakerRegistry, type ClusterBreakers } from './resilience/breakers.ts';

/**
 * Upstream connection pools, per cluster and endpoint: HTTP/1.1 keep-alive sockets (an
 * http.Agent per cluster, which keys its free lists by endpoint) and one multiplexed HTTP/2
 * session per endpoint, replaced when it receives GOAWAY or closes.
 */
export class UpstreamPools {
  private readonly pools = new Map<string, ClusterPool>();

  /** Connections are counted against the cluster's circuit breakers (max_connections). */
  /** Envoy's ssl.* counters per cluster name (kept across snapshots, like the breakers' counters). */
  readonly tlsCounters = new Map<string, TlsCounters>();

  constructor(
    private readonly breakers: BreakerRegistry = new BreakerRegistry(),
    /** The current snapshot: its SDS secrets feed upstream TLS contexts. */
    private readonly snapshot?: () => ProxySnapshot,
  ) {}

  /** The TLS connector of a cluster, made on first use. */
  private connector(name: string): TlsConnector {
    let c = this.tlsCounters.get(name);
    if (!c) this.tlsCounters.set(name, (c = newTlsCounters()));
    const snapshot = this.snapshot;
    if (!snapshot) throw new Error('upstream TLS needs the pools to know the snapshot (UpstreamPools(breakers, snapshot))');
    return new TlsConnector(snapshot, c);
  }

  for(cluster: ClusterConfig): ClusterPool {
    let p = this.pools.get(cluster.name);
    if (!p) {
      p = new ClusterPool(cluster, this.breakers.for(cluster), () => this.connector(cluster.name));
      this.pools.set(cluster.name, p);
    } else if (p.cluster !== cluster) {
      p.cluster = cluster; // a new snapshot: pick up new timeouts; connections stay.
      for (const h of p.h1.values()) h.cluster = cluster;
    }
    return p;
  }

  /** Drops the pools of clusters gone from the configuration (in-flight requests finish). */
  retain(names: ReadonlySet<string> | ReadonlyMap<string, unknown>): void {
    for (const [name, p] of this.pools) {
      if (!names.has(name)) {
        p.retire();
        this.pools.delete(name);
      }
    }
  }

  closeAll(): void {
    for (const p of this.pools.values()) p.retire();
    this.pools.clear();
  }
}

const CONNECT_TIMEOUT = 'ECONNECTTIMEOUT';

export class ClusterPool {
  readonly agent: http.Agent;
  private readonly sessions = new Map<string, http2.ClientHttp2Session>();
  /** Sessions under max_requests_per_connection: the getter counts each stream handed out. */
  private readonly counted = new WeakMap<http2.ClientHttp2Session, () => http2.ClientHttp2Session>();
  /** The fast path's raw keep-alive HTTP/1.1 connections, per endpoint key. */
  readonly h1 = new Map<string, H1EndpointPool>();

  private tlsConnector: TlsConnector | undefined;

  constructor(
    public cluster: ClusterConfig,
    readonly breakers: ClusterBreakers,
    private readonly makeTlsConnector?: () => TlsConnector,
  ) {
    // lifo: reuse the warmest socket, let the others reach the idle timeout.
    this.agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 1024, scheduling: 'lifo', timeout: cluster.idleTimeoutMs || undefined });
    const pool = this;
    // The agent's connect path, with the cluster's connect_timeout (Node has none of its own).
    this.agent.createConnection = function (options: net.NetConnectOpts & { [kEndpoint]?: Endpoint }) {
      const ep = options[kEndpoint];
      const tlsSocket = ep ? pool.connectTls(ep, 'http1') : undefined;
      const socket = tlsSocket ?? net.createConnection(options);
      // Counted for max_connections (admission checked the limit before the request was sent).
      breakers.addConnection();
      socket.once('close', () => breakers.releaseConnection());
      const ms = pool.cluster.connectTimeoutMs;
      if (ms > 0) {
        const timer = setTimeout(connectTimedOut, ms, socket, ms);
        socket.once(tlsSocket ? 'secureConnect' : 'connect', () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      }
      return socket;
    } as typeof this.agent.createConnection;
    // max_requests_per_connection: a socket that served its share closes instead of idling.
    const keepSocketAlive = this.agent.keepSocketAlive.bind(this.agent);
    this.agent.keepSocketAlive = (socket: net.Socket) => {
      const max = pool.cluster.maxRequestsPerConnection;
      if (max !== undefined && max > 0) {
        const served = ((socket as CountedSocket)[kServed] ?? 0) + 1;
        (socket as CountedSocket)[kServed] = served;
        if (served >= max) return false;
      }
      return keepSocketAlive(socket);
    };
    // An idle socket is back: a request waiting for a connection may take it.
    this.agent.on('free', () => {
      if (breakers.hasSlotWaiters()) queueMicrotask(() => breakers.notifySlot());
    });
  }

  /**
   * A TLS connection to the endpoint when its transport socket is TLS; undefined for plaintext
   * (the common case: one property test when the cluster has no TLS at all).
   */
  connectTls(ep: Endpoint, protocol: 'http1' | 'http2' | 'tcp', extra?: { allowHalfOpen?: boolean }): net.Socket | undefined {
    const cluster = this.cluster;
    if (!usesTls(cluster)) return undefined;
    const t = endpointTls(cluster, ep);
    if (!t || !this.makeTlsConnector) return undefined;
    this.tlsConnector ??= this.makeTlsConnector();
    return this.tlsConnector.connect(ep, t, protocol, extra);
  }

  /** The agent's key for an endpoint's free sockets. */
  private agentName(ep: Endpoint): string {
    return this.agent.getName(ep.isPipe ? { socketPath: ep.address } : { host: ep.address, port: ep.port });
  }

  /**
   * A request to this endpoint can get a connection now: an idle one (fast-path pool or the
   * agent's, per `fast`), or room for a new one under max_connections.
   */
  connectionReady(ep: Endpoint, fast: boolean): boolean {
    return this.hasIdle(ep, fast) || this.breakers.canConnect();
  }

  /** An idle keep-alive connection to the endpoint is there (fast-path pool or the agent's). */
  hasIdle(ep: Endpoint, fast: boolean): boolean {
    if (fast) return this.h1.get(ep.key)?.hasIdle() ?? false;
    return (this.agent.freeSockets[this.agentName(ep)]?.length ?? 0) > 0;
  }

  /**
   * Closes one idle HTTP/1.1 connection (to any endpoint): at max_connections, idle connections
   * to other hosts must not starve requests queued for a host without one.
   */
  closeOneIdle(ep: Endpoint, fast: boolean): boolean {
    // Idle connections this request could use do not exist (else it would not wait): any other
    // idle one may go, including a fast-path one to the same endpoint for an http.Agent request.
    for (const [key, p] of this.h1) if ((key !== ep.key || !fast) && p.closeOneIdle()) return true;
    for (const list of Object.values(this.agent.freeSockets)) {
      const s = list?.[0];
      if (s) {
        s.destroy();
        return true;
      }
    }
    return false;
  }

  /** The HTTP/2 session to an endpoint, opened on first use. */
  session(ep: Endpoint): http2.ClientHttp2Session {
    let s = this.sessions.get(ep.key);
    if (s && !s.closed && !s.destroyed) return this.counted.get(s)?.() ?? s;
    const key = ep.key;
    const tlsSocket = this.connectTls(ep, 'http2');
    const scheme = tlsSocket ? 'https' : 'http';
    const authority = ep.isPipe ? `${scheme}://localhost` : `${scheme}://${ep.address.includes(':') ? `[${ep.address}]` : ep.address}:${ep.port}`;
    const ms = this.cluster.connectTimeoutMs;
    s = http2.connect(authority, {
      ...(tlsSocket ? { createConnection: () => tlsSocket } : ep.isPipe ? { createConnection: () => net.createConnection(ep.address) } : {}),
      peerMaxConcurrentStreams: 1000,
    });
    const session = s;
    this.sessions.set(key, session);
    // HTTP/2 multiplexes: one connection per endpoint, counted but not limited by max_connections.
    const breakers = this.breakers;
    breakers.addConnection();
    session.once('close', () => breakers.releaseConnection());
    const max = this.cluster.maxRequestsPerConnection;
    if (max !== undefined && max > 0) {
      // max_requests_per_connection: after that many streams the session takes no more and
      // closes once they finish (the close runs after the caller opened its stream).
      let streams = 0;
      const getter = (): http2.ClientHttp2Session => {
        if (++streams >= max) {
          drop();
          queueMicrotask(() => {
            if (!session.closed) session.close();
          });
        }
        return session;
      };
      this.counted.set(session, getter);
    }
    const drop = () => {
      if (this.sessions.get(key) === session) this.sessions.delete(key);
    };
    let timer: NodeJS.Timeout | undefined;
    if (ms > 0) {
      timer = setTimeout(() => {
        const err = Object.assign(new Error(`connect timeout after ${ms} ms`), { code: CONNECT_TIMEOUT });
        session.destroy(err);
      }, ms);
      session.once('connect', () => clearTimeout(timer));
    }
    session.on('error', drop); // streams get their own error events
    session.once('goaway', () => {
      drop();
      // No new streams may start on it; in-flight ones finish, then the connection closes.
      if (!session.closed) session.close();
    });
    session.once('close', () => {
      clearTimeout(timer);
      drop();
    });
    return this.counted.get(session)?.() ?? session;
  }

  private readonly h1Tls = (ep: Endpoint): net.Socket | undefined => this.connectTls(ep, 'http1');

  /** The fast path's HTTP/1.1 connection pool for an endpoint. */
  h1Pool(ep: Endpoint): H1EndpointPool {
    let p = this.h1.get(ep.key);
    if (p === undefined || p.endpoint !== ep) {
      // A new Endpoint object for the same key (new snapshot): idle connections stay usable.
      const old = p;
      p = new H1EndpointPool(this.cluster, ep, this.breakers, this.h1Tls);
      if (old) p.adopt(old);
      this.h1.set(ep.key, p);
    }
    return p;
  }

  retire(): void {
    for (const p of this.h1.values()) p.retire();
    this.h1.clear();
    for (const s of this.sessions.values()) s.close();
    this.sessions.clear();
    // Free keep-alive sockets close now; busy ones close when their request ends (keepAlive off).
    (this.agent as unknown as { keepAlive: boolean }).keepAlive = false;
    for (const list of Object.values(this.agent.freeSockets)) for (const s of list ?? []) s.destroy();
  }
}

const kServed = Symbol('tern.served');
/** An http.request option naming the Endpoint: the agent's createConnection picks its transport socket. */
const kEndpoint = Symbol('tern.endpoint');

/**
 * Spread into http.request options on the cluster's agent (Node passes it on to createConnection,
 * which picks TLS by endpoint); nothing — no object per request — for a cluster without TLS.
 */
export function endpointOption(cluster: ClusterConfig, ep: Endpoint): Record<never, never> | undefined {
  return usesTls(cluster) ? { [kEndpoint]: ep } : undefined;
}

/** Whether any endpoint of the cluster may need TLS (a transport socket or socket matches). */
function usesTls(cluster: ClusterConfig): boolean {
  return cluster.upstreamTls !== undefined || cluster.transportSocketMatches.length > 0;
}
type CountedSocket = net.Socket & { [kServed]?: number };

function connectTimedOut(socket: net.Socket, ms: number): void {
  socket.destroy(Object.assign(new Error(`connect timeout after ${ms} ms`), { code: CONNECT_TIMEOUT }));
}

/** Classifies an upstream error before a response: Envoy's response flag for it. */
export function upstreamErrorFlag(err: NodeJS.ErrnoException): 'UF' | 'UC' | 'UR' | 'UPE' {
  // A TLS connection that never became secure is a connection failure, as in Envoy.
  if ((err as TlsFailedError)[kTlsFailure] !== undefined) return 'UF';
  const code = err.code ?? '';
  if (code.startsWith('HPE_') || code === 'ERR_HTTP2_PROTOCOL_ERROR' || code === 'ERR_HTTP2_SESSION_ERROR' && /protocol/i.test(err.message)) return 'UPE';
  switch (code) {
    case 'ECONNREFUSED':
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EADDRNOTAVAIL':
    case 'ENOENT':
    case CONNECT_TIMEOUT:
      return 'UF';
    case 'ERR_HTTP2_STREAM_ERROR':
      return 'UR';
    default:
      return 'UC';
  }
}
