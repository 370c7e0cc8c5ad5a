export * from './registry.ts';
export * from './api.ts';
export * from './istio/index.ts';
export * from './proxy-status.ts';
export * from './telemetry.ts';
export * from './security.ts';
