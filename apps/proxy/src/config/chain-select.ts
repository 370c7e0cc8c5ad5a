/**
 * Filter chain selection for a new connection, in Envoy's order: destination port, destination IP
 * (longest prefix), server name (exact, then longest wildcard), transport protocol, application
 * protocols, source type, source IP (longest prefix), source port. At every step the chains that
 * name the criterion and match it win over the ones that leave it unset; if none match and none
 * leave it unset, there is no chain (the default_filter_chain, if any, is used).
 */
import { ipBytes } from './compile-listener.ts';
import type { CidrRange, FilterChain, ListenerConfig } from './model.ts';

/** What is known about a connection when its chain is chosen. */
export interface ConnectionInfo {
  readonly destinationPort?: number;
  readonly destinationIp?: string;
  /** SNI (from tls_inspector), lower-case. */
  readonly serverName?: string;
  /** 'tls' or 'raw_buffer' (tls_inspector); default 'raw_buffer'. */
  readonly transportProtocol?: string;
  /** ALPN offered by the client (tls_inspector) or detected (http_inspector: 'http/1.1', 'h2c'). */
  readonly applicationProtocols?: readonly string[];
  readonly sourceIp?: string;
  readonly sourcePort?: number;
}

export function selectFilterChain(listener: ListenerConfig, conn: ConnectionInfo): FilterChain | undefined {
  let c: readonly FilterChain[] = listener.filterChains;
  const dst = conn.destinationIp !== undefined ? ipBytes(conn.destinationIp) : undefined;
  const src = conn.sourceIp !== undefined ? ipBytes(conn.sourceIp) : undefined;
  c = step(c, (f) => f.match.destinationPort === undefined, (f) => (f.match.destinationPort === conn.destinationPort ? 1 : -1));
  c = step(c, (f) => f.match.prefixRanges.length === 0, (f) => bestPrefix(f.match.prefixRanges, dst));
  c = step(c, (f) => f.match.serverNames.length === 0, (f) => serverNameScore(f.match.serverNames, conn.serverName));
  c = step(c, (f) => f.match.transportProtocol === undefined, (f) => (f.match.transportProtocol === (conn.transportProtocol ?? 'raw_buffer') ? 1 : -1));
  c = step(c, (f) => f.match.applicationProtocols.length === 0, (f) => (f.match.applicationProtocols.some((p) => conn.applicationProtocols?.includes(p)) ? 1 : -1));
  c = step(c, (f) => f.match.sourceType === 'ANY', (f) => (sourceTypeMatches(f.match.sourceType, conn, src, dst) ? 1 : -1));
  c = step(c, (f) => f.match.sourcePrefixRanges.length === 0, (f) => bestPrefix(f.match.sourcePrefixRanges, src));
  c = step(c, (f) => f.match.sourcePorts.length === 0, (f) => (conn.sourcePort !== undefined && f.match.sourcePorts.includes(conn.sourcePort) ? 1 : -1));
  return c[0] ?? listener.defaultFilterChain;
}

/** Keeps the best-scoring chains among those that specify the criterion, else those that do not. */
function step(chains: readonly FilterChain[], unset: (f: FilterChain) => boolean, score: (f: FilterChain) => number): readonly FilterChain[] {
  if (chains.length === 0) return chains;
  let best = -1;
  let winners: FilterChain[] = [];
  const fallback: FilterChain[] = [];
  for (const f of chains) {
    if (unset(f)) {
      fallback.push(f);
      continue;
    }
    const s = score(f);
    if (s < 0) continue;
    if (s > best) {
      best = s;
      winners = [f];
    } else if (s === best) winners.push(f);
  }
  return winners.length > 0 ? winners : fallback;
}

function bestPrefix(ranges: readonly CidrRange[], ip: Uint8Array | undefined): number {
  if (!ip) return -1;
  let best = -1;
  for (const r of ranges) if (r.bytes.length === ip.length && r.prefixLen > best && inRange(r, ip)) best = r.prefixLen;
  return best;
}

export function inRange(r: CidrRange, ip: Uint8Array): boolean {
  let bits = r.prefixLen;
  for (let i = 0; bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((ip[i] ?? 0) & mask) !== ((r.bytes[i] ?? 0) & mask)) return false;
  }
  return true;
}

/** Exact name scores highest; a wildcard `*.example.com` scores by its length. */
function serverNameScore(names: readonly string[], sni: string | undefined): number {
  if (!sni) return -1;
  let best = -1;
  for (const n of names) {
    if (n === sni) return Number.MAX_SAFE_INTEGER;
    if (n.startsWith('*.') && sni.length > n.length - 1 && sni.endsWith(n.slice(1)) && n.length > best) best = n.length;
  }
  return best;
}

function sourceTypeMatches(type: string, conn: ConnectionInfo, src: Uint8Array | undefined, dst: Uint8Array | undefined): boolean {
  const local = !!src && ((src.length === 4 && src[0] === 127) || (src.length === 16 && src.every((b, i) => (i === 15 ? b === 1 : b === 0))) || (!!dst && conn.sourceIp === conn.destinationIp));
  return type === 'SAME_IP_OR_LOOPBACK' ? local : !local;
}
