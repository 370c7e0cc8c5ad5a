# The Tern sidecar (apps/proxy), bundled into one module run by plain node (apps/proxy/scripts/bundle.mjs).
# The same image serves the injected init container, which needs sh, sed and iptables-restore
# (docs/kubernetes-injection.md): Debian's iptables is added for it.
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json prisma.config.ts tsconfig.json ./
COPY scripts ./scripts
COPY prisma ./prisma
COPY packages ./packages
COPY apps/proxy ./apps/proxy
COPY apps/api/package.json ./apps/api/package.json
COPY apps/web/package.json ./apps/web/package.json
RUN npm ci --no-audit --no-fund && node apps/proxy/scripts/bundle.mjs

# Only what the bundle leaves external (gRPC and its .proto files, the X.509 library): the proxy's
# production dependencies, ~70 MB instead of the whole workspace's ~850 MB.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages ./packages
COPY apps/proxy/package.json ./apps/proxy/package.json
COPY apps/api/package.json ./apps/api/package.json
COPY apps/web/package.json ./apps/web/package.json
RUN npm ci --omit=dev --workspace apps/proxy --include-workspace-root=false --ignore-scripts --no-audit --no-fund

FROM node:20-bookworm-slim
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends iptables && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=deps /app/packages ./packages
COPY --from=build /app/apps/proxy/package.json ./apps/proxy/package.json
COPY --from=build /app/apps/proxy/dist ./apps/proxy/dist
RUN printf '#!/bin/sh\nexec node /app/apps/proxy/dist/tern-proxy.mjs "$@"\n' > /usr/local/bin/tern-proxy && chmod 755 /usr/local/bin/tern-proxy
ENV NODE_ENV=production
# Admin 15000, outbound 15001, inbound 15006, app probes 15020, readiness 15021, metrics 15090.
EXPOSE 15000 15001 15006 15020 15021 15090
# uid 1337, as Istio's: the init container's iptables rules let this user's traffic out unredirected.
USER 1337:1337
ENTRYPOINT ["tern-proxy"]
