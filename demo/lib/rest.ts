/** The few control-plane REST calls the demo makes, with errors that name the call. */
export interface Rest {
  call(method: string, path: string, body?: unknown): Promise<any>;
}

export function restClient(api: string, token: string): Rest {
  const base = api.replace(/\/+$/, '');
  return {
    async call(method, path, body) {
      let res: Response;
      try {
        res = await fetch(`${base}${path}`, {
          method,
          headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        });
      } catch (err) {
        throw new Error(`${method} ${base}${path}: control plane unreachable (${(err as Error).message})`);
      }
      const text = await res.text();
      if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 500)}`);
      try {
        return JSON.parse(text);
      } catch {
        return text;
      }
    },
  };
}
