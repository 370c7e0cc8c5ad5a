import { AuthenticationV1Api, type KubeConfig } from '@kubernetes/client-node';
import type { Config } from '../config.ts';
import type { ChangeFeed } from '../store/changes.ts';
import type { Database } from '../store/db.ts';
import type { ResourceStore } from '../store/resources.ts';
import type { AnalyzeFn } from '../store/writer.ts';
import { TokenReviewUnavailableError, type TokenReviewer } from '../ca/token-review-authenticator.ts';
import { kubeConfigFromEnv } from './client.ts';
import { KubeController } from './controller.ts';
import { KubeRegistrySync } from './registry-sync.ts';

// Everything that loads @kubernetes/client-node (~74 MB of RSS and half a second at start): the
// control plane imports this module only when it is configured for a cluster.

/** The cluster's API server: KUBECONFIG (Config.kubeconfig), else the pod's service account. */
export function clusterConfig(config: Config) {
  return kubeConfigFromEnv({ ...process.env, KUBECONFIG: config.kubeconfig ?? '' });
}

export function kubeController(config: Config, deps: { resources: ResourceStore; changes: ChangeFeed; prisma: Database['prisma']; analyze: AnalyzeFn }): KubeController {
  const kc = clusterConfig(config);
  const leaderServices = [];
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
    leaderServices,
  }).start();
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

