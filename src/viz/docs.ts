import { renderDiagrams } from '../cli/commands/viz';

/**
 * Diagrams in the docs are generated: a marker line names the command, and the fenced block
 * after it is its output. `npm run diagrams` rewrites them; a unit test fails when they drift.
 *
 *   <!-- generated: flotilla viz --format mermaid agent-unit -->
 *   ```mermaid
 *   …
 *   ```
 */
const BLOCK =
  /(<!-- generated: flotilla viz --format (mermaid|dot) ([a-z-]+) -->\n\n?)```[a-z]*\n[\s\S]*?```\n/g;

/** The document with every generated block brought up to date. */
export function regenerateDiagrams(doc: string): string {
  return doc.replace(
    BLOCK,
    (_m, marker: string, format: string, machine: string) =>
      `${marker}\`\`\`${format}\n${renderDiagrams(format, [machine])}\`\`\`\n`,
  );
}

/** The machines a document has generated diagrams of. */
export function generatedDiagrams(doc: string): string[] {
  return [...doc.matchAll(BLOCK)].map((m) => m[3]);
}
