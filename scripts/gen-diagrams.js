// Regenerates the state diagrams in docs/ from the machines' definitions (npm run diagrams).
// Each is a fenced block after a marker line: <!-- generated: flotilla viz --format mermaid NAME -->
const fs = require('node:fs');
const path = require('node:path');
const { regenerateDiagrams } = require('../dist/src/viz/docs.js');

const dir = path.join(__dirname, '..', 'docs');
for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.md'))) {
  const file = path.join(dir, f);
  const before = fs.readFileSync(file, 'utf8');
  const after = regenerateDiagrams(before);
  if (after !== before) {
    fs.writeFileSync(file, after);
    console.log(`updated ${path.relative(process.cwd(), file)}`);
  }
}
