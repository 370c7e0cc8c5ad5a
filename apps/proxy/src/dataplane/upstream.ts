import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { ClusterConfig, Endpoint } from '../config/model.ts';
import { H1EndpointPool } from './h1-upstream.ts';
import { BreakerRegistry, type ClusterBreakers } from './resilience/breakers.ts';

/**
 * Upstream connection pools, per cluster and endpoint: HTTP/1.1 keep-alive sockets (an
 * http.Agent per cluster, which keys its free lists by endpoint) and one multiplexed HTTP/2
 * session per endpoint, replaced when it receives GOAWAY or closes.
 */
export class UpstreamPools {
  private readonly pools = new Map<string, ClusterPool>();

  /** Connections are counted against the cluster's circuit breakers (max_connections). */
  constructor(private readonly breakers: BreakerRegistry = new BreakerRegistry()) {}

  for(cluster: ClusterConfig): ClusterPool {
    let p = this.pools.get(cluster.name);
    if (!p) {
      p = new ClusterPool(cluster, this.breakers.for(cluster));
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

  constructor(
    public cluster: ClusterConfig,
    readonly breakers: ClusterBreakers,
  ) {
    // lifo: reuse the warmest socket, let the others reach the idle timeout.
    this.agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 1024, scheduling: 'lifo', timeout: cluster.idleTimeoutMs || undefined });
    const pool = this;
    // The agent's connect path, with the cluster's connect_timeout (Node has none of its own).
    this.agent.createConnection = function (options: net.NetConnectOpts) {
      const socket = net.createConnection(options);
      // Counted for max_connections (admission checked the limit before the request was sent).
      breakers.addConnection();
      socket.once('close', () => breakers.releaseConnection());
      const ms = pool.cluster.connectTimeoutMs;
      if (ms > 0) {
        const timer = setTimeout(connectTimedOut, ms, socket, ms);
        socket.once('connect', () => clearTimeout(timer));
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
    const authority = ep.isPipe ? 'http://localhost' : `http://${ep.address.includes(':') ? `[${ep.address}]` : ep.address}:${ep.port}`;
    const ms = this.cluster.connectTimeoutMs;
    s = http2.connect(authority, {
      ...(ep.isPipe ? { createConnection: () => net.createConnection(ep.address) } : {}),
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

  /** The fast path's HTTP/1.1 connection pool for an endpoint. */
  h1Pool(ep: Endpoint): H1EndpointPool {
    let p = this.h1.get(ep.key);
    if (p === undefined || p.endpoint !== ep) {
      // A new Endpoint object for the same key (new snapshot): idle connections stay usable.
      const old = p;
      p = new H1EndpointPool(this.cluster, ep, this.breakers);
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
type CountedSocket = net.Socket & { [kServed]?: number };

function connectTimedOut(socket: net.Socket, ms: number): void {
  socket.destroy(Object.assign(new Error(`connect timeout after ${ms} ms`), { code: CONNECT_TIMEOUT }));
}

/** Classifies an upstream error before a response: Envoy's response flag for it. */
export function upstreamErrorFlag(err: NodeJS.ErrnoException): 'UF' | 'UC' | 'UR' | 'UPE' {
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
