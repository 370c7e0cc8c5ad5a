# The demo mesh (demo/, docs/demo.md) against a control plane in another container: Bookinfo's six
# apps and seven `tern-proxy` sidecars in this one container, sharing its loopback as in a local
# `npm start`; demo/compose-entry.ts signs in with TERN_ADMIN_PASSWORD and forwards the published
# port to the gateway. The demo is TypeScript run by tsx (a dev dependency, hence the full install);
# the sidecars run the proxy bundle built here.
FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json prisma.config.ts tsconfig.json ./
COPY scripts ./scripts
COPY prisma ./prisma
COPY packages ./packages
COPY apps/proxy ./apps/proxy
COPY apps/api/package.json ./apps/api/package.json
COPY apps/web/package.json ./apps/web/package.json
RUN npm ci --no-audit --no-fund && npm cache clean --force && node apps/proxy/scripts/bundle.mjs
# After the bundle, so demo/lib/bundle.ts finds it newer than the sources and never rebuilds it.
COPY demo ./demo
COPY samples/bookinfo ./samples/bookinfo
ENV NODE_ENV=production TERN_API_URL=http://api-a:8080 TERN_XDS_ADDRESS=api-a:15010 TERN_DEMO_GATEWAY_PORT=9080 TERN_DEMO_PUBLISH_PORT=9081
# Bookinfo through the gateway (forwarded to its 127.0.0.1:9080 listener).
EXPOSE 9081
USER node
CMD ["node", "--import", "tsx", "demo/compose-entry.ts"]
