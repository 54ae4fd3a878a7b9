/**
 * The etcd key layout of one Flotilla cluster (documented in docs/store.md):
 *
 *   /flotilla/<cluster>/leader                         LeaderInfo JSON, attached to the leader's lease
 *   /flotilla/<cluster>/epoch                          last epoch handed out (decimal)
 *   /flotilla/<cluster>/log/<first:16>                 a batch (or its part 0)
 *   /flotilla/<cluster>/log/<first:16>.<part:4>        further parts of a batch too big for one value
 *   /flotilla/<cluster>/snapshot/<set>/chunk/<n:6>     snapshot bytes; set = <index:16>-<epoch:10>-<seq:4>
 *   /flotilla/<cluster>/snapshot/manifest              the current snapshot (written last)
 *
 * Zero-padded numbers make key order equal index order, so a range read returns the log in
 * order, and the parts of a batch sort right after its head and before the next batch
 * ('.' < '0'). Chunk set names sort by snapshot index, so "every set before the current one" is
 * one key range; "manifest" sorts after every set name (letters after digits).
 */

export function pad(n: number, width: number): string {
  const s = String(n);
  if (s.length > width) throw new RangeError(`${n} does not fit in ${width} digits`);
  return s.padStart(width, '0');
}

/** The first key after every key starting with `prefix`. */
export function prefixEnd(prefix: Buffer): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}

export interface LogKeyParts {
  batch: number;
  part: number;
}

export class EtcdKeys {
  readonly root: string;
  readonly leader: Buffer;
  readonly epoch: Buffer;
  readonly logPrefix: Buffer;
  readonly logEnd: Buffer;
  readonly snapshotPrefix: Buffer;
  readonly manifest: Buffer;

  constructor(readonly cluster: string) {
    this.root = `/flotilla/${cluster}/`;
    this.leader = Buffer.from(`${this.root}leader`);
    this.epoch = Buffer.from(`${this.root}epoch`);
    this.logPrefix = Buffer.from(`${this.root}log/`);
    this.logEnd = prefixEnd(this.logPrefix);
    this.snapshotPrefix = Buffer.from(`${this.root}snapshot/`);
    this.manifest = Buffer.from(`${this.root}snapshot/manifest`);
  }

  /** Key of part `part` of the batch whose first event has index `batch`. */
  log(batch: number, part = 0): Buffer {
    const head = `${this.root}log/${pad(batch, 16)}`;
    return Buffer.from(part === 0 ? head : `${head}.${pad(part, 4)}`);
  }

  parseLog(key: Buffer): LogKeyParts | undefined {
    const m = /^(\d{16})(?:\.(\d{4}))?$/.exec(key.subarray(this.logPrefix.length).toString());
    return m ? { batch: Number(m[1]), part: m[2] === undefined ? 0 : Number(m[2]) } : undefined;
  }

  chunkSet(index: number, epoch: number, seq: number): string {
    return `${pad(index, 16)}-${pad(epoch, 10)}-${pad(seq, 4)}`;
  }

  /** First key of a chunk set: every older set sorts before it. */
  chunkSetStart(set: string): Buffer {
    return Buffer.from(`${this.root}snapshot/${set}/`);
  }

  chunk(set: string, n: number): Buffer {
    return Buffer.from(`${this.root}snapshot/${set}/chunk/${pad(n, 6)}`);
  }
}
