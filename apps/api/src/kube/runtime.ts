import { AuthenticationV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { ServingCertificate } from '../ca/serving-cert.ts';
import type { Config } from '../config.ts';
import type { ChangeFeed } from '../store/changes.ts';
import type { Database } from '../store/db.ts';
import type { ResourceStore } from '../store/resources.ts';
import type { AnalyzeFn } from '../store/writer.ts';
import { TokenReviewUnavailableError, type TokenReviewer } from '../ca/token-review-authenticator.ts';
import { kubeConfigFromEnv } from './client.ts';
import { KubeController } from './controller.ts';
import { KubeRegistrySync } from './registry-sync.ts';
import { AuditLog } from '../store/audit.ts';
import { ProxyStatusStore } from '../xds/status-store.ts';
import { WebhookCaBundleKeeper } from './webhook-ca-bundle.ts';
import { startInjectionWebhook, type InjectionWebhook } from './webhook-runtime.ts';

// Everything that loads @kubernetes/client-node (~74 MB of RSS and half a second at start): the
// control plane imports this module only when it is configured for a cluster.

/** The cluster's API server: KUBECONFIG (Config.kubeconfig), else the pod's service account. */
export function clusterConfig(config: Config) {
  return kubeConfigFromEnv({ ...process.env, KUBECONFIG: config.kubeconfig ?? '' });
}

export function kubeController(config: Config, deps: { resources: ResourceStore; changes: ChangeFeed; prisma: Database['prisma']; analyze: AnalyzeFn; ca?: { trustBundle(): { roots: string[] } } }): KubeController {
  const kc = clusterConfig(config);
  const leaderServices = [];
  if (config.kubeInject && deps.ca) {
    const ca = deps.ca;
    leaderServices.push(new WebhookCaBundleKeeper({ kc, trustBundle: () => ca.trustBundle().roots, checkMs: config.kubeInjectCaBundleCheckMs }));
  }
  if (config.kubeRegistry) {
    // A fresh sync each time this replica takes the lead (a stopped one does not restart).
    let sync: KubeRegistrySync | undefined;
    leaderServices.push({
      start: async () => {
        sync = new KubeRegistrySync({ kubeConfig: kc, prisma: deps.prisma, analyze: deps.analyze, domainSuffix: config.domainSuffix });
        await sync.start();
      },
      stop: async () => {
        const s = sync;
        sync = undefined;
        await s?.stop();
      },
    });
  }
  return new KubeController({
    kc,
    resources: deps.resources,
    changes: deps.changes,
    namespace: config.namespace,
    identity: config.replicaId,
    reconcile: config.kubeReconcile ? { mode: config.kubeDrift } : undefined,
    resyncMs: config.kubeResyncMs,
    audit: new AuditLog(deps.prisma),
    proxies: connectedProxies(deps.prisma, config.replicaId),
    leaderServices,
  }).start();
}

/** The sidecar-injection webhook, on every replica (TERN_KUBE_INJECT): kube/webhook-runtime.ts. */
export function injectionWebhook(config: Config, ca: { servingCertificate(dnsNames: string[], ttlSeconds?: number): Promise<ServingCertificate> }): Promise<InjectionWebhook> {
  return startInjectionWebhook({ kc: clusterConfig(config), ca, settings: config });
}

/**
 * Every connected proxy of the mesh, whichever replica holds its stream: the shared ProxyStatus
 * table (what `tern proxy-status` lists), read only — rows of a replica that stopped touching them
 * (its proxies are gone) are left out, as the API shows them DISCONNECTED.
 */
function connectedProxies(prisma: Database['prisma'], replicaId: string) {
  const reader = new ProxyStatusStore(prisma, { replicaId });
  return async () => (await reader.list()).filter((r) => !reader.isStale(r)).map((r) => r.view);
}

/** A TokenReview through the cluster's API server (the control plane's service account needs `create` on tokenreviews). */
export function kubeTokenReviewer(kc: KubeConfig): TokenReviewer {
  const api = kc.makeApiClient(AuthenticationV1Api);
  return async (token, audiences) => {
    let review;
    try {
      review = await api.createTokenReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenReview', spec: { token, audiences } } });
    } catch (err) {
      throw new TokenReviewUnavailableError(`TokenReview failed: ${(err as Error).message}`);
    }
    const s = review.status ?? {};
    return { authenticated: s.authenticated === true, username: s.user?.username, audiences: s.audiences, error: s.error, podName: s.user?.extra?.['authentication.kubernetes.io/pod-name']?.[0] };
  };
}

