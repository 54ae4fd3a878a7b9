import type { AnyStateMachine } from 'xstate';
import { agentMachine } from '../machines/agent';
import { agentUnitMachine } from '../machines/agent-unit';
import { engineMachineMachine } from '../machines/engine-machine';
import { engineUnitMachine } from '../machines/engine-unit';
import type { VizGraph } from './graph';
import { machineGraph } from './graph';

/** The machines the visualizer draws, by the name `flotilla viz` and the UI use. */
export const VIZ_MACHINES: readonly { name: string; title: string; machine: AnyStateMachine }[] = [
  { name: 'engine-unit', title: "A unit's lifecycle (leader)", machine: engineUnitMachine },
  { name: 'engine-machine', title: "A machine's presence (leader)", machine: engineMachineMachine },
  { name: 'agent', title: 'The agent', machine: agentMachine },
  { name: 'agent-unit', title: 'A unit on its machine (agent)', machine: agentUnitMachine },
];

export const VIZ_MACHINE_NAMES = VIZ_MACHINES.map((m) => m.name);

let graphs: Map<string, VizGraph> | undefined;

/** Every machine's graph (computed once: definitions do not change while running). */
export function vizGraphs(): Map<string, VizGraph> {
  graphs ??= new Map(VIZ_MACHINES.map((m) => [m.name, machineGraph(m.machine)]));
  return graphs;
}
