/**
 * The original destination of a connection that iptables redirected to this proxy (REDIRECT /
 * DNAT in the nat table, as istio-init sets up).
 *
 * Envoy asks the kernel with getsockopt(SO_ORIGINAL_DST); Node.js has no such call and no native
 * addon may be installed, so the proxy reads the same fact from the connection-tracking table the
 * kernel keeps for NAT: /proc/net/nf_conntrack lists, per connection, the tuple as the client sent
 * it and the tuple the reply travels on. A redirected connection's reply tuple is exactly what the
 * accepted socket sees (our address and port -> the client's), and its original tuple carries the
 * destination the client dialled. The table is per network namespace, so in a pod it holds only the
 * pod's connections.
 */
import fs from 'node:fs';
import type net from 'node:net';
import { ipBytes } from '../config/compile-listener.ts';

export interface Destination {
  readonly address: string;
  readonly port: number;
}

export const CONNTRACK_PATH = '/proc/net/nf_conntrack';

/** Whether this machine exposes the table (the nf_conntrack module with its /proc interface). */
export function conntrackAvailable(path = CONNTRACK_PATH): string | undefined {
  try {
    fs.accessSync(path, fs.constants.R_OK);
    return undefined;
  } catch (err) {
    return `${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): the original destination of redirected connections is unknown`;
  }
}

/**
 * The destination the client dialled, or undefined when the connection was not redirected (it
 * reached our port directly) or has no entry (already gone).
 */
export async function readOriginalDst(socket: net.Socket, path = CONNTRACK_PATH): Promise<Destination | undefined> {
  const local = socket.localAddress;
  const localPort = socket.localPort;
  const remote = socket.remoteAddress;
  const remotePort = socket.remotePort;
  if (!local || !remote || localPort === undefined || remotePort === undefined) return undefined;
  const table = await fs.promises.readFile(path, 'latin1');
  return findOriginalDst(table, { address: remote, port: remotePort }, { address: local, port: localPort });
}

/**
 * Pure lookup in the table's text. Lines read
 * `ipv4 2 tcp 6 431999 ESTABLISHED src=A dst=B sport=a dport=b [UNREPLIED] src=C dst=D sport=c dport=d [ASSURED] …`:
 * the first tuple as sent, the second as the reply travels (C = our address, c = our port).
 */
export function findOriginalDst(table: string, client: Destination, ours: Destination): Destination | undefined {
  const clientIp = ipKey(client.address);
  const ourIp = ipKey(ours.address);
  // Cheap filter before parsing: the reply tuple names our port and the client's.
  const needle = `sport=${ours.port} dport=${client.port} `;
  let from = 0;
  for (;;) {
    const hit = table.indexOf(needle, from);
    if (hit < 0) return undefined;
    const start = table.lastIndexOf('\n', hit) + 1;
    let end = table.indexOf('\n', hit);
    if (end < 0) end = table.length;
    from = end;
    const line = table.slice(start, end);
    if (!/\btcp\b/.test(line)) continue;
    const t = tuples(line);
    if (!t || t.reply.sport !== ours.port || t.reply.dport !== client.port) continue;
    if (ipKey(t.reply.src) !== ourIp || ipKey(t.reply.dst) !== clientIp) continue;
    if (ipKey(t.orig.dst) === ourIp && t.orig.dport === ours.port) return undefined; // not redirected
    return { address: t.orig.dst, port: t.orig.dport };
  }
}

interface Tuple {
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

function tuples(line: string): { orig: Tuple; reply: Tuple } | undefined {
  const found: Tuple[] = [];
  let cur: Partial<Tuple> = {};
  for (const field of line.split(' ')) {
    const eq = field.indexOf('=');
    if (eq < 0) continue;
    const k = field.slice(0, eq);
    const v = field.slice(eq + 1);
    if (k === 'src') cur = { src: v };
    else if (k === 'dst') cur.dst = v;
    else if (k === 'sport') cur.sport = Number(v);
    else if (k === 'dport') {
      cur.dport = Number(v);
      if (cur.src !== undefined && cur.dst !== undefined && cur.sport !== undefined) found.push(cur as Tuple);
      if (found.length === 2) break;
    }
  }
  return found.length === 2 ? { orig: found[0]!, reply: found[1]! } : undefined;
}

/** One spelling per address: the kernel writes IPv6 in full, Node compressed and v4-mapped. */
function ipKey(ip: string): string {
  const b = ipBytes(ip);
  if (!b) return ip;
  if (b.length === 16 && b.slice(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) return b.slice(12).join('.');
  return b.length === 4 ? b.join('.') : Buffer.from(b).toString('hex');
}

const kDestination = Symbol('tern.destination');

/** Remembers the restored destination on the accepted socket (ORIGINAL_DST clusters read it). */
export function setDestination(socket: net.Socket, dst: Destination): void {
  (socket as unknown as Record<symbol, Destination>)[kDestination] = dst;
}

/**
 * The original destination restored for a redirected connection, if any. TLS sockets are looked
 * through to the accepted socket they wrap.
 */
export function restoredDestination(socket: net.Socket | undefined): Destination | undefined {
  if (!socket) return undefined;
  const tagged = socket as unknown as Record<symbol, Destination | undefined> & { _parent?: net.Socket };
  return tagged[kDestination] ?? (tagged._parent as unknown as Record<symbol, Destination | undefined> | undefined)?.[kDestination];
}

/** Where the client meant to go: the restored original destination, else the address it reached. */
export function connectionDestination(socket: net.Socket | undefined): Destination | undefined {
  const dst = restoredDestination(socket);
  if (dst || !socket?.localAddress || socket.localPort === undefined) return dst;
  return { address: plain(socket.localAddress), port: socket.localPort };
}

function plain(a: string): string {
  return a.startsWith('::ffff:') ? a.slice(7) : a;
}
