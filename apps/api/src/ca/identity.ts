// Workload identities and their SPIFFE IDs (Istio's form: spiffe://<trust domain>/ns/<ns>/sa/<sa>).

export interface WorkloadIdentity {
  namespace: string;
  serviceAccount: string;
}

/** Kubernetes' rules: a namespace is a DNS-1123 label, a service account a DNS-1123 subdomain. */
export const NAMESPACE_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const SERVICE_ACCOUNT_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const TRUST_DOMAIN_RE = /^[a-z0-9]([-a-z0-9._]*[a-z0-9])?$/;

export function spiffeId(trustDomain: string, id: WorkloadIdentity): string {
  return `spiffe://${trustDomain}/ns/${id.namespace}/sa/${id.serviceAccount}`;
}
