import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1 plus the legacy Keep-Alive/Proxy-Connection): they describe
 * one connection, so a proxy must not forward them. `te` is special: `te: trailers` is end-to-end
 * for gRPC over HTTP/2 and is kept, as Envoy does.
 */
const HOP_BY_HOP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade',
  'http2-settings', 'proxy-authorization', 'proxy-authenticate',
]);

export function isHopByHop(name: string): boolean {
  return HOP_BY_HOP.has(name);
}

/** The header Tern's sidecars use to tell each other who they are (Istio uses x-envoy-peer-metadata). */
export const PEER_HEADER = 'x-tern-peer';

export interface CopyOptions {
  /** Strip every x-envoy-* header (the request comes from outside the mesh: Envoy's "edge"). */
  stripEnvoy: boolean;
  /** Keep Connection/Upgrade (a WebSocket or other HTTP/1.1 upgrade being forwarded). */
  upgrade: boolean;
}

/**
 * Copies end-to-end request or response headers: drops hop-by-hop headers, the names the
 * Connection header lists, HTTP/2 pseudo headers, our peer header, and (at the edge) x-envoy-*.
 */
export function copyEndToEnd(src: IncomingHttpHeaders, opts: CopyOptions): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const conn = src.connection;
  // Most requests carry no Connection header or just keep-alive/close: skip the parse then.
  const listed = conn !== undefined && conn !== 'keep-alive' && conn !== 'close' && conn !== 'Keep-Alive' ? connectionTokens(conn) : undefined;
  for (const name in src) {
    const value = src[name];
    if (value === undefined) continue;
    const c = name.charCodeAt(0);
    if (c === 58 /* : */) continue;
    if (HOP_BY_HOP.has(name)) {
      if (name === 'te') {
        if (typeof value === 'string' && value.toLowerCase().includes('trailers')) out.te = 'trailers';
        continue;
      }
      if (opts.upgrade && (name === 'upgrade' || name === 'connection')) (out as Record<string, string | string[]>)[name] = value;
      continue;
    }
    if (listed !== undefined && listed.has(name)) continue;
    if (c === 120 /* x */) {
      if (name === PEER_HEADER) continue;
      if (opts.stripEnvoy && name.startsWith('x-envoy-')) continue;
    }
    out[name] = value;
  }
  return out;
}

function connectionTokens(value: string): Set<string> {
  const set = new Set<string>();
  for (const t of value.split(',')) {
    const n = t.trim().toLowerCase();
    if (n) set.add(n);
  }
  return set;
}

/** A fresh x-request-id: a UUID v4 (Node's randomUUID draws from a cached entropy pool: cheap). */
export function newRequestId(): string {
  return randomUUID();
}

/**
 * The client address Envoy trusts (its "trusted client address"): the peer itself when
 * xff_num_trusted_hops is 0, otherwise the address that many entries from the right of the
 * incoming x-forwarded-for (falling back to the peer when XFF is shorter).
 */
export function trustedClientAddress(xff: string | string[] | undefined, remote: string, trustedHops: number): string {
  if (trustedHops <= 0 || !xff) return remote;
  const parts = (Array.isArray(xff) ? xff.join(',') : xff).split(',');
  const pick = parts[parts.length - trustedHops];
  return pick ? pick.trim() : remote;
}

/** Loopback, RFC 1918 and unique-local addresses: Envoy's notion of an internal request. */
export function isInternalAddress(a: string): boolean {
  return a.startsWith('10.') || a.startsWith('127.') || a.startsWith('192.168.') || /^172\.(1[6-9]|2\d|3[01])\./.test(a) || a === '::1' || /^f[cd]/i.test(a);
}

/** Appends the downstream peer to x-forwarded-for (Envoy does so only with use_remote_address). */
export function appendXff(existing: string | string[] | undefined, remote: string): string {
  if (existing === undefined || existing === '') return remote;
  return `${Array.isArray(existing) ? existing.join(', ') : existing}, ${remote}`;
}

/** Strips the IPv4-mapped prefix Node reports for dual-stack sockets (`::ffff:127.0.0.1`). */
export function plainAddress(addr: string | undefined): string {
  if (!addr) return '';
  return addr.startsWith('::ffff:') ? addr.slice(7) : addr;
}

export interface PeerIdentity {
  workload: string;
  namespace: string;
  app: string;
  version: string;
  principal: string;
}

/**
 * x-tern-peer value: `workload;namespace;app;version;principal`, each part percent-encoded.
 * Positional and flat so that the receiving side can use the raw header value as a cache key.
 */
export function encodePeer(p: PeerIdentity): string {
  return [p.workload, p.namespace, p.app, p.version, p.principal].map(encodeURIComponent).join(';');
}

export function decodePeer(value: string): PeerIdentity | undefined {
  const parts = value.split(';');
  if (parts.length < 5) return undefined;
  try {
    const [workload, namespace, app, version, principal] = parts.map(decodeURIComponent) as [string, string, string, string, string];
    return { workload, namespace, app, version, principal };
  } catch {
    return undefined;
  }
}
