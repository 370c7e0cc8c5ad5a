export { AdsClient, buildNode, DEFAULT_TYPE_URLS, type AdsClientOptions, type AdsHooks, type AdsMode, type AdsNodeOptions } from './client.ts';
export type { AdsStatus, AdsTypeStatus } from './status.ts';
export { silentLogger, type AdsLogger, type ConfigSink, type HeldResource } from './sink.ts';
export { Backoff } from './backoff.ts';
