/**
 * How the leader judges liveness (docs/reliability.md, "How the leader judges liveness").
 *
 * Each machine's actor (src/machines/engine-machine.ts) counts its agent's TTL and says when it
 * has passed (`expiring`). This judge decides whether those machines are declared lost now:
 *
 * - never while the leader cannot hear: its own bus connection is down, or its store is being
 *   recovered (the engine does not ask then; after it hears again every machine gets a full TTL
 *   plus the grace, by GRACE events);
 * - the mass-loss guard: when the machines at risk (expiring, late, or declared lost within the
 *   last TTL) are more than `threshold` of the machines that were alive, the leader suspects
 *   itself or the network rather than the machines: it holds, declares nothing, and says so once.
 *   It resumes by itself when enough machines are heard again, or when the operator asks. One
 *   machine at risk is never held (a single loss, a one-machine cluster).
 *
 * Pure: time comes in as arguments.
 */

/** The default share of machines that may be lost within one TTL before the leader holds. */
export const DEFAULT_MASS_LOSS_THRESHOLD = 1 / 3;

/** A machine actor's state value, as the judge reads it. */
export type MachinePhase = 'alive' | 'suspect' | 'expiring' | 'lost' | 'rejoining' | string;

export interface Hold {
  /** The machines whose TTL passed, not declared lost. */
  machines: string[];
  /** Machines at risk (expiring, late, or lost within the last TTL) and the machines counted. */
  atRisk: number;
  population: number;
}

export interface Verdict {
  /** Machines to declare lost now. */
  declare: string[];
  /** Set when the guard starts holding (once per hold). */
  held?: Hold;
  /** Set when a hold ends: by itself (enough machines heard again) or by the operator. */
  resumed?: 'machines-back' | 'operator';
}

export class LivenessJudge {
  private recent: { machine: string; at: number }[] = [];
  private hold: Hold | undefined;
  private resumeAsked = false;

  constructor(
    private readonly opts: {
      ttlMs: number;
      /** 0 < threshold ≤ 1; 1 turns the guard off. */
      threshold: number;
    },
  ) {}

  /** The current hold, if rescheduling is held. */
  get held(): Hold | undefined {
    return this.hold;
  }

  /** The operator's resume: the machines held are declared lost at the next judgement. */
  resume(): boolean {
    if (!this.hold) return false;
    this.resumeAsked = true;
    return true;
  }

  /**
   * Judges the machines' phases at `now`. `pending`: machines whose MachineLost is being
   * committed (not declared twice).
   */
  judge(
    now: number,
    phases: ReadonlyMap<string, MachinePhase>,
    pending: ReadonlySet<string>,
  ): Verdict {
    this.recent = this.recent.filter((r) => now - r.at < this.opts.ttlMs);
    const recent = new Set(this.recent.map((r) => r.machine));
    const candidates = [...phases]
      .filter(([id, p]) => p === 'expiring' && !pending.has(id))
      .map(([id]) => id)
      .sort();
    if (candidates.length === 0 && !this.hold) return { declare: [] };
    let population = recent.size;
    let atRisk = recent.size;
    for (const [id, p] of phases) {
      if (recent.has(id) || p === 'lost') continue;
      population++;
      if (p === 'expiring' || p === 'suspect') atRisk++;
    }
    if (atRisk > Math.max(1, this.opts.threshold * population) && !this.resumeAsked) {
      if (this.hold) {
        this.hold = { machines: candidates, atRisk, population };
        return { declare: [] };
      }
      this.hold = { machines: candidates, atRisk, population };
      return { declare: [], held: this.hold };
    }
    const verdict: Verdict = { declare: candidates };
    if (this.hold) verdict.resumed = this.resumeAsked ? 'operator' : 'machines-back';
    this.hold = undefined;
    this.resumeAsked = false;
    for (const machine of candidates) this.recent.push({ machine, at: now });
    return verdict;
  }
}
