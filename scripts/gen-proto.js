#!/usr/bin/env node
// Generates typed @grpc/grpc-js code from proto/ into src/gen/ with buf + ts-proto.
// Both come from npm and run offline; nothing is downloaded.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const out = path.join(root, 'src', 'gen');
const plugin = path.join(root, 'node_modules', '.bin', 'protoc-gen-ts_proto');
const template = {
  version: 'v2',
  plugins: [
    {
      local: plugin,
      out: 'src/gen',
      opt: [
        'outputServices=grpc-js',
        'esModuleInterop=true',
        'useOptionals=none',
        'forceLong=number',
        'env=node',
        'useExactTypes=false',
      ],
    },
  ],
};
fs.rmSync(out, { recursive: true, force: true });
execFileSync(
  process.execPath,
  [
    path.join(root, 'node_modules', '@bufbuild', 'buf', 'bin', 'buf'),
    'generate',
    '--template',
    JSON.stringify(template),
    'proto',
  ],
  { cwd: root, stdio: 'inherit' },
);
