import type { NextConfig } from 'next';

// The console is a separate process. It never touches the database: every call goes to the control
// plane's API through the same-origin proxy in src/app/api/[...path]/route.ts (read at request
// time, so one build runs against any control plane: TERN_API_URL).
const config: NextConfig = {
  reactStrictMode: true,
  poweredByHeader: false,
  // Several builds side by side (parallel test runs): TERN_WEB_DIST_DIR names this one's output.
  distDir: process.env.TERN_WEB_DIST_DIR ?? '.next',
  // Type checking is `npm run typecheck` at the repo root (apps/web/tsconfig.json); repeating it in
  // every `next build` would add ~20 s to CI for nothing.
  typescript: { ignoreBuildErrors: true },
};

export default config;
