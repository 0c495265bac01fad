/** One doctor run's context: the inventory, the process runner, where we run, the clock, the shared probes. */
import { makeProbes, type ProbeEnvironment } from './probes.ts';
import type { DoctorContext } from './types.ts';

export function createDoctorContext(env: ProbeEnvironment, now: number): DoctorContext {
  return { ...env, now, probes: makeProbes(env) };
}
