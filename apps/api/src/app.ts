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
import { kubeTokenReviewer } from './ca/token-review-authenticator.ts';
import { loadKubeConfig } from './kube/kubeconfig.ts';
import { PolicySync } from './kube/policy-sync.ts';

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
  /** Policy written into the cluster as custom resources (TERN_KUBE_RECONCILE); undefined outside Kubernetes. */
  policySync: PolicySync | undefined;
  close(): Promise<void>;
}

const compiler: XdsCompiler = { prepareMesh, proxyIdentityFromNode };

export async function createApp(config: Config): Promise<App> {
  // Prisma's query compiler is a 4.5 MB WebAssembly module. V8 would also compile its hot functions
  // with TurboFan, in the background: 40-60 MB more RSS for a compiler that runs once per query
  // shape (its plans are cached). Baseline (Liftoff) code only. Must run before the module compiles.
  // Not with the embedded database: PGlite's whole executor is WebAssembly and needs optimized code.
  if (config.databaseUrl) setFlagsFromString('--liftoff-only');
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
      tokenReview: config.caTokenReview ? { reviewer: kubeTokenReviewer(loadKubeConfig(config.kubeconfig)), audience: config.caTokenAudience } : undefined,
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
  const policySync = config.kubeReconcile
    ? new PolicySync({ kc: loadKubeConfig(config.kubeconfig), resources, changes, namespace: config.namespace, identity: config.replicaId, mode: config.kubeDrift }).start()
    : undefined;
  return {
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
    policySync,
    async close() {
      await policySync?.stop();
      await xds.close();
      await telemetry.stop();
      await changes.stop();
      await db.close();
    },
  };
}
