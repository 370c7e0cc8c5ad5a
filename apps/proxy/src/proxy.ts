import { credentials } from '@grpc/grpc-js';
import { TYPE_URL, type Json, type JsonObject } from '@tern/xds';
import { AdsClient } from './ads/client.ts';
import { startAdmin, startStats, type AdminServer } from './admin/server.ts';
import type { Bootstrap } from './config/bootstrap.ts';
import { ConfigStore } from './config/store.ts';
import { Engine } from './dataplane/engine.ts';
import type { PeerIdentity } from './dataplane/headers.ts';
import { ListenerManager } from './dataplane/listeners.ts';
import type { Logger } from './log.ts';

export interface ProxyOptions {
  bootstrap: Bootstrap;
  log: Logger;
  /** Admin port override (default: the bootstrap's admin address, else 15000). */
  adminPort?: number;
  adminHost?: string;
  /** Prometheus port (Istio's 15090); undefined = 15090, -1 = off. */
  statsPort?: number;
  /** Drain period on shutdown and for removed listeners (default 5 s). */
  drainMs?: number;
  accessLog?: boolean;
}

export interface RunningProxy {
  store: ConfigStore;
  engine: Engine;
  listeners: ListenerManager;
  admin: AdminServer;
  stats: AdminServer | undefined;
  ads: AdsClient | undefined;
  /** Stop accepting, let in-flight requests finish within the drain period, close everything. */
  shutdown(): Promise<void>;
}

/** Istio's node metadata → who this sidecar fronts (metrics source/destination labels). */
export function identityFromNode(metadata: JsonObject): PeerIdentity {
  const str = (v: Json | undefined) => (typeof v === 'string' ? v : '');
  const labels = (typeof metadata.LABELS === 'object' && metadata.LABELS !== null && !Array.isArray(metadata.LABELS) ? metadata.LABELS : {}) as JsonObject;
  const app = str(labels['service.istio.io/canonical-name']) || str(labels.app) || str(labels['app.kubernetes.io/name']);
  const version = str(labels['service.istio.io/canonical-revision']) || str(labels.version) || str(labels['app.kubernetes.io/version']);
  return {
    workload: str(metadata.WORKLOAD_NAME) || 'unknown',
    namespace: str(metadata.NAMESPACE) || 'unknown',
    app: app || 'unknown',
    version: version || 'unknown',
    // A principal is only claimed once mTLS proves it; plaintext meshes report "unknown" (Istio).
    principal: '',
  };
}

export async function runProxy(o: ProxyOptions): Promise<RunningProxy> {
  const b = o.bootstrap;
  const log = o.log;
  const store = new ConfigStore({ staticResources: b.staticResources, onListenerError: (err) => log.error({ err }, 'snapshot listener failed') });
  const engine = new Engine({ snapshot: () => store.snapshot, self: identityFromNode(b.node.metadata), accessLog: o.accessLog ?? false, lb: store.lb });
  const drainMs = o.drainMs ?? 5000;
  const listeners = new ListenerManager(engine, log, drainMs);
  let draining = false;
  let ready = false;

  store.onChange(({ snapshot }) => {
    void listeners.apply(snapshot).then(() => {
      if (!ready && (!b.ads || snapshot.typeVersions.has(TYPE_URL.listener))) {
        ready = true;
        log.info({ version: snapshot.version }, 'proxy ready');
      }
    });
  });
  await listeners.apply(store.snapshot);
  if (!b.ads) ready = true;

  const adminState = {
    engine,
    listeners,
    snapshot: () => store.snapshot,
    ready: () => ready,
    draining: () => draining,
    drain: () => {
      draining = true;
      listeners.startDrain();
    },
    bootstrap: b.raw,
  };
  const admin = await startAdmin(adminState, o.adminHost ?? b.admin.address, o.adminPort ?? b.admin.port);
  const statsPort = o.statsPort ?? 15090;
  const stats = statsPort >= 0 ? await startStats(adminState, o.adminHost ?? '0.0.0.0', statsPort) : undefined;
  log.info({ admin: admin.port, stats: stats?.port }, 'admin listening');

  let ads: AdsClient | undefined;
  if (b.ads) {
    const t = b.ads.target;
    const server = t.kind === 'envoy_grpc' ? `${t.address.includes(':') ? `[${t.address}]` : t.address}:${t.port}` : t.targetUri;
    const loc = b.node.locality;
    ads = new AdsClient({
      servers: [server],
      node: { id: b.node.id, cluster: b.node.cluster, metadata: b.node.metadata, ...(loc ? { locality: { region: loc.region, zone: loc.zone, sub_zone: loc.subZone } } : {}) },
      mode: b.ads.apiType === 'DELTA_GRPC' ? 'delta' : 'sotw',
      sink: store,
      logger: log.child({ component: 'ads' }),
      credentials: t.tls ? credentials.createSsl() : credentials.createInsecure(),
    }).start();
  }

  let shuttingDown: Promise<void> | undefined;
  return {
    store, engine, listeners, admin, stats, ads,
    shutdown() {
      shuttingDown ??= (async () => {
        draining = true;
        log.info({ drainMs }, 'draining');
        await listeners.close(drainMs);
        await ads?.close();
        engine.close();
        await admin.close();
        await stats?.close();
        log.info('stopped');
      })();
      return shuttingDown;
    },
  };
}
