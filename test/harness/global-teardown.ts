import { cleanupAll } from './registry';

/** jest globalTeardown: nothing the harness started may outlive the test run. */
export default function globalTeardown(): void {
  const n = cleanupAll();
  if (n > 0) console.warn(`harness: killed ${n} server(s) left running by a test`);
}
