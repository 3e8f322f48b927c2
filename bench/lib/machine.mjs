// What the numbers were measured on: CPU, cores, kernel, Node, tool versions, load, commits.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { run } from './proc.mjs';

async function firstLine(argv) {
  const r = await run(argv, { timeoutMs: 10_000 });
  return (r.stdout || r.stderr).trim().split('\n')[0] || null;
}

export async function machineInfo(repoRoot) {
  let cpuModel = os.cpus()[0]?.model ?? null;
  try {
    cpuModel = readFileSync('/proc/cpuinfo', 'utf8').match(/^model name\s*:\s*(.*)$/m)?.[1] ?? cpuModel;
  } catch {
    /* keep os.cpus() */
  }
  const gitHead = await firstLine(['git', '-C', repoRoot, 'rev-parse', '--short', 'HEAD']);
  const dirty = (await run(['git', '-C', repoRoot, 'status', '--porcelain', '--untracked-files=no'])).stdout.trim() !== '';
  return {
    date: new Date().toISOString(),
    hostname: os.hostname(),
    cpuModel,
    cores: os.cpus().length,
    memTotalMiB: Math.round(os.totalmem() / 2 ** 20),
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    iproute2: await firstLine(['ip', '-V']),
    nft: await firstLine(['nft', '-v']),
    iptables: await firstLine(['iptables', '-V']),
    referencePlugins: await firstLine(['dpkg-query', '-W', '-f=${Version}', 'containernetworking-plugins']),
    oursCommit: gitHead ? `${gitHead}${dirty ? '+dirty' : ''}` : null,
    loadavgAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}
