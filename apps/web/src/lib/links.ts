export function resourceHref(kind: string, namespace: string, name: string, tab?: 'yaml' | 'history'): string {
  const q = new URLSearchParams({ kind, ns: namespace, name });
  if (tab) q.set('tab', tab);
  return `/config/resource?${q.toString()}`;
}
