/**
 * The ipMasq steps main plugins share (bridge, ptp): the rules' owner and addresses for one
 * attachment, and their setup during an ADD with the undo that a rollback runs.
 */
import type { CmdArgs } from '../skel/dispatch';
import type { IPConfig } from '../types/result';
import type { Rollback } from '../rollback';
import type { BackendName, MasqSpec } from './driver';
import { selectDriver } from './select';

export function masqSpec(network: string, args: Pick<CmdArgs, 'containerID' | 'ifName'>, ips: IPConfig[]): MasqSpec {
  return { network, containerID: args.containerID, ifName: args.ifName, addresses: ips.map((i) => i.address) };
}

/** Installs the rules with the chosen driver, then pushes their teardown onto `undo`. */
export async function setupMasqWithUndo(pref: BackendName | undefined, spec: MasqSpec, undo: Rollback): Promise<void> {
  const nf = selectDriver(pref);
  await nf.setup({ masq: spec });
  undo.push('remove masquerade rules', () => nf.teardown(spec, ['masq']));
}
