/**
 * The CNI_* environment, checked from one table (SPEC.md §2, cni:pkg/skel getCmdArgsFromEnv).
 * Every missing variable is named in a single code-4 error.
 */
import { CniError, ErrCode } from './errors';

export type Verb = 'ADD' | 'DEL' | 'CHECK' | 'GC' | 'STATUS' | 'VERSION';
export const VERBS: readonly Verb[] = ['ADD', 'DEL', 'CHECK', 'GC', 'STATUS', 'VERSION'];

type Var = 'CNI_CONTAINERID' | 'CNI_NETNS' | 'CNI_IFNAME' | 'CNI_PATH';

/** Which variables each verb needs. CNI_NETNS is optional on DEL: an empty one means "the netns is gone". */
const REQUIRED: Record<Verb, readonly Var[]> = {
  ADD: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  CHECK: ['CNI_CONTAINERID', 'CNI_NETNS', 'CNI_IFNAME', 'CNI_PATH'],
  DEL: ['CNI_CONTAINERID', 'CNI_IFNAME', 'CNI_PATH'],
  GC: ['CNI_PATH'],
  STATUS: [],
  VERSION: [],
};

const CONTAINER_ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

export interface CniEnv {
  command: Verb;
  containerID: string;
  netns: string;
  ifName: string;
  /** The raw CNI_ARGS string. */
  args: string;
  /** CNI_ARGS parsed; unknown keys are kept, never an error (CRI runtimes send K8S_POD_* keys). */
  argsMap: Record<string, string>;
  path: string[];
}

/** Validates an interface name as the kernel and cni:pkg/utils ValidateInterfaceName do. */
export function validateIfName(name: string): string | undefined {
  if (name.length === 0) return 'interface name is empty';
  if (Buffer.byteLength(name) > 15) return `interface name is too long: "${name}" (max 15 characters)`;
  if (name === '.' || name === '..') return `interface name "${name}" is not allowed`;
  if (/[/:\s]/.test(name)) return `interface name "${name}" contains / or : or whitespace`;
  return undefined;
}

/** Parses `K=V;K2=V2`. A malformed pair is an error; unknown keys are fine. */
export function parseCniArgs(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!s) return out;
  for (const pair of s.split(';')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) {
      throw new CniError(ErrCode.InvalidEnvironment, `invalid CNI_ARGS pair "${pair}"`);
    }
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** Reads and checks the CNI_* variables for the verb in CNI_COMMAND. */
export function readEnv(getenv: (k: string) => string | undefined): CniEnv {
  const command = getenv('CNI_COMMAND') ?? '';
  if (!(VERBS as readonly string[]).includes(command)) {
    throw new CniError(ErrCode.InvalidEnvironment, `unknown CNI_COMMAND: ${command}`);
  }
  const verb = command as Verb;
  const missing = REQUIRED[verb].filter((k) => !getenv(k));
  if (missing.length > 0) {
    throw new CniError(ErrCode.InvalidEnvironment, `required env variables [${missing.join(',')}] missing`);
  }
  const containerID = getenv('CNI_CONTAINERID') ?? '';
  if (containerID && !CONTAINER_ID_RE.test(containerID)) {
    throw new CniError(ErrCode.InvalidEnvironment, 'invalid characters in containerID', containerID);
  }
  const ifName = getenv('CNI_IFNAME') ?? '';
  if (verb === 'ADD' || verb === 'DEL' || verb === 'CHECK') {
    const bad = validateIfName(ifName);
    if (bad) throw new CniError(ErrCode.InvalidEnvironment, `invalid CNI_IFNAME: ${bad}`);
  }
  const args = getenv('CNI_ARGS') ?? '';
  return {
    command: verb,
    containerID,
    netns: getenv('CNI_NETNS') ?? '',
    ifName,
    args,
    argsMap: parseCniArgs(args),
    path: (getenv('CNI_PATH') ?? '').split(':').filter(Boolean),
  };
}
