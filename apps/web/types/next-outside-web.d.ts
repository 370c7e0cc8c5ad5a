// What `next` resolves to in the root and bench type checks (tsconfig.json "paths"), which never
// use Next. Without it, trpc-to-openapi's Next adapter types pull in Next's globals, which make
// `process.env.NODE_ENV` required in every `NodeJS.ProcessEnv` and so break `loadConfig({})` in the
// API's tests and benchmarks. The console itself (apps/web/tsconfig.json) sees the real `next`.
export type NextApiRequest = unknown;
export type NextApiResponse = unknown;
export type NextApiHandler = unknown;
