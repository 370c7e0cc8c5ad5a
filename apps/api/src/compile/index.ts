// The compiler: pure functions from (mesh revision, proxy identity) to Envoy xDS resources.
export { prepareMesh } from './prepare.ts';
export { proxyIdentityFromNode, NodeMetadataError } from './node.ts';
export { stableStringify } from './util.ts';
export type { CompileOptions, PreparedMesh, PrepareMesh, ProxyIdentity, ProxyResources } from './types.ts';
