# syntax=docker/dockerfile:1
# quotagate: a multi-stage build. The runtime image holds the compiled
# JavaScript, the compiled web pages (dist/ui), production dependencies, lua/,
# migrations/ and the example configs, and runs as the unprivileged `node` user.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY ui ./ui
COPY scripts/build-ui.ts ./scripts/
RUN npm run build

FROM node:20-bookworm-slim AS production-deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    QUOTAGATE_CONFIG=/app/gateway.yaml \
    QUOTAGATE_ADMIN_HOST=0.0.0.0
WORKDIR /app
COPY --from=production-deps --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist/src ./dist/src
COPY --from=build --chown=root:root /app/dist/ui ./dist/ui
COPY --chown=root:root package.json gateway.yaml ./
COPY --chown=root:root lua ./lua
COPY --chown=root:root migrations ./migrations
COPY --chown=root:root openapi ./openapi
COPY --chown=root:root config ./config
# The embedded database's files (postgres.data_dir ./data) when no postgres.url is set; mount a volume here to keep them.
RUN mkdir /app/data && chown node:node /app/data
USER node
# 8080: proxy listener; 8081: admin listener (/healthz, /readyz, /metrics).
EXPOSE 8080 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8081/healthz').then(r => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "dist/src/bin.js"]
CMD ["serve"]
