/**
 * The demo mesh (issue 10): Bookinfo written for Tern. Six apps (in this process, each on its own
 * 127.0.0.1 port) and seven `tern-proxy` sidecars (one per app plus the ingress gateway), each with
 * its own SPIFFE certificate from a single-use join token, so every hop is mutual TLS. The control
 * plane is only spoken to through REST (registrations, DestinationRules, join tokens) and xDS (the
 * sidecars). Interface: /work/notes/demo-interface.md; docs: docs/demo.md.
 *
 * Ports, from `basePort` (a block of 100; 40 used): app = base+i, sidecar inbound = base+10+i,
 * sidecar forward proxy = base+20+i, sidecar admin = base+30+i, for i in the order of WORKLOADS,
 * the gateway being i = 6 (it has no app, no inbound and no forward proxy: only `gatewayPort`).
 */
import fs from 'node:fs';
import path from 'node:path';
import { type AppServer } from './apps/http.ts';
import { startDetails } from './apps/details.ts';
import { startProductpage } from './apps/productpage.ts';
import { startRatings } from './apps/ratings.ts';
import { startReviews } from './apps/reviews.ts';
import { DEFAULT_PROXY_BUNDLE, REPO_ROOT } from './lib/bundle.ts';
import { restClient } from './lib/rest.ts';
import { type Json, localGet, type SidecarProcess, startSidecarProcess, until } from './lib/sidecar.ts';
import { startTraffic, type TrafficGenerator } from './traffic.ts';

export { ensureProxyBundle, proxyBundleIsStale, DEFAULT_PROXY_BUNDLE } from './lib/bundle.ts';

export interface DemoOptions {
  /** Control plane REST base URL, e.g. http://127.0.0.1:8080 */
  api: string;
  /** An API token with the admin role: registrations and policy need an editor, the join tokens an admin. */
  token: string;
  /** host:port of the control plane's xDS + CA gRPC server, e.g. 127.0.0.1:15010 */
  xdsAddress: string;
  /** Namespace of every demo object; default 'default'. */
  namespace?: string;
  /** Where the user opens Bookinfo: http://127.0.0.1:<gatewayPort>/productpage. Default 9080. */
  gatewayPort?: number;
  /** First port of a block of 100 the demo takes for apps and sidecars. Default 19000. */
  basePort?: number;
  /** The traffic generator (through the gateway): requests per second, default 2; false = off. */
  traffic?: false | { rps: number };
  /** The proxy to run (a built bundle); default apps/proxy/dist/tern-proxy.mjs. */
  proxyBundle?: string;
  /** Progress lines for the launcher (default: silent). */
  log?: (line: string) => void;
}

export interface DemoWorkload {
  name: string;
  service: string;
  version: string;
  appPort: number;
  inboundPort: number;
  outboundPort: number;
  adminPort: number;
  /** Requests the APP received since start. */
  requests(): number;
}

export interface DemoMesh {
  gatewayUrl: string;
  workloads: DemoWorkload[];
  workload(name: string): DemoWorkload;
  stop(): Promise<void>;
}

type AppKind = 'productpage' | 'details' | 'reviews-v1' | 'reviews-v2' | 'reviews-v3' | 'ratings';

interface Spec {
  name: string;
  service: string;
  version: string;
  kind: AppKind;
}

/** Istio's Bookinfo workloads; the order fixes the port offsets. */
export const WORKLOADS: readonly Spec[] = [
  { name: 'productpage-v1', service: 'productpage', version: 'v1', kind: 'productpage' },
  { name: 'details-v1', service: 'details', version: 'v1', kind: 'details' },
  { name: 'reviews-v1', service: 'reviews', version: 'v1', kind: 'reviews-v1' },
  { name: 'reviews-v2', service: 'reviews', version: 'v2', kind: 'reviews-v2' },
  { name: 'reviews-v3', service: 'reviews', version: 'v3', kind: 'reviews-v3' },
  { name: 'ratings-v1', service: 'ratings', version: 'v1', kind: 'ratings' },
];
export const SERVICES = ['productpage', 'details', 'reviews', 'ratings'] as const;
export const GATEWAY = { name: 'istio-ingressgateway', serviceAccount: 'istio-ingressgateway-service-account', labels: { app: 'istio-ingressgateway', istio: 'ingressgateway' } } as const;
const DESTINATION_RULES = path.join(REPO_ROOT, 'samples/bookinfo/destination-rule-all.yaml');

export function demoPorts(basePort: number, i: number): { appPort: number; inboundPort: number; outboundPort: number; adminPort: number } {
  return { appPort: basePort + i, inboundPort: basePort + 10 + i, outboundPort: basePort + 20 + i, adminPort: basePort + 30 + i };
}

function checkPort(value: unknown, field: string, max = 65535): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1024 || value > max) throw new Error(`${field}: must be an integer port in 1024…${max}, got ${JSON.stringify(value)}`);
  return value;
}

export async function startDemoMesh(o: DemoOptions): Promise<DemoMesh> {
  const log = o.log ?? (() => {});
  const namespace = o.namespace ?? 'default';
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace)) throw new Error(`namespace: must be a DNS label, got ${JSON.stringify(namespace)}`);
  const basePort = checkPort(o.basePort ?? 19000, 'basePort', 65535 - 99);
  const gatewayPort = checkPort(o.gatewayPort ?? 9080, 'gatewayPort');
  if (gatewayPort >= basePort && gatewayPort < basePort + 40) throw new Error(`gatewayPort: ${gatewayPort} lies in the demo's port block ${basePort}…${basePort + 39}`);
  const traffic = o.traffic === undefined ? { rps: 2 } : o.traffic;
  const bundle = o.proxyBundle ?? DEFAULT_PROXY_BUNDLE;
  if (!fs.existsSync(bundle)) throw new Error(`proxyBundle: ${bundle} does not exist (build it with ensureProxyBundle() or \`node apps/proxy/scripts/bundle.mjs\`)`);
  const rest = restClient(o.api, o.token);

  const apps: AppServer[] = [];
  const sidecars: SidecarProcess[] = [];
  let generator: TrafficGenerator | undefined;
  // If this process exits without stop() (an uncaught error, process.exit in a signal handler),
  // the sidecars go with it; parent-guard.mjs covers the cases where no handler runs (SIGKILL).
  const killOnExit = () => {
    for (const s of sidecars) if (s.process.exitCode === null && s.process.signalCode === null) s.process.kill('SIGTERM');
  };
  process.on('exit', killOnExit);
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= (async () => {
    await generator?.stop();
    await Promise.all(sidecars.map((s) => s.stop()));
    await Promise.all(apps.map((a) => a.close()));
    process.off('exit', killOnExit);
    log('demo mesh stopped');
  })());

  try {
    // 1. Registry and policy (idempotent: PUT, and apply leaves identical resources unchanged).
    log(`registering Bookinfo in namespace ${namespace}…`);
    for (const name of SERVICES) {
      await rest.call('PUT', `/api/v1/registry/services/${namespace}/${name}`, { namespace, name, ports: [{ number: 9080, protocol: 'HTTP', name: 'http' }] });
    }
    const workloadBody = (name: string, serviceAccount: string, labels: Record<string, string>, ports?: Record<string, number>) =>
      ({ namespace, name, serviceAccount, labels: { ...labels, 'security.istio.io/tlsMode': 'istio' }, addresses: ['127.0.0.1'], ...(ports ? { ports } : {}) });
    for (const [i, w] of WORKLOADS.entries()) {
      const p = demoPorts(basePort, i);
      await rest.call('PUT', `/api/v1/registry/workloads/${namespace}/${w.name}`, workloadBody(w.name, `bookinfo-${w.service}`, { app: w.service, version: w.version }, { '9080': p.inboundPort }));
    }
    await rest.call('PUT', `/api/v1/registry/workloads/${namespace}/${GATEWAY.name}`, workloadBody(GATEWAY.name, GATEWAY.serviceAccount, { ...GATEWAY.labels }));
    await rest.call('POST', '/api/v1/apply', { yaml: fs.readFileSync(DESTINATION_RULES, 'utf8'), namespace });

    // 2. The apps, before their sidecars, so the first routed request finds them.
    const workloads: DemoWorkload[] = [];
    for (const [i, w] of WORKLOADS.entries()) {
      const p = demoPorts(basePort, i);
      const app = await startApp(w.kind, p.appPort, p.outboundPort, w.name);
      apps.push(app);
      workloads.push({ name: w.name, service: w.service, version: w.version, ...p, requests: app.requests });
    }

    // 3. One sidecar per app, plus the gateway; each with its own single-use join token.
    const gatewayAdmin = demoPorts(basePort, WORKLOADS.length).adminPort;
    const token = async (serviceAccount: string) => {
      try {
        return (await rest.call('POST', '/api/v1/ca/join-tokens', { namespace, serviceAccount, maxUses: 1, ttlSeconds: 3600 })).token as string;
      } catch (err) {
        // docs/security.md: minting a workload identity is an admin's act, unlike the registrations.
        const hint = / 403 /.test((err as Error).message) ? ' (join tokens need an API token with the admin role)' : '';
        throw new Error(`token: ${(err as Error).message}${hint}`);
      }
    };
    const plans: { id: string; metadata: Record<string, Json>; adminPort: number; listeners: string[]; serviceAccount: string }[] = WORKLOADS.map((w, i) => {
      const p = demoPorts(basePort, i);
      return {
        id: `${w.name}.${namespace}`,
        adminPort: p.adminPort,
        serviceAccount: `bookinfo-${w.service}`,
        listeners: [`127.0.0.1_${p.inboundPort}`, `127.0.0.1_${p.outboundPort}`],
        metadata: {
          NAMESPACE: namespace, WORKLOAD_NAME: w.name, SERVICE_ACCOUNT: `bookinfo-${w.service}`, LABELS: { app: w.service, version: w.version },
          INTERCEPTION: 'NONE', OUTBOUND_PORT: p.outboundPort, APP_PORTS: { '9080': p.appPort },
        },
      };
    });
    plans.push({
      id: `${GATEWAY.name}.${namespace}`,
      adminPort: gatewayAdmin,
      serviceAccount: GATEWAY.serviceAccount,
      listeners: [`127.0.0.1_${gatewayPort}`],
      metadata: {
        NAMESPACE: namespace, WORKLOAD_NAME: GATEWAY.name, SERVICE_ACCOUNT: GATEWAY.serviceAccount, LABELS: { ...GATEWAY.labels },
        INTERCEPTION: 'NONE', OUTBOUND_PORT: 0, UPSTREAMS: [{ host: 'productpage', port: 9080, localPort: gatewayPort }],
      },
    });
    const tokens = await Promise.all(plans.map((p) => token(p.serviceAccount)));
    log(`starting ${plans.length} sidecars (xDS ${o.xdsAddress})…`);
    const started = await Promise.allSettled(plans.map((p, i) => startSidecarProcess({
      id: p.id, metadata: p.metadata, xdsAddress: o.xdsAddress, adminPort: p.adminPort, bundle, listeners: p.listeners,
      waitForCertificate: true, env: { TERN_JOIN_TOKEN: tokens[i]! },
    }).then((s) => {
      sidecars.push(s);
      log(`  ${p.id}: ready (admin 127.0.0.1:${p.adminPort}, pid ${s.pid})`);
      return s;
    })));
    const failed = started.flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
    if (failed.length) throw new Error(`demo sidecars failed to start:\n${failed.join('\n')}`);
    workloads.push({ name: GATEWAY.name, service: GATEWAY.labels.app, version: '', appPort: 0, inboundPort: 0, outboundPort: gatewayPort, adminPort: gatewayAdmin, requests: () => 0 });

    // 4. End to end once (every sidecar has its configuration and its certificate), then traffic.
    const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    await until(async () => {
      const r = await localGet(gatewayPort, '/productpage', 10_000);
      return r.status === 200 && r.body.includes('Book Details') && r.body.includes('Book Reviews');
    }, 30_000, `GET ${gatewayUrl}/productpage with details and reviews`);
    if (traffic) generator = startTraffic({ gatewayPort, rps: traffic.rps });
    log(`Bookinfo is up: ${gatewayUrl}/productpage${traffic ? ` (traffic: ${traffic.rps} rps)` : ''}`);

    return {
      gatewayUrl,
      workloads,
      workload(name) {
        const w = workloads.find((x) => x.name === name);
        if (!w) throw new Error(`no demo workload ${JSON.stringify(name)} (have ${workloads.map((x) => x.name).join(', ')})`);
        return w;
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

function startApp(kind: AppKind, port: number, outboundPort: number, podname: string): Promise<AppServer> {
  switch (kind) {
    case 'productpage': return startProductpage({ port, outboundPort });
    case 'details': return startDetails({ port });
    case 'ratings': return startRatings({ port });
    case 'reviews-v1': return startReviews({ port, version: 'v1', podname, outboundPort });
    case 'reviews-v2': return startReviews({ port, version: 'v2', podname, outboundPort });
    case 'reviews-v3': return startReviews({ port, version: 'v3', podname, outboundPort });
  }
}
