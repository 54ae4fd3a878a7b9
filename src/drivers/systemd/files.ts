import fs from 'node:fs';
import path from 'node:path';
import { isValidUnitName } from '../../unit';

/**
 * The directory the driver writes unit files into (fleet: /run/fleet/units). Its files ARE the
 * set of units the driver manages: nothing else is remembered across agent restarts.
 *
 * Writes are atomic (a dot-prefixed temp file renamed over the target), so a crash never leaves
 * a half-written unit file that a later daemon reload would pick up.
 */
export class UnitsDirectory {
  constructor(readonly dir: string) {}

  ensure(): void {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o755 });
  }

  pathOf(unit: string): string {
    return path.join(this.dir, unit);
  }

  /** Unit names of every file in the directory, sorted; other files are ignored. */
  names(): string[] {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(this.dir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    return entries
      .filter((e) => e.isFile() && isValidUnitName(e.name))
      .map((e) => e.name)
      .sort();
  }

  /** The file's contents, or undefined when there is none. */
  read(unit: string): string | undefined {
    try {
      return fs.readFileSync(this.pathOf(unit), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  write(unit: string, contents: string): void {
    const tmp = path.join(this.dir, `.${unit}.${process.pid}.tmp`);
    fs.writeFileSync(tmp, contents, { mode: 0o644 });
    fs.renameSync(tmp, this.pathOf(unit));
  }

  /** Removes the file; true if there was one. */
  remove(unit: string): boolean {
    try {
      fs.unlinkSync(this.pathOf(unit));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }
}
