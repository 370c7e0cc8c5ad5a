import { setFlagsFromString } from 'node:v8';
import type { Config } from './config.ts';
import { openDatabase, type Database } from './store/db.ts';
import { ResourceStore } from './store/resources.ts';
import { RegistryStore } from './store/registry.ts';
import { AuditLog } from './store/audit.ts';
import { ChangeFeed } from './store/changes.ts';
import { AuthService } from './auth/service.ts';
import { analyze } from './policy/analyze.ts';
import type { AnalyzeFn } from './store/writer.ts';
import { XdsServer, type XdsCompiler } from './xds/server.ts';
import { prepareMesh, proxyIdentityFromNode } from './compile/index.ts';
import { TelemetryService } from './telemetry/service.ts';
import { CaService } from './ca/service.ts';
import type { KubeController } from './kube/controller.ts';
import type { InjectionWebhook } from './kube/webhook-runtime.ts';

// The composition root: one place that builds the control plane's parts from its config.

export interface App {
  config: Config;
  db: Database;
  resources: ResourceStore;
  registry: RegistryStore;
  audit: AuditLog;
  auth: AuthService;
  changes: ChangeFeed;
  analyze: AnalyzeFn;
  /** The ADS server; `xds.start(host, port)` makes it listen (main.ts, tests that want it). */
  xds: XdsServer;
  /** Telemetry ingest (gRPC, next to ADS) and the graph queries. */
  telemetry: TelemetryService;
  /** The certificate authority (docs/security.md): join tokens, issued certificates, CreateCertificate over gRPC. */
  ca: CaService;
  /** The leader-only Kubernetes work (policy into the cluster, the cluster into the registry); undefined outside Kubernetes. */
  kube: KubeController | undefined;
  /** The sidecar-injection webhook (every replica, TERN_KUBE_INJECT); undefined outside Kubernetes. */
  webhook: InjectionWebhook | undefined;
  close(): Promise<void>;
}

const compiler: XdsCompiler = { prepareMesh, proxyIdentityFromNode };

export async function createApp(config: Config): Promise<App> {
  // Prisma's query compiler is a 4.5 MB WebAssembly module. V8 would also compile its hot functions
  // with TurboFan, in the background: 40-60 MB more RSS for a compiler that runs once per query
  // shape (its plans are cached). Baseline (Liftoff) code only. Must run before the module compiles.
  // Not with the embedded database: PGlite's whole executor is WebAssembly and needs optimized code.
  if (config.databaseUrl) setFlagsFromString('--liftoff-only');
  // Loaded only for a cluster: the Kubernetes client costs ~74 MB of RSS (kube/runtime.ts).
  const kubeRuntime = config.caTokenReview || config.kubeReconcile || config.kubeRegistry || config.kubeInject ? await import('./kube/runtime.ts') : undefined;
  const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir });
  let ca: CaService;
  try {
    ca = await CaService.start(db.prisma, {
      trustDomain: config.trustDomain,
      defaultTtlSeconds: config.caDefaultTtlSeconds,
      maxTtlSeconds: config.caMaxTtlSeconds,
      dataDir: config.dataDir,
      kekValue: config.caKeyEncryptionKey,
      kekFile: config.caKeyEncryptionKeyFile,
      certFile: config.caCertFile,
      keyFile: config.caKeyFile,
      chainFile: config.caChainFile,
      trustBundleFile: config.caTrustBundleFile,
      tokenReview: kubeRuntime && config.caTokenReview ? { reviewer: kubeRuntime.kubeTokenReviewer(kubeRuntime.clusterConfig(config)), audience: config.caTokenAudience } : undefined,
      sharedDatabase: Boolean(config.databaseUrl),
    });
  } catch (err) {
    await db.close();
    throw err;
  }
  const analyzeFn: AnalyzeFn = (input) => analyze(input as Parameters<typeof analyze>[0], { domainSuffix: config.domainSuffix });
  const resources = new ResourceStore(db.prisma, analyzeFn);
  const changes = new ChangeFeed(db, resources);
  await changes.start();
  const xds = new XdsServer(db.prisma, changes, compiler, {
    replicaId: config.replicaId,
    compile: { domainSuffix: config.domainSuffix, trustDomain: config.trustDomain, mtls: config.mtls },
    debounceMs: config.xdsDebounceMs,
    debounceMaxMs: config.xdsDebounceMaxMs,
  });
  const telemetry = new TelemetryService(db.prisma, {
    flushMs: config.telemetryFlushMs,
    reportIntervalMs: config.telemetryReportIntervalMs,
    minuteRetentionHours: config.telemetryMinuteRetentionHours,
    hourRetentionDays: config.telemetryHourRetentionDays,
    rollupIntervalMs: config.telemetryRollupIntervalMs,
    domainSuffix: config.domainSuffix,
  });
  xds.extraServices.push(telemetry.grpcService());
  xds.extraServices.push(ca.grpcService());
  telemetry.start();
  const kube = kubeRuntime && (config.kubeReconcile || config.kubeRegistry || config.kubeInject) ? kubeRuntime.kubeController(config, { resources, changes, prisma: db.prisma, analyze: analyzeFn, ca }) : undefined;
  const app: App = {
    config,
    db,
    resources,
    registry: new RegistryStore(db.prisma, analyzeFn, config.domainSuffix),
    audit: new AuditLog(db.prisma),
    auth: new AuthService(db.prisma, config),
    changes,
    analyze: analyzeFn,
    xds,
    telemetry,
    ca,
    kube,
    webhook: undefined,
    async close() {
      await kube?.stop();
      await app.webhook?.close();
      await xds.close();
      await telemetry.stop();
      await changes.stop();
      await db.close();
    },
  };
  // Last: a webhook that cannot start (its port taken) stops everything started before it.
  if (kubeRuntime && config.kubeInject) {
    try {
      app.webhook = await kubeRuntime.injectionWebhook(config, ca);
    } catch (err) {
      await app.close();
      throw err;
    }
  }
  return app;
}
