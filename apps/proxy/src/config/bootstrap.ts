/**
 * The Envoy bootstrap file (JSON or YAML): validated against envoy.config.bootstrap.v3.Bootstrap
 * (unknown fields and bad values are errors naming the field path), then read into what the proxy
 * needs: node identity, admin address, static resources (compiled into the initial snapshot by the
 * same buildSnapshot as xDS updates) and the ADS control plane address.
 */
import { readFile } from 'node:fs/promises';
import { normalizeJson, TYPE_URL, XdsJsonError, type JsonObject } from '@tern/xds';
import YAML from 'yaml';
import { ConfigError, type Locality, type ProxySnapshot, type ResourceSet } from './model.ts';
import { buildSnapshot, emptySnapshot } from './snapshot.ts';

export class BootstrapError extends Error {
  constructor(
    readonly source: string,
    readonly path: string,
    readonly rule: string,
  ) {
    super(`bootstrap ${source}: ${path || '(root)'}: ${rule}`);
    this.name = 'BootstrapError';
  }
}

/** Where the ADS stream goes. */
export interface AdsConfig {
  /** GRPC = state of the world, DELTA_GRPC = incremental. */
  readonly apiType: 'GRPC' | 'DELTA_GRPC';
  /** envoy_grpc: a static cluster (resolved to its first endpoint); google_grpc: a target URI. */
  readonly target:
    | { readonly kind: 'envoy_grpc'; readonly clusterName: string; readonly address: string; readonly port: number; readonly tls: boolean }
    | { readonly kind: 'google_grpc'; readonly targetUri: string; readonly tls: boolean };
  /** grpc_services[0].timeout, if set. */
  readonly timeoutMs?: number;
  readonly setNodeOnFirstMessageOnly: boolean;
  /** grpc_services[0].initial_metadata as name → value (e.g. an authorization header). */
  readonly initialMetadata: ReadonlyMap<string, string>;
}

export interface Bootstrap {
  readonly node: { readonly id: string; readonly cluster: string; readonly metadata: JsonObject; readonly locality?: Locality; readonly raw: JsonObject };
  /** Admin listener; default 127.0.0.1:15000. */
  readonly admin: { readonly address: string; readonly port: number };
  /** static_resources by type URL then resource name (normalised JSON). */
  readonly staticResources: ReadonlyMap<string, ReadonlyMap<string, JsonObject>>;
  /** The snapshot built from static_resources alone. */
  readonly initialSnapshot: ProxySnapshot;
  /** undefined when there is no dynamic_resources.ads_config (static configuration only). */
  readonly ads?: AdsConfig;
  /** The whole bootstrap, normalised. */
  readonly raw: JsonObject;
}

/** Reads and validates a bootstrap file; the format follows the extension (.json, .yaml, .yml) or the content. */
export async function loadBootstrap(file: string): Promise<Bootstrap> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new BootstrapError(file, '', `cannot be read: ${(err as Error).message}`);
  }
  const format = /\.json$/i.test(file) ? 'json' : /\.ya?ml$/i.test(file) ? 'yaml' : undefined;
  return parseBootstrap(text, format, file);
}

/** Parses bootstrap text (JSON or YAML; undefined format = JSON if it starts with "{", else YAML). */
export function parseBootstrap(text: string, format?: 'json' | 'yaml', source = '(inline)'): Bootstrap {
  const fmt = format ?? (text.trimStart().startsWith('{') ? 'json' : 'yaml');
  let doc: unknown;
  try {
    doc = fmt === 'json' ? JSON.parse(text) : YAML.parse(text, { uniqueKeys: true, merge: true });
  } catch (err) {
    throw new BootstrapError(source, '', `is not valid ${fmt.toUpperCase()}: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new BootstrapError(source, '', 'must be an object');
  let raw: JsonObject;
  try {
    raw = normalizeJson('envoy.config.bootstrap.v3.Bootstrap', doc);
  } catch (err) {
    if (err instanceof XdsJsonError) throw new BootstrapError(source, err.path, err.rule);
    throw err;
  }
  return readBootstrap(raw, source);
}

/** Fields of Bootstrap the proxy acts on; the others listed are accepted and ignored; anything else is rejected. */
const IGNORED = new Set(['stats_config', 'stats_flush_interval', 'stats_flush_on_admin', 'stats_sinks', 'layered_runtime', 'overload_manager', 'watchdog', 'watchdogs', 'cluster_manager', 'node_context_params', 'enable_dispatcher_stats', 'header_prefix', 'use_tcp_for_dns_lookups', 'tracing']);
const USED = new Set(['node', 'admin', 'static_resources', 'dynamic_resources']);

function readBootstrap(raw: JsonObject, source: string): Bootstrap {
  function fail(path: string, rule: string): never {
    throw new BootstrapError(source, path, rule);
  }
  for (const key of Object.keys(raw)) if (!USED.has(key) && !IGNORED.has(key)) fail(key, 'is not supported by the Tern proxy');

  // node
  const nodeJson = (raw.node ?? {}) as JsonObject;
  const id = typeof nodeJson.id === 'string' ? nodeJson.id : '';
  if (!id) fail('node.id', 'is required');
  const loc = nodeJson.locality as JsonObject | undefined;
  const node = {
    id,
    cluster: typeof nodeJson.cluster === 'string' ? nodeJson.cluster : '',
    metadata: (nodeJson.metadata ?? {}) as JsonObject,
    ...(loc ? { locality: { region: String(loc.region ?? ''), zone: String(loc.zone ?? ''), subZone: String(loc.sub_zone ?? '') } } : {}),
    raw: nodeJson,
  };

  // admin
  let admin = { address: '127.0.0.1', port: 15000 };
  const adminJson = raw.admin as JsonObject | undefined;
  if (adminJson?.address) {
    const sa = (adminJson.address as JsonObject).socket_address as JsonObject | undefined;
    if (!sa) fail('admin.address', 'socket_address is required');
    admin = { address: String(sa.address ?? ''), port: Number(sa.port_value ?? 0) };
    if (!admin.address) fail('admin.address.socket_address.address', 'is required');
  }

  // static_resources
  const statics = (raw.static_resources ?? {}) as JsonObject;
  const kinds: [string, string, string][] = [
    ['listeners', TYPE_URL.listener, 'name'],
    ['clusters', TYPE_URL.cluster, 'name'],
    ['secrets', TYPE_URL.secret, 'name'],
  ];
  const staticResources = new Map<string, Map<string, JsonObject>>();
  const indexOf = new Map<string, string>(); // `${typeUrl}\0${name}` -> path
  for (const [field, typeUrl, nameField] of kinds) {
    const items = (statics[field] ?? []) as JsonObject[];
    const set = new Map<string, JsonObject>();
    items.forEach((item, i) => {
      const path = `static_resources.${field}[${i}]`;
      const name = typeof item[nameField] === 'string' ? (item[nameField] as string) : '';
      if (!name) fail(`${path}.${nameField}`, 'is required');
      if (set.has(name)) fail(`${path}.${nameField}`, `duplicate name ${JSON.stringify(name)}`);
      set.set(name, item);
      indexOf.set(`${typeUrl}\0${name}`, path);
    });
    if (set.size > 0) staticResources.set(typeUrl, set);
  }
  let initialSnapshot: ProxySnapshot;
  try {
    initialSnapshot = staticResources.size > 0 ? buildSnapshot(asResourceSets(staticResources), { version: '1' }) : emptySnapshot();
  } catch (err) {
    if (err instanceof ConfigError) {
      const base = indexOf.get(`${err.typeUrl}\0${err.resourceName}`) ?? `static_resources (${err.resourceName})`;
      fail(err.path ? `${base}.${err.path}` : base, err.rule);
    }
    throw err;
  }

  // dynamic_resources
  let ads: AdsConfig | undefined;
  const dyn = raw.dynamic_resources as JsonObject | undefined;
  if (dyn) {
    for (const key of Object.keys(dyn)) {
      if (key === 'ads_config') continue;
      if (key === 'lds_config' || key === 'cds_config') {
        const cs = dyn[key] as JsonObject;
        if (cs.ads === undefined) fail(`dynamic_resources.${key}`, 'only { ads: {} } is supported (every resource type comes over the one ADS stream)');
        continue;
      }
      fail(`dynamic_resources.${key}`, 'is not supported');
    }
    const ac = dyn.ads_config as JsonObject | undefined;
    if (ac) ads = readAds(ac, staticResources.get(TYPE_URL.cluster), fail);
    else if (dyn.lds_config !== undefined || dyn.cds_config !== undefined) fail('dynamic_resources.ads_config', 'is required when lds_config or cds_config use ads');
  }

  return { node, admin, staticResources, initialSnapshot, ...(ads ? { ads } : {}), raw };
}

function asResourceSets(m: ReadonlyMap<string, ReadonlyMap<string, JsonObject>>): Map<string, ResourceSet> {
  return new Map([...m].map(([t, set]) => [t, new Map([...set].map(([name, json]) => [name, { version: 'static', json, static: true }] as const))] as const));
}

function readAds(ac: JsonObject, clusters: ReadonlyMap<string, JsonObject> | undefined, fail: (path: string, rule: string) => never): AdsConfig {
  const p = 'dynamic_resources.ads_config';
  const apiType = ac.api_type === 'DELTA_GRPC' ? 'DELTA_GRPC' : ac.api_type === 'GRPC' ? 'GRPC' : fail(`${p}.api_type`, 'must be GRPC or DELTA_GRPC');
  if (ac.transport_api_version !== undefined && ac.transport_api_version !== 'V3' && ac.transport_api_version !== 'AUTO') fail(`${p}.transport_api_version`, 'must be V3');
  if (ac.cluster_names !== undefined) fail(`${p}.cluster_names`, 'is not supported for gRPC config sources (use grpc_services)');
  const services = (ac.grpc_services ?? []) as JsonObject[];
  if (services.length === 0) fail(`${p}.grpc_services`, 'one gRPC service is required');
  if (services.length > 1) fail(`${p}.grpc_services`, 'only one gRPC service is supported');
  const gs = services[0]!;
  const gp = `${p}.grpc_services[0]`;
  const initialMetadata = new Map<string, string>();
  for (const hv of (gs.initial_metadata ?? []) as JsonObject[]) initialMetadata.set(String(hv.key ?? '').toLowerCase(), String(hv.value ?? ''));
  const timeout = typeof gs.timeout === 'string' ? parseFloat(gs.timeout) * 1000 : undefined;
  let target: AdsConfig['target'];
  if (gs.envoy_grpc) {
    const clusterName = String((gs.envoy_grpc as JsonObject).cluster_name ?? '');
    if (!clusterName) fail(`${gp}.envoy_grpc.cluster_name`, 'is required');
    const cluster = clusters?.get(clusterName);
    if (!cluster) fail(`${gp}.envoy_grpc.cluster_name`, `names ${JSON.stringify(clusterName)}, which is not a static cluster`);
    const la = cluster.load_assignment as JsonObject | undefined;
    const first = ((((la?.endpoints ?? []) as JsonObject[])[0]?.lb_endpoints ?? []) as JsonObject[])[0];
    const sa = ((first?.endpoint as JsonObject | undefined)?.address as JsonObject | undefined)?.socket_address as JsonObject | undefined;
    if (!sa) fail(`${gp}.envoy_grpc.cluster_name`, `static cluster ${JSON.stringify(clusterName)} has no endpoint in load_assignment`);
    target = { kind: 'envoy_grpc', clusterName, address: String(sa.address), port: Number(sa.port_value ?? 0), tls: cluster.transport_socket !== undefined };
  } else if (gs.google_grpc) {
    const g = gs.google_grpc as JsonObject;
    const targetUri = String(g.target_uri ?? '');
    if (!targetUri) fail(`${gp}.google_grpc.target_uri`, 'is required');
    target = { kind: 'google_grpc', targetUri, tls: (g.channel_credentials as JsonObject | undefined)?.ssl_credentials !== undefined };
  } else return fail(gp, 'envoy_grpc or google_grpc is required');
  return {
    apiType,
    target,
    ...(timeout !== undefined ? { timeoutMs: timeout } : {}),
    setNodeOnFirstMessageOnly: ac.set_node_on_first_message_only === true,
    initialMetadata,
  };
}
