#!/usr/bin/env node
/**
 * flotillad: the Flotilla daemon. One per machine: an agent (unless disable_agent) and a leader
 * candidate (unless disable_engine). `--dev` runs a one-machine cluster with no external services.
 */
import { isFlotillaError } from '../errors';
import { createLogger } from '../log';
import { CONFIG_KEYS, loadConfig, type LoadedConfig } from './config';
import { startDaemon } from './daemon';
import { secretWarnings } from './secrets';

const USAGE = `usage: flotillad [--config FILE] [--dev] [--<key> VALUE]…

Configuration (fleetd's /etc/fleet/fleet.conf < FLEET_<KEY> < file < environment FLOTILLA_<KEY>
< flags --<key-with-dashes>):
${Object.entries(CONFIG_KEYS)
  .map(([k, s]) => `  --${k.replace(/_/g, '-').padEnd(20)} ${s.help}`)
  .join('\n')}
`;

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
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
  const log = createLogger({ level: cfg.log_level });
  for (const warning of secretWarnings(cfg, argv, loaded.file)) log.warn(warning);
  for (const notice of loaded.notices) log.info(notice);
  const daemon = await startDaemon(cfg, log).catch((err: unknown) => {
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
  let stopping = false;
  const shutdown = (sig: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('shutting down; units keep running', { signal: sig });
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
    } catch (err) {
      log.error('configuration reload refused; keeping the old one', {
        error: (err as Error).message,
      });
    }
  });
}

void main();
