/**
 * A progress line on stderr while blocking on many units (`waiting: 1234/3000 launched`).
 * On a terminal it is redrawn in place; otherwise (logs, CI) a plain line is written at most
 * every `intervalMs` and only when the count changed. Shown only on a terminal or when
 * waiting on more than {@link PROGRESS_MIN_UNITS} units, so short commands stay quiet.
 */

export const PROGRESS_MIN_UNITS = 20;

export interface ProgressOptions {
  write: (s: string) => void;
  isTTY: boolean;
  total: number;
  /** The state being waited for (`launched`). */
  what: string;
  now?: () => number;
  intervalMs?: number;
}

export class Progress {
  private done = 0;
  private shown = false;
  private lastText = '';
  private lastAt = -Infinity;
  private readonly enabled: boolean;
  private readonly now: () => number;
  private readonly intervalMs: number;

  constructor(private readonly opts: ProgressOptions) {
    this.enabled = opts.total > 0 && (opts.isTTY || opts.total > PROGRESS_MIN_UNITS);
    this.now = opts.now ?? Date.now;
    this.intervalMs = opts.intervalMs ?? (opts.isTTY ? 100 : 2000);
  }

  text(): string {
    return `waiting: ${this.done}/${this.opts.total} ${this.opts.what}`;
  }

  /** Records `done` units reached and redraws if due. */
  update(done: number): void {
    this.done = done;
    if (!this.enabled) return;
    const text = this.text();
    const t = this.now();
    if (text === this.lastText || t - this.lastAt < this.intervalMs) return;
    this.lastText = text;
    this.lastAt = t;
    if (this.opts.isTTY) {
      this.opts.write(`\r\x1b[2K${text}`);
      this.shown = true;
    } else {
      this.opts.write(`${text}\n`);
    }
  }

  /** Removes the in-place line (before other output on the terminal, and at the end). */
  clear(): void {
    if (this.shown) {
      this.opts.write('\r\x1b[2K');
      this.shown = false;
      this.lastText = '';
      this.lastAt = -Infinity;
    }
  }
}
