import type { Json, JsonObject } from '@tern/xds';
import type { PeerIdentity } from '../dataplane/headers.ts';

/**
 * Istio's node metadata -> who this sidecar fronts (the source of outbound metrics, the
 * destination of inbound ones). LABELS may be a struct or, as some injectors write it, a JSON
 * string (the control plane accepts both); WORKLOAD_NAME and NAMESPACE fall back to Istio's node
 * id `sidecar~10.0.0.5~reviews-v1-7d9f.default~default.svc.cluster.local`.
 */
export function identityFromNodeMetadata(metadata: JsonObject, nodeId = ''): PeerIdentity {
  const str = (v: Json | undefined) => (typeof v === 'string' ? v : '');
  const labels = labelsOf(metadata.LABELS);
  const app = str(labels['service.istio.io/canonical-name']) || str(labels.app) || str(labels['app.kubernetes.io/name']);
  const version = str(labels['service.istio.io/canonical-revision']) || str(labels.version) || str(labels['app.kubernetes.io/version']);
  const fromId = /^[^~]+~[^~]*~([^~.]+)\.([a-z0-9-]+)~/.exec(nodeId);
  return {
    workload: str(metadata.WORKLOAD_NAME) || fromId?.[1] || 'unknown',
    namespace: str(metadata.NAMESPACE) || fromId?.[2] || 'unknown',
    app: app || 'unknown',
    version: version || 'unknown',
    // A principal is only claimed once mTLS proves it; plaintext meshes report "unknown" (Istio).
    principal: '',
  };
}

function labelsOf(v: Json | undefined): JsonObject {
  if (typeof v === 'string') {
    try {
      const parsed = JSON.parse(v) as Json;
      return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? parsed : {};
    } catch {
      return {};
    }
  }
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? v : {};
}
