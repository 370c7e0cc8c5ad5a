import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import type { ClusterConfig, Endpoint } from '../config/model.ts';
import { H1EndpointPool } from './h1-upstream.ts';

/**
 * Upstream connection pools, per cluster and endpoint: HTTP/1.1 keep-alive sockets (an
 * http.Agent per cluster, which keys its free lists by endpoint) and one multiplexed HTTP/2
 * session per endpoint, replaced when it receives GOAWAY or closes.
 */
export class UpstreamPools {
  private readonly pools = new Map<string, ClusterPool>();

  for(cluster: ClusterConfig): ClusterPool {
    let p = this.pools.get(cluster.name);
    if (!p) {
      p = new ClusterPool(cluster);
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
  /** The fast path's raw keep-alive HTTP/1.1 connections, per endpoint key. */
  readonly h1 = new Map<string, H1EndpointPool>();

  constructor(public cluster: ClusterConfig) {
    // lifo: reuse the warmest socket, let the others reach the idle timeout.
    this.agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 1024, scheduling: 'lifo', timeout: cluster.idleTimeoutMs || undefined });
    const pool = this;
    // The agent's connect path, with the cluster's connect_timeout (Node has none of its own).
    this.agent.createConnection = function (options: net.NetConnectOpts) {
      const socket = net.createConnection(options);
      const ms = pool.cluster.connectTimeoutMs;
      if (ms > 0) {
        const timer = setTimeout(connectTimedOut, ms, socket, ms);
        socket.once('connect', () => clearTimeout(timer));
        socket.once('close', () => clearTimeout(timer));
      }
      return socket;
    } as typeof this.agent.createConnection;
  }

  /** The HTTP/2 session to an endpoint, opened on first use. */
  session(ep: Endpoint): http2.ClientHttp2Session {
    let s = this.sessions.get(ep.key);
    if (s && !s.closed && !s.destroyed) return s;
    const key = ep.key;
    const authority = ep.isPipe ? 'http://localhost' : `http://${ep.address.includes(':') ? `[${ep.address}]` : ep.address}:${ep.port}`;
    const ms = this.cluster.connectTimeoutMs;
    s = http2.connect(authority, {
      ...(ep.isPipe ? { createConnection: () => net.createConnection(ep.address) } : {}),
      peerMaxConcurrentStreams: 1000,
    });
    const session = s;
    this.sessions.set(key, session);
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
    return session;
  }

  /** The fast path's HTTP/1.1 connection pool for an endpoint. */
  h1Pool(ep: Endpoint): H1EndpointPool {
    let p = this.h1.get(ep.key);
    if (p === undefined || p.endpoint !== ep) {
      // A new Endpoint object for the same key (new snapshot): idle connections stay usable.
      const old = p;
      p = new H1EndpointPool(this.cluster, ep);
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
