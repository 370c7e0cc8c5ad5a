import { generateOpenApiDocument } from 'trpc-to-openapi';
import type { Config } from '../config.ts';
import { appRouter } from './root.ts';

export function openApiDocument(config: Pick<Config, 'apiPort'>) {
  return generateOpenApiDocument(appRouter, {
    title: 'Tern control plane API',
    description:
      'Mesh policy in Istio’s own API, the service registry, history and rollback, audit, users and tokens. ' +
      'Authenticate with `Authorization: Bearer <API token>` (or the console’s session cookie).',
    version: '1',
    baseUrl: `http://localhost:${config.apiPort}/api/v1`,
    securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
  });
}
