import path from 'node:path';
import { ApiException, KubeConfig } from '@kubernetes/client-node';

// Where the control plane's Kubernetes credentials come from, decided in one place: a kubeconfig
// file (KUBECONFIG, may list several files like kubectl's), else the pod's service account when
// running in a cluster. No silent fallback to ~/.kube/config or localhost:8080: a control plane
// configured for Kubernetes that finds no cluster should say so.

export class KubeConfigError extends Error {}

export function kubeConfigFromEnv(env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const kc = new KubeConfig();
  const file = env.KUBECONFIG?.trim();
  if (file) {
    // A list like kubectl's: the first file's current context wins.
    const files = file.split(path.delimiter).filter(Boolean);
    kc.loadFromFile(files[0]!);
    for (const f of files.slice(1)) {
      const more = new KubeConfig();
      more.loadFromFile(f);
      kc.mergeConfig(more, true);
    }
    if (!kc.getCurrentCluster()) throw new KubeConfigError(`KUBECONFIG (${file}): no current context with a cluster`);
    return kc;
  }
  if (env.KUBERNETES_SERVICE_HOST && env.KUBERNETES_SERVICE_PORT) {
    kc.loadFromCluster();
    return kc;
  }
  throw new KubeConfigError('no Kubernetes configuration: set KUBECONFIG, or run in a pod (KUBERNETES_SERVICE_HOST)');
}

/** The HTTP status of a client-node failure: ApiException (typed APIs) or the Watch's `statusCode`. */
export function kubeErrorCode(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  if (err && typeof err === 'object') {
    const e = err as { statusCode?: unknown; code?: unknown };
    if (typeof e.statusCode === 'number') return e.statusCode;
    if (typeof e.code === 'number') return e.code;
  }
  return undefined;
}
