export * from './protos.ts';
export * from './json.ts';
export * from './types.ts';
export * from './names.ts';
export * from './ads.ts';
export * from './telemetry.ts';
export * from './istio-ca.ts';
export * from './svid-credential.ts';
