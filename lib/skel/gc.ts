/**
 * The input of the 1.1 GC verb, in one place for every plugin: `cni.dev/valid-attachments`
 * (what libcni sends), or `cni.dev/attachments` (the spec-v1.1.0 text; libcni sends both keys,
 * cni#1101). Pure.
 */
import { CniError, ErrCode } from './errors';
import type { NetConf } from './dispatch';

/** An attachment as GC receives it. */
export interface Attachment {
  containerID: string;
  ifname: string;
}

/**
 * The attachments GC must keep. An absent or malformed list is a config error (code 7), never
 * "none valid": removing every lease or rule of the network on a broken request would be a disaster.
 */
export function validAttachments(conf: NetConf): Attachment[] {
  const list = conf['cni.dev/valid-attachments'] ?? conf['cni.dev/attachments'];
  if (!Array.isArray(list)) throw new CniError(ErrCode.InvalidConfig, 'GC needs cni.dev/valid-attachments in the config');
  for (const a of list as unknown[]) {
    const o = a as Partial<Attachment> | null;
    if (!o || typeof o !== 'object' || typeof o.containerID !== 'string' || typeof o.ifname !== 'string') {
      throw new CniError(ErrCode.InvalidConfig, `invalid entry in cni.dev/valid-attachments: ${JSON.stringify(a)} (want {"containerID": string, "ifname": string})`);
    }
  }
  return list as Attachment[];
}
