/** js-yaml (installed with eslint and jest) has no bundled types; the tests need only `load`. */
declare module 'js-yaml' {
  export function load(text: string): unknown;
}
