/**
 * Istio's cluster naming: `outbound|9080|v1|reviews.default.svc.cluster.local` for a subset,
 * `outbound|9080||reviews.default.svc.cluster.local` for the whole service, `inbound|9080||` for the
 * local app. Keeping Istio's names lets istioctl-style tooling and Istio's dashboards read ours.
 */
export type ClusterDirection = 'outbound' | 'inbound';

export interface ClusterKey {
  direction: ClusterDirection;
  port: number;
  subset?: string;
  host?: string;
}

export function clusterName(key: ClusterKey): string {
  return `${key.direction}|${key.port}|${key.subset ?? ''}|${key.host ?? ''}`;
}

export function parseClusterName(name: string): ClusterKey | undefined {
  const parts = name.split('|');
  if (parts.length !== 4) return undefined;
  const [direction, port, subset, host] = parts as [string, string, string, string];
  if (direction !== 'outbound' && direction !== 'inbound') return undefined;
  const portNumber = Number(port);
  if (!Number.isInteger(portNumber) || portNumber < 0 || portNumber > 65535) return undefined;
  return { direction, port: portNumber, ...(subset ? { subset } : {}), ...(host ? { host } : {}) };
}

/** Route configuration for an outbound port, as Istio names it: the port number ("9080"). */
export function outboundRouteName(port: number): string {
  return String(port);
}

/** Resource names arrive percent-decoded from some clients (grpc-js-xds): compare canonically. */
export function canonicalResourceName(name: string): string {
  try {
    return decodeURIComponent(name);
  } catch {
    return name;
  }
}
