/**
 * TLS origination to upstream endpoints: which transport socket an endpoint gets (Envoy's
 * transport_socket_matches), client SecureContexts built from the current SDS secrets (rebuilt
 * when the secrets they use change), the SAN check against the cluster's matchers, session
 * resumption per endpoint, and Envoy's `ssl.*` cluster counters.
 */
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { matchesSocket, socketMatchMetadata, type SanMatcher, type TlsSource, type UpstreamTls } from '../config/compile-upstream-tls.ts';
import { matchString } from '../config/compile-common.ts';
import { setResumedPeer, spiffeOf } from './tls-peer.ts';
import type { ClusterConfig, Endpoint, JsonObject, ProxySnapshot } from '../config/model.ts';

/** Envoy's cluster.<name>.ssl.* counters this proxy keeps. */
export interface TlsCounters {
  handshake: number;
  session_reused: number;
  connection_error: number;
  fail_verify_error: number;
  fail_verify_san: number;
}

export const TLS_COUNTERS = ['handshake', 'session_reused', 'connection_error', 'fail_verify_error', 'fail_verify_san'] as const;

export const newTlsCounters = (): TlsCounters => ({ handshake: 0, session_reused: 0, connection_error: 0, fail_verify_error: 0, fail_verify_san: 0 });

/** Set on an error that failed a TLS upstream connection before it was secure: the reason for the access log. */
export const kTlsFailure = Symbol('tern.tlsFailure');
export type TlsFailedError = NodeJS.ErrnoException & { [kTlsFailure]?: string };

/** The cluster has TLS on some endpoint (a cheap test that keeps the plaintext path free of work). */
export function clusterHasTls(cluster: ClusterConfig): boolean {
  if (cluster.upstreamTls !== undefined) return true;
  for (const m of cluster.transportSocketMatches) if (m.tls !== undefined) return true;
  return false;
}

/** The transport socket for an endpoint: the first matching transport_socket_matches entry, else the cluster's. */
export function endpointTls(cluster: ClusterConfig, ep: Endpoint): UpstreamTls | undefined {
  const matches = cluster.transportSocketMatches;
  if (matches.length === 0) return cluster.upstreamTls;
  const meta = socketMatchMetadata(ep.metadata);
  for (const m of matches) if (matchesSocket(m.match, meta)) return m.tls;
  return cluster.upstreamTls;
}

/** Whether any SAN of the certificate satisfies one matcher (no matchers: any certificate). */
export function sanMatches(sans: readonly SanMatcher[], subjectAltName: string | undefined): boolean {
  if (sans.length === 0) return true;
  const names = parseSubjectAltName(subjectAltName ?? '');
  for (const m of sans) {
    for (const n of names) if (n.type === m.type && matchString(m.matcher, n.value)) return true;
  }
  return false;
}

/** Node's subjectaltname string ("URI:spiffe://a, DNS:b", values JSON-quoted when they need it). */
export function parseSubjectAltName(s: string): { type: SanMatcher['type'] | string; value: string }[] {
  const out: { type: string; value: string }[] = [];
  const re = /\s*([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:,|$)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null && m[0] !== '') {
    const raw = m[2]!;
    let value = raw;
    if (raw.startsWith('"')) {
      try {
        value = JSON.parse(raw) as string;
      } catch {
        value = raw.slice(1, -1);
      }
    }
    const t = m[1]!.trim();
    out.push({ type: t === 'IP Address' ? 'IP_ADDRESS' : t === 'email' ? 'EMAIL' : t, value });
  }
  return out;
}

interface ContextEntry {
  /** The snapshot secrets map this entry was checked against (identity: a cheap "nothing changed"). */
  secrets: ReadonlyMap<string, JsonObject>;
  /** The values of the SDS secrets used, serialized: a new value means a new context. */
  readonly key: string;
  readonly ctx?: tls.SecureContext;
  readonly error?: Error;
  /** TLS session per endpoint key: new connections resume (only with this context and these SAN rules). */
  readonly sessions: Map<string, Buffer>;
  /** The peer principal each endpoint's full handshake verified: a resumed session has no certificate to read. */
  readonly peers: Map<string, string>;
}

const MAX_SESSIONS = 1024;

/**
 * Opens TLS connections for one cluster. SecureContexts are cached per compiled UpstreamTls and
 * SDS secret values: a rotated `default` certificate or `ROOTCA` bundle gives new connections a
 * new context while pooled connections keep theirs.
 */
export class TlsConnector {
  private readonly contexts = new WeakMap<UpstreamTls, ContextEntry>();

  constructor(
    private readonly snapshot: () => ProxySnapshot,
    readonly counters: TlsCounters,
  ) {}

  /**
   * A TLS connection to the endpoint; connect timeouts are the caller's (wait for 'secureConnect').
   * `protocol` narrows ALPN so the server cannot pick a protocol the pool will not speak.
   */
  connect(ep: Endpoint, t: UpstreamTls, protocol: 'http1' | 'http2' | 'tcp', extra: { allowHalfOpen?: boolean } = {}): net.Socket {
    const entry = this.context(t);
    if (!entry.ctx) {
      // No usable certificate (an SDS secret not there yet, a bad file): the connection fails as a connect failure.
      const s = new net.Socket();
      const err = Object.assign(new Error(entry.error?.message ?? 'no TLS context'), { code: 'ERR_TLS_CONTEXT' }) as TlsFailedError;
      err[kTlsFailure] = 'no_client_context';
      this.counters.connection_error++;
      process.nextTick(() => s.destroy(err));
      return s;
    }
    const alpn = alpnFor(t.alpn, protocol);
    const session = entry.sessions.get(ep.key);
    const verify = t.trust !== undefined;
    const socket = tls.connect({
      ...(ep.isPipe ? { path: ep.address } : { host: ep.address, port: ep.port }),
      secureContext: entry.ctx,
      ...(t.sni ? { servername: t.sni } : {}),
      ...(alpn.length ? { ALPNProtocols: alpn } : {}),
      rejectUnauthorized: verify,
      // SPIFFE certificates have URI SANs only: the SAN matchers replace hostname verification.
      checkServerIdentity: (_host, cert) => (sanMatches(t.sans, cert.subjectaltname) ? undefined : sanMismatch(t, cert.subjectaltname)),
      ...(session ? { session } : {}),
      ...(t.minVersion ? { minVersion: t.minVersion } : {}),
      ...(t.maxVersion ? { maxVersion: t.maxVersion } : {}),
      ...(extra.allowHalfOpen ? { allowHalfOpen: true } : {}),
    });
    if (!ep.isPipe) socket.setNoDelay(true);
    const counters = this.counters;
    let secure = false;
    socket.once('secureConnect', () => {
      secure = true;
      counters.handshake++;
      if (socket.isSessionReused()) {
        counters.session_reused++;
        const peer = entry.peers.get(ep.key);
        if (peer !== undefined) setResumedPeer(socket, peer);
      } else if (verify && socket.authorized) {
        const peers = entry.peers;
        if (peers.size >= MAX_SESSIONS && !peers.has(ep.key)) peers.clear();
        peers.set(ep.key, spiffeOf(socket.getPeerCertificate().subjectaltname));
      }
    });
    socket.on('session', (s: Buffer) => {
      const sessions = entry.sessions;
      if (sessions.size >= MAX_SESSIONS && !sessions.has(ep.key)) sessions.clear();
      sessions.set(ep.key, s);
    });
    // Registered before the pool's own listener: the error is tagged before anyone classifies it.
    socket.once('error', (err: TlsFailedError) => {
      if (secure) return;
      if (err.code === SAN_MISMATCH) {
        counters.fail_verify_san++;
        err[kTlsFailure] = 'SAN_mismatch';
      } else if (isVerifyError(err.code)) {
        counters.fail_verify_error++;
        err[kTlsFailure] = `certificate_verify_failed:_${err.code}`;
      } else if (socket.connecting === false && err.code !== 'ECONNREFUSED') {
        counters.connection_error++;
        err[kTlsFailure] = `handshake_failed:_${(err.code ?? err.message).replace(/\s+/g, '_')}`;
        entry.sessions.delete(ep.key); // a session the server refused must not be offered again
      }
    });
    return socket;
  }

  private context(t: UpstreamTls): ContextEntry {
    const secrets = this.snapshot().secrets;
    const e = this.contexts.get(t);
    if (e && e.secrets === secrets) return e;
    const key = t.sdsNames.length ? JSON.stringify(t.sdsNames.map((n) => secrets.get(n) ?? null)) : '';
    if (e && e.key === key) {
      e.secrets = secrets;
      return e;
    }
    let entry: ContextEntry;
    try {
      entry = { secrets, key, ctx: tls.createSecureContext(secureContextOptions(t, secrets)), sessions: new Map(), peers: new Map() };
    } catch (err) {
      entry = { secrets, key, error: err as Error, sessions: new Map(), peers: new Map() };
    }
    this.contexts.set(t, entry);
    return entry;
  }
}

/** The SecureContext options of an UpstreamTls with the current secrets. Throws naming what is missing. */
export function secureContextOptions(t: UpstreamTls, secrets: ReadonlyMap<string, JsonObject>): tls.SecureContextOptions {
  const cert: (string | Buffer)[] = [];
  const key: (string | Buffer)[] = [];
  for (const c of t.certs) {
    if (c.kind === 'pair') {
      cert.push(read(c.cert, 'certificate_chain'));
      key.push(read(c.key, 'private_key'));
      continue;
    }
    const tc = secrets.get(c.name)?.tls_certificate as JsonObject | undefined;
    if (!tc || typeof tc !== 'object') throw new Error(`SDS secret "${c.name}" with a tls_certificate is not known`);
    cert.push(dataSource(tc.certificate_chain, `secret ${c.name}.tls_certificate.certificate_chain`));
    key.push(dataSource(tc.private_key, `secret ${c.name}.tls_certificate.private_key`));
  }
  let ca: string | Buffer | undefined;
  if (t.trust?.kind === 'ca') ca = read(t.trust.ca, 'trusted_ca');
  else if (t.trust?.kind === 'sds') {
    const name = t.trust.name;
    const vc = secrets.get(name)?.validation_context as JsonObject | undefined;
    if (!vc || typeof vc !== 'object') throw new Error(`SDS secret "${name}" with a validation_context is not known`);
    ca = dataSource(vc.trusted_ca, `secret ${name}.validation_context.trusted_ca`);
  }
  return { ...(cert.length ? { cert, key } : {}), ...(ca !== undefined ? { ca } : {}) };
}

function read(s: TlsSource, what: string): string | Buffer {
  if (s.kind === 'inline') return s.data;
  try {
    return fs.readFileSync(s.path);
  } catch (err) {
    throw new Error(`${what}: cannot read ${s.path}: ${(err as Error).message}`);
  }
}

function dataSource(d: unknown, where: string): string | Buffer {
  const o = (d ?? {}) as JsonObject;
  if (typeof o.inline_string === 'string') return o.inline_string;
  if (typeof o.inline_bytes === 'string') return Buffer.from(o.inline_bytes, 'base64');
  if (typeof o.filename === 'string') return read({ kind: 'file', path: o.filename }, where);
  throw new Error(`${where}: needs filename, inline_string or inline_bytes`);
}

/** ALPN offered for a pool: a protocol the pool would not speak is left out. */
function alpnFor(alpn: readonly string[], protocol: 'http1' | 'http2' | 'tcp'): string[] {
  if (protocol === 'tcp') return [...alpn];
  const drop = protocol === 'http1' ? 'h2' : 'http/1.1';
  const out = alpn.filter((p) => p !== drop);
  if (protocol === 'http2' && !out.includes('h2')) out.push('h2');
  return out;
}

const SAN_MISMATCH = 'ERR_TLS_SAN_MISMATCH';

function sanMismatch(t: UpstreamTls, got: string | undefined): Error {
  const want = t.sans.map((s) => `${s.type}:${s.matcher.kind === 'regex' ? s.matcher.source : s.matcher.value}`).join(', ');
  return Object.assign(new Error(`upstream certificate SANs [${got ?? ''}] match none of [${want}]`), { code: SAN_MISMATCH });
}

function isVerifyError(code: string | undefined): boolean {
  if (!code) return false;
  return /CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY|DECRYPT)|CHAIN|SIGNATURE/.test(code) && !code.startsWith('ERR_SSL');
}
