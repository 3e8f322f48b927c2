/**
 * Finding where a container's network lives from libcni's result cache
 * (cni:libcni/api.go cacheAdd): one file per attachment, `<cacheDir>/results/<net>-<cid>-<ifname>`,
 * holding `{kind: "cniCacheV1", containerId, ifName, networkName, netns, config, result, ...}`.
 * `netns` is the path the runtime gave as CNI_NETNS; older writers only left the path in the
 * result's `interfaces[].sandbox`, so both are read.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const CACHE_KIND = 'cniCacheV1';

export interface CachedAttachment {
  file: string;
  networkName: string;
  ifName: string;
  /** Netns paths this attachment names (the `netns` field first, then result sandboxes). */
  netnsPaths: string[];
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses one cache file's text; undefined when it is not a cniCacheV1 entry (as libcni skips it). */
export function parseCacheEntry(text: string, file: string): (CachedAttachment & { containerId: string }) | undefined {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return undefined; // half-written or foreign: libcni skips these too
  }
  if (!isObject(raw) || raw.kind !== CACHE_KIND || typeof raw.containerId !== 'string') return undefined;
  const paths: string[] = [];
  if (typeof raw.netns === 'string' && raw.netns) paths.push(raw.netns);
  const result = raw.result;
  if (isObject(result) && Array.isArray(result.interfaces)) {
    for (const i of result.interfaces) {
      if (isObject(i) && typeof i.sandbox === 'string' && i.sandbox && !paths.includes(i.sandbox)) paths.push(i.sandbox);
    }
  }
  return {
    file,
    containerId: raw.containerId,
    networkName: typeof raw.networkName === 'string' ? raw.networkName : '',
    ifName: typeof raw.ifName === 'string' ? raw.ifName : '',
    netnsPaths: paths,
  };
}

/**
 * Every cached attachment of `containerId` under `<cacheDir>/results`, in file-name order.
 * Like libcni's GetCachedAttachments: names are pre-filtered on `-<id>-`, then the JSON's
 * containerId must match exactly. A missing directory means no attachments.
 */
export function cachedAttachments(cacheDir: string, containerId: string): CachedAttachment[] {
  const dir = join(cacheDir, 'results');
  let names: string[];
  try {
    names = readdirSync(dir).sort();
  } catch {
    return [];
  }
  const part = `-${containerId}-`;
  const out: CachedAttachment[] = [];
  for (const name of names) {
    const pos = name.indexOf(part);
    if (pos <= 0 || pos + part.length >= name.length) continue;
    let text: string;
    try {
      text = readFileSync(join(dir, name), 'utf8');
    } catch {
      continue;
    }
    const e = parseCacheEntry(text, join(dir, name));
    if (e && e.containerId === containerId) {
      const { containerId: _id, ...att } = e;
      out.push(att);
    }
  }
  return out;
}
