export type { Bus, BusMessage, Subscription } from './types';
export { LocalHub, LocalBus, subjectMatches } from './local';
export { NatsBus } from './nats';
export type { NatsBusOptions } from './nats';
