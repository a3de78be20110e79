/**
 * `ha-signer serve`: loads keys and configuration (refusing to start on anything malformed), listens, connects the
 * protection core (retrying while the database or its migrations are not there yet, refusing to start on a rollup
 * binding mismatch), and shuts down gracefully on SIGTERM: stop accepting, finish in-flight duties, close the pool.
 */
import {
  ConfigError,
  RollupBindingError,
  createHASigner,
  createPool,
  resolveSignerConfig,
  type ValidatorHASigner,
} from '../protection/index.js';
import { createLogger, errorSummary } from '../log.js';
import { authenticatorFromConfig } from './auth.js';
import { LocalKeyBackend, type SigningBackend, Web3SignerBackend } from './backends.js';
import { SERVE_USAGE, applyServeFlags, serveConfigFromEnv } from './config.js';
import { loadKeysFromDir } from './keys.js';
import { setUpJsonRpc } from './jsonrpc-setup.js';
import { SignerMetrics } from './metrics.js';
import { ReadinessMonitor } from './readiness.js';
import { buildSignerServer } from './server.js';
import { safetyDeps, safetyFromEnv } from './safety.js';
import { listenMetricsServer } from './metrics-server.js';
import { TlsEndpoint } from './tls.js';

const READINESS_INTERVAL_MS = 2_000;
const STARTUP_RETRY_MAX_MS = 5_000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function serveCommand(args: string[]): Promise<void> {
  const { help, env } = applyServeFlags(args, process.env);
  if (help) {
    console.log(SERVE_USAGE);
    return;
  }
  const config = serveConfigFromEnv(env);
  const resolved = resolveSignerConfig(config.protection);
  const safety = safetyFromEnv(env, config.fsRoot);

  // Everything that can be wrong with files is checked before the port opens.
  const logger = createLogger({ component: 'signer', level: config.logLevel });
  const authenticator = await authenticatorFromConfig(config.auth, config.fsRoot, logger);
  const jsonRpc = await setUpJsonRpc(config, resolved.rollupAddress, logger);
  const tls = config.tls ? await TlsEndpoint.open(config.tls) : undefined;
  let backend: SigningBackend;
  if (config.web3SignerUrl) {
    try {
      backend = await Web3SignerBackend.connect(config.web3SignerUrl, resolved.signingOperationTimeoutMs);
    } catch (error) {
      throw new ConfigError(`HA_SIGNER_WEB3SIGNER_URL (${config.web3SignerUrl})`, `remote signer not usable: ${(error as Error).message}`);
    }
  } else {
    backend = new LocalKeyBackend(await loadKeysFromDir(config.keysDir, config.keystorePassword));
  }

  const metrics = new SignerMetrics();
  metrics.keysLoaded.set(backend.addresses().length);
  metrics.synchronousReplicationRequired.set(safety.requireSynchronousReplication ? 1 : 0);
  let signer: ValidatorHASigner | undefined;
  let stopping = false;
  const readiness = new ReadinessMonitor((ready) => {
    metrics.ready.set(ready ? 1 : 0);
    app.log.info({ ready, reasons: readiness.lastReport.reasons }, ready ? 'ready' : 'not ready');
  });
  metrics.setReadinessSource(readiness);
  const serverDeps = {
    ...(tls ? { serverFactory: tls.serverFactory } : {}),
    backend,
    authenticator,
    metrics,
    readiness,
    signer: () => signer,
    rollupAddress: resolved.rollupAddress,
    nodeId: resolved.nodeId,
    jsonRpcEnabled: config.jsonRpcEnabled,
    ...(jsonRpc ? { jsonRpc: jsonRpc.deps } : {}),
    logLevel: config.logLevel,
    logger,
  };
  const app = buildSignerServer(serverDeps);
  app.log.info(
    {
      nodeId: resolved.nodeId,
      rollupAddress: resolved.rollupAddress,
      backend: backend.kind,
      validators: backend.addresses(),
      auth: config.auth.disabled
        ? 'disabled'
        : { tokens: config.auth.tokensFile !== undefined, serviceAccounts: config.auth.serviceAccountsFile !== undefined },
      jsonRpc: { bearer: config.jsonRpcEnabled, aztecNodes: jsonRpc?.deps.clients?.current?.length ?? 0 },
      leaseMs: resolved.leaseMs,
    },
    'starting signer',
  );
  if (config.auth.disabled) app.log.warn('authentication is DISABLED (HA_SIGNER_AUTH_DISABLED=true): any caller can sign with every key');
  if (jsonRpc?.deps.clients?.current?.some((c) => c.allowUnclaimedDigests)) {
    app.log.warn(
      'a JSON-RPC client may sign digests no duty claim covers (allowUnclaimedDigests); see docs/aztec-nodes.md for what that client is then protected from',
    );
  }
  await app.listen({ host: config.listenHost, port: config.port });
  tls?.watch(app.log, metrics.registry);
  const metricsServer =
    config.metricsPort === undefined ? undefined : await listenMetricsServer(serverDeps, config.listenHost, config.metricsPort);

  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));
  const shutdown = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    app.log.info({ signal, inFlight: signer?.inFlightCount ?? 0 }, 'shutting down: no new requests, finishing in-flight duties');
    readiness.markShuttingDown();
    // In-flight requests end within the signing timeouts; past that, connections are cut so the pod can exit.
    const forceAfterMs = resolved.signingTimeoutMs + resolved.signingOperationTimeoutMs + 5_000;
    const force = setTimeout(() => {
      app.log.warn({ forceAfterMs }, 'closing connections that are still open');
      app.server.closeAllConnections();
    }, forceAfterMs);
    force.unref();
    try {
      await app.close(); // stops accepting; waits for in-flight requests to be answered
      await signer?.stop(); // waits for duties still in flight, stops cleanup, closes the pool
      await jsonRpc?.close();
      tls?.stop();
      await metricsServer?.close();
      app.log.info('stopped');
    } catch (error) {
      app.log.error({ err: error }, 'error during shutdown');
      process.exitCode = 1;
    }
    resolveDone();
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));

  // Connect the protection core. The database may not be up or migrated yet (the operator's migrate Job may still
  // be running): stay live but not ready, and retry. A database bound to another rollup is a hard stop.
  for (let attempt = 0; !stopping; attempt++) {
    const pool = createPool(config.protection, app.log);
    try {
      const created = await createHASigner(config.protection, {
        pool,
        logger: app.log,
        observer: metrics.observer(),
        ...safetyDeps(safety),
      });
      try {
        await created.signer.start();
      } catch (error) {
        await created.db.close().catch(() => {});
        throw error;
      }
      metrics.setPoolSource(created.db, pool.options.max);
      metrics.setReplicationSource(created.signer.gates.replication);
      readiness.attach({
        db: created.db,
        rollupAddress: resolved.rollupAddress,
        keyCount: () => backend.addresses().length,
        gates: created.signer.gates,
        requireSynchronousReplication: safety.requireSynchronousReplication,
      });
      signer = created.signer;
      if (stopping) await created.signer.stop();
      break;
    } catch (error) {
      await pool.end().catch(() => {});
      if (error instanceof RollupBindingError || error instanceof ConfigError) {
        app.log.fatal({ err: error }, 'refusing to start');
        stopping = true;
        await app.close();
        throw error;
      }
      const reason = `protection database not usable yet: ${(error as Error).message}`;
      readiness.setStartupProblem(reason);
      app.log.warn({ attempt, err: errorSummary(error) }, 'protection database not usable yet; retrying');
      await sleep(Math.min(STARTUP_RETRY_MAX_MS, 250 * 2 ** Math.min(attempt, 5)));
    }
  }
  if (signer) {
    const report = await readiness.check();
    app.log.info({ ready: report.ready, reasons: report.reasons }, 'protection core started');
  }
  const readinessTimer = setInterval(() => void readiness.check().catch(() => {}), READINESS_INTERVAL_MS);
  readinessTimer.unref();

  await done;
  clearInterval(readinessTimer);
  // Anything still holding the event loop (a stuck socket) must not keep a terminated pod alive.
  setTimeout(() => process.exit(process.exitCode ?? 0), 2_000).unref();
}
