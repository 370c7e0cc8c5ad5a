import type { TLSSocket } from 'node:tls';

// Envoy's downstream TLS counters per listener (`listener.<address>.ssl.*`): how many handshakes
// a TLS filter chain completed and why the others were refused. Without them a refused client
// (another CA, an expired certificate, none at all) leaves no trace at the server side.

export const LISTENER_TLS_COUNTERS = ['handshake', 'connection_error', 'fail_verify_error', 'fail_verify_no_cert'] as const;
export type ListenerTlsCounters = Record<(typeof LISTENER_TLS_COUNTERS)[number], number>;

const counters = new WeakMap<object, Map<string, ListenerTlsCounters>>();

/** The counters of one listener (by its stat name, Envoy's `<ip>_<port>`), created on first use. */
export function listenerTlsCounters(owner: object, statName: string): ListenerTlsCounters {
  let byName = counters.get(owner);
  if (!byName) counters.set(owner, (byName = new Map()));
  let c = byName.get(statName);
  if (!c) byName.set(statName, (c = { handshake: 0, connection_error: 0, fail_verify_error: 0, fail_verify_no_cert: 0 }));
  return c;
}

/**
 * Whether a server-side TLS connection may carry requests; counts it either way. Client
 * certificates are verified by the handshake but judged here (the TLS server runs with
 * rejectUnauthorized off), so that a refusal is counted by its reason.
 */
export function admitTlsConnection(c: ListenerTlsCounters, ts: TLSSocket, requireClientCert: boolean): boolean {
  if (!requireClientCert || ts.authorized) {
    c.handshake++;
    return true;
  }
  const peer = ts.getPeerCertificate();
  if (!peer || Object.keys(peer).length === 0) c.fail_verify_no_cert++;
  else c.fail_verify_error++;
  return false;
}

/** `listener.<name>.ssl.<counter>: value` lines for /stats. */
export function listenerTlsStatsText(owner: object): string {
  let s = '';
  for (const [name, c] of counters.get(owner) ?? []) for (const k of LISTENER_TLS_COUNTERS) s += `listener.${name}.ssl.${k}: ${c[k]}\n`;
  return s;
}

/** As Envoy's Prometheus output names them: envoy_listener_ssl_<counter>{envoy_listener_address="…"}. */
export function listenerTlsStatsPrometheus(owner: object): string {
  const byName = counters.get(owner);
  if (!byName || byName.size === 0) return '';
  let s = '';
  for (const k of LISTENER_TLS_COUNTERS) {
    s += `# TYPE envoy_listener_ssl_${k} counter\n`;
    for (const [name, c] of byName) s += `envoy_listener_ssl_${k}{envoy_listener_address="${name}"} ${c[k]}\n`;
  }
  return s;
}
