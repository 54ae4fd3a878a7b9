/**
 * The systemd driver (D-Bus to org.freedesktop.systemd1). See docs/systemd-driver.md.
 * Implementation modules live in ./systemd/; this file is the public entry.
 */
export { SystemdDriver } from './systemd/driver';
export type { SystemdDriverOptions, SystemdDriverStats } from './systemd/driver';
export { orderOps } from './systemd/batch';
export { unitObjectPath, sha1 } from './systemd/unitfile';
