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
// The stylesheet goes in the page: a chart the server drew is painted without waiting for it.
const css = fs.readFileSync(path.join(root, 'ui', 'app.css'), 'utf8');
const link = '<link rel="stylesheet" href="/ui/assets/app.css" />';
const html = fs.readFileSync(path.join(root, 'ui', 'index.html'), 'utf8');
if (!html.includes(link)) throw new Error(`ui/index.html: no ${link} to inline`);
fs.writeFileSync(path.join(out, 'index.html'), html.replace(link, `<style>${css}</style>`));

// The machines drawn from their definitions (compiled by tsc just before), laid out by ELK here,
// once: the page draws the positions and runs no layout code.
const { VIZ_MACHINES, vizGraphs } = require('../dist/src/viz/machines.js');
const { layoutGraph } = require('../dist/src/viz/layout.js');
(async () => {
  const graphs = vizGraphs();
  const machines = [];
  for (const m of VIZ_MACHINES) {
    const graph = graphs.get(m.name);
    machines.push({ name: m.name, title: m.title, graph, layout: await layoutGraph(graph) });
  }
  fs.writeFileSync(path.join(out, 'assets', 'machines.json'), JSON.stringify({ machines }));
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
