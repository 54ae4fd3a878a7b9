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
 * is applied, then applied in order. Flotilla keeps a machine's metadata as what its agent
 * reports overlaid with what the API set (SetMachineMetadata replaces that overlay): the new
 * overlay is the machine's current metadata with the operations applied. Only machines the
 * cluster knows as alive can be patched (404 otherwise): the overlay of a machine that is not
 * listed cannot be read, so patching it would silently drop its other keys.
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
  const next = new Map<string, Record<string, string>>();
  for (const p of parsed) {
    let md = next.get(p.machine);
    if (!md) {
      const current = machines.find((m) => m.id === p.machine);
      if (!current) {
        throw fleetError(404, ErrorCode.MachineNotFound, `machine ${clip(p.machine)} not found`, {
          machine: p.machine,
        });
      }
      md = { ...current.metadata };
      next.set(p.machine, md);
    }
    if (p.op === 'remove') delete md[p.key];
    else md[p.key] = p.value;
  }
  for (const [machineId, metadata] of next) await api.setMachineMetadata({ machineId, metadata });
  return { status: 204 };
}
