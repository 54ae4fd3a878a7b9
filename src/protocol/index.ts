export * from './messages';
export * from './codec';
export { subjects } from './subjects';
export type { Subjects } from './subjects';
