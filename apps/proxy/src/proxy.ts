import { AppProbersError, parseAppProbers, startAppHealth, startHealth } from './admin/health.ts';
import { credentials } from '@grpc/grpc-js';
import { TYPE_URL, type JsonObject } from '@tern/xds';
import { AdsClient } from './ads/client.ts';
import { startAdmin, startStats, type AdminServer } from './admin/server.ts';
import type { Bootstrap } from './config/bootstrap.ts';
import { ConfigStore } from './config/store.ts';
import { Engine } from './dataplane/engine.ts';
import type { PeerIdentity } from './dataplane/headers.ts';
import { ListenerManager } from './dataplane/listeners.ts';
import type { Logger } from './log.ts';
import { identityFromNodeMetadata } from './telemetry/identity.ts';
import type { IdentityAgent } from './identity/agent.ts';
import { resolveIdentityConfig } from './identity/config.ts';
import { TelemetryReporter } from './telemetry/reporter.ts';

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
  /** Telemetry push to the control plane every this many ms (default TERN_TELEMETRY_INTERVAL_MS or 5000; 0 = off). */
  telemetryIntervalMs?: number;
  /** Fixed telemetry boot id (tests); random per process by default. */
  telemetryBootId?: string;
  /** Workload identity files for proxyless gRPC (--cert-output-dir; else env / node metadata). */
  certOutputDir?: string;
  /** The environment the identity configuration is read from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /** Kubelet's ports (admin/health.ts): -1 = off; default from TERN_HEALTH_PORT / TERN_APP_HEALTH_PORT, else 15021 in a pod and 15020 when TERN_KUBE_APP_PROBERS is set. */
  healthPort?: number;
  appHealthPort?: number;
}

/** A port variable: a number, `off`, or unset (`fallback`; -1 = off). */
function portEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const v = env[name]?.trim();
  if (!v) return fallback;
  if (v === 'off') return -1;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new AppProbersError(`${name}: must be a port number or "off", got ${JSON.stringify(v)}`);
  return n;
}

export interface RunningProxy {
  store: ConfigStore;
  engine: Engine;
  listeners: ListenerManager;
  admin: AdminServer;
  stats: AdminServer | undefined;
  ads: AdsClient | undefined;
  telemetry: TelemetryReporter | undefined;
  /** The workload identity agent; undefined without a join token. */
  identity: IdentityAgent | undefined;
  /** Stop accepting, let in-flight requests finish within the drain period, close everything. */
  shutdown(): Promise<void>;
}

/** Istio's node metadata → who this sidecar fronts (metrics source/destination labels). */
export function identityFromNode(metadata: JsonObject, nodeId = ''): PeerIdentity {
  return identityFromNodeMetadata(metadata, nodeId);
}

export async function runProxy(o: ProxyOptions): Promise<RunningProxy> {
  const envInterval = process.env.TERN_TELEMETRY_INTERVAL_MS;
  if (envInterval && (!/^\d+$/.test(envInterval) || (Number(envInterval) > 0 && Number(envInterval) < 10))) {
    throw new Error(`TERN_TELEMETRY_INTERVAL_MS must be 0 (off) or a number of milliseconds >= 10, got "${envInterval}"`);
  }
  const b = o.bootstrap;
  const log = o.log;
  const adsServer = b.ads ? (b.ads.target.kind === 'envoy_grpc' ? `${b.ads.target.address.includes(':') ? `[${b.ads.target.address}]` : b.ads.target.address}:${b.ads.target.port}` : b.ads.target.targetUri) : undefined;
  // Throws IdentityConfigError on bad settings, before anything is bound.
  const identityConfig = resolveIdentityConfig({ metadata: b.node.metadata, nodeId: b.node.id, env: o.env ?? process.env, caAddress: adsServer, caTls: b.ads?.target.tls ?? false, outputDir: o.certOutputDir });
  const store = new ConfigStore({ staticResources: b.staticResources, onListenerError: (err) => log.error({ err }, 'snapshot listener failed') });
  const engine = new Engine({ snapshot: () => store.snapshot, self: identityFromNode(b.node.metadata, b.node.id), accessLog: o.accessLog ?? false, lb: store.lb });
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
    identity: () => identity?.status(),
  };
  const admin = await startAdmin(adminState, o.adminHost ?? b.admin.address, o.adminPort ?? b.admin.port);
  const statsPort = o.statsPort ?? 15090;
  const stats = statsPort >= 0 ? await startStats(adminState, o.adminHost ?? '0.0.0.0', statsPort) : undefined;
  const env = o.env ?? process.env;
  const probers = env.TERN_KUBE_APP_PROBERS ? parseAppProbers(env.TERN_KUBE_APP_PROBERS) : undefined;
  const healthPort = o.healthPort ?? portEnv(env, 'TERN_HEALTH_PORT', env.KUBERNETES_SERVICE_HOST ? 15021 : -1);
  const appHealthPort = o.appHealthPort ?? portEnv(env, 'TERN_APP_HEALTH_PORT', probers ? 15020 : -1);
  const health = healthPort >= 0 ? await startHealth(adminState, '0.0.0.0', healthPort) : undefined;
  const appHealth = appHealthPort >= 0 ? await startAppHealth(probers ?? new Map(), '0.0.0.0', appHealthPort) : undefined;
  log.info({ admin: admin.port, stats: stats?.port }, 'admin listening');

  // The identity agent owns the `default` and `ROOTCA` secrets (as Istio's agent SDS does); it
  // starts before ADS so listeners referencing them find them as soon as possible.
  let identity: IdentityAgent | undefined;
  if (identityConfig) {
    // Loaded only here: the X.509 libraries cost ~7 MB of RSS a proxy without an identity need not pay.
    const { IdentityAgent } = await import('./identity/agent.ts');
    const ilog = log.child({ component: 'identity' });
    identity = new IdentityAgent({
      config: identityConfig,
      log: ilog,
      onSecrets: (secrets) => {
        try {
          store.setLocal(TYPE_URL.secret, secrets);
        } catch (err) {
          ilog.error({ err: (err as Error).message }, 'the workload certificate could not be applied');
        }
      },
    }).start();
    ilog.info({ spiffeId: identityConfig.spiffeId, ca: identityConfig.caAddress, outputDir: identityConfig.outputDir }, 'workload identity: requesting a certificate');
  }

  let ads: AdsClient | undefined;
  if (b.ads) {
    const t = b.ads.target;
    const server = adsServer!;
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

  let telemetry: TelemetryReporter | undefined;
  const telemetryMs = o.telemetryIntervalMs ?? (envInterval ? Number(envInterval) : undefined);
  if (ads && telemetryMs !== 0) {
    const client = ads;
    telemetry = new TelemetryReporter({
      metrics: engine.metrics,
      nodeId: b.node.id,
      server: () => client.status().server,
      credentials: b.ads!.target.tls ? credentials.createSsl() : credentials.createInsecure(),
      ...(telemetryMs !== undefined ? { intervalMs: telemetryMs } : {}),
      ...(o.telemetryBootId ? { bootId: o.telemetryBootId } : {}),
      logger: log.child({ component: 'telemetry' }),
    }).start();
  }

  let shuttingDown: Promise<void> | undefined;
  return {
    store, engine, listeners, admin, stats, ads, telemetry, identity,
    shutdown() {
      shuttingDown ??= (async () => {
        draining = true;
        log.info({ drainMs }, 'draining');
        await listeners.close(drainMs);
        // The last counts go out before the connection does.
        await telemetry?.close();
        await ads?.close();
        await identity?.close();
        engine.close();
        await admin.close();
        await stats?.close();
        for (const s of [health, appHealth]) {
          if (!s) continue;
          s.closeAllConnections();
          await new Promise((r) => s.close(r));
        }
        log.info('stopped');
      })();
      return shuttingDown;
    },
  };
}
