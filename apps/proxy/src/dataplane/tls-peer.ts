import type { TLSSocket } from 'node:tls';
import { parseSans } from './rbac.ts';

/** The identities of a TLS connection that telemetry labels carry (Istio's principals). */
export interface TlsIdentity {
  /** The peer certificate's SPIFFE URI SAN ('' when it has none); set only when the handshake verified it. */
  readonly peer: string | undefined;
  /** Our own certificate's SPIFFE URI SAN ('' when none was presented). */
  readonly local: string;
}

const cache = new WeakMap<object, TlsIdentity>();
const resumed = new WeakMap<object, string>();

/**
 * A client connection that resumed a TLS session has no peer certificate to read (Node gives none):
 * the connector names the principal the session's full handshake verified.
 */
export function setResumedPeer(socket: object, peer: string): void {
  resumed.set(socket, peer);
}

/**
 * The connection's identities, read once per connection (certificate parsing is not free) and
 * cached on the socket; undefined for a plaintext socket, which pays one property read.
 */
export function tlsIdentity(socket: object | undefined): TlsIdentity | undefined {
  const s = socket as (TLSSocket & { encrypted?: boolean }) | undefined;
  if (s === undefined || s.encrypted !== true) return undefined;
  let id = cache.get(s);
  if (id !== undefined) return id;
  id = { peer: undefined, local: '' };
  try {
    // Only a certificate the handshake verified names anyone: an unverified one is a claim. Not
    // getPeerX509Certificate: on a client socket it takes the leaf out of OpenSSL's peer chain
    // (Node 20), and every later reader (this one, RBAC, the SAN check) would find no certificate.
    const peerCert = s.authorized ? s.getPeerCertificate() : undefined;
    const peer = peerCert?.raw !== undefined ? spiffeOf(peerCert.subjectaltname) : s.authorized ? resumed.get(s) : undefined;
    const localCert = s.getCertificate();
    id = { peer, local: localCert && 'subjectaltname' in localCert ? spiffeOf(localCert.subjectaltname) : '' };
  } catch {
    // A socket torn down mid-read: no identities, as for plaintext.
  }
  cache.set(s, id);
  return id;
}

/** The SPIFFE URI SAN if there is one (Istio's principal), else the first URI SAN, else ''. */
export function spiffeOf(subjectAltName: string | undefined): string {
  const uris = parseSans(subjectAltName ?? '').uriSans;
  return uris.find((u) => u.startsWith('spiffe://')) ?? uris[0] ?? '';
}
