import type { KubeConfig } from '@kubernetes/client-node';
import type { ServingCertificate } from '../ca/serving-cert.ts';
import type { Config } from '../config.ts';
import { logger } from '../log.ts';
import { CertRenewer, type CertRenewerOptions } from './inject/cert-renewer.ts';
import type { InjectConfig } from './inject/mutate.ts';
import { NamespaceLabels } from './inject/namespace-labels.ts';
import { startWebhookServer, webhookServiceDns, type WebhookServer } from './inject/webhook-server.ts';

// The injection webhook as the control plane runs it, on every replica (the webhook Service
// balances the API server's calls over all of them): its HTTPS server, its serving certificate
// issued in-process by Tern's CA (the CA key never leaves the process; no network round trip) and
// renewed before it expires, and the namespace-label cache. The caBundle upkeep is the leader's
// (webhook-ca-bundle.ts).

export type InjectSettings = Pick<
  Config,
  'namespace' | 'domainSuffix' | 'trustDomain' | 'caTokenAudience' | 'proxyImage' | 'kubeInjectXdsAddress' | 'kubeInjectHost' | 'kubeInjectPort' | 'kubeInjectCertTtlSeconds' | 'kubeInjectDnsNames'
>;

/** What the injected sidecar is told, from the control plane's settings. */
export function injectConfigFromSettings(s: InjectSettings): InjectConfig {
  return {
    proxyImage: s.proxyImage,
    xdsAddress: s.kubeInjectXdsAddress,
    trustDomain: s.trustDomain,
    clusterDomain: s.domainSuffix,
    tokenAudience: s.caTokenAudience,
  };
}

/** The serving certificate's names: the webhook Service in the control plane's namespace, then TERN_KUBE_INJECT_DNS_NAMES. */
export function webhookDnsNames(s: Pick<InjectSettings, 'namespace' | 'domainSuffix' | 'kubeInjectDnsNames'>): string[] {
  return [...new Set([...webhookServiceDns(s.namespace, s.domainSuffix), ...s.kubeInjectDnsNames])];
}

export interface InjectionWebhook {
  server: WebhookServer;
  port: number;
  dnsNames: string[];
  renewer: CertRenewer;
  namespaces: NamespaceLabels;
  close(): Promise<void>;
}

export interface InjectionWebhookOptions {
  kc: KubeConfig;
  ca: { servingCertificate(dnsNames: string[], ttlSeconds?: number): Promise<ServingCertificate> };
  settings: InjectSettings;
  /** Renewal timing (tests: a small fraction of a short lifetime). */
  renew?: Pick<CertRenewerOptions, 'renewFraction' | 'jitter' | 'backoff' | 'random'>;
}

export async function startInjectionWebhook(o: InjectionWebhookOptions): Promise<InjectionWebhook> {
  const { settings } = o;
  const config = injectConfigFromSettings(settings);
  const dnsNames = webhookDnsNames(settings);
  let server: WebhookServer | undefined;
  const renewer = new CertRenewer({
    issue: () => o.ca.servingCertificate(dnsNames, settings.kubeInjectCertTtlSeconds),
    apply: (cert) => server?.setCertificate(cert),
    ...o.renew,
  });
  const cert = await renewer.start();
  const namespaces = new NamespaceLabels(o.kc);
  try {
    server = await startWebhookServer({ config, cert, namespaceLabels: (ns) => namespaces.labels(ns), host: settings.kubeInjectHost, port: settings.kubeInjectPort });
  } catch (err) {
    await renewer.stop();
    throw new Error(`injection webhook: cannot listen on ${settings.kubeInjectHost}:${settings.kubeInjectPort} (TERN_KUBE_INJECT_HOST/TERN_KUBE_INJECT_PORT): ${(err as Error).message}`);
  }
  namespaces.start();
  const s = server;
  logger.info({ host: settings.kubeInjectHost, port: s.port, dnsNames, serial: cert.serial, notAfter: cert.notAfter.toISOString(), proxyImage: config.proxyImage, xdsAddress: config.xdsAddress }, 'injection webhook listening');
  return {
    server: s,
    port: s.port,
    dnsNames,
    renewer,
    namespaces,
    async close() {
      await renewer.stop();
      await namespaces.stop();
      await s.close();
    },
  };
}
