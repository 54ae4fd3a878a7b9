import { cleanupAll } from '../harness/registry';
import { cleanupNetns } from '../harness/netns';

/** jest globalTeardown of the fault suite: no server, process or namespace outlives the run. */
export default function globalTeardown(): void {
  const n = cleanupAll();
  const ns = cleanupNetns();
  if (n + ns > 0)
    console.warn(`harness: removed ${n} server(s) and ${ns} namespace(s) left by a test`);
}
