# agentd server image: multi-stage, node:20-slim, runs as the unprivileged `node` user.
#   docker build -t agentd:latest .
#   docker run -p 8787:8787 -e REDIS_URL=… -e DATABASE_URL=… -e AGENTD_DISTRIBUTED__ENABLED=true agentd:latest

# --- build: native addons (better-sqlite3) compile here, TypeScript is compiled, dev deps pruned.
FROM node:20-slim AS build
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# Scripts are run explicitly below: `prepare` would compile before the sources are copied.
RUN npm ci --ignore-scripts && npm rebuild better-sqlite3
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --ignore-scripts

# --- runtime: only what `agentd serve` needs.
FROM node:20-slim
ENV NODE_ENV=production \
    AGENTD_HOST=0.0.0.0 \
    AGENTD_PORT=8787 \
    AGENTD_DB=/data/agentd.db
WORKDIR /app
COPY --from=build --chown=root:root /app/package.json ./package.json
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
# The SQLite file (single-node use) lives in /data; with DATABASE_URL set nothing is written locally.
RUN mkdir -p /data /etc/agentd && chown node:node /data
USER node
EXPOSE 8787
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
  CMD node -e "fetch('http://127.0.0.1:8787/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# SIGTERM drains running tasks (server.drain_timeout_ms) and exits 0.
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["serve"]
