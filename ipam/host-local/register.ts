/**
 * Importing this module lets plugins such as bridge run host-local in-process (no exec, no
 * second Node start) when CNI_PATH resolves host-local to our own build (lib/ipam/exec.ts).
 */
import { registerInProcessIpam } from '../../lib/ipam/exec';
import { plugin } from './main';

registerInProcessIpam('host-local', plugin);
