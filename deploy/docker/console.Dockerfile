# The Tern console (apps/web, Next.js): a production build served by `next start` on :3000. It never
# touches the database; every call goes to the control plane at TERN_API_URL (read per request).
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json prisma.config.ts tsconfig.json ./
COPY scripts ./scripts
COPY prisma ./prisma
COPY packages ./packages
# The console imports the API's router types only (erased by the build); they are copied for that.
COPY apps/api ./apps/api
COPY apps/web ./apps/web
COPY apps/proxy/package.json ./apps/proxy/package.json
RUN npm ci --no-audit --no-fund && NEXT_TELEMETRY_DISABLED=1 npm run build -w apps/web

FROM node:20-bookworm-slim
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/packages ./packages
COPY --from=build /app/apps/web/package.json /app/apps/web/next.config.ts ./apps/web/
COPY --from=build /app/apps/web/.next ./apps/web/.next
ENV NODE_ENV=production NEXT_TELEMETRY_DISABLED=1 HOSTNAME=0.0.0.0 PORT=3000 TERN_API_URL=http://tern-api:8080
EXPOSE 3000
USER node
WORKDIR /app/apps/web
CMD ["node", "/app/node_modules/next/dist/bin/next", "start", "-p", "3000"]
