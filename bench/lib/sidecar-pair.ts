// The sidecar pair of `bench:proxy`: load generator -> client tern-proxy (outbound listener) ->
// server tern-proxy (inbound listener) -> app, with plaintext or mutual TLS between the proxies.
//
// Both proxies get static bootstraps whose listener, cluster and endpoint JSON has the shapes Tern's
// control plane sends a sidecar in local mode (apps/api/test/fixtures/compile/mtls-*.json): the
// client's cluster `outbound|9080||server.default.svc.cluster.local` with auto-mTLS
// `transport_socket_matches` (UpstreamTlsContext with SNI, ALPN, the SDS secrets `default`/`ROOTCA`
// and a URI SAN matcher for the server's SPIFFE ID) and an endpoint labelled `tlsMode: istio`; the
// server's STRICT inbound listener (tls_inspector, a `transport_protocol: tls` chain whose
// DownstreamTlsContext requires a client certificate). The secrets are static bootstrap secrets
// named as the identity agent names them, holding certificates this run generates.
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { freePort, onCpu0, stop, waitForPort } from './proc.ts';
import { testRoot, testSvid, type TestLeaf } from '../../e2e/lib/pki.ts';

export const TRUST_DOMAIN = 'cluster.local';
export const CLIENT_ID = `spiffe://${TRUST_DOMAIN}/ns/default/sa/client`;
export const SERVER_ID = `spiffe://${TRUST_DOMAIN}/ns/default/sa/server`;
export const SERVICE = `server.default.svc.${TRUST_DOMAIN}`;
export const SERVICE_PORT = 9080;
export const CLUSTER = `outbound|${SERVICE_PORT}||${SERVICE}`;
/** The Host the load generators send: what an app calling `http://server:9080/` sends. */
export const HOST = `server:${SERVICE_PORT}`;

export interface PairPki {
  rootPem: string;
  client: TestLeaf;
  server: TestLeaf;
}

export async function createPairPki(): Promise<PairPki> {
  // Shaped like Tern's CA issues them (e2e/lib/pki.ts): a P-256 root and two X.509-SVIDs.
  const root = await testRoot('tern bench root');
  const day = { notAfter: new Date(Date.now() + 24 * 3600_000) };
  return { rootPem: root.certPem, client: await testSvid(root, CLIENT_ID, day), server: await testSvid(root, SERVER_ID, day) };
}

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } };
const NO_MAX_STREAM_DURATION = { grpc_timeout_header_max: '0s', max_stream_duration: '0s' };
const ISTIO_SERVICES = { filter_metadata: { istio: { services: [{ host: SERVICE, name: 'server', namespace: 'default' }] } } };

/** The SDS secrets the identity agent would provide (apps/proxy/src/identity/agent.ts), here static. */
function secrets(svid: TestLeaf, rootPem: string) {
  return [
    { name: 'default', tls_certificate: { certificate_chain: { inline_string: svid.certPem }, private_key: { inline_string: svid.keyPem } } },
    { name: 'ROOTCA', validation_context: { trusted_ca: { inline_string: rootPem } } },
  ];
}

function node(name: string) {
  return {
    id: `sidecar~127.0.0.1~${name}-v1-bench.default~default.svc.${TRUST_DOMAIN}`,
    cluster: `${name}.default`,
    locality: {},
    metadata: { NAMESPACE: 'default', WORKLOAD_NAME: `${name}-v1`, LABELS: { app: name, version: 'v1' } },
  };
}

const admin = (port: number) => ({ address: { socket_address: { address: '127.0.0.1', port_value: port } } });

/** The server sidecar: inbound listener on `port` (STRICT with mTLS, plain as with mTLS off) -> the app. */
export function serverBootstrap(port: number, adminPort: number, appPort: number, pki: PairPki | undefined): object {
  const hcm = {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': HCM,
      generate_request_id: true,
      http_filters: [ROUTER],
      route_config: {
        name: `inbound|${SERVICE_PORT}||`,
        virtual_hosts: [
          {
            domains: ['*'],
            name: `inbound|http|${SERVICE_PORT}`,
            routes: [{ match: { prefix: '/' }, name: 'default', route: { cluster: `inbound|${SERVICE_PORT}||`, max_stream_duration: NO_MAX_STREAM_DURATION, timeout: '0s' } }],
          },
        ],
      },
      stat_prefix: `inbound_127.0.0.1_${port}`,
      use_remote_address: false,
    },
  };
  const name = `127.0.0.1_${port}`;
  const listener = pki
    ? {
        name,
        address: { socket_address: { address: '127.0.0.1', port_value: port } },
        traffic_direction: 'INBOUND',
        listener_filters: [{ name: 'envoy.filters.listener.tls_inspector', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector' } }],
        filter_chains: [
          {
            filter_chain_match: { transport_protocol: 'tls' },
            filters: [hcm],
            transport_socket: {
              name: 'envoy.transport_sockets.tls',
              typed_config: {
                '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
                common_tls_context: {
                  alpn_protocols: ['h2', 'http/1.1'],
                  tls_certificate_sds_secret_configs: [{ name: 'default' }],
                  validation_context_sds_secret_config: { name: 'ROOTCA' },
                },
                require_client_certificate: true,
              },
            },
          },
        ],
      }
    : { name, address: { socket_address: { address: '127.0.0.1', port_value: port } }, traffic_direction: 'INBOUND', filter_chains: [{ filters: [hcm] }] };
  return {
    node: node('server'),
    admin: admin(adminPort),
    static_resources: {
      listeners: [listener],
      clusters: [
        {
          name: `inbound|${SERVICE_PORT}||`,
          type: 'STATIC',
          connect_timeout: '10s',
          lb_policy: 'ROUND_ROBIN',
          metadata: ISTIO_SERVICES,
          load_assignment: { cluster_name: `inbound|${SERVICE_PORT}||`, endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: appPort } } } }] }] },
        },
      ],
      ...(pki ? { secrets: secrets(pki.server, pki.rootPem) } : {}),
    },
  };
}

/** The client sidecar: outbound listener on `port` routing `server:9080` to the server sidecar's inbound port. */
export function clientBootstrap(port: number, adminPort: number, serverPort: number, pki: PairPki | undefined): object {
  const domains = [SERVICE, `server.default.svc`, 'server.default', 'server'].flatMap((d) => [d, `${d}:${SERVICE_PORT}`]);
  const route = {
    cluster: CLUSTER,
    max_stream_duration: NO_MAX_STREAM_DURATION,
    retry_policy: {
      host_selection_retry_max_attempts: 5,
      num_retries: 2,
      retriable_status_codes: [503],
      retry_host_predicate: [{ name: 'envoy.retry_host_predicates.previous_hosts', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate' } }],
      retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
    },
    timeout: '0s',
  };
  const endpointMetadata = {
    filter_metadata: {
      ...(pki ? { 'envoy.transport_socket_match': { tlsMode: 'istio' } } : {}),
      istio: { workload: 'server-v1;default;server;v1;Kubernetes' },
    },
  };
  const tlsSocketMatches = pki
    ? {
        transport_socket_matches: [
          {
            match: { tlsMode: 'istio' },
            name: 'tlsMode-istio',
            transport_socket: {
              name: 'envoy.transport_sockets.tls',
              typed_config: {
                '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
                common_tls_context: {
                  alpn_protocols: ['istio-peer-exchange', 'istio', 'h2', 'http/1.1'],
                  combined_validation_context: {
                    default_validation_context: { match_typed_subject_alt_names: [{ matcher: { exact: SERVER_ID }, san_type: 'URI' }] },
                    validation_context_sds_secret_config: { name: 'ROOTCA' },
                  },
                  tls_certificate_sds_secret_configs: [{ name: 'default' }],
                },
                sni: `outbound_.${SERVICE_PORT}_._.${SERVICE}`,
              },
            },
          },
          { match: {}, name: 'tlsMode-disabled', transport_socket: { name: 'envoy.transport_sockets.raw_buffer' } },
        ],
      }
    : {};
  return {
    node: node('client'),
    admin: admin(adminPort),
    static_resources: {
      listeners: [
        {
          name: `127.0.0.1_${port}`,
          address: { socket_address: { address: '127.0.0.1', port_value: port } },
          traffic_direction: 'OUTBOUND',
          filter_chains: [
            {
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': HCM,
                    generate_request_id: true,
                    http_filters: [
                      { name: 'envoy.filters.http.fault', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault' } },
                      { name: 'envoy.filters.http.cors', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors' } },
                      ROUTER,
                    ],
                    route_config: {
                      name: String(SERVICE_PORT),
                      validate_clusters: false,
                      virtual_hosts: [{ domains, name: `${SERVICE}:${SERVICE_PORT}`, routes: [{ match: { prefix: '/' }, name: 'default', route }] }],
                    },
                    stat_prefix: `outbound_127.0.0.1_${port}`,
                    use_remote_address: false,
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: [
        {
          name: CLUSTER,
          // STATIC here (a bootstrap has no EDS); the control plane sends type EDS with the same endpoint.
          type: 'STATIC',
          connect_timeout: '10s',
          lb_policy: 'LEAST_REQUEST',
          circuit_breakers: { thresholds: [{ max_connections: 4294967295, max_pending_requests: 4294967295, max_requests: 4294967295, max_retries: 4294967295, track_remaining: true }] },
          metadata: ISTIO_SERVICES,
          load_assignment: {
            cluster_name: CLUSTER,
            endpoints: [
              {
                locality: { region: '', sub_zone: '', zone: '' },
                load_balancing_weight: 1,
                lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: serverPort } } }, health_status: 'HEALTHY', metadata: endpointMetadata }],
              },
            ],
          },
          ...tlsSocketMatches,
        },
      ],
      ...(pki ? { secrets: secrets(pki.client, pki.rootPem) } : {}),
    },
  };
}

export interface RunningPair {
  mtls: boolean;
  /** The client sidecar's outbound port: where the load goes. */
  port: number;
  serverPort: number;
  client: ChildProcess;
  server: ChildProcess;
  clientAdmin: number;
  serverAdmin: number;
  pki?: PairPki;
}

/** Starts the server sidecar, then the client sidecar, both on CPU 0 (with the app). */
export async function startPair(opts: { work: string; ternCmd: string[]; appPort: number; mtls: boolean; pki?: PairPki }): Promise<RunningPair> {
  const pki = opts.mtls ? (opts.pki ?? (await createPairPki())) : undefined;
  const [port, serverPort, clientAdmin, serverAdmin] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const write = (name: string, b: object) => {
    const file = path.join(opts.work, `pair-${opts.mtls ? 'mtls' : 'plain'}-${name}-${port}.json`);
    fs.writeFileSync(file, JSON.stringify(b, null, 2), { mode: 0o600 });
    return file;
  };
  const cmd = opts.ternCmd;
  // Two proxies cannot both take Istio's :15090; the admin port serves the same /stats/prometheus.
  const env = { TERN_LOG_LEVEL: 'warn', TERN_STATS_PORT: 'off' };
  const server = onCpu0(cmd[0]!, [...cmd.slice(1), write('server', serverBootstrap(serverPort, serverAdmin, opts.appPort, pki))], { env });
  let client: ChildProcess | undefined;
  try {
    await waitForPort(serverPort, server, 'server sidecar');
    client = onCpu0(cmd[0]!, [...cmd.slice(1), write('client', clientBootstrap(port, clientAdmin, serverPort, pki))], { env });
    await waitForPort(port, client, 'client sidecar');
  } catch (err) {
    await stop(client);
    await stop(server);
    throw err;
  }
  return { mtls: opts.mtls, port, serverPort, client, server, clientAdmin, serverAdmin, ...(pki ? { pki } : {}) };
}

export async function stopPair(p: RunningPair | undefined): Promise<void> {
  if (!p) return;
  await stop(p.client);
  await stop(p.server);
}

async function adminGet(port: number, p: string): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}${p}`);
  const text = await res.text();
  if (res.status !== 200) throw new Error(`GET ${p} on admin port ${port}: ${res.status} ${text.slice(0, 200)}`);
  return text;
}

export interface TlsStats {
  handshake: number;
  session_reused: number;
  connection_error: number;
  fail_verify_error: number;
  fail_verify_san: number;
}

/** The client's `cluster.<CLUSTER>.ssl.*` counters from its admin `/stats` (zeros when the cluster has none). */
export async function clientTlsStats(p: RunningPair): Promise<TlsStats> {
  const text = await adminGet(p.clientAdmin, '/stats');
  const get = (c: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`cluster.${CLUSTER}.ssl.${c}:`));
    return line ? Number(line.slice(line.lastIndexOf(':') + 1)) : 0;
  };
  return { handshake: get('handshake'), session_reused: get('session_reused'), connection_error: get('connection_error'), fail_verify_error: get('fail_verify_error'), fail_verify_san: get('fail_verify_san') };
}

/** istio_requests_total of one proxy, summed per value of `label` over the series matching `where`. */
async function requestsBy(adminPort: number, label: string, where: Record<string, string>): Promise<Map<string, number>> {
  const text = await adminGet(adminPort, '/stats/prometheus');
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('istio_requests_total{')) continue;
    const labels = new Map<string, string>();
    for (const m of line.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels.set(m[1]!, m[2]!);
    if (Object.entries(where).some(([k, v]) => labels.get(k) !== v)) continue;
    const key = labels.get(label) ?? '';
    out.set(key, (out.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return out;
}

/** Requests the server sidecar received, by `connection_security_policy` (`mutual_tls` / `none`). */
export async function serverRequestsBySecurity(p: RunningPair): Promise<Map<string, number>> {
  return requestsBy(p.serverAdmin, 'connection_security_policy', { reporter: 'destination' });
}

/** Established connections the server sidecar holds on its inbound port (from `ss`). */
export function serverConnections(p: RunningPair): number {
  try {
    const out = execFileSync('ss', ['-Htn', 'state', 'established', `( sport = :${p.serverPort} )`]).toString();
    return out.split('\n').filter((l) => l.trim()).length;
  } catch {
    return NaN;
  }
}

function httpGet(port: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(`GET / HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`));
    let data = '';
    s.setEncoding('latin1');
    s.on('data', (d) => (data += d));
    s.on('error', reject);
    s.setTimeout(5000, () => s.destroy(new Error('timeout')));
    s.on('close', () => {
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(data)?.[1] ?? 0);
      resolve({ status, body: data.slice(data.indexOf('\r\n\r\n') + 4) });
    });
  });
}

/** What comes back on a connection straight to the server sidecar (bypassing the client): '' when nothing. */
function probeServer(port: number, how: 'plaintext' | 'tls-without-client-cert', rootPem?: string): Promise<string> {
  return new Promise((resolve) => {
    const req = `GET / HTTP/1.1\r\nHost: ${HOST}\r\nConnection: close\r\n\r\n`;
    let data = '';
    const s: net.Socket =
      how === 'plaintext'
        ? net.connect(port, '127.0.0.1', () => s.write(req))
        : tls.connect({ port, host: '127.0.0.1', ca: rootPem, servername: `outbound_.${SERVICE_PORT}_._.${SERVICE}`, ALPNProtocols: ['http/1.1'], checkServerIdentity: () => undefined }, () => s.write(req));
    s.setEncoding('latin1');
    s.on('data', (d) => (data += d));
    s.on('error', () => {});
    s.setTimeout(3000, () => s.destroy());
    s.on('close', () => resolve(data));
  });
}

export interface PairCheck {
  clientTls: TlsStats;
  serverBySecurity: Map<string, number>;
  /** The server certificate's SPIFFE ID as the client sidecar reports it (`destination_principal`). */
  destinationPrincipals: string[];
  /** The client certificate's SPIFFE ID as the server sidecar reports it (`source_principal`). */
  sourcePrincipals: string[];
}

/**
 * One request through the pair must reach the app, and the pair must be what its name says: with
 * mTLS, the client cluster made a TLS handshake without verification failures, the server counted
 * the request as `mutual_tls` from the client's SPIFFE ID, the client saw the server's SPIFFE ID,
 * and the server's port refuses both plaintext and TLS without a client certificate; without mTLS,
 * no TLS anywhere. Throws, naming what is wrong, otherwise.
 */
export async function verifyPair(p: RunningPair): Promise<PairCheck> {
  const what = p.mtls ? 'pair-mtls' : 'pair';
  const fail = (m: string): never => {
    throw new Error(`${what} is misconfigured: ${m}`);
  };
  const r = await httpGet(p.port);
  if (r.status !== 200 || r.body !== 'hello, tern\n') fail(`a request through the client sidecar got ${r.status} ${JSON.stringify(r.body.slice(0, 200))}`);
  const clientTls = await clientTlsStats(p);
  const serverBySecurity = await serverRequestsBySecurity(p);
  const destinationPrincipals = [...(await requestsBy(p.clientAdmin, 'destination_principal', { reporter: 'source' })).keys()];
  const sourcePrincipals = [...(await requestsBy(p.serverAdmin, 'source_principal', { reporter: 'destination' })).keys()];
  const check = { clientTls, serverBySecurity, destinationPrincipals, sourcePrincipals };
  if (p.mtls) {
    if (clientTls.handshake < 1) fail(`the client's cluster made no TLS handshake (cluster.${CLUSTER}.ssl.handshake = 0)`);
    if (clientTls.fail_verify_error || clientTls.fail_verify_san || clientTls.connection_error) fail(`TLS failures on the client's cluster: ${JSON.stringify(clientTls)}`);
    if ((serverBySecurity.get('mutual_tls') ?? 0) < 1 || (serverBySecurity.get('none') ?? 0) > 0) fail(`the server sidecar's requests by connection_security_policy: ${JSON.stringify([...serverBySecurity])} (want mutual_tls only)`);
    if (sourcePrincipals.join() !== CLIENT_ID) fail(`the server sidecar saw source_principal ${JSON.stringify(sourcePrincipals)}, not ${CLIENT_ID}: no verified client certificate`);
    if (destinationPrincipals.join() !== SERVER_ID) fail(`the client sidecar saw destination_principal ${JSON.stringify(destinationPrincipals)}, not ${SERVER_ID}`);
    const plain = await probeServer(p.serverPort, 'plaintext');
    if (plain.includes('HTTP/')) fail(`the server sidecar answered a plaintext request: ${JSON.stringify(plain.slice(0, 100))}`);
    const noCert = await probeServer(p.serverPort, 'tls-without-client-cert', p.pki!.rootPem);
    if (noCert.includes('HTTP/')) fail(`the server sidecar answered a TLS request without a client certificate: ${JSON.stringify(noCert.slice(0, 100))}`);
  } else {
    if (clientTls.handshake > 0) fail(`the client's cluster made TLS handshakes: ${JSON.stringify(clientTls)}`);
    if ((serverBySecurity.get('none') ?? 0) < 1 || (serverBySecurity.get('mutual_tls') ?? 0) > 0) fail(`the server sidecar's requests by connection_security_policy: ${JSON.stringify([...serverBySecurity])} (want none only)`);
  }
  return check;
}
