import type { JsonObject } from '@tern/xds';

/** One resource as the ADS client holds and hands it over: the version that carried it and its JSON. */
export interface HeldResource {
  version?: string;
  json: JsonObject;
}

/**
 * Where the ADS client puts configuration: the proxy's ConfigStore (apps/proxy/src/config/store.ts)
 * satisfies this. The interface is kept to what the client needs so tests can plug in a small
 * in-memory sink and the store can evolve behind it.
 */
export interface ConfigSink {
  /**
   * Replaces every resource of `typeUrl` with `resources` (the complete current set) and swaps in
   * the new configuration, or throws without changing anything. The thrown error's message becomes
   * the NACK's error_detail, so it should name the resource and the field. `versionInfo` is the
   * response's version_info (SotW) or system_version_info (delta); absent when the client only
   * drops names it unsubscribed from. A returned promise is awaited.
   */
  replaceType(typeUrl: string, resources: Map<string, HeldResource>, versionInfo?: string): unknown;
  /**
   * Names of `typeUrl` resources the current configuration references: RouteConfiguration names
   * used by listeners (RDS), ClusterLoadAssignment names of EDS clusters (EDS).
   */
  wantedNames(typeUrl: string): Iterable<string>;
  /**
   * Optional: calls `listener` after every configuration change. The client re-reads wantedNames
   * when the change did not come from itself (static config reloaded, another source). Returns an
   * unsubscribe function.
   */
  onChange?(listener: () => void): () => unknown;
}

/** A pino-compatible logger (only the methods the client calls). */
export interface AdsLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const silentLogger: AdsLogger = { debug() {}, info() {}, warn() {}, error() {} };
