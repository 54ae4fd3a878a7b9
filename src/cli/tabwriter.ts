/**
 * A port of Go's text/tabwriter, which fleetctl used for every table
 * (`tabwriter.Writer.Init(os.Stdout, 0, 8, 1, '\t', 0)`). Scripts written against fleetctl
 * parse its output, so the alignment must match byte for byte.
 *
 * The algorithm is Go's "elastic tabstops": text is split into cells terminated by '\t' (or
 * the soft '\v'); the last cell of a line is not part of any column. Adjacent lines that have
 * a cell in column k form a column block whose width is the widest cell + padding (at least
 * minwidth). With padchar '\t' the width is rounded up to a multiple of tabwidth and the
 * padding is written as tabs, so a terminal with 8-column tabs shows aligned columns.
 *
 * Not ported: the Escape character and FilterHTML/StripEscape (Go works on bytes; 0xff
 * cannot appear in a JavaScript string of unit names). Widths count Unicode code points, as
 * Go's utf8.RuneCount does.
 */

export const TabFlags = {
  /** Right-align cell content (ignored when padchar is '\t', as in Go). */
  AlignRight: 4,
  /** Treat empty columns made only of soft ('\v') cells as width 0. */
  DiscardEmptyColumns: 8,
  /** Pad leading empty cells with tabs regardless of padchar. */
  TabIndent: 16,
  /** Print '|' between columns. */
  Debug: 32,
} as const;

export interface TabWriterOptions {
  minwidth?: number;
  tabwidth?: number;
  padding?: number;
  padchar?: string;
  flags?: number;
}

/** fleetctl's settings: minwidth 0, tabwidth 8, padding 1, padchar '\t', flags 0. */
export const FLEETCTL_TABWRITER: Required<TabWriterOptions> = {
  minwidth: 0,
  tabwidth: 8,
  padding: 1,
  padchar: '\t',
  flags: 0,
};

interface Cell {
  text: string;
  /** Display width in code points. */
  width: number;
  /** True when terminated by a hard tab '\t' (never discarded). */
  htab: boolean;
}

function runeCount(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

export class TabWriter {
  private readonly minwidth: number;
  private readonly tabwidth: number;
  private readonly padding: number;
  private readonly padchar: string;
  private readonly flags: number;
  private lines: Cell[][] = [[]];
  private cell = '';
  private widths: number[] = [];

  constructor(
    private readonly sink: (chunk: string) => void,
    opts: TabWriterOptions = FLEETCTL_TABWRITER,
  ) {
    this.minwidth = opts.minwidth ?? 0;
    this.tabwidth = opts.tabwidth ?? 8;
    this.padding = opts.padding ?? 1;
    this.padchar = opts.padchar ?? '\t';
    let flags = opts.flags ?? 0;
    // As in Go: tab padding enforces left-alignment.
    if (this.padchar === '\t') flags &= ~TabFlags.AlignRight;
    this.flags = flags;
  }

  /** Buffers `text`; output is produced when a block of columns is complete or on flush(). */
  write(text: string): void {
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const ch = text[i];
      if (ch !== '\t' && ch !== '\v' && ch !== '\n' && ch !== '\f') continue;
      this.cell += text.slice(start, i);
      start = i + 1;
      const ncells = this.terminateCell(ch === '\t');
      if (ch === '\n' || ch === '\f') {
        this.lines.push([]);
        if (ch === '\f' || ncells === 1) {
          // A line with a single cell cannot influence the following lines (the last cell
          // of a line belongs to no column), and '\f' always ends a section: format now.
          this.flushInternal();
          if (ch === '\f' && this.flags & TabFlags.Debug) this.sink('---\n');
        }
      }
    }
    this.cell += text.slice(start);
  }

  /** Formats and writes everything buffered; the last line keeps no implicit newline. */
  flush(): void {
    this.flushInternal();
  }

  private terminateCell(htab: boolean): number {
    const line = this.lines[this.lines.length - 1];
    line.push({ text: this.cell, width: runeCount(this.cell), htab });
    this.cell = '';
    return line.length;
  }

  private flushInternal(): void {
    if (this.cell.length > 0) this.terminateCell(false);
    this.format(0, this.lines.length);
    this.lines = [[]];
    this.widths = [];
    this.cell = '';
  }

  private writePadding(textw: number, cellw: number, useTabs: boolean): void {
    if (this.padchar === '\t' || useTabs) {
      if (this.tabwidth === 0) return; // tabs have no width: no padding possible
      const w = Math.ceil(cellw / this.tabwidth) * this.tabwidth;
      const n = w - textw;
      this.sink('\t'.repeat(Math.ceil(n / this.tabwidth)));
      return;
    }
    this.sink(this.padchar.repeat(cellw - textw));
  }

  private writeLines(line0: number, line1: number): void {
    for (let i = line0; i < line1; i++) {
      const line = this.lines[i];
      let useTabs = (this.flags & TabFlags.TabIndent) !== 0;
      for (let j = 0; j < line.length; j++) {
        const c = line[j];
        if (j > 0 && this.flags & TabFlags.Debug) this.sink('|');
        if (c.text.length === 0) {
          if (j < this.widths.length) this.writePadding(c.width, this.widths[j], useTabs);
        } else {
          useTabs = false;
          if ((this.flags & TabFlags.AlignRight) === 0) {
            this.sink(c.text);
            if (j < this.widths.length) this.writePadding(c.width, this.widths[j], false);
          } else {
            if (j < this.widths.length) this.writePadding(c.width, this.widths[j], false);
            this.sink(c.text);
          }
        }
      }
      // The last buffered line has no newline yet; every other line gets one.
      if (i + 1 !== this.lines.length) this.sink('\n');
    }
  }

  private format(line0: number, line1: number): void {
    const column = this.widths.length;
    for (let cur = line0; cur < line1; cur++) {
      if (column >= this.lines[cur].length - 1) continue;
      // This line has a cell in `column`: print the lines before the block, then size it.
      this.writeLines(line0, cur);
      line0 = cur;
      let width = this.minwidth;
      let discardable = true;
      for (; cur < line1; cur++) {
        const line = this.lines[cur];
        if (column >= line.length - 1) break;
        const c = line[column];
        const w = c.width + this.padding;
        if (w > width) width = w;
        if (c.width > 0 || c.htab) discardable = false;
      }
      if (discardable && this.flags & TabFlags.DiscardEmptyColumns) width = 0;
      this.widths.push(width);
      this.format(line0, cur);
      this.widths.pop();
      line0 = cur;
    }
    this.writeLines(line0, line1);
  }
}

/** Runs `text` through a TabWriter with `opts` (fleetctl's by default) and returns the output. */
export function tabwrite(text: string, opts: TabWriterOptions = FLEETCTL_TABWRITER): string {
  const out: string[] = [];
  const w = new TabWriter((s) => out.push(s), opts);
  w.write(text);
  w.flush();
  return out.join('');
}

/** Formats rows of cells the way fleetctl printed tables: one line per row, tab-aligned. */
export function formatTable(rows: readonly (readonly string[])[]): string {
  if (rows.length === 0) return '';
  return tabwrite(rows.map((r) => r.join('\t') + '\n').join(''));
}
