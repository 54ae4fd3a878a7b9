#!/usr/bin/env node
/**
 * flotillad: the Flotilla daemon. One per machine: an agent (unless disable_agent) and a leader
 * candidate (unless disable_engine). `--dev` runs a one-machine cluster with no external services.
 */
import { quietIpServerNameWarning } from '../api/tls';
import { isFlotillaError } from '../errors';
import { createLogger } from '../log';
import { loadConfig, type LoadedConfig } from './config';
import { exampleConfig, usage } from './config-doc';
import { cliVersion } from '../version';
import { startDaemon } from './daemon';
import { SystemdNotifier, listenFds } from './sd';
import { secretWarnings } from './secrets';

/** How long a shutdown may take before the daemon exits anyway (systemd's TimeoutStopSec is 30 s). */
const SHUTDOWN_DEADLINE_MS = 20_000;

async function main(): Promise<void> {
  quietIpServerNameWarning();
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(usage());
    return;
  }
  if (argv.includes('--version')) {
    process.stdout.write(`flotillad ${cliVersion()}\n`);
    return;
  }
  if (argv.includes('--example-config')) {
    process.stdout.write(exampleConfig());
    return;
  }
  let loaded: LoadedConfig;
  try {
    loaded = loadConfig(argv);
  } catch (err) {
    process.stderr.write(`flotillad: ${(err as Error).message}\n`);
    process.exit(2);
  }
  const cfg = loaded.config;
  const log = createLogger({ level: cfg.log_level, format: cfg.log_format });
  for (const warning of secretWarnings(cfg, argv, loaded.file)) log.warn(warning);
  for (const notice of loaded.notices) log.info(notice);
  const notifier = new SystemdNotifier(log);
  const daemon = await startDaemon(cfg, log, { listenFds: listenFds() }).catch((err: unknown) => {
    process.stderr.write(`flotillad: ${(err as Error).message}\n`);
    process.exit(isFlotillaError(err) && err.code === 'CONFIG_INVALID' ? 2 : 1);
  });
  if (cfg.dev) {
    const tcp = daemon.grpcAddresses.find((a) => !a.startsWith('unix:'));
    process.stdout.write(
      `flotillad dev mode: machine ${daemon.machineId}, state in ${cfg.data_dir}\n` +
        `endpoint: ${tcp ?? daemon.grpcAddresses[0]}\n` +
        `try:  export FLOTILLA_ENDPOINT=${tcp ?? daemon.grpcAddresses[0]}\n` +
        `      flotilla start examples/hello.service && flotilla list-units\n`,
    );
  }
  // The API serves and the local agent is registered on the bus: tell systemd (Type=notify).
  await notifier.ready(
    `serving ${daemon.grpcAddresses.join(' ')}${cfg.disable_agent ? '' : '; agent registered'}`,
  );
  notifier.startWatchdog();
  let stopping = false;
  const shutdown = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down; units keep running', { signal: sig });
    void notifier.stopping();
    // A shutdown step that hangs (a server that never answers, a stream that never ends) must
    // not keep the daemon half-stopped until systemd's TimeoutStopSec kills it unexplained:
    // say what it waited for and exit. Units are separate processes and keep running.
    setTimeout(() => {
      log.error('shutdown did not finish in time; exiting', {
        waited_for: daemon.stopStep(),
        seconds: SHUTDOWN_DEADLINE_MS / 1000,
      });
      process.exit(1);
    }, SHUTDOWN_DEADLINE_MS).unref();
    daemon
      .stop()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        log.error('shutdown failed', { error: (err as Error).message });
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => {
    try {
      const next = loadConfig(argv).config;
      daemon.reload(next);
      log.info('configuration reloaded');
      void notifier.notify('STATUS=configuration reloaded');
    } catch (err) {
      log.error('configuration reload refused; keeping the old one', {
        error: (err as Error).message,
      });
    }
  });
}

void main();
