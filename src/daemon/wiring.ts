import { startAgent, type AgentHandle } from '../actors/agent';
import type { Bus } from '../bus/types';
import type { Driver } from '../drivers/driver';
import { ProcessDriver } from '../drivers/process';
import { SimulatedDriver } from '../drivers/simulated';
import { SystemdDriver } from '../drivers/systemd';
import type { Logger } from '../log';
import type { DaemonConfig } from './config';

/** The driver named by the configuration. Dev mode falls back to child processes without systemd. */
export async function makeDriver(cfg: DaemonConfig, log: Logger): Promise<Driver> {
  if (cfg.driver === 'simulated') return new SimulatedDriver({});
  if (cfg.driver === 'process') return new ProcessDriver({ unitsDirectory: cfg.units_directory });
  const busAddress = cfg.systemd_user ? process.env.DBUS_SESSION_BUS_ADDRESS : undefined;
  const driver = new SystemdDriver({
    unitsDirectory: cfg.units_directory,
    userBus: cfg.systemd_user,
    busAddress,
  });
  if (!cfg.dev) return driver;
  try {
    await driver.open();
    await driver.close();
    return new SystemdDriver({
      unitsDirectory: cfg.units_directory,
      userBus: cfg.systemd_user,
      busAddress,
    });
  } catch (err) {
    log.warn('systemd is not reachable; dev mode runs units as child processes', {
      error: (err as Error).message,
    });
    return new ProcessDriver({ unitsDirectory: cfg.units_directory });
  }
}

export interface LocalAgent {
  readonly handle: AgentHandle;
  readonly stats: Record<string, number>;
  setMetadata(metadata: Record<string, string>): void;
  /** Drains the agent; with `unload` (fleet's old shutdown behaviour) unloads every unit first. */
  stop(unload: boolean): Promise<void>;
}

export async function startLocalAgent(o: {
  cfg: DaemonConfig;
  machineId: string;
  ip: string;
  bus: Bus;
  driver: Driver;
  log: Logger;
}): Promise<LocalAgent> {
  const handle = await startAgent({
    cluster: o.cfg.cluster,
    machineId: o.machineId,
    ip: o.ip,
    metadata: { ...o.cfg.metadata },
    bus: o.bus,
    driver: o.driver,
    agentTtlMs: o.cfg.agent_ttl,
    legacySubjects: o.cfg.nats_legacy_subjects,
    // Only the leader of the current epoch commands this agent (docs/security.md).
    leaderCheck: !o.cfg.nats_legacy_subjects,
    log: o.log.child({ component: 'agent' }),
  });
  return {
    handle,
    get stats() {
      return handle.stats as unknown as Record<string, number>;
    },
    setMetadata(md) {
      handle.setMetadata(md);
    },
    async stop(unload) {
      if (unload) {
        const ops = handle.units().map((u) => ({ kind: 'unload' as const, unit: u.unit }));
        if (ops.length > 0) await o.driver.apply(ops);
      }
      await handle.drain();
      await o.bus.close();
    },
  };
}
