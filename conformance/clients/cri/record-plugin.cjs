// Recording shim for CNI plugins (test-only): the CRI suite's bin_dir holds one small executable
// per plugin that calls run() with the real binary and the log path. It passes stdin, the
// environment and the exit status through unchanged and appends one JSON line per call
// (plugin, verb, CNI_* environment, stdin, exit code, stdout, stderr) to the log: the record of
// what containerd actually sent. One write(2) per line on an O_APPEND file, so the concurrent
// ADDs containerd makes (lo and eth0 at once) do not interleave.
'use strict';
const { spawnSync } = require('node:child_process');
const { appendFileSync, readFileSync, writeSync } = require('node:fs');

function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

exports.run = function run({ plugin, real, log }) {
  const started = Date.now();
  let stdin = '';
  try {
    stdin = readFileSync(0, 'utf8');
  } catch {
    // VERSION may come with no stdin at all
  }
  const r = spawnSync(real, process.argv.slice(2), { input: stdin, env: process.env, maxBuffer: 64 << 20 });
  const stdout = r.stdout ? r.stdout.toString() : '';
  const stderr = r.stderr ? r.stderr.toString() : r.error ? String(r.error) : '';
  const rc = r.status === null ? 128 : r.status;
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (k.startsWith('CNI_')) env[k] = v;
  const line = { plugin, command: env.CNI_COMMAND || '', env, stdin: parse(stdin), rc, stdout: parse(stdout), stderr, pid: process.pid, started, ms: Date.now() - started };
  appendFileSync(log, JSON.stringify(line) + '\n');
  if (stdout) writeSync(1, stdout);
  if (stderr) writeSync(2, stderr);
  process.exitCode = rc;
};
