export * from './messages';
export * from './codec';
export { subjects } from './subjects';
export type { Subjects } from './subjects';
export { machineOfSubject, isSubjectToken } from './subjects';
export { checkReplySubject, checkSender, senderOfSubject } from './sender';
