export { fleetApiHandler, PREFIX } from './handler';
export type { FleetApiOptions, RequestListener } from './handler';
export { startFleetApiServer } from './server';
export type { FleetApiServerHandle, FleetApiServerOptions } from './server';
export { DEFAULT_TOKEN_LIMIT } from './pagination';
export { httpStatusFor, ERROR_CODE_HEADER } from './errors';
