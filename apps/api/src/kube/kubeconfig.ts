import { KubeConfig } from '@kubernetes/client-node';

/** The API server's kubeconfig: the file named (KUBECONFIG), else client-node's default (in a pod: its service account). */
export function loadKubeConfig(file: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  return kc;
}
