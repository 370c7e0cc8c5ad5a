/** The proxy's configuration: model, compilation, store, bootstrap, routing and load balancing. */
export * from './model.ts';
export { buildSnapshot, emptySnapshot, type BuildOptions } from './snapshot.ts';
export { ConfigStore, type ConfigStoreOptions, type ResourceUpdate, type SnapshotChange, type SnapshotListener } from './store.ts';
export { loadBootstrap, parseBootstrap, BootstrapError, type AdsConfig, type Bootstrap } from './bootstrap.ts';
export { selectRoute, findVirtualHost, headerValue, matchHeader, parseQuery, pickWeightedCluster, resolveCluster, rewritePath, buildRedirectUrl, stripQuery, type RouteRequest, type RouteSelection } from './route-select.ts';
export { selectFilterChain, type ConnectionInfo } from './chain-select.ts';
export { matchString } from './compile-common.ts';
export { LbRegistry, createLoadBalancer, newEndpointStats, type EndpointStats, type LoadBalancer, type PickContext, type UpstreamHost } from './lb.ts';
export { hashString, combineHash, requestHash, cookieToGenerate, cookieValue, setCookieValue, type HashInput } from './hash.ts';
