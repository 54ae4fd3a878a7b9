// Builds the visualizer's front-end (ui/) into dist/ui with esbuild: one script, one stylesheet,
// one page. No CDN: everything the page needs is served by flotillad itself.
const fs = require('node:fs');
const path = require('node:path');
const esbuild = require('esbuild');

const root = path.join(__dirname, '..');
const out = path.join(root, 'dist', 'ui');
fs.mkdirSync(path.join(out, 'assets'), { recursive: true });
esbuild.buildSync({
  entryPoints: [path.join(root, 'ui', 'src', 'main.tsx')],
  outfile: path.join(out, 'assets', 'app.js'),
  bundle: true,
  minify: true,
  format: 'iife',
  target: 'es2020',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  legalComments: 'linked',
  logLevel: 'warning',
});
fs.copyFileSync(path.join(root, 'ui', 'index.html'), path.join(out, 'index.html'));
fs.copyFileSync(path.join(root, 'ui', 'app.css'), path.join(out, 'assets', 'app.css'));
