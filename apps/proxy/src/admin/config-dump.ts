import { TYPE_URL } from '@tern/xds';
import type { Json, JsonObject, ProxySnapshot, ResourceEntry } from '../config/model.ts';

const DUMP = 'type.googleapis.com/envoy.admin.v3.';

/**
 * The current configuration shaped like Envoy's admin ConfigDump: one entry per kind, raw
 * resources with the version that delivered them. Secrets are listed by name only (their keys
 * never leave the process). `resource` narrows to one kind (e.g. `dynamic_listeners`).
 */
export function configDump(snap: ProxySnapshot, bootstrap: JsonObject | undefined, resource?: string): JsonObject {
  const entries = (typeUrl: string): [string, ResourceEntry][] => [...(snap.resources.get(typeUrl) ?? new Map<string, ResourceEntry>()).entries()];
  const version = (typeUrl: string) => snap.typeVersions.get(typeUrl) ?? '';
  const configs: JsonObject[] = [];
  if (bootstrap) configs.push({ '@type': `${DUMP}BootstrapConfigDump`, bootstrap: redactBootstrap(bootstrap) });
  const isStatic = ([, e]: [string, ResourceEntry]) => e.static === true;
  const dynamic = ([, e]: [string, ResourceEntry]) => e.static !== true;
  configs.push({
    '@type': `${DUMP}ListenersConfigDump`,
    version_info: version(TYPE_URL.listener),
    static_listeners: entries(TYPE_URL.listener).filter(isStatic).map(([, e]) => ({ listener: e.json })),
    dynamic_listeners: entries(TYPE_URL.listener).filter(dynamic).map(([name, e]) => ({ name, active_state: { version_info: e.version, listener: e.json } })),
  });
  configs.push({
    '@type': `${DUMP}ClustersConfigDump`,
    version_info: version(TYPE_URL.cluster),
    static_clusters: entries(TYPE_URL.cluster).filter(isStatic).map(([, e]) => ({ cluster: e.json })),
    dynamic_active_clusters: entries(TYPE_URL.cluster).filter(dynamic).map(([, e]) => ({ version_info: e.version, cluster: e.json })),
  });
  configs.push({
    '@type': `${DUMP}RoutesConfigDump`,
    static_route_configs: entries(TYPE_URL.route).filter(isStatic).map(([, e]) => ({ route_config: e.json })),
    dynamic_route_configs: entries(TYPE_URL.route).filter(dynamic).map(([, e]) => ({ version_info: e.version, route_config: e.json })),
  });
  configs.push({
    '@type': `${DUMP}EndpointsConfigDump`,
    dynamic_endpoint_configs: entries(TYPE_URL.endpoint).map(([, e]) => ({ version_info: e.version, endpoint_config: e.json })),
  });
  configs.push({
    '@type': `${DUMP}SecretsConfigDump`,
    dynamic_active_secrets: entries(TYPE_URL.secret).map(([name, e]) => ({ name, version_info: e.version, secret: { name } })),
  });
  if (resource) {
    const out: Json[] = [];
    for (const c of configs) {
      const v = c[resource];
      if (Array.isArray(v)) out.push(...v);
    }
    return { configs: out };
  }
  return { configs, tern: { snapshot_version: snap.version } };
}

function redactBootstrap(b: JsonObject): JsonObject {
  return JSON.parse(JSON.stringify(b, (k, v) => (k === 'private_key' || k === 'inline_bytes' ? '[redacted]' : v))) as JsonObject;
}
