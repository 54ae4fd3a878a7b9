import fs from 'node:fs';
import path from 'node:path';

/** The version in package.json (found upward from this file: works from src/ and dist/src/). */
export function cliVersion(): string {
  let dir = __dirname;
  for (;;) {
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      try {
        const pkg = JSON.parse(fs.readFileSync(file, 'utf8')) as {
          name?: string;
          version?: string;
        };
        if (pkg.name === 'flotilla' && pkg.version) return pkg.version;
      } catch {
        // not ours; keep looking
      }
    }
    const parent = path.dirname(dir);
    if (parent === dir) return 'unknown';
    dir = parent;
  }
}
