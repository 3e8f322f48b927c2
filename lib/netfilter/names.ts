/**
 * Names and comments of the masquerade rules, made exactly as the reference plugins make them
 * (plugins:pkg/utils/utils.go, pkg/ip/ipmasq_nftables_linux.go), so that rules one side made
 * are found and removed by the other. Pure: no I/O.
 */
import { createHash } from 'node:crypto';

/** iptables chain names are at most 28 characters (29 with the kernel's NUL). */
export const MAX_CHAIN_LENGTH = 28;
const CHAIN_PREFIX = 'CNI-';
/** Hex digits in a sha512 digest. */
export const MAX_HASH_LENGTH = 128;
/** nft refuses longer comments (NFT_USERDATA_MAXLEN); knftables truncates to this. */
export const NFT_COMMENT_MAX = 128;

/**
 * `prefix` followed by hex(sha512(toHash)), cut to `length` characters. Throws (as the
 * reference panics) when the prefix leaves no room or the length exceeds the digest.
 */
export function hashWithPrefix(length: number, prefix: string, toHash: string): string {
  if (prefix.length >= length || length > MAX_HASH_LENGTH) throw new Error('invalid length');
  const digest = createHash('sha512').update(toHash, 'utf8').digest('hex');
  return (prefix + digest).slice(0, length);
}

/** `CNI-<prefix><hash>` 28 characters long; the iptables masquerade chain uses no prefix. */
export function chainNameWithPrefix(network: string, containerID: string, prefix: string): string {
  return hashWithPrefix(MAX_CHAIN_LENGTH, CHAIN_PREFIX + prefix, network + containerID);
}

/** The per-container iptables chain: `CNI-` + hex(sha512(network + containerID)), 28 chars. */
export function chainName(network: string, containerID: string): string {
  return chainNameWithPrefix(network, containerID, '');
}

/**
 * Quotes like Go's %q (strconv.Quote): backslash and double quote escaped, control and
 * non-printable characters as \n, \t, \xNN, \uNNNN. Network names and container IDs are
 * restricted to [A-Za-z0-9_.-] by libcni, so in practice this only adds the quotes.
 */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += '\\' + ch;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\x07') out += '\\a';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (ch === '\v') out += '\\v';
    else if (cp < 0x20 || cp === 0x7f) out += '\\x' + cp.toString(16).padStart(2, '0');
    else if (cp >= 0x80 && cp < 0xa0) out += '\\u' + cp.toString(16).padStart(4, '0');
    else out += ch;
  }
  return out + '"';
}

/** The iptables rule comment: `name: "<network>" id: "<containerID>"`. */
export function iptablesComment(network: string, containerID: string): string {
  return `name: ${goQuote(network)} id: ${goQuote(containerID)}`;
}

/** 16 hex digits identifying a network; every nft rule of the network starts with it. */
export function nftNetworkHash(network: string): string {
  return hashWithPrefix(16, '', network);
}

/**
 * Identifies one attachment's nft rules: network hash, `-`, hash of `ifName:containerID`.
 * It opens the rule comment, so a prefix match finds exactly that attachment's rules.
 */
export function nftInstanceHash(network: string, ifName: string, containerID: string): string {
  return `${nftNetworkHash(network)}-${hashWithPrefix(16, '', `${ifName}:${containerID}`)}`;
}

/** Cuts a string to at most `max` UTF-8 bytes without splitting a character. */
function truncateBytes(s: string, max: number): string {
  if (Buffer.byteLength(s, 'utf8') <= max) return s;
  let out = '';
  let used = 0;
  for (const ch of s) {
    const n = Buffer.byteLength(ch, 'utf8');
    if (used + n > max) break;
    out += ch;
    used += n;
  }
  return out;
}

/**
 * The nft rule comment: `<instance hash>, net: <network>, if: <ifName>, id: <containerID>`,
 * double quotes dropped (nft's text syntax cannot escape them) and cut to 128 bytes.
 */
export function nftComment(network: string, ifName: string, containerID: string): string {
  const clean = (s: string): string => s.replaceAll('"', '');
  const text = `${nftInstanceHash(network, ifName, containerID)}, net: ${clean(network)}, if: ${clean(ifName)}, id: ${clean(containerID)}`;
  return truncateBytes(text, NFT_COMMENT_MAX);
}

/**
 * The owner marker of a port-mapping container in nft (nftables/portmap.ts), whose own rules
 * carry the container ID alone: `<network hash>-<hash of containerID>, net: …, id: …`, cut to
 * 128 bytes. Its first 33 characters (nftOwnerMarkerKey) identify the (network, container).
 */
export function nftOwnerMarker(network: string, containerID: string): string {
  const clean = (s: string): string => s.replaceAll('"', '');
  return truncateBytes(`${nftOwnerMarkerKey(network, containerID)}, net: ${clean(network)}, id: ${clean(containerID)}`, NFT_COMMENT_MAX);
}

export function nftOwnerMarkerKey(network: string, containerID: string): string {
  return `${nftNetworkHash(network)}-${hashWithPrefix(16, '', containerID)}`;
}
