import { router } from './trpc.ts';
import { resourcesRouter } from './routers/resources.ts';
import { historyRouter } from './routers/history.ts';
import { registryRouter } from './routers/registry.ts';
import { proxiesRouter } from './routers/proxies.ts';
import { graphRouter } from './routers/graph.ts';
import { authRouter, tokensRouter, usersRouter } from './routers/auth.ts';
import { caRouter } from './routers/ca.ts';
import { securityRouter } from './routers/security.ts';
import { kubernetesRouter } from './routers/kubernetes.ts';

export const appRouter = router({
  resources: resourcesRouter,
  history: historyRouter,
  registry: registryRouter,
  auth: authRouter,
  users: usersRouter,
  tokens: tokensRouter,
  proxies: proxiesRouter,
  graph: graphRouter,
  ca: caRouter,
  security: securityRouter,
  kubernetes: kubernetesRouter,
});

export type AppRouter = typeof appRouter;
