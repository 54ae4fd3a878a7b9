import type { ClusterApi } from '../api/types';
import { clip, ErrorCode } from '../errors';
import type { Machine } from '../gen/flotilla/v1/flotilla';
import { fleetError } from './errors';
import { fleetPageOf, sliceSource } from './pagination';
import type { MetadataOp } from './request';
import { fleetMachine, fleetPage } from './schema';
import type { Reply } from './units';

/** fleet's metadataPathRegex: `/<machine id>/metadata/<key>`. */
const METADATA_PATH = /^\/([^/]+)\/metadata\/([A-Za-z0-9_.-]+)$/;

export async function listMachines(api: ClusterApi, limit: number, token: string): Promise<Reply> {
  const { machines } = await api.listMachines({});
  const sorted = [...machines].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const { items, next } = await fleetPageOf<Machine>(
    sliceSource(sorted, (m) => m.id),
    limit,
    token,
  );
  return { status: 200, body: fleetPage('machines', items.map(fleetMachine), next, false) };
}

function badOp(i: number, message: string): Error {
  return fleetError(400, ErrorCode.InvalidArgument, `operation ${i}: ${message}`, {
    field: `${i}`,
  });
}

/**
 * PATCH /machines: JSON Patch add/replace/remove of metadata keys, validated whole before any
 * is applied, then applied in order, as fleet v1.0 did. Flotilla keeps a machine's metadata as
 * what its agent reports overlaid key by key with what the API set; each machine's operations
 * go to the leader as one per-key change of that overlay (SetMachineMetadata with `patch`), so
 * keys the request does not name — the agent's own among them — are left as they are.
 *
 * `remove` of a key the agent reports records the removal (fleet recorded it as an empty
 * dynamic value): the key is hidden, durably, until it is added again through the API.
 * Removing a key set only through the API forgets it; removing a key nobody set changes
 * nothing (204), as in fleet. Only machines the cluster knows as alive can be patched (404
 * otherwise, before anything is applied).
 */
export async function patchMachines(api: ClusterApi, ops: MetadataOp[]): Promise<Reply> {
  const parsed = ops.map((op, i) => {
    if (op.op !== 'add' && op.op !== 'remove' && op.op !== 'replace') {
      throw badOp(i, `invalid op "${clip(op.op)}": expect add, remove, or replace`);
    }
    const m = METADATA_PATH.exec(op.path);
    if (!m) {
      throw badOp(
        i,
        `machine metadata path "${clip(op.path)}" invalid: expect /<machine id>/metadata/<key>`,
      );
    }
    if (op.op !== 'remove' && op.value === '') {
      throw badOp(i, `invalid value for "${clip(op.path)}": add and replace require a value`);
    }
    return { op: op.op, machine: m[1], key: m[2], value: op.value };
  });
  if (parsed.length === 0) return { status: 204 };
  const { machines } = await api.listMachines({});
  // Per machine, each key's last operation: its value, or '' for a removal.
  const changes = new Map<string, Record<string, string>>();
  for (const p of parsed) {
    let c = changes.get(p.machine);
    if (!c) {
      if (!machines.some((m) => m.id === p.machine)) {
        throw fleetError(404, ErrorCode.MachineNotFound, `machine ${clip(p.machine)} not found`, {
          machine: p.machine,
        });
      }
      changes.set(p.machine, (c = {}));
    }
    c[p.key] = p.op === 'remove' ? '' : p.value;
  }
  for (const [machineId, metadata] of changes)
    await api.setMachineMetadata({ machineId, metadata, patch: true });
  return { status: 204 };
}
