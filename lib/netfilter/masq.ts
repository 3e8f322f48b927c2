/**
 * The ipMasq steps main plugins share (bridge, ptp): the rules' owner and addresses for one
 * attachment, and their setup during an ADD with the undo that a rollback runs.
 */
import type { CmdArgs } from '../skel/dispatch';
import type { IPConfig } from '../types/result';
import type { Rollback } from '../rollback';
import type { BackendName, MasqSpec } from './backend';
import { selectBackend } from './select';

export function masqSpec(network: string, args: Pick<CmdArgs, 'containerID' | 'ifName'>, ips: IPConfig[]): MasqSpec {
  return { network, containerID: args.containerID, ifName: args.ifName, addresses: ips.map((i) => i.address) };
}

/** Installs the rules on the chosen backend, then pushes their teardown onto `undo`. */
export async function setupMasqWithUndo(pref: BackendName | undefined, spec: MasqSpec, undo: Rollback): Promise<void> {
  const backend = selectBackend(pref);
  await backend.setupMasq(spec);
  undo.push('remove masquerade rules', () => backend.teardownMasq(spec));
}
